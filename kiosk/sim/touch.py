"""A finger on the simulated touchscreen: taps posted to pygame's event queue, as the display would."""

from __future__ import annotations

import pygame

from kiosk.display.screen import Screen


def tap(screen: Screen, button: str, finger: bool = True) -> bool:
    """Tap the middle of ``button`` if the page on the screen has it (False if it has not).

    A finger arrives as FINGERDOWN with coordinates relative to the screen (a touch panel), otherwise
    as a left mouse click (a mouse on a desktop)."""
    rect = screen.buttons.get(button)
    if rect is None:
        return False
    x, y = rect.center
    if finger:
        width, height = screen.surface.get_size()
        event = pygame.event.Event(pygame.FINGERDOWN, x=x / width, y=y / height, touch_id=1, finger_id=0,
                                   dx=0.0, dy=0.0, pressure=1.0)
    else:
        event = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1)
    pygame.event.post(event)
    return True
