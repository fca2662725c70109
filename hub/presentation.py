"""Presentation shared by the dashboards and the PDF reports: the colour-blind-safe palette,
stakeholder-type labels and colours, and number formats, so both outputs look and read alike.
"""

from __future__ import annotations

import math

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
STAKEHOLDER_LABELS = {
    "company": "Companies",
    "hotline": "Hotlines",
    "law_enforcement": "Law enforcement",
    "clearinghouse": "Clearinghouses",
    "ngo": "NGOs",
    "government": "Governments",
    "intergovernmental": "Intergovernmental bodies",
    "other": "Other (types with fewer than 3 members)",
}
STAKEHOLDER_COLOURS = {
    "company": OKABE_ITO["blue"],
    "hotline": OKABE_ITO["orange"],
    "law_enforcement": OKABE_ITO["vermillion"],
    "clearinghouse": OKABE_ITO["sky_blue"],
    "ngo": OKABE_ITO["bluish_green"],
    "government": OKABE_ITO["reddish_purple"],
    "intergovernmental": OKABE_ITO["black"],
    "other": OKABE_ITO["yellow"],
}
MISSING = "–"  # shown for a figure the source did not publish


def stakeholder_label(code: str) -> str:
    return STAKEHOLDER_LABELS.get(code, code.replace("_", " ").capitalize())


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_int(value: float | None) -> str:
    """A count with thousands separators (36,210,368); a dash when not available."""
    return MISSING if _missing(value) else f"{value:,.0f}"


def fmt_decimal(value: float | None, places: int = 2) -> str:
    return MISSING if _missing(value) else f"{value:,.{places}f}"


def fmt_pct(value: float | None, *, signed: bool = False) -> str:
    """A percentage, with two decimals below 1% so small gaps do not read as 0.0%.

    Signed ones use a true minus sign so the sign reads clearly.
    """
    if _missing(value):
        return MISSING
    assert value is not None
    places = 2 if abs(value) < 1 else 1
    text = f"{value:+,.{places}f}%" if signed else f"{value:,.{places}f}%"
    return text.replace("-", "−")


def fmt_unit(value: float | None, unit: str) -> str:
    """A figure in its unit: shares as percentages, hours with one decimal, counts whole."""
    if _missing(value):
        return "–"
    assert value is not None
    if unit == "share":
        return fmt_pct(value * 100)
    if unit == "hours":
        return f"{value:,.1f} h"
    return fmt_int(value)


def fmt_hours(hours: float) -> str:
    """A threshold in hours as people say it: 24 h, 3 days, 7 days."""
    return f"{int(hours // 24)} days" if hours >= 48 and hours % 24 == 0 else f"{int(hours)} h"


def statistic_label(statistic: str, param: float) -> str:
    """What a statistic of a metric is, in words ("" for the metric's own value)."""
    if statistic == "share_within":
        return f"share within {fmt_hours(param)}"
    if statistic == "percentile":
        return "median" if param == 0.5 else f"{round(param * 100)}th percentile"
    return ""
