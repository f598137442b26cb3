"""A sliding-window rate limit: at most ``limit`` events in any ``window_s`` seconds.

Used for the phone-number lookup of family-proxy codes, so that nobody at the kiosk can try
numbers one after another to find out whose family codes exist. A sliding window (rather than a
token bucket) has no burst allowance beyond ``limit``: ``limit`` lookups, then nothing until the
oldest of them is ``window_s`` old.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class SlidingWindow:
    """Thread-safe; the clock (monotonic seconds) is injectable for tests."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def _forget_old(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()

    def try_acquire(self) -> bool:
        """Count one event if the window has room for it; False (nothing counted) if not."""
        with self._lock:
            now = self._clock()
            self._forget_old(now)
            if len(self._times) >= self.limit:
                return False
            self._times.append(now)
            return True

    def retry_in(self) -> float:
        """Seconds until the window has room again (0 if it has now)."""
        with self._lock:
            now = self._clock()
            self._forget_old(now)
            if len(self._times) < self.limit:
                return 0.0
            if not self._times:  # limit 0: never
                return float("inf")
            return self._times[0] + self.window_s - now
