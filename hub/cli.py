"""The ``hub`` command line: database, organisations, catalogue, imports, demo, server.

Domain errors print one line on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from hub import vocab
from hub.catalogue import Catalogue, load_catalogue_uncached
from hub.db import get_engine, session_scope
from hub.errors import CatalogueError, HubError
from hub.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
org_app = typer.Typer(no_args_is_help=True, help="Organisations.")
catalogue_app = typer.Typer(no_args_is_help=True, help="The metric catalogue.")
targets_app = typer.Typer(no_args_is_help=True, help="Alliance targets (data/targets).")
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(targets_app, name="targets")


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise HubError(f"invalid settings: {reasons}") from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step otherwise
    return settings


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision."""
    from hub import migrate

    engine = get_engine(_settings())
    migrate.upgrade(engine)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from hub import migrate

    typer.echo(migrate.current_revision(get_engine(_settings())) or "empty (run: hub db upgrade)")


@org_app.command("add")
def org_add(
    code: Annotated[str, typer.Argument(help="Short code: lower-case letters, digits, '-'.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    stakeholder_type: Annotated[
        str, typer.Option("--type", help=f"One of: {', '.join(vocab.STAKEHOLDER_TYPES)}.")
    ],
    country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2 code.")] = None,
    sector: Annotated[str | None, typer.Option(help=f"One of: {', '.join(vocab.SECTORS)}.")] = None,
    consent: Annotated[bool, typer.Option("--named/--anonymous", help="Consents to be named.")] = False,
    status: Annotated[str, typer.Option(help="member, former_member, suspended or external.")] = "member",
    parent: Annotated[str | None, typer.Option(help="Code of the parent group.")] = None,
) -> None:
    """Register an organisation."""
    from pydantic import ValidationError

    from hub.organisations import OrganisationIn, add_organisation

    try:
        data = OrganisationIn(
            code=code,
            name=name,
            stakeholder_type=stakeholder_type,
            country=country,
            sector=sector,
            consents_to_be_named=consent,
            status=status,
            parent=parent,
        )
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise HubError(f"invalid organisation: {reasons}") from None
    _, engine = _ready_engine()
    with session_scope(engine) as session:
        org = add_organisation(session, data)
        typer.echo(f"added {org.code} ({org.stakeholder_type}, {org.country or 'no country'})")


@org_app.command("list")
def org_list(
    stakeholder_type: Annotated[str | None, typer.Option("--type")] = None,
    status: Annotated[str | None, typer.Option()] = None,
) -> None:
    """List organisations (code, type, country, status, named, name), tab-separated."""
    from hub.organisations import list_organisations

    _, engine = _ready_engine()
    with session_scope(engine) as session:
        orgs = list_organisations(session, stakeholder_type=stakeholder_type, status=status)
        typer.echo("code\ttype\tcountry\tstatus\tnamed\tname")
        for org in orgs:
            named = "yes" if org.consents_to_be_named else "no"
            typer.echo(
                f"{org.code}\t{org.stakeholder_type}\t{org.country or '-'}\t{org.status}\t{named}\t{org.name}"
            )


@catalogue_app.command("check")
def catalogue_check(
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder holding catalogue/, categories/ and targets/.")
    ] = None,
) -> None:
    """Validate the catalogue, the bucket scheme, categories, crosswalks, targets, reconciliation
    flows and the disclosure policy (every problem of every file in one pass)."""
    from hub.disclosure import load_policy
    from hub.reconciliation import load_flows
    from hub.targets import load_targets

    folder = data_dir or _settings().data_dir
    try:
        catalogue = load_catalogue_uncached(folder)
    except CatalogueError as exc:
        _fail(exc.problems)
    problems: list[str] = []
    counts: dict[str, int] = {}
    for name, load in (
        ("targets", lambda: len(load_targets(folder, catalogue))),
        ("reconciliation flows", lambda: len(load_flows(folder, catalogue))),
        ("disclosure classes", lambda: len(load_policy(folder).classes)),
    ):
        try:
            counts[name] = load()
        except CatalogueError as exc:
            problems.extend(exc.problems)
    if problems:
        _fail(problems)
    typer.echo(
        f"catalogue {catalogue.version}: {len(catalogue.metrics)} metrics, "
        f"{len(catalogue.dimensions)} dimensions, {len(catalogue.buckets.buckets)} time buckets, "
        f"{len(catalogue.categories.categories)} categories, "
        f"{len(catalogue.categories.crosswalks)} crosswalks, "
        + ", ".join(f"{count} {name}" for name, count in counts.items())
        + ": OK"
    )


def _fail(problems: Iterable[str]) -> NoReturn:
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(1)


@targets_app.command("list")
def targets_list() -> None:
    """List the stored targets (code, kind, metric, scope, baseline, target value and year)."""
    from hub.targets import list_targets

    settings = _settings()
    engine = get_engine(settings)
    _ensure_schema(engine, settings)  # also brings the targets in line with data/targets
    with session_scope(engine) as session:
        typer.echo("code\tkind\tmetric\tscope\tbaseline\ttarget_value\ttarget_year")
        for row in list_targets(session):
            typer.echo(
                f"{row.code}\t{row.kind}\t{row.metric}\t{row.scope}\t{row.baseline}\t"
                f"{row.target_value:g}\t{row.target_year}"
            )


@app.command("import-public")
def import_public(
    directory: Annotated[Path, typer.Argument(help="Folder of the published figures (public-data).")],
) -> None:
    """Import NCMEC's and platforms' published figures, all or nothing."""
    if not directory.is_dir():
        raise HubError(f"{directory} is not a folder")
    from ingest.public_data import import_public_data

    settings = _settings()
    engine = get_engine(settings)
    catalogue = _ensure_schema(engine, settings)
    with session_scope(engine) as session:
        report = import_public_data(session, catalogue, directory, settings.data_dir)
    typer.echo(report.summary())


@app.command("ingest")
def ingest_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV, XLSX or JSON submission (docs/formats.md)."
        ),
    ],
    org: Annotated[str, typer.Option("--org", help="Code of the submitting organisation.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; store nothing.")] = False,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write the validation report as JSON here.")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why figures already reported change: stores a restatement."),
    ] = None,
) -> None:
    """Validate a submission file and store it: exit 0 accepted, 1 rejected (report on stderr)."""
    from ingest.pipeline import ingest_file

    settings = _settings()
    engine = get_engine(settings)
    catalogue = _ensure_schema(engine, settings)
    # a rejection raises nothing here, so the attempt's audit line is committed; the exit
    # code is decided below, outside the session (an Exit inside it would roll back)
    with session_scope(engine) as session:
        result = ingest_file(
            session, catalogue, file, org, dry_run=dry_run, supersede_reason=reason, settings=settings
        )
    report = result.report
    if report_json is not None:
        report_json.write_text(report.to_json() + "\n", encoding="utf-8")
    if not report.ok:
        typer.echo(report.to_text(), err=True)
        raise typer.Exit(1)
    typer.echo(report.to_text())
    if dry_run:
        typer.echo(f"dry run: {result.observations} observation(s) valid, nothing stored")
    elif result.created:
        typer.echo(f"stored submission {result.submission_id}: {result.observations} observation(s)")
    else:
        typer.echo(f"already stored as submission {result.submission_id}: nothing new")


@app.command("demo")
def demo(
    port: Annotated[int | None, typer.Option(help="Port (default HUB_PORT, 8050).")] = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve after loading.")] = True,
    public_data: Annotated[Path | None, typer.Option(help="Folder of the published figures.")] = None,
    release: Annotated[
        bool, typer.Option("--release/--no-release", help="Build and publish the first release.")
    ] = True,
) -> None:
    """Migrate, load the synthetic alliance and the public data, approve it, publish the first
    release, then serve the hub."""
    from hub.demo import load_demo_alliance
    from hub.demo.secretariat import SECRETARIAT_USERNAME, approve_demo_data, publish_demo_release
    from ingest.public_data import import_public_data

    settings = _settings()
    engine = get_engine(settings)
    started = time.perf_counter()
    catalogue = _ensure_schema(engine, settings)
    folder = public_data or settings.public_data_dir
    if not folder.is_dir():
        raise HubError(f"public data folder {folder} not found (set HUB_PUBLIC_DATA_DIR)")
    with session_scope(engine) as session:
        typer.echo(import_public_data(session, catalogue, folder, settings.data_dir).summary())
    with session_scope(engine) as session:
        typer.echo(load_demo_alliance(session, catalogue, seed=settings.demo_seed).summary())
    with session_scope(engine) as session:  # the demo's secretariat approves what arrived (hub.approval)
        typer.echo(f"approved {approve_demo_data(session)} submission(s) as {SECRETARIAT_USERNAME}")
    if release:
        with session_scope(engine) as session:  # and publishes the first release (hub.publication)
            typer.echo(publish_demo_release(session, catalogue, settings.data_dir))
    typer.echo(f"demo data ready in {time.perf_counter() - started:.1f} s")
    if serve:
        _serve(settings, port or settings.port)


@app.command("serve")
def serve_command(
    port: Annotated[int | None, typer.Option(help="Port (default HUB_PORT, 8050).")] = None,
    scheduler: Annotated[
        bool, typer.Option("--scheduler", help="Also run the background jobs (pull connectors) here.")
    ] = False,
) -> None:
    """Serve the dashboards on HUB_HOST (default 127.0.0.1)."""
    settings = _settings()
    catalogue = _ensure_schema(get_engine(settings), settings)
    _serve(settings, port or settings.port, catalogue if scheduler else None)


def _ready_engine() -> tuple[Settings, Engine]:
    """The settings and the process's engine, with the schema and reference data in place:
    the start of every command that works on the database."""
    settings = _settings()
    engine = get_engine(settings)
    _ensure_schema(engine, settings)
    return settings, engine


def _ensure_schema(engine, settings: Settings):  # type: ignore[no-untyped-def]
    from hub.services import prepare_database

    return prepare_database(engine, settings)


def _serve(settings: Settings, port: int, scheduler_catalogue: Catalogue | None = None) -> None:
    """Serve the web app; with a catalogue, also run the background jobs in this process."""
    import waitress

    from dashboards.app import create_app
    from hub.serving import server_options

    dash_app = create_app(get_engine(settings), settings)
    scheduler = None
    if scheduler_catalogue is not None:
        from hub.scheduler import build_scheduler

        scheduler = build_scheduler(get_engine(settings), settings, scheduler_catalogue)
        scheduler.start()
        typer.echo("background jobs running in this process")
    typer.echo(f"serving the hub on http://{settings.host}:{port}/  (Ctrl+C to stop)")
    try:
        waitress.serve(
            dash_app.server,
            host=settings.host,
            port=port,
            _quiet=True,
            **server_options(settings.max_upload_bytes),
        )
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


# Sub-commands of the ingest channels and of coordination live in their own modules and are
# registered here, one block each.

# [token]: hub token create|list|revoke (hub/tokens.py, hub/token_cli.py)
from hub.token_cli import token_app  # noqa: E402

app.add_typer(token_app, name="token")

# [user]: hub user add|list|deactivate (hub/auth.py)
from hub.auth import user_app  # noqa: E402 - registered here, after the app exists

app.add_typer(user_app, name="user")

# [connector]: hub connector add|list|run, hub scheduler (ingest/connectors.py, hub/scheduler.py)
from hub.scheduler import scheduler_command  # noqa: E402
from ingest.connectors import connector_app  # noqa: E402

app.add_typer(connector_app, name="connector")
app.command("scheduler")(scheduler_command)

# [status]: hub status, hub calendar, hub reminders (hub/coordination_cli.py)
from hub.coordination_cli import register as _register_coordination  # noqa: E402

_register_coordination(app, org_app)

from ingest.retention import retention_app  # noqa: E402 - registered here, one block per area

app.add_typer(retention_app, name="retention")

from ingest.templates import template_command  # noqa: E402

app.command("template")(template_command)


# [approval, releases]: hub approve|reject, hub period, hub submissions, hub release (hub/release_cli.py)
from hub.release_cli import register as _register_releases  # noqa: E402

_register_releases(app)

# [exports]: hub export (hub/export_cli.py, hub/exports.py)
from hub.export_cli import export_command  # noqa: E402

app.command("export")(export_command)

# [reports]: hub report alliance (reports/cli.py)
from reports.cli import report_app  # noqa: E402

app.add_typer(report_app, name="report")


def main() -> None:
    """Console entry point: domain errors become one line and exit code 1."""
    try:
        app()
    except HubError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        # e.g. the database is unreachable: say which, without a traceback or the SQL
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(f"error: database: {reason}", err=True)
        sys.exit(1)
