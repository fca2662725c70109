"""Alliance targets (data/targets/*.yaml): loaded, validated against the catalogue, stored.

A target says which value a catalogue metric should reach by when, for whom (the alliance,
a country or a stakeholder type), from which baseline. Loading collects every problem, each
naming the file, the target and the reason, as the catalogue does, so ``hub catalogue
check`` shows a broken target file in one pass. Progress statuses are computed by
hub.progress from a release's indicator table (docs/targets.md: the method, worked examples).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from sqlmodel import Session, col, select

from hub import vocab
from hub.catalogue import (
    CODE_PATTERN,
    Catalogue,
    MetricSpec,
    _duration_label,
    _pydantic_problems,
)
from hub.countries import is_country_code
from hub.datafiles import StrictModel, read_yaml
from hub.errors import CatalogueError
from hub.models import MetricDefinition, Period, Target
from hub.periods import PeriodError, PeriodRef, parse_period
from hub.store import ensure_periods, metric_ids

HIGHER, LOWER = "higher_is_better", "lower_is_better"
_OPPOSITE = {HIGHER: LOWER, LOWER: HIGHER}


class Scope(StrictModel):
    """Whose figure the target is judged on."""

    type: str
    value: str | None = None
    # For a country: the reporting organisations' country, or the metric's own country
    # breakdown (e.g. the hosting country of hotline notices, as IWF counts UK-hosted pages).
    basis: Literal["organisation_country", "country_dimension"] | None = None


class Baseline(StrictModel):
    """Where progress is measured from: a published figure, or one observed in the hub's data."""

    model_config = ConfigDict(coerce_numbers_to_str=True)  # period: 2021 is read as "2021"

    period: str
    value: float | None = None
    rule: Literal["observed", "published"]
    source: str | None = None


class Goal(StrictModel):
    """The value to reach and the year to reach it by (a growth target's goal is its rate)."""

    value: float | None = None
    year: int = Field(ge=2000, le=2100)


class Population(StrictModel):
    """The organisations a share or a count is taken over (members of one stakeholder type)."""

    stakeholder_type: str


class GrowthParameters(StrictModel):
    annual_rate: float = Field(gt=-1, le=10)


class ShareThresholdParameters(StrictModel):
    threshold_hours: float = Field(gt=0)


class TimeThresholdParameters(StrictModel):
    statistic: Literal["median", "p90", "mean"]


class AdoptionParameters(StrictModel):
    population: Population
    counted: Literal["organisations", "services"]
    # When organisations are counted: does one with several services need the capability
    # on all of them, or on any?
    organisation_rule: Literal["all_services", "any_service"] | None = None


class ParticipationParameters(StrictModel):
    counted: Literal["metric_value", "reporting_organisations"]
    population: Population | None = None


class _TargetBase(StrictModel):
    kind: str
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=3, max_length=200)
    description: str = Field(min_length=20)
    metric: str
    scope: Scope
    baseline: Baseline
    target: Goal
    direction: str
    parameters: StrictModel

    measure_is_share: ClassVar[bool] = False  # the measure is a share in [0, 1]
    # What the metric must be, in words and as MetricSpec attribute values.
    metric_needs: ClassVar[tuple[str, dict[str, str]]]

    @property
    def baseline_ref(self) -> PeriodRef:
        return parse_period(self.baseline.period)

    @property
    def target_value(self) -> float:
        """The number the target is judged against, in the unit of its measure."""
        if self.target.value is None:
            raise ValueError(f"target {self.code!r} has no value")
        return self.target.value

    def stored_parameters(self) -> dict[str, Any]:
        """Kind parameters plus what has no column of its own (baseline rule and source)."""
        parameters: dict[str, Any] = self.parameters.model_dump(mode="json", exclude_none=True)
        parameters["baseline_rule"] = self.baseline.rule
        if self.baseline.source:
            parameters["baseline_source"] = self.baseline.source
        if self.scope.type == "country":
            parameters["scope_basis"] = self.scope.basis or "organisation_country"
        return parameters

    def problems(self, catalogue: Catalogue) -> Iterator[str]:
        """Every reason this target cannot be tracked against ``catalogue``."""
        metric = catalogue.metrics.get(self.metric)
        if self.direction not in _OPPOSITE:
            yield f"direction {self.direction!r} must be {HIGHER} or {LOWER}"
        if metric is None:
            yield f"metric {self.metric!r} is not in the catalogue"
        else:
            need, attributes = self._metric_needs()
            if any(getattr(metric, name) != value for name, value in attributes.items()):
                yield (
                    f"{'an' if self.kind[0] in 'aeiou' else 'a'} {self.kind} target needs {need}; "
                    f"metric {metric.code!r} is {metric.unit}, combined as {metric.combination}"
                )
            yield from self._metric_problems(metric, catalogue)
            yield from self._direction_problems(metric)
        yield from self._scope_problems(metric)
        yield from self._baseline_problems(metric)
        yield from self._value_problems()

    def _metric_needs(self) -> tuple[str, dict[str, str]]:
        return self.metric_needs

    def _metric_problems(self, metric: MetricSpec, catalogue: Catalogue) -> Iterator[str]:
        """Checks of the kind's parameters against the metric (none by default)."""
        return iter(())

    def _measure_direction(self, metric: MetricSpec) -> tuple[str, str]:
        """The direction the measure improves in, and why; the metric's own by default."""
        return metric.direction, f"metric {metric.code!r} is {metric.direction}"

    def _direction_problems(self, metric: MetricSpec) -> Iterator[str]:
        expected, why = self._measure_direction(metric)
        if expected == _OPPOSITE.get(self.direction):
            yield f"direction {self.direction} contradicts the measure: {why}"

    def _scope_problems(self, metric: MetricSpec | None) -> Iterator[str]:
        scope = self.scope
        if scope.type not in vocab.TARGET_SCOPES:
            yield f"unknown scope type {scope.type!r} (expected one of {', '.join(vocab.TARGET_SCOPES)})"
        if scope.type == "alliance" and scope.value is not None:
            yield f"an alliance scope takes no value (got {scope.value!r})"
        if scope.type == "country" and not is_country_code(scope.value or ""):
            yield f"scope value {scope.value!r} is not an ISO 3166-1 alpha-2 country code"
        if scope.type == "stakeholder_type":
            yield from self._stakeholder_problems("scope value", scope.value or "", metric)
        if scope.basis is not None and scope.type != "country":
            yield "scope basis applies only to a country scope"
        if scope.basis == "country_dimension" and metric and "country" not in metric.dimensions:
            yield f"scope basis country_dimension: metric {metric.code!r} has no country dimension"

    @staticmethod
    def _stakeholder_problems(field: str, value: str, metric: MetricSpec | None) -> Iterator[str]:
        if value not in vocab.STAKEHOLDER_TYPES:
            yield f"{field} {value!r} is not a stakeholder type ({', '.join(vocab.STAKEHOLDER_TYPES)})"
        elif metric is not None and value not in metric.reported_by:
            yield f"{field} {value!r} does not report metric {metric.code!r} ({', '.join(metric.reported_by)} do)"

    def _baseline_problems(self, metric: MetricSpec | None) -> Iterator[str]:
        baseline = self.baseline
        try:
            ref = self.baseline_ref
        except PeriodError as exc:
            yield f"baseline: {exc}"
            return
        if metric is not None and ref.kind not in metric.frequencies:
            yield (
                f"baseline period {ref.code} is a {ref.kind} but metric {metric.code!r} is reported "
                f"only per {', '.join(metric.frequencies)}"
            )
        if self.target.year <= ref.year:
            yield f"target year {self.target.year} is not after the baseline year {ref.year}"
        if baseline.rule == "observed" and baseline.value is not None:
            yield "an observed baseline is computed from the data: give no value"
        if baseline.rule == "published" and (baseline.value is None or not baseline.source):
            yield "a published baseline needs its value and its source"

    def _value_problems(self) -> Iterator[str]:
        values = {"target value": self.target.value, "baseline value": self.baseline.value}
        for label, value in values.items():
            if value is None:
                continue
            if self.measure_is_share and not 0 <= value <= 1:
                yield f"{label} {value:g} is a share and must be in [0, 1]"
            elif value < 0:
                yield f"{label} {value:g} cannot be negative"
        if self.target.value is None:
            yield "target value is missing"
            return
        base = self.baseline.value
        if base is not None and (
            self.target.value <= base if self.direction == HIGHER else self.target.value >= base
        ):
            yield f"target value {self.target.value:g} is already met by the baseline value {base:g}"


class GrowthTarget(_TargetBase):
    """A count grows by at least ``annual_rate`` a year, compounded, from the baseline."""

    kind: Literal["growth"]
    parameters: GrowthParameters
    metric_needs = ("a count metric", {"unit": "count"})

    @property
    def target_value(self) -> float:
        return self.parameters.annual_rate

    def _direction_problems(self, metric: MetricSpec) -> Iterator[str]:
        yield from super()._direction_problems(metric)
        rate = self.parameters.annual_rate
        if rate == 0 or (rate > 0) != (self.direction == HIGHER):
            yield f"annual_rate {rate:g} does not move in the target's direction ({self.direction})"

    def _value_problems(self) -> Iterator[str]:
        if self.target.value is not None:
            yield "a growth target's goal is its annual_rate: give target.year only, no target.value"
        if self.baseline.value is not None and self.baseline.value <= 0:
            yield "a growth baseline must be positive (a rate cannot grow from zero)"


class ShareThresholdTarget(_TargetBase):
    """At least a share of cases is actioned within ``threshold_hours`` (censored cases count)."""

    kind: Literal["share_threshold"]
    parameters: ShareThresholdParameters
    measure_is_share = True
    metric_needs = ("a distribution metric (time buckets)", {"combination": "distribution"})

    def _metric_problems(self, metric: MetricSpec, catalogue: Catalogue) -> Iterator[str]:
        hours = self.parameters.threshold_hours
        edges = catalogue.buckets.edges_minutes
        if hours * 60 not in edges:
            labels = ", ".join(_duration_label(edge) for edge in edges)
            yield (
                f"threshold_hours {hours:g} is not an edge of bucket scheme {catalogue.buckets.code} "
                f"({labels}), so the share could not be computed exactly"
            )

    def _measure_direction(self, metric: MetricSpec) -> tuple[str, str]:
        expected = _OPPOSITE.get(metric.direction, metric.direction)
        return expected, f"a share done within a time limit on {metric.code!r} is {expected}"


class TimeThresholdTarget(_TargetBase):
    """A median, 90th percentile or (weighted) mean time is at most ``target.value`` hours."""

    kind: Literal["time_threshold"]
    parameters: TimeThresholdParameters

    def _metric_needs(self) -> tuple[str, dict[str, str]]:
        """A median or percentile needs the buckets; a mean, a weighted mean of hours."""
        statistic = self.parameters.statistic
        if statistic == "mean":
            return "a time metric combined as mean_weighted", {
                "unit": "hours",
                "combination": "mean_weighted",
            }
        return f"a distribution metric for statistic {statistic}", {"combination": "distribution"}

    def _value_problems(self) -> Iterator[str]:
        yield from super()._value_problems()
        if self.target.value == 0:
            yield "target value 0 hours cannot be reached: give a positive number of hours"


class AdoptionTarget(_TargetBase):
    """A share of the population has a capability (a yes/no metric combined as a share)."""

    kind: Literal["adoption"]
    parameters: AdoptionParameters
    measure_is_share = True
    metric_needs = (
        "a boolean metric combined as share_of_reporters",
        {"unit": "boolean", "combination": "share_of_reporters"},
    )

    def _metric_problems(self, metric: MetricSpec, catalogue: Catalogue) -> Iterator[str]:
        yield from _population_problems(self, self.parameters.population, metric)
        params = self.parameters
        if (params.counted == "organisations") != (params.organisation_rule is not None):
            yield "organisation_rule is needed when organisations are counted, and only then"


class ParticipationTarget(_TargetBase):
    """A number of participants: the metric's own count, or how many members report it."""

    kind: Literal["participation"]
    parameters: ParticipationParameters
    metric_needs = ("a count metric", {"unit": "count"})

    def _metric_problems(self, metric: MetricSpec, catalogue: Catalogue) -> Iterator[str]:
        params = self.parameters
        if (params.counted == "reporting_organisations") != (params.population is not None):
            yield "population is needed when reporting organisations are counted, and only then"
        if params.population is not None:
            yield from _population_problems(self, params.population, metric)

    def _measure_direction(self, metric: MetricSpec) -> tuple[str, str]:
        if self.parameters.counted == "reporting_organisations":
            return HIGHER, "more organisations reporting is higher_is_better"
        return super()._measure_direction(metric)


def _population_problems(spec: _TargetBase, population: Population, metric: MetricSpec) -> Iterator[str]:
    yield from spec._stakeholder_problems("population", population.stakeholder_type, metric)
    if spec.scope.type == "stakeholder_type" and spec.scope.value != population.stakeholder_type:
        yield f"scope {spec.scope.value!r} and population {population.stakeholder_type!r} differ"


TargetSpec = Annotated[
    GrowthTarget | ShareThresholdTarget | TimeThresholdTarget | AdoptionTarget | ParticipationTarget,
    Field(discriminator="kind"),
]
_TARGET_ADAPTER: TypeAdapter[TargetSpec] = TypeAdapter(TargetSpec)


def _target_entries(folder: Path, problems: list[str]) -> Iterator[tuple[str, Any]]:
    """Each entry of every target file, with where it stands; unreadable files become problems."""
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        problems.append(f"{folder}: no target files (*.yaml)")
    for path in paths:
        before = len(problems)
        raw = read_yaml(path, problems)
        entries = raw.get("targets") if isinstance(raw, dict) else None
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                code = entry.get("code") if isinstance(entry, dict) else None
                yield f"{path}: target {code!r} (entry {index + 1})", entry
        elif len(problems) == before:
            problems.append(f"{path}: expected a mapping with a 'targets' list")


def load_targets(data_dir: Path, catalogue: Catalogue) -> list[TargetSpec]:
    """Read and validate every data/targets/*.yaml; raise with every problem found."""
    problems: list[str] = []
    specs: dict[str, TargetSpec] = {}
    first_seen: dict[str, str] = {}
    for where, entry in _target_entries(data_dir / "targets", problems):
        try:
            spec = _TARGET_ADAPTER.validate_python(entry)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(where, exc))
        else:
            if spec.code in specs:
                problems.append(f"{where}: duplicate code {spec.code!r} (first in {first_seen[spec.code]})")
            else:
                specs[spec.code], first_seen[spec.code] = spec, where
                problems.extend(f"{where}: {reason}" for reason in spec.problems(catalogue))
    if problems:
        raise CatalogueError(problems)
    return list(specs.values())


def sync_targets(session: Session, catalogue: Catalogue, specs: Iterable[TargetSpec]) -> dict[str, int]:
    """Insert or update the target rows by code; return code -> id.

    Targets no longer in data/ are kept: releases built later may refer to them.
    """
    specs = list(specs)
    metrics = metric_ids(session, catalogue)
    periods = ensure_periods(session, (spec.baseline_ref for spec in specs))
    existing = {row.code: row for row in session.exec(select(Target))}
    for spec in specs:
        values: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "kind": spec.kind,
            "metric_id": metrics[spec.metric],
            "scope_type": spec.scope.type,
            "scope_value": spec.scope.value,
            "baseline_period_id": periods[spec.baseline_ref.code],
            "baseline_value": spec.baseline.value,
            "target_value": spec.target_value,
            "target_year": spec.target.year,
            "direction": spec.direction,
            "parameters": spec.stored_parameters(),
        }
        row = existing.get(spec.code)
        if row is None:
            session.add(Target(code=spec.code, **values))
        elif any(getattr(row, key) != value for key, value in values.items()):
            session.add(row.sqlmodel_update(values))
    session.flush()
    return {row.code: row.id for row in session.exec(select(Target)) if row.id is not None}


@dataclass(frozen=True)
class TargetRow:
    """A stored target as ``hub targets list`` shows it."""

    code: str
    kind: str
    metric: str
    scope: str
    baseline: str
    target_value: float
    target_year: int


def list_targets(session: Session) -> list[TargetRow]:
    """The stored targets, by code, with their metric and baseline period spelled out."""
    query = (
        select(Target, MetricDefinition.code, Period.code)
        .join(MetricDefinition, col(MetricDefinition.id) == col(Target.metric_id))
        .outerjoin(Period, col(Period.id) == col(Target.baseline_period_id))
        .order_by(col(Target.code))
    )
    rows = []
    for target, metric, period in session.exec(query):
        scope = (
            target.scope_type if target.scope_value is None else f"{target.scope_type}:{target.scope_value}"
        )
        rule = target.parameters.get("baseline_rule", "published")
        value = "observed" if target.baseline_value is None else f"{target.baseline_value:g} ({rule})"
        rows.append(
            TargetRow(
                target.code,
                target.kind,
                metric,
                scope,
                f"{period or '-'} {value}",
                target.target_value,
                target.target_year,
            )
        )
    return rows
