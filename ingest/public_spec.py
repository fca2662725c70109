"""The reviewed mapping files that say what each published figure means.

``data/mappings/public_columns.yaml`` maps every column (or row label) of every public file
to a catalogue metric and dimensions, or to ``ignore`` with a reason;
``organisation_names.yaml`` and ``country_names.yaml`` turn printed names into codes. The
importer looks names up here and never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, model_validator

from hub.datafiles import StrictModel, read_yaml
from hub.errors import ImportProblem

WILDCARD = "*"  # a row label matched by any label; its category comes from a crosswalk

# The publisher's own definition of what it counts, in plain words (stripped, never empty).
Definition = Annotated[str, StringConstraints(strip_whitespace=True, min_length=20, max_length=2000)]


class Target(StrictModel):
    """Where one column or row label goes: a metric with dimensions, or nowhere, with a reason."""

    metric: str | None = None
    dims: dict[str, str] = Field(default_factory=dict)
    category_label: str | None = None  # the publisher's own label, mapped through category_scheme
    category_of_label: str | None = None  # crosswalk that maps the row's own label (wildcard rows)
    category_scheme: str = "platform_labels"
    scale: Decimal | None = None  # for plain numbers: 0.01 for 0-100 percentages, 24 for days
    label: str | None = None  # the publisher's label kept as source_label (default: as printed)
    company_total: bool = False  # a company-wide figure on a row that is one service's part
    ignore: str | None = Field(default=None, min_length=10)  # the reason nothing is stored
    definition: Definition | None = None  # where the column's meaning differs from the file's

    @model_validator(mode="after")
    def _metric_or_ignore(self) -> Target:
        if (self.metric is None) == (self.ignore is None):
            raise ValueError("give either 'metric' or 'ignore' (with the reason)")
        if self.ignore is not None and (self.dims or self.category_label or self.scale is not None):
            raise ValueError("an ignored column has no metric details")
        if "category" in self.dims and (self.category_label or self.category_of_label):
            raise ValueError("give the category once: dims.category or a label to map")
        return self


class FileSpec(StrictModel):
    """How one public file is laid out and where its figures go."""

    source_name: str = Field(min_length=5, max_length=300)
    definition: Definition  # what the publisher counts in this file, by its own definitions
    scope: str = Field(pattern=r"^public:[a-z0-9_]{2,50}$")
    layout: Literal["wide", "long"]
    publisher: str | None = None  # organisation code; else from publisher_column or platform_files
    publisher_column: str | None = None
    period_column: str
    value_column: str | None = None  # long layout: the one column holding the figures
    redundant_column: str | None = None  # wide layout: rows marked True repeat a disclosure
    counterpart_column: str | None = None  # organisation names -> dimension counterpart
    country_column: str | None = None  # country names -> dimension country
    category_column: str | None = None  # category labels mapped through category_scheme
    category_scheme: str | None = None
    label_columns: tuple[str, ...] = ()
    labels: dict[str, Any] = Field(default_factory=dict)  # nested by label column -> Target
    by_publisher_type: dict[str, Target] = Field(default_factory=dict)
    target: Target | None = None  # long layout with one kind of figure
    columns: dict[str, Target] = Field(default_factory=dict)  # wide layout
    several_rows_per_period: Literal["service_parts"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FileSpec:
        if self.layout == "wide":
            if not self.columns or self.value_column or self.label_columns or self.target:
                raise ValueError("a wide file maps 'columns' (and has no value/label columns)")
        else:
            if not self.value_column or self.columns:
                raise ValueError("a long file names its 'value_column' and maps no 'columns'")
            ways = sum(bool(x) for x in (self.labels, self.by_publisher_type, self.target))
            if ways != 1:
                raise ValueError("a long file needs exactly one of labels, by_publisher_type, target")
            if bool(self.labels) != bool(self.label_columns):
                raise ValueError("'labels' and 'label_columns' go together")
        if bool(self.category_column) != bool(self.category_scheme):
            raise ValueError("'category_column' and 'category_scheme' go together")
        if self.publisher and self.publisher_column:
            raise ValueError("give 'publisher' or 'publisher_column', not both")
        return self

    @property
    def structural_columns(self) -> tuple[str, ...]:
        """The columns that identify a row (not figures), in a fixed order."""
        named = (
            self.period_column,
            self.redundant_column,
            self.publisher_column,
            self.counterpart_column,
            self.country_column,
            self.category_column,
            *self.label_columns,
            self.value_column,
        )
        return tuple(column for column in named if column)


@dataclass(frozen=True)
class PublicColumns:
    version: str
    files: dict[str, FileSpec]
    label_targets: dict[str, dict[tuple[str, ...], Target]]  # file -> label tuple -> target


@dataclass(frozen=True)
class NameMaps:
    """Printed organisation and country names -> codes, as reviewed in data/mappings."""

    organisations: dict[str, dict[str, str]]  # file name -> printed name -> organisation code
    platform_files: dict[str, str]  # platform file -> the organisation that published it
    total_rows: dict[str, frozenset[str]]  # file name -> row labels that are totals
    countries: dict[str, str]  # printed country name -> ISO alpha-2 (XK, ZZ)


def _load_yaml(path: Path) -> Any:
    problems: list[str] = []
    raw = read_yaml(path, problems)
    if problems:
        raise ImportProblem(problems[0].replace("file is missing", "mapping file is missing"))
    return raw


def _flatten_labels(tree: Any, depth: int, where: str) -> dict[tuple[str, ...], Target]:
    """The nested ``labels`` mapping as label tuple -> target, checking its depth."""
    if depth == 0:
        return {(): Target.model_validate(tree)}
    if not isinstance(tree, dict):
        raise ValueError(f"{where}: expected a mapping of labels")
    flat: dict[tuple[str, ...], Target] = {}
    for key, subtree in tree.items():
        if key == WILDCARD and depth != 1:
            raise ValueError(f"{where}: the wildcard '*' is allowed for the last label column only")
        for rest, target in _flatten_labels(subtree, depth - 1, f"{where} / {key}").items():
            if key == WILDCARD and not target.category_of_label:
                raise ValueError(f"{where} / *: a wildcard label needs 'category_of_label'")
            flat[(str(key), *rest)] = target
    return flat


def load_public_columns(data_dir: Path) -> PublicColumns:
    """Read and check data/mappings/public_columns.yaml; every problem names the entry."""
    path = data_dir / "mappings" / "public_columns.yaml"
    raw = _load_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), dict):
        raise ImportProblem(f"{path}: expected a mapping with 'version' and 'files'")
    files: dict[str, FileSpec] = {}
    label_targets: dict[str, dict[tuple[str, ...], Target]] = {}
    problems: list[str] = []
    for name, entry in raw["files"].items():
        try:
            spec = FileSpec.model_validate(entry)
            label_targets[name] = (
                _flatten_labels(spec.labels, len(spec.label_columns), f"{path}: {name}")
                if spec.labels
                else {}
            )
        except ValidationError as exc:
            problems.extend(
                f"{path}: {name}: {'.'.join(map(str, err['loc'])) or 'entry'}: {err['msg']}"
                for err in exc.errors()
            )
            continue
        except ValueError as exc:
            problems.append(str(exc))
            continue
        files[name] = spec
    if problems:
        raise ImportProblem("; ".join(problems))
    return PublicColumns(str(raw.get("version", "")), files, label_targets)


def load_name_maps(data_dir: Path) -> NameMaps:
    """Read organisation_names.yaml and country_names.yaml (exact strings, no normalising)."""
    folder = data_dir / "mappings"
    organisations = _load_yaml(folder / "organisation_names.yaml") or {}
    countries = _load_yaml(folder / "country_names.yaml") or {}
    names = dict(organisations.get("names") or {})
    platform_files = names.pop("platform_files", None) or {}
    return NameMaps(
        organisations={file: dict(mapping or {}) for file, mapping in names.items()},
        platform_files=dict(platform_files),
        total_rows={
            file: frozenset(labels or ()) for file, labels in (organisations.get("total_rows") or {}).items()
        },
        countries=dict(countries.get("names") or {}),
    )
