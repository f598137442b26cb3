"""The camera thread's bookkeeping: each presentation of a code is reported once, and a camera that
stops delivering frames is noticed."""

import random
import string

import numpy as np
from PIL import Image

from kiosk.errors import CameraError
from kiosk.sensors.camera import Picamera2Source
from kiosk.sensors.reader import CAMERA_FAULT_AFTER_S, REPRESENT_GAP_S, CodeReader
from kiosk.sensors.scanner import Scanner
from kiosk.sim.camera import ScenarioCamera
from kiosk.sim.qrframes import Distortion, render_frame
from kit import FakeClock
from picamera2_standin import StandInPicamera2, install_standin


def reader_with(camera, clock):
    return CodeReader(camera, Scanner("zxing"), fps=15, clock=clock)


def test_a_code_held_up_is_reported_once():
    clock, camera = FakeClock(), ScenarioCamera(seed=1)
    reader = reader_with(camera, clock)
    camera.show("HCP1:HELLO", "plain")
    woken = []
    reader.on_code = lambda: woken.append(1)
    for _ in range(5):
        reader.step()
        clock.now += 0.1
    seen = reader.take_new()
    assert seen is not None and seen.payload == "HCP1:HELLO" and seen.seen_at == 100.0
    assert reader.take_new() is None and len(woken) == 1


def test_shown_again_after_a_gap_is_a_new_presentation():
    clock, camera = FakeClock(), ScenarioCamera(seed=2)
    reader = reader_with(camera, clock)
    camera.show("HCP1:AGAIN", "plain")
    reader.step()
    assert reader.take_new() is not None
    camera.hide()
    clock.now += REPRESENT_GAP_S + 0.5
    reader.step()
    camera.show("HCP1:AGAIN", "plain")
    reader.step()
    assert reader.take_new().payload == "HCP1:AGAIN"


def test_a_different_code_is_new_at_once():
    clock, camera = FakeClock(), ScenarioCamera(seed=3)
    reader = reader_with(camera, clock)
    camera.show("HCP1:FIRST", "plain")
    reader.step()
    reader.take_new()
    camera.show("HCP1:SECOND", "plain")
    clock.now += 0.1
    reader.step()
    assert reader.take_new().payload == "HCP1:SECOND"


class BrokenCamera:
    def read(self):
        raise CameraError("camera cable loose")

    def close(self):
        pass


def test_a_camera_without_frames_is_a_fault_with_its_cause():
    clock = FakeClock()
    reader = reader_with(BrokenCamera(), clock)
    reader.step()
    assert reader.fault is None  # a single missed frame is not yet a fault
    clock.now += CAMERA_FAULT_AFTER_S + 0.1
    reader.step()
    assert reader.fault == "camera cable loose"


class CableLooseCamera:
    """A camera whose reads time out until the cable is seated again."""

    def __init__(self):
        self.loose = True
        self.picture = ScenarioCamera(seed=4)

    def read(self):
        if self.loose:
            raise CameraError("no frame from the camera in 2 s (ribbon cable loose, or the camera failed)")
        return self.picture.read()

    def close(self):
        pass


def test_a_camera_that_delivers_again_is_back_in_service(caplog):
    clock, camera = FakeClock(), CableLooseCamera()
    reader = reader_with(camera, clock)
    reader.step()
    clock.now += CAMERA_FAULT_AFTER_S + 0.1
    reader.step()
    assert reader.fault.startswith("no frame from the camera in 2 s")
    camera.loose = False
    camera.picture.show("HCP1:BACK", "plain")
    caplog.set_level("INFO", logger="kiosk.sensors.reader")
    reader.step()
    assert reader.fault is None
    assert reader.take_new().payload == "HCP1:BACK"
    assert "camera delivers frames again" in caplog.text


# --- the Pi camera's main stream -----------------------------------------------------------------

def dense_code_at_arms_length():
    """A DCC-sized code too fine to read in the 640x480 lores frame, readable in the 1280x960 main stream."""
    rng = random.Random(5)
    payload = "HC1:" + "".join(rng.choice(string.digits + string.ascii_uppercase + " $%*+-./:") for _ in range(700))
    main = render_frame(payload, 1280, 960, rng=random.Random(0), distortion=Distortion("far", scale=(0.18, 0.2), noise=(2.0, 2.0)))
    lores = np.asarray(Image.fromarray(main).resize((640, 480), Image.Resampling.BOX))
    return payload, lores, main


def test_a_code_only_the_main_stream_resolves_is_read_through_the_reader(monkeypatch):
    install_standin(monkeypatch)
    payload, lores, main = dense_code_at_arms_length()
    monkeypatch.setattr(StandInPicamera2, "y_plane", lores)
    monkeypatch.setattr(StandInPicamera2, "main_plane", main)
    scanner = Scanner("zxing")
    assert scanner.scan(lores) == []  # the lores frame alone does not read it
    source = Picamera2Source(640, 480, 15.0)
    reader = CodeReader(source, scanner, fps=15, clock=FakeClock())
    reader.step()
    assert reader.take_new().payload == payload and scanner.last_stage == "main_crop"
    assert StandInPicamera2.instances[0].held == []
    source.close()


def test_sources_without_a_main_stream_are_scanned_as_before():
    class Recording(Scanner):
        def scan(self, frame, main=None):
            self.mains.append(main)
            return super().scan(frame, main)

    scanner = Recording("zxing")
    scanner.mains = []
    camera = ScenarioCamera(seed=9)
    camera.show("HCP1:LORES", "plain")
    reader = CodeReader(camera, scanner, fps=15, clock=FakeClock())
    reader.step()
    assert reader.take_new().payload == "HCP1:LORES" and scanner.mains == [None]
