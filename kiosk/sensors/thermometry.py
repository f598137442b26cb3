"""The measurement protocol: when a wrist is there, when its reading has settled, what it says about
the body, and when to measure a second time.

A state machine driven one reading at a time by `step()`, so tests walk it with a fake clock;
`run()` calls `step()` at ``sample_hz`` on a thread of its own. Phases:

- ``absent``: nothing in front of the sensor. A wrist (or forehead) is *present* when the object
  reading is at least ``presence_c`` and at least ``presence_rise_c`` above the sensor's own
  temperature (which follows the room), so a warm room is not taken for a visitor;
- ``measuring``: readings are being collected. The reading has *settled* when, over the last
  ``stable_window_s``, the readings neither drift (mean of the later half minus mean of the earlier
  half) nor scatter (standard deviation) by more than ``stable_tolerance_c``. Not settled after
  ``hold_still_after_s``: ``hold_still`` is set, and the screen asks the visitor to hold still;
  not settled after ``max_settle_s``: the measurement fails (refused as a sensor fault).
  The settled window gives a robust skin temperature (its interquartile mean, so a stray reading
  does not move it), plus ``offset_c`` from calibration; the site's body model turns skin and room
  into the body temperature (`kiosk.sensors.body_model`).
  A first estimate at or above ``fever_c`` is not reported yet: ``attempt`` becomes 2 and a second,
  independent window is measured (screening standards ask for a second measurement before acting
  on a raised reading). The second estimate is the result; both are kept in ``readings``. If the
  wrist is taken away and not brought back within ``remeasure_wait_s``, or the second window never
  settles, the first (raised) estimate stands: the kiosk fails closed;
- ``settled``: the measurement is over and its result waits in ``result`` for `consume()`. The
  result waits even if the wrist leaves, so a visitor who measures first and then finds their
  phone keeps it;
- ``done``: the result was consumed and the same wrist is still there. Nothing is measured until it
  leaves, so one wrist gives one measurement;
- ``fault``: the thermometer failed (``fault`` says why). It is retried every ``retry_after_s``; the
  first good reading brings it back to ``absent``. A fault during ``measuring`` leaves a failed
  result, so the visitor is refused, never passed.

Two fields guide the visitor while this goes on (the screen shows them):

- ``progress`` (0..1): 0 when nothing is being measured; while measuring it grows as the stable
  window fills and the readings in it converge on each other, and it never goes back within one
  attempt (a mark that shrank would look like a fault). It stays short of 1 until the reading has
  settled; ``settled`` is 1. A second attempt starts again from 0;
- ``closer``: no wrist is present, yet the sensor has seen something clearly warmer than the room
  for ``CLOSER_AFTER_S``: a wrist held too far away, filling only part of the sensor's view (the
  rest is the room, so the reading lies between room and skin). Only while waiting for a wrist
  (``absent``, or ``measuring`` with the wrist away before a second reading); never during a fault.

Whether the temperature is a fever or too cold to be true is decided by `kiosk.decision`.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from kiosk.config import ThermometerSection
from kiosk.errors import SensorError
from kiosk.results import TemperatureResult
from kiosk.sensors.body_model import BodyModel
from kiosk.sensors.thermometer import Thermometer, ThermoSample

log = logging.getLogger(__name__)

Phase = Literal["absent", "measuring", "settled", "done", "fault"]

# Slack for comparing clock differences against configured durations (float sums of periods).
_EPSILON_S = 1e-9
# The fewest readings a settled window may hold (the config scheme guarantees the window has room).
MIN_WINDOW_READINGS = 4
# Progress stays at or below this until the reading has settled, so a full mark means a result.
UNSETTLED_PROGRESS_MAX = 0.9
# Convergence counts on a log scale from this many times the tolerance (0) down to the tolerance
# (1): each halving of the scatter moves the mark by the same step, so it moves while a wrist is
# still coming into view (degrees off) as well as in the last hundredths.
PROGRESS_SPREAD_SPAN = 100.0
# "Closer": warmer than the room by half the presence rise. A wrist too far away raises the reading
# by part of what a wrist at the right distance does, and half is still far above the sensor's noise
# (about 0.05 °C) for every allowed presence_rise_c; the floor keeps the smallest ones from making
# the noise a prompt. It must last CLOSER_AFTER_S, so a wrist passing through on its way in or out
# does not flash the prompt.
CLOSER_MIN_RISE_C = 0.2
CLOSER_AFTER_S = 0.5


@dataclass(frozen=True)
class ThermometryState:
    """A snapshot: ``since`` is the clock time the phase (or the wait for the wrist) began;
    ``object_c`` and ``ambient_c`` are the latest good reading."""

    phase: Phase
    result: TemperatureResult | None = None
    fault: str | None = None
    object_c: float | None = None
    since: float = 0.0
    ambient_c: float | None = None
    attempt: int = 1  # 2 while a raised first reading is measured again
    hold_still: bool = False  # measuring for longer than hold_still_after_s without settling
    progress: float = 0.0  # 0..1 toward a settled reading; never decreases within an attempt
    closer: bool = False  # something warm but not close enough: ask for the wrist nearer


def interquartile_mean(values: Sequence[float]) -> float:
    """The mean of the middle half of the values: robust to a stray reading, less noisy than the median."""
    ordered = sorted(values)
    cut = len(ordered) // 4
    middle = ordered[cut : len(ordered) - cut]
    return statistics.fmean(middle)


def drift_and_scatter(values: Sequence[float]) -> tuple[float, float]:
    """How far the later half's mean lies from the earlier half's, and the standard deviation (two or more values)."""
    half = len(values) // 2
    drift = abs(statistics.fmean(values[-half:]) - statistics.fmean(values[:half]))
    return drift, statistics.stdev(values)


def is_stable(values: Sequence[float], tolerance_c: float) -> bool:
    """Neither drifting (later half's mean against earlier half's) nor scattered beyond the tolerance."""
    if len(values) < MIN_WINDOW_READINGS:
        return False
    drift, scatter = drift_and_scatter(values)
    return drift <= tolerance_c + _EPSILON_S and scatter <= tolerance_c + _EPSILON_S


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
        # (clock time, object °C, ambient °C) of the readings in the current window.
        self._window: deque[tuple[float, float, float]] = deque()
        self._first: TemperatureResult | None = None  # the raised first estimate while re-measuring
        self._away_since: float | None = None  # re-measuring, and the wrist was taken away at this time
        self._warm_since: float | None = None  # since when something warm but not a wrist is in view
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
                wrist_there = self._present(state.object_c, state.ambient_c)
                self._state = replace(
                    state, phase="done" if wrist_there else "absent", result=None, since=self._clock(), progress=0.0
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
            self._first = None
            self._away_since = None
            self._warm_since = None
            if self._state.phase == "fault":
                self._state = replace(self._state, result=None)
            else:
                self._state = ThermometryState(
                    "absent", object_c=self._state.object_c, ambient_c=self._state.ambient_c, since=self._clock()
                )

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
            self._apply(sample, now)
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

    def _present(self, object_c: float | None, ambient_c: float | None) -> bool:
        if object_c is None:
            return False
        section = self.section
        seen_c = object_c + section.offset_c
        rise = seen_c - ambient_c if ambient_c is not None else float("inf")
        return seen_c >= section.presence_c and rise >= section.presence_rise_c

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
        self._first = None
        self._away_since = None
        self._warm_since = None
        self._state = ThermometryState("fault", result=result, fault=cause, since=since)

    def _apply(self, sample: ThermoSample, now: float) -> None:
        state = replace(self._state, object_c=sample.object_c, ambient_c=sample.ambient_c)
        present = self._present(sample.object_c, sample.ambient_c)
        phase = state.phase
        if phase == "fault":
            log.info("thermometer recovered (reads %.2f °C, room %.2f °C)", sample.object_c, sample.ambient_c)
            self._state = replace(state, phase="absent", fault=None, since=now)
        elif phase == "absent" and present:
            self._window.clear()
            self._window.append((now, sample.object_c, sample.ambient_c))
            self._state = replace(state, phase="measuring", attempt=1, hold_still=False, since=now)
        elif phase == "measuring" and not present:
            self._window.clear()
            self._state = self._wrist_gone(state, now)
        elif phase == "measuring":
            if self._away_since is not None:
                self._away_since = None
                state = replace(state, since=now)  # the wrist is back for the second reading
            self._window.append((now, sample.object_c, sample.ambient_c))
            self._state = self._measure(state, now)
        elif phase == "done" and not present:
            self._state = replace(state, phase="absent", since=now)
        else:
            self._state = state
        self._state = self._guide(self._state, sample, present, now)

    def _guide(self, state: ThermometryState, sample: ThermoSample, present: bool, now: float) -> ThermometryState:
        """Set ``closer`` from this reading, and ``progress`` where the phase alone decides it."""
        waiting = state.phase == "absent" or (state.phase == "measuring" and not present)
        rise = sample.object_c + self.section.offset_c - sample.ambient_c
        if waiting and not present and rise >= max(self.section.presence_rise_c / 2, CLOSER_MIN_RISE_C):
            if self._warm_since is None:
                self._warm_since = now
            closer = now - self._warm_since >= CLOSER_AFTER_S - _EPSILON_S
        else:
            self._warm_since = None
            closer = False
        progress = {"measuring": state.progress, "settled": 1.0}.get(state.phase, 0.0)
        return replace(state, closer=closer, progress=progress)

    def _wrist_gone(self, state: ThermometryState, now: float) -> ThermometryState:
        if state.attempt == 1:
            return replace(state, phase="absent", hold_still=False, since=now)
        # Re-measuring: wait for the wrist to come back, but not for ever.
        if self._away_since is None:
            self._away_since = now
        if now - self._away_since >= self.section.remeasure_wait_s - _EPSILON_S:
            return self._unconfirmed(state, now, "the wrist was taken away")
        return replace(state, hold_still=False)

    def _measure(self, state: ThermometryState, now: float) -> ThermometryState:
        section = self.section
        while self._window and now - self._window[0][0] > section.stable_window_s + _EPSILON_S:
            self._window.popleft()
        objects = [entry[1] for entry in self._window]
        elapsed = now - state.since
        if elapsed >= section.stable_window_s - _EPSILON_S and is_stable(objects, section.stable_tolerance_c):
            return self._settle(state, now, objects, elapsed)
        if elapsed >= section.max_settle_s - _EPSILON_S:
            self._window.clear()
            if state.attempt == 2:
                return self._unconfirmed(state, now, f"the second reading did not settle within {section.max_settle_s:g} s")
            result = TemperatureResult.failed(f"did not settle within {section.max_settle_s:g} s")
            log.warning("thermometer reading %s", result.fault)
            return replace(state, phase="settled", result=result, hold_still=False, since=now)
        hold_still = elapsed >= section.hold_still_after_s - _EPSILON_S
        if hold_still and not state.hold_still:
            log.info("reading not settled after %.1f s: asking the visitor to hold still", elapsed)
        progress = max(state.progress, self._progress(objects, elapsed))
        return replace(state, hold_still=hold_still, progress=progress)

    def _progress(self, objects: list[float], elapsed: float) -> float:
        """How far the window is toward settling: how full it is, times how near its drift and
        scatter are to the tolerance (log scale; 1 once within it); short of 1 until it has settled."""
        if len(objects) < 2:
            return 0.0
        section = self.section
        filled = min(1.0, elapsed / section.stable_window_s)
        ratio = max(drift_and_scatter(objects)) / section.stable_tolerance_c
        converged = 1.0 if ratio <= 1.0 else max(0.0, 1.0 - math.log(ratio) / math.log(PROGRESS_SPREAD_SPAN))
        return UNSETTLED_PROGRESS_MAX * filled * converged

    def _settle(self, state: ThermometryState, now: float, objects: list[float], elapsed: float) -> ThermometryState:
        section = self.section
        model = BodyModel.from_section(section)
        skin_c = interquartile_mean(objects) + section.offset_c
        ambient_c = statistics.median(entry[2] for entry in self._window)
        body_c = model.body(skin_c, ambient_c)
        samples = len(objects)
        self._window.clear()
        if state.attempt == 1 and round(body_c, 1) >= section.fever_c:
            self._first = TemperatureResult.measured(
                body_c, samples, skin_c=skin_c, ambient_c=ambient_c, site=model.site
            )
            log.info(
                "raised first reading %.1f °C (%s skin %.2f °C, room %.2f °C): measuring again",
                self._first.celsius, model.site, skin_c, ambient_c,
            )
            return replace(state, attempt=2, hold_still=False, since=now, progress=0.0)
        first = self._first
        readings = (first.celsius, body_c) if first is not None and first.celsius is not None else (body_c,)
        if first is not None:
            samples += first.samples
        result = TemperatureResult.measured(
            body_c, samples, readings=readings, skin_c=skin_c, ambient_c=ambient_c, site=model.site
        )
        self._first = None
        log.info(
            "temperature %.1f °C (readings %s; %s skin %.2f °C, room %.2f °C) from %d readings after %.2f s",
            result.celsius, "/".join(f"{r:.1f}" for r in result.readings), model.site, skin_c, ambient_c,
            len(objects), elapsed,
        )
        return replace(state, phase="settled", result=result, hold_still=False, since=now)

    def _unconfirmed(self, state: ThermometryState, now: float, why: str) -> ThermometryState:
        first = self._first
        self._first = None
        self._away_since = None
        result = first if first is not None else TemperatureResult.failed(why)
        log.warning("no second reading (%s): the raised first reading %s °C stands", why,
                    first.celsius if first is not None else "?")
        return replace(state, phase="settled", result=result, hold_still=False, since=now)
