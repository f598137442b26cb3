"""Readable by everyone: every colour words are drawn in has at least WCAG's 7:1 contrast (level AAA
for body text) against what it is drawn on, computed from the screen's own palette; and the pages
as drawn really use those colours."""

from __future__ import annotations

import numpy as np
import pygame
import pytest

from kiosk.display.pages import BUTTON_STYLES, PAGES, RGB
from kiosk.display.state import ScreenState

BODY_TEXT = 7.0  # WCAG 2 success criterion 1.4.6 (AAA), normal-size text
INACTIVE = 4.5  # a key that cannot be tapped yet: WCAG exempts it; it must still be legible


def relative_luminance(colour: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 for black, 1 for white)."""
    linear = []
    for channel in colour:
        c = channel / 255
        linear.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = linear
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_formula_gives_the_known_values():
    assert contrast((255, 255, 255), (0, 0, 0)) == pytest.approx(21.0)
    assert contrast((119, 119, 119), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)  # the famous #777
    assert contrast((0, 0, 255), (0, 0, 255)) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", list(PAGES))
def test_every_page_s_words_stand_out_from_its_background(kind):
    page = PAGES[kind]
    ratios = {role: contrast(colour, page.background) for role, colour in page.text_colours().items()}
    assert ratios, kind
    for role, ratio in ratios.items():
        assert ratio >= BODY_TEXT, f"{kind} {role}: {ratio:.2f}:1"


@pytest.mark.parametrize("name", list(BUTTON_STYLES))
def test_every_button_s_words_stand_out_from_its_fill(name):
    style = BUTTON_STYLES[name]
    least = INACTIVE if name == "ok_dimmed" else BODY_TEXT
    assert contrast(style.ink, style.fill) >= least, f"{name}: {contrast(style.ink, style.fill):.2f}:1"


def test_a_dimmed_key_still_looks_dimmed():
    # Legible, but clearly not the same as a key that can be tapped.
    dimmed, key = BUTTON_STYLES["ok_dimmed"], BUTTON_STYLES["key"]
    assert contrast(dimmed.ink, dimmed.fill) < contrast(key.ink, key.fill)


STATES = {
    "idle": ScreenState("idle", hint="closer"),
    "measuring": ScreenState("measuring", hint="wrist_closer", progress=0.5),
    "hold_still": ScreenState("hold_still", hint="hold_still"),
    "measuring_again": ScreenState("measuring_again", hint="wrist_closer"),
    "prompt_code": ScreenState("prompt_code", temperature_c=36.5, hint="brighter"),
    "prompt_wrist": ScreenState("prompt_wrist", hint="wrist_closer"),
    "pass": ScreenState("pass", temperature_c=36.5),
    "refuse": ScreenState("refuse", reasons=("fever",)),
    "out_of_service": ScreenState("out_of_service"),
    "family_keypad": ScreenState("family_keypad"),
    "family_searching": ScreenState("family_searching"),
    "family_choose": ScreenState("family_choose", choices=("张*",)),
    "family_message": ScreenState("family_message", reasons=("family_unknown",)),
}


def test_every_kind_is_checked_as_drawn():
    assert set(STATES) == set(PAGES)


@pytest.mark.parametrize("kind", list(STATES))
def test_pages_are_drawn_in_the_checked_colours(screen, kind):
    """The ratios above are only worth something if the pixels are those colours: the page's
    background is its Page's, and each text colour of the Page is on screen, inside the lines."""
    screen.show(STATES[kind])
    screen.render()
    image = pygame.surfarray.array3d(screen.surface).astype(int)
    page = PAGES[kind]
    assert tuple(image[2, 2]) == page.background  # a corner, away from any drawing
    lines = [line for line in screen.text_lines if line.role in ("headline", "body")]
    for role, colour in page.text_colours().items():
        inside = np.zeros(image.shape[:2], bool)
        for line in lines:
            rect = line.rect.clip(line.area)
            inside[rect.left:rect.right, rect.top:rect.bottom] = True
        exact = (image == np.array(colour)).all(axis=2) & inside
        assert exact.sum() > 50, f"{kind}: no {role} text drawn in {colour}"
