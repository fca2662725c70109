"""Downloadable submission templates per stakeholder type: only the metrics that type reports."""

from __future__ import annotations

import csv
import io

from hub.catalogue import Catalogue
from ingest.formats import AGGREGATE_COLUMNS

FORMATS = ("csv", "xlsx")


def template_metrics(catalogue: Catalogue, stakeholder_type: str) -> list[str]:
    """Codes of the metrics an organisation of ``stakeholder_type`` reports, in catalogue order."""
    return [code for code, spec in catalogue.metrics.items() if stakeholder_type in spec.reported_by]


def build_template(catalogue: Catalogue, stakeholder_type: str, fmt: str, reporter: str = "") -> bytes:
    """A template file: the header and one empty row per metric the type reports."""
    if fmt != "csv":
        raise ValueError(f"template format must be one of {', '.join(FORMATS)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AGGREGATE_COLUMNS)
    for code in template_metrics(catalogue, stakeholder_type):
        spec = catalogue.metrics[code]
        row = dict.fromkeys(AGGREGATE_COLUMNS, "")
        row.update(reporter=reporter, metric=code, unit=spec.unit)
        writer.writerow(row.values())
    return buffer.getvalue().encode()
