"""Companies: monthly enforcement figures and quarterly capabilities.

Sizes are heavy-tailed by rank (a few platforms report millions a year, most a few hundred),
reports grow 10-20% a year, large platforms detect 90-99% of what they remove themselves,
and capabilities spread over time: hash matching is common, livestream detection rare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

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
    share_within,
    split,
    years_since,
)
from hub.periods import PeriodRef
from hub.validation import ObservationIn

# Share of large / mid-sized / small companies with the capability in production at the
# start, and the yearly rate at which the others adopt it.
CAPABILITIES: dict[str, tuple[tuple[float, float, float], float]] = {
    "co_capability_hash_matching": ((1.0, 0.75, 0.35), 0.35),
    "co_capability_classifier_new_material": ((0.8, 0.25, 0.05), 0.1),
    "co_capability_grooming_detection": ((0.55, 0.1, 0.03), 0.08),
    "co_capability_livestream_detection": ((0.3, 0.03, 0.0), 0.04),
}
LIVESTREAM = "co_capability_livestream_detection"
CATEGORIES = {
    "csam_penetrative_or_sadistic": 0.18,
    "csam_non_penetrative": 0.27,
    "csam_other_indecent": 0.40,
    "grooming_enticement": 0.15,
}
CONTENT_TYPES = {"image": 0.55, "video": 0.30, "text": 0.10, "other": 0.05}
NOTICE_MIX = {"user_report": 0.8, "trusted_flagger": 0.125, "law_enforcement": 0.075}
REASONS: tuple[Reason, ...] = (
    ("corrected double-counted notices", "notices.", 1.08),
    ("added reports from a second reporting system that had been left out", "reports", 0.9),
    ("removed items restored on appeal from the items actioned", "items", 1.03),
)
HASH_MATCH_MINUTES = 3.0  # median time to remove a hash-matched upload


@dataclass(frozen=True)
class CompanyParams:
    """What stays the same about a company from month to month."""

    member: Member
    size: int  # 0 large (over 100 thousand reports a year), 1 mid-sized, 2 small
    reports_per_year: float  # in the first demo year
    growth: float
    reports_per_item: float
    proactive_start: float
    proactive_speed: float  # yearly rate at which the proactive gap to 1 closes
    action_rate: float  # share of notices that lead to an action
    notice_mix: dict[str, float]
    accounts_per_item: float
    appeal_rate: float
    reversal_rate: float
    self_reversal_rate: float
    account_appeal_rate: float
    reinstatement_rate: float
    median_hours: float  # notice to takedown, at the start
    sigma: float
    improvement: float  # yearly shrinking of the median and of the backlog
    not_actioned: float
    fast_share: float  # share of proactive items removed at upload by hash matching
    before_views: float
    automated: float
    hash_contribution: float
    scan_ratio: float | None  # items scanned per item actioned; None: does not report it
    distribution: bool
    detailed: bool
    adoption: dict[str, float]  # capability -> years after the first month it went live
    categories: dict[str, float]
    content_types: dict[str, float]
    services: dict[str, float]
    upload: dict[str, float]
    clearinghouse: str
    own_count_ratio: float
    notice_bundle: float  # URLs per notice as the company counts hotline notices
    estimated: frozenset[str]

    def has(self, capability: str, period: PeriodRef, first: PeriodRef) -> bool:
        """Whether the capability is live at the end of ``period``."""
        return self.adoption.get(capability, math.inf) <= years_since(first, period.next())


def company_params(ctx: Context, member: Member) -> CompanyParams:
    """A company's lasting traits, drawn from the seed; its size follows its rank."""
    alliance, mag = ctx.alliance, ctx.alliance.config.magnitudes
    spec = alliance.company_specs[member.code]
    rng = rng_for(ctx.seed, "company-params", member.code)
    noise = 1.0 if member.rank == 1 else lognormal(rng, 0.45)
    per_year = mag.largest_company_reports_per_year / member.rank**mag.company_rank_exponent * noise
    size = 0 if per_year > 1e5 else 1 if per_year > 3e3 else 2
    adoption = {}
    for capability, (start_shares, rate) in CAPABILITIES.items():
        if capability == LIVESTREAM and not spec.livestream:
            continue  # a service without livestreaming does not report livestream detection
        started = rng.random() < start_shares[size]
        adoption[capability] = -1.0 if started else float(rng.exponential(1 / rate))
    content = dict(CONTENT_TYPES) | ({"livestream": 0.01} if spec.livestream else {})
    mean_growth, spread = mag.company_report_growth
    region = member.region or "americas"
    nearby = alliance.upload_weights_near([region])
    upload = dict(sorted(nearby.items(), key=lambda kv: -kv[1])[:12])  # the main dozen countries
    discrepancy = {d.company: d.own_count_ratio for d in alliance.config.report_discrepancies}
    estimated = {"co_items_scanned"} if rng.random() < 0.5 else set()
    if size == 2 and rng.random() < 0.3:
        estimated.add("co_accounts_actioned")
    return CompanyParams(
        member=member,
        size=size,
        reports_per_year=per_year,
        growth=float(min(max(rng.normal(mean_growth, spread), -0.15), 0.6)),
        reports_per_item=float(rng.uniform(0.45, 0.9)),
        proactive_start=float(rng.uniform(*((0.88, 0.97), (0.55, 0.9), (0.1, 0.6))[size])),
        proactive_speed=float(rng.uniform(0.05, 0.25)),
        action_rate=float(rng.uniform(0.15, 0.5)),
        notice_mix=mix_near(rng, NOTICE_MIX, 20),
        accounts_per_item=float(rng.uniform(0.15, 0.6)),
        appeal_rate=float(rng.uniform(0.002, 0.02)),
        reversal_rate=float(rng.uniform(0.02, 0.15)),
        self_reversal_rate=float(rng.uniform(0.0, 0.0008)),
        account_appeal_rate=float(rng.uniform(0.01, 0.06)),
        reinstatement_rate=float(rng.uniform(0.03, 0.15)),
        median_hours=float(math.exp(rng.uniform(math.log(1.5), math.log(36)))),
        sigma=float(rng.uniform(1.2, 2.0)),
        improvement=float(rng.uniform(0.05, 0.15)),
        not_actioned=float(rng.uniform(0.002, 0.03)),
        fast_share=float(rng.uniform(0.5, 0.9)),
        before_views=float(rng.uniform(0.5, 0.95)),
        automated=float(rng.uniform(0.3, 0.85)),
        hash_contribution=float(rng.uniform(0.003, 0.03)),
        scan_ratio=float(math.exp(rng.uniform(math.log(2e3), math.log(5e4))))
        if rng.random() < (0.9, 0.5, 0.25)[size]
        else None,
        distribution=bool(rng.random() < (0.7, 0.35, 0.2)[size]),
        detailed=member.rank <= 15,
        adoption=adoption,
        categories=mix_near(rng, CATEGORIES),
        content_types=mix_near(rng, content),
        services=mix_near(rng, dict.fromkeys(spec.services, 1.0), 8.0) if spec.services else {},
        upload=upload,
        clearinghouse=alliance.clearinghouse_of_region[region],
        own_count_ratio=discrepancy.get(member.code, 1.0),
        notice_bundle=float(rng.uniform(1.0, 1.06)),
        estimated=frozenset(estimated),
    )


def takedown_probabilities(ctx: Context, p: CompanyParams, t: float, proactive: float) -> dict[str, float]:
    """Bucket probabilities: hash-matched uploads in minutes, the rest a log-normal in hours."""
    better = (1 - p.improvement) ** t
    fast = proactive * p.fast_share
    return bucket_probabilities(
        ctx.scheme,
        [(fast, HASH_MATCH_MINUTES / 60, 1.6), (1 - fast, p.median_hours * better, p.sigma)],
        p.not_actioned * better,
    )


def company_month(ctx: Context, p: CompanyParams, month: PeriodRef, hotline_urls: int, flows: Flows) -> Draft:
    """A company's true figures for a month; its reports to the clearinghouse become a flow."""
    code = p.member.code
    rng = rng_for(ctx.seed, "company", code, month.code)
    t = years_since(ctx.first, month)
    season = 1 + 0.06 * math.sin(2 * math.pi * (month.number - 1) / 12)
    level = p.reports_per_year / 12 * (1 + p.growth) ** t * season * lognormal(rng, 0.08)
    reports = poisson(rng, level)
    items = poisson(rng, level / p.reports_per_item)
    proactive_share = 1 - (1 - p.proactive_start) * math.exp(-p.proactive_speed * t)
    proactive = binomial(rng, items, proactive_share)
    notices = split(rng, poisson(rng, (items - proactive) / p.action_rate), p.notice_mix)
    probs = takedown_probabilities(ctx, p, t, proactive_share)
    cohort = split(rng, round(items / (1 - probs["not_actioned"])), probs)
    accounts = poisson(rng, items * p.accounts_per_item)
    appeals = binomial(rng, items, p.appeal_rate)
    appealed = binomial(rng, accounts, p.account_appeal_rate)
    hashing = p.has("co_capability_hash_matching", month, ctx.first)
    counts = {
        "reports": math.floor(reports * p.own_count_ratio),
        **{f"notices.{source}": n for source, n in notices.items()},
        "notices.hotline": math.floor(hotline_urls / p.notice_bundle),
        "items": items,
        "items.proactive": proactive,
        "items.within_24h": binomial(rng, items, share_within(ctx.scheme, probs, 1440)),
        "items.before_views": binomial(rng, proactive, p.before_views),
        "items.automated": binomial(rng, proactive, p.automated * (1.0 if hashing else 0.3)),
        "accounts": accounts,
        "appeals": appeals,
        "appeals.reversed": binomial(rng, appeals, p.reversal_rate),
        "reversals_without_appeal": poisson(rng, items * p.self_reversal_rate),
        "accounts.appealed": appealed,
        "accounts.reinstated": binomial(rng, appealed, p.reinstatement_rate),
        **{f"ttd.{bucket}": n for bucket, n in cohort.items()},
    }
    if hashing:
        counts["hashes"] = poisson(rng, proactive * p.hash_contribution)
        if p.scan_ratio is not None:
            counts["scanned"] = round(items * p.scan_ratio * lognormal(rng, 0.05))
    flows.add("reports", code, p.clearinghouse, month, reports)
    return Draft(p.member, month, counts, partial(render_company_month, ctx, p, month), REASONS)


def render_company_month(ctx: Context, p: CompanyParams, month: PeriodRef, c: Counts) -> list[ObservationIn]:
    rng = rng_for(ctx.seed, "company-rows", p.member.code, month.code)
    out = Rows(month, p.estimated)
    notices = parts(c, "notices.")
    total_notices = out.breakdown("co_notices_received", "notice_source", notices)
    items, proactive = c["items"], c["items.proactive"]
    out.add("co_items_actioned", items)
    if p.detailed:
        by_source = {"proactive_detection": proactive} | split(
            rng, items - proactive, {k: v + 1.0 for k, v in notices.items()}
        )
        out.breakdown("co_items_actioned", "notice_source", by_source, total=False)
        out.breakdown("co_items_actioned", "category", split(rng, items, p.categories), total=False)
        out.breakdown("co_items_actioned", "content_type", split(rng, items, p.content_types), total=False)
    if p.services:
        out.breakdown("co_notices_received", "service", split(rng, total_notices, p.services), total=False)
        out.breakdown("co_items_actioned", "service", split(rng, items, p.services), total=False)
    out.add("co_items_detected_proactively", proactive)
    out.share("co_proactive_share", proactive, items)
    out.add("co_items_actioned_within_24h", c["items.within_24h"])
    out.share("co_share_actioned_24h", c["items.within_24h"], items)
    out.add("co_accounts_actioned", c["accounts"])
    out.add("co_appeals", c["appeals"])
    out.add("co_reversals", c["appeals.reversed"])
    if p.size < 2:  # small companies do not track views, automation or account appeals
        out.add("co_items_removed_before_views", c["items.before_views"])
        out.share("co_removal_before_views_share", c["items.before_views"], items)
        out.add("co_items_actioned_automated", c["items.automated"])
        out.add("co_reversals_without_appeal", c["reversals_without_appeal"])
        out.add("co_accounts_appealed", c["accounts.appealed"])
        out.add("co_accounts_reinstated", c["accounts.reinstated"])
    out.add("co_reports_to_authority", c["reports"])
    out.add("co_reports_to_authority", c["reports"], counterpart=p.clearinghouse)
    if p.detailed:
        by_country = {k: v for k, v in split(rng, c["reports"], p.upload).items() if v}
        out.breakdown("co_reports_to_authority", "country", by_country, total=False)
    if p.distribution:
        out.breakdown("co_takedown_time", "time_bucket", parts(c, "ttd."), total=False)
    if "hashes" in c:
        by_type = split(rng, c["hashes"], {"image": 0.7, "video": 0.3})
        out.breakdown("co_hashes_contributed", "content_type", by_type)
    if "scanned" in c:
        out.add("co_items_scanned", c["scanned"])
    return out.rows


def company_capabilities(ctx: Context, p: CompanyParams, quarter: PeriodRef) -> Draft:
    """Which detection capabilities the company runs at the end of the quarter (0 or 1)."""
    counts = {metric: int(p.has(metric, quarter, ctx.first)) for metric in p.adoption}
    return Draft(p.member, quarter, counts, partial(_render_flags, quarter))


def _render_flags(period: PeriodRef, c: Counts) -> list[ObservationIn]:
    out = Rows(period)
    for metric, value in c.items():
        out.add(metric, value)
    return out.rows
