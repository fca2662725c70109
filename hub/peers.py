"""Peer distributions: where an organisation stands among organisations of its type.

A company or hotline wants to know whether its median time to takedown is fast or slow for
its kind of organisation. Publishing its peers' quartiles would publish their figures: with
five peers the median *is* one organisation's figure, and two overlapping windows of a
smoothed quantile give the difference of two figures away. So the release publishes a
micro-aggregated distribution (docs/disclosure.md, "Peer distributions"), built once, from the
internal protected table, when the release is built:

- the organisation-level figures of one metric, statistic, period and stakeholder type are
  sorted and cut into disjoint *bands* of consecutive figures, as equal in size as possible,
  each of at least ``min_band`` organisations (at most four bands: quarters);
- only each band's mean is published, never a minimum, maximum or order statistic, so a
  member of a band learns only the sum of at least two other figures;
- nothing is published for fewer than ``min_contributors`` organisations;
- only organisations that are not named contribute (a named organisation's figure is
  published: a band holding known figures would give its other members away);
- counts of people are published only when no contributor's figure is a small count
  (0 < v < the class threshold), and sums of items only when no band is dominated by its two
  largest members (the hidden band would follow from the published total by subtraction,
  so one dominated band hides the whole distribution);
- nothing where the stakeholder type's own cell is hidden (the bands would give it back),
  nor where two neighbouring bands have the same mean (sorted, all their members would have
  that figure).

An organisation's own position is worked out on its side, from its own figure and the
published band means (:func:`position`); the release stores nothing about any one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from hub.datafiles import StrictModel
from hub.vocab import DIMENSIONS, TOTAL

# statistics compared between peers; events and reporters counts are not a comparison of
# performance, capabilities (unit boolean) are published as shares of reporters already
PEER_STATISTICS = ("value", "share_within", "percentile")
MAX_BANDS = 4
BAND_NAMES = {
    1: ("all peers",),
    2: ("lower half", "upper half"),
    3: ("lowest third", "middle third", "highest third"),
    4: ("lowest quarter", "second quarter", "third quarter", "highest quarter"),
}

PEER_COLUMNS: dict[str, str] = {
    "metric": "string",
    "period": "string",
    "period_kind": "string",
    "stakeholder_type": "string",
    "statistic": "string",
    "param": "float64",
    "unit": "string",
    "disclosure_class": "string",
    "contributors": "int64",  # organisations with a figure (each in exactly one band)
    "bands": "int64",
    "band": "int64",  # 1 = lowest figures
    "band_name": "string",
    "band_size": "int64",
    "mean": "float64",  # NaN when hidden
    "suppressed": "bool",
    "suppression_reason": "string",  # "", primary, dominance, secondary
    "display": "string",
}
PEER_KEY = ("metric", "period", "stakeholder_type", "statistic", "param", "band")


class PeerRule(StrictModel):
    """data/disclosure.yaml ``peers``."""

    min_contributors: int = Field(default=5, ge=3)
    min_band: int = Field(default=3, ge=3)  # a band of 2: one member reads the other's figure

    @model_validator(mode="after")
    def _bands_fit(self) -> PeerRule:
        if self.min_band > self.min_contributors:
            raise ValueError("min_band: cannot exceed min_contributors")
        return self


def band_sizes(contributors: int, min_band: int) -> list[int]:
    """Sizes of the bands ``contributors`` sorted figures are cut into: as many as fit with
    ``min_band`` each, at most :data:`MAX_BANDS`, sizes differing by at most one (the larger
    bands first, as numpy.array_split cuts)."""
    bands = max(1, min(MAX_BANDS, contributors // min_band))
    base, extra = divmod(contributors, bands)
    return [base + 1 if i < extra else base for i in range(bands)]


def empty_peer_frame() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in PEER_COLUMNS.items()})


def _organisation_figures(
    protected: pd.DataFrame, organisations: pd.DataFrame, *, min_events: int
) -> pd.DataFrame:
    """The organisation-level, not broken down, comparable figures of organisations that are
    not named, with each organisation's stakeholder type. A named organisation's figure is
    published (it is known, and a band holding known figures would give its other members
    away), and a percentile or share on fewer than ``min_events`` events is left out (it is
    not a figure of the organisation's performance, and is hidden on its own)."""
    rows = (protected["level"] == "organisation").to_numpy() & protected["statistic"].isin(
        PEER_STATISTICS
    ).to_numpy()
    rows &= (protected["suppression_reason"] == "not_named").to_numpy()
    for name in DIMENSIONS:
        rows = rows & (protected[name] == TOTAL).to_numpy()
    columns = ["metric", "period", "period_kind", "entity", "statistic", "param", "value"]
    figures = protected.loc[rows, [*columns, "unit", "disclosure_class", "event_count"]]
    figures = figures[figures["value"].notna() & (figures["unit"] != "boolean")]
    distribution = figures["statistic"] != "value"
    too_few = distribution & ~(figures["event_count"].fillna(0) >= min_events)
    figures = figures[~too_few]
    types = organisations.set_index("organisation")["stakeholder_type"]
    figures = figures.assign(stakeholder_type=figures["entity"].map(types).astype("string"))
    return figures[figures["stakeholder_type"].notna()].drop(columns=["event_count"])


def _type_cell_hidden(protected: pd.DataFrame, per_band: pd.DataFrame) -> np.ndarray:
    """For each band row: is the stakeholder type's own cell of the same metric, period,
    statistic and parameter hidden in the protected table?"""
    rows = (protected["level"] == "stakeholder_type").to_numpy()
    for name in DIMENSIONS:  # not &=: a comparison on a categorical column is a read-only view
        rows = rows & (protected[name] == TOTAL).to_numpy()
    key = ["metric", "period", "stakeholder_type", "statistic", "param"]
    cells = protected.loc[rows, ["metric", "period", "entity", "statistic", "param", "suppressed"]]
    cells = cells.rename(columns={"entity": "stakeholder_type"}).drop_duplicates(key)
    cells = cells.astype(
        {"metric": "string", "period": "string", "stakeholder_type": "string", "statistic": "string"}
    )
    chosen = per_band.loc[:, key].astype(
        {"metric": "string", "period": "string", "stakeholder_type": "string", "statistic": "string"}
    )
    joined = chosen.merge(cells, on=key, how="left")
    return joined["suppressed"].fillna(False).to_numpy(dtype=bool)


def _display(values: pd.Series, units: pd.Series) -> pd.Series:
    """A band mean as shown: counts to one decimal (a mean of counts), others as computed."""
    counts = [f"{v:.1f}".rstrip("0").rstrip(".") for v in values]
    others = [f"{v:.10g}" for v in values]
    return pd.Series(
        np.where(units.to_numpy() == "count", counts, others), index=values.index, dtype="string"
    )


def peer_distributions(
    protected: pd.DataFrame,
    organisations: pd.DataFrame,
    *,
    thresholds: dict[str, int],
    dominance_k: float,
    min_events: int,
    rule: PeerRule,
) -> pd.DataFrame:
    """The peer table of a release, from the internal protected indicator table (which still
    holds every organisation's figure) and the organisations (their stakeholder types).

    ``thresholds`` maps each disclosure class to its primary threshold (0: none);
    ``dominance_k`` is the (n, k) rule's k as a fraction. Vectorised: every distribution of
    the release at once (sorted figures, each one's rank and band worked out arithmetically).
    """
    figures = _organisation_figures(protected, organisations, min_events=min_events)
    group_key = ["metric", "period", "stakeholder_type", "statistic", "param"]
    figures = figures.sort_values([*group_key, "value"], kind="stable").reset_index(drop=True)
    group = figures.groupby(group_key, sort=False, observed=True).ngroup().to_numpy()
    contributors = np.bincount(group)[group] if len(group) else np.zeros(0, dtype=np.int64)
    keep = contributors >= rule.min_contributors
    figures, group, contributors = figures[keep].reset_index(drop=True), group[keep], contributors[keep]
    if figures.empty:
        return empty_peer_frame()
    rank = figures.groupby(group_key, sort=False, observed=True).cumcount().to_numpy()
    bands = np.clip(contributors // rule.min_band, 1, MAX_BANDS)
    base, extra = contributors // bands, contributors % bands
    boundary = extra * (base + 1)  # the first `extra` bands hold one more
    band = np.where(rank < boundary, rank // (base + 1), extra + (rank - boundary) // np.maximum(base, 1))
    values = figures["value"].to_numpy(dtype=float)
    threshold = figures["disclosure_class"].map(thresholds).fillna(0).to_numpy(dtype=float)
    small = (threshold > 0) & (values > 0) & (values < threshold)
    # the two largest of each band are its last two ranks (sorted ascending)
    size = np.bincount(group * MAX_BANDS + band)[group * MAX_BANDS + band]
    band_start = np.where(band < extra, band * (base + 1), boundary + (band - extra) * base)
    top_two = rank >= band_start + size - 2
    frame = figures.assign(
        group=group,
        contributors=contributors,
        bands=bands,
        band=band + 1,
        band_size=size,
        small=small,
        top=np.where(top_two, values, 0.0),
    )
    per_band = frame.groupby(["group", "band"], sort=True).agg(
        **{name: (name, "first") for name in [*group_key, "period_kind", "unit", "disclosure_class"]},
        contributors=("contributors", "first"),
        bands=("bands", "first"),
        band_size=("band_size", "first"),
        mean=("value", "mean"),
        total=("value", "sum"),
        top=("top", "sum"),
        small=("small", "any"),
    )
    per_band = per_band.reset_index()
    dominated = (per_band["statistic"] == "value") & (per_band["unit"] == "count")
    dominated &= (per_band["total"] > 0) & (per_band["top"] > dominance_k * per_band["total"])
    # one hidden band hides its whole distribution (the rest and the total would give it away)
    primary = per_band.groupby("group")["small"].transform("any").to_numpy(dtype=bool)
    dominance = dominated.groupby(per_band["group"]).transform("any").to_numpy(dtype=bool)
    # two neighbouring bands with the same mean: sorted, every member of both has that figure
    following = per_band.groupby("group")["mean"].shift(-1)
    ties = np.isclose(per_band["mean"].to_numpy(dtype=float), following.to_numpy(dtype=float))
    tied = pd.Series(ties).groupby(per_band["group"].to_numpy()).transform("any").to_numpy(dtype=bool)
    # the type's own total hidden: the bands' sum (with the named organisations' published
    # figures) would give it back
    secondary = tied | _type_cell_hidden(protected, per_band)
    reason = np.where(
        primary, "primary", np.where(dominance, "dominance", np.where(secondary, "secondary", ""))
    )
    hidden = reason != ""
    per_band["band_name"] = [
        BAND_NAMES[int(b)][int(n) - 1] for b, n in zip(per_band["bands"], per_band["band"], strict=True)
    ]
    per_band["suppressed"] = hidden
    per_band["suppression_reason"] = reason
    per_band["display"] = _display(per_band["mean"], per_band["unit"]).mask(hidden, "x")
    per_band["mean"] = per_band["mean"].mask(hidden)
    out = per_band.loc[:, list(PEER_COLUMNS)].astype(PEER_COLUMNS)
    return out.sort_values(list(PEER_KEY), kind="stable").reset_index(drop=True)


# --- an organisation's position ----------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """Where one figure stands against a published peer distribution."""

    value: float
    peers: int  # organisations in the distribution other than the one compared
    means: tuple[float, ...]  # the band means, lowest band first
    names: tuple[str, ...]
    below: int  # how many band means are below the value
    text: str


def position(
    value: float, bands: pd.DataFrame, *, includes_self: bool, min_peers: int = 5
) -> Position | None:
    """The position of ``value`` among the band means of one distribution (rows of the peer
    table with one key), or None when it cannot be shown: hidden, or fewer than
    ``min_peers`` peers besides the organisation itself (``includes_self``: its own figure
    was one of the contributors)."""
    if bands.empty or bool(bands["suppressed"].any()) or np.isnan(value):
        return None
    peers = int(bands["contributors"].iloc[0]) - (1 if includes_self else 0)
    if peers < min_peers:
        return None
    ordered = bands.sort_values("band")
    means = tuple(float(v) for v in ordered["mean"])
    names = tuple(str(n) for n in ordered["band_name"])
    below = sum(1 for m in means if m < value)
    if len(means) == 1:
        relation = "above" if value > means[0] else "below" if value < means[0] else "equal to"
        text = f"{relation} the average of its {peers} peers"
    elif below == 0:
        text = f"below the average of the peers' {names[0]}"
    elif below == len(means):
        text = f"above the average of the peers' {names[-1]}"
    else:
        text = f"between the averages of the peers' {names[below - 1]} and {names[below]}"
    return Position(value, peers, means, names, below, text)
