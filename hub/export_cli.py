"""``hub export``: a published release as files for the secretariat and re-users (hub/exports.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hub.exports import FORMATS


def export_command(
    release: Annotated[int, typer.Option("--release", help="Number of a published release.")],
    out: Annotated[Path, typer.Option("--out", help="Folder; the files go to OUT/release-N/.")],
    formats: Annotated[
        list[str],
        typer.Option("--format", help=f"One of {', '.join(FORMATS)}, or all (repeatable)."),
    ],
) -> None:
    """Export a published release: CSV, XLSX, JSON, Parquet, SDMX-CSV, a data package, a zip."""
    from hub.cli import _ensure_schema, _settings
    from hub.db import get_engine, session_scope
    from hub.exports import export_release

    chosen = list(FORMATS) if "all" in formats else formats
    settings = _settings()
    engine = get_engine(settings)
    catalogue = _ensure_schema(engine, settings)
    started = time.perf_counter()
    with session_scope(engine) as session:
        export = export_release(session, catalogue, release, chosen, out)
    for exported in export.files:
        typer.echo(f"{exported.sha256}  {exported.size:>13,}  {exported.name}")
    typer.echo(
        f"release {release}: {len(export.files)} file(s) in {export.folder} ({time.perf_counter() - started:.1f} s)"
    )
