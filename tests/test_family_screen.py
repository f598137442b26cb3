"""The touch pages of the family lookup (real pygame, SDL dummy driver): the buttons are drawn
where the screen says they are, big enough for a finger, and taps (clicks and touches) find them."""

from __future__ import annotations

import itertools

import numpy as np
import pygame

from kiosk.config import ScreenSection
from kiosk.display.screen import Screen
from kiosk.display.state import ScreenState

KEYPAD_KEYS = {str(digit) for digit in range(10)} | {"delete", "cancel"}
# About 9 mm on the 7-inch 800x480 display: the smallest comfortable touch target.
MIN_TOUCH_PX = 48


def draw(screen: Screen, state: ScreenState) -> np.ndarray:
    screen.show(state)
    screen.render()
    return pygame.surfarray.array3d(screen.surface).astype(int)  # (x, y, rgb)


def page_colour(image: np.ndarray) -> np.ndarray:
    packed = (image[..., 0] << 16 | image[..., 1] << 8 | image[..., 2]).ravel()
    values, counts = np.unique(packed, return_counts=True)
    colour = int(values[counts.argmax()])
    return np.array([colour >> 16, (colour >> 8) & 255, colour & 255])


def inside(rect: pygame.Rect, inset: int = 8) -> tuple[slice, slice]:
    return slice(rect.left + inset, rect.right - inset), slice(rect.top + inset, rect.bottom - inset)


def assert_real_buttons(image: np.ndarray, buttons: dict[str, pygame.Rect]) -> None:
    """Each button is a filled shape that stands out from the page, with words or a digit on it,
    big enough to touch, on the page, and clear of every other button."""
    page = page_colour(image)
    width, height = image.shape[:2]
    for name, rect in buttons.items():
        assert rect.width >= MIN_TOUCH_PX and rect.height >= MIN_TOUCH_PX, name
        assert pygame.Rect(0, 0, width, height).contains(rect), name
        face = image[inside(rect)].reshape(-1, 3)
        fill = page_colour(image[inside(rect)])
        assert np.abs(fill - page).sum() > 30, f"{name}: the button does not stand out from the page"
        label = (np.abs(face - fill).sum(axis=1) > 120).mean()
        assert 0.01 < label < 0.6, f"{name}: no label drawn on it ({label:.3f})"
    for (a, first), (b, second) in itertools.combinations(buttons.items(), 2):
        assert not first.colliderect(second), f"{a} overlaps {b}"


def test_idle_shows_the_no_phone_button_only_when_the_lookup_is_on(screen: Screen) -> None:
    plain = draw(screen, ScreenState("idle"))
    assert screen.buttons == {}
    with_button = draw(screen, ScreenState("idle", family_button=True))
    assert set(screen.buttons) == {"family"}
    rect = screen.buttons["family"]
    assert_real_buttons(with_button, screen.buttons)
    assert rect.width >= 200 and rect.height >= 100  # a big, obvious target
    assert not np.array_equal(plain[inside(rect)], with_button[inside(rect)])
    # A white button on the navy page: visible at a glance.
    assert page_colour(with_button[inside(rect)]).min() > 200


def test_keypad_has_every_key_and_ok_only_when_complete(screen: Screen) -> None:
    typing = draw(screen, ScreenState("family_keypad", entry="•38 00"))
    assert set(screen.buttons) == KEYPAD_KEYS  # OK is drawn dimmed and cannot be tapped
    assert_real_buttons(typing, screen.buttons)
    ok_area = pygame.Rect(screen.buttons["0"])
    ok_area.x += ok_area.width + 10  # right of 0, where OK sits
    assert screen.button_at(ok_area.center) is None

    complete = draw(screen, ScreenState("family_keypad", entry="••• •••• 8001", entry_complete=True))
    assert set(screen.buttons) == KEYPAD_KEYS | {"ok"}
    assert_real_buttons(complete, screen.buttons)
    ok = screen.buttons["ok"]
    assert screen.button_at(ok.center) == "ok"
    r, g, b = page_colour(complete[inside(ok)])
    assert g > r + 60 and g > b + 40  # green when it can be tapped ...
    assert not np.array_equal(typing[inside(ok)], complete[inside(ok)])  # ... and a tick besides the colour
    # The typed number is shown: the entry box differs between the two pages.
    box = (slice(16, 300), slice(140, 220))
    assert not np.array_equal(typing[box], complete[box])


def test_keypad_digits_are_laid_out_like_a_phone(screen: Screen) -> None:
    draw(screen, ScreenState("family_keypad"))
    b = screen.buttons
    assert b["1"].top == b["2"].top == b["3"].top < b["4"].top == b["5"].top < b["7"].top < b["0"].top
    assert b["1"].left < b["2"].left < b["3"].left and b["0"].left == b["2"].left
    assert b["delete"].top == b["0"].top and b["delete"].left == b["1"].left
    assert b["cancel"].right < b["1"].left  # Cancel apart from the keys, on the left


def test_choose_page_has_a_button_per_name(screen: Screen) -> None:
    for names in (("张*英",), ("张*英", "王*宝"), tuple(f"{surname}*" for surname in "赵钱孙李周吴郑王")):
        image = draw(screen, ScreenState("family_choose", choices=names))
        assert set(screen.buttons) == {f"member:{i}" for i in range(len(names))} | {"cancel"}
        assert_real_buttons(image, screen.buttons)
    # Different names, different buttons.
    first = draw(screen, ScreenState("family_choose", choices=("张*英", "王*宝")))
    rect = screen.buttons["member:0"]
    other = draw(screen, ScreenState("family_choose", choices=("李*", "王*宝")))
    assert not np.array_equal(first[inside(rect)], other[inside(rect)])


def test_pages_without_buttons_have_none(screen: Screen) -> None:
    for state in (ScreenState("family_searching"), ScreenState("family_message", reasons=("family_unknown",)),
                  ScreenState("measuring"), ScreenState("pass", temperature_c=36.5)):
        draw(screen, state)
        assert screen.buttons == {} and screen.button_at((400, 240)) is None


def test_family_messages_say_what_happened(screen: Screen) -> None:
    pages = {key: draw(screen, ScreenState("family_message", reasons=(key,)))
             for key in ("family_unknown", "family_unavailable", "family_rate_limited")}
    for a, b in itertools.combinations(pages, 2):
        assert not np.array_equal(pages[a], pages[b]), (a, b)


def test_taps_from_mouse_and_touch_are_collected_once(screen: Screen) -> None:
    draw(screen, ScreenState("family_keypad"))
    five = screen.buttons["5"].center
    width, height = screen.surface.get_size()
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=five, button=1))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=five, button=3))  # right click: not a tap
    pygame.event.post(pygame.event.Event(
        pygame.FINGERDOWN, x=five[0] / width, y=five[1] / height, touch_id=1, finger_id=0, dx=0.0, dy=0.0, pressure=1.0
    ))
    # SDL reports a touch again as a mouse click marked "touch": not a second tap.
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=five, button=1, touch=True))
    assert screen.pump() is True
    taps = screen.taps()
    assert len(taps) == 2
    assert [screen.button_at(tap) for tap in taps] == ["5", "5"]
    assert screen.taps() == []  # taken once


def test_buttons_scale_with_the_display(monkeypatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with Screen(ScreenSection(mode="headless", width=1280, height=720), "zh") as big:
        image = draw(big, ScreenState("family_keypad", entry="138", entry_complete=False))
        assert_real_buttons(image, big.buttons)
        assert big.buttons["5"].height > 150
