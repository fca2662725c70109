"""``hub status``, ``hub calendar`` and ``hub reminders``: the secretariat's coordination commands."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated

import typer

from hub.errors import HubError

calendar_app = typer.Typer(no_args_is_help=True, help="The reporting calendar of each organisation.")
reminders_app = typer.Typer(no_args_is_help=True, help="Reporting reminders by e-mail.")


def _context():  # type: ignore[no-untyped-def]
    """Settings, engine and catalogue, with the schema ready (the CLI's usual start)."""
    from hub.cli import _ensure_schema, _settings
    from hub.db import get_engine

    settings = _settings()
    engine = get_engine(settings)
    catalogue = _ensure_schema(engine, settings)
    return settings, engine, catalogue


def status_command(
    period: Annotated[str, typer.Option("--period", help="Period code: 2025-03, 2025-Q1, 2025-H1 or 2025.")],
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Completeness and timeliness per organisation for a period (stores the refreshed status)."""
    from hub.coordination import period_for_status, status_rows
    from hub.db import session_scope
    from hub.organisations import get_by_code

    now = datetime.now(UTC)
    ref = period_for_status(period, now.date())
    _, engine, _ = _context()
    with session_scope(engine) as session:
        if org is not None:
            get_by_code(session, org)  # unknown organisation: one-line error
        rows, summary = status_rows(session, ref, now, organisation=org)
    if as_json:
        payload = {
            "period": ref.code,
            "organisations": [r.to_dict() for r in rows],
            "summary": summary.to_dict(),
        }
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    header = (
        "organisation",
        "type",
        "expected",
        "received",
        "on_time",
        "late",
        "missing",
        "due_date",
        "state",
    )
    table = [header] + [
        (
            r.code,
            r.stakeholder_type,
            str(r.expected),
            str(r.received),
            str(r.on_time),
            str(r.late),
            str(r.missing),
            r.due_date.isoformat(),
            r.state,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    typer.echo(
        summary.line() if rows else f"{ref.code}: no organisation is expected to report for this period"
    )


def _org(session, code: str):  # type: ignore[no-untyped-def]
    from hub.organisations import get_by_code

    return get_by_code(session, code)


@calendar_app.command("show")
def calendar_show(org: Annotated[str, typer.Argument(help="Organisation code.")]) -> None:
    """List an organisation's obligations (metric, period kind, due days, active window)."""
    from hub.calendar import calendar_of
    from hub.db import session_scope

    _, engine, _ = _context()
    with session_scope(engine) as session:
        organisation = _org(session, org)
        obligations = calendar_of(session, organisation)
        contact = organisation.reporting_contact or "-"
    typer.echo(f"{org}: {len(obligations)} obligation(s); reporting contact: {contact}")
    typer.echo("metric\tperiod_kind\tdue_days\tactive_from\tactive_until")
    for o in obligations:
        until = o.active_until.isoformat() if o.active_until else "-"
        typer.echo(f"{o.metric}\t{o.period_kind}\t{o.due_days}\t{o.active_from.isoformat()}\t{until}")


@calendar_app.command("set")
def calendar_set(
    org: Annotated[str, typer.Argument(help="Organisation code.")],
    metric: Annotated[str, typer.Option("--metric", help="Catalogue metric code.")],
    kind: Annotated[str, typer.Option("--kind", help="month, quarter, half_year or year.")],
    due_days: Annotated[
        int | None, typer.Option("--due-days", min=0, max=366, help="Days after the period ends.")
    ] = None,
    active_from: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First period starts on/after.")
    ] = None,
    active_until: Annotated[
        datetime | None, typer.Option("--until", formats=["%Y-%m-%d"], help="Last period ends on/before.")
    ] = None,
) -> None:
    """Add or change one obligation."""
    from hub.calendar import DEFAULT_ACTIVE_FROM, Obligation, set_obligation
    from hub.db import session_scope

    settings, engine, catalogue = _context()
    obligation = Obligation(
        metric,
        kind,
        settings.reporting_due_days if due_days is None else due_days,
        active_from.date() if active_from else DEFAULT_ACTIVE_FROM,
        active_until.date() if active_until else None,
    )
    with session_scope(engine) as session:
        changed = set_obligation(session, catalogue, _org(session, org), obligation)
    typer.echo(
        f"{org}: {metric} by {kind}, due {obligation.due_days} days after: {'set' if changed else 'unchanged'}"
    )


@calendar_app.command("remove")
def calendar_remove(
    org: Annotated[str, typer.Argument(help="Organisation code.")],
    metric: Annotated[str, typer.Option("--metric", help="Catalogue metric code.")],
    kind: Annotated[str, typer.Option("--kind", help="month, quarter, half_year or year.")],
) -> None:
    """Remove one obligation."""
    from hub.calendar import remove_obligation
    from hub.db import session_scope

    _, engine, catalogue = _context()
    with session_scope(engine) as session:
        remove_obligation(session, catalogue, _org(session, org), metric, kind)
    typer.echo(f"{org}: {metric} by {kind} removed")


@calendar_app.command("init")
def calendar_init(
    org: Annotated[str | None, typer.Argument(help="Organisation code (or --all).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every member organisation.")] = False,
    active_from: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="Expected from (default: 1 January this year)."),
    ] = None,
) -> None:
    """Add the catalogue's default calendar (never changes obligations already set)."""
    from sqlmodel import col, select

    from hub.calendar import default_calendar, has_calendar, sync_calendar
    from hub.db import session_scope
    from hub.models import Organisation

    if (org is None) == (not every):
        raise typer.BadParameter("name one organisation or pass --all")
    start = active_from.date() if active_from else date(datetime.now(UTC).year, 1, 1)
    settings, engine, catalogue = _context()
    with session_scope(engine) as session:
        if every:
            orgs = list(session.exec(select(Organisation).order_by(col(Organisation.code))))
        else:
            orgs = [_org(session, org or "")]
        added = covered = 0
        for organisation in orgs:
            if not has_calendar(organisation):
                continue
            wanted = default_calendar(
                catalogue, organisation, due_days=settings.reporting_due_days, active_from=start
            )
            added += sync_calendar(session, catalogue, organisation, wanted)
            covered += 1
    typer.echo(f"default calendar: {added} obligation(s) added for {covered} organisation(s)")


def org_contact(
    org: Annotated[str, typer.Argument(help="Organisation code.")],
    email: Annotated[
        str | None, typer.Option("--email", help="A functional mailbox, never a person's address.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the reporting contact.")] = False,
) -> None:
    """Set the organisation's reporting mailbox (where reminders go)."""
    from hub.calendar import set_contact
    from hub.db import session_scope

    if (email is None) == (not clear):
        raise typer.BadParameter("give --email ADDRESS or --clear")
    _, engine, _ = _context()
    with session_scope(engine) as session:
        set_contact(session, _org(session, org), email)
    typer.echo(f"{org}: reporting contact {'cleared' if clear else 'set'}")


@reminders_app.command("queue")
def reminders_queue(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be queued.")] = False,
) -> None:
    """Queue the reminders the calendar calls for now (once per organisation, period, stage)."""
    from hub.db import session_scope
    from hub.reminders import queue_reminders

    _, engine, _ = _context()
    with session_scope(engine) as session:
        queued = queue_reminders(session, dry_run=dry_run)
        if dry_run:
            session.rollback()
    for c in queued:
        typer.echo(f"{c.organisation}\t{c.period.code}\t{c.stage}\tdue {c.due_date.isoformat()}")
    typer.echo(f"{len(queued)} reminder(s) {'would be ' if dry_run else ''}queued")


@reminders_app.command("send")
def reminders_send(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")
    ] = False,
) -> None:
    """Send the queued reminders through HUB_SMTP_HOST; failed ones are retried next time."""
    from hub.db import session_scope
    from hub.reminders import send_queued

    settings, engine, _ = _context()
    with session_scope(engine) as session:
        result = send_queued(session, settings, dry_run=dry_run)
    for label in result.sent:
        typer.echo(f"{'would send' if dry_run else 'sent'}\t{label}")
    for label in result.failed:
        typer.echo(f"failed\t{label}")
    for label in result.cancelled:
        typer.echo(f"{'would drop' if dry_run else 'dropped'}\t{label}\t(complete now)")
    if result.pending:
        typer.echo(f"{result.pending} reminder(s) stay queued: HUB_SMTP_HOST is not set")
    typer.echo(f"{len(result.sent)} sent, {len(result.failed)} failed, {len(result.cancelled)} dropped")
    if result.failed:
        raise HubError(f"{len(result.failed)} reminder(s) could not be sent; they are retried next time")


@reminders_app.command("list")
def reminders_list() -> None:
    """Every reminder: organisation, period, stage, state, attempts, queued and sent times."""
    from sqlmodel import col, select

    from hub.db import session_scope
    from hub.models import Organisation, Period, Reminder

    _, engine, _ = _context()
    with session_scope(engine) as session:
        rows = session.exec(
            select(Reminder, Organisation.code, Period.code)
            .join(Organisation, col(Organisation.id) == Reminder.organisation_id)
            .join(Period, col(Period.id) == Reminder.period_id)
            .order_by(col(Reminder.id))
        ).all()
    typer.echo("organisation\tperiod\tstage\tstate\tattempts\tqueued_at\tsent_at\tlast_error")
    for reminder, org, period in rows:
        sent = reminder.sent_at.isoformat() if reminder.sent_at else "-"
        typer.echo(
            f"{org}\t{period}\t{reminder.stage}\t{reminder.state}\t{reminder.attempts}\t"
            f"{reminder.queued_at.isoformat()}\t{sent}\t{reminder.last_error or '-'}"
        )


def register(app: typer.Typer, org_app: typer.Typer) -> None:
    """Attach the coordination commands to the ``hub`` command line."""
    app.command("status")(status_command)
    app.add_typer(calendar_app, name="calendar")
    app.add_typer(reminders_app, name="reminders")
    org_app.command("contact")(org_contact)
    calendar_app.command("contact")(org_contact)
