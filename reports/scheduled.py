"""Scheduled outputs with reports: the producer ``hub scheduler`` passes to hub.schedules.

A job's exports come from hub.schedules.produce_exports; each of its reports (``alliance`` or
``country:XX``) is rendered for the latest year of the latest published release into
``FOLDER/release-N/reports/``, atomically, and recorded with its size and SHA-256.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from hub import public_views as views
from hub.catalogue import Catalogue
from hub.files import sha256_of
from hub.models import ScheduledJob
from hub.published import ReleaseCache
from hub.schedules import Delivered, ScheduleError, produce_exports
from hub.settings import Settings
from hub.targets import load_targets
from reports.alliance import alliance_report
from reports.country import country_report
from reports.render import render_html, write_pdf


def produce_outputs(
    engine: Engine, settings: Settings, catalogue: Catalogue, job: ScheduledJob, folder: Path
) -> Delivered:
    """The job's exports, then its reports, of the latest published release."""
    delivered = produce_exports(engine, settings, catalogue, job, folder)
    if not job.reports:
        return delivered
    cache = ReleaseCache(engine, keep=1)
    summary = cache.choose(None)
    if summary is None or summary.number != delivered.release:
        raise ScheduleError("the published release changed while the job ran; it will be retried")
    data = cache.get(summary)
    years = views.report_years(data)
    if not years:
        raise ScheduleError(f"release {summary.number} has no year to report on")
    year = years[0]
    files = list(delivered.files)
    for report in job.reports:
        if report == "alliance":
            context, name = (
                alliance_report(data, catalogue, load_targets(settings.data_dir, catalogue), year),
                f"alliance-{year}",
            )
        else:
            iso = report.removeprefix("country:")
            context, name = country_report(data, catalogue, iso, year), f"country-{iso}-{year}"
        relative = f"release-{summary.number}/reports/{name}.pdf"
        path = folder / relative
        size = write_pdf(render_html("report.html", context), path)
        files.append({"name": relative, "size": size, "sha256": sha256_of(path)})
    return Delivered(delivered.release, files)
