"""The ``hub`` command: real processes against real databases; errors are one line."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from hub import migrate
from hub.db import build_engine
from hub.settings import REPO_ROOT

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=600, check=False)


def test_db_upgrade_on_an_empty_sqlite_file(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'new' / 'hub.sqlite3'}"}
    assert "empty" in run(env, "db", "current").stdout
    result = run(env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert f"revision {migrate.head_revision()}" in result.stdout
    assert run(env, "db", "upgrade").returncode == 0  # idempotent


def test_org_add_and_list(cli_env: dict[str, str]) -> None:
    result = run(
        cli_env,
        "org",
        "add",
        "nordic-hotline",
        "--name",
        "Nordic Hotline",
        "--type",
        "hotline",
        "--country",
        "NO",
        "--named",
    )
    assert result.returncode == 0, result.stderr
    listing = run(cli_env, "org", "list", "--type", "hotline")
    assert listing.returncode == 0
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith("nordic-hotline\t"))
    assert line.split("\t") == ["nordic-hotline", "hotline", "NO", "member", "yes", "Nordic Hotline"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["org", "add", "ncmec", "--name", "Again", "--type", "clearinghouse"], "already in use"),
        (["org", "add", "bad code!", "--name", "X", "--type", "company"], "code"),
        (["org", "add", "pirates", "--name", "Pirates", "--type", "pirate"], "stakeholder_type"),
        (
            ["org", "add", "somewhere", "--name", "Somewhere", "--type", "company", "--country", "XX"],
            "ISO 3166-1",
        ),
        (
            ["org", "add", "child-co", "--name", "Child", "--type", "company", "--parent", "nobody"],
            "no organisation with code 'nobody'",
        ),
        (["import-public", "/nonexistent/folder"], "is not a folder"),
    ],
)
def test_domain_errors_are_one_line_and_exit_1(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    # `org add` prepares the database first: the registry (with ncmec) is loaded before the insert
    result = run(cli_env, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["org", "add"], ["no-such-command"], ["org", "list", "--bogus"]])
def test_usage_errors_exit_2(cli_env: dict[str, str], args: list[str]) -> None:
    result = run(cli_env, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_unsafe_production_settings_refuse_to_start(cli_env: dict[str, str]) -> None:
    result = run({**cli_env, "HUB_ENV": "production"}, "db", "current")
    assert result.returncode == 1
    assert "HUB_SECRET_KEY" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _counts(url: str) -> tuple[int, ...]:
    engine = build_engine(url)
    with engine.connect() as conn:
        counts = tuple(
            conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            for table in ("organisation", "submission", "observation", "period")
        )
    engine.dispose()
    return counts


@pytest.mark.slow
@pytest.mark.longest
def test_demo_twice_stores_nothing_twice_then_serves(cli_env: dict[str, str]) -> None:
    env = cli_env
    url = env["HUB_DATABASE_URL"]
    first = run(env, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "demo data ready" in first.stdout and "ncmec_cybertipline_reports_by_esp" in first.stdout
    assert "published release 1 (" in first.stdout
    counts = _counts(url)
    assert counts[0] >= 150 + 300 and counts[2] > 300_000
    second = run(env, "demo", "--no-serve")
    assert second.returncode == 0, second.stderr
    assert "new this time: 0 with 0 observations" in second.stdout
    assert "release 1 is published already" in second.stdout
    assert _counts(url) == counts

    port = _free_port()
    server = subprocess.Popen(
        [HUB, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    assert json.load(response) == {"status": "ok", "database": "ok"}
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "hub serve did not answer within 60 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_unreachable_database_is_one_line(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "HUB_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}
    for args in (["org", "list"], ["db", "upgrade"], ["demo", "--no-serve"]):
        result = run(env, *args)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: database: "), result.stderr


def test_org_list_on_a_new_database_prepares_it(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    result = run(env, "org", "list", "--type", "clearinghouse")
    assert result.returncode == 0, result.stderr
    assert "ncmec\tclearinghouse\tUS\texternal" in result.stdout
