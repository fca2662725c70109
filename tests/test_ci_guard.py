"""In CI a missing PostgreSQL fails the run; on a developer's machine it skips that half."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hub.settings import REPO_ROOT

PROBE = """
def test_probe(session):
    assert session is not None
"""


def _run_probe(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    probe = REPO_ROOT / "tests" / f"test_zz_probe_{os.getpid()}_{ci}.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_XDIST_WORKER"}}
    env.update(CI=ci, HUB_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/test")
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", str(probe)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        probe.unlink()


def test_missing_postgresql_fails_in_ci(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "true")
    assert result.returncode != 0
    assert "PostgreSQL is required in CI" in result.stdout


def test_missing_postgresql_skips_outside_ci(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "false")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
