"""What the camera sees, and what the decoder makes of it, cannot stop a code from being read nor
the camera thread: a symbol the decoder reports with a version no QR code has, corners that are
not numbers or lie outside the frame, a quadrilateral squashed to a point.

The frames are the simulator's, the decoder the real zxing-cpp; the odd reports are added to what
zxing-cpp itself returns, as a decoder with a bug (or another release's format) would return them.
"""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import zxingcpp

from kiosk.sensors.qrpipeline import Located, look_at
from kiosk.sensors.reader import HINTS, CodeReader
from kiosk.sensors.scanner import Scanner
from kiosk.sim.camera import ScenarioCamera

PAYLOAD = "https://hc.example.gov.cn/c/Zq7hR2mXkP4vN8sT1wY6bJ3dF9gL5cA0eU2iO"
SQUARE = ((200.0, 150.0), (300.0, 150.0), (300.0, 250.0), (200.0, 250.0))


def point(x: float, y: float) -> SimpleNamespace:
    return SimpleNamespace(x=x, y=y)


def odd_symbol(corners=SQUARE, version: object = "1", extra: object = None) -> SimpleNamespace:
    """A located, unreadable QR symbol as zxing-cpp reports one."""
    tl, tr, br, bl = (point(*c) for c in corners)
    return SimpleNamespace(valid=False, bytes=b"", format=zxingcpp.BarcodeFormat.QRCode,
                           position=SimpleNamespace(top_left=tl, top_right=tr, bottom_right=br, bottom_left=bl),
                           extra={"Version": version} if extra is None else extra)


class Reporting:
    """zxing-cpp, with ``extra`` symbols added to every whole-frame read."""

    def __init__(self, extra: list) -> None:
        self._extra = extra

    def __getattr__(self, name: str):
        return getattr(zxingcpp, name)

    def read_barcodes(self, image, **options):
        found = list(zxingcpp.read_barcodes(image, **options))
        return found + self._extra if image.shape == (480, 640) else found


def scanner_reporting(extra: list) -> Scanner:
    scanner = Scanner("zxing")
    scanner._pipeline._z = Reporting(extra)
    return scanner


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


ODD_REPORTS = {
    "rmqr with no width": odd_symbol(version="R7x0"),
    "rmqr of no size": odd_symbol(version="R0x0"),
    "a version of 5000 digits": odd_symbol(version="9" * 5000),
    "a superscript digit": odd_symbol(version="²"),
    "extra as deep JSON text": odd_symbol(extra="[" * 100_000),
    "corners not a number": odd_symbol(corners=((float("nan"), 1.0),) * 4),
    "corners at infinity": odd_symbol(corners=((float("inf"), float("-inf")),) * 4),
    "a point": odd_symbol(corners=((320.0, 240.0),) * 4),
    "wholly right of the frame": odd_symbol(corners=((5000.0, 5000.0), (5100.0, 5000.0), (5100.0, 5100.0),
                                                     (5000.0, 5100.0))),
    "wholly left of the frame": odd_symbol(corners=((-500.0, -500.0), (-400.0, -500.0), (-400.0, -400.0),
                                                    (-500.0, -400.0))),
}


@pytest.mark.parametrize("name", ODD_REPORTS)
def test_a_code_in_view_is_read_whatever_else_the_decoder_reports(name: str, caplog) -> None:
    camera, clock = ScenarioCamera(seed=3), Clock()
    camera.show(PAYLOAD)
    reader = CodeReader(camera, scanner_reporting([ODD_REPORTS[name]]), fps=15, clock=clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            reader.step()
            clock.now += 1 / 15
    seen = reader.take_new()
    assert seen is not None and seen.payload == PAYLOAD
    assert not [r for r in caplog.records if "decoder" in r.getMessage()]  # no frame was given up


@pytest.mark.parametrize("name", ODD_REPORTS)
def test_an_odd_symbol_alone_never_stops_the_camera_thread(name: str, caplog) -> None:
    camera = ScenarioCamera(seed=4)  # nobody in front of the camera: only the odd report
    reader = CodeReader(camera, scanner_reporting([ODD_REPORTS[name]]), fps=60)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.WARNING):
        thread.start()
        while reader.frames < 20 and thread.is_alive():
            stop.wait(0.05)
        hint = reader.hint()
        stop.set()
        thread.join(10)
    assert reader.frames >= 20 and reader.fault is None
    assert hint is None or hint in HINTS
    assert not [r for r in caplog.records if "failed" in r.getMessage()]


def test_a_symbol_wholly_off_the_frame_is_not_measured_elsewhere() -> None:
    # A bright, sharp pattern away from the symbol: it must not pass for the symbol's looks.
    frame = np.zeros((480, 640), np.uint8)
    frame[:, ::2] = 255
    off = Located(((-500.0, -500.0), (-400.0, -500.0), (-400.0, -400.0), (-500.0, -400.0)), 4.0, "qr")
    looks = look_at(frame, off)
    assert looks.contrast == 0.0 and looks.sharpness == 0.0
