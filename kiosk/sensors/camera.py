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
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from kiosk.config import CameraSection
from kiosk.errors import CameraError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})


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
    """

    def __init__(self, width: int, height: int, fps: float, *, camera_num: int = 0, module: ModuleType | None = None) -> None:
        if width % 2 or height % 2:
            raise CameraError(f"camera size must be even for YUV420, got {width}x{height}")
        self.width, self.height, self.fps = width, height, fps
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
        try:
            camera = module.Picamera2(camera_num)
            self._camera = camera
            config = camera.create_video_configuration(
                # The main stream is required and may not be smaller than lores; keep it as small.
                main={"size": (width, height)},
                lores={"size": (width, height), "format": "YUV420"},
                controls={"FrameRate": fps},
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:  # libcamera raises plain RuntimeErrors and others
            self.close()
            raise CameraError(f"cannot start camera {camera_num} at {width}x{height} {fps} fps: {exc}") from exc
        log.info("camera %d started: lores %dx%d YUV420 at %s fps", camera_num, width, height, fps)

    def read(self) -> np.ndarray:
        """The Y plane of the next lores frame (blocks until the camera delivers it)."""
        with self._lock:
            camera = self._camera
            if camera is None:
                raise CameraError("camera is closed")
            try:
                yuv = camera.capture_array("lores")
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
        for step in ("stop", "close"):
            try:
                getattr(camera, step)()
            except Exception:  # closing must not fail the shutdown
                log.warning("camera %s failed", step, exc_info=True)


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
    return Picamera2Source(section.width, section.height, section.fps)


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
