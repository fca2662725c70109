"""The indicator table: the one shape every computed figure of the hub takes.

The indicator engine (hub.indicators) produces it, target progress (hub.progress) and
reconciliation read it, disclosure control (hub.disclosure) flags its cells, and a release
stores it. Keeping the columns in one place is what lets those modules be written and tested
apart. One row is one figure: a statistic of a metric, for a period, at one level of
aggregation, for one combination of breakdown dimensions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Select, or_, select, true
from sqlmodel import Session, col

from hub.models import MetricDefinition, Observation, Organisation, Period, Submission
from hub.vocab import DIMENSIONS, TOTAL

# Levels of aggregation, from the finest. An organisation rolls up to its stakeholder type
# and to its own country; both roll up to the alliance.
LEVELS = ("organisation", "stakeholder_type", "country", "alliance")
ALLIANCE = "ALL"  # the entity of the alliance level

# What a row's value is.
# value: the metric's own value (a sum, a ratio of sums, a weighted mean, a latest value,
#   or for capabilities the share of reporters that have it)
# events: a count of events of a distribution metric (one row per time_bucket, one with
#   time_bucket "_T" for all events, not_actioned included)
# share_within: share of events actioned within ``param`` hours (exact on bucket edges)
# percentile: the ``param`` quantile (0.5 = median, 0.9 = p90) in hours, with its bounds
# reporters: how many organisations reported the metric (participation)
STATISTICS = ("value", "events", "share_within", "percentile", "reporters")

# Why a published cell shows no value (hub.disclosure). "" = published as is.
SUPPRESSION_REASONS = (
    "primary",  # a count of people below the class threshold
    "secondary",  # hidden so that a primary cell cannot be derived from totals
    "dominance",  # two largest contributors over the limit, not both consenting
    "min_events",  # a percentile or share resting on too few events
    "not_named",  # an organisation-level figure of an organisation not consenting to be named
)

KEY_COLUMNS = ("metric", "period", "period_kind", "level", "entity", *DIMENSIONS, "statistic", "param")

COLUMN_TYPES: dict[str, str] = {
    "metric": "string",  # catalogue code
    "period": "string",  # hub.periods code: 2024, 2024-H1, 2024-Q1, 2024-03
    "period_kind": "string",  # month | quarter | half_year | year
    "level": "string",  # one of LEVELS
    "entity": "string",  # organisation code, stakeholder type, ISO alpha-2, or ALLIANCE
    **dict.fromkeys(DIMENSIONS, "string"),  # breakdown, TOTAL ("_T") = not broken down
    "statistic": "string",  # one of STATISTICS
    "param": "float64",  # hours for share_within, quantile for percentile; -1.0 otherwise
    "value": "float64",  # NaN = not available
    "lower": "float64",  # percentile: lower bound of the interpolation error; NaN otherwise
    "upper": "float64",  # percentile: upper bound
    "numerator": "float64",  # ratio_of_sums, share_within, capability share: the parts
    "denominator": "float64",
    "coverage": "int64",  # organisations the figure rests on
    "event_count": "float64",  # distribution statistics: events it rests on; NaN otherwise
    "largest_org": "string",  # code of the largest contributor, the only one included ("" if none)
    "largest_share": "float64",  # its share of a sum (1.0 for a single one; NaN where not a sum)
    "second_org": "string",
    "second_share": "float64",
    "yoy_change": "float64",  # relative change on the same key a year earlier; NaN if none
    "unit": "string",  # catalogue unit
    "disclosure_class": "string",  # catalogue class: people, items, time, share, capability
    "provisional": "bool",  # rests on at least one provisional or estimated observation
}
NO_PARAM = -1.0
INDICATOR_COLUMNS = tuple(COLUMN_TYPES)

# Columns disclosure control adds to a published table.
DISCLOSURE_COLUMNS: dict[str, str] = {
    "suppressed": "bool",
    "suppression_reason": "string",  # one of SUPPRESSION_REASONS, "" when published
    "display": "string",  # what a reader sees: the rounded value, "<10", or "x" (hidden)
}


def empty_indicator_frame() -> pd.DataFrame:
    """An indicator table with no rows and the right column types."""
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in COLUMN_TYPES.items()})


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the indicator columns, in order and typed; missing optional
    columns are filled (NaN, "", TOTAL for dimensions, NO_PARAM for param). A text column
    that is a categorical (compute_indicators' own, :func:`coded_strings`) stays one. No
    column is copied (pandas copies on write): a deep copy of the large benchmark's 4.8 M
    cells took 0.9 s."""
    out = frame.copy(deep=False)
    for name, kind in COLUMN_TYPES.items():
        if name in out.columns:
            continue
        if name in DIMENSIONS:
            out[name] = TOTAL
        elif name == "param":
            out[name] = NO_PARAM
        elif kind == "string":
            out[name] = ""
        elif kind == "bool":
            out[name] = False
        elif kind == "int64":
            out[name] = 0
        else:
            out[name] = float("nan")
    return out.loc[:, list(INDICATOR_COLUMNS)].astype(uncoded_types(out, COLUMN_TYPES))


def uncoded_types(frame: pd.DataFrame, types: Mapping[str, str]) -> dict[str, str]:
    """``types`` but for the text columns ``frame`` holds as categoricals (they stay coded)."""
    return {
        name: kind
        for name, kind in types.items()
        if not (kind == "string" and isinstance(frame[name].dtype, pd.CategoricalDtype))
    }


def strings_from_codes(names: Sequence[str], codes: np.ndarray) -> pd.Series:
    """``names[codes]`` as a string column (a code below 0: missing), built by Arrow from a
    dictionary array, with no Python string per row (0.04-0.09 s for 4.8 M rows, against
    0.4 s for ``take`` on a large_string array)."""
    codes = np.asarray(codes)
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    coded = pa.DictionaryArray.from_arrays(indices, pa.array(list(names), type=pa.string()))
    return pd.Series(pd.arrays.ArrowStringArray(coded.cast(pa.large_string())), copy=False)


def coded_strings(names: Sequence[str], codes: np.ndarray) -> pd.Series:
    """``names[codes]`` as a categorical column (a code below 0: missing) whose categories are
    the values present, sorted: it sorts, groups and compares as the text column would."""
    codes = np.asarray(codes)
    present = np.zeros(len(names), dtype=bool)
    present[codes[codes >= 0]] = True
    values, inverse = np.unique(np.asarray(list(names), dtype=object)[present], return_inverse=True)
    recode = np.full(len(names) + 1, -1, dtype=np.int32)
    recode[np.flatnonzero(present)] = inverse
    categories = pd.Index(pd.array(values, dtype="string"))
    return pd.Series(pd.Categorical.from_codes(recode[codes], categories=categories), copy=False)


def ordered_digits(digits: Iterable[np.ndarray], rows: int) -> np.ndarray:
    """One integer per row from non-negative integer digits, the most significant first,
    whose order is the digits' order. Exact (no hash): renumbered, order kept, whenever the
    next digit would overflow 62 bits."""
    key = np.zeros(rows, dtype=np.int64)
    for digit in digits:
        size = int(digit.max()) + 1 if len(digit) else 1
        if (int(key.max()) + 1 if len(key) else 1) * size >= 2**62:
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
        key = key * size + digit
    return key


def as_key_text(column: pd.Series) -> pd.Series:
    """A key column as text, the way keys are compared across releases: a text column as it
    is, another through its distinct values (not row by row); missing stays missing."""
    if isinstance(column.dtype, pd.StringDtype):
        return column
    codes, uniques = pd.factorize(column)
    return strings_from_codes(pd.Series(uniques).astype("string").tolist(), codes).set_axis(column.index)


def _text_codes(column: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Integer codes of a key column (-1: missing) and the text of each code
    (:func:`as_key_text`). A categorical column already is that, with no string per row; a
    text column is dictionary-encoded by Arrow, without a copy of its strings."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        text = pd.Series(column.cat.categories).astype("string")
        return column.cat.codes.to_numpy().astype(np.int64), pa.array(text.array, type=pa.large_string())
    data = pa.array(as_key_text(column).array, type=pa.large_string())
    encoded = pc.dictionary_encode(data)
    if isinstance(encoded, pa.ChunkedArray):  # one dictionary over every chunk
        encoded = encoded.unify_dictionaries()
        dictionary = encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], pa.large_string())
        parts = [chunk.indices.fill_null(-1).to_numpy().astype(np.int64) for chunk in encoded.chunks]
        return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)), dictionary
    return encoded.indices.fill_null(-1).to_numpy().astype(np.int64), encoded.dictionary


def _joint_codes(first: pd.Series, second: pd.Series, *, ordered: bool = False) -> np.ndarray:
    """Codes of one key column over both frames (``first`` then ``second``), equal where the
    text is; missing gets a code of its own (the largest). Each column is coded apart (a
    categorical column is already), then only their distinct values are matched; with
    ``ordered`` the codes sort as the text does (by code point, as pandas sorts strings)."""
    (codes_a, text_a), (codes_b, text_b) = _text_codes(first), _text_codes(second)
    joint = pc.dictionary_encode(pa.concat_arrays([text_a, text_b]))
    mapping = joint.indices.to_numpy().astype(np.int64)
    if ordered:  # UTF-8 bytes sort as their code points
        rank = np.empty(len(joint.dictionary), dtype=np.int64)
        rank[pc.sort_indices(joint.dictionary).to_numpy()] = np.arange(len(joint.dictionary))
        mapping = rank[mapping]
    missing = len(joint.dictionary)
    to_a = np.append(mapping[: len(text_a)], missing)  # code -1 picks the last: missing
    to_b = np.append(mapping[len(text_a) :], missing)
    return np.concatenate([to_a[codes_a], to_b[codes_b]])


def joint_keys(
    first: pd.DataFrame, second: pd.DataFrame, columns: Sequence[str], *, ordered: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """One integer per row of each frame, equal exactly where two rows' ``columns`` are equal
    as text (:func:`as_key_text`), for matching two tables. No column is copied or
    concatenated, and no text is sorted but the distinct values (0.31 s against 0.59-0.66 s
    for a factorisation of their concatenated columns on the demo's two indicator tables,
    warm). With ``ordered`` the integers sort as the rows sorted by ``columns`` as text
    would (missing last)."""
    digits = (_joint_codes(first[name], second[name], ordered=ordered) for name in columns)
    key = ordered_digits(digits, len(first) + len(second))
    return key[: len(first)], key[len(first) :]


# The observations the indicator engine and reconciliation start from: one row per stored
# figure of the submissions they are given, with who reported it.
OBSERVATION_TYPES: dict[str, str] = {
    "metric": "string",
    "period": "string",
    "period_kind": "string",
    "organisation": "string",  # organisation code
    "stakeholder_type": "string",
    "org_country": "string",  # the organisation's own country ("" if none recorded)
    **dict.fromkeys(DIMENSIONS, "string"),
    "value": "float64",  # NaN: reported as "not available"
    "provisional": "bool",  # provisional or estimated
    "submission_id": "int64",
    "version": "int64",
    "supersede_reason": "string",  # "" for a first version
    "channel": "string",
}
OBSERVATION_COLUMNS = tuple(OBSERVATION_TYPES)
# the text columns load_observations gives as categoricals of the text (coded_strings)
OBSERVATION_CODES = (
    "metric",
    "period",
    "period_kind",
    "organisation",
    "stakeholder_type",
    "org_country",
    *DIMENSIONS,
)


def _frame(session: Session, query: Select[*tuple[Any, ...]]) -> pd.DataFrame:
    """The rows of ``query`` as a frame of object columns.

    Read with the driver's own cursor, not SQLAlchemy's result rows: a million observations
    come back several times faster, and the queries here need none of SQLAlchemy's type
    processing (ids, numbers, text; the callers set the types)."""
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    params: Any = (
        tuple(values[name] for name in compiled.positiontup or ()) if compiled.positional else values
    )
    names = [column.name for column in query.selected_columns]
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    # pandas turns the list of tuples into one object block in C (six times faster than a
    # Series per column from zip(*rows) on a million observations)
    return pd.DataFrame(rows, columns=names, dtype=object)


# Joins the dimension columns into one text column in SQL (split again by Arrow): a tenth of
# the Python objects per row, which is where reading a million observations spends its time.
_SEPARATOR = "\x1f"  # a control character: never in a dimension code (the firewall refuses them)


def load_observations(
    session: Session, submission_ids: Select[Any], *, metrics: Iterable[str] | None = None
) -> pd.DataFrame:
    """Every observation of the submissions ``submission_ids`` selects (of ``metrics`` only,
    when given), as a typed frame; its code columns (metric, period, organisation,
    dimensions, ...) are categoricals of the values present (:func:`coded_strings`), as the
    indicator table's: no string per row is made.

    The caller decides which submissions count (for a release: the newest approved version
    of every scope), so this reader never guesses. The observations come as ids and numbers
    with their breakdown in one column; metrics, periods and submissions (a few thousand
    rows) are read apart and joined in memory.
    """
    breakdown: Any = col(getattr(Observation, DIMENSIONS[0]))
    for name in DIMENSIONS[1:]:
        breakdown = breakdown + _SEPARATOR + col(getattr(Observation, name))
    observations = _frame(
        session,
        select(
            col(Observation.submission_id).label("submission_id"),
            col(Observation.metric_id).label("metric_id"),
            col(Observation.period_id).label("period_id"),
            col(Observation.value).label("value"),
            or_(col(Observation.is_provisional), col(Observation.is_estimated)).label("provisional"),
            breakdown.label("breakdown"),
        )
        .where(col(Observation.submission_id).in_(submission_ids))
        .where(
            col(Observation.metric_id).in_(
                select(col(MetricDefinition.id)).where(col(MetricDefinition.code).in_(sorted(set(metrics))))
            )
            if metrics is not None
            else true()
        ),
    )
    submissions = _frame(
        session,
        select(
            col(Submission.id).label("submission_id"),
            col(Organisation.code).label("organisation"),
            col(Organisation.stakeholder_type).label("stakeholder_type"),
            col(Organisation.country).label("org_country"),
            col(Submission.version).label("version"),
            col(Submission.supersede_reason).label("supersede_reason"),
            col(Submission.channel).label("channel"),
        )
        .join(Organisation, col(Organisation.id) == col(Submission.organisation_id))
        .where(col(Submission.id).in_(submission_ids)),
    ).set_index("submission_id")
    periods = _frame(
        session,
        select(
            col(Period.id).label("id"),
            col(Period.code).label("period"),
            col(Period.kind).label("period_kind"),
        ),
    ).set_index("id")
    metric_codes = _frame(
        session, select(col(MetricDefinition.id).label("id"), col(MetricDefinition.code).label("metric"))
    ).set_index("id")

    rows_of: dict[str, np.ndarray] = {}

    def rows(table: pd.DataFrame, key: str) -> np.ndarray:
        """The row of ``table`` each observation's ``key`` points at (looked up once a key)."""
        if key not in rows_of:
            rows_of[key] = table.index.get_indexer(observations[key].to_numpy(dtype=np.int64))
        return rows_of[key]

    def lookup(table: pd.DataFrame, key: str, column: str) -> Any:
        return table[column].to_numpy(dtype=object)[rows(table, key)] if count else []

    def coded(table: pd.DataFrame, key: str, column: str) -> pd.Series:
        """A code column as a categorical: coded on ``table``'s few rows, not per observation."""
        codes, names = pd.factorize(table[column].fillna("").to_numpy(dtype=object))
        return coded_strings([str(name) for name in names], codes[rows(table, key)] if count else codes[:0])

    def dimension(position: int) -> pd.Series:
        encoded = pc.dictionary_encode(
            pc.take(parts, np.arange(position, count * len(DIMENSIONS), len(DIMENSIONS)))
        )
        return coded_strings(encoded.dictionary.to_pylist(), encoded.indices.fill_null(-1).to_numpy())

    count = len(observations)
    parts = (
        pc.split_pattern(pa.array(observations["breakdown"].tolist(), pa.string()), _SEPARATOR).flatten()
        if count
        else pa.array([], pa.string())
    )
    frame = pd.DataFrame(
        {
            "metric": coded(metric_codes, "metric_id", "metric"),
            "period": coded(periods, "period_id", "period"),
            "period_kind": coded(periods, "period_id", "period_kind"),
            "organisation": coded(submissions, "submission_id", "organisation"),
            "stakeholder_type": coded(submissions, "submission_id", "stakeholder_type"),
            "org_country": coded(submissions, "submission_id", "org_country"),  # "" if none recorded
            **{name: dimension(i) for i, name in enumerate(DIMENSIONS)},
            "value": pd.to_numeric(observations["value"], errors="coerce"),
            "provisional": observations["provisional"].astype(bool),
            "submission_id": observations["submission_id"],
            "version": lookup(submissions, "submission_id", "version"),
            "supersede_reason": lookup(submissions, "submission_id", "supersede_reason"),
            "channel": lookup(submissions, "submission_id", "channel"),
        },
        index=pd.RangeIndex(count),
    )
    frame["supersede_reason"] = frame["supersede_reason"].fillna("")
    return frame.loc[:, list(OBSERVATION_COLUMNS)].astype(uncoded_types(frame, OBSERVATION_TYPES))


def load_organisations(session: Session) -> pd.DataFrame:
    """Code, stakeholder type, country, status and naming consent of every organisation."""
    query: Select[*tuple[Any, ...]] = select(
        col(Organisation.code).label("organisation"),
        col(Organisation.stakeholder_type).label("stakeholder_type"),
        col(Organisation.country).label("org_country"),
        col(Organisation.status).label("status"),
        col(Organisation.consents_to_be_named).label("consents_to_be_named"),
    )
    frame = _frame(session, query)
    frame["org_country"] = frame["org_country"].fillna("")
    return frame.astype(
        {
            "organisation": "string",
            "stakeholder_type": "string",
            "org_country": "string",
            "status": "string",
            "consents_to_be_named": "bool",
        }
    )
