"""On the Pi: the camera delivers grayscale frames of the configured size, with some light in them,
and a printed code held where visitors hold their phones is read.

The focus check needs a person: it writes the code to print (/tmp/kiosk-focus-card.png, 5 cm
wide at 100 %, like a health code on a phone's screen; printed once, it can be used again, or shown
on a phone) and waits up to a minute for it to be held 30 cm in front of the camera.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import segno

from kiosk.config import CameraSection
from kiosk.sensors.camera import Picamera2Source, open_camera
from kiosk.sensors.scanner import Scanner

FOCUS_CARD = Path(tempfile.gettempdir()) / "kiosk-focus-card.png"
FOCUS_PAYLOAD = "KIOSK FOCUS CHECK 30 CM"
FOCUS_WAIT_S = 60.0


def test_camera_delivers_frames():
    camera = Picamera2Source(640, 480, 15)
    try:
        frames = [camera.read() for _ in range(10)]
    finally:
        camera.close()
    frames = [f for f in frames if f is not None]
    assert frames, "no frame in 10 reads"
    assert frames[-1].shape == (480, 640) and frames[-1].dtype == np.uint8
    assert 5 < float(frames[-1].mean()) < 250, "the frame is all black or all white: lens cap, or no light?"


def write_focus_card(path: Path = FOCUS_CARD) -> Path:
    """The code to print: 33 modules (version 2 and the quiet zone) of 18 px at 300 dpi, 5.0 cm wide."""
    segno.make_qr(FOCUS_PAYLOAD, error="m").save(path, scale=18, border=4, dpi=300)
    return path


def test_a_printed_code_held_at_30_cm_is_read(capsys: pytest.CaptureFixture[str]):
    card = write_focus_card()
    section = CameraSection()  # the shipped settings: the lens focused for 0.3 m where it can be
    scanner = Scanner(section.decoder)
    with capsys.disabled():
        print(f"\n  Print {card} at 100 % (the code 5 cm wide), or show it on a phone, and hold it\n"
              f"  30 cm in front of the camera, facing it. Waiting up to {FOCUS_WAIT_S:.0f} s ...", flush=True)
    camera = open_camera(section)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + FOCUS_WAIT_S
        while time.monotonic() < deadline and FOCUS_PAYLOAD not in seen:
            frame = camera.read()
            if frame is not None:
                seen = scanner.scan(frame)
    finally:
        camera.close()
    assert FOCUS_PAYLOAD in seen, (
        f"the code at 30 cm was not read in {FOCUS_WAIT_S:.0f} s: out of focus (camera.focus_m; dioptre "
        "calibration varies between modules), too dark, or not facing the camera?")
