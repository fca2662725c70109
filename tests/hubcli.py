"""Run the ``hub`` command: as a real process, or in this process through the same entry point.

Each ``hub`` process imports pandas, scipy, SQLAlchemy and the app (1.5-3 s of CPU before
it does anything), so a test that runs dozens of commands spends most of its time starting
Python. :func:`hub_in_process` runs the very same entry point, :func:`hub.cli.main` (typer
parsing, the one-line errors and exit codes, the settings read from the environment), with
``sys.argv``, the environment and the standard streams swapped for the call; the process's
cached settings and engines are dropped before and after, so every call reads its
environment afresh and connects anew, as a new process would. Tests that do this keep at
least one call through :func:`hub_process` per command family, which proves that the
installed ``hub`` script starts and reaches the same code.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

from hub.settings import REPO_ROOT

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")


def hub_process(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``hub ARGS`` as a real process (the installed console script)."""
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _forget_process_state() -> None:
    from hub import db
    from hub.settings import get_settings

    get_settings.cache_clear()
    engines = getattr(db, "_engines", None)
    if engines is not None:
        for engine in engines.values():
            engine.dispose()
        engines.clear()


def hub_in_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``hub ARGS`` through :func:`hub.cli.main` in this process; the same result shape as
    :func:`hub_process` (return code, stdout, stderr)."""
    from hub.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int
    _forget_process_state()
    # logging as in a new process: no handlers, so that hub's logging.basicConfig puts its own
    # on the (redirected) stderr and a logged value shows in stderr as it would in a process
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("alembic").level)
    root.handlers.clear()
    try:
        with (
            mock.patch.dict(os.environ, env, clear=True),
            mock.patch.object(sys, "argv", ["hub", *args]),
            redirect_stdout(out),
            redirect_stderr(err),
        ):
            try:
                main()
                code = 0
            except SystemExit as exc:
                if exc.code is None:
                    code = 0
                elif isinstance(exc.code, int):
                    code = exc.code
                else:
                    err.write(f"{exc.code}\n")
                    code = 1
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("alembic").setLevel(saved[2])
        _forget_process_state()
    return subprocess.CompletedProcess(["hub", *args], code, out.getvalue(), err.getvalue())


class HubCommands:
    """``hub`` for a test that runs several commands against one environment: the first call
    whose arguments start with ``family`` is a real process (the installed script starts and
    reaches that command family), every other call runs in-process."""

    def __init__(self, env: dict[str, str], *family: str) -> None:
        self.env, self.family, self.proven = env, family, False

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        if not self.proven and args[: len(self.family)] == self.family:
            self.proven = True
            return hub_process(env or self.env, *args)
        return hub_in_process(env or self.env, *args)
