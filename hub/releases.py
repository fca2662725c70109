"""Releases: immutable, numbered snapshots of every published table, and their revisions log.

``build_release`` asks a composer for the named tables (built from approved data only), stores
each as Parquet bytes with its SHA-256, and adds a ``revisions`` table against the latest
published release. ``publish_release`` makes it public; from then on nothing about it changes
(checked here, and by database triggers from migration 0005) except a withdrawal with a reason;
correction notices are added beside it. Earlier releases stay readable.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import event, func
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from hub import audit
from hub.approval import approved_submissions, require_reviewer
from hub.catalogue import Catalogue
from hub.errors import HubError, NotFoundError
from hub.figures import KEY_COLUMNS, NO_PARAM, as_key_text, joint_keys, load_observations
from hub.models import Release, ReleaseNotice, ReleaseTable, User
from hub.peers import PEER_KEY
from hub.periods import parse_period
from hub.vocab import DIMENSIONS, TOTAL

Tables = dict[str, pd.DataFrame]
Composer = Callable[[Session, Catalogue], Tables]

REVISIONS = "revisions"  # the table every release adds: its changes against the previous one
TABLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
FROZEN = ("published", "withdrawn")
OBSERVATION_KEY = ("organisation", "metric", "period", *DIMENSIONS)
# The key of each known table (hub.figures shapes); a composer's other tables need their own.
DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "observations": OBSERVATION_KEY,
    "coverage": ("metric", "period", "stakeholder_type"),
    "indicators": KEY_COLUMNS,
    "targets": ("code",),
    "reconciliation": ("flow", "period", "period_kind"),
    "peers": PEER_KEY,
}
# The column holding a table's figure (default "value").
DEFAULT_VALUE_COLUMNS: dict[str, str] = {
    "coverage": "organisations",
    "targets": "latest_value",
    "reconciliation": "total_received",
    "peers": "mean",
}
PROVENANCE = ("submission_id", "version", "supersede_reason")
REVISION_COLUMNS: dict[str, str] = {
    "table": "string",
    "key": "string",  # col=value|... over the table's key; "_T" (total), "" and param -1.0 left out
    "metric": "string",
    "period": "string",
    "change": "string",  # changed | added | removed | suppressed | unsuppressed | table_added | table_removed
    "old_value": "float64",  # NaN where suppressed or absent
    "new_value": "float64",
    "abs_change": "float64",
    "rel_change": "float64",  # (new - old) / old; NaN when old is 0 or either is missing
    "reason": "string",  # restatement | correction | new_data | removed_data | suppression | table
    "detail": "string",  # the restatement reasons the change rests on
}
RELEASE_REASONS = ("restatement", "correction", "new_data", "removed_data", "suppression", "table")


class ReleaseError(HubError):
    """A release cannot be built, published, withdrawn or changed as asked."""


# --- storage ------------------------------------------------------------------------------


def to_parquet(frame: pd.DataFrame) -> bytes:
    """A table as Parquet bytes: typed (string, bool, int64, float64 with NaN survive the trip),
    compressed, and the format exports hand out as is.

    A categorical column of text (the indicator engine's, hub.figures.coded_strings) is
    written as the dictionary it already is, with no string made per row, under the schema
    its text column would have: the file reads back, with pandas or Arrow, exactly as if the
    column had been text (0.45 s instead of 0.6 s for the demo's indicators).
    Minimum and maximum statistics are written for the columns that are not text only: a
    release table is one or a few row groups, so text statistics would let a reader skip
    next to nothing, and computing them was a third of the writing time (0.6 -> 0.4 s for the
    demo's tables)."""
    frame = frame.reset_index(drop=True)
    coded = [name for name, kind in frame.dtypes.items() if isinstance(kind, pd.CategoricalDtype)]
    text = (pd.StringDtype, pd.CategoricalDtype)
    statistics = [str(name) for name, kind in frame.dtypes.items() if not isinstance(kind, text)]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # the schema (Arrow's and pandas') of the table with its categoricals as text: what
    # pandas' own to_parquet would store for that table
    schema = pa.Schema.from_pandas(
        frame.iloc[:0].astype(dict.fromkeys(coded, "string")), preserve_index=False
    )
    buffer = io.BytesIO()
    with pq.ParquetWriter(
        buffer, table.schema, compression="zstd", write_statistics=statistics, store_schema=False
    ) as writer:  # closed (footer written, or the error raised) whatever happens
        writer.write_table(table)
        writer.add_key_value_metadata(
            {**(schema.metadata or {}), b"ARROW:schema": base64.b64encode(schema.serialize().to_pybytes())}
        )
    return buffer.getvalue()


def from_parquet(
    content: bytes, columns: Sequence[str] | None = None, *, categorical: bool = False
) -> pd.DataFrame:
    """A stored table (only ``columns`` when given: unread columns cost nothing to parse);
    with ``categorical`` its text columns come as categoricals, the dictionaries Parquet
    stores (no string made per row: for matching keys)."""
    if not categorical:
        return pd.read_parquet(
            io.BytesIO(content), engine="pyarrow", columns=None if columns is None else list(columns)
        )
    schema = pq.read_schema(io.BytesIO(content))
    names = schema.names if columns is None else list(columns)
    text = [
        name
        for name in names
        if pa.types.is_string(schema.field(name).type) or pa.types.is_large_string(schema.field(name).type)
    ]
    table = pq.read_table(io.BytesIO(content), columns=names, read_dictionary=text or None)
    return table.to_pandas()


def content_checksum(table_checksums: Mapping[str, str]) -> str:
    """SHA-256 over the sorted ``name:sha256`` lines of a release's tables."""
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(table_checksums.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def get_release(session: Session, number: int) -> Release:
    release = session.exec(select(Release).where(Release.number == number)).first()
    if release is None:
        raise NotFoundError(f"no release number {number}")
    return release


def latest_published_release(session: Session) -> Release | None:
    """The newest release the public sees (withdrawn ones excluded)."""
    return session.exec(
        select(Release).where(Release.status == "published").order_by(col(Release.number).desc())
    ).first()


def table_names(session: Session, number: int) -> list[str]:
    release = get_release(session, number)
    query = select(ReleaseTable.name).where(ReleaseTable.release_id == release.id)
    return sorted(session.exec(query))


def read_release_table(
    session: Session,
    number: int,
    name: str,
    *,
    columns: Sequence[str] | None = None,
    categorical: bool = False,
) -> pd.DataFrame:
    """One table of release ``number`` (or its ``columns``; text as categoricals with
    ``categorical``, see :func:`from_parquet`), checked against its stored SHA-256."""
    release = get_release(session, number)
    row = session.exec(
        select(ReleaseTable).where(ReleaseTable.release_id == release.id, ReleaseTable.name == name)
    ).first()
    if row is None:
        names = ", ".join(table_names(session, number)) or "none"
        raise NotFoundError(f"release {number} has no table {name!r} (it has: {names})")
    if hashlib.sha256(row.content).hexdigest() != row.checksum:
        raise ReleaseError(f"table {name!r} of release {number} does not match its checksum")
    return from_parquet(row.content, columns, categorical=categorical)


def read_release(session: Session, number: int, *, with_revisions: bool = False) -> Tables:
    """Every table of release ``number`` (without its revisions log unless asked)."""
    return {
        name: read_release_table(session, number, name)
        for name in table_names(session, number)
        if with_revisions or name != REVISIONS
    }


# --- the default composer -----------------------------------------------------------------


def unprotected_compose(session: Session, catalogue: Catalogue) -> Tables:
    """``observations`` (every approved figure, with provenance) and ``coverage``, WITHOUT
    disclosure control: for tests of the release mechanics and for the secretariat's own checks,
    never for a release that is published (`hub release build` uses hub.publication).

    Where an organisation reported the same figure in two scopes (a file for a quarter and one
    for a month inside it), the most recently stored submission's figure is kept.
    """
    del catalogue  # the composers with indicators use it
    observations = load_observations(session, approved_submissions())
    observations = (
        observations.sort_values("submission_id", kind="stable")
        .drop_duplicates(list(OBSERVATION_KEY), keep="last")
        .sort_values(list(OBSERVATION_KEY), kind="stable")
        .reset_index(drop=True)
    )
    return {"observations": observations, "coverage": coverage_table(observations)}


def coverage_table(observations: pd.DataFrame) -> pd.DataFrame:
    """How many organisations reported a value (not "not available") for each metric, period
    and stakeholder type."""
    reported = observations[observations["value"].notna()]
    frame = (
        reported.groupby(["metric", "period", "period_kind", "stakeholder_type"], observed=True)[
            "organisation"
        ]
        .nunique()
        .reset_index(name="organisations")
    )
    return frame.astype(
        {
            "metric": "string",
            "period": "string",
            "period_kind": "string",
            "stakeholder_type": "string",
            "organisations": "int64",
        }
    )


# --- the revisions log --------------------------------------------------------------------


_NOT_KEY = {TOTAL, "", str(NO_PARAM)}  # totals, empty and "no parameter" are left out of a key's text


def _key_text(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    parts = [
        frame[name].astype("string").map(lambda v, n=name: "" if pd.isna(v) or v in _NOT_KEY else f"{n}={v}")
        for name in key
    ]
    if not parts:
        return pd.Series([""] * len(frame), index=frame.index, dtype="string")
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep="|")
    return joined.str.replace(r"\|+", "|", regex=True).str.strip("|")


def _containers(period: str) -> list[str]:
    """``period`` and every coarser period that contains it (a month: its quarter, half, year)."""
    try:
        ref = parse_period(period)
    except HubError:
        return [period]
    out = []
    for kind in ("month", "quarter", "half_year", "year"):
        try:
            out.append(ref.parent(kind).code)
        except HubError:
            continue
    return out


@dataclass(frozen=True)
class _Source:
    """A change of one approved observation between two releases, to explain aggregates by."""

    organisation: str
    stakeholder_type: str
    org_country: str
    reason: str
    detail: str


def _changed_keys(
    old: pd.DataFrame, new: pd.DataFrame, key: tuple[str, ...], at_old: np.ndarray, at_new: np.ndarray
) -> pd.DataFrame:
    """The key columns, as text, of the changed rows (their positions in ``old`` and ``new``,
    -1 where absent): from the current release's row where there is one, else from the
    previous release's."""
    in_new = at_new >= 0
    order = np.argsort(np.argsort(in_new, kind="stable"), kind="stable")  # from [old rows, new rows]
    columns: dict[str, pd.Series] = {}
    for name in key:
        taken = pd.concat(
            [old[name].iloc[at_old[~in_new]], new[name].iloc[at_new[in_new]]], ignore_index=True
        )
        columns[name] = as_key_text(taken).iloc[order].reset_index(drop=True)
    return pd.DataFrame(columns, copy=False)


def _compare(
    name: str,
    old: pd.DataFrame,
    new: pd.DataFrame,
    key: tuple[str, ...],
    value: str,
) -> pd.DataFrame:
    """Rows whose figure changed, appeared, disappeared or changed suppression (no reasons yet).

    The two tables are matched on one integer per key (hub.figures.joint_keys, keys compared
    as text), and the key columns are written for the changed rows only: an outer merge on
    the 17 text columns of two indicator tables took 3.7 of the demo build's 15-19 s, when
    most rows have not changed."""
    for label, frame in (("previous", old), ("current", new)):
        missing = [c for c in (*key, value) if c not in frame.columns]
        if missing:
            raise ReleaseError(f"table {name!r} of the {label} release lacks columns {', '.join(missing)}")
    old_codes, new_codes = joint_keys(old, new, key)
    for label, frame_codes in (("previous", old_codes), ("current", new_codes)):
        if pd.Index(frame_codes).has_duplicates:
            raise ReleaseError(f"table {name!r} of the {label} release has rows with the same key")
    extra = [c for c in ("suppressed", *PROVENANCE, "stakeholder_type", "org_country") if c not in key]

    def side(frame: pd.DataFrame, frame_codes: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame({"_key": frame_codes, value: frame[value].to_numpy()}, index=frame.index)
        out[value] = pd.to_numeric(out[value], errors="coerce").astype("float64")
        for column in extra:
            if column in frame.columns:
                out[column] = frame[column]
        if "suppressed" not in out.columns:
            out["suppressed"] = False
        out["suppressed"] = out["suppressed"].fillna(False).astype(bool)
        return out.reset_index(drop=True)

    merged = side(old, old_codes).merge(
        side(new, new_codes), on="_key", how="outer", suffixes=("_old", "_new"), indicator=True
    )
    both = merged["_merge"] == "both"
    s_old = merged["suppressed_old"].fillna(False).astype(bool)
    s_new = merged["suppressed_new"].fillna(False).astype(bool)
    v_old, v_new = merged[f"{value}_old"], merged[f"{value}_new"]
    same = (v_old == v_new) | (v_old.isna() & v_new.isna())
    change = pd.Series("", index=merged.index, dtype="string")
    change[merged["_merge"] == "right_only"] = "added"
    change[merged["_merge"] == "left_only"] = "removed"
    change[both & ~s_old & ~s_new & ~same] = "changed"
    change[both & ~s_old & s_new] = "suppressed"
    change[both & s_old & ~s_new] = "unsuppressed"
    # a cell hidden in both releases says nothing, whatever its hidden value did
    merged = merged[change != ""].reset_index(drop=True)
    merged["change"] = change[change != ""].to_numpy()
    # the key of each changed row, as text: the current release's row, else the previous one's
    at_new = pd.Index(new_codes).get_indexer(merged["_key"].to_numpy())
    at_old = pd.Index(old_codes).get_indexer(merged["_key"].to_numpy())
    keys = _changed_keys(old, new, key, at_old, at_new)
    merged = pd.concat([keys, merged.drop(columns=["_key"])], axis=1)
    merged["old_value"] = merged[f"{value}_old"].where(~merged["suppressed_old"].fillna(False).astype(bool))
    merged["new_value"] = merged[f"{value}_new"].where(~merged["suppressed_new"].fillna(False).astype(bool))
    merged["abs_change"] = merged["new_value"] - merged["old_value"]
    merged["rel_change"] = (merged["abs_change"] / merged["old_value"]).where(merged["old_value"] != 0)
    merged["key"] = _key_text(merged, key)
    return merged


def _observation_reasons(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Reasons for changes of a table carrying provenance (submission_id, version, reason)."""
    reasons, details = [], []
    for change, sub_old, sub_new, version, why in zip(
        rows["change"],
        rows.get("submission_id_old", pd.Series(pd.NA, index=rows.index)),
        rows.get("submission_id_new", pd.Series(pd.NA, index=rows.index)),
        rows.get("version_new", pd.Series(pd.NA, index=rows.index)),
        rows.get("supersede_reason_new", pd.Series(pd.NA, index=rows.index)),
        strict=True,
    ):
        restated = not pd.isna(why) and str(why) != "" and not pd.isna(version) and int(version) > 1
        if change in ("suppressed", "unsuppressed"):
            reasons.append("suppression")
            details.append("")
        elif change == "removed":
            reasons.append("removed_data")
            details.append("")
        elif change == "added" or (not pd.isna(sub_old) and not pd.isna(sub_new) and sub_old != sub_new):
            reasons.append("restatement" if restated else "new_data")
            details.append(str(why) if restated else "")
        else:
            reasons.append("correction")  # same submission, another figure: the hub's computation
            details.append("")
    return reasons, details


def _explain_removals(changes: pd.DataFrame, current: pd.DataFrame) -> None:
    """A figure that disappeared because its organisation restated that period without it is
    a restatement (with its reason), not merely removed data."""
    needed = {"organisation", "period", "submission_id", "version", "supersede_reason"}
    if not needed <= set(current.columns) or not {"organisation", "period"} <= set(changes.columns):
        return
    restated = current[(current["version"] > 1) & (current["supersede_reason"].fillna("") != "")]
    reasons = {
        (str(org), str(period)): (int(sid), str(why))
        for org, period, sid, why in zip(
            restated["organisation"],
            restated["period"],
            restated["submission_id"],
            restated["supersede_reason"],
            strict=True,
        )
    }
    for index in changes.index[changes["change"] == "removed"]:
        found = reasons.get((str(changes.at[index, "organisation"]), str(changes.at[index, "period"])))
        if found is not None and found[0] != changes.at[index, "submission_id_old"]:
            changes.at[index, "reason"] = "restatement"
            changes.at[index, "detail"] = found[1]


def _sources(obs_changes: pd.DataFrame) -> dict[tuple[str, str], list[_Source]]:
    """Observation changes indexed by (metric, period or any period containing it)."""
    index: dict[tuple[str, str], list[_Source]] = defaultdict(list)
    for row in obs_changes.itertuples(index=False):
        record = row._asdict()
        organisation = str(record.get("organisation", ""))
        kind = record.get("stakeholder_type_new")
        kind = record.get("stakeholder_type_old") if pd.isna(kind) else kind
        country = record.get("org_country_new")
        country = record.get("org_country_old") if pd.isna(country) else country
        source = _Source(
            organisation,
            "" if pd.isna(kind) else str(kind),
            "" if pd.isna(country) else str(country),
            str(record["reason"]),
            str(record["detail"]),
        )
        for period in _containers(str(record["period"])):
            index[(str(record["metric"]), period)].append(source)
    return index


_PRIORITY = ("restatement", "new_data", "removed_data")


def _aggregate_reasons(
    rows: pd.DataFrame,
    key: tuple[str, ...],
    sources: dict[tuple[str, str], list[_Source]],
    related: Mapping[str, tuple[str, ...]],
) -> tuple[list[str], list[str]]:
    """Reasons for an aggregated figure: the changes of the approved observations it rests on
    (same metric or one it is computed from, same period or one inside it, same entity)."""
    reasons, details = [], []
    for record in rows.to_dict("records"):
        if record["change"] in ("suppressed", "unsuppressed"):
            reasons.append("suppression")
            details.append("")
            continue
        metric, period = str(record.get("metric", "")), str(record.get("period", ""))
        found = [s for m in (metric, *related.get(metric, ())) for s in sources.get((m, period), [])]
        level, entity = record.get("level"), record.get("entity")
        if level == "organisation":
            found = [s for s in found if s.organisation == entity]
        elif level == "stakeholder_type":
            found = [s for s in found if s.stakeholder_type == entity]
        elif level == "country":
            found = [s for s in found if s.org_country == entity]
        for column in ("organisation", "stakeholder_type"):
            if column in key:
                found = [s for s in found if getattr(s, column) == record[column]]
        kinds = {s.reason for s in found}
        reason = next((r for r in _PRIORITY if r in kinds), "correction")
        reasons.append(reason)
        why = sorted({s.detail for s in found if s.reason == "restatement" and s.detail})
        details.append("; ".join(why)[:1000] if reason == "restatement" else "")
    return reasons, details


def revisions(
    previous: Mapping[str, pd.DataFrame],
    current: Mapping[str, pd.DataFrame],
    keys: Mapping[str, tuple[str, ...]],
    *,
    value_columns: Mapping[str, str] | None = None,
    related: Mapping[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """Every published figure that changed between two releases, and why.

    Per table: a figure whose value changed, that appeared or disappeared, or whose suppression
    changed. A suppressed value is never shown (a cell hidden in both releases is not listed).
    Why: a table with provenance (``observations``) says it per row: ``restatement`` (a newer
    approved version with a reason, shown in ``detail``), ``new_data`` (a first version, a new
    period), ``removed_data``, ``correction`` (same submission, another figure: the hub's
    computation changed). An aggregated figure takes the strongest reason among the observation
    changes it rests on (restatement > new data > removed data), matched by metric (or the
    metrics ``related`` says it is computed from), by period (its own or one inside it) and by
    entity (organisation, stakeholder type or country of the reporting organisation); with none
    it is a ``correction``. ``suppression`` when only the suppression changed.
    """
    values = {**DEFAULT_VALUE_COLUMNS, **(value_columns or {})}
    related = related or {}
    pieces: list[pd.DataFrame] = []
    changes: dict[str, pd.DataFrame] = {}
    names = sorted(set(previous) | set(current) - {REVISIONS})
    for name in names:
        if name == REVISIONS:
            continue
        if name not in previous or name not in current:
            pieces.append(
                pd.DataFrame(
                    {
                        "table": [name],
                        "key": [""],
                        "change": ["table_added" if name in current else "table_removed"],
                        "reason": ["table"],
                    }
                )
            )
            continue
        if name not in keys:
            raise ReleaseError(f"no key for table {name!r}: say which columns identify its rows")
        changes[name] = _compare(
            name, previous[name], current[name], tuple(keys[name]), values.get(name, "value")
        )
    # tables with provenance first: they explain the aggregated ones
    with_provenance = [n for n, frame in changes.items() if "submission_id_new" in frame.columns]
    sources: dict[tuple[str, str], list[_Source]] = defaultdict(list)
    for name in with_provenance:
        frame = changes[name]
        frame["reason"], frame["detail"] = _observation_reasons(frame)
        _explain_removals(frame, current[name])
        if {"metric", "period"} <= set(frame.columns):
            for k, v in _sources(frame).items():
                sources[k].extend(v)
    for name, frame in changes.items():
        if name not in with_provenance:
            frame["reason"], frame["detail"] = _aggregate_reasons(frame, tuple(keys[name]), sources, related)
        frame["table"] = name
        pieces.append(frame)
    out = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()
    for column, kind in REVISION_COLUMNS.items():
        if column not in out.columns:
            out[column] = "" if kind == "string" else float("nan")
    out = out.loc[:, list(REVISION_COLUMNS)]
    for column, kind in REVISION_COLUMNS.items():
        if kind == "string":
            out[column] = out[column].astype("string").fillna("")
    return out.astype(REVISION_COLUMNS).sort_values(["table", "key"], kind="stable").reset_index(drop=True)


def related_metrics(catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    """Metric -> the metrics it is computed from (numerator, denominator, weight)."""
    return {
        code: tuple(m for m in (spec.numerator, spec.denominator, spec.weight) if m)
        for code, spec in catalogue.metrics.items()
    }


# --- building and publishing --------------------------------------------------------------


def _check_tables(tables: Tables, keys: Mapping[str, tuple[str, ...]]) -> None:
    if not tables:
        raise ReleaseError("the composer returned no table")
    for name, frame in tables.items():
        if not TABLE_NAME.fullmatch(name) or name == REVISIONS:
            raise ReleaseError(
                f"table name {name!r}: lower-case letters, digits and '_' (and not {REVISIONS!r})"
            )
        if not isinstance(frame, pd.DataFrame):
            raise ReleaseError(f"table {name!r} is not a DataFrame")
        if name not in keys:
            raise ReleaseError(f"no key for table {name!r}: say which columns identify its rows")
        missing = [c for c in keys[name] if c not in frame.columns]
        if missing:
            raise ReleaseError(f"table {name!r} lacks its key columns {', '.join(missing)}")


def _revisions_since(
    session: Session,
    previous: Release,
    tables: Tables,
    digests: Mapping[str, str],
    keys: Mapping[str, tuple[str, ...]],
    value_columns: Mapping[str, str] | None,
    catalogue: Catalogue,
) -> pd.DataFrame:
    """The revisions log against the ``previous`` release, comparing only the tables whose
    stored bytes differ from it: a table identical to the one published has no revision, so
    it is neither read back nor compared (a rebuild with nothing new: 1.0-1.3 s of the demo's
    build)."""
    stored = dict(
        session.exec(
            select(ReleaseTable.name, ReleaseTable.checksum).where(
                ReleaseTable.release_id == previous.id, ReleaseTable.name != REVISIONS
            )
        ).all()
    )
    changed = sorted(name for name in set(stored) | set(tables) if stored.get(name) != digests.get(name))
    return revisions(
        {name: read_release_table(session, previous.number, name) for name in changed if name in stored},
        {name: tables[name] for name in changed if name in tables},
        keys,
        value_columns=value_columns,
        related=related_metrics(catalogue),
    )


def build_release(
    session: Session,
    *,
    catalogue: Catalogue,
    title: str,
    built_by: User,
    compose: Composer,
    keys: Mapping[str, tuple[str, ...]] | None = None,
    value_columns: Mapping[str, str] | None = None,
    notes: str | None = None,
    channel: str = "cli",
) -> Release:
    """Build the next release (status ``built``) from what ``compose`` returns.

    ``compose(session, catalogue)`` returns the named published tables, built from approved
    data only (:func:`hub.approval.approved_submissions`); hub.publication.release_composer
    gives the protected tables a release publishes. ``keys`` names the columns that
    identify a row of each table (:data:`DEFAULT_KEYS` for the known ones). The revisions log
    is computed against the latest published release and stored as the table ``revisions``.
    """
    require_reviewer(built_by)
    title = title.strip()
    if not 1 <= len(title) <= 200:
        raise ReleaseError("a release title has 1 to 200 characters")
    all_keys = {**DEFAULT_KEYS, **(keys or {})}
    # the time the approved data is read as of: a submission approved while the build runs is
    # not in it, and hub.own_figures marks figures against this time
    as_of = datetime.now(UTC)
    tables = compose(session, catalogue)
    _check_tables(tables, all_keys)
    if all(frame.empty for frame in tables.values()):
        raise ReleaseError("there is nothing to release: no approved figures (hub approve) yet")
    contents = {name: to_parquet(frame) for name, frame in tables.items()}
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in contents.items()}
    previous = latest_published_release(session)
    log = (
        _revisions_since(session, previous, tables, digests, all_keys, value_columns, catalogue)
        if previous is not None
        else revisions({}, {}, all_keys)
    )
    number = (session.exec(select(func.max(Release.number))).one() or 0) + 1
    release = Release(
        number=number,
        status="draft",
        title=title,
        notes=notes,
        previous_release_id=None if previous is None else previous.id,
        built_by_id=built_by.id,
    )
    session.add(release)
    session.flush()
    assert release.id is not None
    contents[REVISIONS] = to_parquet(log)
    digests[REVISIONS] = hashlib.sha256(contents[REVISIONS]).hexdigest()
    for name, frame in {**tables, REVISIONS: log}.items():
        session.add(
            ReleaseTable(
                release_id=release.id,
                name=name,
                row_count=len(frame),
                checksum=digests[name],
                content=contents[name],
            )
        )
    release.content_checksum = content_checksum(digests)
    release.status = "built"
    release.built_at = as_of
    session.add(release)
    audit.record(
        session,
        "release.build",
        actor_label=channel,
        actor_user_id=built_by.id,
        object_type="release",
        object_id=number,
        details={
            "tables": {name: len(frame) for name, frame in tables.items()},
            "revisions": len(log),
            "previous": None if previous is None else previous.number,
            "checksum": release.content_checksum,
        },
    )
    session.flush()
    return release


def publish_release(session: Session, number: int, actor: User, *, channel: str = "cli") -> Release:
    """Make a built release public. Refused unless it is ``built`` and its revisions log was
    made against the release that is the latest published one now."""
    require_reviewer(actor)
    release = get_release(session, number)
    if release.status != "built":
        raise ReleaseError(f"release {number} is {release.status}: only a built release can be published")
    latest = latest_published_release(session)
    if (latest.id if latest else None) != release.previous_release_id:
        raise ReleaseError(
            f"release {number} was built against another release than the latest published one "
            f"({latest.number if latest else 'none'}): build a new release"
        )
    release.status = "published"
    release.published_at = datetime.now(UTC)
    release.published_by_id = actor.id
    session.add(release)
    audit.record(
        session,
        "release.publish",
        actor_label=channel,
        actor_user_id=actor.id,
        object_type="release",
        object_id=number,
        details={"checksum": release.content_checksum},
    )
    session.flush()
    return release


def withdraw_release(
    session: Session, number: int, actor: User, reason: str | None, *, channel: str = "cli"
) -> Release:
    """Withdraw a published release (its tables stay readable, flagged withdrawn)."""
    require_reviewer(actor)
    text = (reason or "").strip()
    if not 1 <= len(text) <= 500:
        raise ReleaseError("withdrawing a release needs a reason of 1 to 500 characters")
    release = get_release(session, number)
    if release.status != "published":
        raise ReleaseError(f"release {number} is {release.status}: only a published release can be withdrawn")
    release.status = "withdrawn"
    release.withdrawn_at = datetime.now(UTC)
    release.withdrawn_by_id = actor.id
    release.withdrawn_reason = text
    session.add(release)
    audit.record(
        session,
        "release.withdraw",
        actor_label=channel,
        actor_user_id=actor.id,
        object_type="release",
        object_id=number,
        details={"reason": text},
    )
    session.flush()
    return release


def add_notice(
    session: Session, number: int, actor: User, text: str, *, channel: str = "cli"
) -> ReleaseNotice:
    """Attach a correction notice to a release (published ones too: that is what notices are for)."""
    require_reviewer(actor)
    body = text.strip()
    if not 1 <= len(body) <= 2000:
        raise ReleaseError("a notice has 1 to 2000 characters")
    release = get_release(session, number)
    assert release.id is not None and actor.id is not None
    notice = ReleaseNotice(release_id=release.id, text=body, created_by_id=actor.id)
    session.add(notice)
    audit.record(
        session,
        "release.notice",
        actor_label=channel,
        actor_user_id=actor.id,
        object_type="release",
        object_id=number,
    )
    session.flush()
    return notice


def notices(session: Session, number: int) -> list[ReleaseNotice]:
    release = get_release(session, number)
    query = select(ReleaseNotice).where(ReleaseNotice.release_id == release.id)
    return list(session.exec(query.order_by(col(ReleaseNotice.created_at), col(ReleaseNotice.id))))


@dataclass(frozen=True)
class ReleaseInfo:
    number: int
    status: str
    title: str
    built_at: datetime | None
    published_at: datetime | None
    previous: int | None
    content_checksum: str | None
    tables: dict[str, int]  # name -> rows


def list_releases(session: Session) -> list[ReleaseInfo]:
    releases = list(session.exec(select(Release).order_by(col(Release.number))))
    numbers = {r.id: r.number for r in releases}
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for release_id, name, rows in session.exec(
        select(ReleaseTable.release_id, ReleaseTable.name, ReleaseTable.row_count)
    ):
        counts[release_id][name] = rows
    return [
        ReleaseInfo(
            r.number,
            r.status,
            r.title,
            r.built_at,
            r.published_at,
            numbers.get(r.previous_release_id) if r.previous_release_id else None,
            r.content_checksum,
            dict(sorted(counts.get(r.id or 0, {}).items())),
        )
        for r in releases
    ]


def diff_releases(
    session: Session,
    first: int,
    second: int,
    *,
    catalogue: Catalogue | None = None,
    keys: Mapping[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """The revisions from release ``first`` to release ``second`` (any two, either order)."""
    return revisions(
        read_release(session, first),
        read_release(session, second),
        {**DEFAULT_KEYS, **(keys or {})},
        related=related_metrics(catalogue) if catalogue is not None else None,
    )


# --- the code's own guard: a published release is never changed through the ORM -----------


def _committed(obj: Any, attribute: str) -> Any:
    history = sa_inspect(obj).attrs[attribute].history
    return history.deleted[0] if history.deleted else getattr(obj, attribute)


@event.listens_for(OrmSession, "before_flush")
def _refuse_changes_to_published(session: OrmSession, _context: object, _instances: object) -> None:
    """Refuse, before any SQL is sent, a change to a published release or to its tables."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Release) and _committed(obj, "status") in FROZEN:
            if obj in session.deleted:
                raise ReleaseError(
                    f"release {obj.number} is {_committed(obj, 'status')}: it is never deleted"
                )
            allowed = {"status", "withdrawn_at", "withdrawn_by_id", "withdrawn_reason"}
            changed = {a.key for a in sa_inspect(obj).attrs if a.history.has_changes()}
            if _committed(obj, "status") == "withdrawn" or changed - allowed or obj.status not in FROZEN:
                raise ReleaseError(f"release {obj.number} is published: it can only be withdrawn")
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, ReleaseTable):
            release = session.get(Release, obj.release_id)
            if release is not None and _committed(release, "status") in FROZEN:
                raise ReleaseError(f"release {release.number} is published: its tables never change")
