"""The upload page for signed-in organisation users (issue 3; being built)."""

from __future__ import annotations

import flask
from sqlalchemy.engine import Engine

from hub.settings import Settings


def register(server: flask.Flask, engine: Engine, settings: Settings) -> None:
    """Mount sign-in and upload pages on ``server``."""
