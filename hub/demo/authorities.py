"""Clearinghouses, law enforcement, the ICSE-like body and governments (quarterly).

Their figures are built from what companies and hotlines sent them (the flows), each end
counting with its own small error, plus what came from outside the alliance. Victims
identified are small numbers per country, growing 0-20% a year depending on the country,
so some countries meet the Global Alliance's +10% a year and some do not.
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
    lognormal,
    parts,
    poisson,
    rng_for,
    split,
    years_since,
)
from hub.periods import PeriodRef
from hub.validation import ObservationIn

INCIDENT_TYPES = {
    "csam": 0.965,
    "grooming_enticement": 0.022,
    "child_sex_trafficking": 0.002,
    "misleading_content": 0.004,
    "harmful_material_sent_to_child": 0.007,
}
OFFENCES = {"csam": 0.62, "grooming_enticement": 0.22, "contact_abuse": 0.13, "child_sex_trafficking": 0.03}
FILE_TYPES = {"image": 0.55, "video": 0.43, "other": 0.02}
ICSE_TYPES = {"image": 0.7, "video": 0.3}
US_DOMESTIC = {"icac_task_force": 0.78, "local_law_enforcement": 0.07, "federal_law_enforcement": 0.15}
CH_REASONS: tuple[Reason, ...] = (("added a late batch of provider reports", "reports.", 0.96),)
AGENCY_REASONS: tuple[Reason, ...] = (
    ("added victims identified late in the quarter", "victims.", 0.8),
    ("corrected arrests counted twice by two units", "arrests", 1.1),
)
ICSE_REASONS: tuple[Reason, ...] = (
    ("added identifications contributed late by national units", "icse.", 0.95),
)
GOVERNMENT_REASONS: tuple[Reason, ...] = (("corrected court statistics for one region", "prosecuted", 1.1),)


def _counting_error(rng: np.random.Generator, count: int, bias: float = 1.0, spread: float = 0.012) -> int:
    """How the receiving end counts a flow: a percent or two off, rarely more."""
    return math.floor(count * bias * min(max(rng.normal(1.0, spread), 0.9), 1.1))


def _months(quarter: PeriodRef) -> list[PeriodRef]:
    return quarter.children("month")


# --- clearinghouses -----------------------------------------------------------------------


def clearinghouse_notices_month(ctx: Context, ch: Member, month: PeriodRef, flows: Flows) -> None:
    """Notices about hosted CSAM the clearinghouse sends providers in its regions this month."""
    alliance = ctx.alliance
    spec = alliance.clearinghouse_specs[ch.code]
    rng = rng_for(ctx.seed, "ch-notices", ch.code, month.code)
    level = spec.notices_per_year / 12 * 1.08 ** years_since(ctx.first, month) * lognormal(rng, 0.1)
    hosts = {
        code: weight
        for country, members in alliance.hosts_by_country.items()
        if alliance.countries[country].region in spec.regions
        for code, weight in members.items()
    }
    others = max(sum(hosts.values()), 0.5) * 2.0
    for host, n in split(rng, poisson(rng, level), hosts | {"": others}).items():
        flows.add("ch-notices", ch.code, host, month, n)


def _ch_hours(ctx: Context, ch: Member, provider: str, quarter: PeriodRef, rng: np.random.Generator) -> float:
    """A provider's mean hours to take down the clearinghouse's notices: 0.5-7 days, falling."""
    mean = ctx.alliance.clearinghouse_specs[ch.code].mean_hours
    base = mean * lognormal(rng_for(ctx.seed, "ch-hours", ch.code, provider), 0.6)
    return round(base * 0.92 ** years_since(ctx.first, quarter) * lognormal(rng, 0.15), 1)


def clearinghouse_quarter(ctx: Context, ch: Member, quarter: PeriodRef, flows: Flows) -> Draft:
    alliance = ctx.alliance
    spec = alliance.clearinghouse_specs[ch.code]
    rng = rng_for(ctx.seed, "clearinghouse", ch.code, quarter.code)
    params = rng_for(ctx.seed, "clearinghouse-params", ch.code)
    other_providers, duplication, actionable = (
        params.uniform(0.05, 0.15),
        params.uniform(1.0, 1.06),
        params.uniform(0.35, 0.6),
    )
    members = {
        k: _counting_error(rng, n, 0.985) for k, n in flows.into("reports", ch.code, _months(quarter)).items()
    }
    providers = sum(members.values())
    providers += round(providers * other_providers)
    public = round(providers * spec.public_share / (1 - spec.public_share) * lognormal(rng, 0.1))
    by_country = split(rng, providers + public, alliance.upload_weights_near(spec.regions))
    counts = {
        **{f"reports.cp.{k}": n for k, n in members.items()},
        "reports.public": public,
        **{f"reports.country.{c}": n for c, n in by_country.items() if n},
    }
    counts.update(_referrals(ctx, ch, quarter, by_country, duplication, actionable, rng, flows))
    files = math.floor(
        (providers + public) * params.uniform(2.6, 3.2) * 1.04 ** years_since(ctx.first, quarter)
    )
    unique = binomial(rng, files, params.uniform(0.3, 0.45))
    counts |= {
        "files": files,
        "files.unique": unique,
        "files.similar": binomial(rng, files - unique, 0.9),
        "reports_with.unique": binomial(rng, providers + public, 0.75),
        "reports_with.similar": binomial(rng, providers + public, 0.62),
    }
    notices = flows.out_of("ch-notices", ch.code, _months(quarter))
    counts |= {f"notices.cp.{k or 'other'}": n for k, n in notices.items()}
    hours = {k or "other": _ch_hours(ctx, ch, k or "other", quarter, rng) for k in notices}
    render = partial(render_clearinghouse_quarter, ctx, ch, quarter, hours)
    return Draft(ch, quarter, counts, render, CH_REASONS)


def _by_detail(rng: np.random.Generator, referred: int, actionable: float) -> dict[str, int]:
    """Referrals split into NCMEC's detail levels, actionable and informational."""
    count = binomial(rng, referred, actionable)
    return {"actionable": count, "informational": referred - count}


def _referrals(
    ctx: Context,
    ch: Member,
    quarter: PeriodRef,
    by_country: dict[str, int],
    duplication: float,
    actionable: float,
    rng: np.random.Generator,
    flows: Flows,
) -> dict[str, int]:
    """Reports made available to police in the country of the apparent upload location."""
    alliance, own = ctx.alliance, ch.country or "ZZ"
    counts: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        if n:
            counts[key] = counts.get(key, 0) + n

    international = 0
    for country, n in by_country.items():
        to = own if country == "ZZ" else country
        referred = math.floor(n * duplication)
        kinds = _by_detail(rng, referred, actionable)
        for kind, k in kinds.items():
            add(f"referrals.country.{to}", k)
            add(f"referrals.detail.{kind}", k)
        agency = alliance.agency_of.get(to)
        if to != own:
            international += referred
            add("referrals.rt.international_law_enforcement", referred)
            share = 1.0
        elif own == "US":
            for rtype, k in split(rng, referred, US_DOMESTIC).items():
                add(f"referrals.rt.{rtype}", k)
            share = US_DOMESTIC["federal_law_enforcement"]
        else:
            add("referrals.rt.federal_law_enforcement", referred)
            share = 1.0
        if agency:
            for kind, k in kinds.items():
                sent = binomial(rng, k, share)
                add(f"referrals.cp.{agency}", sent)
                flows.add(f"ch-referrals-{kind}", ch.code, agency, quarter, sent)
    regional = alliance.regional_police
    if alliance.regional_police_source == ch.code:
        copies = math.floor(international * 0.3)
        for kind, k in _by_detail(rng, copies, 0.3).items():
            add("referrals.country.ZZ", k)  # ZZ: not a single country
            add(f"referrals.detail.{kind}", k)
            add(f"referrals.cp.{regional.code}", k)
            flows.add(f"ch-referrals-{kind}", ch.code, regional.code, quarter, k)
        add("referrals.rt.international_law_enforcement", copies)
    return counts


def render_clearinghouse_quarter(
    ctx: Context, ch: Member, quarter: PeriodRef, hours: dict[str, float], c: Counts
) -> list[ObservationIn]:
    rng = rng_for(ctx.seed, "clearinghouse-rows", ch.code, quarter.code)
    out = Rows(quarter)
    by_country = parts(c, "reports.country.")
    total = out.breakdown("ch_reports_received", "country", by_country)
    public = min(c["reports.public"], total)
    sources = {"provider_report": total - public, "public_report": public}
    out.breakdown("ch_reports_received", "notice_source", sources, total=False)
    out.breakdown("ch_reports_received", "counterpart", parts(c, "reports.cp."), total=False)
    own = ch.country or "ZZ"
    jurisdiction = {
        "domestic": by_country.get(own, 0),
        "unknown": by_country.get("ZZ", 0),
        "international": total - by_country.get(own, 0) - by_country.get("ZZ", 0),
    }
    out.breakdown("ch_reports_received", "jurisdiction", jurisdiction, total=False)
    out.breakdown("ch_reports_received", "category", split(rng, total, INCIDENT_TYPES), total=False)
    out.breakdown("ch_referrals_sent", "country", parts(c, "referrals.country."))
    out.breakdown("ch_referrals_sent", "detail_level", parts(c, "referrals.detail."), total=False)
    out.breakdown("ch_referrals_sent", "recipient_type", parts(c, "referrals.rt."), total=False)
    out.breakdown("ch_referrals_sent", "counterpart", parts(c, "referrals.cp."), total=False)
    notices = parts(c, "notices.cp.")
    members = {k: v for k, v in notices.items() if k != "other"}
    out.breakdown("ch_hosted_notices_sent", "counterpart", members, total=False)
    sent = sum(notices.values())  # the total includes notices to providers that are not members
    out.add("ch_hosted_notices_sent", sent)
    for provider, n in notices.items():
        if provider != "other" and n:
            out.add("ch_mean_hours_to_takedown", hours[provider], counterpart=provider)
    if sent:
        out.add("ch_mean_hours_to_takedown", round(sum(hours[k] * n for k, n in notices.items()) / sent, 2))
    for metric, key in (
        ("ch_files_reported", "files"),
        ("ch_unique_files_reported", "files.unique"),
        ("ch_similar_files_reported", "files.similar"),
    ):
        out.breakdown(metric, "content_type", split(rng, c[key], FILE_TYPES))
    out.add("ch_reports_with_unique_files", c["reports_with.unique"])
    out.add("ch_reports_with_similar_files", c["reports_with.similar"])
    return out.rows


# --- law enforcement ----------------------------------------------------------------------


@dataclass(frozen=True)
class AgencyParams:
    member: Member
    victims_per_year: float
    growth: float
    abroad: dict[str, float]  # country where a child was located -> weight (own country dominates)
    icse_share: float
    arrests_per_victim: float
    cases_per_arrest: float
    material_per_victim: float
    other_referrals: float
    actionable_only: bool
    estimated: frozenset[str]


def agency_params(ctx: Context, member: Member) -> AgencyParams:
    """An agency's lasting traits; its victims' growth rate decides whether it meets +10%."""
    assert member.country is not None
    spec = ctx.alliance.countries[member.country]
    rng = rng_for(ctx.seed, "agency-params", member.code)
    low, high = ctx.alliance.config.magnitudes.victims_growth
    neighbours = [
        c.code for c in ctx.alliance.config.countries if c.region == spec.region and c.code != spec.code
    ]
    abroad = {str(c): 0.05 / 3 for c in rng.choice(neighbours, size=min(3, len(neighbours)), replace=False)}
    return AgencyParams(
        member=member,
        victims_per_year=(spec.victims or 30) * lognormal(rng, 0.1),
        growth=float(rng.uniform(low, high)),
        abroad={spec.code: 0.95, **abroad},
        icse_share=float(rng.uniform(0.3, 0.8)),
        arrests_per_victim=float(rng.uniform(1.2, 2.5)),
        cases_per_arrest=float(rng.uniform(1.1, 1.6)),
        material_per_victim=float(rng.uniform(30, 300)),
        other_referrals=float(rng.uniform(0.05, 0.3)),
        actionable_only=member.code == ctx.alliance.config.actionable_only_agency,
        estimated=frozenset({"le_material_contributed_icse"} if rng.random() < 0.2 else ()),
    )


def _victims_rate(ctx: Context, p: AgencyParams, quarter: PeriodRef) -> float:
    return p.victims_per_year / 4 * (1 + p.growth) ** years_since(ctx.first, quarter)


def _received_referrals(
    rng: np.random.Generator, receiver: str, quarter: PeriodRef, flows: Flows, actionable_only: bool
) -> dict[str, int]:
    """Referrals as the receiving agency counts them, per sender (clearinghouses, hotlines)."""
    kinds = ("actionable",) if actionable_only else ("actionable", "informational")
    senders: dict[str, int] = {}
    for kind in kinds:
        for sender, n in flows.into(f"ch-referrals-{kind}", receiver, [quarter]).items():
            senders[sender] = senders.get(sender, 0) + n
    for sender, n in flows.into("hotline-forwards", receiver, _months(quarter)).items():
        senders[sender] = senders.get(sender, 0) + n
    return {sender: _counting_error(rng, n) for sender, n in sorted(senders.items())}


def agency_quarter(ctx: Context, p: AgencyParams, quarter: PeriodRef, flows: Flows) -> Draft:
    code = p.member.code
    rng = rng_for(ctx.seed, "agency", code, quarter.code)
    referrals = _received_referrals(rng, code, quarter, flows, p.actionable_only)
    rate = _victims_rate(ctx, p, quarter)
    victims = poisson(rng, rate * lognormal(rng, 0.1))
    icse = binomial(rng, victims, p.icse_share)
    flows.add("icse-victims", code, ctx.alliance.icse_body.code, quarter, icse)
    arrests = poisson(rng, rate * p.arrests_per_victim)
    counts = {
        **{f"referrals.cp.{k}": n for k, n in referrals.items()},
        "referrals.other": round(sum(referrals.values()) * p.other_referrals),
        **{f"victims.{c}": n for c, n in split(rng, victims, p.abroad).items()},
        "icse_victims": icse,
        "arrests": arrests,
        "cases": poisson(rng, arrests * p.cases_per_arrest),
        "material": poisson(rng, victims * p.material_per_victim),
    }
    return Draft(p.member, quarter, counts, partial(render_agency_quarter, ctx, p, quarter), AGENCY_REASONS)


def render_agency_quarter(
    ctx: Context, p: AgencyParams, quarter: PeriodRef, c: Counts
) -> list[ObservationIn]:
    rng = rng_for(ctx.seed, "agency-rows", p.member.code, quarter.code)
    own = p.member.country or "ZZ"
    out = Rows(quarter, p.estimated)
    senders = parts(c, "referrals.cp.")
    out.breakdown("le_referrals_received", "counterpart", senders, total=False)
    out.add("le_referrals_received", sum(senders.values()) + c["referrals.other"])
    out.breakdown("le_cases_opened", "category", split(rng, c["cases"], OFFENCES))
    victims = parts(c, "victims.")
    out.breakdown("le_victims_identified", "country", {k: v for k, v in victims.items() if v or k == own})
    out.add("le_victims_identified_icse", c["icse_victims"])
    out.breakdown("le_offenders_arrested", "category", split(rng, c["arrests"], OFFENCES))
    out.add("le_offenders_arrested", c["arrests"], country=own)
    out.breakdown("le_material_contributed_icse", "content_type", split(rng, c["material"], ICSE_TYPES))
    return out.rows


# --- the ICSE-like body, the regional police agency, governments ---------------------------


def icse_quarter(
    ctx: Context, body: Member, quarter: PeriodRef, flows: Flows, stock_before: int, connected: int
) -> Draft:
    """Victims newly identified in the ICSE-like database, per country, and its stocks."""
    rng = rng_for(ctx.seed, "icse", quarter.code)
    t = years_since(ctx.first, quarter)
    country_of = {m.code: m.country or "ZZ" for m in ctx.alliance.agencies}
    by_country = {
        country_of[agency]: binomial(rng, n, 0.97) + poisson(rng, 0.4)
        for agency, n in flows.into("icse-victims", body.code, [quarter]).items()
    }
    low, high = ctx.alliance.config.magnitudes.victims_growth
    for country, per_year in sorted(ctx.alliance.config.icse_other_countries.items()):
        growth = rng_for(ctx.seed, "icse-growth", country).uniform(low, high)
        by_country[country] = poisson(rng, per_year / 4 * (1 + growth) ** t)
    counts = {
        **{f"icse.{c}": n for c, n in sorted(by_country.items())},
        "stock.victims": stock_before + sum(by_country.values()),
        "stock.countries": connected,
        "material": poisson(rng, 110000 * 1.08**t),
    }
    return Draft(body, quarter, counts, partial(render_icse_quarter, ctx, quarter), ICSE_REASONS)


def render_icse_quarter(ctx: Context, quarter: PeriodRef, c: Counts) -> list[ObservationIn]:
    rng = rng_for(ctx.seed, "icse-rows", quarter.code)
    out = Rows(quarter)
    out.breakdown("le_victims_identified_icse", "country", {k: v for k, v in parts(c, "icse.").items() if v})
    out.add("le_victims_identified_icse_cumulative", c["stock.victims"])
    out.add("le_countries_connected_icse", c["stock.countries"])
    out.breakdown("le_material_contributed_icse", "content_type", split(rng, c["material"], ICSE_TYPES))
    return out.rows


def icse_stocks(ctx: Context, quarters: list[PeriodRef]) -> list[int]:
    """Countries connected to ICSE at the end of each quarter: one joins now and then."""
    connected = ctx.alliance.config.magnitudes.icse_countries_connected_start
    result = []
    for quarter in quarters:
        connected += int(rng_for(ctx.seed, "icse-connected", quarter.code).random() < 0.25)
        result.append(connected)
    return result


def regional_police_quarter(ctx: Context, body: Member, quarter: PeriodRef, flows: Flows) -> Draft:
    rng = rng_for(ctx.seed, "regional-police", quarter.code)
    referrals = _received_referrals(rng, body.code, quarter, flows, actionable_only=False)
    counts = {
        **{f"referrals.cp.{k}": n for k, n in referrals.items()},
        "referrals.other": round(sum(referrals.values()) * rng.uniform(0.3, 0.6)),
        "material": poisson(rng, 8000 * 1.05 ** years_since(ctx.first, quarter)),
    }
    return Draft(body, quarter, counts, partial(_render_regional_police, ctx, body, quarter))


def _render_regional_police(ctx: Context, body: Member, quarter: PeriodRef, c: Counts) -> list[ObservationIn]:
    rng = rng_for(ctx.seed, "regional-police-rows", quarter.code)
    out = Rows(quarter)
    senders = parts(c, "referrals.cp.")
    out.breakdown("le_referrals_received", "counterpart", senders, total=False)
    out.add("le_referrals_received", sum(senders.values()) + c["referrals.other"])
    out.breakdown("le_material_contributed_icse", "content_type", split(rng, c["material"], ICSE_TYPES))
    return out.rows


def government_quarter(ctx: Context, gov: Member, agency: AgencyParams, quarter: PeriodRef) -> Draft:
    """People charged with CSEA offences: about half of those arrested, by the ministry's count."""
    rng = rng_for(ctx.seed, "government", gov.code, quarter.code)
    share = rng_for(ctx.seed, "government-params", gov.code).uniform(0.4, 0.7)
    rate = _victims_rate(ctx, agency, quarter) * agency.arrests_per_victim * share
    counts = {"prosecuted": poisson(rng, rate)}
    return Draft(gov, quarter, counts, partial(_render_government, ctx, gov, quarter), GOVERNMENT_REASONS)


def _render_government(ctx: Context, gov: Member, quarter: PeriodRef, c: Counts) -> list[ObservationIn]:
    rng = rng_for(ctx.seed, "government-rows", gov.code, quarter.code)
    out = Rows(quarter)
    out.breakdown("le_offenders_prosecuted", "category", split(rng, c["prosecuted"], OFFENCES))
    out.add("le_offenders_prosecuted", c["prosecuted"], country=gov.country or "ZZ")
    return out.rows
