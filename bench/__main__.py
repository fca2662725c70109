"""Run every benchmark: ``.venv/bin/python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import sys

from bench import (
    api_latency,
    company_reports,
    demo_load,
    exports,
    indicators,
    ingest_end_to_end,
    ingest_events,
    memory_touch,
    release_build,
)


def main() -> int:
    memory_touch.main([])  # the machine: what fresh memory costs here (read the rest with it)
    demo_load.main([])
    ingest_events.main(sys.argv[1:])  # e.g. --rows 1000000 for a quick run
    ingest_end_to_end.main(sys.argv[1:])  # the whole ingest (issue 3 section 8), same file
    api_latency.main([])
    indicators.main([])  # the indicator engine against DuckDB on the same frame (issue 4 section 7)
    release_build.main(["--demo"])  # the protected release build against DuckDB (issue 4 section 7)
    release_build.main([])  # 5 years x 200 organisations x 60 countries
    exports.main([])  # every export format of the demo release against DuckDB (issue 6)
    company_reports.main([])  # 200 organisations' own reports (issue 6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
