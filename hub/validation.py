"""Rules every observation obeys before it is stored, whoever sends it.

Each rule returns readable problems instead of raising at the first, so a submitter sees
everything wrong with a file at once. The ingest layer adds format-level rules on top.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from hub.catalogue import Catalogue
from hub.countries import is_country_code
from hub.periods import PeriodRef
from hub.vocab import TOTAL

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_SOURCE_LABEL = 300  # observation.source_label


@dataclass(frozen=True)
class ObservationIn:
    """One figure as a submitter gives it, before storage."""

    metric: str
    period: PeriodRef
    value: float | None
    dims: dict[str, str] = field(default_factory=dict)
    is_provisional: bool = False
    is_estimated: bool = False
    source_label: str | None = None

    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return (self.metric, self.period.code, tuple(sorted(self.dims.items())))


def dimension_value_problem(
    catalogue: Catalogue, dimension: str, value: str, org_codes: set[str]
) -> str | None:
    """Why ``value`` is not valid for ``dimension``, or None when it is."""
    spec = catalogue.dimensions[dimension]
    valid: bool
    if spec.values == "iso3166":
        valid = is_country_code(value)
    elif spec.values == "categories":
        valid = value in catalogue.categories.categories
    elif spec.values == "buckets":
        valid = catalogue.buckets.accepts(value)  # ttd-v1 or a coarser scheme of its edges
    elif spec.values == "organisations":
        valid = value in org_codes
    elif spec.values == "slug":
        valid = bool(SLUG.match(value))
    else:
        valid = value in spec.allowed
    # never echo the value: it may be personal data the firewall could not recognise
    return None if valid else f"the {dimension} value is not one of the allowed {dimension} values"


def value_problem(unit: str, value: float | None) -> str | None:
    """Why ``value`` does not fit ``unit``, or None when it does (None = not available)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "value is not a number"
    if not math.isfinite(value):
        return "value must be a finite number"
    if value < 0:
        return "value cannot be negative"
    if unit == "count" and value != int(value):
        return "a count must be a whole number"
    if unit == "share" and value > 1:
        return "a share must lie between 0 and 1"
    if unit == "boolean" and value not in (0, 1):
        return "a capability is 0 (no) or 1 (yes)"
    return None


def observation_problems(
    catalogue: Catalogue,
    row: ObservationIn,
    *,
    stakeholder_type: str,
    org_codes: set[str],
    today: date,
) -> list[str]:
    """Every rule ``row`` breaks for an organisation of ``stakeholder_type``."""
    metric = catalogue.metrics.get(row.metric)
    if metric is None:
        return [f"unknown metric {row.metric!r}"]
    problems = []
    if stakeholder_type not in metric.reported_by:
        problems.append(f"metric {row.metric!r} is not reported by a {stakeholder_type}")
    if row.period.kind not in metric.frequencies:
        problems.append(
            f"metric {row.metric!r} is reported by {', '.join(metric.frequencies)}, "
            f"not by {row.period.kind} ({row.period.code})"
        )
    if row.period.start > today:
        problems.append(f"period {row.period.code} is in the future")
    elif row.period.end > today and not row.is_provisional:
        problems.append(f"period {row.period.code} has not ended yet: mark the figure provisional")
    if row.source_label is not None and len(row.source_label) > MAX_SOURCE_LABEL:
        problems.append(f"source label longer than {MAX_SOURCE_LABEL} characters")
    for dimension, value in row.dims.items():
        if dimension not in metric.dimensions:
            problems.append(f"metric {row.metric!r} has no dimension {dimension!r}")
        elif value != TOTAL:
            problem = dimension_value_problem(catalogue, dimension, value, org_codes)
            if problem:
                problems.append(problem)
    if metric.combination == "distribution" and row.dims.get("time_bucket", TOTAL) == TOTAL:
        problems.append(f"metric {row.metric!r} is a distribution: give a time_bucket")
    problem = value_problem(metric.unit, row.value)
    if problem:
        problems.append(problem)
    return problems


def batch_problems(
    catalogue: Catalogue,
    rows: Iterable[ObservationIn],
    *,
    stakeholder_type: str,
    org_codes: set[str],
    today: date,
) -> list[str]:
    """Problems of every row (numbered from 1) and duplicate keys within the batch."""
    problems: list[str] = []
    seen: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
    for number, row in enumerate(rows, start=1):
        for problem in observation_problems(
            catalogue, row, stakeholder_type=stakeholder_type, org_codes=org_codes, today=today
        ):
            problems.append(f"row {number}: {problem}")
        key = row.key()
        if key in seen:
            problems.append(f"row {number}: duplicates row {seen[key]} (same metric, period, dimensions)")
        else:
            seen[key] = number
    return problems
