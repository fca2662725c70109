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
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from dash import html
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboards.pages import explore, member, published
from hub.catalogue import Catalogue
from hub.models import Organisation
from hub.published import ReleaseCache
from hub.reconciliation import Flow
from hub.targets import TargetSpec

logger = logging.getLogger(__name__)

PARAMETERS = ("release", "metric", "period", "by", "scope", "target", "submission")
SOURCES_PATH = "/sources"  # the public sources' own figures (dashboards.pages.overview)
MEMBER_PATHS = tuple(member.PATHS)  # signed-in pages, drawn for the session's account
VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
NO_RELEASE = (
    "No release has been published yet. Figures appear here once the secretariat has approved and "
    "published the first release."
)
UNAVAILABLE = "The figures cannot be shown at the moment. Please try again in a few minutes."


# The pages, in the order of the menu.
PAGES = {
    "/": published.PAGES["/"],
    "/targets": published.PAGES["/targets"],
    "/takedown": published.PAGES["/takedown"],
    "/volumes": explore.PAGES["/volumes"],
    "/victims": published.PAGES["/victims"],
    "/flows": explore.PAGES["/flows"],
    "/countries": explore.PAGES["/countries"],
    "/organisations": explore.PAGES["/organisations"],
    "/data": published.PAGES["/data"],
}
# Pages with one sub-page per item: /countries/FR, /organisations/open-social.
ITEM_PAGES = {"/countries": ("country", explore.ISO), "/organisations": ("organisation", explore.SLUG)}


class PageCache:
    """Drawn release pages, the ``size`` most recently used. A published release never
    changes, so a page is a function of the release, the path and the filters: drawing it
    again would give the same components. One per app (never module state); bounded, so
    made-up filter values cannot grow it."""

    def __init__(self, size: int = 256):
        self._size = size
        self._pages: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: tuple[Any, ...], page: Any) -> None:
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)


@dataclass(frozen=True)
class Route:
    path: str
    params: dict[str, str]
    known: bool = True  # False: no page has this address


def parse(pathname: str | None, search: str | None) -> Route:
    """The page path (trailing slash removed) and the known, well-formed parameters."""
    path = (pathname or "/").rstrip("/") or "/"
    params: dict[str, str] = {}
    for name, value in parse_qsl((search or "").lstrip("?"), keep_blank_values=False)[:20]:
        if name in PARAMETERS and VALUE.fullmatch(value) and name not in params:
            params[name] = value
    parent, _, item = path.rpartition("/")
    if parent in ITEM_PAGES:
        name, pattern = ITEM_PAGES[parent]
        if not pattern.fullmatch(item):
            return Route(path, params, known=False)
        return Route(parent, {**params, name: item})
    return Route(path, params, known=path in PAGES or path in (SOURCES_PATH, *MEMBER_PATHS))


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


def render(
    route: Route,
    cache: ReleaseCache,
    catalogue: Catalogue,
    targets: Sequence[TargetSpec],
    *,
    engine: Engine,
    flows: Sequence[Flow] = (),
    topojson_url: str = "/assets/",
    pages: PageCache | None = None,
) -> Any:
    """The content of a release page (the caller checked the route is a known page), from
    ``pages`` when it was drawn before for the same release and filters."""
    title, builder = PAGES[route.path]
    try:
        releases = cache.releases()
        chosen = next((r for r in releases if r.number == release_number(route.params)), None)
        chosen = chosen or (releases[0] if releases else None)
        if chosen is None:
            return html.Div(
                [html.H2(title, className="page-title"), html.P(NO_RELEASE, className="release-notice")]
            )
        key = (chosen.number, chosen.content_checksum, route.path, tuple(sorted(route.params.items())))
        drawn = pages.get(key) if pages is not None else None
        if drawn is not None:
            return drawn
        data = cache.get(chosen)
        names: dict[str, str] = {}
        if route.path == "/organisations":
            names = organisation_names(engine, list(explore.views.named_organisations(data)["organisation"]))
        ctx = published.PageContext(
            release=chosen,
            releases=releases,
            data=data,
            catalogue=catalogue,
            targets=targets,
            params=route.params,
            path=route.path,
            flows=flows,
            organisation_names=names,
            topojson_url=topojson_url,
            names_of=lambda codes: organisation_names(engine, codes),
        )
        drawn = builder(ctx)
        if pages is not None:
            pages.put(key, drawn)
        return drawn
    except Exception:  # a page that fails says so in general words; the log has the details
        logger.exception("page %s could not be drawn", route.path)
        return html.Div(
            [
                html.H2(title, className="page-title"),
                html.P(UNAVAILABLE, className="release-notice", role="alert"),
            ]
        )


def organisation_names(engine: Engine, codes: Sequence[str]) -> dict[str, str]:
    """The names of the organisations a release names (and only those)."""
    if not codes:
        return {}
    with Session(engine) as session:
        query = select(Organisation.code, Organisation.name).where(col(Organisation.code).in_(list(codes)))
        return {code: name for code, name in session.exec(query)}
