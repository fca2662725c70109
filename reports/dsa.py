"""A company's EU DSA transparency report CSV parts (Annex I of Commission Implementing
Regulation (EU) 2024/2835), filled from its own hub figures where a field means what a hub
metric counts, and left empty where it does not: the hub never guesses a figure.

The templates are the Commission's files, kept byte-exact in data/dsa/annex_i/ (README there).
Each output part keeps the template's header and rows in their order; only cells listed in
:data:`FILLED` (and the reporting period of every row) are written. Where the hub holds a
related but not identical figure, it goes into that field's "Contextual information" column
in words, with its definition, never into the number.

What is filled (docs/reports.md, "DSA transparency CSV parts"):

- Part 1: the provider's name (the organisation's name in the hub), the start and end of the
  reporting period (the calendar year). The publication dates are the company's to enter.
- Part 4 (notices), on the rows of the "protection of minors" keywords that the reviewed
  crosswalk data/categories/crosswalks/eu_dsa_minors.yaml maps to a hub category:
  "Number of notices received" = co_notices_received of that category from every source but
  law enforcement (requests and orders of authorities belong to Part 3), filled only where the
  company broke the category's notices down by source completely (the parts add up to the
  total); "Number of notices received from Trusted flaggers" = the trusted_flagger part.
  Medians stay empty (Annex II sets their unit; the hub's median in hours is given as context).
- Part 5 (own initiative, illegal content): "Number of measures taken at the provider's own
  initiative" = co_items_detected_proactively of the keyword's category (items removed or
  disabled after the company's own detection, one measure per item).
- Every other part and field: empty, as the template has it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hub.catalogue import Catalogue
from hub.categories import load_categories
from hub.files import write_atomically
from hub.own_figures import OwnFigures
from hub.settings import REPO_ROOT
from hub.tabular import neutralise
from hub.vocab import DIMENSIONS, TOTAL

TEMPLATES = REPO_ROOT / "data" / "dsa" / "annex_i"
CROSSWALK = "eu_dsa_minors"
PERIOD_COLUMN = "Reporting period"
CATEGORY_COLUMNS = ("Category of illegal content",)
NOTICES = "Number of notices received "  # the official header ends with a space
TRUSTED = "Number of notices received from Trusted flaggers"
MEDIAN = "Median time to take action"
OWN_INITIATIVE = "Number of measures taken at the provider's own initiative "
NOT_NOTICES = ("law_enforcement", "proactive_detection")  # authorities' orders are Part 3


class DsaError(Exception):
    """A template is missing or not the official layout."""


@dataclass(frozen=True)
class Template:
    name: str
    header: list[str]
    rows: list[list[str]]


def read_template(name: str, folder: Path = TEMPLATES) -> Template:
    path = folder / name
    if not path.is_file():
        raise DsaError(f"the DSA template {path} is missing")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    if any(len(row) != len(header) for row in body):
        raise DsaError(f"{path}: a row has a different number of fields than the header")
    return Template(name, header, body)


def _category_cells(own: OwnFigures, metric: str, year: str) -> pd.DataFrame:
    """The organisation's year cells of ``metric`` broken down by category only, or by
    category and notice source (every other dimension the total)."""
    cells = own.cells
    cells = cells[(cells["metric"] == metric) & (cells["period"] == year) & (cells["statistic"] == "value")]
    for name in DIMENSIONS:
        if name not in ("category", "notice_source"):
            cells = cells[cells[name] == TOTAL]
    return cells[cells["category"] != TOTAL]


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.10g}"


def _keyword_categories(data_dir: Path) -> dict[str, str]:
    """DSA keyword code -> hub category, from the reviewed crosswalk (keywords only)."""
    crosswalk = load_categories(data_dir).crosswalks[CROSSWALK]
    return {
        label.upper(): code
        for label, code in crosswalk.targets.items()
        if label.upper().startswith("KEYWORD_")
    }


def _notices(own: OwnFigures, year: str, category: str) -> tuple[str, str, str]:
    """(notices received, from trusted flaggers, context) for one hub category."""
    cells = _category_cells(own, "co_notices_received", year)
    cells = cells[(cells["category"] == category) & ~cells["suppressed"].astype(bool)]
    if cells.empty:
        return "", "", ""
    total = cells[cells["notice_source"] == TOTAL]["value"]
    parts = cells[cells["notice_source"] != TOTAL].set_index("notice_source")["value"]
    # only a figure the company gave: a source it did not list is not known to be zero
    trusted = _number(float(parts["trusted_flagger"])) if "trusted_flagger" in parts.index else ""
    # complete: the parts add up to the total exactly (counts; half a unit of float slack)
    complete = not total.empty and not parts.empty and abs(float(parts.sum()) - float(total.iloc[0])) < 0.5
    if complete:
        notices = float(parts.drop(labels=[s for s in NOT_NOTICES if s in parts.index]).sum())
        context = (
            f"Hub metric co_notices_received, category {category}, from every source but law enforcement "
            "(authorities' requests and orders are reported in Part 3)."
        )
        return _number(notices), trusted, context
    context = (
        f"The hub holds {_number(float(total.iloc[0]))} notices of category {category} from all sources, law "
        "enforcement included, without a complete breakdown by source, so the number of notices is left empty."
        if not total.empty
        else ""
    )
    return "", trusted, context


def _overlapping_child(own: OwnFigures, year: str, category: str) -> str:
    """Why a keyword row stays empty when the company also reported a sub-category of its hub
    category (AI-generated CSAM under CSAM): whether its CSAM figure includes them is not
    known, and the template has a row of its own for them. "" when there is no such overlap."""
    children = {"csam": "ai_generated_csam"}
    child = children.get(category)
    if child is None:
        return ""
    cells = own.cells
    reported = cells[(cells["period"] == year) & (cells["category"] == child)]
    if reported.empty:
        return ""
    return (
        f"The company reported {child} apart from {category} in the hub; whether its {category} figures include "
        "it is not recorded, so this row is left empty: enter the figure without the deepfake sub-category."
    )


def _median_context(own: OwnFigures, year: str, category: str) -> str:
    cells = own.cells
    found = cells[
        (cells["metric"] == "co_takedown_time")
        & (cells["period"] == year)
        & (cells["statistic"] == "percentile")
        & np.isclose(cells["param"].to_numpy(dtype=float), 0.5)
        & (cells["category"] == category)
    ]
    for name in DIMENSIONS:
        if name != "category":
            found = found[found[name] == TOTAL]
    if found.empty or pd.isna(found["value"].iloc[0]):
        return ""
    return (
        f"Median time from notice or own detection to removal in the hub (all sources, category {category}): "
        f"{float(found['value'].iloc[0]):.1f} hours, estimated within its time bucket. Enter it in the unit "
        "Annex II sets."
    )


def _own_initiative(own: OwnFigures, year: str, category: str) -> tuple[str, str]:
    cells = _category_cells(own, "co_items_detected_proactively", year)
    cells = cells[(cells["category"] == category) & (cells["notice_source"] == TOTAL)]
    cells = cells[~cells["suppressed"].astype(bool)]
    if cells.empty:
        return "", ""
    context = (
        f"Hub metric co_items_detected_proactively, category {category}: items removed or disabled after the "
        "company's own detection, one measure per item."
    )
    return _number(float(cells["value"].iloc[0])), context


def to_csv_bytes(rows: list[list[str]]) -> bytes:
    """The template's own CSV dialect (minimal quoting, LF); a cell a spreadsheet would read as
    a formula is neutralised (an organisation's name is the only text the hub writes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([[str(neutralise(cell)) for cell in row] for row in rows])
    return buffer.getvalue().encode("utf-8")


def dsa_parts(
    own: OwnFigures, catalogue: Catalogue, year: str, *, data_dir: Path
) -> dict[str, list[list[str]]]:
    """Every part's rows (header first), filled as the module says."""
    del catalogue  # the fields are matched by metric code, named above
    period = f"{year}-01-01/{year}-12-31"
    keywords = _keyword_categories(data_dir)
    parts: dict[str, list[list[str]]] = {}
    for path in sorted(TEMPLATES.glob("part_*.csv")):
        template = read_template(path.name)
        header = template.header
        column = {name: i for i, name in enumerate(header)}
        rows = [list(row) for row in template.rows]
        for row in rows:
            if PERIOD_COLUMN in column:
                row[column[PERIOD_COLUMN]] = period
        if path.name.startswith("part_01"):
            values = {
                "Name of the service provider": own.organisation.name,
                "Starting date of reporting period": f"{year}-01-01",
                "Ending date of reporting period": f"{year}-12-31",
            }
            for row in rows:
                row[column["Value"]] = values.get(row[column["Indicator"]], "")
        category_at = next((column[c] for c in CATEGORY_COLUMNS if c in column), None)
        for row in rows:
            if category_at is None:
                break
            category = keywords.get(row[category_at])
            if category is None:
                continue
            overlap = _overlapping_child(own, year, category)
            if overlap:  # the keyword's figure cannot be told apart from its sub-category's
                for name, at in column.items():
                    if name.startswith("Contextual information on Number of notices received") or (
                        name.startswith("Contextual Information on Number of measures taken at")
                    ):
                        row[at] = overlap
                continue
            if NOTICES in column:
                notices, trusted, context = _notices(own, year, category)
                row[column[NOTICES]], row[column[TRUSTED]] = notices, trusted
                row[column["Contextual information on " + NOTICES]] = context
                row[column["Contextual information on " + MEDIAN]] = _median_context(own, year, category)
            if OWN_INITIATIVE in column:
                measures, context = _own_initiative(own, year, category)
                row[column[OWN_INITIATIVE]] = measures
                row[column["Contextual Information on " + OWN_INITIATIVE]] = context
        parts[path.name] = [header, *rows]
    return parts


def write_dsa_parts(
    own: OwnFigures, catalogue: Catalogue, year: str, out: Path, *, data_dir: Path | None = None
) -> list[Path]:
    """Write every part into ``out`` (atomically, one file per part); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in dsa_parts(own, catalogue, year, data_dir=data_dir or REPO_ROOT / "data").items():
        write_atomically(out / name, to_csv_bytes(rows))
        written.append(out / name)
    return written
