"""The whole synthetic alliance in memory: true figures, then the reporting schedule.

The schedule is what makes coordination realistic: most organisations report within the 30
days after a period, some late, a few not at all; some first versions are provisional or
wrong and are restated later with a reason. A submission received after ``today`` has not
arrived yet, so loading later adds it as a new version or period.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from hub.catalogue import Catalogue
from hub.demo.authorities import (
    agency_params,
    agency_quarter,
    clearinghouse_notices_month,
    clearinghouse_quarter,
    government_quarter,
    icse_quarter,
    icse_stocks,
    regional_police_quarter,
)
from hub.demo.companies import company_capabilities, company_month, company_params
from hub.demo.config import Member, build_alliance, load_config
from hub.demo.core import Context, Draft, Flows
from hub.demo.hotlines import hotline_params, hotlines_month
from hub.demo.sampling import rng_for, scaled
from hub.organisations import OrganisationIn
from hub.periods import PeriodRef, parse_period
from hub.settings import REPO_ROOT
from hub.validation import ObservationIn

DEFAULT_CONFIG = REPO_ROOT / "data" / "demo" / "alliance.yaml"
DUE_DAYS = 30  # a period's figures are due 30 days after it ends
# tier -> (share of organisations, chance a period is never reported, chance it is late)
TIERS = {"prompt": (0.7, 0.004, 0.03), "slack": (0.2, 0.02, 0.35), "erratic": (0.1, 0.08, 0.3)}
PROVISIONAL = 0.03  # chance a first version is provisional (restated with final figures)
WRONG = 0.015  # chance a first version has an error (restated with the reason)
FINAL = "final figures replace provisional ones"


@dataclass(frozen=True)
class DemoSubmission:
    """One version of one organisation's figures for one period, as it would arrive."""

    org: str
    scope: str
    version: int
    rows: tuple[ObservationIn, ...]
    received_at: datetime
    due: date
    supersede_reason: str | None = None

    @property
    def late(self) -> bool:
        return self.version == 1 and self.received_at.date() > self.due

    @property
    def provisional(self) -> bool:
        return any(row.is_provisional for row in self.rows)


@dataclass(frozen=True)
class GeneratedAlliance:
    """The registry and everything it had reported by the day of generation."""

    registry: tuple[OrganisationIn, ...]
    submissions: tuple[DemoSubmission, ...]  # in order of arrival
    missing: tuple[tuple[str, str], ...]  # (organisation, scope) overdue and never received
    months: tuple[PeriodRef, ...]
    quarters: tuple[PeriodRef, ...]


def complete_periods(kind: str, first: PeriodRef, today: date) -> list[PeriodRef]:
    """Periods of ``kind`` from the one containing ``first`` to the last that ended by ``today``."""
    period, periods = first.parent(kind), []
    while period.end <= today:
        periods.append(period)
        period = period.next()
    return periods


def true_figures(ctx: Context, months: list[PeriodRef], quarters: list[PeriodRef]) -> list[Draft]:
    """Every organisation's true figures for every period, linked through their flows."""
    alliance = ctx.alliance
    flows = Flows()
    companies = [company_params(ctx, m) for m in alliance.companies]
    hotlines = [hotline_params(ctx, m) for m in alliance.hotlines]
    agencies = {m.code: agency_params(ctx, m) for m in alliance.agencies}
    drafts: list[Draft] = []
    for month in months:
        drafts += hotlines_month(ctx, hotlines, month, flows)
        for ch in alliance.clearinghouses:
            clearinghouse_notices_month(ctx, ch, month, flows)
        for p in companies:  # hotlines' and clearinghouses' notices reach the company as hotline notices
            notified = [
                flows.into(kind, p.member.code, [month]) for kind in ("hotline-notices", "ch-notices")
            ]
            drafts.append(company_month(ctx, p, month, sum(sum(n.values()) for n in notified), flows))
    stock = alliance.config.magnitudes.icse_cumulative_start
    for quarter, connected in zip(quarters, icse_stocks(ctx, quarters), strict=True):
        drafts += [company_capabilities(ctx, p, quarter) for p in companies]
        drafts += [clearinghouse_quarter(ctx, ch, quarter, flows) for ch in alliance.clearinghouses]
        drafts += [agency_quarter(ctx, p, quarter, flows) for p in agencies.values()]
        icse = icse_quarter(ctx, alliance.icse_body, quarter, flows, stock, connected)
        stock = icse.counts["stock.victims"]
        drafts.append(icse)
        drafts.append(regional_police_quarter(ctx, alliance.regional_police, quarter, flows))
        for gov in alliance.governments:
            agency = agencies[alliance.agency_of[gov.country or ""]]
            drafts.append(government_quarter(ctx, gov, agency, quarter))
    return drafts


def _tiers(seed: int, members: list[Member]) -> dict[str, str]:
    names, shares = list(TIERS), [t[0] for t in TIERS.values()]
    return {m.code: str(rng_for(seed, "tier", m.code).choice(names, p=shares)) for m in members}


def _versions(draft: Draft, seed: int, tier: str) -> list[tuple[list[ObservationIn], float, str | None]]:
    """The versions an organisation sends for a draft: (rows, days after the due date, reason)."""
    rng = rng_for(seed, "timing", draft.org.code, draft.scope)
    _, never, late_chance = TIERS[tier]
    never_sent, late, roll = rng.random() < never, rng.random() < late_chance, rng.random()
    offset = float(rng.uniform(1, 70) if late else rng.uniform(-28, -1))
    later = float(rng.uniform(20, 200))
    reason = draft.reasons[int(rng.integers(len(draft.reasons)))] if draft.reasons else None
    if never_sent:
        return []
    true_rows = draft.render(draft.counts)
    if reason is None or roll >= PROVISIONAL + WRONG:
        return [(true_rows, offset, None)]
    if roll < PROVISIONAL:
        rows = [
            dataclasses.replace(r, is_provisional=True) for r in draft.render(scaled(draft.counts, "", 0.95))
        ]
        return [(rows, offset, None), (true_rows, offset + later, FINAL)]
    text, prefix, factor = reason
    wrong = draft.render(scaled(draft.counts, prefix, factor))
    if wrong == true_rows:  # too small to be off: nothing to restate
        return [(true_rows, offset, None)]
    return [(wrong, offset, None), (true_rows, offset + later, text)]


def schedule(
    drafts: list[Draft], seed: int, today: date, tiers: Mapping[str, str]
) -> tuple[list[DemoSubmission], list[tuple[str, str]]]:
    """Submissions that had arrived by ``today``, and the overdue (organisation, scope) pairs."""
    cutoff = datetime.combine(today, time.min, UTC)
    submissions, missing = [], []
    for draft in drafts:
        due = draft.period.end + timedelta(days=DUE_DAYS)
        deadline = datetime.combine(due, time.min, UTC)
        arrived = [
            DemoSubmission(
                org=draft.org.code,
                scope=draft.scope,
                version=number,
                rows=tuple(rows),
                received_at=deadline + timedelta(days=offset),
                due=due,
                supersede_reason=reason,
            )
            for number, (rows, offset, reason) in enumerate(_versions(draft, seed, tiers[draft.org.code]), 1)
            if deadline + timedelta(days=offset) < cutoff
        ]
        if not arrived and due < today:
            missing.append((draft.org.code, draft.scope))
        submissions += arrived
    submissions.sort(key=lambda s: (s.received_at, s.org, s.scope, s.version))
    return submissions, missing


def generate_alliance(
    catalogue: Catalogue,
    *,
    seed: int,
    today: date | None = None,
    config_path: Path = DEFAULT_CONFIG,
) -> GeneratedAlliance:
    """The synthetic alliance with every submission that had arrived by ``today``.

    Deterministic: the same seed and day give identical rows. A period's figures do not
    depend on ``today``, which only decides which periods are complete and what arrived.
    """
    today = today or date.today()
    alliance = build_alliance(load_config(config_path))
    first = parse_period(alliance.config.first_month)
    ctx = Context(seed, alliance, catalogue.buckets, first)
    months, quarters = complete_periods("month", first, today), complete_periods("quarter", first, today)
    drafts = true_figures(ctx, months, quarters)
    tiers = _tiers(seed, [*alliance.companies, *alliance.hotlines, *alliance.agencies, *alliance.governments])
    tiers |= {
        m.code: "prompt" for m in (*alliance.clearinghouses, alliance.icse_body, alliance.regional_police)
    }
    submissions, missing = schedule(drafts, seed, today, tiers)
    return GeneratedAlliance(
        alliance.registry, tuple(submissions), tuple(missing), tuple(months), tuple(quarters)
    )
