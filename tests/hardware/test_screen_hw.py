"""On the Pi: the kiosk's screen full screen through KMS/DRM, as the service draws it, and a tap on
"No phone?" read from the touchscreen.

Someone at the device taps the button when the test asks (within KIOSK_TAP_TIMEOUT seconds, 60 by
default). Run it with the service stopped: the service holds the display.
"""

import os
import time
from pathlib import Path

import pygame
import pytest

from kiosk.config import ScreenSection
from kiosk.display.screen import Screen
from kiosk.display.state import ScreenState

TAP_TIMEOUT_S = float(os.environ.get("KIOSK_TAP_TIMEOUT", "60"))


def connected_display_sizes() -> list[tuple[int, int]]:
    """The preferred mode of each display connected to a KMS card, as the kernel reports it (sysfs,
    not SDL): the Touch Display on DSI, a monitor on HDMI."""
    sizes = []
    for connector in sorted(Path("/sys/class/drm").glob("card*-*")):
        try:
            if (connector / "status").read_text().strip() != "connected":
                continue
            modes = (connector / "modes").read_text().split()
        except OSError:
            continue
        if modes:
            width, height = modes[0].split("x")
            sizes.append((int(width), int("".join(c for c in height if c.isdigit()))))
    return sizes


@pytest.fixture
def kms_screen(monkeypatch):
    # The service's own setting (kiosk.service: Environment=SDL_VIDEODRIVER=kmsdrm).
    monkeypatch.setenv("SDL_VIDEODRIVER", "kmsdrm")
    screen = Screen(ScreenSection(mode="fullscreen"), "both")
    try:
        yield screen
    finally:
        screen.close()


def test_full_screen_through_kms_drm_and_a_tap_on_no_phone(kms_screen, capsys):
    screen = kms_screen
    assert pygame.display.get_driver() == "kmsdrm"
    displays = connected_display_sizes()
    assert displays, "no display connected to a KMS card: is dtoverlay=vc4-kms-v3d in /boot/firmware/config.txt?"
    assert screen.surface.get_size() in displays, (
        f"the screen opened at {screen.surface.get_size()}, the display's own size is one of {displays}"
    )

    screen.show(ScreenState("idle", family_button=True))
    assert screen.render()
    button = screen.buttons["family"]
    assert screen.surface.get_rect().contains(button)

    with capsys.disabled():
        print(f'\n>>> Tap "No phone?" on the kiosk\'s screen (within {TAP_TIMEOUT_S:.0f} s)', flush=True)
    elsewhere: list[tuple[int, int]] = []
    hit = None
    deadline = time.monotonic() + TAP_TIMEOUT_S
    while hit is None and time.monotonic() < deadline:
        screen.pump()
        for pos in screen.taps():
            if screen.button_at(pos) == "family":
                hit = pos
                break
            elsewhere.append(pos)
        time.sleep(0.02)
    if hit is None and elsewhere:
        pytest.fail(f'no tap on "No phone?" ({button}) within {TAP_TIMEOUT_S:.0f} s, taps elsewhere at {elsewhere}: '
                    "is the touch panel rotated or scaled differently from the display?")
    assert hit is not None, (
        f'no tap at all within {TAP_TIMEOUT_S:.0f} s: is the touch panel connected (ls /dev/input/by-path) '
        "and the service stopped?"
    )
