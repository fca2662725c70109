"""Hotlines: monthly reports, confirmations, notice-and-takedown and forwarding.

Each hotline confirms CSAM hosted around the world (mostly in the Netherlands and the United
States), passes URLs hosted in another member's country to that hotline (as INHOPE's ICCAM
does) and notifies hosts elsewhere itself. Notice-to-removal times are log-normal with a
median of hours to a day or two that shrinks over the years, so 70-90% of URLs go within
72 hours, as INHOPE reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from hub.demo.config import Member
from hub.demo.core import Context, Draft, Flows, Reason
from hub.demo.sampling import (
    Counts,
    Rows,
    binomial,
    bucket_probabilities,
    lognormal,
    mix_near,
    parts,
    poisson,
    rng_for,
    split,
    years_since,
)
from hub.periods import PeriodRef
from hub.validation import ObservationIn

CATEGORIES = {"csam_penetrative_or_sadistic": 0.2, "csam_non_penetrative": 0.25, "csam_other_indecent": 0.55}
CONTENT_TYPES = {"image": 0.72, "video": 0.25, "other": 0.03}
REASONS: tuple[Reason, ...] = (
    ("removed duplicate URLs after de-duplication", "received.", 1.07),
    ("added URLs confirmed after the reporting cut-off", "confirmed.", 0.95),
)
PARTNER_RECEIPT = 0.98  # share of URLs passed by a partner hotline that the receiver counts
NON_MEMBER_HOSTS = 3.0  # weight of hosts that are not members, relative to the members'


@dataclass(frozen=True)
class HotlineParams:
    member: Member
    reports_per_year: float
    growth: float
    mix: dict[str, float]  # notice source -> share of the reports the hotline receives itself
    assess_rate: float
    confirm_rate: dict[str, float]  # notice source -> share of assessed reports confirmed
    notice_rate: float
    median_hours: float
    sigma: float
    improvement: float
    not_actioned: float
    distribution: bool
    detailed: bool  # breaks confirmed URLs down by hosting country, category and content type
    forward_le: float
    forward_icse: float
    categories: dict[str, float]
    content_types: dict[str, float]
    estimated: frozenset[str]


def hotline_params(ctx: Context, member: Member) -> HotlineParams:
    """A hotline's lasting traits; the largest ones also search proactively, as the IWF does."""
    assert member.country is not None
    spec = ctx.alliance.countries[member.country]
    rng = rng_for(ctx.seed, "hotline-params", member.code)
    per_year = (spec.hotline_reports or 5000) * lognormal(rng, 0.1)
    proactive = float(rng.uniform(0.3, 0.55) if per_year > 80000 else rng.uniform(0.0, 0.08))
    police = float(rng.uniform(0.02, 0.08))
    mean_growth, spread = ctx.alliance.config.magnitudes.hotline_report_growth
    return HotlineParams(
        member=member,
        reports_per_year=per_year,
        growth=float(min(max(rng.normal(mean_growth, spread), -0.1), 0.4)),
        mix={
            "public_report": 1 - proactive - police,
            "law_enforcement": police,
            "proactive_detection": proactive,
        },
        assess_rate=float(rng.uniform(0.88, 1.0)),
        confirm_rate={
            "public_report": float(rng.uniform(0.15, 0.45)),
            "law_enforcement": float(rng.uniform(0.5, 0.8)),
            "proactive_detection": float(rng.uniform(0.85, 0.97)),
        },
        notice_rate=float(rng.uniform(0.9, 0.99)),
        median_hours=float(math.exp(rng.uniform(math.log(6), math.log(40)))),
        sigma=float(rng.uniform(1.1, 1.8)),
        improvement=float(rng.uniform(0.04, 0.15)),
        not_actioned=float(rng.uniform(0.005, 0.04)),
        distribution=bool(rng.random() < 0.85),
        detailed=per_year > 10000,
        forward_le=float(rng.uniform(0.2, 0.9)),
        forward_icse=float(rng.uniform(0.2, 0.7)),
        categories=mix_near(rng, CATEGORIES),
        content_types=mix_near(rng, CONTENT_TYPES),
        estimated=frozenset({"ht_notice_to_removal_time"} if rng.random() < 0.15 else ()),
    )


@dataclass
class _Month:
    """A hotline's month between the two passes (own reports, then partners' URLs)."""

    rng: np.random.Generator
    received: dict[str, int]
    assessed: int
    hosted: dict[str, int]  # hosting country -> confirmed URLs
    passed: dict[str, int]  # partner hotline -> URLs passed to it


def hotlines_month(ctx: Context, params: list[HotlineParams], month: PeriodRef, flows: Flows) -> list[Draft]:
    """Every hotline's month. URLs go to partner hotlines and member hosts as flows."""
    alliance = ctx.alliance
    hosting = alliance.hosting_weights
    t = years_since(ctx.first, month)
    state: dict[str, _Month] = {}
    for p in params:
        code = p.member.code
        rng = rng_for(ctx.seed, "hotline", code, month.code)
        level = p.reports_per_year / 12 * (1 + p.growth) ** t * lognormal(rng, 0.1)
        received = {source: poisson(rng, level * share) for source, share in p.mix.items()}
        assessed = {
            s: n if s == "proactive_detection" else binomial(rng, n, p.assess_rate)
            for s, n in received.items()
        }
        confirmed = sum(binomial(rng, assessed[s], p.confirm_rate[s]) for s in assessed)
        hosted = split(rng, confirmed, hosting)
        passed = {}
        for country, n in hosted.items():
            partner = alliance.hotline_of.get(country)
            if partner and partner != code and n:
                passed[partner] = binomial(rng, n, p.notice_rate)
                flows.add("hotline-notices", code, partner, month, passed[partner])
        state[code] = _Month(rng, received, sum(assessed.values()), hosted, passed)
    return [_second_pass(ctx, p, state[p.member.code], month, flows) for p in params]


def _second_pass(ctx: Context, p: HotlineParams, m: _Month, month: PeriodRef, flows: Flows) -> Draft:
    alliance, code, own = ctx.alliance, p.member.code, p.member.country or ""
    rng = m.rng
    inflow = sum(flows.into("hotline-notices", code, [month]).values())
    counted = binomial(rng, inflow, PARTNER_RECEIPT)
    m.received["hotline"] = counted
    m.hosted[own] = m.hosted.get(own, 0) + binomial(rng, counted, 0.95)
    notices: dict[str, int] = {}
    counterparts: dict[str, int] = dict(m.passed)
    for country, n in m.hosted.items():
        partner = alliance.hotline_of.get(country)
        if partner and partner != code:
            notices[country] = m.passed.get(partner, 0)
            continue
        sent = binomial(rng, n, p.notice_rate)
        notices[country] = sent
        hosts = alliance.hosts_by_country.get(country, {})
        others = max(sum(hosts.values()), 0.5) * NON_MEMBER_HOSTS
        for host, k in split(rng, sent, hosts | {"": others}).items():
            if host and k:
                counterparts[host] = counterparts.get(host, 0) + k
                flows.add("hotline-notices", code, host, month, k)
    confirmed = sum(m.hosted.values())
    forwarded = binomial(rng, confirmed, p.forward_le)
    agency = alliance.agency_of.get(own)
    if agency:
        flows.add("hotline-forwards", code, agency, month, forwarded)
    better = (1 - p.improvement) ** years_since(ctx.first, month)
    probs = bucket_probabilities(
        ctx.scheme, [(1.0, p.median_hours * better, p.sigma)], p.not_actioned * better
    )
    counts = {
        **{f"received.{s}": n for s, n in m.received.items()},
        "assessed": m.assessed + counted,
        **{f"confirmed.{c}": n for c, n in m.hosted.items()},
        **{f"notices.country.{c}": n for c, n in notices.items() if n},
        **{f"notices.cp.{h}": n for h, n in counterparts.items() if n},
        **{f"ttd.{b}": n for b, n in split(rng, sum(notices.values()), probs).items()},
        "forwarded_le": forwarded,
        "forwarded_icse": binomial(rng, confirmed, p.forward_icse),
    }
    render = partial(render_hotline_month, ctx, p, month, agency)
    return Draft(p.member, month, counts, render, REASONS)


def render_hotline_month(
    ctx: Context, p: HotlineParams, month: PeriodRef, agency: str | None, c: Counts
) -> list[ObservationIn]:
    rng = rng_for(ctx.seed, "hotline-rows", p.member.code, month.code)
    out = Rows(month, p.estimated)
    out.breakdown("ht_reports_received", "notice_source", parts(c, "received."))
    out.add("ht_reports_assessed", c["assessed"])
    confirmed = sum(parts(c, "confirmed.").values())
    out.add("ht_reports_confirmed_csam", confirmed)
    if p.detailed:
        hosted = {k: v for k, v in parts(c, "confirmed.").items() if v}
        out.breakdown("ht_reports_confirmed_csam", "country", hosted, total=False)
        out.breakdown(
            "ht_reports_confirmed_csam", "category", split(rng, confirmed, p.categories), total=False
        )
        by_type = split(rng, confirmed, p.content_types)
        out.breakdown("ht_reports_confirmed_csam", "content_type", by_type, total=False)
    out.share("ht_illegal_share", confirmed, c["assessed"])
    out.breakdown("ht_notices_sent", "country", parts(c, "notices.country."))
    out.breakdown("ht_notices_sent", "counterpart", parts(c, "notices.cp."), total=False)
    if p.distribution:
        out.breakdown("ht_notice_to_removal_time", "time_bucket", parts(c, "ttd."), total=False)
    out.add("ht_reports_forwarded_le", c["forwarded_le"])
    if agency:
        out.add("ht_reports_forwarded_le", c["forwarded_le"], counterpart=agency)
        out.add("ht_reports_forwarded_le", c["forwarded_le"], country=p.member.country or "ZZ")
    out.add("ht_reports_forwarded_icse", c["forwarded_icse"])
    return out.rows
