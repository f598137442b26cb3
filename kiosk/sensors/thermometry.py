"""The sampling rules: when a wrist is there, when its reading has settled, and what the kiosk is told.

A state machine driven one reading at a time by `step()`, so tests walk it with a fake clock;
`run()` calls `step()` at ``sample_hz`` on a thread of its own. Phases:

- ``absent``: nothing warmer than ``presence_c`` in front of the sensor;
- ``measuring``: a wrist is there and readings are being collected;
- ``settled``: the measurement is over and its result waits in ``result`` for `consume()`. Usually
  a temperature; ``failed`` if the readings never settled within ``max_settle_s``. The result
  waits even if the wrist leaves, so a visitor who measures first and then finds their phone keeps it;
- ``done``: the result was consumed and the same wrist is still there. Nothing is measured until it
  leaves, so one wrist gives one measurement;
- ``fault``: the thermometer failed (``fault`` says why). It is retried every ``retry_after_s``; the
  first good reading brings it back to ``absent``. A fault during ``measuring`` leaves a failed
  result, so the visitor is refused, never passed.

Whether the temperature is a fever is not decided here: `kiosk.decision` compares it.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from kiosk.config import ThermometerSection
from kiosk.errors import SensorError
from kiosk.results import TemperatureResult
from kiosk.sensors.thermometer import Thermometer

log = logging.getLogger(__name__)

Phase = Literal["absent", "measuring", "settled", "done", "fault"]

# Slack for comparing clock differences against configured durations (float sums of periods).
_EPSILON_S = 1e-9


@dataclass(frozen=True)
class ThermometryState:
    """A snapshot: ``since`` is the clock time the phase began; ``object_c`` the latest good reading."""

    phase: Phase
    result: TemperatureResult | None = None
    fault: str | None = None
    object_c: float | None = None
    since: float = 0.0


class Thermometry:
    """Turns thermometer readings into one `TemperatureResult` per wrist.

    ``section`` may be replaced with a newly loaded config section; it takes effect on the next step.
    """

    def __init__(
        self,
        thermometer: Thermometer,
        section: ThermometerSection,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.thermometer = thermometer
        self.section = section
        self._clock = clock
        self._lock = threading.Lock()
        self._state = ThermometryState("absent", since=clock())
        self._window: deque[tuple[float, float]] = deque()  # (clock time, object °C) while measuring
        self._last_attempt = float("-inf")

    def snapshot(self) -> ThermometryState:
        """The latest state (an immutable value, safe to keep)."""
        with self._lock:
            return self._state

    def consume(self) -> TemperatureResult | None:
        """Take the finished result, once; None if there is none waiting."""
        with self._lock:
            state = self._state
            if state.result is None:
                return None
            if state.phase == "settled":
                wrist_there = state.object_c is not None and state.object_c >= self.section.presence_c
                self._state = replace(
                    state, phase="done" if wrist_there else "absent", result=None, since=self._clock()
                )
            else:
                self._state = replace(state, result=None)
            return state.result

    def reset(self) -> None:
        """Forget the visitor: drop any waiting result and start over (a wrist still there is measured anew).

        A fault stays a fault: only a good reading ends it.
        """
        with self._lock:
            self._window.clear()
            if self._state.phase == "fault":
                self._state = replace(self._state, result=None)
            else:
                self._state = ThermometryState("absent", object_c=self._state.object_c, since=self._clock())

    def step(self) -> ThermometryState:
        """Take one reading (unless a fault's retry time has not come) and apply the rules."""
        with self._lock:
            now = self._clock()
            if self._state.phase == "fault" and now - self._last_attempt < self.section.retry_after_s - _EPSILON_S:
                return self._state
            self._last_attempt = now
        try:
            sample = self.thermometer.read()
        except SensorError as exc:
            with self._lock:
                self._enter_fault(str(exc), now)
                return self._state
        with self._lock:
            self._apply(sample.object_c, now)
            return self._state

    def run(self, stop: threading.Event) -> None:
        """Step at ``sample_hz`` until `stop` is set; meant as a thread's target."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception as exc:  # a bug must not stop sampling silently, nor let anyone pass
                log.exception("thermometry step failed")
                with self._lock:
                    self._enter_fault(f"internal error: {exc!r}", self._clock())
            stop.wait(max(0.0, 1.0 / self.section.sample_hz - (time.monotonic() - started)))

    # The rules; called with the lock held.

    def _enter_fault(self, cause: str, now: float) -> None:
        state = self._state
        result = state.result
        if state.phase == "measuring":
            result = TemperatureResult.failed(cause)
        if state.phase != "fault":
            log.warning("thermometer fault: %s", cause)
        elif cause != state.fault:
            log.warning("thermometer fault changed: %s", cause)
        since = state.since if state.phase == "fault" else now
        self._window.clear()
        self._state = ThermometryState("fault", result=result, fault=cause, object_c=None, since=since)

    def _apply(self, object_c: float, now: float) -> None:
        section = self.section
        state = self._state
        present = object_c >= section.presence_c
        phase = state.phase
        if phase == "fault":
            log.info("thermometer recovered (reads %.2f °C)", object_c)
            self._state = ThermometryState("absent", result=state.result, object_c=object_c, since=now)
        elif phase == "absent" and present:
            self._window.clear()
            self._window.append((now, object_c))
            self._state = replace(state, phase="measuring", object_c=object_c, since=now)
        elif phase == "measuring" and not present:
            self._window.clear()
            self._state = replace(state, phase="absent", object_c=object_c, since=now)
        elif phase == "measuring":
            self._window.append((now, object_c))
            self._state = self._measure(replace(state, object_c=object_c), now)
        elif phase == "done" and not present:
            self._state = replace(state, phase="absent", object_c=object_c, since=now)
        else:
            self._state = replace(state, object_c=object_c)

    def _measure(self, state: ThermometryState, now: float) -> ThermometryState:
        section = self.section
        while self._window and now - self._window[0][0] > section.stable_window_s + _EPSILON_S:
            self._window.popleft()
        values = [value for _, value in self._window]
        elapsed = now - state.since
        if (
            elapsed >= section.stable_window_s - _EPSILON_S
            and len(values) >= 3
            and max(values) - min(values) <= section.stable_tolerance_c + _EPSILON_S
        ):
            result = TemperatureResult.measured(statistics.median(values) + section.offset_c, samples=len(values))
            log.info("temperature %.1f °C from %d readings after %.2f s", result.celsius, len(values), elapsed)
            return replace(state, phase="settled", result=result, since=now)
        if elapsed >= section.max_settle_s - _EPSILON_S:
            result = TemperatureResult.failed(f"did not settle within {section.max_settle_s:g} s")
            log.warning("thermometer reading %s", result.fault)
            self._window.clear()
            return replace(state, phase="settled", result=result, since=now)
        return state
