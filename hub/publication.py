"""What a release publishes: approved data turned into protected tables.

The one composer `hub release build` uses (hub.releases.build_release takes it as
``compose``). In order: the approved observations (newest approved version of every scope),
the indicator engine, disclosure control (with the previous published release, so nothing it
published can be used to undo a suppression), then everything else is derived from the
protected table only: target progress reads the published indicator cells (a hidden cell is
missing, never used), the observations table holds only what the protected organisation-level
cells show, and the reconciliation summary hides totals resting on too few pairs.

Tables: ``indicators``, ``observations``, ``targets``, ``reconciliation``, ``coverage`` and
``peers`` (hub.peers: banded means of each stakeholder type's organisations).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlmodel import Session

from hub.approval import approved_submissions
from hub.catalogue import Catalogue
from hub.disclosure import KNOWN_VALUE_COLUMNS, DisclosurePolicy, load_policy, protect, public_view
from hub.errors import NotFoundError
from hub.figures import joint_keys, load_observations, load_organisations
from hub.indicators import DEFAULT_SHARE_WITHIN_HOURS, compute_indicators
from hub.models import Release, User
from hub.peers import peer_distributions
from hub.progress import assess_targets
from hub.reconciliation import load_flows, organisation_parents, reconcile, reconciliation_summary
from hub.releases import (
    OBSERVATION_KEY,
    Tables,
    build_release,
    coverage_table,
    latest_published_release,
    read_release_table,
)
from hub.targets import ShareThresholdTarget, TargetSpec, load_targets
from hub.vocab import DIMENSIONS

log = logging.getLogger(__name__)

# A reconciliation total over fewer compared pairs than this is hidden: with one pair it is
# that pair's own two counts (an organisation's figure), with two each side could subtract.
MIN_RECONCILIATION_PAIRS = 3
RESTATED = "restated by the organisation"  # what a release says of a restatement's reason


def named_organisations(organisations: pd.DataFrame) -> set[str]:
    """Organisations whose own figures may be shown: those that consented to be named, and
    organisations known only from their own publications (their figures are public already)."""
    named = organisations["consents_to_be_named"].astype(bool) | (organisations["status"] == "external")
    return set(organisations.loc[named, "organisation"].astype(str))


def share_thresholds(targets: list[TargetSpec]) -> tuple[float, ...]:
    """The published thresholds plus every threshold a target is judged on."""
    extra = {float(t.parameters.threshold_hours) for t in targets if isinstance(t, ShareThresholdTarget)}
    return tuple(sorted({*DEFAULT_SHARE_WITHIN_HOURS, *extra}))


def public_observations(observations: pd.DataFrame, protected: pd.DataFrame) -> pd.DataFrame:
    """The approved observations of named organisations, as the protected organisation-level
    cells show them: a value hidden there (a small count of people, or a cell hidden so that it
    cannot be derived) is hidden here too, with the same reason; the organisation's own words
    for a restatement are replaced by a fixed phrase (free text is never published). One row
    per key (the newest submission's figure), in key order.

    Worked on integer keys (string merges and sorts of a million rows took 2-3 s on the
    large benchmark): the key columns of both tables are coded together
    (hub.figures.joint_keys), so equal strings get equal codes and the codes sort as the
    strings do."""
    named_cells = (
        (protected["level"] == "organisation")
        & protected["statistic"].isin(["value", "events"])
        & (protected["suppression_reason"] != "not_named")
    ).to_numpy()
    # the few columns first, then the rows: filtering every column of the whole table cost
    # ten times more (2.2 -> 0.2 s on the large benchmark's 4.8 M cells)
    flags = protected.loc[
        :, ["entity", "metric", "period", *DIMENSIONS, "suppressed", "suppression_reason", "display"]
    ]
    flags = flags[named_cells].rename(columns={"entity": "organisation"})
    observed, flagged = joint_keys(observations, flags, list(OBSERVATION_KEY), ordered=True)
    # the newest submission's row of each key (sorted by key, then submission; stable)
    order = np.lexsort((observations["submission_id"].to_numpy(dtype=np.int64), observed))
    last = np.append(observed[order][1:] != observed[order][:-1], True) if len(order) else order.astype(bool)
    newest = order[last]
    # the first protected cell of each key, and the observations that have one
    cell_keys, first_cell = np.unique(flagged, return_index=True)
    at = np.minimum(np.searchsorted(cell_keys, observed[newest]), max(len(cell_keys) - 1, 0))
    matched = (cell_keys[at] == observed[newest]) if len(cell_keys) else np.zeros(len(newest), dtype=bool)
    kept = observations.iloc[newest[matched]].reset_index(drop=True)
    cells = flags.iloc[first_cell[at[matched]]].reset_index(drop=True)
    for name in ("suppressed", "suppression_reason", "display"):
        kept[name] = cells[name]
    hidden = kept["suppressed"].to_numpy(dtype=bool)
    kept["value"] = kept["value"].mask(hidden)
    kept["supersede_reason"] = np.where(kept["supersede_reason"].fillna("") != "", RESTATED, "")
    kept["supersede_reason"] = kept["supersede_reason"].astype("string")
    return kept


def public_reconciliation(summary: pd.DataFrame, min_pairs: int = MIN_RECONCILIATION_PAIRS) -> pd.DataFrame:
    """The reconciliation summary with totals hidden where fewer than ``min_pairs`` pairs were
    compared (the counts of pairs and their statuses stay: they name no figure)."""
    out = summary.copy()
    thin = (out["pairs_compared"] > 0) & (out["pairs_compared"] < min_pairs)
    for column in ("total_sent", "total_received", "gap", "relative_gap"):
        out[column] = out[column].mask(thin)
    out["suppressed"] = thin.astype(bool)
    out["suppression_reason"] = np.where(thin, "too_few_pairs", "")
    out["suppression_reason"] = out["suppression_reason"].astype("string")
    return out


def _previous_indicators(session: Session) -> pd.DataFrame | None:
    """What the latest published release showed of each indicator cell: the columns disclosure
    control needs (a third of the table's: 0.15-0.2 s instead of 0.5-0.8 s on the demo), text
    as categoricals (only matched on, as the indicator table's own are)."""
    previous = latest_published_release(session)
    if previous is None:
        return None
    try:
        return read_release_table(
            session, previous.number, "indicators", columns=KNOWN_VALUE_COLUMNS, categorical=True
        )
    except NotFoundError:  # a release built before indicators were published holds no such table
        log.info("release %s has no indicators table", previous.number)
        return None


@dataclass(frozen=True)
class Protected:
    """The approved data and the indicator table with disclosure control applied (internal:
    ``protected`` still holds hidden values and contributor names; only its public view goes
    out)."""

    observations: pd.DataFrame
    organisations: pd.DataFrame
    targets: list[TargetSpec]
    protected: pd.DataFrame
    policy: DisclosurePolicy


def protect_approved(session: Session, catalogue: Catalogue, *, data_dir: Path) -> Protected:
    """Indicators of the approved data, protected against every earlier published release."""
    started = time.perf_counter()
    observations = load_observations(session, approved_submissions())
    organisations = load_organisations(session)
    targets = load_targets(data_dir, catalogue)
    indicators = compute_indicators(observations, catalogue, share_within_hours=share_thresholds(targets))
    computed = time.perf_counter()
    policy = load_policy(data_dir)
    protected = protect(
        indicators,
        policy,
        named_organisations=named_organisations(organisations),
        previous=_previous_indicators(session),
        organisations=organisations,
    )
    log.info(
        "%d approved observations: %d indicator cells in %.1f s, %d hidden by disclosure control in %.1f s",
        len(observations),
        len(protected),
        computed - started,
        int(protected["suppressed"].sum()),
        time.perf_counter() - computed,
    )
    return Protected(observations, organisations, targets, protected, policy)


def compose_release(session: Session, catalogue: Catalogue, *, data_dir: Path) -> Tables:
    """The protected tables of the next release, from approved data only."""
    state = protect_approved(session, catalogue, data_dir=data_dir)
    public = public_view(state.protected)
    reconciled = reconcile(
        state.observations, load_flows(data_dir, catalogue), organisations=organisation_parents(session)
    )
    return {
        "indicators": public,  # in KEY_COLUMNS order: compute_indicators gives it, protect keeps it
        "observations": public_observations(state.observations, state.protected),
        "targets": assess_targets(state.targets, public),
        "reconciliation": public_reconciliation(reconciliation_summary(reconciled)),
        "coverage": coverage_table(state.observations),
        "peers": peers_table(state),
    }


def peers_table(state: Protected) -> pd.DataFrame:
    """The release's peer distributions (hub.peers), from the internal protected table."""
    policy = state.policy
    return peer_distributions(
        state.protected,
        state.organisations,
        thresholds={name: rule.threshold for name, rule in policy.classes.items()},
        dominance_k=policy.dominance.k / 100,
        min_events=policy.min_events,
        rule=policy.peers,
    )


def release_composer(data_dir: Path) -> Callable[[Session, Catalogue], Tables]:
    """:func:`compose_release` for ``data_dir``, in the shape hub.releases.build_release takes."""

    def compose(session: Session, catalogue: Catalogue) -> Tables:
        return compose_release(session, catalogue, data_dir=data_dir)

    return compose


def build_protected_release(
    session: Session,
    *,
    catalogue: Catalogue,
    data_dir: Path,
    title: str,
    built_by: User,
    notes: str | None = None,
    channel: str = "cli",
) -> Release:
    """Build the next release of the protected tables (what `hub release build` runs)."""
    return build_release(
        session,
        catalogue=catalogue,
        title=title,
        built_by=built_by,
        compose=release_composer(data_dir),
        notes=notes,
        channel=channel,
    )
