"""Import the published NCMEC and platform figures (shared/public-data) as submissions.

Each file becomes one submission per organisation that published figures in it (NCMEC for
its tables, the platform for its own disclosures, each observer in the comparable-reports
file), with the file's SHA-256 as checksum, so importing the same files again stores
nothing. What every column means is in data/mappings/public_columns.yaml, names are looked
up in organisation_names.yaml and country_names.yaml, categories go through the crosswalks:
nothing is guessed. Every file is read and checked before anything is stored; a single
problem anywhere refuses the whole import (ImportProblem), so the caller's transaction is
left untouched.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlmodel import Session

from hub.catalogue import Catalogue
from hub.categories import UnmappedCategory
from hub.errors import ImportProblem
from hub.models import Organisation
from hub.organisations import list_organisations
from hub.periods import PeriodRef
from hub.store import store_submission
from hub.validation import ObservationIn, observation_problems
from ingest.parsing import (
    CellError,
    CsvRow,
    parse_printed_number,
    parse_published_period,
    read_csv,
)
from ingest.public_spec import (
    WILDCARD,
    FileSpec,
    NameMaps,
    PublicColumns,
    Target,
    load_name_maps,
    load_public_columns,
)

ACTOR = "import-public"
CHANNEL = "public_source"
MAX_LABEL = 300  # length of observation.source_label
SHOWN_PROBLEMS = 10

REDUNDANT = "redundant rows (repeat another disclosure)"
EMPTY = "empty cells (nothing published)"
IGNORED = "cells of columns mapped as ignored"

ObservationKey = tuple[str, str, str, tuple[tuple[str, str], ...]]


@dataclass
class FileReport:
    """What happened to one file: rows read, figures found and stored, what was skipped."""

    name: str
    rows_read: int = 0
    figures: int = 0
    stored: int = 0
    not_available: int = 0
    merged: int = 0
    submissions_new: int = 0
    submissions_unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        parts = [
            f"{self.rows_read} rows read",
            f"{self.figures} figures",
            f"{self.stored} observations stored",
        ]
        if self.submissions_unchanged:
            parts.append(f"{self.submissions_unchanged} submission(s) already imported")
        if self.not_available:
            parts.append(f"{self.not_available} published as N/A (stored as not available)")
        if self.merged:
            parts.append(f"{self.merged} rows added to another row (two printed names, one code)")
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        return f"{self.name}: " + ", ".join(parts) + (f"; skipped: {skipped}" if skipped else "")


@dataclass
class PublicImportReport:
    files: list[FileReport]
    seconds: float = 0.0

    @property
    def observations_stored(self) -> int:
        return sum(report.stored for report in self.files)

    def summary(self) -> str:
        """A few lines for a person: one per file, then the totals."""
        new = sum(report.submissions_new for report in self.files)
        head = (
            f"public data: {len(self.files)} files, {new} new submission(s), "
            f"{self.observations_stored} observations stored in {self.seconds:.1f} s"
        )
        return "\n".join([head, *(f"  {report.line()}" for report in self.files)])


@dataclass(frozen=True)
class _Figure:
    line: int
    target: Target  # the mapping entry it came through
    publisher: str
    observation: ObservationIn


@dataclass
class _FilePlan:
    path: Path
    spec: FileSpec | None  # None: the file is not in the mapping (a problem)
    report: FileReport
    figures: dict[ObservationKey, _Figure] = field(default_factory=dict)
    # the printed labels already added into each figure: a label seen twice is a repeated row
    labels: dict[ObservationKey, set[str | None]] = field(default_factory=dict)


@dataclass
class _Context:
    """What every file is read against, and the problems found so far."""

    catalogue: Catalogue
    columns: PublicColumns
    names: NameMaps
    organisations: dict[str, Organisation]
    problems: list[str] = field(default_factory=list)

    def problem(self, file: str, line: int | None, message: str) -> None:
        where = f"{file} line {line}" if line is not None else file
        self.problems.append(f"{where}: {message}")


@dataclass(frozen=True)
class _Row:
    """What a row says about all of its figures."""

    line: int
    period: PeriodRef
    publisher: str
    dims: dict[str, str]  # counterpart, country, category named by the row
    qualifiers: tuple[str, ...]  # those names as printed, for source_label
    service_part: str | None


@dataclass(frozen=True)
class _Cell:
    """One figure cell of a row and where the mapping sends it."""

    column: str  # the column or row labels as printed ("" for a file's single figure)
    target: Target
    raw: str
    row_label: str = ""  # the last label column's value, for targets that map it to a category


def import_public_data(
    session: Session,
    catalogue: Catalogue,
    directory: Path,
    data_dir: Path,
    *,
    dry_run: bool = False,
) -> PublicImportReport:
    """Read, check and store every CSV file of ``directory``; all or nothing.

    Raises ImportProblem listing every problem (file and line) before anything is stored.
    ``dry_run`` checks everything and stores nothing.
    """
    started = time.perf_counter()
    context = _Context(
        catalogue,
        load_public_columns(data_dir),
        load_name_maps(data_dir),
        {org.code: org for org in list_organisations(session)},
    )
    plans = [_plan_file(context, path) for path in sorted(directory.glob("*.csv"))]
    _validate(context, plans)
    if context.problems:
        shown = "; ".join(context.problems[:SHOWN_PROBLEMS])
        more = len(context.problems) - SHOWN_PROBLEMS
        raise ImportProblem(
            f"public data not imported, {len(context.problems)} problem(s): {shown}"
            + (f" (and {more} more)" if more > 0 else "")
        )
    if not dry_run:
        for plan in plans:
            _store(session, context, plan)
    return PublicImportReport([plan.report for plan in plans], time.perf_counter() - started)


def _plan_file(context: _Context, path: Path) -> _FilePlan:
    """Every figure of one file, keyed like the observation table; problems are collected."""
    name = path.name
    spec = context.columns.files.get(name)
    plan = _FilePlan(path, spec, FileReport(name))
    if spec is None:
        context.problem(name, None, "no entry in data/mappings/public_columns.yaml: map its columns first")
        return plan
    try:
        table = read_csv(path)
    except CellError as exc:
        context.problem(name, None, str(exc))
        return plan
    file_publisher = _file_publisher(context, name, spec)
    if not _header_matches(context, name, spec, table.header) or file_publisher == "":
        return plan
    plan.report.rows_read = len(table.rows)
    parts = _service_parts(spec, table.rows)
    for csv_row in table.rows:
        redundant = _redundant(spec, csv_row)
        if redundant is None:
            context.problem(name, csv_row.line, f"{spec.redundant_column!r} is neither True nor False")
            continue
        if redundant:
            plan.report.skipped[REDUNDANT] += 1
            continue
        row = _read_row(context, name, spec, csv_row, file_publisher, parts.get(csv_row.line))
        if row is None:
            continue
        for cell in _cells(context, name, spec, csv_row, row.publisher):
            if cell.target.ignore is None:
                _plan_cell(context, plan, row, cell)
            elif cell.raw.strip():
                plan.report.skipped[IGNORED] += 1
    return plan


def _file_publisher(context: _Context, name: str, spec: FileSpec) -> str | None:
    """The publisher of every row of the file; None when rows name it, "" when unknown."""
    if spec.publisher_column:
        return None
    code = spec.publisher or context.names.platform_files.get(name)
    if code is None:
        context.problem(name, None, "no publisher: add the file under names.platform_files")
        return ""
    return _registered(context, name, None, code, code) or ""


def _header_matches(context: _Context, name: str, spec: FileSpec, header: tuple[str, ...]) -> bool:
    """Every column of the file is mapped and every mapped column is in the file."""
    expected = set(spec.structural_columns) | set(spec.columns)
    unmapped = [column for column in header if column not in expected]
    missing = sorted(column for column in expected if column not in header)
    for column in unmapped:
        context.problem(name, 1, f"column {column!r} is not in data/mappings/public_columns.yaml")
    for column in missing:
        context.problem(name, 1, f"column {column!r} of the mapping is missing from the file")
    return not unmapped and not missing


def _redundant(spec: FileSpec, row: CsvRow) -> bool | None:
    """Whether the row repeats another disclosure; None when the flag is unreadable."""
    if not spec.redundant_column:
        return False
    return {"True": True, "False": False}.get(row.cells[spec.redundant_column].strip())


def _service_parts(spec: FileSpec, rows: tuple[CsvRow, ...]) -> dict[int, str]:
    """line -> service ``part-N`` where a file lists several rows for one period (and counterpart).

    The publisher does not name the services, so part-N is the row's position within its
    period in file order (documented in public_columns.yaml); a lone row gets no part.
    """
    if spec.several_rows_per_period is None:
        return {}
    groups: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        if _redundant(spec, row) is False:
            key = (row.cells[spec.period_column], row.cells.get(spec.counterpart_column or "", ""))
            groups.setdefault(key, []).append(row.line)
    return {
        line: f"part-{number}"
        for lines in groups.values()
        if len(lines) > 1
        for number, line in enumerate(lines, start=1)
    }


def _read_row(
    context: _Context, name: str, spec: FileSpec, row: CsvRow, publisher: str | None, part: str | None
) -> _Row | None:
    """Period, publisher and the dimensions the row names; None (with problems) if any is unknown."""
    ok = True
    try:
        period = parse_published_period(row.cells[spec.period_column])
    except CellError as exc:
        context.problem(name, row.line, str(exc))
        ok = False
    if spec.publisher_column:
        publisher = _organisation(context, name, row.line, row.cells[spec.publisher_column])
    dims: dict[str, str] = {}
    qualifiers: list[str] = []
    if spec.counterpart_column:
        printed = row.cells[spec.counterpart_column]
        qualifiers.append(printed)
        if printed not in context.names.total_rows.get(name, frozenset()):
            code = _organisation(context, name, row.line, printed)
            ok = ok and code is not None
            dims["counterpart"] = code or ""
    if spec.country_column:
        printed = row.cells[spec.country_column]
        qualifiers.append(printed)
        country = context.names.countries.get(printed)
        if country is None:
            context.problem(name, row.line, f"unknown country name {printed!r} (see country_names.yaml)")
        ok = ok and country is not None
        dims["country"] = country or ""
    if spec.category_column and spec.category_scheme:
        printed = row.cells[spec.category_column]
        qualifiers.append(printed)
        category = _category(context, name, row.line, spec.category_scheme, printed)
        ok = ok and category is not None
        dims["category"] = category or ""
    if not ok or publisher is None:
        return None
    return _Row(row.line, period, publisher, dims, tuple(qualifiers), part)


def _organisation(context: _Context, name: str, line: int, printed: str) -> str | None:
    code = context.names.organisations.get(name, {}).get(printed)
    if code is None:
        context.problem(name, line, f"unknown organisation name {printed!r} (see organisation_names.yaml)")
        return None
    return _registered(context, name, line, code, printed)


def _registered(context: _Context, name: str, line: int | None, code: str, printed: str) -> str | None:
    if code not in context.organisations:
        context.problem(name, line, f"{printed!r} maps to {code!r}, which is not a registered organisation")
        return None
    return code


def _category(context: _Context, name: str, line: int, scheme: str, label: str) -> str | None:
    """The harmonised category of a publisher's label; unmapped or deliberately unmapped: a problem."""
    try:
        code = context.catalogue.categories.map(scheme, label)
    except UnmappedCategory as exc:
        context.problem(name, line, str(exc))
        return None
    if code is None:
        context.problem(name, line, f"category {label!r} is deliberately unmapped in {scheme!r}: ignore it")
    return code


def _cells(context: _Context, name: str, spec: FileSpec, row: CsvRow, publisher: str) -> Iterator[_Cell]:
    """The figure cells of a row with their targets (one per column, or the row's one value)."""
    if spec.layout == "wide":
        for header, mapped in spec.columns.items():
            yield _Cell(header, mapped, row.cells[header])
        return
    raw = row.cells[spec.value_column or ""]
    column, target = "", spec.target
    if spec.by_publisher_type:
        kind = context.organisations[publisher].stakeholder_type
        target = spec.by_publisher_type.get(kind)
        if target is None:
            context.problem(name, row.line, f"no mapping for figures published by a {kind} ({publisher})")
    elif spec.label_columns:
        labels = tuple(row.cells[label_column] for label_column in spec.label_columns)
        column = " / ".join(labels)
        targets = context.columns.label_targets[name]
        target = targets.get(labels) or targets.get((*labels[:-1], WILDCARD))
        if target is None:
            context.problem(name, row.line, f"row label {column!r} is not in public_columns.yaml")
        else:
            yield _Cell(column, target, raw, labels[-1])
        return
    if target is not None:
        yield _Cell(column, target, raw)


def _plan_cell(context: _Context, plan: _FilePlan, row: _Row, cell: _Cell) -> None:
    """Turn one printed figure into an observation of the plan."""
    name, target = plan.path.name, cell.target
    assert target.metric is not None
    try:
        printed = parse_printed_number(cell.raw, target.scale)
    except CellError as exc:
        context.problem(name, row.line, f"{cell.column or 'value'!r}: {exc}")
        return
    if printed is None:
        plan.report.skipped[EMPTY] += 1
        return
    dims = _cell_dimensions(context, name, row, cell)
    if dims is None:
        return
    label = " | ".join(part for part in (*row.qualifiers, target.label or cell.column) if part)
    if not printed.is_plain:
        label = f"{label} as published: {cell.raw.strip()}".strip()
    value = None if printed.value is None else float(printed.value)
    if value is None:
        plan.report.not_available += 1
    observation = ObservationIn(
        target.metric, row.period, value, dims=dims, source_label=label[:MAX_LABEL] or None
    )
    _add_figure(context, plan, _Figure(row.line, cell.target, row.publisher, observation))


def _cell_dimensions(context: _Context, name: str, row: _Row, cell: _Cell) -> dict[str, str] | None:
    """The row's dimensions with the column's own: fixed values, category, service part."""
    target = cell.target
    dims = dict(row.dims)
    if "counterpart" in target.dims and dims.pop("counterpart", row.publisher) != row.publisher:
        # a provider's count of its own reports: the row's organisation must be the publisher
        context.problem(name, row.line, f"{row.publisher} publishes a figure about another organisation")
        return None
    dims.update(target.dims)
    label = target.category_label or (cell.row_label if target.category_of_label else None)
    if label is not None:
        scheme = target.category_of_label or target.category_scheme
        category = _category(context, name, row.line, scheme, label)
        if category is None:
            return None
        dims["category"] = category
    if row.service_part and not target.company_total:
        dims["service"] = row.service_part
    return dims


def _add_figure(context: _Context, plan: _FilePlan, figure: _Figure) -> None:
    """Keep a figure; two printed names of one code in one period add up (counts only).

    Anything else that lands on the same key (a repeated row, two columns mapped alike) is a
    problem, never silently added.
    """
    new = figure.observation
    key = (figure.publisher, *new.key())
    earlier = plan.figures.get(key)
    if earlier is None:
        plan.figures[key] = figure
        plan.labels[key] = {new.source_label}
        plan.report.figures += 1
        return
    old = earlier.observation
    additive = context.catalogue.metric(new.metric).combination == "sum"
    renamed = earlier.target is figure.target and new.source_label not in plan.labels[key]
    if not (renamed and additive and old.value is not None and new.value is not None):
        context.problem(
            plan.path.name,
            figure.line,
            f"same metric, period and dimensions as line {earlier.line} ({new.metric}, {new.period.code})",
        )
        return
    label = f"{old.source_label} + {new.source_label}"[:MAX_LABEL]
    plan.figures[key] = _Figure(
        earlier.line,
        earlier.target,
        figure.publisher,
        ObservationIn(old.metric, old.period, old.value + new.value, dims=old.dims, source_label=label),
    )
    plan.labels[key].add(new.source_label)
    plan.report.merged += 1


def _by_publisher(plan: _FilePlan) -> dict[str, list[_Figure]]:
    grouped: dict[str, list[_Figure]] = {}
    for figure in plan.figures.values():
        grouped.setdefault(figure.publisher, []).append(figure)
    return grouped


def _validate(context: _Context, plans: list[_FilePlan]) -> None:
    """The hub's own rules for every figure, reported with file and line before storing."""
    codes = set(context.organisations)
    today = date.today()
    for plan in plans:
        for publisher, figures in _by_publisher(plan).items():
            kind = context.organisations[publisher].stakeholder_type
            for figure in figures:
                for problem in observation_problems(
                    context.catalogue, figure.observation, stakeholder_type=kind, org_codes=codes, today=today
                ):
                    context.problem(plan.path.name, figure.line, problem)


def _store(session: Session, context: _Context, plan: _FilePlan) -> None:
    """One submission per publishing organisation, identified by the figures it holds.

    The checksum is that of the publisher's own figures (hub.store.content_checksum), not of
    the file (with the publisher's definition of them): a re-import stores nothing unless
    this publisher's figures or their definition changed, whether the file changed or the
    hub's mapping of it did.
    """
    if plan.spec is None:
        return
    for publisher, figures in _by_publisher(plan).items():
        result = store_submission(
            session,
            context.catalogue,
            context.organisations[publisher],
            [figure.observation for figure in figures],
            channel=CHANNEL,
            scope=plan.spec.scope,
            actor=ACTOR,
            source_name=plan.spec.source_name,
            source_definition=_source_definition(context, plan.path.name, plan.spec, figures),
            supersede_reason=f"{plan.path.name} or the hub's mapping of it changed; imported again",
            org_codes=set(context.organisations),
        )
        if result.created:
            plan.report.submissions_new += 1
            plan.report.stored += result.observation_count
        else:
            plan.report.submissions_unchanged += 1


def _source_definition(context: _Context, name: str, spec: FileSpec, figures: list[_Figure]) -> str:
    """The file's definition, then those of the columns (or labels) behind these figures."""
    used = {id(figure.target) for figure in figures}
    named: list[tuple[str, Target]] = list(spec.columns.items())
    named += [(" / ".join(labels), target) for labels, target in context.columns.label_targets[name].items()]
    named += [(target.label or kind, target) for kind, target in spec.by_publisher_type.items()]
    if spec.target is not None:
        named.append((spec.target.label or "value", spec.target))
    parts = [spec.definition]
    parts += [
        f"{column!r}: {target.definition}"
        for column, target in named
        if target.definition and id(target) in used
    ]
    return " ".join(parts)
