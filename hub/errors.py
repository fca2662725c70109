"""Domain errors: each becomes a one-line message and a non-zero exit in the CLI."""

from __future__ import annotations


class HubError(Exception):
    """A problem the user can fix; its message is shown as is."""


class CatalogueError(HubError):
    """The catalogue (or another data/ file) is invalid: every problem is listed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems[:5]))


class NotFoundError(HubError):
    """A named thing (organisation, metric, period) does not exist."""


class ImportProblem(HubError):
    """A public-data or file import was refused; nothing was stored."""
