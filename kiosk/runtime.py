"""The daemon's side of `kiosk status`: what the kiosk is doing, saved where a second process can read it.

A background thread takes a snapshot every few seconds (state, faults, camera frame rate, sound,
the last decisions, a refused config edit) and stores it with the upload state in the event log, only when
something changed or as a heartbeat, so an SD card is not written needlessly. It also logs
temperature advice once when it appears (many visitors arriving cold, a drifting crowd median; see
`kiosk.temperature_summary`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from kiosk import __version__
from kiosk.events import utc_iso
from kiosk.temperature_summary import TemperatureWatch

if TYPE_CHECKING:
    from kiosk.app import Decided, Kiosk

log = logging.getLogger(__name__)

SNAPSHOT_S = 3.0
HEARTBEAT_S = 30.0
LAST_DECISIONS = 5


class StatusReporter:
    def __init__(self, kiosk: "Kiosk", utcnow: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 clock: Callable[[], float] = time.monotonic, sound: Callable[[], str] | None = None):
        """``sound`` says how the sound is (the player's `describe`); None: this kiosk has none."""
        self._kiosk = kiosk
        self._sound = sound
        self._utcnow = utcnow
        self._clock = clock
        self._decisions: deque[dict[str, Any]] = deque(maxlen=LAST_DECISIONS)
        self._frames = (clock(), kiosk.parts.reader.frames)
        self._written: dict[str, Any] = {}
        self._written_at = float("-inf")
        self._phase = (kiosk.phase, utc_iso(utcnow()))
        self._temperatures = TemperatureWatch(kiosk.config.thermometer.site)
        kiosk.listeners.append(self.on_decided)

    def on_decided(self, decided: "Decided") -> None:
        event = decided.event
        self._decisions.appendleft({"time": event.time, "decision": event.decision, "reasons": list(event.reasons),
                                    "temperature_c": event.temperature_c})
        self._temperatures.add(event, self._clock())

    def check_temperatures(self) -> None:
        """Log temperature advice that has appeared or cleared (off the screen loop: it sums up an hour)."""
        fresh, cleared = self._temperatures.check(self._clock())
        for advice in fresh:
            log.warning("temperatures over the last hour: %s", advice)
        for kind in cleared:
            log.info("temperatures over the last hour: %s no longer", kind.replace("_", " "))

    def snapshot(self) -> dict[str, Any]:
        kiosk = self._kiosk
        now = self._clock()
        then, frames_then = self._frames
        frames = kiosk.parts.reader.frames
        fps = (frames - frames_then) / (now - then) if now > then else 0.0
        self._frames = (now, frames)
        if kiosk.phase != self._phase[0]:
            self._phase = (kiosk.phase, utc_iso(self._utcnow()))
        thermometry = kiosk.parts.thermometry.snapshot()
        shown = kiosk.shown
        watcher = kiosk.config_watcher
        return {
            "kiosk_state": kiosk.phase,
            "kiosk_state_since": self._phase[1],
            "kiosk_fault": shown.detail if shown is not None and shown.kind == "out_of_service" else None,
            "thermometer": thermometry.fault if thermometry.phase == "fault" else f"ok ({thermometry.phase})",
            "camera": kiosk.parts.reader.fault or "ok",
            "camera_fps": round(fps, 1),
            "lights": kiosk.parts.lights.fault or "ok",
            "sound": self._sound() if self._sound is not None else "none",
            "last_decisions": list(self._decisions),
            "config_error": watcher.error if watcher is not None else None,
            "version": __version__,
        }

    def report(self) -> None:
        values = self.snapshot()
        now = self._clock()
        # The frame rate wobbles; only a real change (or the heartbeat) is worth a write.
        steady = {k: v for k, v in values.items() if k != "camera_fps"}
        if steady == {k: v for k, v in self._written.items() if k != "camera_fps"} and now - self._written_at < HEARTBEAT_S:
            return
        values["kiosk_updated_at"] = utc_iso(self._utcnow())
        self._kiosk.parts.store.save_status(values)
        self._written, self._written_at = values, now

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(SNAPSHOT_S):
            try:
                self.check_temperatures()
                self.report()
            except Exception:  # status is for people; it must never take the kiosk down
                log.exception("could not save the kiosk status")
