"""``hub approve``, ``hub reject``, ``hub period``, ``hub submissions`` and ``hub release``: the
secretariat's approval and release commands (hub/approval.py, hub/releases.py).

Every command that decides something acts as a named account (``--as USERNAME``): it must
exist, be active and have the role secretariat or admin; the audit trail names it by id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hub.errors import HubError

if TYPE_CHECKING:
    from sqlmodel import Session

    from hub.models import User

period_app = typer.Typer(no_args_is_help=True, help="Period locks after approval.")
submissions_app = typer.Typer(no_args_is_help=True, help="Submissions awaiting or after approval.")
release_app = typer.Typer(no_args_is_help=True, help="Numbered, immutable releases of the published tables.")

AsUser = Annotated[str, typer.Option("--as", help="Username of the secretariat account acting.")]


def _engine():  # type: ignore[no-untyped-def]
    from hub.cli import _ready_engine

    return _ready_engine()


def _acting(as_user: str, action: Callable[[Session, User], Any], done: str) -> None:
    """Run ``action`` in one transaction as the account ``as_user`` (secretariat or admin,
    hub.approval.acting_user), then say what was done."""
    from hub.approval import acting_user
    from hub.db import session_scope

    _, engine = _engine()
    with session_scope(engine) as session:
        action(session, acting_user(session, as_user))
    typer.echo(done)


def _decide_targets(ids: list[int] | None, period: str | None) -> None:
    if bool(ids) == (period is not None):
        raise HubError("give submission ids, or --period for all pending ones in a period (not both)")


def approve_command(
    as_user: AsUser,
    ids: Annotated[list[int] | None, typer.Argument(help="Submission ids.")] = None,
    period: Annotated[str | None, typer.Option("--period", help="Approve every pending one.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="With --period: one organisation.")] = None,
    stakeholder_type: Annotated[str | None, typer.Option("--type", help="With --period: one type.")] = None,
) -> None:
    """Approve validated submissions (by id, or all pending ones of a period)."""
    from hub.approval import acting_user, approve, approve_period
    from hub.db import session_scope

    _decide_targets(ids, period)
    _, engine = _engine()
    with session_scope(engine) as session:
        actor = acting_user(session, as_user)
        if period is not None:
            done = approve_period(session, actor, period, organisation=org, stakeholder_type=stakeholder_type)
        else:
            done = approve(session, actor, ids or [])
    typer.echo(f"approved {len(done)} submission(s)" + (f": {', '.join(map(str, done))}" if done else ""))


def reject_command(
    as_user: AsUser,
    ids: Annotated[list[int] | None, typer.Argument(help="Submission ids.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown to the organisation).")] = "",
    period: Annotated[str | None, typer.Option("--period", help="Reject every pending one.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="With --period: one organisation.")] = None,
    stakeholder_type: Annotated[str | None, typer.Option("--type", help="With --period: one type.")] = None,
) -> None:
    """Reject validated submissions with a reason (by id, or all pending ones of a period)."""
    from hub.approval import acting_user, reject, reject_period
    from hub.db import session_scope

    _decide_targets(ids, period)
    _, engine = _engine()
    with session_scope(engine) as session:
        actor = acting_user(session, as_user)
        if period is not None:
            done = reject_period(
                session, actor, period, reason, organisation=org, stakeholder_type=stakeholder_type
            )
        else:
            done = reject(session, actor, ids or [], reason)
    typer.echo(f"rejected {len(done)} submission(s)" + (f": {', '.join(map(str, done))}" if done else ""))


@period_app.command("lock")
def period_lock(
    period: Annotated[str, typer.Argument(help="Period code: 2025-03, 2025-Q1, 2025-H1 or 2025.")],
    as_user: AsUser,
    allow_pending: Annotated[
        bool, typer.Option("--allow-pending", help="Lock even if submissions still await a decision.")
    ] = False,
) -> None:
    """Lock a period (and the periods inside it): later changes only as restatements."""
    from hub.approval import lock_period

    _acting(
        as_user, lambda s, user: lock_period(s, user, period, allow_pending=allow_pending), f"locked {period}"
    )


@period_app.command("unlock")
def period_unlock(
    period: Annotated[str, typer.Argument(help="Period code.")],
    as_user: AsUser,
    reason: Annotated[str, typer.Option("--reason", help="Why the period opens again (audited).")],
) -> None:
    """Unlock a period, with a reason."""
    from hub.approval import unlock_period

    _acting(as_user, lambda s, user: unlock_period(s, user, period, reason), f"unlocked {period}")


@period_app.command("list")
def period_list() -> None:
    """List locked periods (period, locked at, by), tab-separated."""
    from hub.approval import list_locks
    from hub.db import session_scope

    _, engine = _engine()
    with session_scope(engine) as session:
        locks = list_locks(session)
    typer.echo("period\tlocked_at\tlocked_by")
    for lock in locks:
        typer.echo(f"{lock.period}\t{lock.locked_at:%Y-%m-%d %H:%M}\t{lock.locked_by}")


@submissions_app.command("list")
def submissions_list(
    status: Annotated[
        str | None, typer.Option("--status", help="received, validated, rejected, approved.")
    ] = None,
    period: Annotated[str | None, typer.Option("--period", help="With figures in this period.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
) -> None:
    """List submissions (id, organisation, type, scope, version, channel, status, received, reason)."""
    from hub import vocab
    from hub.approval import list_submissions
    from hub.db import session_scope

    if status is not None and status not in vocab.SUBMISSION_STATUSES:
        raise HubError(f"status must be one of {', '.join(vocab.SUBMISSION_STATUSES)}")
    _, engine = _engine()
    with session_scope(engine) as session:
        rows = list_submissions(session, status=status, period=period, organisation=org)
    typer.echo("id\torganisation\ttype\tscope\tversion\tchannel\tstatus\treceived_at\treason")
    for r in rows:
        reason = r.review_reason or r.supersede_reason or "-"
        typer.echo(
            f"{r.id}\t{r.organisation}\t{r.stakeholder_type}\t{r.scope}\t{r.version}\t{r.channel}\t"
            f"{r.status}\t{r.received_at:%Y-%m-%d %H:%M}\t{reason}"
        )
    typer.echo(f"{len(rows)} submission(s)", err=True)


@release_app.command("build")
def release_build(
    title: Annotated[str, typer.Option("--title", help="The release's title.")],
    as_user: AsUser,
    notes: Annotated[str | None, typer.Option("--notes", help="Notes shown with the release.")] = None,
) -> None:
    """Build the next release from approved data (status built; publish it with hub release publish)."""
    from hub.approval import acting_user
    from hub.catalogue import load_catalogue
    from hub.db import session_scope
    from hub.publication import build_protected_release

    settings, engine = _engine()
    catalogue = load_catalogue(settings.data_dir)
    with session_scope(engine) as session:
        release = build_protected_release(
            session,
            catalogue=catalogue,
            data_dir=settings.data_dir,
            title=title,
            built_by=acting_user(session, as_user),
            notes=notes,
        )
        number, checksum = release.number, release.content_checksum
    typer.echo(f"built release {number} ({checksum})")


@release_app.command("publish")
def release_publish(
    number: Annotated[int, typer.Argument(help="Release number.")],
    as_user: AsUser,
) -> None:
    """Publish a built release: from now on it never changes."""
    from hub.releases import publish_release

    _acting(as_user, lambda s, user: publish_release(s, number, user), f"published release {number}")


@release_app.command("withdraw")
def release_withdraw(
    number: Annotated[int, typer.Argument(help="Release number.")],
    as_user: AsUser,
    reason: Annotated[str, typer.Option("--reason", help="Why it is withdrawn (public).")],
) -> None:
    """Withdraw a published release; it stays readable, marked withdrawn."""
    from hub.releases import withdraw_release

    _acting(as_user, lambda s, user: withdraw_release(s, number, user, reason), f"withdrew release {number}")


@release_app.command("notice")
def release_notice(
    number: Annotated[int, typer.Argument(help="Release number.")],
    as_user: AsUser,
    text: Annotated[str, typer.Option("--text", help="The correction notice.")],
) -> None:
    """Attach a correction notice to a release."""
    from hub.releases import add_notice

    _acting(as_user, lambda s, user: add_notice(s, number, user, text), f"notice added to release {number}")


@release_app.command("list")
def release_list() -> None:
    """List releases (number, status, built, published, previous, tables, title), tab-separated."""
    from hub.db import session_scope
    from hub.releases import list_releases

    _, engine = _engine()
    with session_scope(engine) as session:
        rows = list_releases(session)
    typer.echo("number\tstatus\tbuilt_at\tpublished_at\tprevious\ttables\ttitle")
    for r in rows:
        built = f"{r.built_at:%Y-%m-%d %H:%M}" if r.built_at else "-"
        published = f"{r.published_at:%Y-%m-%d %H:%M}" if r.published_at else "-"
        tables = ",".join(f"{name}:{rows}" for name, rows in r.tables.items())
        typer.echo(f"{r.number}\t{r.status}\t{built}\t{published}\t{r.previous or '-'}\t{tables}\t{r.title}")


def _print_frame(frame, limit: int) -> None:  # type: ignore[no-untyped-def]
    shown = frame.head(limit) if limit > 0 else frame
    typer.echo(shown.to_csv(sep="\t", index=False, na_rep="").rstrip("\n"))
    if len(frame) > len(shown):
        typer.echo(f"... {len(frame) - len(shown)} more row(s) (--limit 0 shows all)", err=True)


@release_app.command("show")
def release_show(
    number: Annotated[int, typer.Argument(help="Release number.")],
    table: Annotated[str | None, typer.Option("--table", help="Print this table (tab-separated).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to print; 0 for all.")] = 50,
) -> None:
    """Show a release: its status, tables and notices, or one table's rows."""
    from hub.db import session_scope
    from hub.releases import get_release, list_releases, notices, read_release_table

    _, engine = _engine()
    with session_scope(engine) as session:
        if table is not None:
            _print_frame(read_release_table(session, number, table), limit)
            return
        release = get_release(session, number)
        info = next(r for r in list_releases(session) if r.number == number)
        texts = [(n.created_at, n.text) for n in notices(session, number)]
        withdrawn = release.withdrawn_reason
    typer.echo(f"release {info.number}: {info.title}")
    typer.echo(f"status: {info.status}" + (f" ({withdrawn})" if withdrawn else ""))
    typer.echo(f"previous: {info.previous or '-'}  checksum: {info.content_checksum}")
    for name, rows in info.tables.items():
        typer.echo(f"table {name}: {rows} row(s)")
    for at, text in texts:
        typer.echo(f"notice {at:%Y-%m-%d %H:%M}: {text}")


@release_app.command("diff")
def release_diff(
    first: Annotated[int, typer.Argument(help="Earlier release number.")],
    second: Annotated[int, typer.Argument(help="Later release number.")],
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to print; 0 for all.")] = 50,
) -> None:
    """Figures that changed from one release to another, and why (tab-separated)."""
    from hub.catalogue import load_catalogue
    from hub.db import session_scope
    from hub.releases import diff_releases

    settings, engine = _engine()
    catalogue = load_catalogue(settings.data_dir)
    with session_scope(engine) as session:
        frame = diff_releases(session, first, second, catalogue=catalogue)
    _print_frame(frame, limit)


def register(app: typer.Typer) -> None:
    """Add the commands to the ``hub`` app (called from hub.cli)."""
    app.command("approve")(approve_command)
    app.command("reject")(reject_command)
    app.add_typer(period_app, name="period")
    app.add_typer(submissions_app, name="submissions")
    app.add_typer(release_app, name="release")
