"""A synthetic alliance for the release benchmark: years x organisations x countries, seeded.

Issue 4 section 7 builds a release from 5 years x 200 organisations x 60 countries. This module
draws that data in the shapes the release build reads (the observation frame of
:func:`hub.figures.load_observations` and the organisation frame of
:func:`hub.figures.load_organisations`) without a database, so the indicator engine, disclosure
control and the DuckDB baseline can be timed on exactly the same frame.

The mix follows the real field loosely: every stakeholder type (NGOs report no catalogue metric
and appear only among the organisations), companies and hotlines report monthly with breakdowns
and takedown-time distributions (some in coarse buckets 0-1d, 1d-7d, 7d+), some organisations
report by quarter or by year, a few report a year directly as well as its months, a few skip a
month; ratio parts are consistent (a numerator never exceeds its denominator); counts of people
are small (many below 10); capabilities are 0/1 per service; the latest months are provisional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from hub.catalogue import NOT_ACTIONED, Catalogue, MetricSpec, load_catalogue
from hub.figures import OBSERVATION_COLUMNS, OBSERVATION_TYPES
from hub.periods import PeriodRef
from hub.settings import REPO_ROOT
from hub.vocab import DIMENSIONS, TOTAL

FIRST_YEAR = 2021
COUNTRY_POOL = [
    "US",
    "CA",
    "BR",
    "MX",
    "CO",
    "AR",
    "CL",
    "PE",
    "GB",
    "NL",
    "DE",
    "FR",
    "IE",
    "BE",
    "ES",
    "IT",
    "PT",
    "AT",
    "SE",
    "FI",
    "DK",
    "NO",
    "PL",
    "CZ",
    "HU",
    "RO",
    "BG",
    "GR",
    "LT",
    "LV",
    "SI",
    "SK",
    "HR",
    "EE",
    "LU",
    "CH",
    "UA",
    "TR",
    "IN",
    "PH",
    "BD",
    "PK",
    "ID",
    "TH",
    "VN",
    "MY",
    "SG",
    "JP",
    "KR",
    "AU",
    "NZ",
    "ZA",
    "NG",
    "KE",
    "GH",
    "EG",
    "MA",
    "TN",
    "SA",
    "AE",
    "IL",
    "JO",
    "LB",
    "QA",
    "KW",
    "OM",
]
TYPE_SHARES = {
    "company": 0.40,
    "hotline": 0.20,
    "law_enforcement": 0.20,
    "clearinghouse": 0.02,
    "ngo": 0.08,
    "government": 0.07,
    "intergovernmental": 0.03,
}
# Values of each breakdown dimension (shared by every metric, so ratio parts meet on keys).
BREAKDOWN = {
    "content_type": ["image", "video", "url", "other"],
    "notice_source": ["user_report", "hotline", "law_enforcement", "trusted_flagger", "proactive_detection"],
    "category": ["csam", "self_generated_csam", "grooming_enticement", "sextortion"],
    "service": ["main-app", "messenger", "cloud"],
    "recipient_type": ["icac_task_force", "local_law_enforcement", "federal_law_enforcement"],
    "detail_level": ["actionable", "informational"],
    "jurisdiction": ["domestic", "international", "unknown"],
}
PREFERENCE = ("content_type", "category", "notice_source", "country", "service", "counterpart",
              "recipient_type", "detail_level", "jurisdiction")  # fmt: skip
COARSE = ((0, 1440, "0-1d"), (1440, 10080, "1d-7d"), (10080, None, "7d+"))
PEOPLE_SCALE = 6.0  # mean people per organisation and month: many cells below 10


@dataclass
class _Columns:
    """Column arrays gathered piece by piece and concatenated once."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: {c: [] for c in OBSERVATION_COLUMNS})

    def add(self, n: int, values: np.ndarray, dims: dict[str, np.ndarray | str], **scalars: object) -> None:
        for name in DIMENSIONS:
            value = dims.get(name, TOTAL)
            self.parts[name].append(
                value if isinstance(value, np.ndarray) else np.full(n, value, dtype=object)
            )
        self.parts["value"].append(values.astype(float))
        for name, value in scalars.items():
            self.parts[name].append(value if isinstance(value, np.ndarray) else np.full(n, value))

    def frame(self) -> pd.DataFrame:
        data = {
            name: np.concatenate(arrays) if arrays else np.array([]) for name, arrays in self.parts.items()
        }
        return pd.DataFrame(data)[list(OBSERVATION_COLUMNS)].astype(OBSERVATION_TYPES)


def _periods(kind: str, years: int) -> list[PeriodRef]:
    count = {"month": 12, "quarter": 4, "half_year": 2, "year": 1}[kind]
    return [PeriodRef(FIRST_YEAR + y, kind, n) for y in range(years) for n in range(1, count + 1)]


def _organisations(rng: np.random.Generator, organisations: int, countries: list[str]) -> pd.DataFrame:
    counts = {t: max(1, round(share * organisations)) for t, share in TYPE_SHARES.items()}
    counts["company"] += organisations - sum(counts.values())
    rows = []
    for stype, count in counts.items():
        for i in range(count):
            country = countries[len(rows) % len(countries)] if stype != "intergovernmental" else ""
            rows.append(
                {
                    "organisation": f"{stype.replace('_', '-')[:10]}-{i:03d}",
                    "stakeholder_type": stype,
                    "org_country": country,
                    "status": "member",
                    "consents_to_be_named": bool(rng.random() < 0.6),
                }
            )
    return pd.DataFrame(rows).astype(
        {"organisation": "string", "stakeholder_type": "string", "org_country": "string", "status": "string"}
    )


def _bucket_probabilities(catalogue: Catalogue, median_minutes: float, spread: float) -> np.ndarray:
    edges = np.array(catalogue.buckets.edges_minutes, dtype=float)
    cdf = ndtr((np.log(edges) - np.log(median_minutes)) / spread)
    return np.diff(np.r_[0.0, cdf, 1.0])  # the timed buckets, the last one open


def synthetic_alliance(
    seed: int = 1, years: int = 5, organisations: int = 200, countries: int = 60
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observations (OBSERVATION_COLUMNS) and organisations (load_organisations form), seeded."""
    if not 1 <= countries <= len(COUNTRY_POOL):
        raise ValueError(f"countries must be 1-{len(COUNTRY_POOL)}")
    catalogue = load_catalogue(REPO_ROOT / "data")
    rng = np.random.default_rng(seed)
    country_list = COUNTRY_POOL[:countries]
    orgs = _organisations(rng, organisations, country_list)
    by_type = {t: list(orgs.loc[orgs["stakeholder_type"] == t, "organisation"]) for t in TYPE_SHARES}
    periods = {kind: _periods(kind, years) for kind in ("month", "quarter", "half_year", "year")}
    codes = {kind: np.array([p.code for p in refs], dtype=object) for kind, refs in periods.items()}
    last_year = FIRST_YEAR + years - 1
    columns = _Columns()
    scheme_codes = np.array(catalogue.buckets.codes[:-1], dtype=object)
    numerators = {
        s.numerator: s.denominator for s in catalogue.metrics.values() if s.combination == "ratio_of_sums"
    }

    for index, org in enumerate(orgs.itertuples(index=False)):
        metrics = catalogue.metrics_for(str(org.stakeholder_type))
        if not metrics:
            continue
        pattern = rng.choice(["month", "quarter", "year", "mixed"], p=[0.65, 0.2, 0.1, 0.05])
        size = float(np.exp(rng.normal(6.0, 1.5)))  # monthly volume, log-normal across members
        coarse = rng.random() < 0.3
        skip = rng.random() < 0.1  # skips one month somewhere (its quarter and year do not roll up)
        partners = rng.choice(by_type["company"], size=3, replace=False)
        services = BREAKDOWN["service"][: 1 + index % 3]
        drawn: dict[str, dict[str, np.ndarray]] = {}
        for spec in metrics:
            kind = str(pattern) if pattern != "mixed" else "month"
            if kind not in spec.frequencies:
                kind = "quarter" if "quarter" in spec.frequencies else spec.frequencies[-1]
            kinds = [kind, "year"] if pattern == "mixed" and kind == "month" else [kind]
            for k in kinds:
                refs = periods[k]
                keep = np.ones(len(refs), dtype=bool)
                if skip and k == "month":
                    keep[rng.integers(len(refs))] = False
                months = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}[k]
                provisional = np.array([r.year == last_year and r.number * months > 12 - 2 for r in refs])
                meta = {
                    "metric": spec.code,
                    "period": codes[k][keep],
                    "period_kind": k,
                    "organisation": str(org.organisation),
                    "stakeholder_type": str(org.stakeholder_type),
                    "org_country": str(org.org_country),
                    "provisional": provisional[keep],
                    "submission_id": index * 100
                    + np.array([r.year - FIRST_YEAR for r in refs])[keep]
                    + (50 if k == "year" and pattern == "mixed" else 0),
                    "version": 1,
                    "supersede_reason": "",
                    "channel": "api",
                }
                _draw(rng, catalogue, spec, columns, meta, int(keep.sum()), size * months, drawn, numerators,
                      services, list(partners), country_list, scheme_codes, coarse)  # fmt: skip
    return columns.frame(), orgs


def _breakdowns(
    spec: MetricSpec, services: list[str], partners: list[str], countries: list[str], rng: np.random.Generator
) -> list[tuple[str, list[str]]]:
    """Up to two dimensions the metric is broken down by, each with its values."""
    result = []
    for name in PREFERENCE:
        if name not in spec.dimensions:
            continue
        if name == "service":
            values = services
        elif name == "counterpart":
            values = partners
        elif name == "country":
            values = sorted(set(rng.choice(countries, size=4, replace=False)))
        else:
            values = BREAKDOWN[name]
        result.append((name, list(values)))
        if len(result) == 2:
            break
    return result


def _draw(
    rng: np.random.Generator,
    catalogue: Catalogue,
    spec: MetricSpec,
    columns: _Columns,
    meta: dict[str, object],
    n: int,
    volume: float,
    drawn: dict[str, dict[str, np.ndarray]],
    numerators: dict[str | None, str | None],
    services: list[str],
    partners: list[str],
    countries: list[str],
    scheme_codes: np.ndarray,
    coarse: bool,
) -> None:
    """The rows of one metric of one organisation for the periods in ``meta``."""
    breakdowns = _breakdowns(spec, services, partners, countries, rng)
    if spec.combination == "distribution":
        keys: list[tuple[dict[str, str], float]] = [({}, 1.0)]
        if breakdowns:
            name, values = breakdowns[0]
            keys += [({name: v}, 1.0 / len(values)) for v in values]
        probabilities = _bucket_probabilities(catalogue, float(np.exp(rng.normal(np.log(600), 1.0))), 2.0)
        for dims, share in keys:
            events = rng.poisson(max(volume * 0.2 * share, 1.0), size=n)
            pending = rng.binomial(events, 0.03)
            counts = rng.multinomial(events - pending, probabilities)  # (n, buckets)
            if coarse:
                edges = np.array([0, *catalogue.buckets.edges_minutes])
                merged = [
                    counts[:, (edges >= low) & ((edges < high) if high else True)].sum(axis=1)
                    for low, high, _ in COARSE
                ]
                labels = [label for _, _, label in COARSE]
                counts = np.stack(merged, axis=1)
            else:
                labels = list(scheme_codes)
            for j, label in enumerate([*labels, NOT_ACTIONED]):
                value = counts[:, j] if j < len(labels) else pending
                columns.add(n, value, {**dims, "time_bucket": label}, **meta)
        return
    if spec.unit == "boolean":
        for service in services:
            has = (rng.random() < 0.6) | (rng.random(n) < 0.05)
            columns.add(
                n, has.astype(float), {"service": service} if "service" in spec.dimensions else {}, **meta
            )
        return
    if spec.combination == "latest":
        base = 40 if "countries" in spec.code else 30000
        columns.add(n, np.floor(base + np.arange(n) * base * 0.01), {}, **meta)
        return
    if spec.combination == "ratio_of_sums":
        return  # computed by the hub from its parts
    if spec.combination == "mean_weighted":
        columns.add(n, np.round(rng.gamma(2.0, 15.0, size=n), 1), {}, **meta)
        return
    people = spec.disclosure_class == "people"
    months = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}[str(meta["period_kind"])]
    mean = PEOPLE_SCALE * months * rng.uniform(0.2, 3.0) if people else volume * rng.uniform(0.2, 2.0)
    denominator = numerators.get(spec.code)
    own: dict[str, np.ndarray] = {}
    if denominator and f"{denominator}/{meta['period_kind']}" in drawn:
        base = drawn[f"{denominator}/{meta['period_kind']}"]
        share = rng.uniform(0.3, 0.98)
        total = rng.binomial(base["_T"].astype(np.int64), share)
    else:
        base = {}
        share = 1.0
        total = rng.poisson(mean, size=n)
    own["_T"] = total
    columns.add(n, total, {}, **meta)
    for name, values in breakdowns:
        if base and all(f"{name}={v}" in base for v in values):
            split = np.stack(
                [rng.binomial(base[f"{name}={v}"].astype(np.int64), share) for v in values], axis=1
            )
        else:
            split = rng.multinomial(total, np.full(len(values), 1.0 / len(values)))
        for j, value in enumerate(values):
            own[f"{name}={value}"] = split[:, j]
            columns.add(n, split[:, j], {name: value}, **meta)
    drawn[f"{spec.code}/{meta['period_kind']}"] = own


def main() -> int:
    import time

    start = time.perf_counter()
    observations, organisations = synthetic_alliance()
    seconds = time.perf_counter() - start
    print(f"{len(observations):,} observations, {len(organisations)} organisations in {seconds:.1f} s")
    out = Path("/tmp/csea_release_synthetic.parquet")
    observations.to_parquet(out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
