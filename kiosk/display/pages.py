"""One ``Page`` per screen kind: its icon, its colours, how its headline is set and what its body says.

Plain data (no pygame), so the state module and the app can import the kinds without a display.
``kiosk.display.screen`` draws any Page from this table; the words themselves live in
``kiosk.display.texts`` (the headline ``TITLES[kind]``, the lines ``LINES[kind]``).

A new screen kind is its name in ``Kind`` and its entry in ``PAGES`` below, and its words in
texts.py: nothing else in the display code changes (docs/how-to-add.md).

Every text colour here is checked against its background for WCAG contrast (tests/test_contrast.py):
at least 7:1, the level for body text read by people with low vision, from a metre away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

RGB = tuple[int, int, int]

# ---------------------------------------------------------------- the palette

WHITE: RGB = (255, 255, 255)
NAVY: RGB = (14, 40, 72)
SKY: RGB = (150, 205, 255)
# The verdict greens and reds are darker than signal colours usually are: white words on them
# must reach 7:1 (the brighter (0, 122, 51) and (190, 20, 20) reached only 5.5 and 6.4).
GREEN: RGB = (0, 100, 40)
RED: RGB = (170, 16, 16)
GREY: RGB = (44, 44, 48)
AMBER: RGB = (255, 180, 20)
INK: RGB = (20, 20, 20)
KEY: RGB = (40, 78, 128)  # keypad keys: lighter than the navy page
DIMMED: RGB = (62, 72, 88)  # a key that cannot be tapped yet
DIM_INK: RGB = (190, 198, 210)  # its words: clearly greyed, still readable
BLACK: RGB = (0, 0, 0)

HINT_INK: RGB = AMBER  # "what helps" lines stand out from the page's white lines

# ---------------------------------------------------------------- the kinds

Kind = Literal[
    "idle", "measuring", "hold_still", "measuring_again", "prompt_code", "prompt_wrist", "pass", "refuse",
    "out_of_service", "family_keypad", "family_searching", "family_choose", "family_message",
]
KINDS: tuple[str, ...] = get_args(Kind)

Icon = Literal["code", "thermometer", "check", "cross", "warning", "phone"]
# "page": header (icon, headline) over the body; "keypad" and "choose": the family lookup's touch pages.
Layout = Literal["page", "keypad", "choose"]
# What a body part shows, from the ScreenState:
#   temperature  the temperature, bold (when the state has one)
#   holder       the masked name (when there is one)
#   detail       the state's detail line (out of service: what failed)
#   code_read    "Code read" (when the state says the code was read)
#   lines        the kind's own lines, texts.LINES[kind]
#   reasons      each reason's lines (the kind's own lines when there is none)
#   message      the first reason's lines (the kind's own lines when there is none)
What = Literal["temperature", "holder", "detail", "code_read", "lines", "reasons", "message"]


@dataclass(frozen=True)
class Part:
    """One part of a page's body. Sizes are pixels on the 800x480 display; ``en_size`` is the size
    of the English line under each Chinese one when the screen shows both languages."""

    what: What
    size: int
    en_size: int = 0


@dataclass(frozen=True)
class Page:
    icon: Icon
    background: RGB
    accent: RGB  # icon, headline and the rule under the header
    body: tuple[Part, ...]
    ink: RGB = WHITE  # body text
    verdict: bool = False  # the headline is the huge verdict word
    layout: Layout = "page"
    title_from_reason: bool = False  # the headline is the first reason's TITLES entry, if it has one
    viewfinder: bool = False  # the camera's live view, while the visitor's code is still to be read
    progress: bool = False  # a bar that fills as the reading settles (ScreenState.progress)
    hints: bool = False  # a line on what helps (ScreenState.hint)

    def text_colours(self) -> dict[str, RGB]:
        """Every colour words are drawn in on this page's background, by role."""
        colours = {"headline": self.accent, "body": self.ink}
        if self.hints:
            colours["hint"] = HINT_INK
        return colours


_LINES = (Part("lines", 40, 30),)

PAGES: dict[Kind, Page] = {
    "idle": Page("code", NAVY, WHITE, _LINES, viewfinder=True, hints=True),
    "measuring": Page("thermometer", NAVY, WHITE, (Part("code_read", 40, 30), *_LINES),
                      viewfinder=True, progress=True, hints=True),
    # Not settled yet / a raised reading measured again: the headline in amber asks for attention.
    "hold_still": Page("thermometer", NAVY, AMBER, _LINES, viewfinder=True, progress=True, hints=True),
    "measuring_again": Page("thermometer", NAVY, AMBER, _LINES, viewfinder=True, progress=True, hints=True),
    "prompt_code": Page("code", NAVY, WHITE, (Part("temperature", 52), Part("lines", 38, 30)),
                        viewfinder=True, hints=True),
    "prompt_wrist": Page("thermometer", NAVY, WHITE, _LINES, hints=True),
    "pass": Page("check", GREEN, WHITE, (Part("temperature", 64), Part("holder", 48), *_LINES), verdict=True),
    "refuse": Page("cross", RED, WHITE, (Part("temperature", 52), Part("reasons", 42, 32)), verdict=True),
    "out_of_service": Page("warning", GREY, AMBER, (Part("detail", 32), Part("lines", 44, 34)), verdict=True),
    "family_keypad": Page("phone", NAVY, WHITE, (Part("lines", 27, 22),), ink=SKY, layout="keypad"),
    "family_searching": Page("phone", NAVY, WHITE, _LINES),
    "family_choose": Page("phone", NAVY, WHITE, (Part("lines", 28, 22),), ink=SKY, layout="choose"),
    "family_message": Page("warning", NAVY, AMBER, (Part("message", 42, 32),), title_from_reason=True),
}


@dataclass(frozen=True)
class ButtonStyle:
    fill: RGB
    ink: RGB
    border: RGB | None = None


BUTTON_STYLES: dict[str, ButtonStyle] = {
    "family": ButtonStyle(WHITE, NAVY, AMBER),  # "No phone?" on the idle page
    "key": ButtonStyle(KEY, WHITE, SKY),  # keypad digits and Delete
    "ok": ButtonStyle(GREEN, WHITE, WHITE),
    "ok_dimmed": ButtonStyle(DIMMED, DIM_INK),  # not enough digits yet (WCAG exempts it; kept readable)
    "cancel": ButtonStyle(GREY, WHITE, WHITE),
    "member": ButtonStyle(WHITE, NAVY, SKY),  # a name to choose
    "entry": ButtonStyle(WHITE, NAVY),  # the box showing the typed number (not a button)
}
