"""One Page per screen kind, the state module without pygame, and the large-text setting: bigger
words on every page, and every page still fits the 800x480 and the 480x320 display."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys

import numpy as np
import pygame
import pytest

from kiosk.config import ScreenSection
from kiosk.decision import Reason
from kiosk.display import texts
from kiosk.display.pages import KINDS, PAGES
from kiosk.display.screen import ICON_DRAWERS, Screen
from kiosk.display.state import ScreenState


def test_every_kind_has_one_page_an_icon_and_words():
    assert tuple(PAGES) == KINDS
    for kind, page in PAGES.items():
        assert page.icon in ICON_DRAWERS, kind
        assert texts.title(kind, "zh") and texts.title(kind, "en"), kind
        assert len(texts.lines(kind, "zh")) == len(texts.lines(kind, "en")), kind


@pytest.mark.slow
def test_the_screen_state_needs_no_display():
    # The app's state machine names pages without loading pygame (or SDL).
    code = "import sys, kiosk.display.state, kiosk.display.pages; print('pygame' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- large text

# Each kind as the kiosk shows it, the camera view included where the page has one.
ORDINARY = {
    "idle": ScreenState("idle", family_button=True),
    "measuring": ScreenState("measuring", progress=0.4),
    "measuring-code_read": ScreenState("measuring", code_read=True, progress=0.4),
    "hold_still": ScreenState("hold_still", progress=0.6),
    "measuring_again": ScreenState("measuring_again", progress=0.2),
    "prompt_code": ScreenState("prompt_code", temperature_c=36.5),
    "prompt_wrist": ScreenState("prompt_wrist", code_read=True),
    "pass": ScreenState("pass", temperature_c=36.6, holder="张*明"),
    "refuse": ScreenState("refuse", temperature_c=38.2, reasons=(Reason.FEVER,)),
    "out_of_service": ScreenState("out_of_service", detail="thermometer: no thermometer answers at I2C address 0x5A"),
    "family_keypad": ScreenState("family_keypad", entry="•38 00"),
    "family_searching": ScreenState("family_searching"),
    "family_choose": ScreenState("family_choose", choices=("张*英", "王*宝")),
    "family_message": ScreenState("family_message", reasons=("family_unknown",)),
}
# Pages already full at the normal size: large text must still fit (it cannot grow much).
CROWDED = {
    "idle-hint": ScreenState("idle", family_button=True, hint="closer"),
    "measuring-hint": ScreenState("measuring", progress=0.4, hint="wrist_closer"),
    "prompt_code-hint": ScreenState("prompt_code", temperature_c=36.5, hint="brighter"),
    "prompt_wrist-hint": ScreenState("prompt_wrist", code_read=True, hint="wrist_closer"),
    "refuse-three": ScreenState("refuse", temperature_c=35.1,
                                reasons=(Reason.REMEASURE, Reason.YELLOW_CODE, Reason.STALE_CODE)),
    "family_choose-eight": ScreenState("family_choose", choices=tuple(f"{name}*" for name in "赵钱孙李周吴郑王")),
    "family_keypad-complete": ScreenState("family_keypad", entry="••• •••• 8001", entry_complete=True),
}
SIZES = [(800, 480), (480, 320)]


def test_every_kind_is_drawn_at_both_text_sizes():
    assert {state.kind for state in ORDINARY.values()} == set(KINDS)
LANGUAGES = ["both", "zh", "en"]


def frame() -> np.ndarray:
    return np.full((240, 320), 120, np.uint8)


def drawn(size: tuple[int, int], language: str, text_size: str, states: dict[str, ScreenState]):
    """Per page: its text lines, the screen's viewfinder, progress bar and buttons, and the image."""
    out = {}
    section = ScreenSection(mode="headless", width=size[0], height=size[1], text_size=text_size)
    with Screen(section, language, preview=frame) as screen:
        for name, state in states.items():
            screen.show(state)
            screen.render()
            out[name] = (screen.text_lines, screen.viewfinder, screen.progress_bar, screen.buttons,
                         pygame.surfarray.array3d(screen.surface).astype(int))
    return out


def words_height(lines) -> float:
    """The mean height of the body's lines (what the page says under its headline)."""
    return statistics.mean(line.rect.height for line in lines if line.role == "body")


def assert_fits(name: str, lines, view, bar, buttons, image) -> None:
    """Every line whole, on the screen and in its area (nothing clipped), and no line on another,
    on the viewfinder or the bar, or on a button it is not the label of."""
    width, height = image.shape[:2]
    screen = pygame.Rect(0, 0, width, height)
    for line in lines:
        assert screen.contains(line.area) and line.area.contains(line.rect), f"{name}: {line} clipped"
        # Drawn, not only laid out: the line's box holds ink that differs from the page.
        box = image[line.rect.left:line.rect.right, line.rect.top:line.rect.bottom]
        assert (np.abs(box - box[0, 0]).sum(axis=2) > 60).any(), f"{name}: {line} has no ink"
    for a, b in itertools.combinations(lines, 2):
        assert not a.rect.colliderect(b.rect), f"{name}: {a} overlaps {b}"
    for line in lines:
        for rect in (view, bar):
            assert rect is None or not line.rect.colliderect(rect), f"{name}: {line} over {rect}"
        if line.role != "button":
            for button, rect in buttons.items():
                assert not line.rect.colliderect(rect), f"{name}: {line} over the {button} button"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("pages, least_ratio", [(ORDINARY, 1.1), (CROWDED, 0.9)], ids=["ordinary", "crowded"])
def test_large_text_is_larger_and_everything_still_fits(monkeypatch, size, language, pages, least_ratio):
    """Larger on every ordinary page; pages already full at the normal size (the same ladder of font
    sizes) at least not smaller. Nothing clipped or overlapping either way."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    normal = drawn(size, language, "normal", pages)
    large = drawn(size, language, "large", pages)
    for name in pages:
        assert_fits(name, *normal[name])
        assert_fits(name, *large[name])
        ratio = words_height(large[name][0]) / words_height(normal[name][0])
        assert ratio > least_ratio, f"{name}: large text {ratio:.2f}x the normal size"
