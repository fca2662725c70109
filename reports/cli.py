"""``hub report``: PDF transparency reports from a published release (reports/)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from hub.catalogue import Catalogue
    from hub.published import ReleaseData
    from hub.settings import Settings

report_app = typer.Typer(no_args_is_help=True, help="PDF transparency reports from a published release.")

Period = Annotated[str, typer.Option("--period", help="A year of the release, e.g. 2025.")]
AlliancePeriod = Annotated[
    str, typer.Option("--period", help="A year, half-year or quarter of the release: 2025, 2025-H1, 2025-Q3.")
]
Out = Annotated[Path, typer.Option("-o", "--out", help="The PDF file to write.")]
Release = Annotated[int | None, typer.Option("--release", help="A published release (default: the latest).")]


def _published(release: int | None) -> tuple[Settings, Catalogue, ReleaseData]:
    """The settings, the catalogue and release ``release`` (or the latest), if published."""
    from hub.catalogue import load_catalogue
    from hub.cli import _ready_engine
    from hub.published import ReleaseCache
    from reports.parts import ReportError

    settings, engine = _ready_engine()
    cache = ReleaseCache(engine, keep=1)
    summary = cache.choose(release)
    if summary is None or (release is not None and summary.number != release):
        raise ReportError(f"release {release} is not published" if release else "no release is published yet")
    return settings, load_catalogue(settings.data_dir), cache.get(summary)


def _write(context: dict[str, Any], out: Path, what: str, started: float) -> None:
    from reports.render import render_html, write_pdf

    size = write_pdf(render_html("report.html", context), out)
    seconds = time.perf_counter() - started
    typer.echo(f"{out}: {what}, release {context['release']}, {size:,} bytes ({seconds:.1f} s)")


@report_app.command("alliance")
def alliance_command(period: AlliancePeriod, out: Out, release: Release = None) -> None:
    """The alliance's transparency report for a year, half-year or quarter: targets, takedown
    speed, volumes, victims, flows, methodology, revisions and a country annex."""
    from hub.targets import load_targets
    from reports.alliance import alliance_report

    started = time.perf_counter()
    settings, catalogue, data = _published(release)
    context = alliance_report(data, catalogue, load_targets(settings.data_dir, catalogue), period)
    _write(context, out, f"alliance report {period}", started)


@report_app.command("country")
def country_command(
    iso: Annotated[str, typer.Argument(help="ISO 3166-1 alpha-2 code, e.g. DE.")],
    period: Period,
    out: Out,
    release: Release = None,
) -> None:
    """One country's profile for a year: its members' figures by stakeholder type, trends,
    takedown speed and definitions."""
    from reports.country import country_report

    started = time.perf_counter()
    _, catalogue, data = _published(release)
    _write(
        country_report(data, catalogue, iso, period), out, f"country profile {iso.upper()} {period}", started
    )


@report_app.command("org")
def org_command(
    code: Annotated[str, typer.Argument(help="The organisation's code, e.g. brightwave-social.")],
    period: Period,
    out: Out,
    logo: Annotated[Path | None, typer.Option("--logo", help="A PNG or JPEG logo for the cover.")] = None,
    omit: Annotated[
        list[str] | None,
        typer.Option(
            "--omit", help="Leave out a section: figures, trends, takedown, peers, capabilities, definitions."
        ),
    ] = None,
    dsa: Annotated[
        Path | None, typer.Option("--dsa", help="Also write the EU DSA Annex I CSV parts into this folder.")
    ] = None,
) -> None:
    """An organisation's own transparency report for a year: its approved figures (those
    approved since the latest release marked), trends, takedown time, its position among its
    peers (at least 5), capabilities and definitions."""
    from sqlmodel import Session

    from hub.catalogue import load_catalogue
    from hub.cli import _ready_engine
    from hub.own_figures import FigureContext, own_figures
    from reports.company import company_report, logo_data_url

    started = time.perf_counter()
    settings, engine = _ready_engine()
    catalogue = load_catalogue(settings.data_dir)
    with Session(engine) as session:
        context = FigureContext(session, catalogue, settings.data_dir)
        own = own_figures(session, context, code)
        peers = context.peers(session)
    picture = logo_data_url(logo.read_bytes()) if logo else ""
    report = company_report(own, peers, catalogue, period, logo=picture, omit=omit or ())
    _write(report, out, f"report of {own.organisation.name} {period}", started)
    if dsa is not None:
        from reports.dsa import write_dsa_parts

        for path in write_dsa_parts(own, catalogue, period, dsa, data_dir=settings.data_dir):
            typer.echo(f"{path}: DSA Annex I part")


@report_app.command("orgs")
def orgs_command(
    period: Period,
    out: Annotated[Path, typer.Option("--out", help="The folder to write CODE-YEAR.pdf files into.")],
    stakeholder_type: Annotated[
        str | None, typer.Option("--type", help="Only organisations of this stakeholder type, e.g. company.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=16, help="Reports rendered at once.")] = 2,
) -> None:
    """Every member organisation's own report for a year (or those of one stakeholder type),
    one PDF each; organisations without approved figures for the year are listed as skipped."""
    from sqlmodel import Session

    from hub.cli import _ready_engine
    from reports.batch import organisations_to_report, render_organisation_reports

    started = time.perf_counter()
    settings, engine = _ready_engine()
    with Session(engine) as session:
        codes = organisations_to_report(session, stakeholder_type)
    results = render_organisation_reports(
        settings.database_url, settings.data_dir, codes, period, out, workers=workers
    )
    made = [r for r in results if r.path is not None]
    for result in results:
        if result.path is None:
            typer.echo(f"skipped {result.code}: {result.problem}")
    typer.echo(
        f"{len(made)} of {len(results)} organisation reports for {period} in {out} "
        f"({time.perf_counter() - started:.1f} s)"
    )
