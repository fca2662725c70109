"""Reconciliation: flows counted at both ends, matched, and the gap reported.

A hotline counts the notices it sent to a company and the company counts the notices it
received from hotlines; a company counts its reports to a clearinghouse and the clearinghouse
counts the reports it received from that company. The two counts of one flow rarely agree
(Discord 2023: 164,478 reports by its own count, 339,412 by NCMEC's). A disagreement is data
for the secretariat, not an error: nothing here rejects or corrects a figure, it only puts the
two counts side by side with the gap, a status against the flow's tolerance and a history.

The flows are defined in data/reconciliation/flows.yaml and checked against the catalogue at
load (``load_flows``). ``reconcile`` is pure (observation frame in, pair frame out, no
database) and vectorised; ``reconciliation_history`` follows each pair over periods;
``reconciliation_summary`` is the per-flow, per-period table a public release may show (the
pair-level rows name organisations and are for the secretariat only: ``public`` False).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from hub import vocab
from hub.catalogue import CODE_PATTERN, Catalogue, MetricSpec, _pydantic_problems
from hub.datafiles import StrictModel, read_yaml
from hub.errors import CatalogueError
from hub.figures import OBSERVATION_COLUMNS, load_organisations
from hub.models import Organisation
from hub.periods import PeriodRef, parse_period
from hub.vocab import DIMENSIONS, TOTAL

FLOWS_FILE = Path("reconciliation") / "flows.yaml"

Role = Literal["sender", "receiver"]
ROLES: tuple[Role, Role] = ("sender", "receiver")
# Where a side's rows name an end of the flow, besides a dimension of the metric.
ORGANISATION, ORG_COUNTRY = "organisation", "org_country"
COUNTERPART = "counterpart"  # the dimension that names an organisation (values: organisations)
# The sender column of a flow keyed on the receiver only: every sender taken together.
ALL_SENDERS = TOTAL

STATUSES = ("match", "within_tolerance", "discrepancy", "sender_missing", "receiver_missing")
AGREEING = ("match", "within_tolerance")
TRENDS = ("widening", "narrowing", "stable", "insufficient_data")

PAIR_KEY = ["flow", "period", "period_kind", "sender", "receiver"]
RECONCILIATION_TYPES: dict[str, str] = {
    "flow": "string",
    "period": "string",
    "period_kind": "string",
    "sender": "string",  # organisation code, ISO country code, or ALL_SENDERS
    "receiver": "string",
    "sender_count": "float64",  # NaN: the sender side has no figure for the pair
    "receiver_count": "float64",
    "gap": "float64",  # receiver_count - sender_count
    "relative_gap": "float64",  # gap / max(|sender_count|, |receiver_count|); 0 when both are 0
    "allowed_gap": "float64",  # the tolerance for this pair: max(relative x larger count, absolute)
    "status": "string",  # one of STATUSES
    "sender_reporters": "int64",  # organisations whose figures make up sender_count
    "receiver_reporters": "int64",
    "rolled_up": "bool",  # a count was summed from finer periods (roll_up_to)
    "provisional": "bool",  # a count rests on a provisional or estimated observation
    "sources_differ": "bool",  # an organisation gave the same figure twice with different values
    "group_total": "bool",  # receiver_count includes organisations below the sender (its group)
    "public": "bool",  # always False: pair rows name organisations (secretariat only)
}
RECONCILIATION_COLUMNS = tuple(RECONCILIATION_TYPES)

SUMMARY_TYPES: dict[str, str] = {
    "flow": "string",
    "period": "string",
    "period_kind": "string",
    "pairs": "int64",  # pairs with a figure on at least one side
    "pairs_compared": "int64",  # pairs with a figure on both sides
    "pairs_matching": "int64",  # exactly equal
    "pairs_within_tolerance": "int64",  # equal or within tolerance (includes pairs_matching)
    "pairs_discrepant": "int64",
    "pairs_sender_missing": "int64",
    "pairs_receiver_missing": "int64",
    "total_sent": "float64",  # over the pairs compared only
    "total_received": "float64",
    "gap": "float64",  # total_received - total_sent
    "relative_gap": "float64",
    "provisional": "bool",
    "public": "bool",  # always True: no organisation is named
}
SUMMARY_COLUMNS = tuple(SUMMARY_TYPES)

HISTORY_TYPES: dict[str, str] = {
    "flow": "string",
    "period_kind": "string",
    "sender": "string",
    "receiver": "string",
    "periods": "int64",  # periods in which the pair appears
    "periods_compared": "int64",  # ... with a figure on both sides
    "periods_out_of_tolerance": "int64",  # ... with status discrepancy
    "periods_one_sided": "int64",  # ... with status sender_missing or receiver_missing
    "first_seen": "string",  # first period the pair appears in
    "last_seen": "string",
    "first_discrepancy": "string",  # "" when never out of tolerance
    "latest_compared": "string",  # last period with both counts ("" when none)
    "latest_gap": "float64",
    "latest_relative_gap": "float64",
    "mean_relative_gap": "float64",  # over the periods compared
    "gap_trend": "float64",  # least-squares slope of |relative_gap| per period step
    "trend": "string",  # one of TRENDS
    "public": "bool",  # always False
}
HISTORY_COLUMNS = tuple(HISTORY_TYPES)

# A pair whose |relative gap| moves by less than this per period is "stable".
STABLE_SLOPE = 0.01
# Float slack on the tolerance edge, so |gap| == relative x count is within whatever the rounding.
_EDGE = 1e-9

_PER_YEAR = {"month": 12, "quarter": 4, "half_year": 2, "year": 1}
_MONTHS = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


# ----------------------------------------------------------------------------- flow definitions


class Side(StrictModel):
    """One end's count of a flow: the metric(s) it reports and how its rows name both ends."""

    # one metric, or several whose counts add up (hotlines' and clearinghouses' notices)
    metric: str | tuple[str, ...]
    # dimension -> value, or a list of values taken in order of preference: per organisation,
    # period and pair, rows of the first value present (provider_report, else the total)
    filters: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)
    sender_from: str | None = None
    receiver_from: str | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.metric if isinstance(self.metric, tuple) else (self.metric,)

    def source(self, role: Role) -> str | None:
        return self.sender_from if role == "sender" else self.receiver_from


class Tolerance(StrictModel):
    relative: float
    absolute: float


class Flow(StrictModel):
    """A flow counted at both ends (data/reconciliation/flows.yaml)."""

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=3, max_length=200)
    description: str = Field(min_length=20)
    key: tuple[Role, ...] = Field(min_length=1)
    sender_types: tuple[str, ...] = ()
    receiver_types: tuple[str, ...] = ()
    sender_side: Side
    receiver_side: Side
    tolerance: Tolerance
    roll_up_to: tuple[str, ...] = ()
    compare_at: tuple[str, ...] = ()  # period kinds compared; () = every kind both ends report in
    # The sender counts for its whole group (Amazon with Amazon Photos and Twitch): the receiver's
    # counts for organisations below the sender in the group tree are added to the sender's pair.
    sender_counts_group: bool = False

    def types(self, role: Role) -> tuple[str, ...]:
        return self.sender_types if role == "sender" else self.receiver_types


def _source_kind(source: str, metric: MetricSpec, catalogue: Catalogue) -> str | None:
    """ "organisation" or "country" for a source that can name an end of a flow, else None."""
    if source == ORGANISATION:
        return "organisation"
    if source == ORG_COUNTRY:
        return "country"
    if source not in metric.dimensions or source not in catalogue.dimensions:
        return None
    values = catalogue.dimensions[source].values
    return {"organisations": "organisation", "iso3166": "country"}.get(values)


def _check_side(flow: Flow, label: str, side: Side, catalogue: Catalogue, where: str) -> list[str]:
    at = f"{where}: {label}"
    if not side.metrics or len(set(side.metrics)) != len(side.metrics):
        return [f"{at}: metric: a list of metrics must be non-empty, each metric once"]
    problems: list[str] = []
    for code in side.metrics:
        metric = catalogue.metrics.get(code)
        if metric is None:
            problems.append(f"{at}: unknown metric {code!r} (not in the catalogue)")
        else:
            problems.extend(_check_side_metric(flow, at, side, metric, catalogue))
    return problems


def _check_side_metric(
    flow: Flow, at: str, side: Side, metric: MetricSpec, catalogue: Catalogue
) -> list[str]:
    problems: list[str] = []
    if metric.unit != "count" or metric.combination != "sum":
        problems.append(
            f"{at}: metric {metric.code!r} is a {metric.unit} combined as {metric.combination}; "
            "only counts combined as a sum can be reconciled"
        )
    for target in flow.roll_up_to:
        if metric.period_rollup != "sum":
            problems.append(
                f"{at}: metric {metric.code!r} does not roll up by sum, so roll_up_to {target!r} is refused"
            )
    for dimension, value in side.filters.items():
        if dimension not in catalogue.dimensions:
            problems.append(f"{at}: filter on unknown dimension {dimension!r}")
            continue
        if dimension not in metric.dimensions:
            problems.append(
                f"{at}: metric {metric.code!r} has no dimension {dimension!r} "
                f"(it has {', '.join(metric.dimensions) or 'none'})"
            )
            continue
        spec = catalogue.dimensions[dimension]
        values = value if isinstance(value, tuple) else (value,)
        if not values or len(set(values)) != len(values):
            problems.append(
                f"{at}: filter {dimension}: a list of alternatives must be non-empty, each value once"
            )
        for one in values:
            if spec.values == "list" and one != TOTAL and one not in spec.allowed:
                problems.append(
                    f"{at}: filter {dimension}={one!r} is not a value of the dimension "
                    f"(expected one of {', '.join(spec.allowed)})"
                )
    sources: list[str] = []
    for role in ROLES:
        source = side.source(role)
        if source is None:
            if role in flow.key:
                problems.append(f"{at}: {role}_from is missing, and the flow is keyed on the {role}")
            continue
        sources.append(source)
        if source not in (ORGANISATION, ORG_COUNTRY) and source not in catalogue.dimensions:
            problems.append(f"{at}: {role}_from names unknown dimension {source!r}")
        elif _source_kind(source, metric, catalogue) is None:
            problems.append(
                f"{at}: {role}_from {source!r} cannot name the {role} (expected organisation, "
                "org_country, or a counterpart or country dimension of the metric)"
            )
        if source in side.filters:
            problems.append(f"{at}: dimension {source!r} is both {role}_from and a filter")
    if len(sources) != len(set(sources)):
        problems.append(f"{at}: sender_from and receiver_from must differ")
    return problems


def _check_flow(flow: Flow, catalogue: Catalogue, where: str) -> list[str]:
    problems: list[str] = []
    if len(set(flow.key)) != len(flow.key):
        problems.append(f"{where}: key names a role twice")
    if "receiver" not in flow.key:
        problems.append(f"{where}: key must include the receiver")
    for role in ROLES:
        for kind in flow.types(role):
            if kind not in vocab.STAKEHOLDER_TYPES:
                problems.append(
                    f"{where}: unknown stakeholder type {kind!r} in {role}_types "
                    f"(expected one of {', '.join(vocab.STAKEHOLDER_TYPES)})"
                )
    for name, value in (("relative", flow.tolerance.relative), ("absolute", flow.tolerance.absolute)):
        if not math.isfinite(value) or value < 0:
            problems.append(f"{where}: tolerance {name} must be a finite number >= 0, not {value!r}")
    for kind in flow.roll_up_to:
        if kind not in vocab.PERIOD_KINDS or kind == "month":
            problems.append(f"{where}: roll_up_to {kind!r} is not a period kind above month")
    for kind in flow.compare_at:
        if kind not in vocab.PERIOD_KINDS:
            problems.append(
                f"{where}: compare_at {kind!r} is not a period kind ({', '.join(vocab.PERIOD_KINDS)})"
            )
    sides = (("sender_side", flow.sender_side), ("receiver_side", flow.receiver_side))
    for label, side in sides:
        problems.extend(_check_side(flow, label, side, catalogue, where))
    if problems:
        return problems
    for role in flow.key:
        kinds = {
            _source_kind(str(side.source(role)), catalogue.metrics[code], catalogue)
            for _, side in sides
            for code in side.metrics
        }
        if len(kinds) > 1:
            problems.append(
                f"{where}: the two sides name the {role} differently (an organisation on one, a country on the other)"
            )
    return problems


def load_flows(data_dir: Path, catalogue: Catalogue) -> tuple[Flow, ...]:
    """Read and check data/reconciliation/flows.yaml; raise CatalogueError with every problem."""
    path = data_dir / FLOWS_FILE
    problems: list[str] = []
    raw = read_yaml(path, problems)
    if problems:
        raise CatalogueError(problems)
    entries = raw.get("flows") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CatalogueError([f"{path}: expected a mapping with a non-empty 'flows' list"])
    flows: list[Flow] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        code = entry.get("code") if isinstance(entry, dict) else None
        where = f"{path}: flow {code!r} (entry {index + 1})"
        try:
            flow = Flow.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(where, exc))
            continue
        if flow.code in seen:
            problems.append(f"{where}: duplicate code {flow.code!r}")
        seen.add(flow.code)
        problems.extend(_check_flow(flow, catalogue, where))
        flows.append(flow)
    if problems:
        raise CatalogueError(problems)
    return tuple(flows)


# ----------------------------------------------------------------------------- reconciliation


def _one_figure_per_cell(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (metric, period, organisation, dimensions), flagged ``sources_differ``.

    An organisation can give the same figure in several submissions (NCMEC's per-provider
    table and a compilation of comparable counts, both of which the importer stores). Adding
    them would double the count, so the row of one submission is kept: the one giving the
    most figures of the metric for that organisation and period (the primary publication),
    then the newest. Cells reported with different values are flagged for the secretariat.
    """
    cell = ["metric", "_p", "organisation", *DIMENSIONS]
    duplicated = rows.duplicated(cell, keep=False)
    if not duplicated.any():
        return rows.assign(sources_differ=False)
    size = rows.groupby(["metric", "_p", "organisation", "submission_id"], observed=True, sort=False)[
        "value"
    ].transform("size")
    ranked = rows.assign(_size=size).sort_values(["_size", "submission_id"], ascending=False, kind="stable")
    differ = ranked.groupby(cell, observed=True, sort=False, dropna=False)["value"].transform("nunique") > 1
    ranked = ranked.assign(sources_differ=differ.to_numpy())
    return ranked.drop_duplicates(cell).drop(columns="_size").sort_index()


# Periods are handled as integers inside: (first month since year 0) x 4 + the kind's index,
# so a parent period is arithmetic and joins are on integers; codes come back at the end.
_KIND_INDEX = {"month": 0, "quarter": 1, "half_year": 2, "year": 3}
_KIND_OF = {index: kind for kind, index in _KIND_INDEX.items()}


def _period_ids(periods: pd.Series) -> np.ndarray:
    """The integer id of each period code (a categorical: each distinct code parsed once)."""
    categorical = periods.astype("category")
    ids = []
    for code in categorical.cat.categories:
        ref = parse_period(str(code))
        ids.append((ref.year * 12 + ref.first_month - 1) * 4 + _KIND_INDEX[ref.kind])
    lookup = np.asarray(ids, dtype="int64")
    return lookup[categorical.cat.codes.to_numpy()] if len(lookup) else np.zeros(len(periods), dtype="int64")


def _parent_ids(ids: pd.Series, kind: str) -> pd.Series:
    start = ids // 4
    return (start - start % _MONTHS[kind]) * 4 + _KIND_INDEX[kind]


def _period_codes(ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Period code and kind of each id."""
    codes, kinds = {}, {}
    for value in ids.unique():
        start, kind = divmod(int(value), 4)
        year, month0 = divmod(start, 12)
        name = _KIND_OF[kind]
        codes[value] = PeriodRef(year, name, month0 // _MONTHS[name] + 1).code
        kinds[value] = name
    return ids.map(codes).astype("string"), ids.map(kinds).astype("string")


def _roll_up(
    rows: pd.DataFrame, reported: pd.DataFrame, targets: Sequence[str], keys: list[str]
) -> pd.DataFrame:
    """``rows`` plus, for each target kind, finer-period rows summed into it.

    For each organisation and target period one source is chosen: the figures the
    organisation reported for the target period itself if it reported the metric for it;
    else the sum over the coarsest finer kind it reported completely (``reported``: its
    distinct organisation and period; every month of a quarter, say), so a quarter is never
    made from two months nor from a mixture of kinds.
    """
    if not targets or rows.empty:
        return rows.assign(rolled_up=False)
    target_index = [_KIND_INDEX[t] for t in targets]
    reported_kind = reported["_p"] % 4
    direct = reported[reported_kind.isin(target_index)].assign(_rank=0)
    sources = [direct[["organisation", "_p", "_rank"]]]
    sums = []
    row_kind = rows["_p"] % 4
    for target in targets:
        for kind in ("half_year", "quarter", "month"):
            if _MONTHS[kind] >= _MONTHS[target]:
                continue
            seen = reported[reported_kind == _KIND_INDEX[kind]]
            if seen.empty:
                continue
            rank = _MONTHS[target] // _MONTHS[kind]
            parent = _parent_ids(seen["_p"], target)
            counts = seen.groupby([seen["organisation"], parent.rename("_p")], observed=True).size()
            complete = counts[counts == rank].reset_index()[["organisation", "_p"]]
            sources.append(complete.assign(_rank=rank))
            finer = rows[row_kind == _KIND_INDEX[kind]]
            if finer.empty:
                continue
            summed = (
                finer.assign(_p=_parent_ids(finer["_p"], target))
                .groupby(["organisation", "_p", *keys], observed=True, sort=False)
                .agg(
                    value=("value", "sum"),
                    provisional=("provisional", "any"),
                    sources_differ=("sources_differ", "any"),
                    stakeholder_type=("stakeholder_type", "first"),
                )
                .reset_index()
            )
            sums.append(summed.assign(rolled_up=True, _rank=rank))
    cell = ["organisation", "_p"]
    chosen = pd.concat(sources, ignore_index=True).sort_values("_rank", kind="stable").drop_duplicates(cell)
    at_target = row_kind.isin(target_index)
    candidates = pd.concat([rows[at_target].assign(rolled_up=False, _rank=0), *sums], ignore_index=True)
    candidates = candidates.merge(chosen, on=[*cell, "_rank"], how="inner").drop(columns="_rank")
    return pd.concat([rows[~at_target].assign(rolled_up=False), candidates], ignore_index=True)


_CODE_COLUMNS = ["metric", "organisation", "stakeholder_type", "org_country", *DIMENSIONS]


def _metric_rows(
    observations: pd.DataFrame, metrics: set[str]
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per metric: its rows with a value, one per cell, and who reported it for which period.

    Codes become categoricals and periods integers once, so the filters, groupings and joins
    that follow work on integers rather than strings (several times faster on a large frame).
    """
    wanted = observations["metric"].isin(list(metrics)) & observations["value"].notna()
    rows = observations.loc[wanted, [*_CODE_COLUMNS, "period", "value", "provisional", "submission_id"]]
    rows = rows.astype(dict.fromkeys(_CODE_COLUMNS, "category"))
    rows = rows.assign(_p=_period_ids(rows["period"])).drop(columns="period")
    out = {}
    for metric, part in rows.groupby("metric", observed=True, sort=False):
        part = _one_figure_per_cell(part)
        reported = part[["organisation", "_p"]].drop_duplicates()
        out[str(metric)] = (part, reported)
    return out


def _side(
    by_metric: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
    flow: Flow,
    side: Side,
    stakeholder_type_of: pd.Series,
) -> pd.DataFrame:
    """One side's counts per period and pair: _p, key roles, count, reporters, flags."""
    keys: list[str] = [role for role in ROLES if role in flow.key]
    present = [code for code in side.metrics if code in by_metric]
    if not present:
        return pd.DataFrame(
            columns=["_p", *keys, "count", "reporters", "rolled_up", "provisional", "sources_differ"]
        )
    rows = pd.concat(
        [_side_rows(by_metric[code][0], flow, side, stakeholder_type_of) for code in present],
        ignore_index=True,
    )
    reported = pd.concat([by_metric[code][1] for code in present], ignore_index=True).drop_duplicates()
    rows = _roll_up(rows, reported, flow.roll_up_to, keys)
    return (
        rows.groupby(["_p", *keys], observed=True, sort=False)
        .agg(
            count=("value", "sum"),
            reporters=("organisation", "nunique"),
            rolled_up=("rolled_up", "any"),
            provisional=("provisional", "any"),
            sources_differ=("sources_differ", "any"),
        )
        .reset_index()
    )


def _side_rows(rows: pd.DataFrame, flow: Flow, side: Side, stakeholder_type_of: pd.Series) -> pd.DataFrame:
    """The rows of one metric that count the flow on this side, with the key roles as columns."""
    roles = [role for role in ROLES if side.source(role) is not None]
    role_dims = {str(side.source(role)) for role in roles} - {ORGANISATION, ORG_COUNTRY}
    keep = pd.Series(True, index=rows.index)
    preference = pd.Series(0.0, index=rows.index)
    for dimension in DIMENSIONS:
        wanted = side.filters.get(dimension)
        if isinstance(wanted, tuple):  # alternatives, the first one present preferred
            keep &= rows[dimension].isin(wanted)
            rank = {value: float(i) for i, value in enumerate(wanted)}
            preference = preference * len(wanted) + rows[dimension].map(rank).astype("float64").fillna(0.0)
        elif wanted is not None:
            keep &= rows[dimension] == wanted
        elif dimension in role_dims:
            keep &= rows[dimension] != TOTAL
        else:
            keep &= rows[dimension] == TOTAL
    rows, preference = rows[keep], preference[keep]
    if (preference > 0).any():
        cell = ["organisation", "_p", *sorted(role_dims)]
        best = preference.groupby([rows[c] for c in cell], observed=True).transform("min")
        rows = rows[preference == best]
    for role in roles:
        source = str(side.source(role))
        rows = rows.assign(**{role: rows[source]})
        if source == ORG_COUNTRY:
            rows = rows[rows[role] != ""]
        allowed = flow.types(role)
        if allowed:
            if source in (ORGANISATION, ORG_COUNTRY):  # the reporting organisation's type
                kinds = rows["stakeholder_type"]
            elif source == COUNTERPART:
                kinds = rows[role].map(stakeholder_type_of)
            else:  # a country has no stakeholder type
                continue
            rows = rows[kinds.isin(allowed).fillna(False).astype(bool)]
    keys: list[str] = [role for role in ROLES if role in flow.key]
    return rows[["organisation", "stakeholder_type", "_p", *keys, "value", "provisional", "sources_differ"]]


def status_of(sender: pd.Series, receiver: pd.Series, allowed: pd.Series) -> pd.Series:
    """The status of each pair from its two counts (NaN = missing) and its allowed gap."""
    gap = (receiver - sender).abs()
    status = np.select(
        [sender.isna(), receiver.isna(), gap == 0, gap <= allowed * (1 + _EDGE)],
        ["sender_missing", "receiver_missing", "match", "within_tolerance"],
        default="discrepancy",
    )
    return pd.Series(status, index=sender.index, dtype="string")


def _ancestors(organisations: pd.DataFrame) -> pd.DataFrame:
    """(organisation, ancestor) for every organisation above another in the group tree."""
    if "parent" not in organisations.columns:
        return pd.DataFrame(
            {"organisation": pd.Series(dtype="string"), "ancestor": pd.Series(dtype="string")}
        )
    parent = {
        str(code): str(up)
        for code, up in zip(organisations["organisation"], organisations["parent"], strict=True)
        if isinstance(up, str) and up
    }
    pairs = []
    for code in parent:
        seen, up = {code}, parent.get(code)
        while up is not None and up not in seen:  # a cycle in bad data stops the walk
            pairs.append((code, up))
            seen.add(up)
            up = parent.get(up)
    return pd.DataFrame(pairs, columns=["organisation", "ancestor"]).astype("string")


def _with_groups(sent: pd.DataFrame, received: pd.DataFrame, ancestors: pd.DataFrame) -> pd.DataFrame:
    """The receiver's counts with those of each sender's group added to the sender's pair.

    As hub.queries.sources_disagree does for the public comparison: a group's own count covers
    the organisations below it, so the receiver's counts for them are added to the group's pair,
    but only where the group itself reported a count for that receiver and period (no pair is
    made up for a group that is silent).
    """
    received = received.assign(group_total=False)
    if ancestors.empty or received.empty or sent.empty:
        return received
    up = received.merge(ancestors, left_on="sender", right_on="organisation", how="inner")
    up = up.drop(columns=["sender", "organisation"]).rename(columns={"ancestor": "sender"})
    up = up.merge(sent[["_p", "sender", "receiver"]], on=["_p", "sender", "receiver"], how="inner")
    if up.empty:
        return received
    every = pd.concat([received, up.assign(group_total=True)], ignore_index=True)
    return (
        every.groupby(["_p", "sender", "receiver"], observed=True, sort=False)
        .agg(
            count=("count", "sum"),
            reporters=("reporters", "max"),
            rolled_up=("rolled_up", "any"),
            provisional=("provisional", "any"),
            sources_differ=("sources_differ", "any"),
            group_total=("group_total", "any"),
        )
        .reset_index()
    )


def _compare(flow: Flow, sent: pd.DataFrame, received: pd.DataFrame, ancestors: pd.DataFrame) -> pd.DataFrame:
    keys = [role for role in ROLES if role in flow.key]
    for role in keys:  # the two sides' codes come from different columns: plain strings to join
        sent[role] = sent[role].astype("string")
        received[role] = received[role].astype("string")
    if flow.sender_counts_group and "sender" in keys:
        received = _with_groups(sent, received, ancestors)
    else:
        received = received.assign(group_total=False)
    both = sent.merge(received, on=["_p", *keys], how="outer", suffixes=("_s", "_r"))
    both["period"], both["period_kind"] = _period_codes(both["_p"])
    if "sender" not in flow.key:
        both["sender"] = ALL_SENDERS
    s, r = both["count_s"].astype("float64"), both["count_r"].astype("float64")
    larger = np.maximum(s.abs(), r.abs())
    out = pd.DataFrame(
        {
            "flow": flow.code,
            "period": both["period"],
            "period_kind": both["period_kind"],
            "sender": both["sender"],
            "receiver": both["receiver"],
            "sender_count": s,
            "receiver_count": r,
            "gap": r - s,
            "relative_gap": ((r - s) / larger).where(larger > 0, 0.0).where(s.notna() & r.notna()),
            "allowed_gap": np.maximum(flow.tolerance.relative * larger, flow.tolerance.absolute),
        }
    )
    out["allowed_gap"] = out["allowed_gap"].where(s.notna() & r.notna())
    out["status"] = status_of(s, r, out["allowed_gap"])
    out["sender_reporters"] = both["reporters_s"].fillna(0)
    out["receiver_reporters"] = both["reporters_r"].fillna(0)
    for name in ("rolled_up", "provisional", "sources_differ"):
        out[name] = both[f"{name}_s"].fillna(False).astype(bool) | both[f"{name}_r"].fillna(False).astype(
            bool
        )
    out["group_total"] = both["group_total"].fillna(False).astype(bool)
    out["public"] = False
    return out


def empty_reconciliation() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in RECONCILIATION_TYPES.items()})


def reconcile(
    observations: pd.DataFrame, flows: Iterable[Flow], *, organisations: pd.DataFrame
) -> pd.DataFrame:
    """One row per flow, pair and period with both ends' counts, the gap and its status.

    ``observations`` has the columns of hub.figures.OBSERVATION_COLUMNS (load_observations);
    the caller decides which submissions count. ``organisations`` (load_organisations) gives
    the stakeholder type of a counterpart, and with a ``parent`` column (organisation_parents)
    the group tree for flows whose sender counts for its group; without it no group is added. Only like is compared with like: a pair's counts
    are for the same period code and kind; finer periods enter a coarser kind only where the
    flow asks (roll_up_to) and only from complete sets, flagged ``rolled_up``. Rows are
    secretariat-only (``public`` False): they name organisations.
    """
    missing = set(OBSERVATION_COLUMNS) - set(observations.columns)
    if missing:
        raise ValueError(f"observations lack column(s): {', '.join(sorted(missing))}")
    if not {"organisation", "stakeholder_type"} <= set(organisations.columns):
        raise ValueError("organisations needs the columns organisation and stakeholder_type")
    stakeholder_type_of = pd.Series(
        organisations["stakeholder_type"].to_numpy(), index=organisations["organisation"].to_numpy()
    )
    stakeholder_type_of = stakeholder_type_of[~stakeholder_type_of.index.duplicated()]
    ancestors = _ancestors(organisations)
    flows = list(flows)
    by_metric = _metric_rows(
        observations,
        {code for f in flows for side in (f.sender_side, f.receiver_side) for code in side.metrics},
    )
    parts = []
    for flow in flows:
        sent = _side(by_metric, flow, flow.sender_side, stakeholder_type_of)
        received = _side(by_metric, flow, flow.receiver_side, stakeholder_type_of)
        # A period kind only one side reports in cannot be compared (no monthly rows against a
        # clearinghouse that reports quarters): roll_up_to brings the finer side up instead.
        kinds = set(sent["_p"] % 4) & set(received["_p"] % 4)
        if flow.compare_at:
            kinds &= {_KIND_INDEX[kind] for kind in flow.compare_at}
        sent = sent[(sent["_p"] % 4).isin(kinds)].copy()
        received = received[(received["_p"] % 4).isin(kinds)].copy()
        if sent.empty and received.empty:
            continue
        parts.append(_compare(flow, sent, received, ancestors))
    if not parts:
        return empty_reconciliation()
    out = pd.concat(parts, ignore_index=True)
    out = out.loc[:, list(RECONCILIATION_COLUMNS)].astype(RECONCILIATION_TYPES)
    return out.sort_values(PAIR_KEY, kind="stable").reset_index(drop=True)


def organisation_parents(session: Session) -> pd.DataFrame:
    """load_organisations plus ``parent``: the code of the organisation above each one ("" if none)."""
    parent = aliased(Organisation)
    query = select(col(Organisation.code), col(parent.code)).outerjoin(
        parent, col(parent.id) == col(Organisation.parent_id)
    )
    parents = {code: up or "" for code, up in session.execute(query).all()}
    frame = load_organisations(session)
    frame["parent"] = frame["organisation"].map(parents).fillna("").astype("string")
    return frame


# ----------------------------------------------------------------------------- release summary


def reconciliation_summary(reconciled: pd.DataFrame) -> pd.DataFrame:
    """Per flow and period: how many pairs agree, and total sent vs total received.

    This is what a public release may show (``public`` True): counts of pairs and totals, no
    organisation named. The totals are over the pairs compared (both counts present), so a
    pair reported at one end only does not make the totals disagree; the one-sided pairs are
    counted in their own columns. Disclosure control still applies to the totals (a flow
    with one pair compared shows that pair's counts).
    """
    if reconciled.empty:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in SUMMARY_TYPES.items()})
    status = reconciled["status"]
    compared = reconciled["sender_count"].notna() & reconciled["receiver_count"].notna()
    frame = pd.DataFrame(
        {
            "flow": reconciled["flow"],
            "period": reconciled["period"],
            "period_kind": reconciled["period_kind"],
            "pairs": 1,
            "pairs_compared": compared.astype(int),
            "pairs_matching": (status == "match").astype(int),
            "pairs_within_tolerance": status.isin(AGREEING).astype(int),
            "pairs_discrepant": (status == "discrepancy").astype(int),
            "pairs_sender_missing": (status == "sender_missing").astype(int),
            "pairs_receiver_missing": (status == "receiver_missing").astype(int),
            "total_sent": reconciled["sender_count"].where(compared, 0.0),
            "total_received": reconciled["receiver_count"].where(compared, 0.0),
            "provisional": reconciled["provisional"] & compared,
        }
    )
    out = frame.groupby(["flow", "period", "period_kind"], observed=True, sort=True).agg(
        {name: ("any" if name == "provisional" else "sum") for name in frame.columns[3:]}
    )
    out = out.reset_index()
    none = out["pairs_compared"] == 0
    out["total_sent"] = out["total_sent"].mask(none)
    out["total_received"] = out["total_received"].mask(none)
    out["gap"] = out["total_received"] - out["total_sent"]
    larger = np.maximum(out["total_sent"].abs(), out["total_received"].abs())
    out["relative_gap"] = (out["gap"] / larger).where(larger > 0, 0.0).mask(none)
    out["public"] = True
    return out.loc[:, list(SUMMARY_COLUMNS)].astype(SUMMARY_TYPES)


# ----------------------------------------------------------------------------- history


def period_ordinal(periods: pd.Series) -> pd.Series:
    """A running number per period kind: consecutive periods of one kind differ by 1."""
    codes = periods.unique()
    ordinal = {}
    for code in codes:
        ref = parse_period(str(code))
        ordinal[code] = ref.year * _PER_YEAR[ref.kind] + ref.number - 1
    return periods.map(ordinal).astype("int64")


def reconciliation_history(reconciled: pd.DataFrame, *, stable_slope: float = STABLE_SLOPE) -> pd.DataFrame:
    """Per flow, period kind and pair: how the gap behaves over the periods.

    ``gap_trend`` is the least-squares slope of |relative_gap| against the period number over
    the periods compared (per period step: +0.02 means the gap grows by two points of the
    larger count each period); ``trend`` names it: widening, narrowing, stable (|slope| below
    ``stable_slope``), or insufficient_data (fewer than two periods compared). Period kinds are
    never mixed: a pair's monthly and yearly rows make two histories. Secretariat only.
    """
    if reconciled.empty:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in HISTORY_TYPES.items()})
    group = ["flow", "period_kind", "sender", "receiver"]
    frame = reconciled.assign(_n=period_ordinal(reconciled["period"])).sort_values(
        [*group, "_n"], kind="stable"
    )
    compared = frame["sender_count"].notna() & frame["receiver_count"].notna()
    discrepant = frame["status"] == "discrepancy"
    frame = frame.assign(
        _compared=compared.astype(int),
        _out=discrepant.astype(int),
        _one_sided=frame["status"].isin(["sender_missing", "receiver_missing"]).astype(int),
        _first_discrepancy=frame["period"].where(discrepant),
        _compared_period=frame["period"].where(compared),
        _latest_gap=frame["gap"].where(compared),
        _latest_rel=frame["relative_gap"].where(compared),
    )
    grouped = frame.groupby(group, observed=True, sort=True)
    out = grouped.agg(
        periods=("period", "size"),
        periods_compared=("_compared", "sum"),
        periods_out_of_tolerance=("_out", "sum"),
        periods_one_sided=("_one_sided", "sum"),
        first_seen=("period", "first"),
        last_seen=("period", "last"),
        first_discrepancy=("_first_discrepancy", "first"),
        latest_compared=("_compared_period", "last"),
        latest_gap=("_latest_gap", "last"),
        latest_relative_gap=("_latest_rel", "last"),
        mean_relative_gap=("_latest_rel", "mean"),
    )
    # Least-squares slope of |relative gap| on the period number, over the compared periods.
    points = frame[compared].assign(_y=frame["relative_gap"].abs())
    points = points.assign(_x=points["_n"].astype("float64"))
    pg = points.groupby(group, observed=True, sort=True)
    n = pg["_x"].count()
    mean_x, mean_y = pg["_x"].transform("mean"), pg["_y"].transform("mean")
    dx = points["_x"] - mean_x
    points = points.assign(_sxy=dx * (points["_y"] - mean_y), _sxx=dx * dx)
    sums = points.groupby(group, observed=True, sort=True)[["_sxy", "_sxx"]].sum()
    slope = (sums["_sxy"] / sums["_sxx"]).where((n >= 2) & (sums["_sxx"] > 0))
    out["gap_trend"] = slope.reindex(out.index)
    trend = np.select(
        [out["gap_trend"].isna(), out["gap_trend"] >= stable_slope, out["gap_trend"] <= -stable_slope],
        ["insufficient_data", "widening", "narrowing"],
        default="stable",
    )
    out["trend"] = trend
    out = out.reset_index()
    for name in ("first_discrepancy", "latest_compared"):
        out[name] = out[name].fillna("")
    out["public"] = False
    return out.loc[:, list(HISTORY_COLUMNS)].astype(HISTORY_TYPES)
