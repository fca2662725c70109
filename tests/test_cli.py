"""The ``hub`` command: real processes against real databases; errors are one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hub.settings import REPO_ROOT

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_db_upgrade_on_an_empty_sqlite_file(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'new' / 'hub.sqlite3'}"}
    assert "empty" in run(env, "db", "current").stdout
    result = run(env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "revision 0001" in result.stdout
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
