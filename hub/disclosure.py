"""Disclosure control, applied once when a release is built (docs/disclosure.md).

Small counts of identified children can identify a child, and a total over few
organisations can reveal one of them. ``protect`` flags every cell of an indicator table
(hub.figures) that must not be published and why: primary (a count of people below its
class threshold), not_named (an organisation's own figure without its consent), dominance
(two contributors make up most of a total), min_events (a percentile on too few events) and
secondary (hidden so that none of the others can be worked out from totals, shares,
year-on-year changes or an earlier release). ``public_view`` is what a release may show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

from hub.catalogue import _pydantic_problems, load_catalogue
from hub.datafiles import StrictModel, read_yaml
from hub.disclosure_audit import (
    Constraints,
    _spans,
    check_cells,
    hash_codes,
    key_positions,
    short_targets,
)
from hub.errors import CatalogueError, HubError
from hub.figures import ALLIANCE, DISCLOSURE_COLUMNS, KEY_COLUMNS, NO_PARAM, conform
from hub.peers import PeerRule
from hub.periods import PeriodError, PeriodRef, parse_period
from hub.vocab import DIMENSIONS, DISCLOSURE_CLASSES, PERIOD_KINDS, TOTAL

POLICY_FILE = "disclosure.yaml"
HIDDEN = "x"  # what a reader sees for a cell hidden for any reason but primary


class DisclosureError(HubError):
    """The table cannot be protected (or has a malformed key); nothing may be published."""


class ClassRule(StrictModel):
    threshold: int = Field(ge=0)  # 0: no primary suppression for the class
    show_zero: bool = True

    @property
    def label(self) -> str:
        return f"<{self.threshold}"


class DominanceRule(StrictModel):
    n: Literal[2]  # the indicator table carries the two largest contributors
    k: float = Field(gt=0, le=100)  # percent


class ProtectionRule(StrictModel):
    primary_lower_fraction: float = Field(ge=0, le=1)
    dominance_fraction: float = Field(gt=0, le=1)
    # Reasons protect() proves with linear programmes at build time (the others get the
    # heuristic only). Primary is mandatory: people are what this protects first.
    verify: tuple[Literal["primary", "dominance"], ...] = ("primary",)

    @model_validator(mode="after")
    def _primary_verified(self) -> ProtectionRule:
        if "primary" not in self.verify:
            raise ValueError("verify: must include 'primary'")
        return self


class DisclosurePolicy(StrictModel):
    """data/disclosure.yaml, plus the ratio metrics' parts taken from the catalogue."""

    classes: dict[str, ClassRule]
    dominance: DominanceRule
    min_events: int = Field(ge=1)
    protection: ProtectionRule
    peers: PeerRule = Field(default_factory=PeerRule)
    ratio_parts: dict[str, tuple[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_class(self) -> DisclosurePolicy:
        missing = sorted(set(DISCLOSURE_CLASSES) - set(self.classes))
        unknown = sorted(set(self.classes) - set(DISCLOSURE_CLASSES))
        if missing:
            raise ValueError(f"classes: no rule for {missing} (every disclosure class needs one)")
        if unknown:
            raise ValueError(f"classes: {unknown} are not disclosure classes {list(DISCLOSURE_CLASSES)}")
        return self


def load_policy(data_dir: Path) -> DisclosurePolicy:
    """Read and validate ``data_dir/disclosure.yaml``; every problem names the file and field."""
    path = data_dir / POLICY_FILE
    problems: list[str] = []
    raw = read_yaml(path, problems)
    if problems:
        raise CatalogueError(problems)
    if not isinstance(raw, dict):
        raise CatalogueError(
            [f"{path}: expected a mapping with classes, dominance, min_events, protection, peers"]
        )
    if "ratio_parts" in raw:
        raise CatalogueError([f"{path}: field 'ratio_parts' comes from the catalogue, not this file"])
    try:
        policy = DisclosurePolicy.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(list(_pydantic_problems(str(path), exc))) from None
    catalogue = load_catalogue(data_dir)
    parts = {
        code: (spec.numerator, spec.denominator)
        for code, spec in catalogue.metrics.items()
        if spec.numerator and spec.denominator
    }
    return policy.model_copy(update={"ratio_parts": parts})


# ---------------------------------------------------------------------------------------
# Keys and equations


class _Keys:
    """Integer codes of the key columns of one table, so that the key of a related cell
    (its total, its parent period, its year-earlier cell) is found without string work:
    the string columns are turned into codes once, and everything after works on those."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.codes: dict[str, np.ndarray] = {}
        self.uniques: dict[str, pd.Index] = {}
        for (
            name
        ) in KEY_COLUMNS:  # int32: half the memory of 17 columns of codes (0.33 GB on the large benchmark)
            codes, uniques = pd.factorize(frame[name])
            self.codes[name], self.uniques[name] = codes.astype(np.int32), pd.Index(uniques)
        # One integer per key: mixed-radix codes when they fit in 62 bits (then a related
        # key is the row's key plus the change of one digit), else a 64-bit hash.
        self.strides: dict[str, int] | None = {}
        stride = 1
        for name in KEY_COLUMNS:
            self.strides[name] = stride
            stride *= max(len(self.uniques[name]), 1)
        if stride < 2**62:
            self.key = np.zeros(len(frame), dtype=np.int64)
            for name in KEY_COLUMNS:
                self.key += self.codes[name].astype(np.int64) * self.strides[name]
        else:
            self.strides = None
            self.key = hash_codes([self.codes[name] for name in KEY_COLUMNS]).view(np.int64)
        self.index = pd.Index(self.key)
        if not self.index.is_unique:
            raise DisclosureError("the indicator table has two rows with the same key")

    def code(self, name: str, value: str | float) -> int:
        """The code of ``value`` in column ``name``, -1 when no row has it."""
        found = self.uniques[name].get_indexer([value])
        return int(found[0])

    def mask(self, name: str, values: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows whose ``name`` is one of ``values``."""
        hit = np.append(np.asarray(self.uniques[name].isin(list(values)), dtype=bool), False)
        return hit[self.codes[name]]

    def recode(self, name: str, values: np.ndarray) -> np.ndarray:
        """Codes (in column ``name``) of strings given per code of ``name``'s own uniques."""
        return np.asarray(self.uniques[name].get_indexer(values), dtype=np.int64)

    def related(self, rows: np.ndarray, replace: dict[str, str | float | np.ndarray]) -> np.ndarray:
        """Position of the cell whose key is that of ``rows`` with ``replace``d columns (a
        value, or one code per row), or -1."""
        missing = np.zeros(len(rows), dtype=bool)
        replaced: dict[str, np.ndarray] = {}
        for name, new in replace.items():
            column = (
                np.full(len(rows), self.code(name, new), dtype=np.int64)
                if isinstance(new, (str, float))
                else np.asarray(new, dtype=np.int64)
            )
            missing |= column < 0
            replaced[name] = column
        if self.strides is not None:
            key = self.key[rows].copy()
            for name, column in replaced.items():
                key += (column - self.codes[name][rows]) * self.strides[name]
        else:
            codes = [replaced[name] if name in replaced else self.codes[name][rows] for name in KEY_COLUMNS]
            key = hash_codes(codes).view(np.int64)
        found = np.asarray(self.index.get_indexer(key), dtype=np.int64)
        found[missing] = -1
        return found


def _factor_mask(column: pd.Series, values: list[str] | tuple[str, ...]) -> np.ndarray:
    """Rows of a string column equal to one of ``values`` (missing: False), via codes."""
    codes, uniques = pd.factorize(column)
    hit = np.append(np.asarray(pd.Index(uniques).isin(list(values)), dtype=bool), False)
    return hit[codes]


def _additive(frame: pd.DataFrame, keys: _Keys) -> np.ndarray:
    """Cells that are counts and so add up: values in unit count, and event counts."""
    statistic_events = keys.mask("statistic", ["events"])
    counted = keys.mask("statistic", ["value"]) & _factor_mask(frame["unit"], ["count"])
    return (statistic_events | counted) & frame["value"].notna().to_numpy()


def _period_parents(keys: _Keys, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For additive rows: child rows, their parent period's code and kind's code (the next
    coarser kind the metric has: month -> quarter -> half_year -> year)."""
    kind_names = keys.uniques["period_kind"]
    n_kinds = len(kind_names)
    metric = keys.codes["metric"][rows]
    kind = keys.codes["period_kind"][rows]
    pairs = np.unique(metric * n_kinds + kind)
    present: dict[int, set[str]] = {}
    for pair in pairs:
        present.setdefault(int(pair // n_kinds), set()).add(str(kind_names[pair % n_kinds]))
    parent_of_pair = np.full(int(metric.max() + 1) * n_kinds if len(rows) else 0, -1, dtype=np.int64)
    for metric_code, kinds in present.items():
        for position, name in enumerate(PERIOD_KINDS):
            coarser = next((k for k in PERIOD_KINDS[position + 1 :] if k in kinds), None)
            if name in kinds and coarser:
                parent_of_pair[metric_code * n_kinds + keys.code("period_kind", name)] = keys.code(
                    "period_kind", coarser
                )
    parent_kind = parent_of_pair[metric * n_kinds + kind] if len(rows) else np.zeros(0, dtype=np.int64)
    keep = parent_kind >= 0
    child, parent_kind = rows[keep], parent_kind[keep]
    period_names = keys.uniques["period"]
    combos, inverse = np.unique(keys.codes["period"][child] * n_kinds + parent_kind, return_inverse=True)
    parent_names = []
    for combo in combos:
        try:
            ref = parse_period(str(period_names[combo // n_kinds]))
            parent_names.append(ref.parent(str(kind_names[combo % n_kinds])).code)
        except PeriodError:
            parent_names.append("")
    parent_period = keys.recode("period", np.asarray(parent_names, dtype=object))[inverse.reshape(-1)]
    return child, parent_period, parent_kind


def _equations(frame: pd.DataFrame, keys: _Keys, organisations: pd.DataFrame | None) -> Constraints:
    """Every additive relation of the table, kept as an equality when the parts add up to
    the total, as total >= parts when they fall short, dropped when they exceed it."""
    additive = _additive(frame, keys)
    # Each relation is kept as it is found, as int32 and only where its total exists: all of
    # them held at once as int64 were 1.3 GB on the large benchmark, and a fresh process pays
    # for the most memory it ever holds (bench.memory_touch).
    most_equations = (len(DIMENSIONS) + 4) * len(frame)  # at most one per relation and cell
    position = np.int32 if most_equations < 2**31 else np.int64
    eq_parts: list[np.ndarray] = []  # per term: its equation
    cell_parts: list[np.ndarray] = []  # per term: its cell (a part)
    parent_of_eq: list[np.ndarray] = []  # per equation: its total's cell
    offset = 0

    def relate(rows: np.ndarray, replace: dict[str, str | float | np.ndarray]) -> None:
        nonlocal offset
        if not len(rows):
            return
        parents = keys.related(rows, replace)
        ok = parents >= 0
        ids, uniques = pd.factorize(parents[ok])
        eq_parts.append((ids + offset).astype(position))
        cell_parts.append(rows[ok].astype(position))
        parent_of_eq.append(np.asarray(uniques).astype(position))
        offset += len(uniques)

    for name in DIMENSIONS:
        rows = np.flatnonzero(additive & (keys.codes[name] != keys.code(name, TOTAL)))
        relate(rows, {name: TOTAL})
    org_rows = np.flatnonzero(additive & keys.mask("level", ["organisation"]))
    upper = np.flatnonzero(additive & keys.mask("level", ["stakeholder_type", "country"]))
    if organisations is not None:
        lookup = organisations.set_index("organisation")
        entities = keys.uniques["entity"]
        for column, parent_level in (("stakeholder_type", "stakeholder_type"), ("org_country", "country")):
            names = pd.Series(entities).map(lookup[column].astype(str)).fillna("").to_numpy(dtype=object)
            parent_entity = keys.recode("entity", names)[keys.codes["entity"][org_rows]]
            has = names[keys.codes["entity"][org_rows]] != ""
            relate(org_rows[has], {"level": parent_level, "entity": parent_entity[has]})
        upper_rows = upper
    else:
        upper_rows = np.concatenate([org_rows, upper])
    relate(upper_rows, {"level": "alliance", "entity": ALLIANCE})
    del org_rows, upper, upper_rows
    child, parent_period, parent_kind = _period_parents(keys, np.flatnonzero(additive))
    relate(child, {"period": parent_period, "period_kind": parent_kind})
    del child, parent_period, parent_kind

    values = frame["value"].to_numpy(dtype=float)
    if offset == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Constraints(frame, empty, empty, np.zeros(0), np.zeros(0, dtype=bool))
    child_eq = np.concatenate(eq_parts)
    child_cell = np.concatenate(cell_parts)
    parents_all = np.concatenate(parent_of_eq)
    for parts in (eq_parts, cell_parts, parent_of_eq):
        parts.clear()
    parts_sum = np.bincount(child_eq, weights=values[child_cell], minlength=offset)
    totals = values[parents_all]
    tolerance = 1e-9 * np.maximum(1.0, np.abs(totals))
    equal = np.abs(totals - parts_sum) <= tolerance
    keep_eq = equal | (parts_sum < totals)
    new_id = np.cumsum(keep_eq) - 1
    keep_terms = keep_eq[child_eq]
    eq = np.concatenate([new_id[child_eq[keep_terms]], new_id[np.flatnonzero(keep_eq)]])
    cell = np.concatenate([child_cell[keep_terms], parents_all[keep_eq]])
    coef = np.concatenate([-np.ones(int(keep_terms.sum())), np.ones(int(keep_eq.sum()))])
    return Constraints(frame, eq.astype(np.int64), cell.astype(np.int64), coef, equal[keep_eq])


# ---------------------------------------------------------------------------------------
# Protection


def _primary(frame: pd.DataFrame, policy: DisclosurePolicy) -> tuple[np.ndarray, np.ndarray]:
    """Mask of counts of a class below its threshold, and each row's threshold."""
    codes, classes = pd.factorize(frame["disclosure_class"])  # the rules per class, by code
    rules = [policy.classes.get(str(k)) for k in classes]
    threshold = np.array([r.threshold if r else 0 for r in rules] + [0], dtype=float)[codes]
    show_zero = np.array([r.show_zero if r else True for r in rules] + [True], dtype=bool)[codes]
    values = frame["value"].to_numpy(dtype=float)
    counted = _factor_mask(frame["statistic"], ["value", "events"])
    with np.errstate(invalid="ignore"):
        small = counted & (threshold > 0) & (values < threshold) & ((values > 0) | ~show_zero)
    return small & ~np.isnan(values), threshold


def _margins(eqs: Constraints, values: np.ndarray, policy: DisclosurePolicy) -> np.ndarray:
    """How far each cell's range must reach beyond its value (hub.disclosure_audit's
    requirement): a partner hidden with it should be at least that large."""
    protection = eqs.cells["protection"].to_numpy(dtype=object)
    threshold = eqs.cells["threshold"].to_numpy(dtype=float)
    rule = policy.protection
    with np.errstate(invalid="ignore"):
        primary = np.maximum(threshold - values, values * rule.primary_lower_fraction)
        dominance = np.maximum(values * rule.dominance_fraction, 1.0)
    margin = np.where(protection == "primary", primary, np.where(protection == "dominance", dominance, 0.0))
    return np.nan_to_num(margin)


def _smallest(
    eq: np.ndarray, cell: np.ndarray, values: np.ndarray, need: np.ndarray | None = None
) -> np.ndarray:
    """In each equation of ``eq``, one of its ``cell``s: the smallest non-zero one covering
    ``need`` if any, else the largest (ties: the first term); deterministic."""
    value = values[cell]
    short = np.zeros(len(cell), dtype=bool) if need is None else value < need
    key = np.where(short, -value, value)
    order = np.lexsort((key, value == 0, short, eq))  # stable: ties keep term order
    first = np.ones(len(order), dtype=bool)
    first[1:] = eq[order][1:] != eq[order][:-1]
    return np.unique(cell[order[first]])


class _Pattern:
    """The suppression pattern while secondary cells are chosen, with what the choice needs
    kept up to date incrementally: per equation, how many unknown cells it has and the sum
    of their margins; the terms of each cell and of each equation (CSR-style), so that
    hiding a few cells touches only their equations instead of the whole table."""

    def __init__(
        self, eqs: Constraints, reason: np.ndarray, known: np.ndarray, values: np.ndarray, margin: np.ndarray
    ) -> None:
        self.eq, self.cell = eqs.eq, eqs.cell
        self.reason, self.known, self.values, self.margin = reason, known, values, margin
        self.open = reason == ""
        self.eligible = self.open & ~known & ~np.isnan(values)
        unknown = (~self.open & ~known)[self.cell]
        self.count = np.bincount(self.eq, weights=unknown.astype(float), minlength=eqs.equations)
        self.need = np.bincount(
            self.eq, weights=np.where(unknown, margin[self.cell], 0.0), minlength=eqs.equations
        )
        self.by_cell, self.cell_ptr, self.by_eq, self.eq_ptr = eqs.index
        self.dirty = np.arange(eqs.equations)  # equations whose unknown count changed

    def unknown(self) -> np.ndarray:
        return ~self.open & ~self.known

    def terms_of_cells(self, cells: np.ndarray) -> np.ndarray:
        return _spans(self.cell_ptr, self.by_cell, cells)

    def terms_of_equations(self, eqs: np.ndarray) -> np.ndarray:
        return _spans(self.eq_ptr, self.by_eq, eqs)

    def hide(self, cells: np.ndarray) -> int:
        """Mark publishable ``cells`` secondary; how many were newly hidden."""
        fresh = np.unique(cells[self.eligible[cells]])
        if not len(fresh):
            return 0
        self.reason[fresh] = "secondary"
        self.open[fresh] = False
        self.eligible[fresh] = False
        terms = self.terms_of_cells(fresh)
        touched = self.eq[terms]
        self.count += np.bincount(touched, minlength=len(self.count))
        self.need += np.bincount(touched, weights=self.margin[self.cell[terms]], minlength=len(self.need))
        self.dirty = np.union1d(self.dirty, touched)
        return len(fresh)

    def singletons(self) -> None:
        """Cheap secondary suppression, to a fixed point: in every equation with exactly one
        unknown cell, hide the smallest other publishable cell at least as large as the
        unknown cell's margin (else the largest; non-zero ones first). Only equations whose
        count changed are looked at again: the others either got their partner already or
        have no publishable cell left (publishable cells only ever become fewer)."""
        while len(self.dirty):
            single = self.dirty[self.count[self.dirty] == 1]
            self.dirty = np.zeros(0, dtype=np.int64)
            terms = self.terms_of_equations(single)
            terms = terms[self.eligible[self.cell[terms]]]
            if not len(terms):
                return
            eq = self.eq[terms]
            self.hide(_smallest(eq, self.cell[terms], self.values, self.need[eq]))

    def hide_near(self, failing: np.ndarray) -> bool:
        """Hide, for each failing cell, the smallest publishable cell of each equation holding
        it; a failing cell whose equations have none looks one equation further (through
        unknown cells), and so on across its component, each on its own: one cell stuck
        far from anything publishable no longer waits for the others' neighbourhoods to
        run out (a round per cell hidden; measured in docs/benchmarks.md). False when nothing
        is left to hide near any of them."""
        cells = len(self.reason)  # a (failing cell, cell) pair is one key: owner * cells + cell
        unknown = self.unknown()
        owner, frontier = np.arange(len(failing), dtype=np.int64), np.asarray(failing, dtype=np.int64)
        seen_cells = owner * cells + frontier
        seen_eqs = np.zeros(0, dtype=np.int64)
        picked: list[np.ndarray] = []
        while len(owner):
            terms = self.terms_of_cells(frontier)
            by = np.repeat(owner, self.cell_ptr[frontier + 1] - self.cell_ptr[frontier])
            eq_keys = np.setdiff1d(
                np.unique(by * len(self.count) + self.eq[terms]), seen_eqs, assume_unique=True
            )
            seen_eqs = np.union1d(seen_eqs, eq_keys)
            eq_owner, eqs = np.divmod(eq_keys, len(self.count))
            terms = self.terms_of_equations(eqs)
            by = np.repeat(eq_owner, self.eq_ptr[eqs + 1] - self.eq_ptr[eqs])
            reached = self.cell[terms]
            publishable = self.eligible[reached]
            if publishable.any():
                served_eqs = np.unique(self.eq[terms[publishable]])
                pick = self.terms_of_equations(served_eqs)
                pick = pick[self.eligible[self.cell[pick]]]
                picked.append(_smallest(self.eq[pick], self.cell[pick], self.values))
            waiting = ~np.isin(by, np.unique(by[publishable])) & unknown[reached]
            keys = np.setdiff1d(
                np.unique(by[waiting] * cells + reached[waiting]), seen_cells, assume_unique=True
            )
            seen_cells = np.union1d(seen_cells, keys)
            owner, frontier = np.divmod(keys, cells)
        return bool(picked) and self.hide(np.concatenate(picked)) > 0


def _secure(
    eqs: Constraints, reason: np.ndarray, known: np.ndarray, values: np.ndarray, policy: DisclosurePolicy
) -> None:
    """Heuristic, then the linear-programme check of every verified cell; while one fails,
    hide more cells around it (_Pattern.hide_near) and check again."""
    cells = eqs.cells
    in_equation = np.zeros(len(reason), dtype=bool)
    in_equation[eqs.cell] = True
    pattern = _Pattern(eqs, reason, known, values, _margins(eqs, values, policy))
    protection = cells["protection"].to_numpy(dtype=object)
    targets: np.ndarray | None = None
    for _ in range(1000):
        pattern.singletons()
        known_values = np.where(pattern.open | known, values, np.nan)
        if targets is None:
            sensitive = (
                np.isin(protection, list(policy.protection.verify)) & ~pattern.open & ~known & in_equation
            )
            targets = np.flatnonzero(sensitive)
        # Hiding more cells only widens every range (a witness stays one, with the newly
        # hidden cells at their values), so a target once protected stays protected: each
        # round re-checks only the targets that failed the one before.
        failing, _, _ = short_targets(eqs, known_values, targets, policy, exact=False)
        if not failing.any():
            return
        targets = targets[failing]
        if pattern.hide_near(targets):
            continue
        # nothing left to hide around the failing cells: decide them exactly
        exact = check_cells(eqs, known_values, targets, policy)
        if exact.empty:  # no witness found at first, but each is protected
            return
        first = exact.iloc[0]
        raise DisclosureError(
            f"cannot protect {first['metric']} {first['period']} {first['level']} {first['entity']}: "
            f"range [{first['lower']:g}, {first['upper']:g}] after hiding every cell that could help"
        )
    raise DisclosureError("secondary suppression did not converge")


# what _known_from reads of the previous release's table (a caller need read no more)
KNOWN_VALUE_COLUMNS = (*KEY_COLUMNS, "value", "suppressed")


def _known_from(previous: pd.DataFrame | None, frame: pd.DataFrame) -> np.ndarray:
    """Cells an earlier release published with the value they have now: public knowledge."""
    known = np.zeros(len(frame), dtype=bool)
    if previous is None or previous.empty:
        return known
    positions = key_positions(previous, frame)
    found = positions >= 0
    prev_values = np.full(len(frame), np.nan)
    prev_shown = np.zeros(len(frame), dtype=bool)
    prev_values[found] = previous["value"].to_numpy(dtype=float)[positions[found]]
    prev_shown[found] = ~previous["suppressed"].to_numpy(dtype=bool)[positions[found]]
    values = frame["value"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        same = np.abs(prev_values - values) <= 1e-9 * np.maximum(1.0, np.abs(values))
    return found & prev_shown & same


def _derived(frame: pd.DataFrame, keys: _Keys, reason: np.ndarray, policy: DisclosurePolicy) -> None:
    """Hide shares whose parts are hidden, and shares and percentiles of distributions with
    a hidden event count (their numerator, denominator and event count would reveal it)."""
    metric = keys.codes["metric"]
    value_rows = keys.mask("statistic", ["value"])
    for code, parts in policy.ratio_parts.items():
        rows = np.flatnonzero((metric == keys.code("metric", code)) & value_rows & (reason == ""))
        for part in parts:
            related = keys.related(rows, {"metric": part})
            hidden = (related >= 0) & (reason[np.maximum(related, 0)] != "")
            reason[rows[hidden]] = "secondary"
    events = np.flatnonzero(keys.mask("statistic", ["events"]))
    if not len(events):
        return
    events_total = keys.related(events, {"time_bucket": TOTAL, "param": NO_PARAM})
    hidden_totals = np.unique(events_total[(reason[events] != "") & (events_total >= 0)])
    shares = np.flatnonzero(keys.mask("statistic", ["share_within", "percentile"]) & (reason == ""))
    share_total = keys.related(shares, {"statistic": "events", "time_bucket": TOTAL, "param": NO_PARAM})
    reason[shares[np.isin(share_total, hidden_totals) & (share_total >= 0)]] = "secondary"


def _year_earlier(code: str) -> str:
    try:
        ref = parse_period(code)
        return PeriodRef(ref.year - 1, ref.kind, ref.number).code
    except PeriodError:
        return ""


def _blank_yoy(frame: pd.DataFrame, keys: _Keys, reason: np.ndarray) -> None:
    """A published change on a hidden (or absent) year-earlier cell would reveal it."""
    rows = np.flatnonzero(frame["yoy_change"].notna().to_numpy() & (reason == ""))
    if not len(rows):
        return
    names = np.asarray([_year_earlier(str(p)) for p in keys.uniques["period"]], dtype=object)
    earlier = keys.recode("period", names)[keys.codes["period"][rows]]
    related = keys.related(rows, {"period": earlier})
    leak = (related < 0) | (reason[np.maximum(related, 0)] != "")
    column = frame.columns.get_loc("yoy_change")
    frame.iloc[rows[leak], column] = np.nan


def _display(frame: pd.DataFrame, reason: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """What a reader sees in each cell: the number, "x" when hidden, "<10" for a small count;
    numbers are written for the shown cells only (half the table is hidden)."""
    values = frame["value"].to_numpy(dtype=float)
    integer = _factor_mask(frame["unit"], ["count"]) | _factor_mask(
        frame["statistic"], ["events", "reporters"]
    )
    integer &= _factor_mask(frame["statistic"], ["value", "events", "reporters"])
    shown = np.full(len(frame), "", dtype=object)
    hidden = reason != ""
    has = ~np.isnan(values) & ~hidden
    counts = has & integer
    shown[counts] = pd.Series(np.round(values[counts])).astype("int64").astype(str).to_numpy(dtype=object)
    others = has & ~integer
    shown[others] = pd.Series(values[others]).map("{:.10g}".format).to_numpy(dtype=object)
    shown[hidden] = HIDDEN
    primary = reason == "primary"
    shown[primary] = pd.Series(threshold[primary]).map(lambda t: f"<{int(t)}").to_numpy(dtype=object)
    return shown


def build_constraints(
    protected: pd.DataFrame,
    policy: DisclosurePolicy,
    *,
    organisations: pd.DataFrame | None = None,
    previous: pd.DataFrame | None = None,
) -> Constraints:
    """The linear constraints of a protected table, for hub.disclosure_audit.audit."""
    frame = protected.reset_index(drop=True)
    keys = _Keys(frame)
    eqs = _equations(frame, keys, organisations)
    _, threshold = _primary(frame, policy)
    reason = frame["suppression_reason"].to_numpy(dtype=object)
    cells = _cells(frame, reason, _primary(frame, policy)[0], threshold)
    cells["known"] = _known_from(previous, frame)
    return Constraints(cells, eqs.eq, eqs.cell, eqs.coef, eqs.equality)


def _cells(frame: pd.DataFrame, reason: np.ndarray, small: np.ndarray, threshold: np.ndarray) -> pd.DataFrame:
    """The cells of the constraints, with the protection each needs: "primary" for every
    small count of people (also one hidden as not_named: an organisation's own small count
    must not be narrowed either), "dominance" for dominance cells, "" for the rest."""
    cells = frame.loc[:, [*KEY_COLUMNS, "value", "disclosure_class"]].copy()
    cells["suppression_reason"] = reason
    cells["protection"] = np.where(small, "primary", np.where(reason == "dominance", "dominance", ""))
    cells["threshold"] = threshold
    return cells


def protect(
    indicators: pd.DataFrame,
    policy: DisclosurePolicy,
    *,
    named_organisations: set[str],
    previous: pd.DataFrame | None = None,
    organisations: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The indicator table plus DISCLOSURE_COLUMNS: which cells may be published.

    ``previous``: the previous release's protected table (KNOWN_VALUE_COLUMNS suffice); its
    published unchanged cells are public knowledge. ``organisations``: hub.figures.load_organisations (stakeholder type
    and country of each organisation), for the organisation -> type / country equations;
    without it organisations are tied to the alliance total only.
    """
    frame = conform(indicators).reset_index(drop=True)
    missing = [name for name in KEY_COLUMNS if frame[name].isna().any()]
    if missing:
        raise DisclosureError(f"the indicator table has rows without {missing} (a total is {TOTAL!r})")
    keys = _Keys(frame)
    n = len(frame)
    reason = np.full(n, "", dtype=object)

    def mark(mask: np.ndarray, why: str) -> None:
        reason[mask & (reason == "")] = why

    named = list(named_organisations)
    organisation = keys.mask("level", ["organisation"])
    aggregate = ~organisation
    mark(organisation & ~keys.mask("entity", named), "not_named")
    small, threshold = _primary(frame, policy)
    mark(small, "primary")
    largest = frame["largest_share"].to_numpy(dtype=float)
    second = np.nan_to_num(frame["second_share"].to_numpy(dtype=float))
    largest_named = _factor_mask(frame["largest_org"], named)
    consent = largest_named & _factor_mask(frame["second_org"], [*named, ""])  # "": no second one
    with np.errstate(invalid="ignore"):
        dominant = (
            aggregate & ~np.isnan(largest) & ((largest + second) * 100 > policy.dominance.k + 1e-9) & ~consent
        )
    single = (
        aggregate
        & (frame["coverage"].to_numpy() == 1)
        & keys.mask("statistic", ["value", "events", "share_within", "percentile"])
        & ~largest_named
    )
    mark(dominant | single, "dominance")
    distribution = keys.mask("statistic", ["share_within", "percentile"])
    events = frame["event_count"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        mark(distribution & ~(events >= policy.min_events), "min_events")

    known = _known_from(previous, frame)
    eqs = _equations(frame, keys, organisations)
    eqs = Constraints(_cells(frame, reason, small, threshold), eqs.eq, eqs.cell, eqs.coef, eqs.equality)
    _secure(eqs, reason, known, frame["value"].to_numpy(dtype=float), policy)
    _derived(frame, keys, reason, policy)
    _blank_yoy(frame, keys, reason)

    frame["suppressed"] = reason != ""
    frame["suppression_reason"] = reason
    frame["display"] = _display(frame, reason, threshold)
    return frame.astype(DISCLOSURE_COLUMNS)


PRIVATE_COLUMNS = ("largest_org", "largest_share", "second_org", "second_share")
BLANKED_COLUMNS = ("value", "numerator", "denominator", "lower", "upper", "yoy_change", "event_count")


def public_view(protected: pd.DataFrame) -> pd.DataFrame:
    """What a release may publish: no contributor names or shares, no value of a hidden
    cell, no organisation-level row of an organisation that did not consent to be named."""
    shown = (protected["suppression_reason"] != "not_named").to_numpy(dtype=bool)
    public = protected.drop(columns=list(PRIVATE_COLUMNS))[shown].reset_index(drop=True)
    hidden = public["suppressed"].to_numpy(dtype=bool)
    for name in BLANKED_COLUMNS:  # new columns, not a copy of the table then a masked write
        public[name] = np.where(hidden, np.nan, public[name].to_numpy(dtype=float))
    return public
