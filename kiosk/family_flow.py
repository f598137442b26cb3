"""The "No phone?" keypad: a visitor types a family member's number and taps their own name.

A small state machine with no threads, screen or network of its own: each ``step`` takes the taps
since the last one (button names), the time, and the lookup's answer once there is one, and says
what to show, and whether a number is to be looked up, a proxy code was chosen, or the flow ended.
The kiosk sends the lookup on its worker and hands the chosen code to the visit, like a scanned one.

Stages: ``keypad`` (typing the number), ``searching`` (the lookup is out), ``choose`` (the
family's names), ``message`` (unknown number, rate limit, platform down), shown for ``message_s``.
Any touch, on a button or beside them, keeps the keypad, the search and the names open for
``idle_s`` more; a visitor who walks away is taken back to the start page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kiosk.codes.family import FamilyMember, FamilyResult, PhoneEntry
from kiosk.display.state import ScreenState

log = logging.getLogger(__name__)

# What a lookup's outcome says on the message page (a texts.LINES key).
FAMILY_MESSAGES = {
    "unknown": "family_unknown",
    "rate_limited": "family_rate_limited",
    "unavailable": "family_unavailable",
    "invalid": "family_unavailable",
}


class Stage(StrEnum):
    KEYPAD = "keypad"
    SEARCHING = "searching"
    CHOOSE = "choose"
    MESSAGE = "message"


@dataclass(frozen=True)
class Step:
    """What the kiosk does after a step: show ``page``, or, once the flow is over, either serve
    ``chosen`` (a proxy code) or go back to the start page (``ended`` says why)."""

    page: ScreenState | None = None
    # Neither the number nor the code is ever logged: both stay out of the repr.
    lookup: str | None = field(default=None, repr=False)  # a complete number to send to the platform now
    chosen: str | None = field(default=None, repr=False)
    ended: str | None = None


class FamilyFlow:
    def __init__(self, entry: PhoneEntry, now: float, idle_s: float, message_s: float):
        self.entry = entry
        self.stage = Stage.KEYPAD
        self.idle_s = idle_s
        self.message_s = message_s
        self.members: tuple[FamilyMember, ...] = ()
        self.message = ""  # stage message: a texts.LINES key
        self._touched_at = now
        self._message_until = 0.0

    def step(self, now: float, taps: Sequence[str | None], answer: FamilyResult | None = None) -> Step:
        """``taps``: the button under each tap since the last step (None: beside every button);
        ``answer``: the lookup's result, once it has come (only read while searching)."""
        if taps:
            self._touched_at = now  # any touch keeps the page open, a button hit or not
        buttons = [name for name in taps if name is not None]
        idle = f"no touch for {self.idle_s:.0f} s"
        if self.stage is Stage.KEYPAD:
            for name in buttons:
                if name == "cancel":
                    return Step(ended="cancelled")
                if name == "delete":
                    self.entry.delete()
                elif name.isdigit():
                    self.entry.press(name)
                elif name == "ok" and self.entry.complete:
                    self.stage, self._touched_at = Stage.SEARCHING, now
                    # Taps after OK were meant for the keypad just left.
                    return Step(page=self.page(), lookup=self.entry.take())
            if now - self._touched_at > self.idle_s:
                return Step(ended=idle)
        elif self.stage is Stage.SEARCHING:
            if answer is None and now - self._touched_at > self.idle_s:
                # The lookup has its own timeout; this only keeps the page from hanging here.
                answer = FamilyResult("unavailable", problem="no answer in time")
            if answer is not None:
                self._answered(answer, now)
        elif self.stage is Stage.CHOOSE:
            for name in buttons:
                if name == "cancel":
                    return Step(ended="cancelled")
                index = name.removeprefix("member:")
                if index != name and index.isdigit() and int(index) < len(self.members):
                    log.info("family lookup: a proxy code was chosen")
                    return Step(chosen=self.members[int(index)].code)
            if now - self._touched_at > self.idle_s:
                return Step(ended=idle)
        elif now >= self._message_until:
            return Step(ended="message shown")
        return Step(page=self.page())

    def _answered(self, result: FamilyResult, now: float) -> None:
        if result.outcome == "found" and result.members:
            self.members, self.stage, self._touched_at = result.members, Stage.CHOOSE, now
            return
        self.stage = Stage.MESSAGE
        self.message = FAMILY_MESSAGES.get(result.outcome, "family_unavailable")
        self._message_until = now + self.message_s

    def page(self) -> ScreenState:
        """The page for the stage the flow is at."""
        if self.stage is Stage.KEYPAD:
            return ScreenState(kind="family_keypad", entry=self.entry.masked(), entry_complete=self.entry.complete)
        if self.stage is Stage.SEARCHING:
            return ScreenState(kind="family_searching")
        if self.stage is Stage.CHOOSE:
            return ScreenState(kind="family_choose", choices=tuple(member.holder for member in self.members))
        return ScreenState(kind="family_message", reasons=(self.message,))


def sample_pages() -> list[ScreenState]:
    """One of each page of the flow, with text of the usual length (to warm the screen up)."""
    return [ScreenState(kind="family_keypad", entry="138****", entry_complete=True),
            ScreenState(kind="family_searching"),
            ScreenState(kind="family_choose", choices=("张*", "李*")),
            *(ScreenState(kind="family_message", reasons=(message,)) for message in sorted(set(FAMILY_MESSAGES.values())))]
