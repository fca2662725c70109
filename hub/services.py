"""Start-up work shared by the CLI, the web app and the tests."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub import migrate
from hub.catalogue import Catalogue, load_catalogue, sync_metric_definitions
from hub.db import session_scope
from hub.organisations import read_registry, upsert_registry
from hub.settings import Settings
from hub.targets import load_targets, sync_targets


def prepare_database(engine: Engine, settings: Settings) -> Catalogue:
    """Migrate to the newest schema, then load the catalogue and the organisation registry."""
    migrate.upgrade(engine)
    catalogue = load_catalogue(settings.data_dir)
    with session_scope(engine) as session:
        load_reference_data(session, settings, catalogue)
    return catalogue


def load_reference_data(session: Session, settings: Settings, catalogue: Catalogue) -> None:
    """Metric definitions, targets and the organisations named by public sources (idempotent)."""
    sync_metric_definitions(session, catalogue)
    sync_targets(session, catalogue, load_targets(settings.data_dir, catalogue))
    registry = settings.data_dir / "organisations" / "public_sources.yaml"
    upsert_registry(session, read_registry(registry))
