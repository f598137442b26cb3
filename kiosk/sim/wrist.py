"""What the IR sensor sees as a visitor holds a wrist up and takes it away.

A `WristProfile` is the object-temperature source of an emulated MLX90614 (`MLX90614Chip`). With
no wrist it reads the room. Two things shape the reading when a wrist arrives (or leaves):

- the wrist moving into the sensor's field of view: what the sensor looks at changes from room to
  skin over ``approach_s`` seconds (a linear ramp: the skin fills more and more of the view);
- the sensor's own low-pass filter, a first-order response with time constant ``tau_s``. The
  default is the factory setting: config register 1 bits 2:0 = 100 (FIR 1024, no IIR stage) has a
  7.23 Hz bandwidth, tau = 1 / (2 pi 7.23 Hz) = 22 ms. `tau_for_bandwidth` gives the time constant
  of the other settings (0.15 Hz, the heaviest, is about 1.1 s).

Every reading carries a little Gaussian noise, like the real sensor.

A wrist held too far away (``approach(skin_c, distance_cm=...)``) fills only part of the sensor's
view, and the rest is the room: the reading settles between the two (`view_filled`). The mix is
taken as linear in °C, close enough to the radiance average between room and skin temperatures.

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

FACTORY_BANDWIDTH_HZ = 7.23
# The MLX90614xAA (no lens, the usual breakout) sees a 90 degree cone; the wrist offers it a patch of
# skin about 5 cm across. Held at 2.5 cm or nearer the skin fills the whole view.
FIELD_OF_VIEW_DEG = 90.0
WRIST_PATCH_CM = 5.0


def view_filled(distance_cm: float, fov_deg: float = FIELD_OF_VIEW_DEG, patch_cm: float = WRIST_PATCH_CM) -> float:
    """The share of the sensor's view a wrist fills at this distance (0..1].

    The view at distance d is a disc of diameter 2 d tan(fov / 2); the wrist covers a disc of
    `patch_cm` of it, so the share falls with the square of the distance once the view is wider.
    """
    if distance_cm <= 0:
        return 1.0
    view_cm = 2.0 * distance_cm * math.tan(math.radians(fov_deg / 2.0))
    return min(1.0, (patch_cm / view_cm) ** 2)


def tau_for_bandwidth(bandwidth_hz: float) -> float:
    """The time constant of a first-order low-pass filter with this -3 dB bandwidth."""
    return 1.0 / (2.0 * math.pi * bandwidth_hz)


FACTORY_TAU_S = tau_for_bandwidth(FACTORY_BANDWIDTH_HZ)


class WristProfile:
    def __init__(
        self,
        ambient_c: float = 22.0,
        *,
        tau_s: float = FACTORY_TAU_S,
        approach_s: float = 0.2,
        noise_c: float = 0.05,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if tau_s <= 0:
            raise ValueError(f"tau_s must be positive, got {tau_s}")
        if approach_s < 0:
            raise ValueError(f"approach_s must not be negative, got {approach_s}")
        if noise_c < 0:
            raise ValueError(f"noise_c must not be negative, got {noise_c}")
        self.ambient_c = ambient_c
        self.tau_s = tau_s
        self.approach_s = approach_s
        self.noise_c = noise_c
        self._rng = rng if rng is not None else random.Random(0)
        self._clock = clock
        self._lock = threading.Lock()
        # Since `_since`, the view ramps from `_from_c` to `_skin_c` (the room if None) and the
        # filtered reading starts at `_start_c`.
        self._skin_c: float | None = None
        self._filled = 1.0  # share of the view the wrist fills
        self._from_c = ambient_c
        self._start_c = ambient_c
        self._since = clock()

    @property
    def present(self) -> bool:
        """True while a wrist is held to the sensor."""
        with self._lock:
            return self._skin_c is not None

    def approach(self, skin_c: float, at: float | None = None, *, distance_cm: float | None = None) -> None:
        """A wrist with surface temperature `skin_c` arrives at clock time `at` (default: now).

        `distance_cm`: held that far from the sensor (`view_filled`); None is the right distance, the
        skin filling the view. Calling it again moves the same wrist (nearer, or further away).
        """
        if distance_cm is not None and distance_cm < 0:
            raise ValueError(f"distance_cm must not be negative, got {distance_cm}")
        self._retarget(skin_c, at, 1.0 if distance_cm is None else view_filled(distance_cm))

    def leave(self, at: float | None = None) -> None:
        """The wrist goes away at clock time `at` (default: now); the reading falls to the room."""
        self._retarget(None, at, 1.0)

    def temperature(self, now: float | None = None) -> float:
        """The object temperature in °C at clock time `now` (default: now), noise included."""
        with self._lock:
            now = self._clock() if now is None else now
            return self._ideal(now) + self._rng.gauss(0.0, self.noise_c)

    def __call__(self) -> float:
        """So the profile can be handed to `MLX90614Chip` as its object source."""
        return self.temperature()

    def _retarget(self, skin_c: float | None, at: float | None, filled: float) -> None:
        with self._lock:
            at = self._clock() if at is None else at
            # Start from wherever the view and the reading are, e.g. half way in.
            self._from_c, self._start_c = self._view(at), self._ideal(at)
            self._skin_c = skin_c
            self._filled = filled
            self._since = at

    def _target(self) -> float:
        if self._skin_c is None:
            return self.ambient_c
        return self.ambient_c + (self._skin_c - self.ambient_c) * self._filled

    def _view(self, now: float) -> float:
        """What is in front of the sensor, before its filter."""
        elapsed = max(0.0, now - self._since)
        if self.approach_s <= 0 or elapsed >= self.approach_s:
            return self._target()
        return self._from_c + (self._target() - self._from_c) * elapsed / self.approach_s

    def _ideal(self, now: float) -> float:
        """The filtered reading without noise: a first-order filter driven by the ramping view."""
        tau, ramp = self.tau_s, self.approach_s
        target, start_view, start = self._target(), self._from_c, self._start_c
        elapsed = max(0.0, now - self._since)
        if ramp <= 0:
            return target + (start - target) * math.exp(-elapsed / tau)
        rate = (target - start_view) / ramp

        def during(t: float) -> float:  # closed form of the filter's response to the ramp
            return start_view + rate * (t - tau * (1.0 - math.exp(-t / tau))) + (start - start_view) * math.exp(-t / tau)

        if elapsed <= ramp:
            return during(elapsed)
        return target + (during(ramp) - target) * math.exp(-(elapsed - ramp) / tau)
