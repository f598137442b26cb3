"""The camera opened again: missing at boot, failing later, back once it can be opened."""

from __future__ import annotations

import pytest

from kiosk.errors import CameraError
from kiosk.sensors.camera import Picamera2Source, read_pair
from kiosk.sensors.reopening import ReopeningSource
from kiosk.sim.camera import ScenarioCamera
from picamera2_standin import install_standin


class Plug:
    """Opens a scenario camera while 'plugged in'; otherwise fails the way picamera2 does without a camera."""

    def __init__(self) -> None:
        self.plugged = False
        self.opened: list[ScenarioCamera] = []

    def __call__(self) -> ScenarioCamera:
        if not self.plugged:
            raise IndexError("list index out of range")
        camera = ScenarioCamera(64, 48, seed=1)
        self.opened.append(camera)
        return camera


@pytest.fixture
def clock():
    now = [100.0]
    return now


def test_a_camera_missing_at_start_is_a_clear_error_and_opens_once_it_is_there(clock):
    plug = Plug()
    source = ReopeningSource(plug, retry_after_s=5.0, clock=lambda: clock[0])
    with pytest.raises(CameraError, match="cannot open the camera: IndexError.*trying again every 5 s"):
        source.read()
    plug.plugged = True
    with pytest.raises(CameraError):  # not yet time to try again: no hammering of the driver
        source.read()
    assert plug.opened == []
    clock[0] += 5.0
    assert source.read().shape == (48, 64)
    assert len(plug.opened) == 1
    source.read()
    assert len(plug.opened) == 1, "an open camera is kept, not opened per frame"


def test_a_camera_that_fails_is_closed_and_opened_again(clock):
    plug = Plug()
    plug.plugged = True
    source = ReopeningSource(plug, retry_after_s=5.0, clock=lambda: clock[0])
    source.read()
    first = plug.opened[0]
    first.close()  # the device went away under the source
    with pytest.raises(CameraError, match="closed.*opening the camera again in 5 s"):
        source.read()
    clock[0] += 5.0
    assert source.read() is not None
    assert len(plug.opened) == 2 and plug.opened[1] is not first


def test_close_releases_the_camera_and_stays_closed(clock):
    plug = Plug()
    plug.plugged = True
    source = ReopeningSource(plug, retry_after_s=5.0, clock=lambda: clock[0])
    source.read()
    source.close()
    with pytest.raises(CameraError, match="closed"):
        plug.opened[0].read()
    clock[0] += 60
    with pytest.raises(CameraError, match="closed"):
        source.read()
    assert len(plug.opened) == 1


def test_the_pi_camera_s_main_stream_comes_through(clock, monkeypatch):
    install_standin(monkeypatch)
    source = ReopeningSource(lambda: Picamera2Source(640, 480, 15.0), retry_after_s=5.0, clock=lambda: clock[0])
    frame, main = read_pair(source)
    assert frame.shape == (480, 640)
    assert main is not None and main.shape == (960, 1280), "the scanner gets the full-resolution view too"
    source.close()
