"""Takedown-time distributions submitted directly, as counts per time bucket.

An organisation that cannot share event records sends, per metric, period and breakdown, the
number of cases in each bucket of the catalogue's scheme (ttd-v1), or of a coarser scheme whose
edges are a subset of ttd-v1's: a coarse bucket is written like a ttd-v1 bucket, by its bounds
(``0-1d``, ``1d-7d``, ``7d+``; see :meth:`hub.catalogue.BucketScheme.bucket`). The hub stores
the buckets as given and never invents finer counts; the bucket code itself tells the indicator
engine which bounds it has. Cases not yet actioned go in ``not_actioned``.

The rules here look at a whole distribution (one group of rows); the per-row rules (known
bucket code, non-negative value) are :mod:`hub.validation`'s. A row whose ``time_bucket`` is
empty is the group's total: it must equal the sum of the buckets and is not stored.
Problems name rows and rules, never a submitted value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from hub.catalogue import NOT_ACTIONED, Bucket, BucketScheme
from hub.validation import ObservationIn

GroupKey = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class DistributionProblem:
    """One broken distribution rule: the file row (0 = whole file), column, rule and fix hint."""

    row: int
    column: str
    rule: str
    hint: str


def group_key(observation: ObservationIn) -> GroupKey:
    """Metric, period and breakdown of a bucket row: the rows of one distribution share it."""
    dims = tuple(sorted((k, v) for k, v in observation.dims.items() if k != "time_bucket"))
    return (observation.metric, observation.period.code, dims)


def _whole(value: float) -> bool:
    return value == int(value)


def distribution_problems(
    scheme: BucketScheme,
    buckets: Sequence[tuple[int, ObservationIn]],
    totals: Sequence[tuple[int, ObservationIn]] = (),
) -> list[DistributionProblem]:
    """Every problem of the distributions in ``buckets`` ((file row, observation) with a
    time_bucket) and of their ``totals`` rows (same key, no time_bucket).

    Rules: each bucket holds a whole count; the timed buckets cover 0 to infinity without gap
    or overlap, the last one open-ended; ``not_actioned`` is optional; a total equals the sum.
    """
    problems: list[DistributionProblem] = []
    groups: dict[GroupKey, list[tuple[int, Bucket, float | None]]] = defaultdict(list)
    for line, observation in buckets:
        bucket = scheme.bucket(observation.dims.get("time_bucket", ""))
        if bucket is None:
            continue  # an unknown code is reported by the row rules
        groups[group_key(observation)].append((line, bucket, observation.value))
        if observation.value is None:
            problems.append(
                DistributionProblem(
                    line, "value", "distribution.value_missing", "give every bucket a count (0 when none)"
                )
            )
        elif observation.value >= 0 and not _whole(observation.value):
            problems.append(
                DistributionProblem(
                    line, "value", "distribution.not_whole", "a bucket holds a whole number of cases"
                )
            )
    for rows in groups.values():
        problems += _coverage_problems(rows)
    for line, total in totals:
        rows = groups.get(group_key(total), [])
        if not rows:
            problems.append(
                DistributionProblem(
                    line,
                    "time_bucket",
                    "dimension.time_bucket_required",
                    f"metric {total.metric} is a distribution: give its buckets, the total row is optional",
                )
            )
            continue
        values = [value for _, _, value in rows]
        if total.value is None or any(v is None for v in values):
            continue
        if sum(v for v in values if v is not None) != total.value:
            problems.append(
                DistributionProblem(
                    line,
                    "value",
                    "distribution.total_mismatch",
                    "the total row must equal the sum of its buckets, not_actioned included",
                )
            )
    return problems


def _coverage_problems(rows: list[tuple[int, Bucket, float | None]]) -> list[DistributionProblem]:
    """Gaps, overlaps and a missing start or open end among one distribution's timed buckets."""
    timed = sorted(
        ((line, b) for line, b, _ in rows if b.code != NOT_ACTIONED),
        key=lambda item: (item[1].lower_minutes or 0, item[0]),
    )
    example = "e.g. 0-1d, 1d-7d, 7d+ and not_actioned, or every ttd-v1 bucket"
    if not timed:
        line = rows[0][0]
        return [
            DistributionProblem(
                line, "time_bucket", "distribution.no_timed_bucket", f"give the timed buckets too ({example})"
            )
        ]
    problems: list[DistributionProblem] = []
    expected: int | None = 0
    previous_line = 0
    for line, bucket in timed:
        lower = bucket.lower_minutes or 0
        if expected is None or lower < expected:
            hint = f"this bucket overlaps the bucket on row {previous_line}: buckets must not overlap ({example})"
            problems.append(DistributionProblem(line, "time_bucket", "distribution.overlap", hint))
        elif lower > expected:
            where = (
                "no bucket starts at 0" if expected == 0 else f"a gap after the bucket on row {previous_line}"
            )
            problems.append(
                DistributionProblem(
                    line,
                    "time_bucket",
                    "distribution.gap",
                    f"the buckets must cover all times without gap: {where} ({example})",
                )
            )
        if expected is not None and lower >= expected:
            expected = bucket.upper_minutes
            previous_line = line
    if expected is not None:
        problems.append(
            DistributionProblem(
                previous_line,
                "time_bucket",
                "distribution.open_end_missing",
                f"the last timed bucket must be open-ended, like 90d+ or 7d+ ({example})",
            )
        )
    return problems
