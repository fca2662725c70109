"""What every part of the generator shares: the context, drafts and inter-organisation flows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from hub.catalogue import BucketScheme
from hub.demo.config import Alliance, Member
from hub.periods import PeriodRef
from hub.validation import ObservationIn

# (why the first version was wrong, prefix of the counts it got wrong, factor it was off by)
Reason = tuple[str, str, float]
Render = Callable[[Mapping[str, int]], list[ObservationIn]]


@dataclass(frozen=True)
class Context:
    seed: int
    alliance: Alliance
    scheme: BucketScheme
    first: PeriodRef  # the first demo month


@dataclass(frozen=True)
class Draft:
    """The true figures of one organisation for one period, before the reporting schedule.

    ``render`` turns counts into observations; the schedule renders the true counts, or
    counts deliberately off by a ``reason`` for a first version that is later restated.
    """

    org: Member
    period: PeriodRef
    counts: Mapping[str, int]
    render: Render
    reasons: tuple[Reason, ...] = ()

    @property
    def scope(self) -> str:
        return self.period.code


@dataclass
class Flows:
    """True counts of what one organisation sent another, per kind and period.

    Both ends derive their own figure from the same flow, each with its own counting
    error, so the hub's reconciliation finds realistic gaps.
    """

    # (kind, "to" or "from", organisation, period code) -> the other end -> count
    index: defaultdict[tuple[str, str, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def add(self, kind: str, sender: str, receiver: str, period: PeriodRef, count: int) -> None:
        if count:
            for key, other in (
                ((kind, "to", receiver, period.code), sender),
                ((kind, "from", sender, period.code), receiver),
            ):
                self.index[key][other] = self.index[key].get(other, 0) + count

    def _sum(self, kind: str, direction: str, org: str, periods: Iterable[PeriodRef]) -> dict[str, int]:
        result: dict[str, int] = {}
        for period in periods:
            for other, count in self.index.get((kind, direction, org, period.code), {}).items():
                result[other] = result.get(other, 0) + count
        return result

    def into(self, kind: str, receiver: str, periods: Iterable[PeriodRef]) -> dict[str, int]:
        """Sender -> count of everything of ``kind`` that reached ``receiver`` in ``periods``."""
        return self._sum(kind, "to", receiver, periods)

    def out_of(self, kind: str, sender: str, periods: Iterable[PeriodRef]) -> dict[str, int]:
        """Receiver -> count of everything of ``kind`` that ``sender`` sent in ``periods``."""
        return self._sum(kind, "from", sender, periods)
