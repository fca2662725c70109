"""Chart rendering paths for the PDF reports: the same 20-bar chart as SVG, three ways.

The record behind docs/reports.md "Charts: why hand-written SVG". matplotlib and kaleido are
not project dependencies (the measurement is why); install them into a scratch folder to
run it: ``.venv/bin/pip install --target /tmp/chartlibs kaleido matplotlib``, then
``BROWSER_PATH=/usr/bin/chromium PYTHONPATH=.:/tmp/chartlibs .venv/bin/python -m bench.chart_paths``.
Prints each path's time a chart and its ratio to the hand-written SVG, measured in the run.
"""

from __future__ import annotations

import importlib
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

from reports import svg

LABELS = [f"bucket {i}" for i in range(20)]
VALUES = [float((i * 7919) % 1000 + 10) for i in range(20)]


def median_seconds(draw: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        draw()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def hand_written() -> str:
    return svg.bar_chart([svg.Bar(k, v, f"{v:,.0f}") for k, v in zip(LABELS, VALUES, strict=True)], title="t")


def main() -> int:
    ours = median_seconds(hand_written, 200)
    print(f"hand-written SVG (reports/svg.py): {ours * 1000:.2f} ms a chart")

    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("svg")
    pyplot: Any = importlib.import_module("matplotlib.pyplot")

    def with_matplotlib() -> str:
        figure, axes = pyplot.subplots(figsize=(6.4, 4))
        axes.barh(LABELS, VALUES, color="#0072B2")
        axes.set_title("t")
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
        pyplot.close(figure)
        return buffer.getvalue()

    first, each = median_seconds(with_matplotlib, 1), median_seconds(with_matplotlib, 30)
    print(
        f"matplotlib {matplotlib.__version__}: first {first * 1000:.0f} ms, then {each * 1000:.1f} ms ({each / ours:,.0f}x)"
    )

    graph_objects: Any = importlib.import_module("plotly.graph_objects")
    kaleido: Any = importlib.import_module("kaleido")
    figure = graph_objects.Figure(
        graph_objects.Bar(x=VALUES, y=LABELS, orientation="h", marker_color="#0072B2")
    )
    first, each = (
        median_seconds(lambda: figure.to_image(format="svg"), 1),
        median_seconds(lambda: figure.to_image(format="svg"), 10),
    )
    print(
        f"plotly + kaleido, a browser per chart: first {first:.2f} s, then {each * 1000:.0f} ms ({each / ours:,.0f}x)"
    )
    kaleido.start_sync_server()
    try:
        first = median_seconds(lambda: figure.to_image(format="svg"), 1)
        each = median_seconds(lambda: figure.to_image(format="svg"), 20)
    finally:
        kaleido.stop_sync_server()
    print(
        f"plotly + kaleido, one browser kept: first {first:.2f} s, then {each * 1000:.0f} ms ({each / ours:,.0f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
