"""The visitor's screen, drawn by real pygame on SDL's dummy video driver and checked by its pixels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pygame
import pytest

from kiosk.config import ScreenSection
from kiosk.display import fonts, texts
from kiosk.display.screen import Screen, resolve_mode, wrap
from kiosk.display.state import KINDS, ScreenState
from kiosk.errors import KioskError
from kiosk.results import Reason

# Regions of the 800x480 page: the icon on the left of the header band, the headline to its right,
# the body under the rule.
ICON = (slice(20, 200), slice(20, 200))
HEADLINE = (slice(220, 790), slice(5, 195))
BODY = (slice(20, 780), slice(225, 475))

STATES = {
    "idle": ScreenState("idle"),
    "measuring": ScreenState("measuring"),
    "hold_still": ScreenState("hold_still", code_read=True),
    "measuring_again": ScreenState("measuring_again", code_read=True),
    "prompt_code": ScreenState("prompt_code", temperature_c=36.4),
    "prompt_wrist": ScreenState("prompt_wrist"),
    "pass": ScreenState("pass", temperature_c=36.5, holder="张*明"),
    "refuse": ScreenState("refuse", temperature_c=38.2, reasons=(Reason.FEVER,)),
    "out_of_service": ScreenState("out_of_service", detail="thermometer not answering"),
}


@pytest.fixture
def open_screen(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    opened: list[Screen] = []

    def _open(language: str = "both", **section) -> Screen:
        screen = Screen(ScreenSection(**{"mode": "headless", **section}), language)
        opened.append(screen)
        return screen

    yield _open
    for screen in opened:
        screen.close()


def pixels(screen: Screen, state: ScreenState) -> np.ndarray:
    screen.show(state)
    screen.render()
    return pygame.surfarray.array3d(screen.surface).astype(int)  # (x, y, rgb)


def background(image: np.ndarray) -> np.ndarray:
    """The page's most common colour."""
    packed = (image[..., 0] << 16 | image[..., 1] << 8 | image[..., 2]).ravel()
    values, counts = np.unique(packed, return_counts=True)
    colour = int(values[counts.argmax()])
    return np.array([colour >> 16, (colour >> 8) & 255, colour & 255])


def ink(image: np.ndarray, region: tuple[slice, slice]) -> float:
    """Share of the region's pixels that differ clearly from the page's background colour."""
    part = image[region]
    return float((np.abs(part - background(image)).sum(axis=2) > 60).mean())


def test_every_state_draws_an_icon_a_headline_and_body_text(open_screen):
    screen = open_screen()
    for kind, state in STATES.items():
        image = pixels(screen, state)
        assert image.shape[:2] == (800, 480)
        assert ink(image, ICON) > 0.04, kind
        assert ink(image, HEADLINE) > 0.02, kind
        assert ink(image, BODY) > 0.01, kind


def test_verdict_colours(open_screen):
    screen = open_screen()
    r, g, b = background(pixels(screen, STATES["pass"]))
    assert g > 90 and g > r + 60 and g > b + 40
    r, g, b = background(pixels(screen, STATES["refuse"]))
    assert r > 150 and r > g + 100 and r > b + 100
    r, g, b = background(pixels(screen, STATES["out_of_service"]))
    assert max(r, g, b) < 90 and max(r, g, b) - min(r, g, b) < 20  # dark grey
    # ... with the out-of-service sign in amber.
    oos = pixels(screen, STATES["out_of_service"])
    icon = oos[ICON].reshape(-1, 3)
    amber = (icon[:, 0] > 200) & (icon[:, 1] > 130) & (icon[:, 1] < 220) & (icon[:, 2] < 80)
    assert amber.mean() > 0.1


def test_check_mark_and_cross_are_different_shapes(open_screen):
    # Colour is never the only signal: with the colours taken away, PASS and REFUSE still differ.
    screen = open_screen()
    masks = {}
    for kind in ("pass", "refuse"):
        image = pixels(screen, STATES[kind])
        masks[kind] = np.abs(image[ICON] - background(image)).sum(axis=2) > 60
    assert (masks["pass"] ^ masks["refuse"]).mean() > 0.03


def test_reasons_are_shown_in_words(open_screen):
    screen = open_screen()
    one = pixels(screen, ScreenState("refuse", reasons=(Reason.FEVER,)))
    three = pixels(screen, ScreenState("refuse", reasons=(Reason.REMEASURE, Reason.YELLOW_CODE, Reason.STALE_CODE)))
    fever = pixels(screen, ScreenState("refuse", reasons=(Reason.FEVER,)))
    stale = pixels(screen, ScreenState("refuse", reasons=(Reason.STALE_CODE,)))
    assert ink(three, BODY) > ink(one, BODY) * 1.5
    assert not np.array_equal(fever[BODY], stale[BODY])


def test_temperature_and_masked_name_change_the_pass_page(open_screen):
    screen = open_screen()
    plain = pixels(screen, ScreenState("pass"))
    full = pixels(screen, STATES["pass"])
    assert ink(full, BODY) > ink(plain, BODY)


def test_unknown_reason_code_still_refuses_on_screen(open_screen):
    screen = open_screen()
    image = pixels(screen, ScreenState("refuse", reasons=("something_new",)))
    assert background(image)[0] > 150
    assert ink(image, BODY) > 0.01


def test_chinese_english_and_both_render_differently(open_screen):
    headlines = {}
    for language in ("zh", "en", "both"):
        screen = open_screen(language)
        image = pixels(screen, STATES["refuse"])
        headlines[language] = image[HEADLINE]
        assert ink(image, HEADLINE) > 0.02
        screen.close()
    assert not np.array_equal(headlines["zh"], headlines["en"])
    assert not np.array_equal(headlines["zh"], headlines["both"])
    assert not np.array_equal(headlines["en"], headlines["both"])


def test_the_font_really_draws_chinese(open_screen):
    screen = open_screen("zh")
    font = screen.fonts.get(64)
    a = font.render("通", True, (255, 255, 255), (0, 0, 0)).get_buffer().raw
    b = font.render("过", True, (255, 255, 255), (0, 0, 0)).get_buffer().raw
    assert a != b, "two different Chinese characters drew the same bitmap (missing-glyph boxes)"
    assert any(a) and any(b)


def test_every_reason_and_kind_has_chinese_and_english_text():
    for reason in Reason:
        zh, en = texts.lines(reason, "zh"), texts.lines(reason, "en")
        assert zh and en and len(zh) == len(en), reason
        assert all(re.search(r"[\u4e00-\u9fff]", line) for line in zh), reason
        assert all(line.isascii() and line.strip() for line in en), reason
    for kind in KINDS:
        assert texts.title(kind, "zh") and texts.title(kind, "en")
        assert len(texts.lines(kind, "zh")) == len(texts.lines(kind, "en")), kind


def test_both_puts_each_chinese_line_above_its_english_one():
    assert texts.lines("idle", "both") == [
        texts.lines("idle", "zh")[0],
        texts.lines("idle", "en")[0],
        texts.lines("idle", "zh")[1],
        texts.lines("idle", "en")[1],
    ]
    assert texts.title("pass", "both") == ["通过", "PASS"]
    assert texts.title("refuse", "both") == ["禁止通行", "REFUSE"]
    with pytest.raises(ValueError):
        texts.lines("idle", "fr")
    with pytest.raises(KeyError):
        texts.lines("no_such_reason", "en")


def test_render_draws_only_when_the_state_changes(open_screen):
    screen = open_screen()
    screen.show(ScreenState("measuring"))
    assert screen.render() is True
    assert screen.render() is False
    screen.show(ScreenState("measuring"))  # an equal state: nothing to redraw
    assert screen.render() is False
    screen.show(ScreenState("pass", temperature_c=36.6))
    assert screen.render() is True


def test_screenshot_is_a_png_of_the_current_page(open_screen, tmp_path):
    screen = open_screen()
    screen.show(STATES["pass"])
    path = screen.screenshot(tmp_path / "shots" / "pass.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = pygame.surfarray.array3d(pygame.image.load(str(path))).astype(int)
    assert loaded.shape[:2] == (800, 480)
    assert np.array_equal(background(loaded), background(pixels(screen, STATES["pass"])))


def test_pump_stops_on_quit_and_escape(open_screen):
    screen = open_screen()
    assert screen.pump() is True
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="\x1b", scancode=41))
    assert screen.pump() is False
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert screen.pump() is False


def test_fullscreen_ignores_escape_and_fills_the_display(open_screen):
    screen = open_screen(mode="fullscreen")
    assert screen.mode == "fullscreen"
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="\x1b", scancode=41))
    assert screen.pump() is True
    screen.show(STATES["refuse"])
    screen.render()
    image = pygame.surfarray.array3d(screen.surface).astype(int)
    assert image.shape[:2] == pygame.display.get_surface().get_size()
    assert background(image)[0] > 150


def test_many_screens_one_after_another(open_screen):
    for _ in range(3):
        screen = open_screen("en", width=640, height=360)
        image = pixels(screen, STATES["idle"])
        assert image.shape[:2] == (640, 360)
        screen.close()
        with pytest.raises(KioskError):
            screen.render()


def test_all_pages_share_a_few_font_sizes(open_screen):
    # Each font size is a FreeType face of its own (about half a megabyte for the Chinese font);
    # text shrunk to fit would otherwise load a new one for almost every size it tries.
    screen = open_screen(width=800, height=480)
    for state in STATES.values():
        pixels(screen, state)
    pixels(screen, ScreenState("refuse", temperature_c=35.0, reasons=tuple(Reason)))
    loaded = screen.fonts.loaded
    assert all(size in fonts.SIZE_LADDER for size, _ in loaded)
    assert len(loaded) <= 30  # 53 before sizes were snapped to the ladder


def test_long_reason_lists_stay_on_the_page(open_screen):
    screen = open_screen(width=480, height=320)
    image = pixels(screen, ScreenState("refuse", temperature_c=35.0, reasons=tuple(Reason)))
    assert background(image)[0] > 150
    bottom = image[:, 300:]
    assert (np.abs(bottom - background(image)).sum(axis=2) > 60).mean() < 0.2


def test_configured_font_that_is_missing_is_a_clear_error(open_screen, tmp_path):
    with pytest.raises(KioskError, match="screen.font"):
        open_screen(font=str(tmp_path / "nope.ttf"))


def test_latin_only_fonts_are_not_taken_for_chinese(monkeypatch):
    latin = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not latin.is_file():
        pytest.skip("DejaVu Sans not installed")
    pygame.font.init()
    monkeypatch.setattr(fonts, "_fontconfig_match", lambda: latin)
    assert fonts.find_font(candidates=(latin,)) is None
    book = fonts.FontBook(None)  # pygame's default font: English still works
    assert not book.has_cjk
    assert book.get(40).render("PASS", True, (255, 255, 255)).get_width() > 40


def test_auto_mode(tmp_path):
    pi = tmp_path / "model"
    pi.write_text("Raspberry Pi 4 Model B Rev 1.5\x00")
    missing = tmp_path / "absent"
    assert resolve_mode("auto", {}, pi) == "fullscreen"
    assert resolve_mode("auto", {"DISPLAY": ":0"}, missing) == "window"
    assert resolve_mode("auto", {"WAYLAND_DISPLAY": "wayland-0"}, missing) == "window"
    assert resolve_mode("auto", {}, missing) == "headless"
    assert resolve_mode("window", {}, pi) == "window"


def test_wrap_breaks_english_at_spaces_and_chinese_anywhere():
    pygame.font.init()
    font = fonts.FontBook(fonts.find_font()).get(30)
    english = wrap("please wait a few minutes and measure again", font, 200)
    assert len(english) > 1 and all(font.size(line)[0] <= 200 for line in english)
    assert " ".join(english) == "please wait a few minutes and measure again"
    chinese = wrap("体温偏低，请稍等几分钟后重新测量", font, 150)
    assert len(chinese) > 1 and "".join(chinese) == "体温偏低，请稍等几分钟后重新测量"
    assert not any(line.startswith("，") for line in chinese)


def test_bad_state_kind_is_rejected():
    with pytest.raises(ValueError):
        ScreenState("open_gate")  # type: ignore[arg-type]


def test_hold_still_and_measuring_again_stand_out_from_measuring(open_screen):
    # The visitor must notice the change: amber headline words instead of white ones, other lines.
    screen = open_screen()
    measuring = pixels(screen, ScreenState("measuring", code_read=True))

    def amber_share(image):
        part = image[HEADLINE].reshape(-1, 3)
        return ((part[:, 0] > 200) & (part[:, 1] > 130) & (part[:, 1] < 220) & (part[:, 2] < 80)).mean()

    assert amber_share(measuring) < 0.001
    for kind in ("hold_still", "measuring_again"):
        image = pixels(screen, STATES[kind])
        assert amber_share(image) > 0.01, kind
        assert not np.array_equal(image[BODY], measuring[BODY]), kind
    assert not np.array_equal(pixels(screen, STATES["hold_still"])[HEADLINE],
                              pixels(screen, STATES["measuring_again"])[HEADLINE])


def test_fahrenheit_is_a_display_setting(open_screen):
    celsius = open_screen("en")
    assert celsius.format_temperature(37.3) == "37.3 °C"
    image_c = pixels(celsius, ScreenState("refuse", temperature_c=38.0, reasons=(Reason.FEVER,)))
    celsius.close()
    fahrenheit = open_screen("en", temperature_unit="F")
    assert fahrenheit.format_temperature(37.3) == "99.1 °F"
    assert fahrenheit.format_temperature(38.0) == "100.4 °F"
    image_f = pixels(fahrenheit, ScreenState("refuse", temperature_c=38.0, reasons=(Reason.FEVER,)))
    assert not np.array_equal(image_c[BODY], image_f[BODY])


def test_warm_up_loads_every_page_s_fonts_without_touching_the_display(open_screen):
    screen = open_screen()
    idle = ScreenState("idle", family_button=True)
    before = pixels(screen, idle)
    buttons = screen.buttons
    pages = [STATES["pass"], ScreenState("refuse", temperature_c=38.1, reasons=("fever",)), ScreenState("measuring")]
    screen.warm_up(pages)
    assert np.array_equal(pygame.surfarray.array3d(screen.surface).astype(int), before), "nothing reached the display"
    assert screen.buttons == buttons, "the idle page's buttons still answer taps"
    loaded = set(screen.fonts.loaded)
    for page in pages:  # drawing them for real needs no font the warm-up did not load
        pixels(screen, page)
        assert set(screen.fonts.loaded) == loaded


def test_an_uncovered_window_gets_its_page_back_at_the_next_pump(open_screen):
    screen = open_screen()
    page = pixels(screen, STATES["pass"])
    screen.surface.fill((0, 0, 0))  # what another window left on it
    pygame.event.post(pygame.event.Event(pygame.VIDEOEXPOSE))
    assert screen.pump() is True
    assert np.array_equal(pygame.surfarray.array3d(screen.surface).astype(int), page)
