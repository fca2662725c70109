"""The building blocks of every report: chapters, and tables, charts and texts inside them,
with published figures formatted the one way (hidden ones keep their mark)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.catalogue import Catalogue
from hub.errors import HubError
from hub.presentation import fmt_unit
from hub.public_views import metric_definitions
from hub.published import ReleaseSummary

DISCLOSURE_TEXT = (
    'Disclosure control: counts of people below 10 are withheld and shown as "<10"; other cells are '
    'withheld ("x") so that none of them can be worked out from totals of rows, columns or the '
    "hierarchy, also across releases; a total where the two largest contributors make up more than "
    "85% is withheld unless they agreed to be named; a median or percentile rests on at least 10 events."
)
COMBINATION_TEXT = (
    "Sums are added across organisations; ratios are ratios of sums, never averages of ratios; "
    "takedown-time distributions are merged bucket by bucket. Every figure states how many "
    "organisations it rests on."
)


class ReportError(HubError):
    """A report cannot be made as asked (no such period, no published release)."""


@dataclass
class Section:
    """One chapter: an anchor for the table of contents, its title, and its parts."""

    anchor: str
    title: str
    parts: list[dict[str, Any]] = field(default_factory=list)


def shown(value: float, unit: str) -> str:
    return fmt_unit(value, unit)


def published(value: Any, display: Any, suppressed: Any, unit: str = "count") -> str:
    """A published cell as the report prints it: its mark when hidden, else the formatted value."""
    if bool(suppressed) or value is None or (isinstance(value, float) and math.isnan(value)):
        return str(display) if str(display) not in ("", "nan", "None") else "–"
    return shown(float(value), unit)


def table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "", numeric: Sequence[int] = ()
) -> dict[str, Any]:
    return {
        "kind": "table",
        "columns": list(columns),
        "rows": [list(r) for r in rows],
        "caption": caption,
        "numeric": set(numeric),
    }


def chart(markup: str, caption: str) -> dict[str, Any]:
    return {"kind": "chart", "svg": markup, "caption": caption}


def text(text: str) -> dict[str, Any]:
    return {"kind": "text", "text": text}


def definitions_table(catalogue: Catalogue, metrics: Sequence[str]) -> dict[str, Any]:
    """Each metric's definition, unit and combination rule."""
    definitions = metric_definitions(catalogue, metrics)
    rows = [
        [str(r.name), str(r.definition), str(r.unit), str(r.combination).replace("_", " ")]
        for r in definitions.itertuples(index=False)
    ]
    return table(["Metric", "Definition", "Unit", "Combined as"], rows, "Metric definitions")


def document(summary: ReleaseSummary, title: str, period: str, sections: Sequence[Section]) -> dict[str, Any]:
    """What the shared template (templates/report.html) needs: the cover's facts and the chapters."""
    return {
        "title": title,
        "period": period,
        "release": summary.number,
        "release_title": summary.title,
        "published": summary.published_at.strftime("%d %B %Y") if summary.published_at else "",
        "checksum": summary.content_checksum,
        "kicker": "Global transparency hub against online child sexual exploitation",
        "cover_note": (
            'Every figure comes from the published release and has passed disclosure control: "<10" marks '
            'a count of people below ten, "x" a figure withheld so that another one cannot be worked out.'
        ),
        "logo": "",
        "date_label": "Published",
        "subtitle": f"Release {summary.number}: {summary.title}",
        "sections": list(sections),
    }
