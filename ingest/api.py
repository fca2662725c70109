"""The REST API of submissions, /api/v1/ (issue 3; being built)."""

from __future__ import annotations

import flask
from sqlalchemy.engine import Engine

from hub.settings import Settings


def register(server: flask.Flask, engine: Engine, settings: Settings) -> None:
    """Mount the API on ``server``."""
