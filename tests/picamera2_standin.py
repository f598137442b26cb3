"""A stand-in for the picamera2 module: the Picamera2 calls the kiosk makes, with the real library's
behaviour (including the calls that would hang for ever), for tests on machines without a camera."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable
from concurrent.futures import Future
from typing import ClassVar

import numpy as np
import pytest

class HangsForever(BaseException):
    """A call that real Picamera2 would never return from (a BaseException: no `except Exception` hides it)."""


class StandInJob:
    """Picamera2's Job: the work for one frame, a Future for its result, and the signal_function
    called (on Picamera2's own thread) once it is done."""

    def __init__(self, function: Callable[[], np.ndarray], signal_function: Callable[[StandInJob], None] | None) -> None:
        self._function = function
        self._future: Future = Future()
        self._signal_function = signal_function

    def execute(self) -> None:
        try:
            self._future.set_result(self._function())
        except Exception as exc:  # noqa: BLE001 - Picamera2 keeps the error for whoever waits
            self._future.set_exception(exc)
        if self._signal_function:
            self._signal_function(self)

    def get_result(self) -> np.ndarray:
        return self._future.result()


class StandInCompletedRequest:
    """Picamera2's CompletedRequest: one frame's buffers for every stream, held by the caller until
    release() gives them back to the camera. make_array copies the stream's buffer (Picamera2's
    make_buffer is np.array over the mapped buffer), so an array outlives its request."""

    def __init__(self, camera: StandInPicamera2) -> None:
        self._camera = camera
        self.ref_count = 1
        self.made: list[str] = []

    def make_array(self, name: str) -> np.ndarray:
        if self.ref_count <= 0:
            raise AttributeError("'NoneType' object has no attribute 'get'")  # stream_map is gone once released
        self.made.append(name)
        return self._camera._make_array(name)

    def release(self) -> None:
        self.ref_count -= 1
        if self.ref_count < 0:
            raise RuntimeError("CompletedRequest: request released too many times")
        if self.ref_count == 0:
            self._camera._give_back(self)


# camera_controls of two modules: (min, max, default), as Picamera2 reports them.
# The Raspberry Pi IPA offers ExposureValue (AGC's EV compensation, in stops) for every sensor.
CAMERA_MODULE_3 = {  # imx708: autofocus; LensPosition in dioptres, 12 at most
    "FrameDurationLimits": (8333, 120000000, 33333), "NoiseReductionMode": (0, 4, 0), "ExposureTime": (26, 112015443, 20000),
    "ExposureValue": (-8.0, 8.0, 0.0),
    "AfMode": (0, 2, 0), "AfTrigger": (0, 1, 0), "AfRange": (0, 2, 0), "LensPosition": (0.0, 12.0, 1.0),
}
CAMERA_MODULE_2 = {  # imx219: a fixed-focus lens, no focus controls
    "FrameDurationLimits": (33333, 120000000, 33333), "NoiseReductionMode": (0, 4, 0), "ExposureTime": (1, 66666, 20000),
    "ExposureValue": (-8.0, 8.0, 0.0),
}
# A camera whose pipeline has no automatic exposure to compensate (no ExposureValue control).
WITHOUT_EXPOSURE_VALUE = {name: value for name, value in CAMERA_MODULE_2.items() if name != "ExposureValue"}


class StandInPicamera2:
    """Mirrors the Picamera2 calls the adapter makes, with the checks Picamera2 itself applies, as
    Picamera2 0.3.12 to 0.3.18 have them (the kiosk must run on every Bookworm release).

    capture_array("lores") returns YUV420 the way Picamera2 does: shape (height * 3 // 2, stride),
    Y rows first (padded to the stride), then the U and V rows. As in Picamera2, a capture is a job
    done on the camera's own thread when a frame arrives: with wait=False it returns the job at
    once and calls signal_function(job) when done; `wait(job)` gives the result. Any other `wait`
    blocks until a frame comes (before 0.3.20 a number for `wait` is no timeout, it just counts as
    True), so with the cable loose that call, and stop() queued behind an unanswered capture, raise
    HangsForever instead of hanging the test.
    """

    instances: ClassVar[list[StandInPicamera2]] = []
    y_plane: ClassVar[np.ndarray | None] = None
    main_plane: ClassVar[np.ndarray | None] = None  # the main stream's Y plane; None: y_plane scaled up
    fail_on: ClassVar[str | None] = None
    controls_offered: ClassVar[dict[str, tuple]] = CAMERA_MODULE_3
    lores_align: ClassVar[int] = 2  # libcamera's adjustment of the lores width in configure()
    cable_loose: ClassVar[bool] = False  # no frame ever arrives

    def __init__(self, camera_num: int = 0, tuning: object = None) -> None:
        if self.fail_on == "open":
            raise IndexError("list index out of range")  # what Picamera2 raises with no camera attached
        self.camera_num = camera_num
        self.calls: list[str] = []
        self.config: dict | None = None
        self.started = False
        self.closed = False
        self.jobs: list[StandInJob] = []  # Picamera2's _job_list: captures waiting for a frame
        self.held: list[StandInCompletedRequest] = []  # requests handed out and not yet released
        self.controls_set: list[dict] = []  # every set_controls() call, in order
        self._jobs_lock = threading.Lock()
        self.frames_lost = type(self).cable_loose
        StandInPicamera2.instances.append(self)

    @property
    def camera_controls(self) -> dict[str, tuple]:
        return dict(self.controls_offered)

    def create_video_configuration(self, main: dict | None = None, lores: dict | None = None,
                                   controls: dict | None = None, **others: object) -> dict:
        # Picamera2 fills in what is not given: main XBGR8888 1280x720, lores YUV420 at main's size,
        # and its own video defaults under the controls given.
        self.calls.append("create_video_configuration")
        main = {"format": "XBGR8888", "size": (1280, 720)} | (main or {})
        if lores is not None:
            lores = {"format": "YUV420", "size": main["size"]} | lores
        defaults = {}
        if "NoiseReductionMode" in self.controls_offered and "FrameDurationLimits" in self.controls_offered:
            defaults = {"NoiseReductionMode": 1, "FrameDurationLimits": (33333, 33333)}
        return {"use_case": "video", "buffer_count": 6, "main": main, "lores": lores, "raw": None,
                "controls": defaults | dict(controls or {})} | others

    def configure(self, config: dict) -> None:
        self.calls.append("configure")
        for name in ("main", "lores"):
            stream = config[name]
            if stream is None:
                continue
            if not isinstance(stream["size"], tuple) or stream["size"][0] % 2 or stream["size"][1] % 2:
                raise RuntimeError("width and height should be even")
        (lw, lh), (mw, mh) = config["lores"]["size"], config["main"]["size"]
        if lw > mw or lh > mh:
            raise RuntimeError("lores stream dimensions may not exceed main stream")
        for control in config["controls"]:
            name = "FrameDurationLimits" if control == "FrameRate" else control  # Picamera2's one virtual control
            if name not in self.controls_offered:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")
        # libcamera may adjust a stream in validate(); Picamera2 writes what it got back into the
        # configuration's stream dicts (the caller's own dicts), with the row stride and frame size.
        config["lores"]["size"] = (lw - lw % self.lores_align, lh)
        for name in ("main", "lores"):
            stream = config[name]
            width, height = stream["size"]
            if stream["format"] == "YUV420":
                stream["stride"] = (width + 63) // 64 * 64 + 64  # the hardware pads rows; the padding must be cut off
                stream["framesize"] = stream["stride"] * height * 3 // 2
            else:
                stream["stride"] = width * 4
                stream["framesize"] = stream["stride"] * height
        self.config = config

    def camera_configuration(self) -> dict:
        return self.config

    def start(self) -> None:
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        if self.fail_on == "start":
            raise RuntimeError("Failed to start camera: Device or resource busy")
        self.calls.append("start")
        self.started = True

    def capture_array(self, name: str = "main", wait: object = None,
                      signal_function: Callable[[StandInJob], None] | None = None) -> np.ndarray | StandInJob:
        if not self.started:
            raise RuntimeError("camera not started")
        self.calls.append(f"capture_array:{name}")
        if wait is None:
            wait = signal_function is None
        job = StandInJob(lambda: self._make_array(name), signal_function)
        with self._jobs_lock:
            self.jobs.append(job)
        self._event_loop()
        if not wait:
            return job
        if self.frames_lost:
            raise HangsForever(f"capture_array(wait={wait!r}) waits for ever: no frame is coming")
        return job.get_result()

    def capture_request(self, wait: object = None, signal_function: Callable[[StandInJob], None] | None = None,
                        flush: object = None) -> StandInCompletedRequest | StandInJob:
        """The next frame's request, which the caller holds until it calls release(); while every
        buffer (buffer_count of them) is held, no frame arrives and the camera stalls."""
        if not self.started:
            raise RuntimeError("camera not started")
        self.calls.append("capture_request")
        if wait is None:
            wait = signal_function is None
        job = StandInJob(self._complete_request, signal_function)
        with self._jobs_lock:
            self.jobs.append(job)
        self._event_loop()
        if not wait:
            return job
        if not job._future.done():  # cable loose, or every buffer held
            raise HangsForever(f"capture_request(wait={wait!r}) waits for ever: no frame is coming")
        return job.get_result()

    def _complete_request(self) -> StandInCompletedRequest:
        if self.fail_on == "capture":
            raise TimeoutError("frame timed out")
        request = StandInCompletedRequest(self)
        self.held.append(request)
        return request

    def _give_back(self, request: StandInCompletedRequest) -> None:
        self.held.remove(request)
        self._event_loop()  # a buffer is free again: a waiting capture can be answered

    def wait(self, job: StandInJob) -> np.ndarray | StandInCompletedRequest:
        return job.get_result()

    def set_controls(self, controls: dict) -> None:
        for name in controls:
            if name not in self.controls_offered:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")
        self.controls_set.append(dict(controls))

    def _make_array(self, name: str) -> np.ndarray:
        if self.fail_on == "capture":
            raise TimeoutError("frame timed out")
        stream = self.config[name]
        assert stream["format"] == "YUV420"
        (width, height), stride = stream["size"], stream["stride"]
        yuv = np.full((height * 3 // 2, stride), 77, np.uint8)  # padding and chroma: not grey data
        yuv[height:] = 128
        yuv[:height, :width] = self.y_plane if name == "lores" else self._main_y(width, height)
        return yuv

    def _main_y(self, width: int, height: int) -> np.ndarray:
        """The main stream sees what lores sees, with more pixels."""
        if self.main_plane is not None:
            return self.main_plane
        lores = self.y_plane
        scale_y, scale_x = -(-height // lores.shape[0]), -(-width // lores.shape[1])
        bigger = np.repeat(np.repeat(lores, scale_y, axis=0), scale_x, axis=1)
        bigger = np.pad(bigger, ((0, max(0, height - bigger.shape[0])), (0, max(0, width - bigger.shape[1]))), mode="edge")
        return bigger[:height, :width]

    def _event_loop(self) -> None:
        """Each arriving frame answers the first waiting job, on the camera's own thread; a frame
        needs a free buffer, so none arrives while the caller holds every one."""
        buffers = (self.config or {}).get("buffer_count", 6)

        def deliver() -> None:
            while not self.frames_lost and len(self.held) < buffers:
                with self._jobs_lock:
                    if not self.jobs:
                        return
                    job = self.jobs.pop(0)
                job.execute()
        thread = threading.Thread(target=deliver, daemon=True)
        thread.start()
        thread.join()

    def reseat_cable(self) -> None:
        """Frames come again: the captures still waiting are answered."""
        self.frames_lost = False
        self._event_loop()

    def stop(self) -> None:
        # With Picamera2's event loop running, stop() is a job queued behind any unanswered capture.
        if self.started and self.jobs and self.frames_lost:
            raise HangsForever("stop() waits for ever behind a capture no frame will answer")
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        # Picamera2's close() ends its event loop first, then stops the camera directly.
        self.calls.append("close")
        self.started = False
        self.closed = True


def install_standin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Make `import picamera2` give the stand-in (for this test), with a Camera Module 3 attached."""
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInPicamera2  # type: ignore[attr-defined]
    monkeypatch.setattr(StandInPicamera2, "instances", [])
    monkeypatch.setattr(StandInPicamera2, "fail_on", None)
    monkeypatch.setattr(StandInPicamera2, "controls_offered", CAMERA_MODULE_3)
    monkeypatch.setattr(StandInPicamera2, "lores_align", 2)
    monkeypatch.setattr(StandInPicamera2, "cable_loose", False)
    monkeypatch.setattr(StandInPicamera2, "main_plane", None)
    monkeypatch.setattr(StandInPicamera2, "y_plane", np.arange(480 * 640, dtype=np.uint32).reshape(480, 640).astype(np.uint8))
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module
