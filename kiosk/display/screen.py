"""The visitor's screen: pygame, one full-screen page per kiosk state.

The app says what to show with ``Screen.show(ScreenState(...))`` (cheap: it only stores the state)
and calls ``render()`` and ``pump()`` from its loop; a page is drawn again only when the state changed.
Layout is computed for the surface it draws on (designed for the 800x480 Pi touch display, scaled
for others): a header band with a drawn icon and the headline (the verdict word on PASS / REFUSE),
and a body with the details in large type. Colour is never the only signal: every page has an
icon and words.

Touch: the idle page can carry a "No phone?" button, and the family lookup's keypad and list of
names are made of buttons (keys of 2.7x2 cm on the 7-inch display, none under 9 mm). ``pump()`` collects taps (mouse
clicks and touches); the app takes them with ``taps()`` and asks ``button_at(pos)`` which button
of the page as drawn was hit.

Display modes (``screen.mode``):

- ``headless``: SDL's dummy video driver, nothing on a monitor (tests, simulation, screenshots);
- ``window``: a ``width`` x ``height`` window (development on a desktop);
- ``fullscreen``: the whole display at its own size, mouse cursor hidden, Escape ignored (the kiosk);
- ``auto``: fullscreen on a Raspberry Pi (``/proc/device-tree/model`` says so), a window when
  ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set, headless otherwise.

pygame has one display per process: open one Screen at a time, and close it before the next.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self, get_args

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

from kiosk.config import ScreenSection
from kiosk.display import texts
from kiosk.display.fonts import FontBook
from kiosk.display.texts import Language
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

Kind = Literal[
    "idle", "measuring", "hold_still", "measuring_again", "prompt_code", "prompt_wrist", "pass", "refuse", "out_of_service",
    "family_keypad", "family_searching", "family_choose", "family_message",
]
KINDS: tuple[str, ...] = get_args(Kind)

PI_MODEL_PATH = Path("/proc/device-tree/model")

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
NAVY: RGB = (14, 40, 72)
SKY: RGB = (150, 205, 255)
GREEN: RGB = (0, 122, 51)
RED: RGB = (190, 20, 20)
GREY: RGB = (44, 44, 48)
AMBER: RGB = (255, 180, 20)
INK: RGB = (20, 20, 20)
KEY: RGB = (40, 78, 128)  # keypad keys: lighter than the navy page
DIMMED: RGB = (70, 80, 96)  # a key that cannot be tapped yet
DIM_INK: RGB = (150, 160, 175)


@dataclass(frozen=True)
class ScreenState:
    """What the screen shows. ``reasons`` are kiosk.decision.Reason codes; ``holder`` is already masked."""

    kind: Kind
    temperature_c: float | None = None
    reasons: tuple[str, ...] = ()
    holder: str | None = None
    detail: str | None = None
    code_read: bool = False  # while measuring: the visitor's code has already been read
    family_button: bool = False  # idle: show the "No phone?" button (the family lookup is on)
    entry: str = ""  # family_keypad: the phone number typed so far, already masked
    entry_complete: bool = False  # family_keypad: long enough, the OK key can be tapped
    choices: tuple[str, ...] = ()  # family_choose: masked names, one button each

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown screen kind {self.kind!r}; expected one of {', '.join(KINDS)}")


def resolve_mode(
    mode: str, environ: Mapping[str, str] | None = None, model_path: Path = PI_MODEL_PATH
) -> Literal["fullscreen", "window", "headless"]:
    """Turn ``auto`` into a concrete mode (see the module docstring); other modes pass through."""
    if mode in ("fullscreen", "window", "headless"):
        return mode  # type: ignore[return-value]
    if mode != "auto":
        raise ValueError(f"screen.mode must be auto, fullscreen, window or headless, got {mode!r}")
    environ = os.environ if environ is None else environ
    try:
        if "Raspberry Pi" in model_path.read_text(encoding="utf-8", errors="replace"):
            return "fullscreen"
    except OSError:
        pass
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return "window"
    return "headless"


# ---------------------------------------------------------------- icons (drawn, so they scale)


def _round_line(surface: pygame.Surface, colour: RGB, points: list[tuple[float, float]], width: int) -> None:
    """A thick polyline with round joints and ends (pygame's thick lines have square, gappy joints)."""
    for start, end in itertools.pairwise(points):
        pygame.draw.line(surface, colour, start, end, width)
    for point in points:
        pygame.draw.circle(surface, colour, point, width / 2)


def draw_check(surface: pygame.Surface, box: pygame.Rect, colour: RGB) -> None:
    size = box.width
    pygame.draw.circle(surface, colour, box.center, size / 2, max(3, size // 16))
    points = [(box.x + size * fx, box.y + size * fy) for fx, fy in ((0.27, 0.53), (0.43, 0.69), (0.74, 0.34))]
    _round_line(surface, colour, points, max(4, size // 9))


def draw_cross(surface: pygame.Surface, box: pygame.Rect, colour: RGB) -> None:
    size = box.width
    pygame.draw.circle(surface, colour, box.center, size / 2, max(3, size // 16))
    width = max(4, size // 9)
    lo, hi = 0.31, 0.69
    _round_line(
        surface, colour, [(box.x + size * lo, box.y + size * lo), (box.x + size * hi, box.y + size * hi)], width
    )
    _round_line(
        surface, colour, [(box.x + size * hi, box.y + size * lo), (box.x + size * lo, box.y + size * hi)], width
    )


def draw_warning(surface: pygame.Surface, box: pygame.Rect, colour: RGB) -> None:
    """A warning triangle with an exclamation mark: the out-of-service sign."""
    size = box.width

    def at(fx: float, fy: float) -> tuple[float, float]:
        return (box.x + size * fx, box.y + size * fy)

    pygame.draw.polygon(surface, colour, [at(0.5, 0.05), at(0.97, 0.9), at(0.03, 0.9)])
    bar = max(4, size // 10)
    _round_line(surface, INK, [at(0.5, 0.33), at(0.5, 0.62)], bar)
    pygame.draw.circle(surface, INK, at(0.5, 0.77), bar * 0.65)


def draw_code(surface: pygame.Surface, box: pygame.Rect, colour: RGB) -> None:
    """A stylised QR code: "show your code"."""
    size = box.width
    unit = size / 9
    for fx, fy in ((0, 0), (6, 0), (0, 6)):
        outer = pygame.Rect(box.x + fx * unit, box.y + fy * unit, 3 * unit, 3 * unit)
        pygame.draw.rect(surface, colour, outer, max(2, int(unit * 0.7)))
        pygame.draw.rect(surface, colour, outer.inflate(-2 * unit, -2 * unit))
    for mx, my in ((4, 0), (4, 2), (3, 4), (5, 4), (7, 4), (4, 6), (6, 6), (8, 7), (6, 8), (4, 8), (8, 5)):
        pygame.draw.rect(surface, colour, pygame.Rect(box.x + mx * unit, box.y + my * unit, unit, unit))


def draw_thermometer(surface: pygame.Surface, box: pygame.Rect, colour: RGB) -> None:
    """A thermometer: "hold your wrist to the sensor" / "measuring"."""
    size = box.width
    line = max(3, size // 22)
    stem = pygame.Rect(box.x + size * 0.40, box.y + size * 0.04, size * 0.20, size * 0.66)
    pygame.draw.rect(surface, colour, stem, line, border_radius=int(size * 0.1))
    bulb = (box.x + size * 0.5, box.y + size * 0.78)
    pygame.draw.circle(surface, colour, bulb, size * 0.18)
    pygame.draw.rect(surface, colour, pygame.Rect(box.x + size * 0.46, box.y + size * 0.3, size * 0.08, size * 0.42))
    for k in range(4):
        y = box.y + size * (0.14 + 0.11 * k)
        pygame.draw.line(surface, colour, (box.x + size * 0.62, y), (box.x + size * 0.72, y), line)


def draw_phone(surface: pygame.Surface, box: pygame.Rect, colour: RGB) -> None:
    """A mobile phone with a keypad: the family lookup by phone number."""
    size = box.width
    line = max(3, size // 20)
    body = pygame.Rect(box.x + size * 0.25, box.y + size * 0.02, size * 0.5, size * 0.96)
    pygame.draw.rect(surface, colour, body, line, border_radius=int(size * 0.08))
    for row in range(4):
        for column in range(3):
            centre = (body.x + body.width * (0.27 + 0.23 * column), body.y + body.height * (0.3 + 0.15 * row))
            pygame.draw.circle(surface, colour, centre, max(2, size * 0.035))
    pygame.draw.line(
        surface, colour, (body.x + body.width * 0.25, body.y + body.height * 0.12),
        (body.x + body.width * 0.75, body.y + body.height * 0.12), line,
    )


ICONS = {
    "idle": draw_code,
    "measuring": draw_thermometer,
    "hold_still": draw_thermometer,
    "measuring_again": draw_thermometer,
    "prompt_code": draw_code,
    "prompt_wrist": draw_thermometer,
    "pass": draw_check,
    "refuse": draw_cross,
    "out_of_service": draw_warning,
    "family_keypad": draw_phone,
    "family_searching": draw_phone,
    "family_choose": draw_phone,
    "family_message": draw_warning,
}

# kind -> (background, headline/icon colour, body colour)
THEMES: dict[str, tuple[RGB, RGB, RGB]] = {
    "idle": (NAVY, WHITE, WHITE),
    "measuring": (NAVY, WHITE, WHITE),
    # Not settled yet / a raised reading measured again: the headline in amber asks for attention.
    "hold_still": (NAVY, AMBER, WHITE),
    "measuring_again": (NAVY, AMBER, WHITE),
    "prompt_code": (NAVY, WHITE, WHITE),
    "prompt_wrist": (NAVY, WHITE, WHITE),
    "pass": (GREEN, WHITE, WHITE),
    "refuse": (RED, WHITE, WHITE),
    "out_of_service": (GREY, AMBER, WHITE),
    "family_keypad": (NAVY, WHITE, WHITE),
    "family_searching": (NAVY, WHITE, WHITE),
    "family_choose": (NAVY, WHITE, WHITE),
    "family_message": (NAVY, AMBER, WHITE),
}

# ---------------------------------------------------------------- text layout


@dataclass(frozen=True)
class Item:
    """One paragraph: wrapped to the width, shrunk together with its block if the block overflows."""

    text: str
    size: int
    colour: RGB
    bold: bool = False
    gap: float = 0.25  # space above, in line heights


# One breakable unit: a CJK character (Chinese breaks between any two), a word, or a run of spaces.
_CJK = "\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+|\s+")
_NO_LINE_START = set("，。、：；！？）》」』,.:;!?)")


def wrap(text: str, font: pygame.font.Font, width: int) -> list[str]:
    """Greedy word wrap (per character for Chinese); punctuation never starts a line."""
    out: list[str] = []
    current = ""
    for token in _TOKEN.findall(text):
        candidate = current + token
        if not current or font.size(candidate.rstrip())[0] <= width or token[0] in _NO_LINE_START:
            current = candidate
        elif token.isspace():
            out.append(current.rstrip())
            current = ""
        else:
            out.append(current.rstrip())
            current = token
    if current.strip() or not out:
        out.append(current.strip())
    return out


# ---------------------------------------------------------------- the screen


class Screen:
    """The pygame display. Not thread-safe: call show/render/pump from one thread."""

    _CACHE_LIMIT = 512

    def __init__(self, section: ScreenSection, language: str):
        if language not in ("zh", "en", "both"):
            raise KioskError(f"kiosk.language must be zh, en or both, got {language!r}")
        self.section = section
        self.language: Language = language  # type: ignore[assignment]  # checked just above
        self.mode = resolve_mode(section.mode)
        self._state = ScreenState("idle")
        self._drawn: ScreenState | None = None
        self._taps: list[tuple[int, int]] = []
        self._buttons: dict[str, pygame.Rect] = {}  # the buttons of the page as drawn
        self._drawing: dict[str, pygame.Rect] = {}
        self._text_cache: dict[tuple[str, int, bool, RGB], pygame.Surface] = {}
        self._closed = False
        self.fonts = FontBook.for_config(section.font)
        self.surface = self._open()
        if self.language != "en" and not self.fonts.has_cjk:
            log.warning("the screen font cannot draw Chinese; Chinese lines will not be readable")
        log.info("screen open: %s %dx%d, font %s", self.mode, *self.surface.get_size(), self.fonts.path)

    def _open(self) -> pygame.Surface:
        saved = os.environ.get("SDL_VIDEODRIVER")
        if self.mode == "headless":
            os.environ["SDL_VIDEODRIVER"] = "dummy"
        if self.mode == "window":
            # The pages are blitted images: a plain software framebuffer does. On a desktop SDL
            # would otherwise load an OpenGL renderer (software GL on most PCs: ~90 MB more).
            # Full screen on the Pi (KMS/DRM) keeps SDL's default, which that driver relies on.
            os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
        try:
            pygame.display.init()
            if self.mode == "fullscreen":
                surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
                pygame.mouse.set_visible(False)
            else:
                surface = pygame.display.set_mode((self.section.width, self.section.height))
                pygame.display.set_caption("Checkpoint kiosk")
        except pygame.error as exc:
            pygame.display.quit()
            raise KioskError(f"screen: cannot open the display in {self.mode} mode: {exc}") from None
        finally:
            # SDL has read it; don't leak the dummy driver into a later Screen of another mode.
            if saved is None:
                os.environ.pop("SDL_VIDEODRIVER", None)
            else:
                os.environ["SDL_VIDEODRIVER"] = saved
        return surface

    @property
    def state(self) -> ScreenState:
        return self._state

    def show(self, state: ScreenState) -> None:
        """Set what to show; drawn by the next render()."""
        self._state = state

    def render(self) -> bool:
        """Draw the current state if it changed since the last draw; True when something was drawn."""
        if self._closed:
            raise KioskError("screen is closed")
        state = self._state
        if state == self._drawn:
            return False
        self._draw(state)
        pygame.display.flip()
        self._drawn = state
        return True

    def warm_up(self, states: Iterable[ScreenState]) -> None:
        """Draw each state once off-screen, before the first visitor.

        A page's first drawing loads its font sizes (a FreeType face each) and renders its texts;
        done here, the first visitor's verdict is drawn as fast as the fortieth's. Nothing reaches
        the display, and the buttons of the page on screen stay as they were.
        """
        display, buttons = self.surface, self._buttons
        self.surface = pygame.Surface(display.get_size())
        try:
            for state in states:
                self._draw(state)
        finally:
            self.surface, self._buttons = display, buttons

    def pump(self) -> bool:
        """Handle pending window events; False when the user asked to quit (window close, or Escape
        outside fullscreen: a kiosk cannot be stopped from a keyboard left at the gate)."""
        keep_running = True
        width, height = self.surface.get_size()
        for event in pygame.event.get():
            escape = event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE
            if event.type == pygame.QUIT or (escape and self.mode != "fullscreen"):
                keep_running = False
            elif event.type in (pygame.VIDEOEXPOSE, pygame.WINDOWEXPOSED):
                self._drawn = None
            elif event.type == pygame.FINGERDOWN:
                # Touch positions are normalised to 0..1 of the window.
                x = min(width - 1, max(0, int(event.x * width)))
                y = min(height - 1, max(0, int(event.y * height)))
                self._taps.append((x, y))
            elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and not getattr(event, "touch", False):
                # SDL also reports each touch as a mouse click marked "touch": counted once, above.
                self._taps.append((int(event.pos[0]), int(event.pos[1])))
        return keep_running

    def taps(self) -> list[tuple[int, int]]:
        """The taps (clicks and touches, in pixels) collected by pump() since the last call."""
        taps, self._taps = self._taps, []
        return taps

    def button_at(self, pos: tuple[int, int]) -> str | None:
        """The name of the button drawn at this point of the page as drawn, if any: "family", the
        keypad's "0".."9", "delete", "ok" (only while enabled) and "cancel", "member:<index>"."""
        for name, rect in self._buttons.items():
            if rect.collidepoint(pos):
                return name
        return None

    @property
    def buttons(self) -> dict[str, pygame.Rect]:
        """The buttons of the page as drawn, by name (copies)."""
        return {name: rect.copy() for name, rect in self._buttons.items()}

    def screenshot(self, path: Path | str) -> Path:
        """Save the current page as a PNG (drawing it first if needed)."""
        self.render()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.surface, str(path))
        return path

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._text_cache.clear()
            pygame.display.quit()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ drawing

    def _text(self, text: str, size: int, bold: bool, colour: RGB) -> pygame.Surface:
        key = (text, size, bold, colour)
        image = self._text_cache.get(key)
        if image is None:
            if len(self._text_cache) >= self._CACHE_LIMIT:
                self._text_cache.clear()
            image = self.fonts.get(size, bold).render(text, True, colour)
            self._text_cache[key] = image
        return image

    def format_temperature(self, celsius: float) -> str:
        """A temperature in the configured unit (``screen.temperature_unit``), one decimal."""
        if self.section.temperature_unit == "F":
            return f"{celsius * 9 / 5 + 32:.1f} °F"
        return f"{celsius:.1f} °C"

    def _pairs(self, key: str, zh_size: int, en_size: int, colour: RGB) -> list[Item]:
        """Items for a texts.LINES entry in the screen's language; in "both", each Chinese line is
        followed by its English one, a little smaller."""
        if self.language != "both":
            return [Item(line, zh_size, colour, False, 0.35) for line in texts.lines(key, self.language)]
        items: list[Item] = []
        for zh_line, en_line in zip(texts.lines(key, "zh"), texts.lines(key, "en")):
            items += [Item(zh_line, zh_size, colour, False, 0.55), Item(en_line, en_size, colour, False, 0.05)]
        return items

    def _headline(self, kind: str, colour: RGB, verdict: bool) -> list[Item]:
        # Synthetic bold only on the huge verdict words: at smaller sizes it smudges Chinese strokes.
        big, small = (104, 60) if verdict else (56, 38)
        words = texts.title(kind, self.language)
        if self.language == "both":
            return [Item(words[0], big, colour, verdict, 0), Item(words[1], small, colour, verdict, 0.05)]
        size = big if self.language == "zh" or not verdict else 92
        return [Item(words[0], size, colour, verdict, 0)]

    def _body(self, state: ScreenState, colour: RGB) -> list[Item]:
        kind = state.kind
        temperature = (
            [Item(self.format_temperature(state.temperature_c), 64 if kind == "pass" else 52, colour, True, 0)]
            if state.temperature_c is not None
            else []
        )
        if kind == "pass":
            holder = [Item(state.holder, 48, colour, False, 0.3)] if state.holder else []
            return temperature + holder + self._pairs("pass", 40, 30, colour)
        if kind == "refuse":
            items = list(temperature)
            for reason in state.reasons or ("refuse",):
                try:
                    items += self._pairs(str(reason), 42, 32, colour)
                except KeyError:
                    log.error("no screen text for reason %r", reason)
                    items.append(Item(str(reason), 42, colour, False, 0.5))
            return items
        if kind == "family_message":
            return self._pairs(state.reasons[0] if state.reasons else kind, 42, 32, colour)
        if kind == "out_of_service":
            detail = [Item(state.detail, 32, colour, False, 0)] if state.detail else []
            return detail + self._pairs("out_of_service", 44, 34, colour)
        if kind == "prompt_code":
            return temperature + self._pairs(kind, 38, 30, colour)
        if kind == "measuring" and state.code_read:
            return self._pairs("code_read", 40, 30, colour) + self._pairs(kind, 40, 30, colour)
        return self._pairs(kind, 40, 30, colour)

    _SHRINKS = tuple(round(1.0 - 0.05 * i, 2) for i in range(14))  # 1.0 down to 0.35

    def _layout(self, items: list[Item], width: int, scale: float) -> tuple[list[tuple[str, int, Item, int]], int]:
        """Wrapped lines as (text, font size, item, gap above) and their total height; nothing drawn yet."""
        out: list[tuple[str, int, Item, int]] = []
        total = 0
        for item in items:
            size = max(12, round(item.size * scale))
            font = self.fonts.get(size, item.bold)
            for i, line in enumerate(wrap(item.text, font, width)):
                gap = round(font.get_linesize() * item.gap) if i == 0 else 0
                out.append((line, size, item, gap))
                total += gap + font.get_linesize()
        return out, total

    def _fit(
        self, items: list[Item], width: int, height: int, scale: float
    ) -> tuple[list[tuple[pygame.Surface, int]], float]:
        """Wrap the items to the width, shrinking them together (largest size that fits, found by
        bisection) until they fit the height. Returns (image, gap above) per line, and the shrink
        factor used; at the smallest size, lines that still do not fit are clipped."""
        low, high = 0, len(self._SHRINKS) - 1
        best = high
        while low <= high:
            middle = (low + high) // 2
            if self._layout(items, width, scale * self._SHRINKS[middle])[1] <= height:
                best, high = middle, middle - 1
            else:
                low = middle + 1
        lines, _ = self._layout(items, width, scale * self._SHRINKS[best])
        images = [(self._text(text, size, item.bold, item.colour), gap) for text, size, item, gap in lines]
        return images, self._SHRINKS[best]

    def _blit_block(self, lines: list[tuple[pygame.Surface, int]], area: pygame.Rect, centre_vertically: bool) -> None:
        total = sum(image.get_height() + gap for image, gap in lines)
        y = area.y + max(0, (area.height - total) // 2) if centre_vertically else area.y
        previous_clip = self.surface.get_clip()
        self.surface.set_clip(area)
        for image, gap in lines:
            y += gap
            self.surface.blit(image, (area.x, y))
            y += image.get_height()
        self.surface.set_clip(previous_clip)

    def _blit_centred(self, lines: list[tuple[pygame.Surface, int]], area: pygame.Rect) -> None:
        """Each line centred across the area, the block centred in its height."""
        total = sum(image.get_height() + gap for image, gap in lines)
        y = area.y + max(0, (area.height - total) // 2)
        previous_clip = self.surface.get_clip()
        self.surface.set_clip(area)
        for image, gap in lines:
            y += gap
            self.surface.blit(image, (area.centerx - image.get_width() // 2, y))
            y += image.get_height()
        self.surface.set_clip(previous_clip)

    def _button(
        self, name: str | None, rect: pygame.Rect, words: list[str], fill: RGB, ink: RGB, size: int, scale: float,
        border: RGB | None = None,
    ) -> None:
        """A rounded button with its words centred (a second line a little smaller, e.g. the English
        under the Chinese). Only a named button can be hit (``button_at``)."""
        radius = max(6, round(14 * scale))
        pygame.draw.rect(self.surface, fill, rect, border_radius=radius)
        if border is not None:
            pygame.draw.rect(self.surface, border, rect, max(2, round(3 * scale)), border_radius=radius)
        items = [Item(words[0], size, ink, False, 0)]
        items += [Item(word, round(size * 0.68), ink, False, 0.02) for word in words[1:]]
        pad = round(10 * scale)
        area = rect.inflate(-2 * pad, -2 * pad)
        lines, _ = self._fit(items, area.width, area.height, scale)
        self._blit_centred(lines, area)
        if name is not None:
            self._drawing[name] = pygame.Rect(rect)

    def _draw(self, state: ScreenState) -> None:
        self._drawing = {}
        if state.kind == "family_keypad":
            self._draw_keypad(state)
        elif state.kind == "family_choose":
            self._draw_choose(state)
        else:
            self._draw_page(state)
        self._buttons = self._drawing

    def _draw_keypad(self, state: ScreenState) -> None:
        """Left: what to do, the number typed so far (masked), Cancel. Right: 1-9, Delete, 0, OK."""
        width, height = self.surface.get_size()
        scale = min(width / 800, height / 480)
        margin, gap = round(16 * scale), round(10 * scale)
        self.surface.fill(NAVY)

        grid = pygame.Rect(0, margin, round(456 * scale), height - 2 * margin)
        grid.right = width - margin
        key_w, key_h = (grid.width - 2 * gap) / 3, (grid.height - 3 * gap) / 4
        keys = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "delete", "0", "ok")
        for index, key in enumerate(keys):
            row, column = divmod(index, 3)
            rect = pygame.Rect(
                round(grid.x + column * (key_w + gap)), round(grid.y + row * (key_h + gap)), round(key_w), round(key_h)
            )
            if key.isdigit():
                self._button(key, rect, [key], KEY, WHITE, 60, scale, border=SKY)
            elif key == "delete":
                self._button(key, rect, texts.label(key, self.language), KEY, WHITE, 36, scale, border=SKY)
            elif state.entry_complete:
                words = texts.label(key, self.language)
                words[0] = "✓ " + words[0]  # enabled: a tick, not only the green
                self._button(key, rect, words, GREEN, WHITE, 40, scale, border=WHITE)
            else:  # not enough digits yet: drawn dimmed, and not a button
                self._button(None, rect, texts.label(key, self.language), DIMMED, DIM_INK, 40, scale)

        left = pygame.Rect(margin, margin, grid.x - 2 * margin, height - 2 * margin)
        cancel = pygame.Rect(left.x, 0, left.width, round(92 * scale))
        cancel.bottom = left.bottom
        self._button("cancel", cancel, texts.label("cancel", self.language), GREY, WHITE, 38, scale, border=WHITE)

        title_area = pygame.Rect(left.x, left.y, left.width, round(112 * scale))
        title, _ = self._fit(self._headline("family_keypad", WHITE, False), title_area.width, title_area.height, scale)
        self._blit_block(title, title_area, centre_vertically=True)

        box = pygame.Rect(left.x, title_area.bottom + gap, left.width, round(84 * scale))
        pygame.draw.rect(self.surface, WHITE, box, border_radius=round(10 * scale))
        if state.entry:
            text_area = box.inflate(-round(16 * scale), -round(12 * scale))
            entry, _ = self._fit([Item(state.entry, 46, NAVY, False, 0)], text_area.width, text_area.height, scale)
            self._blit_centred(entry, text_area)

        hint_area = pygame.Rect(left.x, box.bottom + gap, left.width, cancel.y - gap - box.bottom - gap)
        hint, _ = self._fit(self._pairs("family_keypad", 27, 22, SKY), hint_area.width, hint_area.height, scale)
        self._blit_block(hint, hint_area, centre_vertically=False)

    def _draw_choose(self, state: ScreenState) -> None:
        """A header (icon, "choose your name"), one big button per masked name, Cancel at the bottom."""
        width, height = self.surface.get_size()
        scale = min(width / 800, height / 480)
        margin, gap = round(16 * scale), round(12 * scale)
        self.surface.fill(NAVY)

        header_height = round(118 * scale)
        icon = pygame.Rect(margin, margin, header_height - 2 * margin, header_height - 2 * margin)
        draw_phone(self.surface, icon, WHITE)
        head_area = pygame.Rect(icon.right + round(24 * scale), margin // 2, 0, header_height - margin)
        head_area.width = width - margin - head_area.x
        head, _ = self._fit(self._headline("family_choose", WHITE, False), head_area.width, head_area.height, scale)
        self._blit_block(head, head_area, centre_vertically=True)
        rule_y = header_height + round(4 * scale)
        pygame.draw.line(self.surface, WHITE, (margin, rule_y), (width - margin, rule_y), max(2, round(3 * scale)))

        cancel = pygame.Rect(margin, 0, round(250 * scale), round(80 * scale))
        cancel.bottom = height - margin
        self._button("cancel", cancel, texts.label("cancel", self.language), GREY, WHITE, 36, scale, border=WHITE)
        # What happens next, beside Cancel.
        next_area = pygame.Rect(cancel.right + round(24 * scale), cancel.y, 0, cancel.height)
        next_area.width = width - margin - next_area.x
        after, _ = self._fit(self._pairs("family_choose", 28, 22, SKY), next_area.width, next_area.height, scale)
        self._blit_block(after, next_area, centre_vertically=True)

        area = pygame.Rect(margin, rule_y + gap, width - 2 * margin, 0)
        area.height = cancel.y - gap - area.y
        count = len(state.choices)
        columns = 1 if count <= 3 else 2
        rows = max(1, -(-count // columns))
        button_h = min(round(104 * scale), (area.height - (rows - 1) * gap) // rows)
        button_w = min(round(520 * scale), (area.width - (columns - 1) * gap) // columns)
        left = area.centerx - (columns * button_w + (columns - 1) * gap) // 2
        for index, holder in enumerate(state.choices):
            row, column = divmod(index, columns)
            rect = pygame.Rect(left + column * (button_w + gap), area.y + row * (button_h + gap), button_w, button_h)
            self._button(f"member:{index}", rect, [holder], WHITE, NAVY, 52, scale, border=SKY)

    def _draw_page(self, state: ScreenState) -> None:
        background, accent, body_colour = THEMES[state.kind]
        width, height = self.surface.get_size()
        scale = min(width / 800, height / 480)
        margin = round(24 * scale)
        verdict = state.kind in ("pass", "refuse", "out_of_service")
        body_items = self._body(state, body_colour)

        # A long list of reasons gets a lower header rather than tiny body text.
        for header in (1.0, 0.72):
            header_height = round(200 * scale * header)
            rule_y = header_height + round(10 * scale)
            body_area = pygame.Rect(margin, rule_y + round(12 * scale), width - 2 * margin, 0)
            body_area.height = height - margin // 2 - body_area.y
            body, shrink = self._fit(body_items, body_area.width, body_area.height, scale)
            if shrink >= 0.75:
                break

        self.surface.fill(background)
        icon_size = round(160 * scale * header)
        icon = pygame.Rect(
            margin + round(8 * scale), (header_height - icon_size) // 2 + margin // 2, icon_size, icon_size
        )
        ICONS[state.kind](self.surface, icon, accent)

        head_area = pygame.Rect(icon.right + round(36 * scale), margin // 2, 0, header_height - margin // 2)
        head_area.width = width - margin - head_area.x
        family = None
        if state.kind == "idle" and state.family_button:
            # Top right, beside the headline: where a visitor without a phone looks for another way.
            family = pygame.Rect(0, 0, round(236 * scale), round(136 * scale))
            family.topright = (width - margin, (header_height - family.height) // 2 + margin // 4)
            head_area.width = family.x - round(20 * scale) - head_area.x
        title: str = state.kind
        if state.kind == "family_message" and state.reasons and str(state.reasons[0]) in texts.TITLES:
            title = str(state.reasons[0])
        head, _ = self._fit(self._headline(title, accent, verdict), head_area.width, head_area.height, scale * header)
        self._blit_block(head, head_area, centre_vertically=True)
        if family is not None:
            self._button("family", family, texts.label("family", self.language), WHITE, NAVY, 40, scale, border=AMBER)

        pygame.draw.line(self.surface, accent, (margin, rule_y), (width - margin, rule_y), max(2, round(3 * scale)))
        self._blit_block(body, body_area, centre_vertically=False)
