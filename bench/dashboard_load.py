"""Public pages under load: simulated readers of the demo release, over HTTP on 127.0.0.1.

The hub app is served by waitress in this process (the options of ``hub serve``). Each
simulated user opens a page as a browser does (the index, the layout, the callback
dependencies, then the page callback that draws it), then changes a filter (one more page
callback), and starts again with another page, without pause. Measured in the same run:

- baseline: ``GET /healthz`` timed by the same users between pages (the floor of any request
  under the same load);
- page load: index + layout + dependencies + first page callback, as one user waits for it;
- callback: every page callback (``/_dash-update-component``).

Readers pause ``--think`` seconds (default 1, from 0.5 to 1.5) after each page and each filter
change, as a person reading a dashboard does: the load is bounded by the users, not by the
server. Every page and filter is drawn once before measuring (``warm``), as the first readers
of a release would; that time is printed too.

Issue 5's goal: callback p95 under 300 ms with 20 concurrent users; 200 users without errors.
Run: ``.venv/bin/python -m bench.dashboard_load [--database-url URL] [--seconds 30]``; without a
URL it builds the demo (``hub demo --no-serve``, about 80 s) in a temporary SQLite database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.release_build import prepare_demo
from dashboards.app import create_app
from hub.db import build_engine
from hub.serving import serve_in_thread
from hub.settings import Settings

GOAL_MS = 300.0
# (path, filter variants as query strings): what readers open
PAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/", ("",)),
    ("/targets", ("?scope=alliance", "?scope=country", "?target=ga_hotline_removal_within_72h")),
    ("/takedown", ("?metric=co_takedown_time", "?period=2023", "?metric=co_takedown_time&period=2022")),
    ("/volumes", ("?metric=ht_notices_sent", "?by=country&period=2022", "?metric=co_items_actioned")),
    ("/victims", ("?period=2024", "?metric=le_victims_identified_icse")),
    ("/flows", ("?period=2024", "?period=2023")),
    ("/countries", ("?metric=ch_reports_received", "?period=2024", "?metric=le_victims_identified")),
    ("/countries/GB", ("",)),
    ("/organisations", ("",)),
    ("/data", ("",)),
)


def callback_body(path: str, search: str) -> bytes:
    """The request the browser sends to draw the page at ``path`` + ``search``."""
    return json.dumps(
        {
            "output": "..page.children...nav.children..",
            "outputs": [{"id": "page", "property": "children"}, {"id": "nav", "property": "children"}],
            "inputs": [
                {"id": "url", "property": "pathname", "value": path},
                {"id": "url", "property": "search", "value": search},
            ],
            "changedPropIds": ["url.search" if search else "url.pathname"],
            "state": [],
        }
    ).encode()


@dataclass
class Timings:
    baseline: list[float] = field(default_factory=list)
    page_load: list[float] = field(default_factory=list)
    first_load: list[float] = field(default_factory=list)  # a user's first page: connects too
    callback: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            getattr(self, kind).append(seconds * 1000)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> int:
    headers = {"Content-Type": "application/json"} if body else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def user(host: str, port: int, until: float, timings: Timings, seed: int, think: float) -> None:
    """One reader: page after page until ``until``, each followed by a filter change, pausing
    ``think`` seconds on average (0.5x to 1.5x) after each page and each change to read it."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    first = True
    try:
        while time.perf_counter() < until:
            path, variants = rng.choice(PAGES)
            started = time.perf_counter()
            for step, (method, target, body) in enumerate(
                (
                    ("GET", path, None),
                    ("GET", "/_dash-layout", None),
                    ("GET", "/_dash-dependencies", None),
                    ("POST", "/_dash-update-component", callback_body(path, "")),
                    ("POST", "/_dash-update-component", callback_body(path, rng.choice(variants))),
                )
            ):
                begun = time.perf_counter()
                status = _request(conn, method, target, body)
                if status != 200:
                    timings.error(f"{method} {target} -> {status}")
                if method == "POST":
                    timings.add("callback", time.perf_counter() - begun)
                if step == 3:
                    timings.add("first_load" if first else "page_load", time.perf_counter() - started)
                    first = False
                if step >= 3 and think:
                    time.sleep(think * rng.uniform(0.5, 1.5))
            begun = time.perf_counter()
            if _request(conn, "GET", "/healthz") != 200:
                timings.error("GET /healthz")
            timings.add("baseline", time.perf_counter() - begun)
    except (OSError, http.client.HTTPException) as exc:
        timings.error(f"connection: {exc!r}")
    finally:
        conn.close()


def warm(base: str) -> float:
    """Draw every page and filter once (what the first readers of a new release do)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    started = time.perf_counter()
    for path, variants in PAGES:
        for search in ("", *variants):
            _request(conn, "POST", "/_dash-update-component", callback_body(path, search))
    conn.close()
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else float("nan")


def run(base: str, users: int, seconds: float, think: float) -> Timings:
    host, port = base.removeprefix("http://").split(":")
    timings = Timings()
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=user, args=(host, int(port), until, timings, seed, think), daemon=True)
        for seed in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings


def report(users: int, timings: Timings) -> str:
    base = p95(timings.baseline)
    lines = [f"{users} users: {len(timings.callback)} callbacks, {len(timings.errors)} errors"]
    for name, values in (
        ("baseline /healthz", timings.baseline),
        ("first page load", timings.first_load),
        ("page load", timings.page_load),
        ("callback", timings.callback),
    ):
        if not values:
            continue
        line = f"  {name:18} p50 {statistics.median(values):8.1f} ms  p95 {p95(values):8.1f} ms"
        if name != "baseline /healthz":
            line += f"  ({p95(values) / base:5.1f}x baseline p95)"
        lines.append(line)
    if timings.errors:
        lines.append("  first errors: " + "; ".join(timings.errors[:3]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="a hub database with the demo release (default: build one)")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each load level")
    parser.add_argument("--users", type=int, nargs="*", default=[20, 200])
    parser.add_argument(
        "--think", type=float, default=1.0, help="mean pause of a reader between requests (s)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-bench-dash-") as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'demo.sqlite3'}"
        if not args.database_url:
            print("building the demo (hub demo --no-serve) ...", flush=True)
            prepare_demo(url)
        settings = Settings(database_url=url, var_dir=Path(folder), env="test")  # type: ignore[arg-type]
        engine = build_engine(url)
        app = create_app(engine, settings)
        with serve_in_thread(app.server, max_body_bytes=settings.max_upload_bytes) as base:
            print(f"first draw of each page (release read once per process): {warm(base):.1f} s", flush=True)
            ok = True
            for users in args.users:
                timings = run(base, users, args.seconds, args.think)
                print(report(users, timings), flush=True)
                if users <= 20:
                    ok &= p95(timings.callback) < GOAL_MS
                ok &= not timings.errors
        engine.dispose()
    print(f"goal (callback p95 < {GOAL_MS:.0f} ms at 20 users, no errors): {'met' if ok else 'missed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
