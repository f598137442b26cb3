"""What the IR sensor sees as a visitor holds a wrist up and takes it away.

A `WristProfile` is the object-temperature source of an emulated MLX90614 (`MLX90614Chip`). With
no wrist it reads the room. When a wrist arrives, the reading rises exponentially toward the skin
temperature (a first-order response, time constant ``tau_s``); when it leaves, it falls back to the
room the same way. Every reading carries a little Gaussian noise, like the real sensor.

The demo's scenario thread calls `approach` / `leave` while the sampling thread reads the
temperature, so the state sits behind a lock. Clock and random generator are injectable, so tests
step time by hand and get the same noise every run.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable


class WristProfile:
    def __init__(
        self,
        ambient_c: float = 22.0,
        *,
        tau_s: float = 0.15,
        noise_c: float = 0.05,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if tau_s <= 0:
            raise ValueError(f"tau_s must be positive, got {tau_s}")
        if noise_c < 0:
            raise ValueError(f"noise_c must not be negative, got {noise_c}")
        self.ambient_c = ambient_c
        self.tau_s = tau_s
        self.noise_c = noise_c
        self._rng = rng if rng is not None else random.Random(0)
        self._clock = clock
        self._lock = threading.Lock()
        # The response heads from `_start_c` (value at `_since`) toward `_skin_c`, or the room if None.
        self._skin_c: float | None = None
        self._start_c = ambient_c
        self._since = clock()

    @property
    def present(self) -> bool:
        """True while a wrist is held to the sensor."""
        with self._lock:
            return self._skin_c is not None

    def approach(self, skin_c: float, at: float | None = None) -> None:
        """A wrist with surface temperature `skin_c` arrives at clock time `at` (default: now)."""
        self._retarget(skin_c, at)

    def leave(self, at: float | None = None) -> None:
        """The wrist goes away at clock time `at` (default: now); the reading falls to the room."""
        self._retarget(None, at)

    def temperature(self, now: float | None = None) -> float:
        """The object temperature in °C at clock time `now` (default: now), noise included."""
        with self._lock:
            now = self._clock() if now is None else now
            return self._ideal(now) + self._rng.gauss(0.0, self.noise_c)

    def __call__(self) -> float:
        """So the profile can be handed to `MLX90614Chip` as its object source."""
        return self.temperature()

    def _retarget(self, skin_c: float | None, at: float | None) -> None:
        with self._lock:
            at = self._clock() if at is None else at
            self._start_c = self._ideal(at)  # start from wherever the reading is, e.g. half risen
            self._skin_c = skin_c
            self._since = at

    def _ideal(self, now: float) -> float:
        target = self.ambient_c if self._skin_c is None else self._skin_c
        elapsed = max(0.0, now - self._since)
        return target + (self._start_c - target) * math.exp(-elapsed / self.tau_s)
