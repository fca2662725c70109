"""Shared pieces for reading the hub's reviewed data files (data/*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A data-file entry: unknown keys are errors (a typo must not pass silently), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# libyaml's parser when PyYAML was built with it (the wheels are): the same documents, 10-20x
# faster than the pure-Python one. Every `hub` command and every test database reads the
# registry and the catalogue, so this is most of their start-up after the imports.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's parser when available."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader


def read_yaml(path: Path, problems: list[str]) -> Any:
    """The parsed file, or None with the reason appended to ``problems`` (missing, bad YAML)."""
    try:
        return safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: file is missing")
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML ({exc})".replace("\n", " "))
    return None
