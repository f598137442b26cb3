"""The camera thread: reads frames, scans them, and keeps the latest code seen.

Scanning runs here, never on the screen loop. The loop asks `take_new()` for a code it has not
handled yet; the same payload held in front of the camera is reported once, not once per frame.

A camera read never blocks for long: a source whose frames stop raises CameraError after its own
timeout (the Pi camera's is 2 s). After CAMERA_FAULT_AFTER_S without a frame, `fault` names the
cause and the kiosk goes out of service; the first frame that comes again clears it.

The viewfinder: `preview()` is the latest lores frame the scanner saw, for the screen to show
(kept by reference only, never copied, stored or logged), and `hint()` says what would help when a
code is in view but cannot be read: "closer" (its modules are too few pixels), "hold_still"
(blurred, or nothing else stands out) or "brighter" (too little contrast: a dim or reflecting
screen). The hint is measured only on frames where the decoder located a symbol and read nothing,
so a frame with nobody in front of the camera costs nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from kiosk.errors import KioskError
from kiosk.sensors.camera import FrameSource, read_pair
from kiosk.sensors.qrpipeline import Looks, look_at
from kiosk.sensors.scanner import Scanner, as_gray

log = logging.getLogger(__name__)

# After this long without a frame the camera counts as failed (out of service).
CAMERA_FAULT_AFTER_S = 3.0
# A code out of view this long and then shown again counts as a new presentation.
REPRESENT_GAP_S = 1.0

Hint = Literal["closer", "hold_still", "brighter"]
HINTS: tuple[Hint, ...] = ("closer", "hold_still", "brighter")
# A hint shows once a code has been in view unread for this long and this many frames: a code
# read within a few frames of coming into view never flashes one.
HINT_AFTER_S = 0.3
HINT_AFTER_FRAMES = 3
# ... and goes once nothing code-like has been seen for this long (or at once when a code is read).
HINT_CLEAR_AFTER_S = 1.0
# The hint is the most frequent advice of this many last unreadable frames: it does not flicker.
HINT_VOTES = 5
# Below this many lores pixels per module a code does not read reliably even through the enlarged
# crops (rendered codes: 1.4 px reads, 1.0-1.1 px mostly not).
CLOSER_BELOW_MODULE_PX = 1.5
# Sharpness (see qrpipeline.look_at) of a code in focus is 0.5-0.9; blurred beyond reading, about 0.2.
HOLD_STILL_BELOW_SHARPNESS = 0.35
# Grey levels between dark and light modules in the dimmer quarter of the code; a readable dim
# code has 30-50 and low light's noise then breaks the reading.
BRIGHTER_BELOW_CONTRAST = 48.0


def advice(looks: Looks) -> Hint:
    """What would help the visitor read a located code that looks like `looks`.

    Size first (a small code also looks blurred and flat: closer fixes all three), then blur (which
    also flattens contrast), then contrast; a code that looks fine on all three and still does
    not read is most often moving or bent: "hold_still".
    """
    if looks.module_px is not None and looks.module_px < CLOSER_BELOW_MODULE_PX:
        return "closer"
    if looks.sharpness < HOLD_STILL_BELOW_SHARPNESS:
        return "hold_still"
    if looks.contrast < BRIGHTER_BELOW_CONTRAST:
        return "brighter"
    return "hold_still"


@dataclass(frozen=True, eq=False, repr=False)
class Preview:
    """The latest frame the scanner saw, for the screen's viewfinder."""

    image: np.ndarray  # (height, width) uint8, the lores stream; read-only
    taken_at: float  # monotonic time the frame came
    age_s: float  # how old it was when asked for

    def __repr__(self) -> str:  # never the pixels
        height, width = self.image.shape
        return f"Preview({width}x{height}, {self.age_s:.2f} s old)"


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
        self._preview: tuple[np.ndarray, float] | None = None
        self._hint: Hint | None = None
        self._unread_since: float | None = None  # the first frame of the current unread code
        self._unread_frames = 0
        self._codelike_at = float("-inf")
        self._votes: deque[Hint] = deque(maxlen=HINT_VOTES)

    def take_new(self) -> SeenCode | None:
        """The code seen since the last call, if any (each presentation of a code is reported once)."""
        with self._lock:
            seen, self._pending = self._pending, None
            return seen

    def forget(self) -> None:
        """Drop a code not taken yet. A code still held up is reported again with its next frame,
        so only what is in view now counts (not a code shown while no one was being served)."""
        with self._lock:
            self._pending = None
            self._last_payload = None

    @property
    def fault(self) -> str | None:
        with self._lock:
            return self._fault_locked()

    def _fault_locked(self) -> str | None:
        if self._clock() - self._last_frame_at > CAMERA_FAULT_AFTER_S:
            return self._error or "camera delivers no frames"
        return None

    def preview(self) -> Preview | None:
        """The latest frame the scanner saw; None before the first one and while the camera fails."""
        with self._lock:
            if self._preview is None or self._fault_locked() is not None:
                return None
            image, taken_at = self._preview
        view = image.view()  # the camera thread's array stays writable; the screen's view is not
        view.flags.writeable = False
        return Preview(view, taken_at, max(0.0, self._clock() - taken_at))

    def hint(self) -> Hint | None:
        """What would help read the code in view: one of HINTS, or None when nothing unreadable is in view."""
        with self._lock:
            if self._hint is None or self._fault_locked() is not None:
                return None
            if self._clock() - self._codelike_at > HINT_CLEAR_AFTER_S:
                return None
            return self._hint

    def _clear_hint_locked(self) -> None:
        self._hint, self._unread_since, self._unread_frames = None, None, 0
        self._votes.clear()

    def _unreadable(self, now: float, advised: Hint) -> None:
        """A frame held a located code and nothing was read."""
        with self._lock:
            if self._unread_since is None or now - self._codelike_at > HINT_CLEAR_AFTER_S:
                self._clear_hint_locked()
                self._unread_since = now
            self._codelike_at = now
            self._unread_frames += 1
            self._votes.append(advised)
            if self._unread_frames >= HINT_AFTER_FRAMES and now - self._unread_since >= HINT_AFTER_S:
                counts = Counter(self._votes)
                top = max(counts.values())
                # On a tie, the latest advice of the tied ones.
                self._hint = next(h for h in reversed(self._votes) if counts[h] == top)

    def step(self) -> None:
        """Read and scan one frame."""
        try:
            frame, main = read_pair(self._camera)
        except KioskError as exc:
            with self._lock:
                if self._error != str(exc):
                    log.warning("camera: %s", exc)
                self._error = str(exc)
                # No live view to show: what the last frame showed is no longer there.
                self._preview = None
                self._clear_hint_locked()
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
        gray = as_gray(frame)
        if gray is not None:
            with self._lock:
                self._preview = (gray, now)
        # The full-resolution main stream, where the camera has one, for a code the frame located but could not read.
        codes = self._scanner.scan(frame if gray is None else gray, main=main)
        if not codes:
            located = self._scanner.last_located
            if located and gray is not None:
                # Only here, with a code in view and unread, is the frame measured.
                self._unreadable(now, advice(look_at(gray, located[0])))
            return
        payload = codes[0]
        with self._lock:
            self._clear_hint_locked()
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
