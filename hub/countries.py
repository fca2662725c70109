"""ISO 3166-1 alpha-2 country codes (from pycountry) plus the two the hub also accepts."""

from __future__ import annotations

from functools import lru_cache

import pycountry

from hub.vocab import EXTRA_COUNTRY_CODES


@lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    """Code -> short English name for every accepted country code."""
    names = {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    names.update(EXTRA_COUNTRY_CODES)
    return names


def is_country_code(code: str) -> bool:
    return code in country_names()


def country_name(code: str) -> str:
    return country_names().get(code, code)


@lru_cache(maxsize=1)
def alpha3_codes() -> dict[str, str]:
    """Alpha-2 -> alpha-3, for maps (Plotly's choropleth speaks ISO alpha-3)."""
    codes = {c.alpha_2: c.alpha_3 for c in pycountry.countries}
    codes["XK"] = "XKX"
    return codes
