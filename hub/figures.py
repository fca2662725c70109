"""The indicator table: the one shape every computed figure of the hub takes.

The indicator engine (hub.indicators) produces it, target progress (hub.progress) and
reconciliation read it, disclosure control (hub.disclosure) flags its cells, and a release
stores it. Keeping the columns in one place is what lets those modules be written and tested
apart. One row is one figure: a statistic of a metric, for a period, at one level of
aggregation, for one combination of breakdown dimensions.
"""

from __future__ import annotations

import pandas as pd

from hub.vocab import DIMENSIONS, TOTAL

# Levels of aggregation, from the finest. An organisation rolls up to its stakeholder type
# and to its own country; both roll up to the alliance.
LEVELS = ("organisation", "stakeholder_type", "country", "alliance")
ALLIANCE = "ALL"  # the entity of the alliance level

# What a row's value is.
# value: the metric's own value (a sum, a ratio of sums, a weighted mean, a latest value,
#   or for capabilities the share of reporters that have it)
# events: a count of events of a distribution metric (one row per time_bucket, one with
#   time_bucket "_T" for all events, not_actioned included)
# share_within: share of events actioned within ``param`` hours (exact on bucket edges)
# percentile: the ``param`` quantile (0.5 = median, 0.9 = p90) in hours, with its bounds
# reporters: how many organisations reported the metric (participation)
STATISTICS = ("value", "events", "share_within", "percentile", "reporters")

# Why a published cell shows no value (hub.disclosure). "" = published as is.
SUPPRESSION_REASONS = (
    "primary",  # a count of people below the class threshold
    "secondary",  # hidden so that a primary cell cannot be derived from totals
    "dominance",  # two largest contributors over the limit, not both consenting
    "min_events",  # a percentile or share resting on too few events
    "not_named",  # an organisation-level figure of an organisation not consenting to be named
)

KEY_COLUMNS = ("metric", "period", "period_kind", "level", "entity", *DIMENSIONS, "statistic", "param")

COLUMN_TYPES: dict[str, str] = {
    "metric": "string",  # catalogue code
    "period": "string",  # hub.periods code: 2024, 2024-H1, 2024-Q1, 2024-03
    "period_kind": "string",  # month | quarter | half_year | year
    "level": "string",  # one of LEVELS
    "entity": "string",  # organisation code, stakeholder type, ISO alpha-2, or ALLIANCE
    **dict.fromkeys(DIMENSIONS, "string"),  # breakdown, TOTAL ("_T") = not broken down
    "statistic": "string",  # one of STATISTICS
    "param": "float64",  # hours for share_within, quantile for percentile; -1.0 otherwise
    "value": "float64",  # NaN = not available
    "lower": "float64",  # percentile: lower bound of the interpolation error; NaN otherwise
    "upper": "float64",  # percentile: upper bound
    "numerator": "float64",  # ratio_of_sums, share_within, capability share: the parts
    "denominator": "float64",
    "coverage": "int64",  # organisations the figure rests on
    "event_count": "float64",  # distribution statistics: events it rests on; NaN otherwise
    "largest_org": "string",  # code of the largest contributor ("" below two contributors)
    "largest_share": "float64",  # its share of a sum (NaN where not a sum)
    "second_org": "string",
    "second_share": "float64",
    "yoy_change": "float64",  # relative change on the same key a year earlier; NaN if none
    "unit": "string",  # catalogue unit
    "disclosure_class": "string",  # catalogue class: people, items, time, share, capability
    "provisional": "bool",  # rests on at least one provisional or estimated observation
}
NO_PARAM = -1.0
INDICATOR_COLUMNS = tuple(COLUMN_TYPES)

# Columns disclosure control adds to a published table.
DISCLOSURE_COLUMNS: dict[str, str] = {
    "suppressed": "bool",
    "suppression_reason": "string",  # one of SUPPRESSION_REASONS, "" when published
    "display": "string",  # what a reader sees: the rounded value, "<10", or "x" (hidden)
}


def empty_indicator_frame() -> pd.DataFrame:
    """An indicator table with no rows and the right column types."""
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in COLUMN_TYPES.items()})


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the indicator columns, in order and typed; missing optional
    columns are filled (NaN, "", TOTAL for dimensions, NO_PARAM for param)."""
    out = frame.copy()
    for name, kind in COLUMN_TYPES.items():
        if name in out.columns:
            continue
        if name in DIMENSIONS:
            out[name] = TOTAL
        elif name == "param":
            out[name] = NO_PARAM
        elif kind == "string":
            out[name] = ""
        elif kind == "bool":
            out[name] = False
        elif kind == "int64":
            out[name] = 0
        else:
            out[name] = float("nan")
    return out.loc[:, list(INDICATOR_COLUMNS)].astype(COLUMN_TYPES)
