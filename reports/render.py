"""HTML to PDF with WeasyPrint, safely: templates with autoescape, a URL fetcher that serves
only data: URLs and this package's own static files, a time limit, and no partial file.

- **Escaping.** Jinja's autoescape is on for every template; the only markup inserted as
  is, is the SVG that reports/svg.py builds (it escapes every text it draws).
- **Fetching.** :class:`PackageOnlyFetcher` refuses the network, every file:// outside
  ``reports/static`` and therefore every redirect; a refused resource is left out.
- **Time limit.** The PDF is rendered in a child process that is killed when it runs longer
  than ``timeout`` seconds; the caller gets :class:`ReportError`.
- **Whole or nothing.** The child writes through hub.files.atomic_output: the PDF appears at
  its path complete, or not at all.
"""

from __future__ import annotations

import logging
import mimetypes
import multiprocessing
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2

from hub.errors import HubError
from hub.files import atomic_output, remove_stale_parts

PACKAGE = Path(__file__).resolve().parent
STATIC = PACKAGE / "static"
TEMPLATES = PACKAGE / "templates"
DEFAULT_TIMEOUT = 120.0


class ReportError(HubError):
    """A report could not be rendered (too slow, or the renderer failed)."""


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html",), default=True),
        undefined=jinja2.StrictUndefined,
    )


def render_html(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)


def _fetcher() -> Any:
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class PackageOnlyFetcher(URLFetcher):
        """data: URLs, and files inside reports/static; nothing else (no network, no redirect)."""

        def __init__(self) -> None:
            super().__init__(allowed_protocols={"data", "file"}, allow_redirects=False)

        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                path = Path(unquote(urlsplit(url).path)).resolve()
                if path.is_file() and path.is_relative_to(STATIC):
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": kind})
            raise ValueError(f"the report renderer fetches nothing outside its package: {url[:80]}")

    return PackageOnlyFetcher()


def _quiet() -> None:
    """WeasyPrint logs a line per step and page at INFO (from its import on): warnings only."""
    for name in ("weasyprint", "weasyprint.progress"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _write(html: str, out: str) -> None:
    """In the child process: render and write the PDF atomically."""
    _quiet()
    from weasyprint import HTML

    document = HTML(string=html, base_url=str(STATIC) + "/", url_fetcher=_fetcher())
    with atomic_output(Path(out)) as handle:
        document.write_pdf(handle)


def pdf_bytes_in_process(html: str) -> bytes:
    """The PDF in this process, without a time limit (tests and benchmarks of the renderer)."""
    _quiet()
    from weasyprint import HTML

    return bytes(HTML(string=html, base_url=str(STATIC) + "/", url_fetcher=_fetcher()).write_pdf())


def write_pdf(html: str, out: Path, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Render ``html`` to ``out`` in a child process killed after ``timeout`` seconds; the
    PDF's size in bytes. On any failure nothing is left at ``out``."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # fork is quick, but forking a process with other threads (a web server's) can copy a held
    # lock into the child: spawn a fresh interpreter there
    context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
    child = context.Process(target=_write, args=(html, str(out)), daemon=True)  # type: ignore[attr-defined]
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        remove_stale_parts(out.parent, out.name)
        raise ReportError(f"rendering the PDF took longer than {timeout:.0f} s; nothing was written")
    if child.exitcode != 0:
        remove_stale_parts(out.parent, out.name)
        raise ReportError(f"the PDF renderer failed (exit code {child.exitcode}); nothing was written")
    return out.stat().st_size
