"""200 organisations' own reports of the demo, against a floor measured in the same run.

Issue 6's goal: company reports for 200 companies under 5 minutes on this machine (2 cores).
The demo has fewer member organisations than 200, so its organisations with figures for the
year are cycled (companies first) until there are 200 reports; each is computed and rendered
in full every time (nothing is cached between reports). The baseline, in the same run and
through the same pool of worker processes (WeasyPrint warm, one forked renderer per PDF, the
same time limit and atomic write): 200 one-page PDFs of a single paragraph, the floor of
"make 200 PDFs here".

Run: ``.venv/bin/python -m bench.company_reports [--database-url URL] [--reports 200]``;
without a URL it builds the demo (``hub demo --no-serve``, about a minute) in a temporary
SQLite database.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from sqlmodel import Session, col, select

from bench.release_build import demo_or
from hub.db import build_engine
from hub.models import Observation, Organisation, Period, Submission
from hub.settings import REPO_ROOT
from reports import batch
from reports.render import write_pdf

GOAL_SECONDS = 300.0
YEAR = "2025"
DATA = REPO_ROOT / "data"


def _blank(out: str, number: int) -> None:
    write_pdf("<p>One paragraph.</p>", Path(out) / f"blank-{number}.pdf")


def _floor(url: str, count: int, workers: int, out: Path) -> float:
    out.mkdir(parents=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("fork"),
        initializer=batch._start,
        initargs=(url, str(DATA)),
    ) as pool:
        for future in [pool.submit(_blank, str(out), n) for n in range(count)]:
            future.result()
    return time.perf_counter() - started


def _codes(url: str, count: int) -> list[str]:
    """Member organisations with approved figures for the year, companies first, cycled to
    ``count``."""
    engine = build_engine(url)
    with Session(engine) as session:
        rows = session.exec(
            select(Organisation.code, Organisation.stakeholder_type)
            .where(col(Organisation.status) == "member")
            .where(
                col(Organisation.id).in_(
                    select(Submission.organisation_id)
                    .join(Observation, col(Observation.submission_id) == col(Submission.id))
                    .join(Period, col(Period.id) == col(Observation.period_id))
                    .where(col(Submission.status) == "approved", col(Period.year) == int(YEAR))
                )
            )
        ).all()
    engine.dispose()
    ordered = sorted(rows, key=lambda r: (r[1] != "company", r[0]))
    return list(itertools.islice(itertools.cycle([code for code, _ in ordered]), count))


def run(url: str, count: int, workers: int) -> None:
    codes = _codes(url, count)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        floor = _floor(url, count, workers, root / "blank")
        print(f"baseline: {count} one-page PDFs through the same pool of {workers}: {floor:.1f} s")
        started = time.perf_counter()
        results = batch.render_organisation_reports(url, DATA, codes, YEAR, root / "reports", workers=workers)
        seconds = time.perf_counter() - started
    made = [r for r in results if r.path is not None]
    skipped = len(results) - len(made)
    distinct = len(set(codes))
    print(
        f"{len(made)} organisation reports for {YEAR} ({distinct} distinct organisations cycled, "
        f"{skipped} skipped without figures): {seconds:.1f} s, {seconds / max(len(results), 1):.2f} s a report, "
        f"{seconds / floor:.1f}x the baseline"
    )
    verdict = "met" if seconds < GOAL_SECONDS and len(results) >= count else "missed"
    print(f"goal: {count} reports under {GOAL_SECONDS:.0f} s: {verdict} ({seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", help="a hub database with a published release (default: build the demo)"
    )
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with demo_or(args.database_url) as url:
        run(url, args.reports, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
