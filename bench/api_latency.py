"""Latency of ``POST /api/v1/submissions`` with 100 aggregate observations, SQLite and PostgreSQL.

The whole hub app is served by waitress on 127.0.0.1 in this process (the options of ``hub serve``)
and called over one keep-alive HTTP connection. Measured per backend, in the same run:

- baseline: ``GET /healthz`` (routing, one ``SELECT 1``, JSON answer): the floor of any request;
- stored: a batch of 100 observations (one month, 100 countries), a new month each time, so
  every request really validates and stores a new submission;
- replay: the same batch again (same checksum: validated, then found unchanged);
- idempotent replay: the same batch with its Idempotency-Key (answered from the stored response).

Goal (issue 3): p95 of "stored" under 50 ms on both backends.
Run: ``.venv/bin/python -m bench.api_latency [--requests 100] [--backend sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import pycountry

from bench.databases import empty_database
from hub.db import build_engine, session_scope
from hub.organisations import OrganisationIn, add_organisation
from hub.services import prepare_database
from hub.serving import serve_in_thread
from hub.settings import REPO_ROOT, Settings
from hub.tokens import create_token

ORG = "bench-platform"
GOAL_MS = 50.0
COUNTRIES = sorted(c.alpha_2 for c in pycountry.countries)[:100]


def batch(period: str, base: int = 1000) -> bytes:
    """100 valid observations of co_items_actioned for ``period``, one per country."""
    observations = [
        {"period": period, "metric": "co_items_actioned", "country": code, "value": base + i, "unit": "count"}
        for i, code in enumerate(COUNTRIES)
    ]
    return json.dumps({"schema_version": "1", "reporter": ORG, "observations": observations}).encode()


def months(n: int) -> list[str]:
    return [f"{2015 + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


def database(backend: str, folder: Path) -> AbstractContextManager[str]:
    """A fresh empty database for this benchmark (bench.databases)."""
    return empty_database(backend, folder, name="bench-api")


Timings = tuple[list[float], list[float]]  # wall-clock ms per request, process CPU ms per request


def timed(
    connection: http.client.HTTPConnection,
    requests: Sequence[tuple[str, str, bytes | None, dict[str, str]]],
    expect: int,
) -> Timings:
    """Milliseconds of each request, wall clock and CPU of this process (client and server
    threads together); every answer must have status ``expect``."""
    times, cpu = [], []
    for method, path, body, headers in requests:
        started, cpu_started = time.perf_counter(), time.process_time()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        if response.status != expect:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
    return times, cpu


def summary(timings: Timings) -> tuple[float, float, float]:
    """(p50, p95) wall clock and the median CPU time, in ms."""
    times, cpu = timings
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return cuts[49], cuts[94], statistics.median(cpu)


def run_backend(backend: str, n: int, folder: Path) -> dict[str, tuple[float, float, float]]:
    from dashboards.app import create_app

    with database(backend, folder) as url:
        settings = Settings(
            env="test",
            database_url=url,
            var_dir=folder / "var",
            api_rate_per_minute=1_000_000,
            api_rate_per_minute_per_address=1_000_000,
        )
        engine = build_engine(url)
        prepare_database(engine, settings)
        with session_scope(engine) as session:
            org = add_organisation(
                session, OrganisationIn(code=ORG, name="Bench Platform", stakeholder_type="company")
            )
            token, _ = create_token(session, org, "bench", days=1)
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        periods = months(n + 5)
        results: dict[str, tuple[float, float, float]] = {}
        app = create_app(engine, settings).server
        with serve_in_thread(app, max_body_bytes=settings.max_upload_bytes) as base:
            connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=60)
            post = "/api/v1/submissions"
            # warm-up: catalogue, caches, connection pool (not measured)
            timed(connection, [("GET", "/healthz", None, {})] * 20, 200)
            timed(connection, [("POST", post, batch(p), auth) for p in periods[n:]], 201)
            results["baseline GET /healthz"] = summary(
                timed(connection, [("GET", "/healthz", None, {})] * n, 200)
            )
            stored = [("POST", post, batch(p), auth) for p in periods[:n]]
            results["POST 100 obs, stored"] = summary(timed(connection, stored, 201))
            results["POST 100 obs, same content again"] = summary(timed(connection, stored, 200))
            keyed = [("POST", post, batch(p, 5), {**auth, "Idempotency-Key": f"k-{p}"}) for p in periods[:n]]
            keyed_first = [(m, pa + "?reason=bench", b, h) for m, pa, b, h in keyed]
            timed(connection, keyed_first, 201)  # restatements, each with its key
            results["POST 100 obs, idempotent replay"] = summary(
                timed(connection, [(m, pa + "?reason=bench", b, h) for m, pa, b, h in keyed], 201)
            )
            connection.close()
        engine.dispose()
    return results


def report(backend: str, results: dict[str, tuple[float, float, float]]) -> None:
    base50, base95, _ = results["baseline GET /healthz"]
    print(f"\n{backend}:")
    print(f"  {'request':36} {'p50 ms':>8} {'p95 ms':>8} {'p95 / baseline':>15} {'CPU p50 ms':>11}")
    for name, (p50, p95, cpu) in results.items():
        print(f"  {name:36} {p50:8.1f} {p95:8.1f} {p95 / base95:14.1f}x {cpu:11.1f}")
    stored95 = results["POST 100 obs, stored"][1]
    verdict = "meets" if stored95 < GOAL_MS else "MISSES"
    print(
        f"  stored p95 {stored95:.1f} ms {verdict} the {GOAL_MS:.0f} ms goal (baseline p50 {base50:.1f} ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=100, help="requests per measurement (default 100)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(
        f"API latency, {args.requests} requests per line, waitress on 127.0.0.1 ({REPO_ROOT.name}); "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="hub-bench-api-") as tmp:
        for backend in args.backend or ["sqlite", "postgresql"]:
            report(backend, run_backend(backend, args.requests, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
