"""Run every benchmark: ``.venv/bin/python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import sys

from bench import demo_load


def main() -> int:
    demo_load.main(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
