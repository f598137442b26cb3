"""The visitor's screen: pygame, one full-screen page per kiosk state.

The app says what to show with ``Screen.show(ScreenState(...))`` (cheap: it only stores the state)
and calls ``render()`` and ``pump()`` from its loop; a page is drawn again only when the state changed.
What each kind of page looks like (icon, colours, body) is its ``Page`` in kiosk.display.pages; the
words are in kiosk.display.texts; this module draws any Page. Layout is computed for the surface
it draws on (designed for the 800x480 Pi touch display, scaled for others): a header band with a
drawn icon and the headline (the verdict word on PASS / REFUSE), and a body with the details in
large type (``screen.text_size = "large"``: larger still). Colour is never the only signal: every
page has an icon and words.

While a visitor is being served, the measuring pages can show a bar that fills as the reading
settles (``ScreenState.progress``), and the idle, measuring and prompt pages a line on what helps
(``ScreenState.hint``).

Viewfinder: given a preview source (``Screen(..., preview=source)`` or ``set_preview(source)``: a
callable returning the camera's latest low-resolution greyscale frame, a 2-D uint8 array or an
object with it as ``.image`` (kiosk.sensors.reader.Preview, whose ``taken_at`` tells frames apart) or
``.frame``, or None), the idle, measuring and "show your code" pages show the live view, mirrored
like a selfie view, in a framed box with a target to aim the code at, until the visitor's code is
read. A new frame (a later ``taken_at``, or else a new array) is drawn into the box only, by
``render()`` and by ``pump()``; it is never kept beyond the next one, stored or logged, and
``screenshot()`` leaves it out. ``screen.viewfinder =
false``, or no frame yet, draws the pages without the box.

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

import dataclasses
import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

from kiosk.config import ScreenSection
from kiosk.display import texts
from kiosk.display.fonts import FontBook
from kiosk.display.pages import AMBER, BLACK, BUTTON_STYLES, HINT_INK, INK, NAVY, PAGES, RGB, SKY, WHITE, ButtonStyle, Page
from kiosk.display.state import ScreenState
from kiosk.display.texts import Language
from kiosk.errors import DisplayError, SettingError
from kiosk.printable import printable

log = logging.getLogger(__name__)

PI_MODEL_PATH = Path("/proc/device-tree/model")

# What a preview source returns: a 2-D uint8 greyscale frame, an object with one as ``.image`` or
# ``.frame``, or None.
PreviewSource = Callable[[], object]

# "large" text: body sizes x this (shrunk again only where a page would not fit otherwise).
LARGE_TEXT = 1.3
_GREY_PALETTE = [(level, level, level) for level in range(256)]


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


# A Page names its icon; these draw them.
ICON_DRAWERS: dict[str, Callable[[pygame.Surface, pygame.Rect, RGB], None]] = {
    "code": draw_code,
    "thermometer": draw_thermometer,
    "check": draw_check,
    "cross": draw_cross,
    "warning": draw_warning,
    "phone": draw_phone,
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


@dataclass(frozen=True)
class TextLine:
    """One line of text as drawn: where it is, and the area it was laid out in (it is clipped to that)."""

    role: Literal["headline", "body", "button", "entry"]
    rect: pygame.Rect
    area: pygame.Rect


def _frame_identity(value: object, array: np.ndarray) -> object:
    """What tells one camera frame from the next: the time it was taken, when the preview says so
    (each call may hand out a new view of the same frame), else the array that owns its pixels."""
    taken_at = getattr(value, "taken_at", None)
    if isinstance(taken_at, (int, float)):
        return float(taken_at)
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return owner


# ---------------------------------------------------------------- the screen


class Screen:
    """The pygame display. Not thread-safe: call show/render/pump from one thread (the preview
    source is called from that thread too)."""

    _CACHE_LIMIT = 512

    def __init__(self, section: ScreenSection, language: str, preview: PreviewSource | None = None):
        if language not in ("zh", "en", "both"):
            raise SettingError(f"kiosk.language must be zh, en or both, got {language!r}")
        self.section = section
        self.language: Language = language  # type: ignore[assignment]  # checked just above
        self.mode = resolve_mode(section.mode)
        self._text_scale = LARGE_TEXT if section.text_size == "large" else 1.0
        self._state = ScreenState("idle")
        self._drawn: tuple[ScreenState, bool] | None = None  # (state, with the viewfinder) as on the display
        self._taps: list[tuple[int, int]] = []
        self._buttons: dict[str, pygame.Rect] = {}  # the buttons of the page as drawn
        self._drawing: dict[str, pygame.Rect] = {}
        self._lines: list[TextLine] = []  # the text lines of the page as drawn
        self._text_cache: dict[tuple[str, int, bool, RGB], pygame.Surface] = {}
        self._preview: PreviewSource | None = None
        self._frame: object = None  # what tells the frame in the viewfinder from the next (_frame_identity)
        self._frame_array: np.ndarray | None = None
        self._preview_problem_logged = False
        self._view: pygame.Rect | None = None  # the viewfinder box of the page as drawn
        self._bar: pygame.Rect | None = None  # the progress bar of the page as drawn
        self._bar_colours: tuple[RGB, RGB] = (NAVY, WHITE)
        self._closed = False
        self.fonts = FontBook.for_config(section.font)
        self.surface = self._open()
        self.set_preview(preview)
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
            raise DisplayError(f"screen: cannot open the display in {self.mode} mode: {exc}") from None
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

    def set_preview(self, source: PreviewSource | None) -> None:
        """Where the viewfinder's frames come from (see the module docstring); None: no viewfinder.
        Ignored while ``screen.viewfinder`` is false."""
        self._preview = source if self.section.viewfinder else None
        self._forget_frame()

    def render(self) -> bool:
        """Draw the current state if it changed since the last draw, and a new camera frame into the
        viewfinder; True when something was drawn."""
        if self._closed:
            raise DisplayError("screen is closed")
        return self._update(self._state)

    def _update(self, state: ScreenState) -> bool:
        wants_view = self._wants_view(state)
        new_frame = self._poll_frame() if wants_view else False
        if not wants_view:
            self._forget_frame()  # no frame of one visitor waits, unseen, for the next page with a viewfinder
        with_view = wants_view and self._frame_array is not None
        if (state, with_view) == self._drawn:
            if new_frame and self._view is not None:
                self._draw_view()
                pygame.display.update(self._view)
                return True
            return False
        if self._only_progress_changed(state, with_view):
            assert self._bar is not None  # _only_progress_changed checked it
            self._draw_bar(state.progress)
            changed = [pygame.Rect(self._bar)]
            if new_frame and self._view is not None:
                self._draw_view()
                changed.append(self._view)
            pygame.display.update(changed)
        else:
            self._draw(state, with_view)
            pygame.display.flip()
        self._drawn = (state, with_view)
        return True

    def _wants_view(self, state: ScreenState) -> bool:
        return self._preview is not None and PAGES[state.kind].viewfinder and not state.code_read

    def _only_progress_changed(self, state: ScreenState, with_view: bool) -> bool:
        """The page on the display differs from this state in its progress bar alone: only the
        bar is drawn again (progress changes many times a second while a reading settles)."""
        if self._drawn is None or self._bar is None or state.progress is None:
            return False
        drawn, drawn_view = self._drawn
        return (
            drawn_view == with_view and drawn.progress is not None
            and dataclasses.replace(drawn, progress=None) == dataclasses.replace(state, progress=None)
        )

    def _poll_frame(self) -> bool:
        """Ask the preview source for its frame; True when it is a new one."""
        assert self._preview is not None
        try:
            value = self._preview()
            frame = value
            for name in ("image", "frame"):  # the camera's Preview, or any object carrying the array
                frame = getattr(frame, name, frame)
            if frame is None:
                return False
            array = np.asarray(frame)  # a ragged list raises ValueError here
        except Exception:  # a broken preview must never take the visitor's page with it
            self._log_preview_problem("the camera preview failed", exc_info=True)
            return False
        if array.ndim != 2 or array.dtype != np.uint8 or 0 in array.shape:
            self._log_preview_problem(f"the camera preview is not a 2-D uint8 frame ({array.dtype} {array.shape})")
            return False
        identity = _frame_identity(value, array)
        if identity is self._frame or (isinstance(identity, float) and identity == self._frame):
            return False
        self._frame, self._frame_array = identity, array
        return True

    def _forget_frame(self) -> None:
        self._frame = self._frame_array = None

    def _log_preview_problem(self, message: str, exc_info: bool = False) -> None:
        if not self._preview_problem_logged:  # once: the loop asks many times a second
            self._preview_problem_logged = True
            log.warning("%s; the viewfinder is left out", message, exc_info=exc_info)

    def warm_up(self, states: Iterable[ScreenState]) -> None:
        """Draw each state once off-screen, before the first visitor.

        A page's first drawing loads its font sizes (a FreeType face each) and renders its texts;
        done here, the first visitor's verdict is drawn as fast as the fortieth's. Pages that can
        show the viewfinder are drawn with and without it (their text is set narrower beside it).
        Nothing reaches the display, and the buttons of the page on screen stay as they were.
        """
        display, buttons, lines, view, bar = self.surface, self._buttons, self._lines, self._view, self._bar
        frame, array = self._frame, self._frame_array
        self.surface = pygame.Surface(display.get_size())
        self._frame = self._frame_array = None  # the box is drawn empty: no camera frame off-screen
        try:
            for state in states:
                self._draw(state, False)
                if self._wants_view(state):
                    self._draw(state, True)
        finally:
            self.surface, self._buttons, self._lines, self._view, self._bar = display, buttons, lines, view, bar
            self._frame, self._frame_array = frame, array

    def pump(self) -> bool:
        """Handle pending window events, and draw a new camera frame into the viewfinder; False
        when the user asked to quit (window close, or Escape outside fullscreen: a kiosk cannot be
        stopped from a keyboard left at the gate)."""
        keep_running, exposed = True, False
        width, height = self.surface.get_size()
        for event in pygame.event.get():
            escape = event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE
            if event.type == pygame.QUIT or (escape and self.mode != "fullscreen"):
                keep_running = False
            elif event.type in (pygame.VIDEOEXPOSE, pygame.WINDOWEXPOSED):
                exposed = True
            elif event.type == pygame.FINGERDOWN:
                # Touch positions are normalised to 0..1 of the window.
                x = min(width - 1, max(0, int(event.x * width)))
                y = min(height - 1, max(0, int(event.y * height)))
                self._taps.append((x, y))
            elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and not getattr(event, "touch", False):
                # SDL also reports each touch as a mouse click marked "touch": counted once, above.
                self._taps.append((int(event.pos[0]), int(event.pos[1])))
        if exposed and self._drawn is not None:
            # The window was uncovered: its pixels are gone, draw the page again now.
            state, self._drawn = self._drawn[0], None
            self._update(state)
        elif self._drawn is not None and self._preview is not None:
            # The app's loop pumps at screen.fps: that keeps the live view moving between page changes.
            self._update(self._drawn[0])
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

    @property
    def text_lines(self) -> list[TextLine]:
        """Every line of text of the page as drawn: its rectangle and the area it had to fit in."""
        return [TextLine(line.role, line.rect.copy(), line.area.copy()) for line in self._lines]

    @property
    def viewfinder(self) -> pygame.Rect | None:
        """The viewfinder's box on the page as drawn (None: the page shows none)."""
        return self._view.copy() if self._view is not None else None

    @property
    def progress_bar(self) -> pygame.Rect | None:
        """The progress bar on the page as drawn (None: the page shows none)."""
        return self._bar.copy() if self._bar is not None else None

    def screenshot(self, path: Path | str, camera: bool = False) -> Path:
        """Save the current page as a PNG (drawing it first if needed). The viewfinder is saved
        empty, its target only: a camera frame is never stored, unless ``camera`` asks for it (the
        README's pictures, of the simulated camera)."""
        self.render()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image = self.surface
        if self._view is not None and not camera:
            image, array = self.surface.copy(), self._frame_array
            display, self.surface, self._frame_array = self.surface, image, None
            try:
                self._draw_view()
            finally:
                self.surface, self._frame_array = display, array
        pygame.image.save(image, str(path))
        return path

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._text_cache.clear()
            self._forget_frame()
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
            font = self.fonts.get(size, bold)
            try:
                image = font.render(text, True, colour)
            except (pygame.error, ValueError):  # a server's name: a NUL, or nothing but zero-width characters
                try:
                    image = font.render(printable(text), True, colour)
                except (pygame.error, ValueError):
                    image = font.render("", True, colour)
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

    def _reason_lines(self, reason: str, size: int, en_size: int, colour: RGB) -> list[Item]:
        try:
            return self._pairs(reason, size, en_size, colour)
        except KeyError:
            log.error("no screen text for reason %r", reason)
            return [Item(reason, size, colour, False, 0.5)]

    def _headline(self, kind: str, colour: RGB, verdict: bool) -> list[Item]:
        # Synthetic bold only on the huge verdict words: at smaller sizes it smudges Chinese strokes.
        big, small = (104, 60) if verdict else (56, 38)
        words = texts.title(kind, self.language)
        if self.language == "both":
            return [Item(words[0], big, colour, verdict, 0), Item(words[1], small, colour, verdict, 0.05)]
        size = big if self.language == "zh" or not verdict else 92
        return [Item(words[0], size, colour, verdict, 0)]

    def _body(self, state: ScreenState, page: Page) -> list[Item]:
        """The page's body parts (pages.Part) filled from the state, the hint first; at the text size."""
        items: list[Item] = []
        colour = page.ink
        if page.hints and state.hint is not None:
            items += self._pairs(f"hint_{state.hint}", 40, 30, HINT_INK)
        for part in page.body:
            en_size = part.en_size or part.size
            if part.what == "temperature" and state.temperature_c is not None:
                items.append(Item(self.format_temperature(state.temperature_c), part.size, colour, True, 0))
            elif part.what == "holder" and state.holder:
                items.append(Item(state.holder, part.size, colour, False, 0.3))
            elif part.what == "detail" and state.detail:
                items.append(Item(state.detail, part.size, colour, False, 0))
            elif part.what == "code_read" and state.code_read:
                items += self._pairs("code_read", part.size, en_size, colour)
            elif part.what == "lines":
                items += self._pairs(state.kind, part.size, en_size, colour)
            elif part.what == "reasons":
                for reason in state.reasons or (state.kind,):
                    items += self._reason_lines(str(reason), part.size, en_size, colour)
            elif part.what == "message":
                key = str(state.reasons[0]) if state.reasons else state.kind
                items += self._reason_lines(key, part.size, en_size, colour)
        if self._text_scale != 1.0:
            items = [dataclasses.replace(item, size=round(item.size * self._text_scale)) for item in items]
        return items

    _SHRINKS = tuple(round(1.0 - 0.05 * i, 2) for i in range(16))  # 1.0 down to 0.25

    def _layout(
        self, items: list[Item], width: int, scale: float
    ) -> tuple[list[tuple[str, int, Item, int]], int, int]:
        """Wrapped lines as (text, font size, item, gap above), their total height and the widest
        line's width (wider than ``width`` when a word or a word and its punctuation cannot be
        broken); nothing drawn yet."""
        out: list[tuple[str, int, Item, int]] = []
        total = widest = 0
        for item in items:
            size = max(12, round(item.size * scale))
            font = self.fonts.get(size, item.bold)
            for i, line in enumerate(wrap(item.text, font, width)):
                gap = round(font.get_linesize() * item.gap) if i == 0 else 0
                out.append((line, size, item, gap))
                # The rendered line's own size: what the drawing advances by (a pixel more than
                # the font's line size for some sizes, which adds up over a long body).
                line_width, line_height = font.size(line)
                total += gap + line_height
                widest = max(widest, line_width)
        return out, total, widest

    def _fit(
        self, items: list[Item], width: int, height: int, scale: float, unwrapped: bool = False
    ) -> tuple[list[tuple[pygame.Surface, int]], float]:
        """Wrap the items to the width, shrinking them together (largest size that fits, found by
        bisection) until they fit the height and the width (``unwrapped``: and each item fits on one line, for
        headlines, where a word broken across lines reads worse than a smaller one). Returns
        (image, gap above) per line, and the shrink factor used; at the smallest size, lines that
        still do not fit are clipped."""
        low, high = 0, len(self._SHRINKS) - 1
        best, lines = high, None
        while low <= high:
            middle = (low + high) // 2
            laid, total, widest = self._layout(items, width, scale * self._SHRINKS[middle])
            if total <= height and widest <= width and (not unwrapped or len(laid) == len(items)):
                best, lines, high = middle, laid, middle - 1
            else:
                low = middle + 1
        if lines is None:  # nothing fits: the smallest size, clipped
            lines = self._layout(items, width, scale * self._SHRINKS[best])[0]
        images = [(self._text(text, size, item.bold, item.colour), gap) for text, size, item, gap in lines]
        return images, self._SHRINKS[best]

    def _blit_lines(
        self, lines: list[tuple[pygame.Surface, int]], area: pygame.Rect, centre_lines: bool, centre_block: bool,
        role: Literal["headline", "body", "button", "entry"],
    ) -> None:
        total = sum(image.get_height() + gap for image, gap in lines)
        y = area.y + max(0, (area.height - total) // 2) if centre_block else area.y
        previous_clip = self.surface.get_clip()
        self.surface.set_clip(area)
        for image, gap in lines:
            y += gap
            x = area.centerx - image.get_width() // 2 if centre_lines else area.x
            self.surface.blit(image, (x, y))
            self._lines.append(TextLine(role, pygame.Rect((x, y), image.get_size()), pygame.Rect(area)))
            y += image.get_height()
        self.surface.set_clip(previous_clip)

    def _blit_block(
        self, lines: list[tuple[pygame.Surface, int]], area: pygame.Rect, centre_vertically: bool,
        role: Literal["headline", "body"] = "body",
    ) -> None:
        self._blit_lines(lines, area, False, centre_vertically, role)

    def _blit_centred(
        self, lines: list[tuple[pygame.Surface, int]], area: pygame.Rect, role: Literal["button", "entry"] = "button"
    ) -> None:
        """Each line centred across the area, the block centred in its height."""
        self._blit_lines(lines, area, True, True, role)

    def _button(
        self, name: str | None, rect: pygame.Rect, words: list[str], style: ButtonStyle, size: int, scale: float,
    ) -> None:
        """A rounded button with its words centred (a second line a little smaller, e.g. the English
        under the Chinese). Only a named button can be hit (``button_at``)."""
        radius = max(6, round(14 * scale))
        pygame.draw.rect(self.surface, style.fill, rect, border_radius=radius)
        if style.border is not None:
            pygame.draw.rect(self.surface, style.border, rect, max(2, round(3 * scale)), border_radius=radius)
        size = round(size * self._text_scale)
        items = [Item(words[0], size, style.ink, False, 0)]
        items += [Item(word, round(size * 0.68), style.ink, False, 0.02) for word in words[1:]]
        pad = round(10 * scale)
        area = rect.inflate(-2 * pad, -2 * pad)
        lines, _ = self._fit(items, area.width, area.height, scale)
        self._blit_centred(lines, area)
        if name is not None:
            self._drawing[name] = pygame.Rect(rect)

    def _draw(self, state: ScreenState, with_view: bool) -> None:
        self._drawing, self._lines, self._view, self._bar = {}, [], None, None
        page = PAGES[state.kind]
        if page.layout == "keypad":
            self._draw_keypad(state, page)
        elif page.layout == "choose":
            self._draw_choose(state, page)
        else:
            self._draw_page(state, page, with_view)
        self._buttons = self._drawing

    def _draw_keypad(self, state: ScreenState, page: Page) -> None:
        """Left: what to do, the number typed so far (masked), Cancel. Right: 1-9, Delete, 0, OK."""
        width, height = self.surface.get_size()
        scale = min(width / 800, height / 480)
        margin, gap = round(16 * scale), round(10 * scale)
        self.surface.fill(page.background)

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
                self._button(key, rect, [key], BUTTON_STYLES["key"], 60, scale)
            elif key == "delete":
                self._button(key, rect, texts.label(key, self.language), BUTTON_STYLES["key"], 36, scale)
            elif state.entry_complete:
                words = texts.label(key, self.language)
                words[0] = "✓ " + words[0]  # enabled: a tick, not only the green
                self._button(key, rect, words, BUTTON_STYLES["ok"], 40, scale)
            else:  # not enough digits yet: drawn dimmed, and not a button
                self._button(None, rect, texts.label(key, self.language), BUTTON_STYLES["ok_dimmed"], 40, scale)

        left = pygame.Rect(margin, margin, grid.x - 2 * margin, height - 2 * margin)
        cancel = pygame.Rect(left.x, 0, left.width, round(92 * scale))
        cancel.bottom = left.bottom
        self._button("cancel", cancel, texts.label("cancel", self.language), BUTTON_STYLES["cancel"], 38, scale)

        title_area = pygame.Rect(left.x, left.y, left.width, round(112 * scale))
        title, _ = self._fit(
            self._headline(state.kind, page.accent, False), title_area.width, title_area.height, scale, unwrapped=True
        )
        self._blit_block(title, title_area, centre_vertically=True, role="headline")

        box = pygame.Rect(left.x, title_area.bottom + gap, left.width, round(84 * scale))
        entry_style = BUTTON_STYLES["entry"]
        pygame.draw.rect(self.surface, entry_style.fill, box, border_radius=round(10 * scale))
        if state.entry:
            text_area = box.inflate(-round(16 * scale), -round(12 * scale))
            entry, _ = self._fit(
                [Item(state.entry, round(46 * self._text_scale), entry_style.ink, False, 0)],
                text_area.width, text_area.height, scale,
            )
            self._blit_centred(entry, text_area, role="entry")

        hint_area = pygame.Rect(left.x, box.bottom + gap, left.width, cancel.y - gap - box.bottom - gap)
        hint, _ = self._fit(self._body(state, page), hint_area.width, hint_area.height, scale)
        self._blit_block(hint, hint_area, centre_vertically=False)

    def _draw_choose(self, state: ScreenState, page: Page) -> None:
        """A header (icon, "choose your name"), one big button per masked name, Cancel at the bottom."""
        width, height = self.surface.get_size()
        scale = min(width / 800, height / 480)
        margin, gap = round(16 * scale), round(12 * scale)
        self.surface.fill(page.background)

        header_height = round(118 * scale)
        icon = pygame.Rect(margin, margin, header_height - 2 * margin, header_height - 2 * margin)
        ICON_DRAWERS[page.icon](self.surface, icon, page.accent)
        head_area = pygame.Rect(icon.right + round(24 * scale), margin // 2, 0, header_height - margin)
        head_area.width = width - margin - head_area.x
        head, _ = self._fit(
            self._headline(state.kind, page.accent, False), head_area.width, head_area.height, scale, unwrapped=True
        )
        self._blit_block(head, head_area, centre_vertically=True, role="headline")
        rule_y = header_height + round(4 * scale)
        pygame.draw.line(self.surface, page.accent, (margin, rule_y), (width - margin, rule_y), max(2, round(3 * scale)))

        # Large text: a taller row for Cancel and the words beside it.
        cancel = pygame.Rect(margin, 0, round(250 * scale), round(80 * scale * self._text_scale))
        cancel.bottom = height - margin
        self._button("cancel", cancel, texts.label("cancel", self.language), BUTTON_STYLES["cancel"], 36, scale)
        # What happens next, beside Cancel.
        next_area = pygame.Rect(cancel.right + round(24 * scale), cancel.y, 0, cancel.height)
        next_area.width = width - margin - next_area.x
        after, _ = self._fit(self._body(state, page), next_area.width, next_area.height, scale)
        self._blit_block(after, next_area, centre_vertically=True)

        area = pygame.Rect(margin, rule_y + gap, width - 2 * margin, 0)
        area.height = cancel.y - gap - area.y
        count = len(state.choices)
        columns = 1 if count <= 3 else 2 if count <= 6 else 3  # rows of buttons no lower than a fingertip
        rows = max(1, -(-count // columns))
        button_h = min(round(104 * scale), (area.height - (rows - 1) * gap) // rows)
        button_w = min(round(520 * scale), (area.width - (columns - 1) * gap) // columns)
        left = area.centerx - (columns * button_w + (columns - 1) * gap) // 2
        for index, holder in enumerate(state.choices):
            row, column = divmod(index, columns)
            rect = pygame.Rect(left + column * (button_w + gap), area.y + row * (button_h + gap), button_w, button_h)
            self._button(f"member:{index}", rect, [holder], BUTTON_STYLES["member"], 52, scale)

    def _draw_page(self, state: ScreenState, page: Page, with_view: bool) -> None:
        width, height = self.surface.get_size()
        scale = min(width / 800, height / 480)
        margin = round(24 * scale)
        body_items = self._body(state, page)
        with_bar = page.progress and state.progress is not None

        # A long body gets a lower header rather than small text. Where the headline is not the
        # verdict word it fits the lower header at full size and only the icon pays, so the header
        # is lowered as soon as the body would shrink at all; the huge verdict word and the
        # viewfinder are kept at their size unless the body would shrink a lot.
        if page.verdict or with_view:
            enough = 0.75 if self._text_scale == 1.0 else 0.9
        else:
            enough = 1.0
        # Large text may take a little more of the header's height still.
        for header in (1.0, 0.72) if self._text_scale == 1.0 else (1.0, 0.72, 0.62):
            header_height = round(200 * scale * header)
            rule_y = header_height + round(10 * scale)
            text_area = pygame.Rect(margin, rule_y + round(12 * scale), width - 2 * margin, 0)
            text_area.height = height - margin // 2 - text_area.y
            bar = None
            if with_bar:
                bar = pygame.Rect(text_area.x, 0, text_area.width, max(10, round(28 * scale)))
                bar.bottom = text_area.bottom - round(6 * scale)
                text_area.height = bar.y - round(12 * scale) - text_area.y
            body, shrink = self._fit(body_items, text_area.width, text_area.height, scale)
            if shrink >= enough:
                break

        self.surface.fill(page.background)
        icon_size = round(160 * scale * header)
        icon = pygame.Rect(
            margin + round(8 * scale), (header_height - icon_size) // 2 + margin // 2, icon_size, icon_size
        )
        view = None
        if with_view:
            # The live view takes the icon's place (4:3, like the camera's low-resolution stream):
            # the body keeps the whole width for its words.
            view = pygame.Rect(margin, icon.y, round(icon_size * 4 / 3), icon_size)
            icon = view
        else:
            ICON_DRAWERS[page.icon](self.surface, icon, page.accent)

        head_area = pygame.Rect(icon.right + round((24 if with_view else 36) * scale), margin // 2, 0, 0)
        head_area.size = (width - margin - head_area.x, header_height - margin // 2)
        family = None
        if state.family_button:
            # Top right, beside the headline: where a visitor without a phone looks for another way.
            family = pygame.Rect(0, 0, round(236 * scale), round(136 * scale))
            family.topright = (width - margin, (header_height - family.height) // 2 + margin // 4)
            head_area.width = family.x - round(20 * scale) - head_area.x
        title: str = state.kind
        if page.title_from_reason and state.reasons and str(state.reasons[0]) in texts.TITLES:
            title = str(state.reasons[0])
        head, _ = self._fit(
            self._headline(title, page.accent, page.verdict), head_area.width, head_area.height, scale, unwrapped=True
        )
        self._blit_block(head, head_area, centre_vertically=True, role="headline")
        if family is not None:
            self._button("family", family, texts.label("family", self.language), BUTTON_STYLES["family"], 40, scale)

        pygame.draw.line(self.surface, page.accent, (margin, rule_y), (width - margin, rule_y), max(2, round(3 * scale)))
        self._blit_block(body, text_area, centre_vertically=False)
        if bar is not None:
            self._bar, self._bar_colours = bar, (page.background, page.accent)
            self._draw_bar(state.progress)
        if view is not None:
            self._view = view
            self._draw_view()

    def _draw_bar(self, progress: float | None) -> None:
        """The progress bar: an outline that fills from the left as the reading settles."""
        if self._bar is None:
            return
        background, colour = self._bar_colours
        bar = self._bar
        value = 0.0 if progress is None or not progress >= 0 else min(1.0, float(progress))  # NaN: empty
        radius = bar.height // 2
        line = max(2, bar.height // 8)
        pygame.draw.rect(self.surface, background, bar)
        pygame.draw.rect(self.surface, colour, bar, line, border_radius=radius)
        inner = bar.inflate(-4 * line, -4 * line)
        filled = round(inner.width * value)
        if filled > 0:
            pygame.draw.rect(self.surface, colour, (inner.x, inner.y, filled, inner.height),
                             border_radius=inner.height // 2)

    def _draw_view(self) -> None:
        """The viewfinder box: the latest frame (mirrored, scaled to fit), a target to aim the code
        at, a frame around it. One conversion per new frame, no per-pixel work in Python."""
        if self._view is None:
            return
        box = self._view
        scale = min(self.surface.get_width() / 800, self.surface.get_height() / 480)
        line = max(2, round(3 * scale))
        pygame.draw.rect(self.surface, BLACK, box)
        inner = box.inflate(-2 * line, -2 * line)
        picture = pygame.Rect(inner)
        array = self._frame_array
        if array is not None:
            rows, columns = array.shape
            fit = min(inner.width / columns, inner.height / rows)
            picture.size = (max(1, round(columns * fit)), max(1, round(rows * fit)))
            picture.center = inner.center
            # An 8-bit surface over the array's own bytes, a grey palette: no copy until the scale.
            image = pygame.image.frombuffer(np.ascontiguousarray(array).data.cast("B"), (columns, rows), "P")
            image.set_palette(_GREY_PALETTE)
            image = pygame.transform.flip(pygame.transform.scale(image, picture.size), True, False)
            self.surface.blit(image, picture)
        # The target: corner marks of a centred square, where the code reads best.
        side = round(min(picture.width, picture.height) * 0.62)
        target = pygame.Rect(0, 0, side, side)
        target.center = picture.center
        arm, width = round(side * 0.24), max(3, round(5 * scale))
        for corner, dx, dy in ((target.topleft, 1, 1), (target.topright, -1, 1),
                               (target.bottomleft, 1, -1), (target.bottomright, -1, -1)):
            x, y = corner[0] - (dx < 0), corner[1] - (dy < 0)
            pygame.draw.line(self.surface, AMBER, (x, y), (x + dx * arm, y), width)
            pygame.draw.line(self.surface, AMBER, (x, y), (x, y + dy * arm), width)
        pygame.draw.rect(self.surface, SKY, box, line)
