"""What the screen shows, as the app says it: ``ScreenState``. No pygame here, so the app's state
machine and its tests need no display to name a page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from kiosk.display.pages import KINDS, Kind

__all__ = ["HINTS", "KINDS", "Hint", "Kind", "ScreenState"]

# What helps, from the camera ("closer", "hold_still", "brighter") or the thermometer ("wrist_closer");
# the words are texts.LINES["hint_<name>"].
Hint = Literal["closer", "hold_still", "brighter", "wrist_closer"]
HINTS: tuple[str, ...] = get_args(Hint)


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
    # Measuring pages: how far the reading has settled, 0 to 1 (drawn clamped); None draws no bar.
    progress: float | None = None
    hint: Hint | None = None  # idle, measuring and prompt pages: what would help, or None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown screen kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.hint is not None and self.hint not in HINTS:
            raise ValueError(f"unknown screen hint {self.hint!r}; expected one of {', '.join(HINTS)}")
