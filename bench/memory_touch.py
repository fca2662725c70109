"""Benchmark of the machine, not of the hub: what the first write to fresh memory costs.

On the virtual machines this project is measured on, a page the guest has not used lately
is given real memory by the host only when first written, and a page a process frees goes
back to the host a few seconds later. So a process that needs memory it has not had pays far
more for it than one re-using memory it just freed. A release build in a fresh process pays
this for its whole working set (several GB on the large benchmark), which is why a build's
time moves between machines and sessions by more than the last code change.

    python -m bench.memory_touch              # 2 GiB
    python -m bench.memory_touch --gib 4

Prints seconds per GiB to fill fresh memory (cold), to fill it again at once after freeing
it (warm: the baseline, same run), and again after ``--pause`` seconds; and the ratios.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Touch:
    """Seconds per GiB to fill memory with numbers, in three states."""

    cold: float
    warm: float
    after_pause: float
    pause: float

    @property
    def cold_ratio(self) -> float:
        return self.cold / self.warm

    @property
    def after_pause_ratio(self) -> float:
        return self.after_pause / self.warm


def _fill(gib: float) -> tuple[list[np.ndarray], float]:
    """``gib`` GiB of new arrays, written once; the arrays and seconds per GiB."""
    items = max(1, round(gib * 2**30 / 8))
    pieces = max(1, round(gib * 8))  # 128 MiB arrays: each its own mapping, like a large column
    started = time.perf_counter()
    arrays = [np.ones(items // pieces, dtype=np.float64) for _ in range(pieces)]
    return arrays, (time.perf_counter() - started) / gib


def measure(gib: float = 2.0, pause: float = 20.0) -> Touch:
    arrays, cold = _fill(gib)
    del arrays
    arrays, warm = _fill(gib)  # the memory just freed: the baseline
    del arrays
    time.sleep(pause)
    arrays, after_pause = _fill(gib)
    del arrays
    return Touch(cold=cold, warm=warm, after_pause=after_pause, pause=pause)


def report(touch: Touch) -> str:
    return "\n".join(
        [
            f"fill fresh memory (cold):          {touch.cold:6.2f} s per GiB   {touch.cold_ratio:5.1f}x the warm fill",
            f"fill it again at once (warm):      {touch.warm:6.2f} s per GiB   baseline",
            f"fill again after {touch.pause:4.0f} s:            {touch.after_pause:6.2f} s per GiB   "
            f"{touch.after_pause_ratio:5.1f}x the warm fill",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gib", type=float, default=2.0, help="memory to fill each time (GiB)")
    parser.add_argument("--pause", type=float, default=20.0, help="seconds before the third fill")
    args = parser.parse_args(argv)
    print(report(measure(args.gib, args.pause)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
