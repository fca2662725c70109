"""Shared pieces for reading the hub's reviewed data files (data/*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A data-file entry: unknown keys are errors (a typo must not pass silently), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: Path, problems: list[str]) -> Any:
    """The parsed file, or None with the reason appended to ``problems`` (missing, bad YAML)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: file is missing")
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML ({exc})".replace("\n", " "))
    return None
