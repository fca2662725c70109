"""Event-level notice-and-takedown records reduced to aggregate observations, columnar.

A submitter that can share events sends one row per notice or detection (issue 3, section 1):
``case_ref, notice_source, category, content_type, hosting_country, received_at, actioned_at,
outcome``. The hub computes the counts and the takedown-time histogram itself, so every
organisation's distribution uses the same clock and the same buckets (BRIEF section 4). Files
have millions of rows, so the whole path is columnar (pyarrow.compute and numpy, no per-row
Python): timestamps are parsed once, elapsed times bucketed with ``numpy.searchsorted`` on the
catalogue's edges and counted with ``Table.group_by``.

Metric mapping (from the catalogue's definitions in data/catalogue/metrics.yaml):

company (a row is a notice or a detection about one item; the clock starts at ``received_at``)
  co_takedown_time            every row, in the period of ``received_at`` (a cohort), one
                              observation per bucket; dims notice_source, category,
                              content_type, country (= hosting_country).
  co_notices_received         rows whose notice_source is not proactive_detection (a detection
                              is not a notice), in the period of ``received_at``; dims
                              notice_source, category, content_type. No country: the
                              catalogue's country is the notifier's, which events do not carry.
  co_items_actioned           outcome removed or access_disabled, in the period of
                              ``actioned_at`` (the catalogue counts items "at the date of the
                              action"); dims notice_source, category, content_type. No country:
                              the catalogue's country is the uploader's location.
  co_items_detected_proactively  the actioned items with notice_source proactive_detection, in
                              the period of the action; dims category, content_type.
  co_items_actioned_within_24h   the actioned items removed less than 1440 minutes after the
                              clock started, in the period of the action; dims notice_source,
                              category, content_type.
hotline (a row is a notice-and-takedown notice to a host; ``received_at`` is when the notice
was issued, the start of the INHOPE/IWF clock)
  ht_notice_to_removal_time   every row, in the period the notice was issued, per bucket;
                              dims country (= hosting_country), category, content_type.
  ht_notices_sent             every row, in the period the notice was issued; dim country.
The hotline's report counts (ht_reports_*) count reports into the hotline and analysts'
assessments, which notice records do not describe, so they are not derived.

Action-dated counts are complete only when the file holds every case actioned in the period,
including cases received earlier; cohort metrics need only the cases received in the period.

The takedown distribution: outcome removed / access_disabled with ``actioned_at`` goes to the
bucket [edge, next edge) of its elapsed time (a time exactly on an edge goes to the upper
bucket); an empty ``actioned_at`` means not yet actioned (issue 3) and goes to ``not_actioned``,
staying in the totals (censored, never dropped). Cases closed with an ``actioned_at`` but
without removal (not_illegal, not_found, referred) never reach the clock's stop, so they are
left out of the histogram but still counted as notices. Contradictions are errors: removed or
access_disabled without ``actioned_at``, pending with one.

Breakdowns: for every metric the period total (``_T`` in all dimensions) and one-way breakdowns
by each dimension the metric allows (the other dimensions ``_T``); dimensions at ``_T`` are
omitted from ``ObservationIn.dims`` (storage fills them in). A histogram is emitted with every
bucket, zeros included, for each period and dimension value present.

Rows that cannot be reduced are returned as errors (row numbered from 1, the first record after
the header) and left out of every count; the validation layer reports them and rejects the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from hub.catalogue import Catalogue
from hub.periods import PeriodRef
from hub.validation import ObservationIn

COLUMNS = (
    "case_ref",
    "notice_source",
    "category",
    "content_type",
    "hosting_country",
    "received_at",
    "actioned_at",
    "outcome",
)
# Closed-list columns: few distinct values, so they are dictionary-encoded while parsed (less
# memory, and the firewall, the dimension checks and the counts work on the distinct values).
CLOSED_COLUMNS = ("notice_source", "category", "content_type", "hosting_country", "outcome")
OUTCOMES = ("removed", "access_disabled", "not_illegal", "not_found", "referred", "pending")
ACTIONED_OUTCOMES = ("removed", "access_disabled")
PROACTIVE = "proactive_detection"
WITHIN_24H_MINUTES = 1440
MAX_ERRORS_PER_RULE = 1000
_MONTHS_PER = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}
_US_PER_MINUTE = 60_000_000
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_DAY_1990, _DAY_2101 = 7305, 47847  # days from 1970-01-01 to 1990-01-01 and to 2101-01-01
_ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
# Event column -> observation dimension.
_DIM_OF = {
    "notice_source": "notice_source",
    "category": "category",
    "content_type": "content_type",
    "hosting_country": "country",
}


class EventFormatError(ValueError):
    """The file is not an event file at all (missing or unknown columns)."""


@dataclass(frozen=True)
class RowError:
    """One row that cannot be reduced: ``row`` counts records from 1 (header not counted)."""

    row: int
    column: str
    rule: str
    hint: str


@dataclass
class EventReduction:
    """Observations derived from an event file, and the rows that could not be used."""

    observations: list[ObservationIn]
    errors: list[RowError]
    error_counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0


@dataclass(frozen=True)
class _CountSpec:
    metric: str
    dims: tuple[str, ...]  # event columns the metric is broken down by


def _metrics_for(stakeholder_type: str) -> tuple[_CountSpec, _CountSpec, tuple[_CountSpec, ...]]:
    """(the histogram, the cohort count of notices, the action-dated counts) of a stakeholder type."""
    if stakeholder_type == "company":
        dims = ("notice_source", "category", "content_type")
        return (
            _CountSpec("co_takedown_time", (*dims, "hosting_country")),
            _CountSpec("co_notices_received", dims),
            (
                _CountSpec("co_items_actioned", dims),
                _CountSpec("co_items_detected_proactively", ("category", "content_type")),
                _CountSpec("co_items_actioned_within_24h", dims),
            ),
        )
    if stakeholder_type == "hotline":
        return (
            _CountSpec("ht_notice_to_removal_time", ("hosting_country", "category", "content_type")),
            _CountSpec("ht_notices_sent", ("hosting_country",)),
            (),
        )
    raise ValueError(f"the catalogue defines no event-derived metrics for a {stakeholder_type}")


def read_events_csv(source: Path | bytes) -> pa.Table:
    """Read an event CSV (a path or its bytes) with every column as text: no type or NA
    inference ('NA' is Namibia)."""
    header = _header(source)
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        raise EventFormatError(
            f"event columns must be exactly {', '.join(COLUMNS)} "
            f"(missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'})"
        )
    convert = convert_options(COLUMNS)
    read = pacsv.ReadOptions(block_size=16 << 20)
    stream = source if isinstance(source, Path) else pa.BufferReader(source)
    return pacsv.read_csv(stream, read_options=read, convert_options=convert)


TIME_COLUMNS = ("received_at", "actioned_at")


def convert_options(header: Sequence[str], *, parse_times: bool = False) -> pacsv.ConvertOptions:
    """Every column as text, no NA inference ('NA' is Namibia); closed-list event columns as
    dictionaries of text (the same values, decoded by ``cast(pa.string())``).

    ``parse_times``: the time columns as UTC timestamps, an empty cell as null, parsed by the
    reader itself (the parser :func:`cast_times` uses): no text column of 25 bytes a row to
    build and cast afterwards. The read then fails on any cell that is not such a time; the
    caller reads the file again as text to report it. Text columns stay text: an empty cell
    is "" (text can never be null), never null.
    """

    def kind(name: str) -> pa.DataType:
        if parse_times and name in TIME_COLUMNS:
            return _TIMESTAMP
        return pa.dictionary(pa.int32(), pa.string()) if name in CLOSED_COLUMNS else pa.string()

    return pacsv.ConvertOptions(
        column_types={name: kind(name) for name in header},
        null_values=[""] if parse_times else [],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


def _header(source: Path | bytes) -> list[str]:
    if isinstance(source, bytes):
        first = source.split(b"\n", 1)[0]
    else:
        with source.open("rb") as handle:
            first = handle.readline()
    text = first.decode("utf-8-sig").rstrip("\r\n")
    return [name.strip('"') for name in text.split(",")] if text else []


def cast_times(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The column as UTC timestamps (empty cells null) when every other cell casts; else None.

    The pipeline casts the time columns once and hands the result to the firewall (a cell that
    casts is a time, nothing personal) and to :func:`reduce_events`.
    """
    try:
        return pc.cast(blank_to_null(column), _TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _parse_times(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO 8601 with a UTC offset -> UTC timestamps; empty or unparseable -> null.

    The fast path is one cast. Only when it fails is a regex applied, and then the few values
    the regex passes but the calendar rejects (2025-02-30) are found by bisection.
    """
    text = blank_to_null(column)
    try:
        return pc.cast(text, _TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    shaped = pc.match_substring_regex(text, _ISO_WITH_OFFSET)
    text = pc.if_else(shaped, text, pa.scalar(None, pa.string())).combine_chunks()
    bad = _unparseable(text, 0)
    if bad:
        mask = np.zeros(len(text), dtype=bool)
        mask[bad] = True
        text = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), text)
    return pa.chunked_array([pc.cast(text, _TIMESTAMP)])


def blank_to_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Empty strings as nulls without copying the text: a validity bitmap over the same buffers."""
    chunks = []
    for chunk in column.chunks:
        blank = pc.equal(chunk, "")
        if not pc.any(blank).as_py():
            chunks.append(chunk)
        elif chunk.offset == 0 and chunk.null_count == 0 and chunk.type == pa.string():
            valid = pc.invert(blank)
            buffers = [valid.buffers()[1], *chunk.buffers()[1:]]
            chunks.append(pa.Array.from_buffers(chunk.type, len(chunk), buffers))
        else:
            chunks.append(pc.if_else(blank, pa.scalar(None, chunk.type), chunk))
    return pa.chunked_array(chunks, type=column.type)


def _unparseable(values: pa.Array, offset: int) -> list[int]:
    """Positions of values that do not cast to a timestamp, by bisection (few are expected)."""
    try:
        pc.cast(values, _TIMESTAMP)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(values) == 1:
            return [offset]
    half = len(values) // 2
    return _unparseable(values.slice(0, half), offset) + _unparseable(values.slice(half), offset + half)


def _micros(times: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """UTC microseconds since the epoch (0 where null) and the mask of present values.

    The timestamps are viewed chunk by chunk and copied once into one array, the null slots
    then zeroed: casting, filling and converting cost three passes over 80 MB per 10M rows.
    """
    if times.type != _TIMESTAMP:
        times = pc.cast(times, _TIMESTAMP)
    parts = [
        np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=len(chunk), offset=chunk.offset * 8)
        for chunk in times.chunks
        if len(chunk)
    ]
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if times.null_count == 0:
        return values, np.ones(len(values), dtype=bool)
    present = np.asarray(pc.is_valid(times).to_numpy(zero_copy_only=False), dtype=bool)
    values[~present] = 0
    return values, present


def _bucket_of(elapsed: npt.NDArray[np.int64], edges: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
    """``searchsorted(edges, elapsed, side="right")`` for a few sorted edges: the number of edges
    at or below each value, one vectorised comparison per edge (a binary search per element
    is several times slower over millions of rows)."""
    bucket = np.zeros(len(elapsed), dtype=np.int8)
    for edge in edges:
        bucket += elapsed >= edge
    return bucket


def _period_keys(micros: npt.NDArray[np.int64], kind: str) -> npt.NDArray[np.int32]:
    """Index of the period (months since 1970-01 divided by the kind's length) of each time.

    One integer division to the UTC day and a lookup in a table of the days the data spans:
    numpy's datetime64[M] conversion does calendar arithmetic per element and is much slower.
    Days are clipped to 1990-2100 (times outside are errors) to bound the table.
    """
    if len(micros) == 0:
        return np.zeros(0, dtype=np.int32)
    days = micros // (1440 * _US_PER_MINUTE)
    np.maximum(days, _DAY_1990, out=days)
    np.minimum(days, _DAY_2101, out=days)
    low, high = int(days.min()), int(days.max())
    months = np.arange(low, high + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    table = (months // _MONTHS_PER[kind]).astype(np.int32)
    return table[days - low]


def _period_of(key: int, kind: str) -> PeriodRef:
    first = key * _MONTHS_PER[kind]
    return PeriodRef(1970 + first // 12, kind, (first % 12) // _MONTHS_PER[kind] + 1)


def reduce_events(
    table: pa.Table,
    *,
    catalogue: Catalogue,
    stakeholder_type: str,
    period_kind: str = "month",
    now: datetime | None = None,
    times: Mapping[str, pa.ChunkedArray] | None = None,
) -> EventReduction:
    """Counts and takedown-time histograms per period and dimension from event records.

    ``now`` (default: the current time) rejects times in the future. ``times``: time columns
    already cast by :func:`cast_times` or read as timestamps (``convert_options(parse_times=True)``),
    by name, so they are not parsed twice; a column of ``table`` may then be that timestamp column.
    """
    histogram, notices, action_specs = _metrics_for(stakeholder_type)
    if period_kind not in _MONTHS_PER:
        raise ValueError(f"unknown period kind {period_kind!r}")
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise EventFormatError(f"missing event columns: {', '.join(missing)}")
    n = table.num_rows
    now_us = int((now or datetime.now(UTC)).timestamp() * 1_000_000)

    parsed = {name: (times or {}).get(name) for name in ("received_at", "actioned_at")}
    # "is None", not "or": an empty column (a file of no record) is falsy
    received, has_received = _micros(
        _parse_times(table["received_at"]) if parsed["received_at"] is None else parsed["received_at"]
    )
    actioned, has_actioned = _micros(
        _parse_times(table["actioned_at"]) if parsed["actioned_at"] is None else parsed["actioned_at"]
    )
    if parsed["actioned_at"] is not None:  # cast_times: a cell is null exactly when it is empty
        actioned_text = has_actioned
    else:
        actioned_text = pc.not_equal(table["actioned_at"], "").to_numpy(zero_copy_only=False)
    # One hash pass over the outcome column; the masks come from its small dictionary.
    outcome_codes, outcome_values = _encode(table["outcome"])
    vocabulary = np.asarray(outcome_values.to_pylist(), dtype=object)
    known_outcome = np.isin(vocabulary, OUTCOMES)[outcome_codes]
    removed = np.isin(vocabulary, ACTIONED_OUTCOMES)[outcome_codes]
    pending = (vocabulary == "pending")[outcome_codes]
    low_us, high_us = _epoch_us(1990), _epoch_us(2101)

    rules: list[tuple[str, str, str, npt.NDArray[np.bool_]]] = [
        (
            "received_at",
            "invalid_time",
            "give an ISO 8601 time with a UTC offset, e.g. 2025-03-01T09:30:00+01:00",
            ~has_received,
        ),
        (
            "actioned_at",
            "invalid_time",
            "give an ISO 8601 time with a UTC offset, or leave empty if not yet actioned",
            actioned_text & ~has_actioned,
        ),
        (
            "received_at",
            "time_out_of_range",
            f"times must lie between 1990 and now ({datetime.fromtimestamp(now_us / 1e6, UTC):%Y-%m-%dT%H:%MZ})",
            has_received & ((received < low_us) | (received >= high_us) | (received > now_us)),
        ),
        (
            "actioned_at",
            "time_out_of_range",
            "times must lie between 1990 and now",
            has_actioned & ((actioned >= high_us) | (actioned > now_us)),
        ),
        (
            "actioned_at",
            "actioned_before_received",
            "actioned_at must not be earlier than received_at (check the UTC offsets)",
            has_received & has_actioned & (actioned < received),
        ),
        ("outcome", "unknown_value", f"outcome must be one of {', '.join(OUTCOMES)}", ~known_outcome),
        (
            "actioned_at",
            "outcome_needs_time",
            "an item removed or disabled needs the time of the action in actioned_at",
            removed & ~actioned_text,
        ),
        (
            "actioned_at",
            "pending_has_time",
            "a pending case has no actioned_at; give its final outcome or leave actioned_at empty",
            pending & actioned_text,
        ),
    ]
    bad = np.zeros(n, dtype=bool)
    errors: list[RowError] = []
    error_counts: dict[str, int] = {}
    for column, rule, hint, mask in rules:
        rows = np.flatnonzero(mask)
        if len(rows):
            error_counts[f"{column}:{rule}"] = len(rows)
            errors.extend(RowError(int(r) + 1, column, rule, hint) for r in rows[:MAX_ERRORS_PER_RULE])
            bad |= mask
    errors.sort(key=lambda e: (e.row, e.column))
    good = ~bad

    # Histogram position: 0..len(edges) timed buckets, len(edges)+1 not_actioned, -1 outside.
    scheme = catalogue.buckets
    edges_us = np.asarray(scheme.edges_minutes, dtype=np.int64) * _US_PER_MINUTE
    elapsed = actioned - received
    bucket = _bucket_of(elapsed, edges_us)
    bucket[~removed] = -1
    bucket[~actioned_text] = len(edges_us) + 1

    rec_period = _period_keys(received, period_kind)
    keep: slice | npt.NDArray[np.intp] = slice(None) if good.all() else np.flatnonzero(good)
    cohort_cols = [*dict.fromkeys([*histogram.dims, *notices.dims])]
    encoded = {column: _encode(table[column]) for column in _DIM_OF if column in cohort_cols}
    fine = _count_groups(
        [
            ("period", rec_period[keep], None),
            ("bucket", bucket[keep], None),
            *((c, encoded[c][0][keep], encoded[c][1]) for c in cohort_cols),
        ]
    )

    observations: list[ObservationIn] = []
    timed = fine.filter(pc.greater_equal(fine["bucket"], 0))
    observations += _histogram(timed, histogram.metric, histogram.dims, scheme.codes, period_kind)
    source = fine
    if stakeholder_type == "company":  # a proactive detection is not a notice
        source = fine.filter(pc.not_equal(fine["notice_source"], PROACTIVE))
    observations += _counts(source, notices, period_kind, _all_periods(fine))

    if action_specs:
        done = np.flatnonzero(good & removed & actioned_text)
        act_cols = ["notice_source", "category", "content_type"]
        act = _count_groups(
            [
                ("period", _period_keys(actioned[done], period_kind), None),
                ("fast", (elapsed[done] < WITHIN_24H_MINUTES * _US_PER_MINUTE).astype(np.int8), None),
                *((c, encoded[c][0][done], encoded[c][1]) for c in act_cols),
            ]
        )
        act = act.set_column(1, "fast", pc.cast(act["fast"], pa.bool_()))
        periods = sorted(set(_all_periods(fine)) | set(_all_periods(act)))
        actioned_spec, proactive_spec, fast_spec = action_specs
        observations += _counts(act, actioned_spec, period_kind, periods)
        observations += _counts(
            act.filter(pc.equal(act["notice_source"], PROACTIVE)), proactive_spec, period_kind, periods
        )
        observations += _counts(act.filter(act["fast"]), fast_spec, period_kind, periods)
    return EventReduction(observations, errors, error_counts, n)


def _encode(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int32], pa.Array]:
    """Dictionary codes of a text column (one hash pass) and the dictionary of its values."""
    encoded = pa.table({"c": pc.dictionary_encode(column)}).unify_dictionaries()["c"]
    if encoded.num_chunks == 0:
        return np.zeros(0, dtype=np.int32), pa.array([], pa.string())
    parts = [np.asarray(chunk.indices.to_numpy(zero_copy_only=False)) for chunk in encoded.chunks]
    return np.concatenate(parts).astype(np.int32, copy=False), encoded.chunks[0].dictionary


def _count_groups(columns: list[tuple[str, npt.NDArray[np.integer], pa.Array | None]]) -> pa.Table:
    """Rows per distinct combination of ``columns`` (name, integer codes, labels of the codes).

    The codes are packed into one int64 key, so the count is a ``numpy.bincount`` when the key
    space is small (the usual case: few periods, buckets and dimension values) and a one-column
    ``Table.group_by`` otherwise; only the distinct combinations are unpacked into a table.
    """
    lows = [int(codes.min()) if len(codes) else 0 for _, codes, _ in columns]
    sizes = [
        int(codes.max()) - low + 1 if len(codes) else 1
        for (_, codes, _), low in zip(columns, lows, strict=True)
    ]
    space = 1
    for size in sizes:
        space *= size
    if space >= 1 << 62:  # adversarial cardinality: hash the columns themselves
        table = pa.table({name: pa.array(codes) for name, codes, _ in columns})
        keys = [name for name, _, _ in columns]
        out = table.group_by(keys).aggregate([(keys[0], "count")])
        parts = [out[name].to_numpy() for name in keys]
        counts = out.column(len(keys)).to_numpy()
    else:
        key = np.zeros(len(columns[0][1]), dtype=np.int64)
        for (_, codes, _), low, size in zip(columns, lows, sizes, strict=True):
            key *= size
            np.add(key, codes, out=key, casting="unsafe")  # no 80 MB temporaries per column
            key -= low
        if space <= max(1 << 22, len(key)):
            dense = np.bincount(key, minlength=space)
            unique = np.flatnonzero(dense)
            counts = dense[unique]
        else:
            out = pa.table({"k": key}).group_by("k").aggregate([("k", "count")])
            unique, counts = out["k"].to_numpy(), out["k_count"].to_numpy()
        parts = []
        for low, size in zip(reversed(lows), reversed(sizes), strict=True):
            parts.append(unique % size + low)
            unique = unique // size
        parts.reverse()
    result: dict[str, pa.Array] = {}
    for (name, codes, labels), part in zip(columns, parts, strict=True):
        result[name] = (  # labels as a dictionary over the codes: no strings copied per group
            pa.DictionaryArray.from_arrays(pa.array(part.astype(np.int32)), labels)
            if labels is not None
            else pa.array(part.astype(codes.dtype))
        )
    result["n"] = pa.array(np.asarray(counts, dtype=np.int64))
    return pa.table(result)


def _epoch_us(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000


def _all_periods(table: pa.Table) -> list[int]:
    return [int(p) for p in pc.unique(table["period"]).to_pylist()]


def _sum_by(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Sum the ``n`` column over everything but ``keys`` (the small pre-aggregated table)."""
    out = table.group_by(list(keys)).aggregate([("n", "sum")])
    return out.rename_columns([*out.column_names[:-1], "n"])


def _dims(event_columns: Iterable[str], values: Iterable[str]) -> dict[str, str]:
    return {_DIM_OF[c]: v for c, v in zip(event_columns, values, strict=True)}


def _counts(table: pa.Table, spec: _CountSpec, kind: str, periods: Iterable[int]) -> list[ObservationIn]:
    """Period totals (zero where a period has none) and one-way breakdowns of a count metric."""
    result: list[ObservationIn] = []
    totals = dict.fromkeys(periods, 0)
    for row in _sum_by(table, ["period"]).to_pylist():
        totals[int(row["period"])] = int(row["n"])
    for key, value in sorted(totals.items()):
        result.append(ObservationIn(spec.metric, _period_of(key, kind), float(value)))
    for column in spec.dims:
        for row in _sum_by(table, ["period", column]).sort_by([("period", "ascending")]).to_pylist():
            result.append(
                ObservationIn(
                    spec.metric,
                    _period_of(int(row["period"]), kind),
                    float(row["n"]),
                    _dims([column], [row[column]]),
                )
            )
    return result


def _histogram(
    table: pa.Table, metric: str, dims: Sequence[str], codes: Sequence[str], kind: str
) -> list[ObservationIn]:
    """Every bucket (zeros included) per period, in total and per value of each dimension."""
    result: list[ObservationIn] = []
    for group in ([], *([c] for c in dims)):
        summed = _sum_by(table, ["period", *group, "bucket"]).to_pydict()
        cells: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        keys = zip(summed["period"], *(summed[c] for c in group), strict=True)
        for key, bucket, n in zip(keys, summed["bucket"], summed["n"], strict=True):
            counts = cells.setdefault((int(key[0]), tuple(key[1:])), [0] * len(codes))
            counts[int(bucket)] += int(n)
        for (period, values), counts in sorted(cells.items()):
            ref = _period_of(period, kind)
            base = _dims(group, values)
            for code, n in zip(codes, counts, strict=True):
                result.append(ObservationIn(metric, ref, float(n), {**base, "time_bucket": code}))
    return result
