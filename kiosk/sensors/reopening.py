"""A camera that is opened again: when it is missing at boot, and after it stops delivering frames.

A camera that is not there when the kiosk starts (cable not seated, the driver still loading) or
that fails later (a loose ribbon cable) must not stop the kiosk: the reader reports the cause as
its fault, the kiosk is out of service with it on the screen, and this source tries to open the
camera again every `retry_after_s`. When it opens, frames flow and the kiosk is back in service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from kiosk.errors import CameraError
from kiosk.sensors.camera import FrameSource, read_pair

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0


class ReopeningSource:
    """A `FrameSource` that opens the source `open_source` gives on demand, and again after it fails."""

    def __init__(self, open_source: Callable[[], FrameSource], *, retry_after_s: float = RETRY_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._open_source = open_source
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._source: FrameSource | None = None
        self._problem: str | None = None
        self._next_try = float("-inf")
        self._closed = False

    def read(self) -> np.ndarray | None:
        return self.read_pair()[0]

    def read_pair(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The frame and, where the camera has one, its main stream (see `kiosk.sensors.camera.read_pair`)."""
        with self._lock:
            source = self._source or self._open()
        try:
            return read_pair(source)
        except Exception as exc:  # anything from picamera2 or libcamera: this camera is done with
            cause = str(exc) if isinstance(exc, CameraError) else f"camera failed: {type(exc).__name__}: {exc}"
            problem = f"{cause}; opening the camera again in {self._retry_after_s:.0f} s"
            self._failed(problem)
            # Closed aside: a camera whose cable came loose can take its time stopping, and the
            # camera thread must go on to report the fault and open it again.
            threading.Thread(target=_close_quietly, args=(source,), name="camera-close", daemon=True).start()
            raise CameraError(problem) from exc

    def _open(self) -> FrameSource:
        if self._closed:
            raise CameraError("camera is closed")
        if self._clock() < self._next_try:
            raise CameraError(self._problem or "camera is not open")
        try:
            self._source = self._open_source()
        except Exception as exc:  # libcamera and picamera2 raise many kinds; all mean "no camera"
            message = str(exc) if isinstance(exc, CameraError) else f"cannot open the camera: {type(exc).__name__}: {exc}"
            self._next_try = self._clock() + self._retry_after_s
            self._problem = f"{message} (trying again every {self._retry_after_s:.0f} s)"
            raise CameraError(self._problem) from exc
        if self._problem is not None:
            log.info("camera open again")
        self._problem = None
        return self._source

    def _failed(self, problem: str) -> None:
        with self._lock:
            self._source = None
            self._problem = problem
            self._next_try = self._clock() + self._retry_after_s

    def close(self) -> None:
        with self._lock:
            self._closed = True
            source, self._source = self._source, None
        if source is not None:
            source.close()


def _close_quietly(source: FrameSource) -> None:
    try:
        source.close()
    except Exception:  # the camera is being replaced; its close failing changes nothing
        log.warning("closing the failed camera failed", exc_info=True)
