"""Which page a URL asks for, with which filters: the one place a URL's values are checked.

The URL carries every filter (``/takedown?release=2&metric=co_takedown_time&period=2024``),
so a view can be shared and bookmarked. A callback is an HTTP endpoint anyone can call with
any values: unknown parameters are dropped, values are bounded in length and each page checks
its own against what the release holds (an unknown value falls back to the default, never to
an error that echoes it). Only published releases are ever chosen (hub.published).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from dash import html

from dashboards.pages import published
from hub.catalogue import Catalogue
from hub.published import ReleaseCache
from hub.targets import TargetSpec

logger = logging.getLogger(__name__)

PARAMETERS = ("release", "metric", "period", "by", "scope", "target")
VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
NO_RELEASE = (
    "No release has been published yet. Figures appear here once the secretariat has approved and "
    "published the first release."
)
UNAVAILABLE = "The figures cannot be shown at the moment. Please try again in a few minutes."


@dataclass(frozen=True)
class Route:
    path: str
    params: dict[str, str]


def parse(pathname: str | None, search: str | None) -> Route:
    """The page path (trailing slash removed) and the known, well-formed parameters."""
    path = (pathname or "/").rstrip("/") or "/"
    params: dict[str, str] = {}
    for name, value in parse_qsl((search or "").lstrip("?"), keep_blank_values=False)[:20]:
        if name in PARAMETERS and VALUE.fullmatch(value) and name not in params:
            params[name] = value
    return Route(path, params)


def search_for(ids: Sequence[dict[str, Any]], values: Sequence[Any], current: str | None) -> str:
    """The query string after a filter changed: the filters' values, unknown names dropped,
    the others of the current URL kept (a page's filters are a subset of PARAMETERS)."""
    params = parse(None, current).params
    for ident, value in zip(ids, values, strict=False):
        name = ident.get("name") if isinstance(ident, dict) else None
        if name not in PARAMETERS:
            continue
        if isinstance(value, str) and VALUE.fullmatch(value):
            params[name] = value
        else:
            params.pop(name, None)
    ordered = {name: params[name] for name in PARAMETERS if name in params}
    return "?" + urlencode(ordered) if ordered else ""


def release_number(params: dict[str, str]) -> int | None:
    value = params.get("release", "")
    return int(value) if value.isdigit() and len(value) < 9 else None


def render(route: Route, cache: ReleaseCache, catalogue: Catalogue, targets: Sequence[TargetSpec]) -> Any:
    """The content of a published-release page (the caller checked the path is one)."""
    title, builder = published.PAGES[route.path]
    try:
        releases = cache.releases()
        chosen = next((r for r in releases if r.number == release_number(route.params)), None)
        chosen = chosen or (releases[0] if releases else None)
        if chosen is None:
            return html.Div(
                [html.H2(title, className="page-title"), html.P(NO_RELEASE, className="release-notice")]
            )
        ctx = published.PageContext(
            release=chosen,
            releases=releases,
            data=cache.get(chosen),
            catalogue=catalogue,
            targets=targets,
            params=route.params,
            path=route.path,
        )
        return builder(ctx)
    except Exception:  # a page that fails says so in general words; the log has the details
        logger.exception("page %s could not be drawn", route.path)
        return html.Div(
            [
                html.H2(title, className="page-title"),
                html.P(UNAVAILABLE, className="release-notice", role="alert"),
            ]
        )
