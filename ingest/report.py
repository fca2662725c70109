"""The validation report of a submission: every problem, machine-readable and readable.

A report travels to responses, logs and the audit trail, so it never holds a submitted value:
each problem names only where it is (row, column), which rule it breaks and how to fix it.
Callers build hints from fixed text and catalogue codes, never from the submitted cell.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]
MAX_TEXT_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    """One broken rule; ``row`` is the file line (CSV) or the record number (JSON), 0 = whole file."""

    row: int
    column: str
    rule: str
    hint: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"row {self.row}, column {self.column}" if self.row else f"file, column {self.column}"
        if not self.column:
            where = f"row {self.row}" if self.row else "file"
        return f"{self.severity}: {where}: {self.rule}: {self.hint}"


@dataclass
class ValidationReport:
    """All problems of one submission plus what was read (format, rows)."""

    source_name: str
    file_format: str = "unknown"
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add(self, row: int, column: str, rule: str, hint: str, severity: Severity = "error") -> None:
        self.problems.append(Problem(row, column, rule, hint, severity))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Plausibility findings: shown and stored, never blocking."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def sorted(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: (p.row, p.column, p.rule))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": "1",
            "source_name": self.source_name,
            "format": self.file_format,
            "rows": self.rows,
            "accepted": self.ok,
            "error_count": len(self.errors),
            "warning_count": len(self.problems) - len(self.errors),
            "problems": [asdict(p) for p in self.sorted()],
            "warnings": [
                {"row": p.row, "column": p.column, "rule": p.rule, "hint": p.hint}
                for p in sorted(self.warnings, key=lambda p: (p.row, p.column, p.rule))
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self, limit: int = MAX_TEXT_PROBLEMS) -> str:
        """Readable report: a summary line, then at most ``limit`` problems and a count of the rest."""
        verdict = "accepted" if self.ok else "rejected"
        lines = [
            f"{self.source_name}: {self.file_format}, {self.rows} row(s), {verdict}: "
            f"{len(self.errors)} error(s), {len(self.problems) - len(self.errors)} warning(s)"
        ]
        problems = self.sorted()
        lines += [f"  {p}" for p in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"  ... and {len(problems) - limit} more problem(s) (see --report-json)")
        if self.ok and self.warnings:
            lines.append(
                "  warnings do not block: the figures are stored with them; check and restate if wrong"
            )
        return "\n".join(lines)
