"""The viewfinder: the frame the scanner saw, and what would help read a code in view that does not read.

Everything runs through the real CodeReader and the real scanner on the simulated camera; the
unreadable presets of kiosk/sim/qrframes.py show a code too far away, shaking, or on a dim screen.
"""

from __future__ import annotations

import logging
import random
import string

import numpy as np
import pytest

from kiosk.errors import CameraError
from kiosk.sensors.camera import Picamera2Source
from kiosk.sensors.reader import HINT_CLEAR_AFTER_S, HINTS, CodeReader
from kiosk.sensors.scanner import Scanner
from kiosk.sim.camera import ScenarioCamera
from kiosk.sim.qrframes import UNREADABLE
from kit import FakeClock
from picamera2_standin import StandInPicamera2, install_standin

FPS = 15.0
# What each unreadable preset should make the screen say.
EXPECTED = {"too_far": "closer", "shaking": "hold_still", "dim_screen": "brighter"}


def health_code(seed: int) -> str:
    """A health-code URL of typical length (QR version 4 to 6)."""
    rng = random.Random(seed)
    token = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(40, 70)))
    return f"https://hc.example.gov.cn/c/{token}"


def step(reader: CodeReader, clock: FakeClock, frames: int = 1) -> list[str | None]:
    """Run the camera thread for `frames` frames; the hint after each."""
    hints = []
    for _ in range(frames):
        reader.step()
        clock.now += 1 / FPS
        hints.append(reader.hint())
    return hints


def scene_with_hint(preset: str, scanner: Scanner | None = None) -> tuple[CodeReader, ScenarioCamera, FakeClock, str]:
    """A reader showing the first of a few `preset` scenes that gets a hint, with the hint showing."""
    scanner = scanner or Scanner("zxing")
    for seed in range(12):
        clock, camera = FakeClock(), ScenarioCamera(seed=seed)
        camera.show(health_code(seed), preset)
        reader = CodeReader(camera, scanner, fps=FPS, clock=clock)
        hints = step(reader, clock, 20)
        if reader.take_new() is None and hints[-1] is not None:
            return reader, camera, clock, hints[-1]
    raise AssertionError(f"no {preset} scene of 12 got a hint")


def test_the_unreadable_presets_are_not_among_the_decode_rate_presets() -> None:
    from kiosk.sim.qrframes import DISTORTIONS

    assert set(EXPECTED) == {d.name for d in UNREADABLE}
    assert not set(EXPECTED) & {d.name for d in DISTORTIONS}
    assert set(EXPECTED.values()) == set(HINTS)


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_an_unreadable_code_gets_the_hint_for_what_is_wrong(preset: str) -> None:
    """Over 12 presentations of 1.3 s: the right hint shows in several, and no other hint ever shows."""
    scanner = Scanner("zxing")
    shown = 0
    others: set[str] = set()
    for seed in range(12):
        clock, camera = FakeClock(), ScenarioCamera(seed=seed)
        camera.show(health_code(100 + seed), preset)
        reader = CodeReader(camera, scanner, fps=FPS, clock=clock)
        hints = {h for h in step(reader, clock, 20) if h is not None}
        shown += EXPECTED[preset] in hints
        others |= hints - {EXPECTED[preset]}
    assert not others, (preset, others)
    assert shown >= 3, (preset, shown)


def test_a_hint_waits_for_more_than_a_moment() -> None:
    _, camera, clock, _ = scene_with_hint("dim_screen")
    # The same scene from the start: the first frames never show a hint.
    fresh = CodeReader(camera, Scanner("zxing"), fps=FPS, clock=clock)
    assert step(fresh, clock, 3) == [None, None, None]


def test_a_code_read_clears_the_hint_at_once() -> None:
    reader, camera, clock, hint = scene_with_hint("shaking")
    assert hint == "hold_still"
    camera.show("https://hc.example.gov.cn/c/steady", "plain")
    assert step(reader, clock) == [None]
    assert reader.take_new().payload == "https://hc.example.gov.cn/c/steady"


def test_the_hint_stays_through_a_short_gap_and_goes_a_second_after_the_code() -> None:
    reader, camera, clock, hint = scene_with_hint("dim_screen")
    camera.hide()
    hints = step(reader, clock, round(FPS * HINT_CLEAR_AFTER_S) + 3)
    # Still shown while the phone is out of view for a moment (a hand moving), gone after a second.
    assert hints[:3] == [hint] * 3 and hints[-1] is None


@pytest.mark.parametrize("preset", ["plain", "typical", "large"])
def test_a_readable_code_never_gets_a_hint(preset: str) -> None:
    for seed in range(3):
        clock, camera = FakeClock(), ScenarioCamera(seed=seed)
        camera.show(health_code(seed), preset)
        reader = CodeReader(camera, Scanner("zxing"), fps=FPS, clock=clock)
        assert step(reader, clock, 8) == [None] * 8
        assert reader.take_new() is not None


def test_an_empty_scene_gets_no_hint() -> None:
    for seed in range(4):
        clock = FakeClock()
        reader = CodeReader(ScenarioCamera(seed=seed), Scanner("zxing"), fps=FPS, clock=clock)
        assert step(reader, clock, 20) == [None] * 20


def test_zbar_reports_no_located_code_so_no_hint_but_a_preview() -> None:
    clock, camera = FakeClock(), ScenarioCamera(seed=1)
    camera.show(health_code(1), "dim_screen")
    reader = CodeReader(camera, Scanner("pyzbar"), fps=FPS, clock=clock)
    assert step(reader, clock, 20) == [None] * 20
    assert reader.preview() is not None


# --- the preview ---------------------------------------------------------------------------------

class Recording(Scanner):
    """The real scanner, keeping the frames it was given."""

    def scan(self, frame, main=None):
        self.seen.append(frame)
        return super().scan(frame, main)


def test_preview_is_the_frame_the_scanner_saw_and_cannot_be_changed() -> None:
    clock, camera = FakeClock(), ScenarioCamera(320, 240, seed=3)
    camera.show(health_code(3), "typical")
    scanner = Recording("zxing")
    scanner.seen = []
    reader = CodeReader(camera, scanner, fps=FPS, clock=clock)
    assert reader.preview() is None  # no frame yet
    reader.step()
    taken = clock.now
    clock.now += 0.25
    preview = reader.preview()
    assert preview is not None and preview.image.shape == (240, 320) and preview.image.dtype == np.uint8
    assert np.array_equal(preview.image, scanner.seen[-1])
    assert preview.taken_at == taken and preview.age_s == pytest.approx(0.25)
    with pytest.raises(ValueError):
        preview.image[0, 0] = 0
    reader.step()  # the next frame replaces it
    assert np.array_equal(reader.preview().image, scanner.seen[-1])
    assert not np.array_equal(reader.preview().image, preview.image)  # fresh sensor noise


def test_preview_is_the_pi_cameras_lores_stream_not_the_main_stream(monkeypatch) -> None:
    install_standin(monkeypatch)
    lores = ScenarioCamera(seed=4).read()
    monkeypatch.setattr(StandInPicamera2, "y_plane", lores)
    source = Picamera2Source(640, 480, FPS)
    try:
        reader = CodeReader(source, Scanner("zxing"), fps=FPS, clock=FakeClock())
        reader.step()
        preview = reader.preview()
        assert preview.image.shape == (480, 640) and np.array_equal(preview.image, lores)
    finally:
        source.close()


class FailingCamera:
    """A camera that works, then fails when told to."""

    def __init__(self) -> None:
        self.failed = False
        self.picture = ScenarioCamera(seed=5)

    def read(self):
        if self.failed:
            raise CameraError("no frame from the camera in 2 s (ribbon cable loose, or the camera failed)")
        return self.picture.read()

    def close(self) -> None:
        pass


def test_no_preview_and_no_hint_while_the_camera_fails() -> None:
    clock, camera = FakeClock(), FailingCamera()
    camera.picture.show(health_code(5), "dim_screen")
    reader = CodeReader(camera, Scanner("zxing"), fps=FPS, clock=clock)
    step(reader, clock, 20)
    assert reader.preview() is not None
    camera.failed = True
    step(reader, clock)
    # Not the last picture, frozen: the camera no longer shows what is in front of it.
    assert reader.preview() is None and reader.hint() is None
    step(reader, clock, 60)
    assert reader.fault is not None and reader.preview() is None
    camera.failed = False
    step(reader, clock)
    assert reader.fault is None and reader.preview() is not None


def test_preview_never_shows_its_pixels_in_a_repr_or_a_log(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk")
    reader, *_ = scene_with_hint("dim_screen")
    preview = reader.preview()
    assert repr(preview) == "Preview(640x480, 0.07 s old)"
    assert str(preview) == repr(preview)
    assert all(len(r.getMessage()) < 200 and "array" not in r.getMessage() for r in caplog.records)
