"""Loading the synthetic alliance through the hub's own storage path, idempotently."""

from __future__ import annotations

import time as timer
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlmodel import Session, col, select

from hub.approval import PeriodLocked
from hub.catalogue import Catalogue
from hub.demo.calendar import load_demo_calendar
from hub.demo.generate import DEFAULT_CONFIG, GeneratedAlliance, generate_alliance
from hub.errors import HubError
from hub.models import Organisation, Submission
from hub.organisations import upsert_registry
from hub.store import SubmissionRejected, content_checksum, store_submission

CHANNEL = "demo"
ACTOR = "demo"


@dataclass(frozen=True)
class DemoReport:
    """What a demo load generated and stored, for the CLI and the tests."""

    seed: int
    organisations: dict[str, int]  # stakeholder type -> count
    countries: int
    months: tuple[str, str] | None  # first and last month with figures
    quarters: tuple[str, str] | None
    submissions: int  # versions generated (that had arrived by today)
    observations: int
    stored_submissions: int  # new in the database (0 when loaded again)
    stored_observations: int
    late: int
    missing: int
    restated: int
    provisional: int
    seconds: float

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.organisations.items()))
        span = "; ".join(
            f"{label} {first} to {last}"
            for label, pair in (("months", self.months), ("quarters", self.quarters))
            if pair
            for first, last in [pair]
        )
        return "\n".join(
            [
                f"demo alliance (seed {self.seed}): {sum(self.organisations.values())} organisations "
                f"in {self.countries} countries ({kinds})",
                f"  periods: {span or 'none complete yet'}",
                f"  submissions: {self.submissions} with {self.observations} observations; "
                f"new this time: {self.stored_submissions} with {self.stored_observations} observations",
                f"  coordination: {self.late} late, {self.missing} missing, {self.restated} restated, "
                f"{self.provisional} provisional",
                f"  loaded in {self.seconds:.1f} s",
            ]
        )


def _report(seed: int, generated: GeneratedAlliance, stored: tuple[int, int], seconds: float) -> DemoReport:
    subs = generated.submissions
    months, quarters = generated.months, generated.quarters
    return DemoReport(
        seed=seed,
        organisations=dict(Counter(o.stakeholder_type for o in generated.registry)),
        countries=len({o.country for o in generated.registry if o.country}),
        months=(months[0].code, months[-1].code) if months else None,
        quarters=(quarters[0].code, quarters[-1].code) if quarters else None,
        submissions=len(subs),
        observations=sum(len(s.rows) for s in subs),
        stored_submissions=stored[0],
        stored_observations=stored[1],
        late=sum(s.late for s in subs),
        missing=len(generated.missing),
        restated=sum(s.version > 1 for s in subs),
        provisional=sum(s.provisional for s in subs),
        seconds=seconds,
    )


def load_demo_alliance(
    session: Session,
    catalogue: Catalogue,
    *,
    seed: int,
    today: date | None = None,
    config_path: Path = DEFAULT_CONFIG,
) -> DemoReport:
    """Register the demo organisations and store every submission that is not stored yet.

    Loading again with the same seed stores nothing new (same checksums); a later ``today``
    adds the periods and versions that have arrived since.
    """
    started = timer.perf_counter()
    today = today or date.today()
    generated = generate_alliance(catalogue, seed=seed, today=today, config_path=config_path)
    org_codes = set(upsert_registry(session, list(generated.registry)))
    codes = [o.code for o in generated.registry]
    orgs = {o.code: o for o in session.exec(select(Organisation).where(col(Organisation.code).in_(codes)))}
    now = datetime.combine(today, time.min, UTC)
    # a demo history replays versions (provisional, then final): those already stored are skipped
    stored = set(
        session.exec(
            select(Organisation.code, Submission.scope, Submission.checksum)
            .join(Organisation, col(Organisation.id) == Submission.organisation_id)
            .where(Submission.channel == CHANNEL)
        )
    )
    created = observations = 0
    for sub in generated.submissions:
        checksum = content_checksum(sub.rows)
        if (sub.org, sub.scope, checksum) in stored:
            continue
        try:
            result = store_submission(
                session,
                catalogue,
                orgs[sub.org],
                sub.rows,
                channel=CHANNEL,
                scope=sub.scope,
                actor=ACTOR,
                checksum=checksum,
                supersede_reason=sub.supersede_reason,
                received_at=sub.received_at,
                today=now,
                org_codes=org_codes,
            )
        except (SubmissionRejected, PeriodLocked):
            raise
        except HubError as exc:
            raise HubError(
                f"{exc}: the database holds demo figures made with another seed or generator; "
                "load the demo into a fresh database"
            ) from exc
        created += result.created
        observations += result.observation_count if result.created else 0
    load_demo_calendar(session, catalogue, generated, seed)
    return _report(seed, generated, (created, observations), timer.perf_counter() - started)
