"""The camera thread: reads frames, scans them, and keeps the latest code seen.

Scanning runs here, never on the screen loop. The loop asks `take_new()` for a code it has not
handled yet; the same payload held in front of the camera is reported once, not once per frame.

A camera read never blocks for long: a source whose frames stop raises CameraError after its own
timeout (the Pi camera's is 2 s). After CAMERA_FAULT_AFTER_S without a frame, `fault` names the
cause and the kiosk goes out of service; the first frame that comes again clears it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kiosk.errors import KioskError
from kiosk.sensors.camera import FrameSource, read_pair
from kiosk.sensors.scanner import Scanner

log = logging.getLogger(__name__)

# After this long without a frame the camera counts as failed (out of service).
CAMERA_FAULT_AFTER_S = 3.0
# A code out of view this long and then shown again counts as a new presentation.
REPRESENT_GAP_S = 1.0


@dataclass(frozen=True)
class SeenCode:
    payload: str
    seen_at: float  # monotonic time of the frame that held it


class CodeReader:
    def __init__(
        self,
        camera: FrameSource,
        scanner: Scanner,
        fps: float,
        on_code: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._camera = camera
        self._scanner = scanner
        self._period = 1.0 / fps
        self.on_code = on_code
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: SeenCode | None = None
        self._last_payload: str | None = None
        self._last_payload_at = 0.0
        self._last_frame_at = clock()
        self._error: str | None = None
        self.frames = 0

    def take_new(self) -> SeenCode | None:
        """The code seen since the last call, if any (each presentation of a code is reported once)."""
        with self._lock:
            seen, self._pending = self._pending, None
            return seen

    @property
    def fault(self) -> str | None:
        with self._lock:
            if self._clock() - self._last_frame_at > CAMERA_FAULT_AFTER_S:
                return self._error or "camera delivers no frames"
            return None

    def step(self) -> None:
        """Read and scan one frame."""
        try:
            frame, main = read_pair(self._camera)
        except KioskError as exc:
            with self._lock:
                if self._error != str(exc):
                    log.warning("camera: %s", exc)
                self._error = str(exc)
            return
        now = self._clock()
        with self._lock:
            self._last_frame_at = now
            cleared, self._error = self._error, None
        if cleared:
            log.info("camera delivers frames again (after: %s)", cleared)
        if frame is None:
            return
        self.frames += 1
        # The full-resolution main stream, where the camera has one, for a code the frame located but could not read.
        codes = self._scanner.scan(frame, main=main)
        if not codes:
            return
        payload = codes[0]
        with self._lock:
            # A code that stays in view is one presentation; shown again after a gap, it is a new one.
            is_new = payload != self._last_payload or now - self._last_payload_at > REPRESENT_GAP_S
            self._last_payload, self._last_payload_at = payload, now
            if is_new:
                self._pending = SeenCode(payload, now)
        if is_new and self.on_code:
            self.on_code()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = self._clock()
            try:
                self.step()
            except Exception as exc:  # a bug must not end the camera thread: no frames is a fault, shown
                log.exception("camera step failed")
                with self._lock:
                    self._error = f"internal error: {type(exc).__name__}: {exc}"
            stop.wait(max(0.0, self._period - (self._clock() - started)))
