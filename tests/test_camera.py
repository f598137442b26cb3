"""Frame sources: the Picamera2 adapter against a stand-in module (focus, frames that stop, the lores
stream's real size), image files, the registry, the scenario camera."""

from __future__ import annotations

import logging
import random
import sys
import threading
import types

import numpy as np
import pytest
from PIL import Image

from kiosk.config import CameraSection, parse_text
from kiosk.errors import CameraError, ConfigError, KioskError
from kiosk.sensors.camera import (FRAME_TIMEOUT_S, RESTORE_AFTER_S, FileSource, FrameSource, Picamera2Source,
                                  frame_timeout_for, open_camera, read_pair)
from kiosk.sensors.reader import CAMERA_FAULT_AFTER_S, CodeReader
from kiosk.sensors.scanner import Scanner
from kiosk.sim.camera import ScenarioCamera
from kiosk.sim.qrframes import DISTORTIONS, render_frame
from kit import FakeClock
from picamera2_standin import (CAMERA_MODULE_2, CAMERA_MODULE_3, WITHOUT_EXPOSURE_VALUE, StandInCompletedRequest,
                               StandInPicamera2, install_standin)


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    return install_standin(monkeypatch)


def test_picamera2_source_returns_the_lores_y_plane(picamera2: types.ModuleType) -> None:
    source = Picamera2Source(640, 480, 15.0)
    frame = source.read()
    (camera,) = StandInPicamera2.instances
    assert frame.shape == (480, 640) and frame.dtype == np.uint8
    assert np.array_equal(frame, StandInPicamera2.y_plane)
    assert camera.config["lores"]["format"] == "YUV420" and camera.config["lores"]["size"] == (640, 480)
    assert camera.config["controls"]["FrameRate"] == 15.0
    assert camera.calls == ["create_video_configuration", "configure", "start", "capture_request"]
    assert isinstance(source, FrameSource)


def test_a_code_on_the_pi_camera_is_scanned(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = "https://hc.example.gov.cn/c/through-the-lores-stream"
    monkeypatch.setattr(StandInPicamera2, "y_plane", render_frame(payload, 640, 480, rng=random.Random(1)))
    assert Scanner("zxing").scan(Picamera2Source(640, 480, 15.0).read()) == [payload]


def test_picamera2_source_close_closes_the_camera_and_reads_then_fail(picamera2: types.ModuleType) -> None:
    source = Picamera2Source(640, 480, 15.0)
    source.close()
    source.close()
    (camera,) = StandInPicamera2.instances
    assert camera.closed and not camera.started and camera.calls.count("close") == 1
    with pytest.raises(CameraError, match="closed"):
        source.read()


@pytest.mark.parametrize(("fail_on", "message"), [("open", "cannot start camera"), ("start", "busy")])
def test_picamera2_start_failure_is_a_camera_error(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                   fail_on: str, message: str) -> None:
    monkeypatch.setattr(StandInPicamera2, "fail_on", fail_on)
    with pytest.raises(CameraError, match=message):
        Picamera2Source(640, 480, 15.0)
    for camera in StandInPicamera2.instances:  # a half-opened camera is released
        assert camera.closed


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


# --- focus --------------------------------------------------------------------------------------

def test_an_autofocus_camera_gets_its_lens_fixed_for_a_phone_at_30_cm(picamera2: types.ModuleType,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.sensors.camera")
    open_camera(CameraSection(driver="picamera2"))  # the shipped default: focus_m = 0.3
    (camera,) = StandInPicamera2.instances
    controls = camera.config["controls"]
    assert controls["AfMode"] == 0  # libcamera's AfModeManual: the lens stays where it is put
    assert controls["LensPosition"] == pytest.approx(1 / 0.3)  # dioptres
    assert "lens fixed at 0.30 m (3.33 dioptres)" in caplog.text


def test_focus_m_0_is_continuous_autofocus(picamera2: types.ModuleType) -> None:
    Picamera2Source(640, 480, 15.0, focus_m=0)
    (camera,) = StandInPicamera2.instances
    assert camera.config["controls"]["AfMode"] == 2  # libcamera's AfModeContinuous
    assert "LensPosition" not in camera.config["controls"]


def test_a_lens_position_beyond_the_lens_is_clamped(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(StandInPicamera2, "controls_offered", CAMERA_MODULE_3 | {"LensPosition": (0.0, 2.5, 1.0)})
    Picamera2Source(640, 480, 15.0, focus_m=0.1)
    (camera,) = StandInPicamera2.instances
    assert camera.config["controls"]["LensPosition"] == 2.5
    assert "outside this lens's 0.00..2.50" in caplog.text


def test_a_fixed_focus_camera_gets_no_focus_controls(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.sensors.camera")
    monkeypatch.setattr(StandInPicamera2, "controls_offered", CAMERA_MODULE_2)
    source = Picamera2Source(640, 480, 15.0, focus_m=0.3)  # the stand-in refuses controls it does not offer
    (camera,) = StandInPicamera2.instances
    assert not {"AfMode", "LensPosition"} & set(camera.config["controls"])
    assert "fixed-focus lens (no AfMode control)" in caplog.text
    assert source.read().shape == (480, 640)


def test_focus_m_is_validated_with_its_key_path() -> None:
    assert CameraSection().focus_m == 0.3
    assert CameraSection(focus_m=0).focus_m == 0
    for bad, why in ((0.05, "must be 0 (continuous autofocus) or between 0.1 and 1.0 metres"),
                     (1.5, "less than or equal to 1"), (-0.3, "greater than or equal to 0")):
        with pytest.raises(ConfigError) as caught:
            parse_text(f"[camera]\nfocus_m = {bad}\n")
        (problem,) = caught.value.problems
        assert problem.startswith("camera.focus_m: ") and why in problem


# --- frames that stop, and a lores stream of another size ---------------------------------------

def test_a_camera_whose_frames_stop_is_a_camera_error_naming_the_timeout(picamera2: types.ModuleType,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StandInPicamera2, "cable_loose", True)
    source = Picamera2Source(640, 480, 15.0, frame_timeout_s=0.05)
    (camera,) = StandInPicamera2.instances
    for _ in range(3):
        with pytest.raises(CameraError, match=r"no frame from the camera in 0\.05 s \(ribbon cable loose"):
            source.read()
    assert len(camera.jobs) == 1  # the unanswered capture is waited on again, not asked for again
    camera.reseat_cable()
    assert np.array_equal(source.read(), StandInPicamera2.y_plane)
    assert np.array_equal(source.read(), StandInPicamera2.y_plane)


def test_a_camera_without_frames_can_still_be_closed(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StandInPicamera2, "cable_loose", True)
    source = Picamera2Source(640, 480, 15.0, frame_timeout_s=0.05)
    with pytest.raises(CameraError, match="no frame"):
        source.read()
    source.close()  # the stand-in raises HangsForever where Picamera2 would hang
    assert StandInPicamera2.instances[0].closed


def test_closing_the_camera_ends_a_read_waiting_for_a_frame(picamera2: types.ModuleType,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StandInPicamera2, "cable_loose", True)
    source = Picamera2Source(640, 480, 15.0, frame_timeout_s=60)
    problems: list[BaseException] = []

    def camera_thread() -> None:
        try:
            source.read()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            problems.append(exc)

    thread = threading.Thread(target=camera_thread, daemon=True)
    thread.start()
    while not StandInPicamera2.instances[0].jobs:  # the read has asked for its frame
        thread.join(timeout=0.01)
    source.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert [str(p) for p in problems] == ["camera is closed"] and isinstance(problems[0], CameraError)


def test_the_frame_timeout_follows_the_frame_rate() -> None:
    assert frame_timeout_for(15.0) == FRAME_TIMEOUT_S == 2.0
    assert frame_timeout_for(1.0) == 3.0  # three frames' time at the slowest rate


def step_in_a_thread(reader: CodeReader) -> None:
    thread = threading.Thread(target=reader.step, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the camera thread hangs on a camera without frames"


def test_the_reader_reports_a_camera_without_frames_as_its_fault_and_recovers(picamera2: types.ModuleType,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StandInPicamera2, "cable_loose", True)
    clock = FakeClock()
    reader = CodeReader(Picamera2Source(640, 480, 15.0, frame_timeout_s=0.05), Scanner("zxing"), fps=15, clock=clock)
    step_in_a_thread(reader)
    assert reader.fault is None  # one missed frame is not yet a fault
    clock.now += CAMERA_FAULT_AFTER_S + 0.1
    step_in_a_thread(reader)
    assert reader.fault == "no frame from the camera in 0.05 s (ribbon cable loose, or the camera failed)"
    StandInPicamera2.instances[0].reseat_cable()
    step_in_a_thread(reader)
    assert reader.fault is None and reader.frames == 1


def test_the_camera_thread_stops_even_while_the_camera_gives_no_frames(picamera2: types.ModuleType,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StandInPicamera2, "cable_loose", True)
    source = Picamera2Source(640, 480, 15.0, frame_timeout_s=0.05)
    reader = CodeReader(source, Scanner("zxing"), fps=15)
    stop = threading.Event()
    problems: list[BaseException] = []

    def camera_thread() -> None:
        try:
            reader.run(stop)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            problems.append(exc)

    thread = threading.Thread(target=camera_thread, daemon=True)
    thread.start()
    stop.wait(0.2)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and problems == []
    source.close()


def test_frames_have_the_size_the_camera_gave_the_lores_stream(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(StandInPicamera2, "lores_align", 64)
    plane = np.random.default_rng(3).integers(0, 256, (482, 640), dtype=np.uint8)
    monkeypatch.setattr(StandInPicamera2, "y_plane", plane)
    source = Picamera2Source(650, 482, 15.0)
    frame = source.read()
    assert frame.shape == (482, 640) and (source.width, source.height) == (640, 482)
    assert np.array_equal(frame, plane)  # no padding columns in the picture
    assert "adjusted the lores stream from 650x482 to 640x482" in caplog.text


# --- the main stream ----------------------------------------------------------------------------

def test_each_read_gives_the_lores_and_main_y_planes_of_one_request(picamera2: types.ModuleType,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    main = np.random.default_rng(4).integers(0, 256, (960, 1280), dtype=np.uint8)
    monkeypatch.setattr(StandInPicamera2, "main_plane", main)
    source = Picamera2Source(640, 480, 15.0)
    (camera,) = StandInPicamera2.instances
    assert camera.config["main"]["format"] == "YUV420" and camera.config["main"]["size"] == (1280, 960)
    assert (source.main_width, source.main_height) == (1280, 960)
    frame, main_y = source.read_pair()
    assert np.array_equal(frame, StandInPicamera2.y_plane) and frame.flags.c_contiguous
    assert main_y.shape == (960, 1280) and np.array_equal(main_y, main)  # no padding columns, no chroma rows
    assert camera.held == []  # the request went back to the camera


def test_every_request_is_released_and_the_camera_never_stalls(picamera2: types.ModuleType,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = Picamera2Source(640, 480, 15.0, frame_timeout_s=0.05)
    (camera,) = StandInPicamera2.instances
    for _ in range(3 * camera.config["buffer_count"]):  # a request kept back would stall the stand-in within 6 reads
        source.read()
        source.read_pair()
        assert camera.held == []

    def broken_make_array(self: StandInCompletedRequest, name: str) -> np.ndarray:
        raise RuntimeError(f"Stream {name!r} is not defined")

    monkeypatch.setattr(StandInCompletedRequest, "make_array", broken_make_array)
    for _ in range(3 * camera.config["buffer_count"]):
        with pytest.raises(CameraError, match="capture failed: Stream 'lores' is not defined"):
            source.read_pair()
        assert camera.held == []


def test_sources_without_a_main_stream_give_none_for_it() -> None:
    camera = ScenarioCamera(320, 240, seed=8)
    frame, main = read_pair(camera)
    assert frame.shape == (240, 320) and main is None


# --- exposure for phone screens ------------------------------------------------------------------

def screen_in_view(share: float) -> np.ndarray:
    """A mid-grey scene with a clipped-white patch covering `share` of the frame."""
    frame = np.full((480, 640), 110, np.uint8)
    frame.reshape(-1)[: int(share * frame.size)] = 255
    return frame


def test_a_saturated_screen_lowers_the_exposure_once_and_it_returns_later(picamera2: types.ModuleType,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.sensors.camera")
    clock = FakeClock()
    source = Picamera2Source(640, 480, 15.0, screen_exposure_ev=-1.5, clock=clock)
    (camera,) = StandInPicamera2.instances
    monkeypatch.setattr(StandInPicamera2, "y_plane", screen_in_view(0.10))
    for _ in range(5):
        source.read()
        clock.now += 0.5
    assert camera.controls_set == [{"ExposureValue": -1.5}] and source.screen_ev == -1.5
    assert "exposure lowered by 1.5 EV" in caplog.text
    monkeypatch.setattr(StandInPicamera2, "y_plane", screen_in_view(0.0))
    clock.now += RESTORE_AFTER_S - 1.0
    source.read()
    assert camera.controls_set == [{"ExposureValue": -1.5}]  # not yet: the visitor may still be there
    clock.now += 1.0
    source.read()
    source.read()
    assert camera.controls_set == [{"ExposureValue": -1.5}, {"ExposureValue": 0.0}] and source.screen_ev == 0
    monkeypatch.setattr(StandInPicamera2, "y_plane", screen_in_view(0.10))
    source.read()  # the next visitor's screen
    assert camera.controls_set[-1] == {"ExposureValue": -1.5} and len(camera.controls_set) == 3


def test_a_small_highlight_leaves_the_exposure_alone(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StandInPicamera2, "y_plane", screen_in_view(0.01))  # a lamp's reflection
    source = Picamera2Source(640, 480, 15.0)
    for _ in range(5):
        source.read()
    assert StandInPicamera2.instances[0].controls_set == []


@pytest.mark.parametrize(("offered", "ev"), [(WITHOUT_EXPOSURE_VALUE, -1.5), (CAMERA_MODULE_3, 0.0)])
def test_no_exposure_change_without_the_control_or_when_off(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                            offered: dict, ev: float) -> None:
    monkeypatch.setattr(StandInPicamera2, "controls_offered", offered)
    monkeypatch.setattr(StandInPicamera2, "y_plane", screen_in_view(0.5))
    source = Picamera2Source(640, 480, 15.0, screen_exposure_ev=ev)
    for _ in range(3):
        assert source.read().shape == (480, 640)
    assert StandInPicamera2.instances[0].controls_set == []


def test_the_shipped_screen_exposure_reaches_the_camera(picamera2: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StandInPicamera2, "y_plane", screen_in_view(0.10))
    source = open_camera(CameraSection(driver="picamera2"))
    source.read()
    assert CameraSection().screen_exposure_ev == -1.5
    assert StandInPicamera2.instances[0].controls_set == [{"ExposureValue": -1.5}]
    with pytest.raises(ConfigError, match="camera.screen_exposure_ev"):
        parse_text("[camera]\nscreen_exposure_ev = 1.0\n")


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
