"""Random draws and row helpers shared by every kind of demo organisation.

Every figure is drawn from a generator keyed by (seed, organisation, period), never from a
running stream, so a period's figures do not depend on which other periods are generated:
loading the demo again a month later adds the new month and leaves the old ones identical.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from hub.catalogue import BucketScheme
from hub.periods import PeriodRef
from hub.validation import ObservationIn

Counts = Mapping[str, int]


def rng_for(seed: int, *parts: str | int) -> np.random.Generator:
    """A generator for one purpose, keyed by the seed and stable names (CRC-32 of strings)."""
    if seed < 0:
        raise ValueError("the demo seed must be a non-negative integer")
    key = [seed, *(zlib.crc32(p.encode()) if isinstance(p, str) else p for p in parts)]
    return np.random.default_rng(key)


def years_since(first: PeriodRef, period: PeriodRef) -> float:
    """Time from the first demo month to the start of ``period``, in years (drives trends)."""
    return ((period.year - first.year) * 12 + period.first_month - first.first_month) / 12


def poisson(rng: np.random.Generator, mean: float) -> int:
    return int(rng.poisson(max(mean, 0.0)))


def binomial(rng: np.random.Generator, n: int, p: float) -> int:
    return int(rng.binomial(n, min(max(p, 0.0), 1.0))) if n > 0 else 0


def lognormal(rng: np.random.Generator, sigma: float) -> float:
    """A multiplicative noise factor with median 1."""
    return float(math.exp(rng.normal(0.0, sigma)))


def split(rng: np.random.Generator, total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """``total`` items spread over the keys of ``weights`` (multinomial; the parts add up)."""
    keys = list(weights)
    probs = np.array([weights[k] for k in keys], dtype=float)
    counts = rng.multinomial(max(total, 0), probs / probs.sum())
    return {k: int(c) for k, c in zip(keys, counts, strict=True)}


def mix_near(
    rng: np.random.Generator, shares: Mapping[str, float], concentration: float = 40
) -> dict[str, float]:
    """An organisation's own mix around typical ``shares`` (Dirichlet; higher = closer)."""
    drawn = rng.dirichlet([concentration * v for v in shares.values()])
    return {k: float(v) for k, v in zip(shares, drawn, strict=True)}


def scaled(counts: Counts, prefix: str, factor: float) -> dict[str, int]:
    """Counts whose key starts with ``prefix`` multiplied by ``factor``, rounded down.

    Rounding down keeps every part at most its whole, so shares stay within [0, 1].
    """
    return {k: math.floor(v * factor) if k.startswith(prefix) else v for k, v in counts.items()}


def parts(counts: Counts, prefix: str) -> dict[str, int]:
    """The counts under ``prefix`` keyed by the rest of their key (``notices.country.NL`` -> NL)."""
    return {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}


def bucket_probabilities(
    scheme: BucketScheme,
    components: list[tuple[float, float, float]],
    not_actioned: float,
) -> dict[str, float]:
    """Probability of each bucket for a mixture of log-normal times plus a censored share.

    ``components`` are (weight, median hours, sigma); their weights are normalised.
    """
    total_weight = sum(w for w, _, _ in components)
    cdf = [0.0]
    for edge in scheme.edges_minutes:
        log_edge = math.log(edge)
        cdf.append(
            sum(
                w * 0.5 * (1.0 + math.erf((log_edge - math.log(m * 60)) / (s * math.sqrt(2))))
                for w, m, s in components
            )
            / total_weight
        )
    cdf.append(1.0)
    timed = [b.code for b in scheme.buckets if not b.is_censored]
    probs = {code: (cdf[i + 1] - cdf[i]) * (1 - not_actioned) for i, code in enumerate(timed)}
    probs[scheme.buckets[-1].code] = not_actioned
    return probs


def share_within(scheme: BucketScheme, probs: Mapping[str, float], minutes: int) -> float:
    """Share of actioned cases done within ``minutes`` (an edge of the scheme)."""
    timed = [b for b in scheme.buckets if not b.is_censored]
    actioned = sum(probs[b.code] for b in timed)
    within = sum(probs[b.code] for b in timed if b.upper_minutes is not None and b.upper_minutes <= minutes)
    return within / actioned if actioned else 0.0


@dataclass
class Rows:
    """Observations of one organisation and period, as a submission will carry them."""

    period: PeriodRef
    estimated: frozenset[str] = frozenset()
    rows: list[ObservationIn] = field(default_factory=list)

    def add(self, metric: str, value: float | None, **dims: str) -> None:
        self.rows.append(
            ObservationIn(metric, self.period, value, dims, is_estimated=metric in self.estimated)
        )

    def breakdown(self, metric: str, dimension: str, values: Mapping[str, int], *, total: bool = True) -> int:
        """Rows by ``dimension`` (zeros kept, so the shape is stable) and their total row."""
        for code, value in values.items():
            self.add(metric, value, **{dimension: code})
        whole = sum(values.values())
        if total:
            self.add(metric, whole)
        return whole

    def share(self, metric: str, numerator: int, denominator: int) -> None:
        """A ratio metric, only where it is defined; always equal to its own counts."""
        if denominator > 0:
            self.add(metric, numerator / denominator)
