"""``hub token create|list|revoke``: organisation API tokens (see hub/tokens.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

token_app = typer.Typer(no_args_is_help=True, help="Organisation API tokens (shown once, stored hashed).")


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option("--org", help="Code of the organisation the token acts for.")],
    label: Annotated[str, typer.Option("--label", help="What the token is for, e.g. 'reporting job'.")],
    days: Annotated[
        int | None, typer.Option("--days", min=1, max=3650, help="Lifetime (default HUB_TOKEN_DAYS).")
    ] = None,
) -> None:
    """Create a token and print it once: it cannot be shown again."""
    from hub.cli import _ready_engine
    from hub.db import session_scope
    from hub.organisations import get_by_code
    from hub.tokens import create_token

    settings, engine = _ready_engine()
    with session_scope(engine) as session:
        organisation = get_by_code(session, org)
        plaintext, token = create_token(session, organisation, label, days=days or settings.token_days)
    typer.echo(f"token {token.id} for {org} ({token.label}), expires {token.expires_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(plaintext)
    typer.echo(
        "warning: this is the only time the token is shown; the hub keeps only its hash. "
        "Store it in a secret store now.",
        err=True,
    )


@token_app.command("list")
def token_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's tokens.")] = None,
) -> None:
    """List tokens (id, organisation, label, prefix, state, expiry, last use), tab-separated."""
    from hub.cli import _ready_engine
    from hub.db import session_scope
    from hub.organisations import get_by_code
    from hub.tokens import list_tokens

    _, engine = _ready_engine()
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        tokens = list_tokens(session, get_by_code(session, org) if org else None)
    typer.echo("id\torganisation\tlabel\tprefix\tstate\texpires_at\tlast_used_at")
    for info in tokens:
        last = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "-"
        typer.echo(
            f"{info.id}\t{info.organisation}\t{info.label}\t{info.prefix}...\t{info.state(now)}\t"
            f"{info.expires_at:%Y-%m-%d %H:%M}\t{last}"
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see hub token list).")],
) -> None:
    """Revoke a token at once."""
    from hub.cli import _ready_engine
    from hub.db import session_scope
    from hub.tokens import revoke_token

    _, engine = _ready_engine()
    with session_scope(engine) as session:
        token = revoke_token(session, token_id)
    typer.echo(f"token {token.id} revoked")
