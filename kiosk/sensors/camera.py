"""Where camera frames come from: the Pi camera (Picamera2), image files, or the simulator's scenario camera.

Every source gives 2-D uint8 grayscale frames, which is all the QR scanner needs. On the Pi the
low-res stream is YUV420, whose first `height` rows are the luma (Y) plane: a grayscale frame for
free, with no colour conversion. `open_camera` picks the source named by camera.driver, the way
gpiozero picks a pin factory.

Wiring: a Raspberry Pi camera module on the CSI ribbon connector; picamera2 comes from Raspberry
Pi OS (apt install python3-picamera2), so the venv must see system site packages.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import threading
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
    and the kiosk goes out of service rather than guessing.
    """

    def read(self) -> np.ndarray | None:
        """The next frame, a (height, width) uint8 array; None when no frame is ready yet."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice."""
        ...


class Picamera2Source:
    """The Pi camera through Picamera2: a small main stream plus a (width, height) YUV420 lores stream.

    Only the lores stream is read; its Y plane is the grayscale frame. `module` stands in for
    the picamera2 module (tests); by default it is imported here, and only here, since it exists
    only on Raspberry Pi OS.

    Focus: a camera with autofocus (it offers the AfMode control, e.g. Camera Module 3) starts with
    its lens at 1 m, where a phone held out to the kiosk is a blur. `focus_m` > 0 fixes the lens at
    that distance (LensPosition is in dioptres, 1 / metres, clamped to what the lens offers); 0
    turns on continuous autofocus. Fixed-focus modules (v1, v2, HQ) get no focus controls.

    A frame that never comes (a loose ribbon cable) is a CameraError after `frame_timeout_s`, not
    a read that hangs: the capture is asked for without waiting (`wait=False` with a
    `signal_function`, then `wait(job)`, which every Picamera2 on Raspberry Pi OS Bookworm has;
    `wait` given in seconds is a timeout only from about 0.3.20 on, and 0.3.18 still waits for ever)
    and waited for here with a bound. An unanswered capture stays queued and the next read waits on
    it again, so a long outage queues nothing more.
    """

    def __init__(self, width: int, height: int, fps: float, *, focus_m: float = DEFAULT_FOCUS_M,
                 camera_num: int = 0, module: ModuleType | None = None, frame_timeout_s: float | None = None) -> None:
        if width % 2 or height % 2:
            raise CameraError(f"camera size must be even for YUV420, got {width}x{height}")
        self.width, self.height, self.fps = width, height, fps
        self.focus_m = focus_m
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
            focus = self._focus_controls(camera.camera_controls)
            config = camera.create_video_configuration(
                # The main stream is required and may not be smaller than lores; keep it as small.
                main={"size": (width, height)},
                lores={"size": (width, height), "format": "YUV420"},
                controls={"FrameRate": fps, **focus},
            )
            camera.configure(config)
            # The camera may adjust the size asked for; Picamera2 writes the size it got back into
            # the configuration, and that is the size the frames have.
            got = tuple(int(n) for n in camera.camera_configuration()["lores"]["size"])
            camera.start()
        except Exception as exc:  # libcamera raises plain RuntimeErrors and others
            self.close()
            raise CameraError(f"cannot start camera {camera_num} at {width}x{height} {fps} fps: {exc}") from exc
        if got != (width, height):
            log.warning("camera %d adjusted the lores stream from %dx%d to %dx%d: frames are %dx%d",
                        camera_num, width, height, *got, *got)
        self.width, self.height = got
        log.info("camera %d started: lores %dx%d YUV420 at %s fps, %s", camera_num, self.width, self.height, fps,
                 _describe_focus(focus))

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
        with self._lock:
            camera = self._camera
            if camera is None:
                raise CameraError("camera is closed")
            if self._job is None:
                self._answered = answered = threading.Event()
                if self._camera is None:  # closed just now
                    raise CameraError("camera is closed")
                try:
                    # The signal function runs on Picamera2's own thread once the frame is copied out.
                    self._job = camera.capture_array("lores", wait=False, signal_function=lambda _job: answered.set())
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
                yuv = camera.wait(job)
            except Exception as exc:
                raise CameraError(f"camera capture failed: {exc}") from exc
        # Picamera2 gives YUV420 as (height * 3 // 2, stride): Y rows first, padded to the stride.
        if yuv.ndim != 2 or yuv.shape[0] < self.height or yuv.shape[1] < self.width:
            raise CameraError(f"unexpected lores frame shape {yuv.shape} for {self.width}x{self.height} YUV420")
        # A contiguous copy of the Y plane (cheap at lores size), so consumers need not mind strides.
        return np.ascontiguousarray(yuv[: self.height, : self.width])

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
    return Picamera2Source(section.width, section.height, section.fps, focus_m=section.focus_m)


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
