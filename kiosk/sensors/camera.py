"""Where camera frames come from: the Pi camera (Picamera2), image files, or the simulator's scenario camera.

Every source gives 2-D uint8 grayscale frames, which is all the QR scanner needs. On the Pi both
streams are YUV420, whose first `height` rows are the luma (Y) plane: a grayscale frame for free,
with no colour conversion. The Pi camera also gives the full-resolution main stream's Y plane of
the same frame (`read_pair`), which the scanner reads where the lores frame located a code.
`open_camera` picks the source named by camera.driver, the way gpiozero picks a pin factory.

Wiring: a Raspberry Pi camera module on the CSI ribbon connector; picamera2 comes from Raspberry
Pi OS (apt install python3-picamera2), so the venv must see system site packages.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from kiosk.config import CameraSection
from kiosk.errors import CameraError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})

# libcamera's AfModeEnum values (control_ids.yaml: Manual 0, Auto 1, Continuous 2); Picamera2 hands
# plain ints to libcamera for enum controls.
AF_MODE_MANUAL = 0
AF_MODE_CONTINUOUS = 2
DEFAULT_FOCUS_M: float = CameraSection.model_fields["focus_m"].default
DEFAULT_SCREEN_EV: float = CameraSection.model_fields["screen_exposure_ev"].default
# The main stream is this many times the lores stream's width and height: 1280x960 for 640x480.
# Same aspect ratio, so both streams show the same field of view and a region located in lores
# maps onto main by a plain scale. Twice the resolution is what a code too small to read in lores
# needs (a module of 1.5 lores pixels becomes 3). As YUV420 it is 1.8 MB a frame: 11 MB for the
# video configuration's 6 buffers and 28 MB/s at 15 fps, where the sensor's full 4608x2592
# (Camera Module 3) would be 18 MB a frame and 107 MB of buffers on a Pi 4.
MAIN_SCALE = 2
# Exposure for phone screens: a lores frame with at least SATURATED_SHARE of its pixels at
# SATURATED_LEVEL or above (a lit screen is far brighter than the paper and walls the camera meters
# for, and its white modules clip) lowers the exposure by camera.screen_exposure_ev stops; it
# returns to 0 after RESTORE_AFTER_S without such a frame. A phone screen at 30 cm covers about 9 %
# of a Camera Module 3 frame, about half of it white: 3 % catches it and ignores a lamp's highlight.
SATURATED_LEVEL = 250
SATURATED_SHARE = 0.03
RESTORE_AFTER_S = 5.0
# A frame comes every 1/fps s (67 ms at 15 fps; the frame rate also caps the exposure time), so 2 s
# without one is a camera that has stopped, not a slow frame; at low frame rates, three frames' time.
FRAME_TIMEOUT_S = 2.0


def frame_timeout_for(fps: float) -> float:
    """How long a read waits for a frame before the camera counts as failed."""
    return max(FRAME_TIMEOUT_S, 3.0 / fps)


def _describe_focus(controls: Mapping[str, Any]) -> str:
    if "AfMode" not in controls:
        return "fixed-focus lens"
    if controls["AfMode"] == AF_MODE_CONTINUOUS:
        return "continuous autofocus"
    dioptres = controls["LensPosition"]
    where = f"{1 / dioptres:.2f} m" if dioptres > 0 else "infinity"
    return f"lens fixed at {where} ({dioptres:.2f} dioptres)"


@runtime_checkable
class FrameSource(Protocol):
    """A camera: `read()` gives the next grayscale frame, or None when none is ready yet.

    A source that cannot deliver frames any more (unplugged, failed, closed) raises CameraError,
    and the kiosk goes out of service rather than guessing. A source with a full-resolution stream
    besides (the Pi camera) also has `read_pair()`: (frame, main), the same view with more pixels;
    see `read_pair`.
    """

    def read(self) -> np.ndarray | None:
        """The next frame, a (height, width) uint8 array; None when no frame is ready yet."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice."""
        ...


def read_pair(source: FrameSource) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The next frame and, from a source that has one, the same frame's full-resolution main
    stream (None from sources without one: files, the simulator)."""
    pair = getattr(source, "read_pair", None)
    if pair is not None:
        return pair()
    return source.read(), None


class Picamera2Source:
    """The Pi camera through Picamera2: a (width, height) YUV420 lores stream, and a YUV420 main
    stream MAIN_SCALE times larger.

    The lores Y plane is the grayscale frame; `read_pair` also gives the main stream's Y plane of
    the same request. `module` stands in for the picamera2 module (tests); by default it is
    imported here, and only here, since it exists only on Raspberry Pi OS.

    Focus: a camera with autofocus (it offers the AfMode control, e.g. Camera Module 3) starts with
    its lens at 1 m, where a phone held out to the kiosk is a blur. `focus_m` > 0 fixes the lens at
    that distance (LensPosition is in dioptres, 1 / metres, clamped to what the lens offers); 0
    turns on continuous autofocus. Fixed-focus modules (v1, v2, HQ) get no focus controls.

    A frame that never comes (a loose ribbon cable) is a CameraError after `frame_timeout_s`, not
    a read that hangs: the request is asked for without waiting (`capture_request(wait=False,
    signal_function=...)`, then `wait(job)`, which every Picamera2 on Raspberry Pi OS Bookworm has;
    `wait` given in seconds is a timeout only from about 0.3.20 on, and 0.3.18 still waits for ever)
    and waited for here with a bound. An unanswered capture stays queued and the next read waits on
    it again, so a long outage queues nothing more. Each request is released as soon as its arrays
    are made (make_array copies the buffer): a request held back is a buffer the camera cannot fill.

    Exposure: on a camera with automatic exposure (it offers ExposureValue), a frame with a large
    saturated region, a phone screen, lowers the exposure by `screen_exposure_ev` stops, and
    RESTORE_AFTER_S without one puts it back to 0. 0 turns this off.
    """

    def __init__(self, width: int, height: int, fps: float, *, focus_m: float = DEFAULT_FOCUS_M,
                 screen_exposure_ev: float = DEFAULT_SCREEN_EV, camera_num: int = 0,
                 module: ModuleType | None = None, frame_timeout_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if width % 2 or height % 2:
            raise CameraError(f"camera size must be even for YUV420, got {width}x{height}")
        self.width, self.height, self.fps = width, height, fps
        self.main_width, self.main_height = width * MAIN_SCALE, height * MAIN_SCALE
        self.focus_m = focus_m
        self._clock = clock
        self.screen_ev = 0.0  # the EV compensation asked for by the exposure for phone screens
        self._ev_lowered_to = 0.0
        self._saturated_at = 0.0
        self.frame_timeout_s = frame_timeout_s if frame_timeout_s is not None else frame_timeout_for(fps)
        if module is None:
            try:
                module = importlib.import_module("picamera2")
            except ImportError as exc:
                raise CameraError(
                    f"camera.driver = 'picamera2' but picamera2 cannot be imported ({exc}); on Raspberry Pi OS: "
                    "apt install python3-picamera2 and create the venv with --system-site-packages; "
                    "elsewhere use driver = 'files' or 'sim'"
                ) from exc
        self._lock = threading.Lock()
        self._camera = None
        # A capture asked for and not yet answered, and the event its answer sets.
        self._job: Any = None
        self._answered = threading.Event()
        try:
            camera = module.Picamera2(camera_num)
            self._camera = camera
            offered = camera.camera_controls
            focus = self._focus_controls(offered)
            self._ev_lowered_to = self._screen_ev(offered, screen_exposure_ev)
            config = camera.create_video_configuration(
                main={"size": (self.main_width, self.main_height), "format": "YUV420"},
                lores={"size": (width, height), "format": "YUV420"},
                controls={"FrameRate": fps, **focus},
            )
            camera.configure(config)
            # The camera may adjust the size asked for; Picamera2 writes the size it got back into
            # the configuration, and that is the size the frames have.
            configured = camera.camera_configuration()
            got = tuple(int(n) for n in configured["lores"]["size"])
            got_main = tuple(int(n) for n in configured["main"]["size"])
            camera.start()
        except Exception as exc:  # libcamera raises plain RuntimeErrors and others
            self.close()
            raise CameraError(f"cannot start camera {camera_num} at {width}x{height} {fps} fps: {exc}") from exc
        if got != (width, height):
            log.warning("camera %d adjusted the lores stream from %dx%d to %dx%d: frames are %dx%d",
                        camera_num, width, height, *got, *got)
        self.width, self.height = got
        self.main_width, self.main_height = got_main
        log.info("camera %d started: lores %dx%d and main %dx%d YUV420 at %s fps, %s", camera_num, self.width,
                 self.height, self.main_width, self.main_height, fps, _describe_focus(focus))

    @staticmethod
    def _screen_ev(offered: Mapping[str, Any], wanted: float) -> float:
        """The EV compensation for a saturated screen that this camera can apply (0: none)."""
        if wanted == 0:
            return 0.0
        if "ExposureValue" not in offered:
            log.info("camera offers no ExposureValue control: camera.screen_exposure_ev = %s does not apply", wanted)
            return 0.0
        low, high, _default = offered["ExposureValue"]
        return min(max(float(wanted), float(low)), float(high))

    def _focus_controls(self, offered: Mapping[str, Any]) -> dict[str, Any]:
        """The controls that focus the lens as camera.focus_m asks, for the controls this camera offers."""
        if "AfMode" not in offered:
            log.info("camera has a fixed-focus lens (no AfMode control): camera.focus_m = %s does not apply",
                     self.focus_m)
            return {}
        if self.focus_m == 0:
            return {"AfMode": AF_MODE_CONTINUOUS}
        if "LensPosition" not in offered:
            log.warning("camera offers AfMode but no LensPosition: continuous autofocus instead of a lens fixed at %s m",
                        self.focus_m)
            return {"AfMode": AF_MODE_CONTINUOUS}
        low, high, _default = offered["LensPosition"]
        wanted = 1.0 / self.focus_m
        dioptres = min(max(wanted, float(low)), float(high))
        if dioptres != wanted:
            log.warning("camera.focus_m = %s m is %.2f dioptres, outside this lens's %.2f..%.2f: lens set to %.2f",
                        self.focus_m, wanted, float(low), float(high), dioptres)
        return {"AfMode": AF_MODE_MANUAL, "LensPosition": dioptres}

    def read(self) -> np.ndarray:
        """The Y plane of the next lores frame; CameraError when none comes within frame_timeout_s."""
        return self.read_pair()[0]

    def read_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """The Y planes of the next request's lores and main streams.

        The lores plane is a contiguous copy; the main plane is a view (row stride kept) into
        Picamera2's own copy of the main buffer, since the scanner only ever cuts a region out of it.
        """
        with self._lock:
            camera = self._camera
            if camera is None:
                raise CameraError("camera is closed")
            if self._job is None:
                self._answered = answered = threading.Event()
                if self._camera is None:  # closed just now
                    raise CameraError("camera is closed")
                try:
                    # The signal function runs on Picamera2's own thread once a request has completed.
                    self._job = camera.capture_request(wait=False, signal_function=lambda _job: answered.set())
                except Exception as exc:
                    raise CameraError(f"camera capture failed: {exc}") from exc
            job = self._job
            frame_came = self._answered.wait(self.frame_timeout_s)
            if self._camera is None:  # closed meanwhile: close() ends this wait
                raise CameraError("camera is closed")
            if not frame_came:
                raise CameraError(f"no frame from the camera in {self.frame_timeout_s:g} s "
                                  "(ribbon cable loose, or the camera failed)")
            self._job = None
            try:
                request = camera.wait(job)
            except Exception as exc:
                raise CameraError(f"camera capture failed: {exc}") from exc
            try:
                lores = request.make_array("lores")
                main = request.make_array("main")
            except Exception as exc:
                raise CameraError(f"camera capture failed: {exc}") from exc
            finally:
                request.release()  # the buffers go back to the camera at once
        frame = self._y_plane(lores, self.width, self.height, "lores")
        main_y = self._y_plane(main, self.main_width, self.main_height, "main")
        self._expose_for(frame)
        # A contiguous copy of the lores Y plane (cheap at lores size), so consumers need not mind strides.
        return np.ascontiguousarray(frame), main_y

    @staticmethod
    def _y_plane(yuv: np.ndarray, width: int, height: int, name: str) -> np.ndarray:
        # Picamera2 gives YUV420 as (height * 3 // 2, stride): Y rows first, padded to the stride.
        if yuv.ndim != 2 or yuv.shape[0] < height or yuv.shape[1] < width:
            raise CameraError(f"unexpected {name} frame shape {yuv.shape} for {width}x{height} YUV420")
        return yuv[:height, :width]

    def _expose_for(self, frame: np.ndarray) -> None:
        """Lower the exposure while a saturated screen is in view; back to 0 some seconds after."""
        if self._ev_lowered_to == 0:
            return
        sample = frame[::2, ::2]  # a quarter of the pixels measures a share well enough
        saturated = np.count_nonzero(sample >= SATURATED_LEVEL) / sample.size
        now = self._clock()
        if saturated >= SATURATED_SHARE:
            self._saturated_at = now
            if self.screen_ev == 0:
                log.info("%.0f %% of the frame is saturated (a phone screen?): exposure lowered by %g EV",
                         saturated * 100, -self._ev_lowered_to)
                self._set_ev(self._ev_lowered_to)
        elif self.screen_ev != 0 and now - self._saturated_at >= RESTORE_AFTER_S:
            log.info("no saturated frame for %g s: exposure back to 0 EV", RESTORE_AFTER_S)
            self._set_ev(0.0)

    def _set_ev(self, ev: float) -> None:
        camera = self._camera
        if camera is None:
            return
        try:
            camera.set_controls({"ExposureValue": ev})
        except Exception:  # a control the camera refuses must not stop the frames
            log.warning("camera refused ExposureValue = %g: exposure for phone screens turned off", ev, exc_info=True)
            self._ev_lowered_to = 0.0
            return
        self.screen_ev = ev

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        self._answered.set()  # a read waiting for a frame ends now, with "camera is closed"
        # Picamera2's close() ends its event loop and then stops the camera directly. stop() on its
        # own would be queued behind an unanswered capture, and wait for ever once frames have stopped.
        try:
            camera.close()
        except Exception:  # closing must not fail the shutdown
            log.warning("camera close failed", exc_info=True)


class FileSource:
    """Frames from one image file, or from every png/jpg/bmp in a folder (sorted by name), in a loop.

    For trying the kiosk with saved pictures, and for the `files` driver on a machine without a
    camera. Images are converted to grayscale with Pillow.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise CameraError(f"{self.path}: no .png, .jpg or .bmp images in this folder")
        elif self.path.is_file():
            files = [self.path]
        else:
            raise CameraError(f"{self.path}: no such image file or folder")
        self.files = files
        self._next = itertools.cycle(files)
        self._lock = threading.Lock()
        self._closed = False
        # A single file is read now, so a bad one fails at start-up, not on the first visitor.
        self._single = self._load(files[0]) if len(files) == 1 else None

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("L"))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise CameraError(f"{path}: cannot read image: {exc}") from exc

    def read(self) -> np.ndarray:
        """The next image of the loop as a grayscale frame; CameraError names an unreadable file."""
        with self._lock:
            if self._closed:
                raise CameraError(f"{self.path}: camera is closed")
            if self._single is not None:
                return self._single.copy()
            path = next(self._next)
        return self._load(path)

    def close(self) -> None:
        self._closed = True


def _open_picamera2(section: CameraSection, scenario_source: FrameSource | None) -> FrameSource:
    return Picamera2Source(section.width, section.height, section.fps, focus_m=section.focus_m,
                           screen_exposure_ev=section.screen_exposure_ev)


def _open_files(section: CameraSection, scenario_source: FrameSource | None) -> FrameSource:
    if not section.path:
        raise CameraError("camera.path: must name an image file or folder when camera.driver = 'files'")
    return FileSource(section.path)


def _open_sim(section: CameraSection, scenario_source: FrameSource | None) -> FrameSource:
    if scenario_source is None:
        raise CameraError("camera.driver = 'sim' needs the simulator's scenario camera (run the kiosk as `kiosk demo`)")
    return scenario_source


DRIVERS: dict[str, Callable[[CameraSection, FrameSource | None], FrameSource]] = {
    "picamera2": _open_picamera2,
    "files": _open_files,
    "sim": _open_sim,
}


def open_camera(section: CameraSection, scenario_source: FrameSource | None = None) -> FrameSource:
    """The frame source that camera.driver names; `scenario_source` is the camera the 'sim' driver uses."""
    try:
        opener = DRIVERS[section.driver]
    except KeyError:
        raise CameraError(f"camera.driver: unknown driver {section.driver!r}; known: {', '.join(DRIVERS)}") from None
    return opener(section, scenario_source)
