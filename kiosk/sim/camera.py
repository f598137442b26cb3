"""The scenario camera: a FrameSource whose picture the demo's visitor scenario controls.

The scenario thread calls `show(payload)` when a simulated visitor holds up a code and `hide()`
when they put the phone away; the kiosk's camera thread keeps calling `read()` as it would on the
Pi camera. A shown code is rendered once (a real QR code in a camera-like frame, see
`kiosk.sim.qrframes`); each read only adds fresh sensor noise, so reading stays cheap.
"""

from __future__ import annotations

import logging
import random
import threading

import numpy as np

from kiosk.errors import CameraError, UsageError
from kiosk.sim import qrframes

log = logging.getLogger(__name__)

# Sensor noise of the empty scene, in grey levels.
_EMPTY_NOISE = 3.0


class ScenarioCamera:
    """A simulated camera looking at the kiosk's scanning spot; thread-safe.

    `seed` makes the scene, the placement of every shown code and the noise reproducible.
    """

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0) -> None:
        self.width, self.height = width, height
        self._rng = random.Random(seed)  # used by show(), on the scenario thread
        self._noise = np.random.default_rng(seed)  # used by read(), on the camera thread
        self._empty = qrframes.background(width, height, self._rng)
        self._lock = threading.Lock()
        self._frame = self._empty
        self._sigma = _EMPTY_NOISE
        self._payload: str | None = None
        self._closed = False

    @property
    def showing(self) -> str | None:
        """The payload currently held up to the camera, or None."""
        with self._lock:
            return self._payload

    def show(self, payload: str, distortion_name: str | None = None) -> None:
        """Hold `payload` up as a QR code, shown as `distortion_name` (a qrframes preset) or a typical way.

        Raises UsageError for an unknown distortion name or a payload too long for a QR code.
        """
        try:
            distortion = qrframes.distortion(distortion_name) if distortion_name else qrframes.TYPICAL
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
        with self._lock:
            seed = self._rng.getrandbits(64)
        try:
            # Rendered outside the lock: the camera thread keeps reading the previous picture meanwhile.
            frame, sigma = qrframes.render_scene(
                payload, self.width, self.height, rng=random.Random(seed), distortion=distortion, scene=self._empty
            )
        except Exception as exc:  # segno's DataOverflowError and kin
            raise UsageError(f"cannot show a QR code for this payload ({len(payload)} characters): {exc}") from exc
        with self._lock:
            self._frame, self._sigma, self._payload = frame, sigma, payload
        log.debug("showing a code (%s)", distortion.name)

    def hide(self) -> None:
        """Take the code away: the camera sees the empty scene."""
        with self._lock:
            self._frame, self._sigma, self._payload = self._empty, _EMPTY_NOISE, None

    def read(self) -> np.ndarray:
        """The current picture with fresh sensor noise, as a (height, width) uint8 frame."""
        with self._lock:
            if self._closed:
                raise CameraError("scenario camera is closed")
            return qrframes.add_sensor_noise(self._frame, self._sigma, self._noise)

    def close(self) -> None:
        with self._lock:
            self._closed = True
