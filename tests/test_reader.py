"""The camera thread's bookkeeping: each presentation of a code is reported once, and a camera that
stops delivering frames is noticed."""

from kiosk.errors import CameraError
from kiosk.sensors.reader import CAMERA_FAULT_AFTER_S, REPRESENT_GAP_S, CodeReader
from kiosk.sensors.scanner import Scanner
from kiosk.sim.camera import ScenarioCamera


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def reader_with(camera, clock):
    return CodeReader(camera, Scanner("zxing"), fps=15, clock=clock)


def test_a_code_held_up_is_reported_once():
    clock, camera = Clock(), ScenarioCamera(seed=1)
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
    clock, camera = Clock(), ScenarioCamera(seed=2)
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
    clock, camera = Clock(), ScenarioCamera(seed=3)
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
    clock = Clock()
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
    clock, camera = Clock(), CableLooseCamera()
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
