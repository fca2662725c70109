"""Who is who in the synthetic alliance: data/demo/alliance.yaml, validated, and its registry.

The registry depends only on the file, never on the figures' seed, so loading with another
seed never renames or re-types an organisation that is already stored.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError

from hub.countries import country_name
from hub.datafiles import StrictModel, safe_load
from hub.errors import CatalogueError
from hub.organisations import OrganisationIn

Region = Literal["americas", "europe", "asia_pacific", "africa_middle_east"]
HOSTING_SECTORS: dict[str, float] = {
    "web_hosting": 1.0,
    "cloud_hosting": 0.8,
    "file_sharing": 0.6,
    "social_media": 0.08,
    "adult": 0.1,
}  # how likely a member company of each sector hosts material a hotline notifies


class CountrySpec(StrictModel):
    code: str = Field(pattern=r"^[A-Z]{2}$")
    region: Region
    upload: float = Field(default=0.0, ge=0)
    hosting: float = Field(default=0.0, ge=0)
    hotline: str | None = None
    hotline_reports: float | None = Field(default=None, gt=0)
    hotline_parent: str | None = None
    law_enforcement: bool = False
    government: bool = False
    victims: float | None = Field(default=None, gt=0)


class CompanySpec(StrictModel):
    name: str
    country: str
    sector: str  # checked against hub.vocab.SECTORS by OrganisationIn
    services: tuple[str, ...] = ()
    livestream: bool = False


class ClearinghouseSpec(StrictModel):
    name: str
    country: str
    regions: tuple[Region, ...]
    notices_per_year: float = Field(gt=0)
    mean_hours: float = Field(gt=0)
    public_share: float = Field(ge=0, lt=1)


class IntergovernmentalSpec(StrictModel):
    name: str
    icse: bool = False
    refers_from: str | None = None


class NgoSpec(StrictModel):
    name: str
    country: str


class Discrepancy(StrictModel):
    company: str
    own_count_ratio: float = Field(gt=0)


class Magnitudes(StrictModel):
    largest_company_reports_per_year: float = Field(gt=0)
    company_rank_exponent: float = Field(gt=0)
    company_report_growth: tuple[float, float]
    hotline_report_growth: tuple[float, float]
    victims_growth: tuple[float, float]
    icse_cumulative_start: int = Field(gt=0)
    icse_countries_connected_start: int = Field(gt=0)


class DemoConfig(StrictModel):
    registry_seed: int
    first_month: str = Field(pattern=r"^\d{4}-\d{2}$")
    consent_share: dict[str, float]
    name_templates: dict[str, str]
    countries: tuple[CountrySpec, ...]
    other_upload: dict[str, float]
    other_hosting: dict[str, float]
    icse_other_countries: dict[str, float]
    clearinghouses: tuple[ClearinghouseSpec, ...]
    intergovernmental: tuple[IntergovernmentalSpec, ...]
    ngos: tuple[NgoSpec, ...]
    companies: tuple[CompanySpec, ...]
    report_discrepancies: tuple[Discrepancy, ...]
    actionable_only_agency: str
    magnitudes: Magnitudes


def slug(name: str) -> str:
    """An organisation code from its name: ``Brightwave Social`` -> ``brightwave-social``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def load_config(path: Path) -> DemoConfig:
    try:
        return DemoConfig.model_validate(safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        problems = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise CatalogueError(problems) from None


@dataclass(frozen=True)
class Member:
    """A registered organisation with what the generator needs to know about its role."""

    code: str
    kind: str  # stakeholder type
    country: str | None
    region: Region | None
    rank: int = 0  # companies: 1 = largest


@dataclass(frozen=True)
class Alliance:
    """The alliance's members grouped by role, and lookups between them."""

    config: DemoConfig
    registry: tuple[OrganisationIn, ...]
    companies: tuple[Member, ...]
    hotlines: tuple[Member, ...]
    agencies: tuple[Member, ...]
    clearinghouses: tuple[Member, ...]
    governments: tuple[Member, ...]
    icse_body: Member
    regional_police: Member  # the Europol-like agency receiving one clearinghouse's referrals
    regional_police_source: str  # the clearinghouse that refers to it

    @cached_property
    def countries(self) -> dict[str, CountrySpec]:
        return {c.code: c for c in self.config.countries}

    @cached_property
    def company_specs(self) -> dict[str, CompanySpec]:
        return {slug(c.name): c for c in self.config.companies}

    @cached_property
    def hotline_of(self) -> dict[str, str]:
        return {m.country: m.code for m in self.hotlines if m.country}

    @cached_property
    def agency_of(self) -> dict[str, str]:
        return {m.country: m.code for m in self.agencies if m.country}

    @cached_property
    def clearinghouse_specs(self) -> dict[str, ClearinghouseSpec]:
        return {slug(c.name): c for c in self.config.clearinghouses}

    @cached_property
    def clearinghouse_of_region(self) -> dict[str, str]:
        return {region: code for code, spec in self.clearinghouse_specs.items() for region in spec.regions}

    @cached_property
    def upload_weights(self) -> dict[str, float]:
        """Share of reports per apparent upload location (member countries or not)."""
        return _normalised({c.code: c.upload for c in self.config.countries} | self.config.other_upload)

    def upload_weights_near(self, regions: Collection[str]) -> dict[str, float]:
        """Upload locations as seen by a reporter in ``regions``: those countries weigh 4 times more."""
        countries = self.countries
        return {
            code: w * (4.0 if code in countries and countries[code].region in regions else 1.0)
            for code, w in self.upload_weights.items()
        }

    @cached_property
    def hosting_weights(self) -> dict[str, float]:
        """Share of confirmed CSAM URLs per hosting country (member countries or not)."""
        return _normalised({c.code: c.hosting for c in self.config.countries} | self.config.other_hosting)

    @cached_property
    def hosts_by_country(self) -> dict[str, dict[str, float]]:
        """Member companies that host notified material, per country, with their weight."""
        hosts: dict[str, dict[str, float]] = {}
        for member in self.companies:
            spec = self.company_specs[member.code]
            weight = HOSTING_SECTORS.get(spec.sector, 0.0)
            if weight and member.country:
                hosts.setdefault(member.country, {})[member.code] = weight
        return hosts


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {code: value / total for code, value in sorted(weights.items()) if value > 0}


def build_alliance(config: DemoConfig) -> Alliance:
    """The registry (OrganisationIn, parents first) and the members by role."""
    rng = np.random.default_rng(config.registry_seed)
    share = config.consent_share
    registry: list[OrganisationIn] = []

    def add(code: str, name: str, kind: str, country: str | None, **extra: object) -> Member:
        registry.append(
            OrganisationIn.model_validate(
                {
                    "code": code,
                    "name": name,
                    "stakeholder_type": kind,
                    "country": country,
                    "consents_to_be_named": bool(rng.random() < share[kind]),
                    **extra,
                }
            )
        )
        region = next((c.region for c in config.countries if c.code == country), None)
        return Member(code, kind, country, region)

    def add_national(kind: str, country: str) -> Member:
        """A national body named from the template: ``GB Office for ...`` -> ``gb-office-for-...``."""
        template = config.name_templates[kind]
        code = f"{country.lower()}-{slug(template.format(country=''))}"
        return add(code, template.format(country=country_name(country)), kind, country)

    for ngo in config.ngos:
        add(slug(ngo.name), ngo.name, "ngo", ngo.country)
    clearinghouses = tuple(
        add(slug(c.name), c.name, "clearinghouse", c.country) for c in config.clearinghouses
    )
    hotlines, agencies, governments = [], [], []
    for country in config.countries:
        if country.hotline:
            parent = {"parent": country.hotline_parent} if country.hotline_parent else {}
            hotlines.append(add(slug(country.hotline), country.hotline, "hotline", country.code, **parent))
        if country.law_enforcement:
            agencies.append(add_national("law_enforcement", country.code))
        if country.government:
            governments.append(add_national("government", country.code))
    bodies = [add(slug(b.name), b.name, "intergovernmental", None) for b in config.intergovernmental]
    companies = []
    for rank, company in enumerate(config.companies, start=1):
        member = add(slug(company.name), company.name, "company", company.country, sector=company.sector)
        companies.append(Member(member.code, member.kind, member.country, member.region, rank))
    icse = next(b for b, spec in zip(bodies, config.intergovernmental, strict=True) if spec.icse)
    regional, source = next(
        (b, spec.refers_from)
        for b, spec in zip(bodies, config.intergovernmental, strict=True)
        if spec.refers_from
    )
    alliance = Alliance(
        config=config,
        registry=tuple(registry),
        companies=tuple(companies),
        hotlines=tuple(hotlines),
        agencies=tuple(agencies),
        clearinghouses=clearinghouses,
        governments=tuple(governments),
        icse_body=icse,
        regional_police=regional,
        regional_police_source=source,
    )
    _check_references(alliance)
    return alliance


def _check_references(alliance: Alliance) -> None:
    """Names in the file that must refer to an organisation of the right kind."""
    config, problems = alliance.config, []
    codes = [o.code for o in alliance.registry]
    problems += [
        f"organisation code {c!r} is used twice" for c in sorted({c for c in codes if codes.count(c) > 1})
    ]
    problems += [
        f"unknown parent {o.parent!r}" for o in alliance.registry if o.parent and o.parent not in codes
    ]
    companies = {m.code for m in alliance.companies}
    problems += [
        f"unknown company {d.company!r}" for d in config.report_discrepancies if d.company not in companies
    ]
    if config.actionable_only_agency not in {m.code for m in alliance.agencies}:
        problems.append(f"unknown law-enforcement agency {config.actionable_only_agency!r}")
    if alliance.regional_police_source not in alliance.clearinghouse_specs:
        problems.append(f"unknown clearinghouse {alliance.regional_police_source!r}")
    regions = {m.region for m in alliance.companies}
    problems += [
        f"no clearinghouse for region {r!r}" for r in regions if r not in alliance.clearinghouse_of_region
    ]
    problems += [
        f"government of {m.country} has no agency"
        for m in alliance.governments
        if m.country not in alliance.agency_of
    ]
    if problems:
        raise CatalogueError([f"data/demo/alliance.yaml: {p}" for p in problems])
