"""Closed value lists shared by the catalogue, the models and the database constraints."""

from __future__ import annotations

STAKEHOLDER_TYPES = (
    "company",
    "hotline",
    "law_enforcement",
    "clearinghouse",
    "ngo",
    "government",
    "intergovernmental",
)
ORGANISATION_STATUSES = ("member", "former_member", "suspended", "external")
SECTORS = (
    "social_media",
    "messaging",
    "search",
    "cloud_hosting",
    "file_sharing",
    "gaming",
    "adult",
    "dating",
    "marketplace",
    "web_hosting",
    "other",
)
ROLES = ("org_submitter", "org_viewer", "secretariat", "admin")
ORG_ROLES = ("org_submitter", "org_viewer")

PERIOD_KINDS = ("month", "quarter", "half_year", "year")
UNITS = ("count", "hours", "share", "boolean")
COMBINATIONS = (
    "sum",
    "ratio_of_sums",
    "mean_weighted",
    "distribution",
    "share_of_reporters",
    "latest",
)
PERIOD_ROLLUPS = ("sum", "last", "recompute", "none")
DIRECTIONS = ("higher_is_better", "lower_is_better", "neutral")
DISCLOSURE_CLASSES = ("people", "items", "time", "share", "capability")

SUBMISSION_CHANNELS = ("upload", "api", "pull", "cli", "public_source", "demo")
SUBMISSION_STATUSES = ("received", "validated", "rejected", "approved")

# Ingest and coordination (issue 3)
CONNECTOR_KINDS = ("http", "folder")
CONNECTOR_RESULTS = ("accepted", "unchanged", "not_modified", "rejected", "failed", "empty")
IDEMPOTENCY_STATES = ("in_progress", "completed")
REMINDER_STAGES = ("due_soon", "overdue", "final")
REMINDER_STATES = ("queued", "sent", "failed")

TARGET_KINDS = ("growth", "share_threshold", "time_threshold", "adoption", "participation")
TARGET_SCOPES = ("alliance", "country", "stakeholder_type")
RELEASE_STATUSES = ("draft", "built", "published", "withdrawn")

# Scheduled outputs (hub/schedules.py): where a job delivers, who defined it, how a run stands.
DELIVERIES = ("folder", "email")
JOB_SOURCES = ("config", "secretariat")
RUN_STATUSES = ("running", "succeeded", "retrying", "failed", "skipped")
BUILD_STATUSES = ("queued", "running", "built", "failed")  # a release build asked for on the page

# Dimensions are columns of the observation table; "_T" (SDMX's code for "total")
# marks a figure that is not broken down by that dimension.
DIMENSIONS = (
    "country",
    "category",
    "notice_source",
    "content_type",
    "time_bucket",
    "counterpart",
    "service",
    "recipient_type",
    "detail_level",
    "jurisdiction",
)
TOTAL = "_T"
UNKNOWN_COUNTRY = "ZZ"
EXTRA_COUNTRY_CODES = {"XK": "Kosovo", "ZZ": "Unknown or not a single country"}


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint expression restricting ``column`` to ``values``."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"
