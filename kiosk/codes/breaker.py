"""A circuit breaker for the platform lookup.

While a platform is down, every lookup would wait out its timeout before the visitor is refused.
After ``failures`` failed lookups in a row the breaker opens: lookups fail at once, without asking.
After ``cooldown_s`` it lets one lookup through (half-open); its success closes the breaker, its
failure opens it for another cool-down. The clock is injectable, so the schedule is tested without
sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if cooldown_s <= 0:
            raise ValueError("cooldown_s must be positive")
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state(self._clock())

    def _state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if now - self._opened_at >= self._cooldown:
            return "half_open"
        return "open"

    def retry_in(self) -> float:
        """Seconds until the next trial lookup (0 when lookups go through)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self._cooldown - self._clock())

    def allow(self) -> bool:
        """May a lookup go out now? In half-open state only one trial at a time may."""
        with self._lock:
            state = self._state(self._clock())
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            now = self._clock()
            self._failures += 1
            if self._trial_running or self._failures >= self._threshold:
                self._opened_at = now
            self._trial_running = False
