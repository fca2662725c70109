"""Many organisations' own reports at once (`hub report orgs`): for the secretariat, which
sends each member its report, and for the benchmark (200 company reports in under 5 minutes).

Each worker process reads what every report shares once (catalogue, policy, the latest
release's peer table, and WeasyPrint itself), then for each organisation computes its own
figures, builds the report and renders it in a forked child with the renderer's time limit,
writing the PDF atomically. Organisations without approved figures for the year are skipped
with the reason; one failing report does not stop the others.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from hub.catalogue import load_catalogue
from hub.db import build_engine
from hub.errors import HubError
from hub.models import Organisation

# one per worker process: what every report of the batch shares (set by _start)
_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class BatchResult:
    code: str
    path: Path | None  # None: skipped or failed
    seconds: float
    problem: str = ""


def organisations_to_report(session: Session, stakeholder_type: str | None = None) -> list[str]:
    """Member organisations (not public sources), optionally of one stakeholder type, by code."""
    query = select(Organisation.code).where(col(Organisation.status) == "member")
    if stakeholder_type:
        query = query.where(col(Organisation.stakeholder_type) == stakeholder_type)
    return sorted(session.exec(query.order_by(col(Organisation.code))))


def _start(database_url: str, data_dir: str) -> None:
    from hub.own_figures import FigureContext
    from reports.render import pdf_bytes_in_process

    engine = build_engine(database_url)
    catalogue = load_catalogue(Path(data_dir))
    with Session(engine) as session:
        context = FigureContext(session, catalogue, Path(data_dir))
        peers = context.peers(session)
    pdf_bytes_in_process("<p>ready</p>")  # WeasyPrint imported and warm before the first fork
    _WORKER.update(engine=engine, catalogue=catalogue, context=context, peers=peers)


def _one(code: str, year: str, out: str) -> BatchResult:
    from hub.own_figures import own_figures
    from reports.company import company_report
    from reports.render import render_html, write_pdf

    started = time.perf_counter()
    path = Path(out) / f"{code}-{year}.pdf"
    try:
        with Session(_WORKER["engine"]) as session:
            own = own_figures(session, _WORKER["context"], code)
        document = company_report(own, _WORKER["peers"], _WORKER["catalogue"], year)
        write_pdf(render_html("report.html", document), path)
    except HubError as problem:
        return BatchResult(code, None, time.perf_counter() - started, str(problem))
    except Exception as failure:  # one report's failure never stops the others; its type only
        return BatchResult(code, None, time.perf_counter() - started, f"failed ({type(failure).__name__})")
    return BatchResult(code, path, time.perf_counter() - started)


def render_organisation_reports(
    database_url: str,
    data_dir: Path,
    codes: Sequence[str],
    year: str,
    out: Path,
    *,
    workers: int = 2,
) -> list[BatchResult]:
    """Each organisation's report of ``year`` into ``out/<code>-<year>.pdf``, ``workers``
    processes at a time; one result per code, in order."""
    out.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=max(1, workers),
        mp_context=context,
        initializer=_start,
        initargs=(database_url, str(data_dir)),
    ) as pool:
        futures = [pool.submit(_one, code, year, str(out)) for code in codes]
        return [future.result() for future in futures]
