"""``hub report``: PDF transparency reports from a published release (reports/)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

report_app = typer.Typer(no_args_is_help=True, help="PDF transparency reports from a published release.")


@report_app.command("alliance")
def alliance_command(
    period: Annotated[str, typer.Option("--period", help="A year of the release, e.g. 2025.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The PDF file to write.")],
    release: Annotated[
        int | None, typer.Option("--release", help="A published release (default: the latest).")
    ] = None,
) -> None:
    """The alliance's transparency report for a year: targets, takedown speed, volumes,
    victims, flows, methodology, revisions and a country annex."""
    from hub.catalogue import load_catalogue
    from hub.cli import _ready_engine
    from hub.published import ReleaseCache
    from hub.targets import load_targets
    from reports.alliance import ReportError, alliance_report
    from reports.render import render_html, write_pdf

    settings, engine = _ready_engine()
    started = time.perf_counter()
    cache = ReleaseCache(engine, keep=1)
    summary = cache.choose(release)
    if summary is None or (release is not None and summary.number != release):
        raise ReportError(f"release {release} is not published" if release else "no release is published yet")
    catalogue = load_catalogue(settings.data_dir)
    context = alliance_report(
        cache.get(summary), catalogue, load_targets(settings.data_dir, catalogue), period
    )
    size = write_pdf(render_html("alliance.html", context), out)
    typer.echo(
        f"{out}: alliance report {period}, release {summary.number}, {size:,} bytes ({time.perf_counter() - started:.1f} s)"
    )
