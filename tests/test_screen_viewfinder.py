"""The camera's live view on the screen, the progress bar and the hints (real pygame, SDL dummy
driver), checked in the pixels a visitor would see."""

from __future__ import annotations

import logging

import numpy as np
import pygame
import pytest

from kiosk.config import ScreenSection
from kiosk.display import texts
from kiosk.display.pages import AMBER, HINT_INK, PAGES, WHITE
from kiosk.display.screen import Screen
from kiosk.display.state import ScreenState
from kiosk.display.state import HINTS


@pytest.fixture
def open_screen(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    opened: list[Screen] = []

    def _open(language: str = "both", preview=None, **section) -> Screen:
        screen = Screen(ScreenSection(**{"mode": "headless", **section}), language, preview=preview)
        opened.append(screen)
        return screen

    yield _open
    for screen in opened:
        screen.close()


def grab(screen: Screen) -> np.ndarray:
    return pygame.surfarray.array3d(screen.surface).astype(int)  # (x, y, rgb)


def draw(screen: Screen, state: ScreenState) -> np.ndarray:
    screen.show(state)
    screen.render()
    return grab(screen)


def pattern(block: tuple[slice, slice] = (slice(20, 100), slice(20, 120))) -> np.ndarray:
    """A dark 320x240 camera frame with a bright block (rows, columns)."""
    frame = np.full((240, 320), 20, np.uint8)
    frame[block] = 230
    return frame


def region(box: pygame.Rect, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
    """A part of the box, in fractions of its width and height."""
    return (slice(box.x + round(box.width * x0), box.x + round(box.width * x1)),
            slice(box.y + round(box.height * y0), box.y + round(box.height * y1)))


class Frames:
    """A preview source: returns whatever frame it holds now (as the camera's latest)."""

    def __init__(self, frame: np.ndarray | None):
        self.frame = frame
        self.calls = 0

    def __call__(self) -> np.ndarray | None:
        self.calls += 1
        return self.frame


# ---------------------------------------------------------------- the viewfinder


def test_the_camera_frame_shows_in_the_viewfinder_mirrored(open_screen):
    screen = open_screen(preview=Frames(pattern()))
    image = draw(screen, ScreenState("idle", family_button=True))
    box = screen.viewfinder
    assert box is not None and screen.surface.get_rect().contains(box)
    # The block sits top left in the frame; the visitor sees it top right, as in a mirror.
    bright = image[region(box, 0.78, 0.9, 0.12, 0.35)]
    dark = image[region(box, 0.1, 0.22, 0.12, 0.35)]
    assert (bright == bright[..., :1]).all() and (dark == dark[..., :1]).all(), "grey, as the camera saw it"
    assert abs(bright.mean() - 230) < 6 and abs(dark.mean() - 20) < 6
    # The page's words are still there, beside it.
    assert any(line.role == "body" for line in screen.text_lines)
    assert not any(line.rect.colliderect(box) for line in screen.text_lines)


def test_the_target_box_is_drawn_over_the_view(open_screen):
    screen = open_screen(preview=Frames(np.full((240, 320), 128, np.uint8)))
    image = draw(screen, ScreenState("idle"))
    box = screen.viewfinder
    amber = (image == np.array(AMBER)).all(axis=2)
    inside = amber[box.left:box.right, box.top:box.bottom]
    assert inside.sum() > 100
    # Corner marks in each quarter of the view, and the middle left clear for the code.
    for x0, y0 in ((0, 0), (0.5, 0), (0, 0.5), (0.5, 0.5)):
        quarter = region(box, x0, x0 + 0.5, y0, y0 + 0.5)
        assert amber[quarter].sum() > 20, (x0, y0)
    assert amber[region(box, 0.4, 0.6, 0.4, 0.6)].sum() == 0
    assert amber.sum() == inside.sum(), "the target is only in the viewfinder"


def test_a_new_frame_is_drawn_by_pump_without_a_new_state(open_screen):
    frames = Frames(pattern())
    screen = open_screen(preview=frames)
    draw(screen, ScreenState("idle"))
    box = screen.viewfinder
    top_right = region(box, 0.78, 0.9, 0.12, 0.35)
    assert grab(screen)[top_right].mean() > 200
    frames.frame = pattern((slice(140, 220), slice(20, 120)))  # the block moved down
    assert screen.pump() is True
    moved = grab(screen)
    assert moved[top_right].mean() < 40
    assert moved[region(box, 0.78, 0.9, 0.65, 0.88)].mean() > 200
    assert screen.render() is False, "the same frame object is not drawn twice"


def test_frames_of_another_size_fit_the_box(open_screen):
    screen = open_screen(preview=Frames(np.full((480, 640), 200, np.uint8)))
    image = draw(screen, ScreenState("measuring"))
    box = screen.viewfinder
    assert box is not None
    assert abs(image[region(box, 0.05, 0.2, 0.05, 0.15)].mean() - 200) < 6


@pytest.mark.parametrize("setup", ["viewfinder off", "no frame yet", "no source"])
def test_without_a_view_the_page_looks_as_before(open_screen, setup):
    plain = open_screen()
    expected = draw(plain, ScreenState("idle", family_button=True))
    plain.close()
    if setup == "viewfinder off":
        screen = open_screen(preview=Frames(pattern()), viewfinder=False)
    elif setup == "no frame yet":
        screen = open_screen(preview=Frames(None))
    else:
        screen = open_screen()
    image = draw(screen, ScreenState("idle", family_button=True))
    assert screen.viewfinder is None
    assert np.array_equal(image, expected)
    screen.pump()
    assert np.array_equal(grab(screen), expected)


def test_the_view_goes_once_the_code_is_read_and_on_verdicts(open_screen):
    screen = open_screen(preview=Frames(pattern()))
    for state in (ScreenState("measuring", code_read=True), ScreenState("prompt_wrist"),
                  ScreenState("pass", temperature_c=36.5), ScreenState("refuse", reasons=("fever",))):
        draw(screen, state)
        assert screen.viewfinder is None, state.kind
    for kind in ("idle", "measuring", "hold_still", "measuring_again"):
        draw(screen, ScreenState(kind))  # type: ignore[arg-type]
        assert screen.viewfinder is not None, kind
    draw(screen, ScreenState("prompt_code", temperature_c=36.5))
    assert screen.viewfinder is not None


def test_a_visitor_s_frame_is_not_shown_again_after_the_verdict(open_screen):
    frames = Frames(pattern())
    screen = open_screen(preview=frames)
    draw(screen, ScreenState("idle"))
    assert screen.viewfinder is not None
    draw(screen, ScreenState("pass", temperature_c=36.5))
    frames.frame = None  # the camera has nothing newer
    draw(screen, ScreenState("idle"))
    assert screen.viewfinder is None


def test_a_broken_preview_leaves_the_page_alone(open_screen, caplog):
    def broken():
        raise RuntimeError("camera gone")

    for source in (broken, Frames(np.zeros((240, 320, 3), np.uint8)), Frames(np.zeros((240, 320), np.float32)),
                   Frames([[1, 2], [3]])):  # ragged: not an image at all
        screen = open_screen(preview=source)
        with caplog.at_level(logging.WARNING, logger="kiosk.display.screen"):
            draw(screen, ScreenState("idle"))
            screen.pump()
            screen.pump()
        assert screen.viewfinder is None
        assert len([r for r in caplog.records if "viewfinder" in r.getMessage()]) == 1
        caplog.clear()
        screen.close()


def test_an_object_with_a_frame_is_a_preview_too(open_screen):
    class Preview:
        def __init__(self, frame):
            self.frame = frame

    screen = open_screen(preview=lambda: Preview(pattern()))
    image = draw(screen, ScreenState("idle"))
    assert image[region(screen.viewfinder, 0.78, 0.9, 0.12, 0.35)].mean() > 200


def test_the_camera_s_preview_is_drawn_once_per_frame(open_screen):
    # The camera thread hands out a new read-only view of its latest frame at each call: the
    # time the frame was taken, not the view object, tells a new frame.
    from kiosk.sensors.reader import Preview

    camera = {"frame": pattern(), "taken_at": 10.0}

    def preview():
        view = camera["frame"].view()
        view.flags.writeable = False
        return Preview(view, camera["taken_at"], 0.01)

    screen = open_screen(preview=preview)
    image = draw(screen, ScreenState("measuring"))
    box = screen.viewfinder
    assert image[region(box, 0.78, 0.9, 0.12, 0.35)].mean() > 200
    assert screen.render() is False and screen.render() is False
    camera["frame"], camera["taken_at"] = pattern((slice(140, 220), slice(20, 120))), 10.07
    assert screen.render() is True
    assert grab(screen)[region(box, 0.78, 0.9, 0.65, 0.88)].mean() > 200


def test_set_preview_turns_the_view_on_and_off(open_screen):
    screen = open_screen()
    draw(screen, ScreenState("idle"))
    assert screen.viewfinder is None
    screen.set_preview(Frames(pattern()))
    screen.pump()
    assert screen.viewfinder is not None
    screen.set_preview(None)
    screen.pump()
    draw(screen, ScreenState("measuring"))
    assert screen.viewfinder is None


def test_screenshots_leave_the_camera_frame_out(open_screen, tmp_path):
    screen = open_screen(preview=Frames(pattern()))
    on_screen = draw(screen, ScreenState("idle"))
    box = screen.viewfinder
    saved = pygame.surfarray.array3d(pygame.image.load(str(screen.screenshot(tmp_path / "idle.png")))).astype(int)
    assert on_screen[region(box, 0.78, 0.9, 0.12, 0.35)].mean() > 200
    assert saved[region(box, 0.78, 0.9, 0.12, 0.35)].max() < 60, "the visitor's frame was saved"
    assert (saved == np.array(AMBER)).all(axis=2).sum() > 100, "the target still shows where the view is"
    outside = np.ones(saved.shape[:2], bool)
    outside[box.left:box.right, box.top:box.bottom] = False
    assert np.array_equal(saved[outside], on_screen[outside])
    assert np.array_equal(grab(screen), on_screen), "the display keeps its view"
    with_camera = screen.screenshot(tmp_path / "idle-camera.png", camera=True)
    assert np.array_equal(pygame.surfarray.array3d(pygame.image.load(str(with_camera))).astype(int), on_screen)


def test_warm_up_with_a_view_leaves_the_display_alone(open_screen):
    screen = open_screen(preview=Frames(pattern()))
    before = draw(screen, ScreenState("idle", family_button=True))
    view, buttons = screen.viewfinder, screen.buttons
    screen.warm_up([ScreenState("measuring", progress=0.5), ScreenState("prompt_code", temperature_c=36.6)])
    assert np.array_equal(grab(screen), before)
    assert screen.viewfinder == view and screen.buttons == buttons


# ---------------------------------------------------------------- the progress bar


def filled_width(image: np.ndarray, bar: pygame.Rect, colour) -> int:
    row = image[bar.left:bar.right, bar.centery]
    return int((row == np.array(colour)).all(axis=1).sum())


def test_the_progress_bar_fills_as_the_reading_settles(open_screen):
    screen = open_screen()
    widths = []
    for progress in (0.0, 0.25, 0.75, 1.0):
        image = draw(screen, ScreenState("measuring", progress=progress))
        bar = screen.progress_bar
        assert bar is not None and screen.surface.get_rect().contains(bar)
        widths.append(filled_width(image, bar, WHITE))
    inner = screen.progress_bar.width
    assert widths == sorted(widths) and widths[0] < 0.05 * inner and widths[-1] > 0.9 * inner
    assert (widths[2] - widths[0]) == pytest.approx(3 * (widths[1] - widths[0]), rel=0.15)
    # Amber pages draw it in their amber.
    image = draw(screen, ScreenState("hold_still", progress=0.5))
    assert filled_width(image, screen.progress_bar, AMBER) > 0.3 * screen.progress_bar.width


def test_no_progress_no_bar_and_no_bar_on_other_pages(open_screen):
    screen = open_screen()
    draw(screen, ScreenState("measuring"))
    assert screen.progress_bar is None
    for state in (ScreenState("idle", progress=0.5), ScreenState("pass", temperature_c=36.5, progress=0.5)):
        draw(screen, state)
        assert screen.progress_bar is None, state.kind


def test_out_of_range_progress_is_drawn_clamped(open_screen):
    screen = open_screen()
    over = draw(screen, ScreenState("measuring", progress=1.7))
    full = draw(screen, ScreenState("measuring", progress=1.0))
    assert np.array_equal(over, full)
    under = draw(screen, ScreenState("measuring", progress=float("nan")))
    empty = draw(screen, ScreenState("measuring", progress=0.0))
    assert np.array_equal(under, empty)


def test_a_progress_step_redraws_the_bar_alone_and_looks_like_a_fresh_page(open_screen):
    frames = Frames(pattern())
    screen = open_screen(preview=frames)
    before = draw(screen, ScreenState("measuring", progress=0.2, hint="wrist_closer"))
    bar = screen.progress_bar
    after = draw(screen, ScreenState("measuring", progress=0.6, hint="wrist_closer"))
    changed = np.argwhere((before != after).any(axis=2))
    assert len(changed) > 0 and all(bar.collidepoint(int(x), int(y)) for x, y in changed)
    screen.close()
    fresh = open_screen(preview=frames)
    assert np.array_equal(draw(fresh, ScreenState("measuring", progress=0.6, hint="wrist_closer")), after)


# ---------------------------------------------------------------- hints


def test_every_hint_has_chinese_and_english_words():
    for hint in HINTS:
        zh, en = texts.lines(f"hint_{hint}", "zh"), texts.lines(f"hint_{hint}", "en")
        assert len(zh) == len(en) == 1 and zh[0] and en[0].isascii()


def test_a_hint_is_a_line_in_its_own_colour(open_screen):
    screen = open_screen()
    for kind in ("idle", "measuring", "prompt_code", "prompt_wrist"):
        plain = draw(screen, ScreenState(kind))  # type: ignore[arg-type]
        hinted = {hint: draw(screen, ScreenState(kind, hint=hint)) for hint in HINTS}  # type: ignore[arg-type]
        for hint, image in hinted.items():
            assert (image == np.array(HINT_INK)).all(axis=2).sum() > 200, (kind, hint)
            assert not np.array_equal(image, plain)
        assert len({image.tobytes() for image in hinted.values()}) == len(HINTS), kind
        if PAGES[kind].accent != HINT_INK:
            assert (plain == np.array(HINT_INK)).all(axis=2).sum() == 0


def test_pages_without_hints_ignore_them(open_screen):
    screen = open_screen()
    assert np.array_equal(draw(screen, ScreenState("pass", temperature_c=36.5, hint="closer")),
                          draw(screen, ScreenState("pass", temperature_c=36.5)))


def test_unknown_hints_are_rejected():
    with pytest.raises(ValueError, match="hint"):
        ScreenState("idle", hint="dance")  # type: ignore[arg-type]
