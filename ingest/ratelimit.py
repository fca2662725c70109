"""An in-process sliding-window rate limiter for the API (per token, per client address).

Each key keeps the times of its requests in the last window; a request over the limit is
refused with the seconds until the oldest one leaves the window (the Retry-After value).
State lives in the serving process (waitress threads share it; the lock keeps it exact).
Several server processes would each allow the limit: run one, or put a shared limiter in
front of them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_KEYS = 100_000  # beyond this, keys idle for a whole window are dropped


class SlidingWindowLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count a request of ``key``: None when allowed, else the whole seconds to wait."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= MAX_KEYS:
                    self._prune(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            return None

    def _prune(self, now: float) -> None:
        idle = [key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]
        for key in idle:
            del self._hits[key]
