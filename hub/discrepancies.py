"""Reconciliation discrepancies pair by pair, for the secretariat's page.

A release publishes the reconciliation summary per flow and period (no organisation named);
the secretariat needs the pairs behind it: which hotline and which company count the same
notices differently, since when, and whether the gap is closing. These rows name
organisations, so they are computed from the approved data for the secretariat only, never
stored in a release.

Reading every approved observation on each page view would be slow, so
:class:`DiscrepancyCache` reads only the metrics the flows compare and keeps the result until
an approval changes (the state is the count of approved submissions and the latest review
time: one cheap query per view). It returns copies.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.approval import approved_submissions
from hub.catalogue import Catalogue
from hub.figures import load_observations
from hub.models import Submission
from hub.reconciliation import (
    load_flows,
    organisation_parents,
    reconcile,
    reconciliation_history,
)

SHOWN = 50


def approval_state(session: Session) -> tuple[int, datetime | None]:
    """What changes whenever an approval does: how many approved submissions, the latest review."""
    count, latest = session.exec(
        select(func.count(), func.max(Submission.reviewed_at)).where(col(Submission.status) == "approved")
    ).one()
    return int(count), latest


class DiscrepancyCache:
    """The pair histories of the approved data, recomputed only when approvals change."""

    def __init__(self, catalogue: Catalogue, data_dir: Path) -> None:
        self.flows = load_flows(data_dir, catalogue)
        self.metrics = sorted(
            {
                code
                for flow in self.flows
                for side in (flow.sender_side, flow.receiver_side)
                for code in side.metrics
            }
        )
        self._lock = threading.Lock()
        self._state: tuple[int, datetime | None] | None = None
        self._history: pd.DataFrame | None = None

    def history(self, session: Session) -> pd.DataFrame:
        """Per flow, period kind and pair: periods compared and out of tolerance, the latest
        gap and the trend (hub.reconciliation.reconciliation_history)."""
        state = approval_state(session)
        with self._lock:
            if state == self._state and self._history is not None:
                return self._history.copy()
        observations = load_observations(session, approved_submissions(), metrics=self.metrics)
        reconciled = reconcile(observations, self.flows, organisations=organisation_parents(session))
        history = reconciliation_history(reconciled)
        with self._lock:
            self._state, self._history = state, history
        return history.copy()


def discrepant_pairs(history: pd.DataFrame, limit: int = SHOWN) -> pd.DataFrame:
    """Pairs out of tolerance in at least one period, the largest latest relative gap first."""
    out = history[history["periods_out_of_tolerance"] > 0]
    order = out["latest_relative_gap"].abs().fillna(-1.0)
    return out.assign(_order=order).sort_values("_order", ascending=False).drop(columns="_order").head(limit)
