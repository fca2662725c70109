"""Reports as the dashboards hand them out: rendered once per published release and kept.

A report of a release never changes (the release does not), so its PDF is rendered on the
first request and kept under ``HUB_VAR_DIR/reports/``, in a folder named after the release's
number and content checksum; later requests get the kept file. At most ``renders`` PDFs are
rendered at the same time (each takes a few seconds of CPU).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import Session

from hub.catalogue import Catalogue
from hub.files import remove_stale_parts
from hub.own_figures import FigureContext, own_figures
from hub.published import ReleaseData
from hub.targets import TargetSpec
from reports.alliance import alliance_report
from reports.company import company_report
from reports.country import country_report
from reports.render import render_html, write_pdf

REPORT_NAME = re.compile(r"alliance-(?P<year>\d{4})|country-(?P<iso>[A-Z]{2})-(?P<cyear>\d{4})")


class PublicReports:
    """The public PDF reports of published releases (alliance, country), kept on disk."""

    def __init__(self, folder: Path, catalogue: Catalogue, targets: Sequence[TargetSpec], renders: int = 2):
        self.folder = folder
        self.catalogue = catalogue
        self.targets = tuple(targets)
        self._renders = threading.BoundedSemaphore(renders)

    def path(self, data: ReleaseData, name: str) -> Path:
        """The PDF ``name`` (``alliance-2025``, ``country-DE-2025``) of the release, rendered if
        not kept yet. Raises ValueError for a name that is not a report, ReportError for a
        report the release cannot make."""
        match = REPORT_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not a report name: {name[:40]!r}")
        summary = data.summary
        kept = self.folder / f"release-{summary.number}-{summary.content_checksum[:16]}" / f"{name}.pdf"
        if kept.is_file():
            return kept
        if match["year"]:
            context = alliance_report(data, self.catalogue, self.targets, match["year"])
        else:
            context = country_report(data, self.catalogue, match["iso"], match["cyear"])
        with self._renders:
            if not kept.is_file():
                write_pdf(render_html("report.html", context), kept)
        return kept


class OwnReports:
    """Organisations' own reports for their signed-in users: rendered on each request (their
    data changes with every approval, and no one else may read them), never kept on disk
    after the response; at most ``renders`` at the same time."""

    def __init__(self, folder: Path, catalogue: Catalogue, data_dir: Path, renders: int = 2):
        self.folder = folder
        self.catalogue = catalogue
        self.data_dir = data_dir
        self._renders = threading.BoundedSemaphore(renders)

    def pdf(self, session: Session, code: str, year: str) -> bytes:
        """The report of organisation ``code`` for ``year`` as PDF bytes (ReportError when it
        has no approved figures for the year)."""
        context = FigureContext(session, self.catalogue, self.data_dir)
        own = own_figures(session, context, code)
        document = company_report(own, context.peers(session), self.catalogue, year)
        html = render_html("report.html", document)
        self.folder.mkdir(parents=True, exist_ok=True)
        # a name of its own per request (several web processes render side by side)
        handle, name = tempfile.mkstemp(prefix=f"{code}-{year}-", suffix=".pdf", dir=self.folder)
        os.close(handle)
        out = Path(name)
        with self._renders:
            try:
                write_pdf(html, out)
                return out.read_bytes()
            finally:
                out.unlink(missing_ok=True)
                remove_stale_parts(self.folder, out.name)
