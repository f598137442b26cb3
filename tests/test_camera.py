"""Frame sources: the Picamera2 adapter against a stand-in module, image files, the registry, the scenario camera."""

from __future__ import annotations

import random
import sys
import threading
import types
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from kiosk.config import CameraSection
from kiosk.errors import CameraError, KioskError
from kiosk.sensors.camera import FileSource, FrameSource, Picamera2Source, open_camera
from kiosk.sensors.scanner import Scanner
from kiosk.sim.camera import ScenarioCamera
from kiosk.sim.qrframes import DISTORTIONS, render_frame

# --- Picamera2 stand-in -------------------------------------------------------------------------

class StandInPicamera2:
    """Mirrors the Picamera2 calls the adapter makes, with the checks Picamera2 itself applies.

    capture_array("lores") returns YUV420 the way Picamera2 does: shape (height * 3 // 2, stride),
    Y rows first (padded to the stride), then the U and V rows.
    """

    instances: ClassVar[list[StandInPicamera2]] = []
    y_plane: ClassVar[np.ndarray | None] = None
    fail_on: ClassVar[str | None] = None

    def __init__(self, camera_num: int = 0, tuning: object = None) -> None:
        if self.fail_on == "open":
            raise IndexError("list index out of range")  # what Picamera2 raises with no camera attached
        self.camera_num = camera_num
        self.calls: list[str] = []
        self.config: dict | None = None
        self.started = False
        StandInPicamera2.instances.append(self)

    def create_video_configuration(self, main: dict | None = None, lores: dict | None = None,
                                   controls: dict | None = None, **others: object) -> dict:
        # Picamera2 fills in what is not given: main XBGR8888 1280x720, lores YUV420 at main's size.
        self.calls.append("create_video_configuration")
        main = {"format": "XBGR8888", "size": (1280, 720)} | (main or {})
        if lores is not None:
            lores = {"format": "YUV420", "size": main["size"]} | lores
        return {"use_case": "video", "main": main, "lores": lores, "raw": None, "controls": dict(controls or {})} | others

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
        self.config = config

    def start(self) -> None:
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        if self.fail_on == "start":
            raise RuntimeError("Failed to start camera: Device or resource busy")
        self.calls.append("start")
        self.started = True

    def capture_array(self, name: str = "main", wait: object = None, signal_function: object = None) -> np.ndarray:
        if not self.started:
            raise RuntimeError("camera not started")
        if self.fail_on == "capture":
            raise TimeoutError("frame timed out")
        self.calls.append(f"capture_array:{name}")
        width, height = self.config[name]["size"]
        assert self.config[name]["format"] == "YUV420"
        stride = (width + 63) // 64 * 64 + 64  # hardware pads rows; make sure padding is cut off
        yuv = np.full((height * 3 // 2, stride), 77, np.uint8)  # padding and chroma: not grey data
        yuv[height:] = 128
        yuv[:height, :width] = self.y_plane
        return yuv

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInPicamera2
    monkeypatch.setattr(StandInPicamera2, "instances", [])
    monkeypatch.setattr(StandInPicamera2, "fail_on", None)
    monkeypatch.setattr(StandInPicamera2, "y_plane", np.arange(480 * 640, dtype=np.uint32).reshape(480, 640).astype(np.uint8))
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module


def test_picamera2_source_returns_the_lores_y_plane(picamera2: types.ModuleType) -> None:
    source = Picamera2Source(640, 480, 15.0)
    frame = source.read()
    (camera,) = StandInPicamera2.instances
    assert frame.shape == (480, 640) and frame.dtype == np.uint8
    assert np.array_equal(frame, StandInPicamera2.y_plane)
    assert camera.config["lores"] == {"format": "YUV420", "size": (640, 480)}
    assert camera.config["controls"] == {"FrameRate": 15.0}
    assert camera.calls == ["create_video_configuration", "configure", "start", "capture_array:lores"]
    assert isinstance(source, FrameSource)


def test_a_code_on_the_pi_camera_is_scanned(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = "https://hc.example.gov.cn/c/through-the-lores-stream"
    monkeypatch.setattr(StandInPicamera2, "y_plane", render_frame(payload, 640, 480, rng=random.Random(1)))
    assert Scanner("zxing").scan(Picamera2Source(640, 480, 15.0).read()) == [payload]


def test_picamera2_source_close_stops_the_camera_and_reads_then_fail(picamera2: types.ModuleType) -> None:
    source = Picamera2Source(640, 480, 15.0)
    source.close()
    source.close()
    (camera,) = StandInPicamera2.instances
    assert camera.calls[-2:] == ["stop", "close"]
    with pytest.raises(CameraError, match="closed"):
        source.read()


@pytest.mark.parametrize(("fail_on", "message"), [("open", "cannot start camera"), ("start", "busy")])
def test_picamera2_start_failure_is_a_camera_error(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                   fail_on: str, message: str) -> None:
    monkeypatch.setattr(StandInPicamera2, "fail_on", fail_on)
    with pytest.raises(CameraError, match=message):
        Picamera2Source(640, 480, 15.0)
    for camera in StandInPicamera2.instances:  # a half-opened camera is released
        assert camera.calls[-2:] == ["stop", "close"]


def test_picamera2_capture_failure_is_a_camera_error(picamera2: types.ModuleType) -> None:
    source = Picamera2Source(640, 480, 15.0)
    StandInPicamera2.fail_on = "capture"
    with pytest.raises(CameraError, match="capture failed: frame timed out"):
        source.read()


def test_odd_camera_size_is_refused(picamera2: types.ModuleType) -> None:
    with pytest.raises(CameraError, match="even"):
        Picamera2Source(641, 480, 15.0)


def test_missing_picamera2_is_a_clear_camera_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` raise ImportError
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        Picamera2Source(640, 480, 15.0)
    with pytest.raises(CameraError, match="picamera2"):
        open_camera(CameraSection(driver="picamera2"))


# --- files --------------------------------------------------------------------------------------

def test_file_source_cycles_through_a_folder_in_name_order(tmp_path) -> None:
    Image.new("L", (40, 30), 10).save(tmp_path / "b.png")
    Image.new("RGB", (40, 30), (200, 0, 0)).save(tmp_path / "a.jpg")
    Image.new("L", (20, 10), 250).save(tmp_path / "c.BMP")
    (tmp_path / "readme.txt").write_text("ignored")
    source = FileSource(tmp_path)
    frames = [source.read() for _ in range(4)]
    assert [f.shape for f in frames] == [(30, 40), (30, 40), (10, 20), (30, 40)]
    assert all(f.dtype == np.uint8 and f.ndim == 2 for f in frames)
    assert [int(f.mean()) for f in frames] == [int(frames[0].mean()), 10, 250, int(frames[0].mean())]
    assert 50 < frames[0].mean() < 70  # red converted to its luma, not a colour channel


def test_file_source_single_file_repeats(tmp_path) -> None:
    path = tmp_path / "code.png"
    Image.fromarray(render_frame("https://hc.example.gov.cn/c/file", rng=random.Random(2), distortion=DISTORTIONS[0])).save(path)
    source = FileSource(path)
    scanner = Scanner("zxing")
    assert scanner.scan(source.read()) == scanner.scan(source.read()) == ["https://hc.example.gov.cn/c/file"]


def test_file_source_bad_paths_name_the_path(tmp_path) -> None:
    with pytest.raises(CameraError, match="nowhere.png"):
        FileSource(tmp_path / "nowhere.png")
    with pytest.raises(CameraError, match=str(tmp_path)):
        FileSource(tmp_path)  # no images in it
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(CameraError, match="broken.png"):
        FileSource(broken)


def test_file_source_unreadable_file_in_folder_fails_on_its_turn(tmp_path) -> None:
    Image.new("L", (8, 8), 0).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"garbage")
    source = FileSource(tmp_path)
    assert source.read().shape == (8, 8)
    with pytest.raises(CameraError, match="b.png"):
        source.read()


# --- registry -----------------------------------------------------------------------------------

def test_open_camera_picks_the_configured_driver(tmp_path) -> None:
    Image.new("L", (8, 8), 0).save(tmp_path / "a.png")
    assert isinstance(open_camera(CameraSection(driver="files", path=str(tmp_path))), FileSource)
    scenario = ScenarioCamera(320, 240, seed=1)
    assert open_camera(CameraSection(driver="sim"), scenario_source=scenario) is scenario


def test_open_camera_explains_missing_settings() -> None:
    with pytest.raises(CameraError, match="camera.path"):
        open_camera(CameraSection(driver="files"))
    with pytest.raises(CameraError, match="sim"):
        open_camera(CameraSection(driver="sim"))


# --- scenario camera ----------------------------------------------------------------------------

def test_scenario_camera_shows_and_hides_a_code() -> None:
    camera = ScenarioCamera(640, 480, seed=3)
    scanner = Scanner("zxing")
    assert scanner.scan(camera.read()) == []
    camera.show("https://hc.example.gov.cn/c/visitor-1")
    assert camera.showing == "https://hc.example.gov.cn/c/visitor-1"
    assert scanner.scan(camera.read()) == ["https://hc.example.gov.cn/c/visitor-1"]
    assert scanner.scan(camera.read()) == ["https://hc.example.gov.cn/c/visitor-1"]
    camera.hide()
    assert camera.showing is None
    assert scanner.scan(camera.read()) == []


def test_scenario_camera_every_distortion_preset_can_be_shown() -> None:
    camera = ScenarioCamera(640, 480, seed=4)
    for distortion in DISTORTIONS:
        camera.show("https://hc.example.gov.cn/c/preset", distortion.name)
        frame = camera.read()
        assert frame.shape == (480, 640) and frame.dtype == np.uint8


def test_scenario_camera_reads_carry_fresh_noise_and_are_reproducible() -> None:
    first, second = ScenarioCamera(320, 240, seed=5), ScenarioCamera(320, 240, seed=5)
    first.show("https://hc.example.gov.cn/c/same")
    second.show("https://hc.example.gov.cn/c/same")
    a1, a2 = first.read(), first.read()
    assert not np.array_equal(a1, a2)  # a live sensor never gives the same frame twice
    assert np.abs(a1.astype(int) - a2.astype(int)).mean() < 10  # ...but it is the same picture
    assert np.array_equal(a1, second.read())


def test_scenario_camera_refuses_bad_requests_and_keeps_the_picture() -> None:
    camera = ScenarioCamera(640, 480, seed=6)
    camera.show("https://hc.example.gov.cn/c/kept")
    with pytest.raises(KioskError, match="unknown distortion 'wobbly'"):
        camera.show("https://hc.example.gov.cn/c/other", "wobbly")
    with pytest.raises(KioskError, match="cannot show a QR code"):
        camera.show("x" * 8000)  # beyond QR capacity
    assert camera.showing == "https://hc.example.gov.cn/c/kept"
    assert Scanner("zxing").scan(camera.read()) == ["https://hc.example.gov.cn/c/kept"]


def test_scenario_camera_is_safe_to_drive_from_another_thread() -> None:
    camera = ScenarioCamera(320, 240, seed=7)
    problems: list[BaseException] = []
    stop = threading.Event()

    def camera_thread() -> None:
        try:
            while not stop.is_set():
                frame = camera.read()
                assert frame.shape == (240, 320) and frame.dtype == np.uint8
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            problems.append(exc)

    reader = threading.Thread(target=camera_thread)
    reader.start()
    try:
        for i in range(30):
            camera.show(f"https://hc.example.gov.cn/c/{i}")
            camera.hide()
    finally:
        stop.set()
        reader.join(timeout=5)
    assert not reader.is_alive()
    assert problems == []


def test_closed_scenario_camera_raises() -> None:
    camera = ScenarioCamera(320, 240)
    camera.close()
    with pytest.raises(CameraError):
        camera.read()
