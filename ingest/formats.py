"""Interchange formats of submissions (schema_version "1"): columns and the JSON model.

The JSON Schema returned by :func:`aggregate_json_schema` is generated from the same pydantic
model that checks a JSON submission's shape, so the published schema cannot drift from what
the hub accepts. Values are carried as text (or numbers for ``value``) and validated by the
ingest pipeline, which reports every problem with row and column instead of pydantic's first.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.events import COLUMNS as EVENT_COLUMNS
from ingest.firewall import ColumnKind

SCHEMA_VERSION = "1"
FLAGS = ("", "provisional", "estimated")
DIMENSION_COLUMNS = (
    "country",
    "category",
    "notice_source",
    "content_type",
    "counterpart",
    "service",
    "recipient_type",
    "detail_level",
    "jurisdiction",
    "time_bucket",
)
REQUIRED_AGGREGATE_COLUMNS = ("reporter", "period", "metric", "value", "unit")
AGGREGATE_COLUMNS = ("reporter", "period", "metric", *DIMENSION_COLUMNS, "value", "unit", "flag")

# Column -> what the personal-data firewall allows in it.
AGGREGATE_KINDS: dict[str, ColumnKind] = {
    "reporter": ColumnKind.ORG_CODE,
    "period": ColumnKind.PERIOD,
    "metric": ColumnKind.CODE,
    **{name: ColumnKind.CODE for name in DIMENSION_COLUMNS},
    "country": ColumnKind.COUNTRY,
    "counterpart": ColumnKind.ORG_CODE,
    "value": ColumnKind.NUMBER,
    "unit": ColumnKind.CODE,
    "flag": ColumnKind.CODE,
}
EVENT_KINDS: dict[str, ColumnKind] = {
    "case_ref": ColumnKind.CASE_REF,
    "notice_source": ColumnKind.CODE,
    "category": ColumnKind.CODE,
    "content_type": ColumnKind.CODE,
    "hosting_country": ColumnKind.COUNTRY,
    "received_at": ColumnKind.TIMESTAMP,
    "actioned_at": ColumnKind.TIMESTAMP,
    "outcome": ColumnKind.CODE,
}
assert tuple(EVENT_KINDS) == EVENT_COLUMNS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AggregateObservation(_Strict):
    """One figure of a JSON aggregate submission; dimensions left out mean the total."""

    period: str = Field(description="2025-03, 2025-Q1, 2025-H1 or 2025, matching the metric's frequency")
    metric: str = Field(description="a metric code of the catalogue")
    country: str | None = None
    category: str | None = None
    notice_source: str | None = None
    content_type: str | None = None
    counterpart: str | None = None
    service: str | None = None
    recipient_type: str | None = None
    detail_level: str | None = None
    jurisdiction: str | None = None
    time_bucket: str | None = None
    value: float | str | None = Field(description="the figure; null when not available")
    unit: str = Field(description="the metric's unit in the catalogue: count, hours, share or boolean")
    flag: Literal["", "provisional", "estimated"] | None = None
    reporter: str | None = Field(default=None, description="optional; must equal the submitting organisation")


class AggregateSubmission(_Strict):
    """A JSON aggregate submission: the reporter and its observations."""

    schema_version: Literal["1"]
    reporter: str = Field(description="the submitting organisation's code")
    observations: list[AggregateObservation] = Field(min_length=1, max_length=100_000)


def aggregate_json_schema() -> dict[str, Any]:
    """The JSON Schema of a JSON aggregate submission, to publish at the API."""
    schema = AggregateSubmission.model_json_schema()
    schema["$id"] = "https://hub.invalid/schemas/aggregate-submission-1.json"
    return schema
