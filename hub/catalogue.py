"""The metric catalogue (data/catalogue/*.yaml): loaded, validated and synchronised.

Validation collects every problem, each naming the file, the entry and the reason, so a
reviewer fixes a broken catalogue in one pass (``hub catalogue check``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from sqlmodel import Session, select

from hub import vocab
from hub.categories import CategoryScheme, load_categories
from hub.datafiles import StrictModel, read_yaml
from hub.errors import CatalogueError
from hub.models import MetricDefinition, utcnow

CODE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"


class DimensionSpec(StrictModel):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    values: Literal["iso3166", "categories", "buckets", "organisations", "slug", "list"]
    allowed: tuple[str, ...] = ()


class Clock(StrictModel):
    start: str = Field(min_length=3)
    stop: str = Field(min_length=3)


class MetricSpec(StrictModel):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=3, max_length=200)
    definition: str = Field(min_length=20)
    unit: str
    combination: str
    numerator: str | None = None
    denominator: str | None = None
    weight: str | None = None
    period_rollup: str
    frequencies: tuple[str, ...] = Field(min_length=1)
    dimensions: tuple[str, ...] = ()
    reported_by: tuple[str, ...] = Field(min_length=1)
    direction: str
    disclosure_class: str
    source_framework: str | None = None
    clock: Clock | None = None


class BucketSchemeSpec(StrictModel):
    code: str
    name: str
    description: str
    edges_minutes: tuple[int, ...] = Field(min_length=2)
    required_thresholds_minutes: tuple[int, ...] = ()


NOT_ACTIONED = "not_actioned"
# Thresholds published figures use (IWF 1 h and 2 h, DSA 24 h, 48 h, INHOPE 3 and 6 days, 7 days,
# Cybertip.ca 42 days): always bucket edges, so shares within them are exact, whatever a
# catalogue file says.
PUBLISHED_THRESHOLDS_MINUTES = (60, 120, 1440, 2880, 4320, 8640, 10080, 60480)


def _duration_label(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@dataclass(frozen=True)
class Bucket:
    """One bucket [lower, upper) of elapsed minutes; ``upper`` None is open-ended."""

    code: str
    lower_minutes: int | None  # None only for the not-yet-actioned bucket
    upper_minutes: int | None

    @property
    def is_censored(self) -> bool:
        return self.code == NOT_ACTIONED


@dataclass(frozen=True)
class BucketScheme:
    """The takedown-time buckets every submitter uses, so distributions add up."""

    code: str
    name: str
    description: str
    edges_minutes: tuple[int, ...]
    buckets: tuple[Bucket, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(bucket.code for bucket in self.buckets)

    def bucket_for(self, minutes: float | None) -> Bucket:
        """The bucket of an elapsed time; None (not yet actioned) is the censored bucket."""
        if minutes is None:
            return self.buckets[-1]
        if minutes < 0:
            raise ValueError("elapsed time cannot be negative")
        for bucket in self.buckets[:-1]:
            if bucket.upper_minutes is None or minutes < bucket.upper_minutes:
                return bucket
        raise AssertionError("unreachable: the last timed bucket is open-ended")

    def bucket(self, code: str) -> Bucket | None:
        """The bucket ``code`` names: one of the scheme's own, or a coarser bucket whose bounds
        are edges of the scheme, written the same way (``0-1d``, ``1d-7d``, ``7d+``); else None.

        Coarser buckets let an organisation that only counts "within 24 hours" report exactly
        what it knows; the hub never splits them into finer counts.
        """
        for own in self.buckets:
            if own.code == code:
                return own
        minutes = {_duration_label(edge): edge for edge in self.edges_minutes}
        minutes["0"] = 0
        if code.endswith("+"):
            lower = minutes.get(code[:-1])
            return None if lower is None else Bucket(code, lower, None)
        low, sep, high = code.partition("-")
        lower, upper = minutes.get(low), minutes.get(high)
        if not sep or lower is None or upper is None or upper <= lower or upper == 0:
            return None
        return Bucket(code, lower, upper)

    def accepts(self, code: str) -> bool:
        """True for a bucket of this scheme or of a coarser scheme built from its edges."""
        return self.bucket(code) is not None


def build_bucket_scheme(spec: BucketSchemeSpec) -> BucketScheme:
    edges = spec.edges_minutes
    bounds = [0, *edges]
    buckets = []
    for lower, upper in zip(bounds, [*edges, None], strict=True):
        low = "0" if lower == 0 else _duration_label(lower)
        code = f"{low}-{_duration_label(upper)}" if upper is not None else f"{low}+"
        buckets.append(Bucket(code, lower, upper))
    buckets.append(Bucket(NOT_ACTIONED, None, None))
    return BucketScheme(spec.code, spec.name, spec.description, edges, tuple(buckets))


@dataclass(frozen=True)
class Catalogue:
    """Everything the hub knows about what can be reported."""

    version: str
    metrics: dict[str, MetricSpec]
    dimensions: dict[str, DimensionSpec]
    buckets: BucketScheme
    categories: CategoryScheme

    def metric(self, code: str) -> MetricSpec:
        try:
            return self.metrics[code]
        except KeyError:
            raise CatalogueError([f"unknown metric {code!r}"]) from None

    def metrics_for(self, stakeholder_type: str) -> list[MetricSpec]:
        return [m for m in self.metrics.values() if stakeholder_type in m.reported_by]


def _pydantic_problems(where: str, exc: ValidationError) -> Iterable[str]:
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(entry)"
        yield f"{where}: field {field!r}: {error['msg']}"


def _check_in(problems: list[str], where: str, field: str, value: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        problems.append(f"{where}: unknown {field} {value!r} (expected one of {', '.join(allowed)})")


def _check_metric(
    spec: MetricSpec,
    where: str,
    dimension_codes: set[str],
    problems: list[str],
) -> None:
    _check_in(problems, where, "unit", spec.unit, vocab.UNITS)
    _check_in(problems, where, "combination rule", spec.combination, vocab.COMBINATIONS)
    _check_in(problems, where, "period_rollup", spec.period_rollup, vocab.PERIOD_ROLLUPS)
    _check_in(problems, where, "direction", spec.direction, vocab.DIRECTIONS)
    _check_in(problems, where, "disclosure_class", spec.disclosure_class, vocab.DISCLOSURE_CLASSES)
    for kind in spec.frequencies:
        _check_in(problems, where, "frequency", kind, vocab.PERIOD_KINDS)
    for reporter in spec.reported_by:
        _check_in(problems, where, "stakeholder type", reporter, vocab.STAKEHOLDER_TYPES)
    for dimension in spec.dimensions:
        if dimension not in dimension_codes:
            problems.append(f"{where}: dimension {dimension!r} is not in the dimension list")
    if len(set(spec.dimensions)) != len(spec.dimensions):
        problems.append(f"{where}: a dimension is listed twice")
    if spec.combination == "ratio_of_sums" and not (spec.numerator and spec.denominator):
        problems.append(f"{where}: ratio_of_sums needs a numerator and a denominator")
    if spec.combination == "mean_weighted" and not spec.weight:
        problems.append(f"{where}: mean_weighted needs a weight metric")
    if spec.combination == "distribution":
        if spec.unit != "hours":
            problems.append(f"{where}: a distribution metric must have unit hours")
        if "time_bucket" not in spec.dimensions:
            problems.append(f"{where}: a distribution metric needs the time_bucket dimension")
    if spec.unit == "hours" and spec.clock is None:
        problems.append(f"{where}: a time metric needs a clock (start and stop)")
    if spec.unit == "share" and spec.combination not in {"ratio_of_sums", "latest"}:
        problems.append(f"{where}: a share combines only as ratio_of_sums or latest")
    if spec.unit == "boolean" and spec.combination != "share_of_reporters":
        problems.append(f"{where}: a boolean (capability) combines only as share_of_reporters")


def _check_references(metrics: dict[str, MetricSpec], where_of: dict[str, str], problems: list[str]) -> None:
    for code, spec in metrics.items():
        for role in ("numerator", "denominator", "weight"):
            ref = getattr(spec, role)
            if ref is None:
                continue
            target = metrics.get(ref)
            if target is None:
                problems.append(f"{where_of[code]}: {role} {ref!r} is not a metric of the catalogue")
            elif target.unit != "count":
                problems.append(f"{where_of[code]}: {role} {ref!r} must be a count metric")


def _check_buckets(spec: BucketSchemeSpec, where: str, problems: list[str]) -> None:
    edges = spec.edges_minutes
    if any(b <= a for a, b in itertools.pairwise(edges)) or edges[0] <= 0:
        problems.append(f"{where}: edges_minutes must be positive and strictly increasing")
    for threshold in sorted({*PUBLISHED_THRESHOLDS_MINUTES, *spec.required_thresholds_minutes}):
        if threshold not in edges:
            problems.append(
                f"{where}: published threshold {_duration_label(threshold)} must be a bucket edge"
            )


def load_catalogue_uncached(data_dir: Path) -> Catalogue:
    """Read and validate the catalogue under ``data_dir``; raise with every problem found."""
    problems: list[str] = []
    folder = data_dir / "catalogue"
    dims_path, buckets_path, metrics_path = (
        folder / "dimensions.yaml",
        folder / "buckets.yaml",
        folder / "metrics.yaml",
    )

    dimensions: dict[str, DimensionSpec] = {}
    raw_dims = read_yaml(dims_path, problems) or {}
    for index, entry in enumerate(raw_dims.get("dimensions", []) if isinstance(raw_dims, dict) else []):
        where = f"{dims_path}: dimension #{index + 1}"
        try:
            dim = DimensionSpec.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(where, exc))
            continue
        where = f"{dims_path}: dimension {dim.code!r}"
        if dim.code in dimensions:
            problems.append(f"{where}: duplicate code")
        if dim.code not in vocab.DIMENSIONS:
            problems.append(f"{where}: not a column of the observation table")
        if dim.values == "list" and not dim.allowed:
            problems.append(f"{where}: values 'list' needs an 'allowed' list")
        dimensions[dim.code] = dim

    raw_buckets = read_yaml(buckets_path, problems)
    bucket_scheme: BucketScheme | None = None
    try:
        bucket_spec = BucketSchemeSpec.model_validate(raw_buckets)
        _check_buckets(bucket_spec, str(buckets_path), problems)
        bucket_scheme = build_bucket_scheme(bucket_spec)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(str(buckets_path), exc))

    raw_metrics = read_yaml(metrics_path, problems)
    metrics: dict[str, MetricSpec] = {}
    where_of: dict[str, str] = {}
    version = ""
    if isinstance(raw_metrics, dict):
        version = str(raw_metrics.get("catalogue_version") or "")
        if not version:
            problems.append(f"{metrics_path}: catalogue_version is missing")
        entries = raw_metrics.get("metrics") or []
        if not isinstance(entries, list):
            problems.append(f"{metrics_path}: 'metrics' must be a list")
            entries = []
        for index, entry in enumerate(entries):
            code = entry.get("code") if isinstance(entry, dict) else None
            where = f"{metrics_path}: metric {code!r} (entry {index + 1})"
            try:
                spec = MetricSpec.model_validate(entry)
            except ValidationError as exc:
                problems.extend(_pydantic_problems(where, exc))
                continue
            if spec.code in metrics:
                problems.append(f"{where}: duplicate code {spec.code!r}")
                continue
            _check_metric(spec, where, set(dimensions), problems)
            metrics[spec.code] = spec
            where_of[spec.code] = where
        _check_references(metrics, where_of, problems)
    elif raw_metrics is not None:
        problems.append(f"{metrics_path}: expected a mapping with catalogue_version and metrics")

    categories = None
    try:
        categories = load_categories(data_dir)
    except CatalogueError as exc:
        problems.extend(exc.problems)

    if problems or bucket_scheme is None or categories is None:
        raise CatalogueError(problems)
    return Catalogue(version, metrics, dimensions, bucket_scheme, categories)


@lru_cache(maxsize=4)
def load_catalogue(data_dir: Path) -> Catalogue:
    """The validated catalogue of ``data_dir`` (read once per process; it is immutable)."""
    return load_catalogue_uncached(data_dir)


def sync_metric_definitions(session: Session, catalogue: Catalogue) -> dict[str, int]:
    """Insert or update the metric_definition rows from the catalogue; return code -> id."""
    existing = {row.code: row for row in session.exec(select(MetricDefinition))}
    for spec in catalogue.metrics.values():
        values: dict[str, Any] = {
            "name": spec.name,
            "definition": spec.definition,
            "unit": spec.unit,
            "combination": spec.combination,
            "numerator_code": spec.numerator,
            "denominator_code": spec.denominator,
            "weight_code": spec.weight,
            "period_rollup": spec.period_rollup,
            "frequencies": list(spec.frequencies),
            "dimensions": list(spec.dimensions),
            "reported_by": list(spec.reported_by),
            "direction": spec.direction,
            "disclosure_class": spec.disclosure_class,
            "source_framework": spec.source_framework,
            "clock_start": spec.clock.start if spec.clock else None,
            "clock_stop": spec.clock.stop if spec.clock else None,
            "catalogue_version": catalogue.version,
        }
        row = existing.get(spec.code)
        if row is None:
            session.add(MetricDefinition(code=spec.code, **values))
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.add(row)
    session.flush()
    return {row.code: row.id for row in session.exec(select(MetricDefinition)) if row.id}
