"""What the kiosk says, and when: spoken sentences in the screen's own words, and the cue for each
screen state.

Every sentence is built from ``kiosk.display.texts`` (a headline, or the lines under it), so the
voice and the screen never disagree; changing a text there changes the clip at the next
``kiosk sound render``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiosk.display import texts
from kiosk.display.pages import PAGES
from kiosk.display.state import HINTS
from kiosk.results import Reason

if TYPE_CHECKING:
    from kiosk.display.state import ScreenState

# The languages clips are rendered in (kiosk.language "both" says Chinese, then English).
LANGUAGES = ("zh", "en")

# Which screen words each prompt speaks: ("title", key) is the headline, ("line", key, n) the n-th
# line under it, ("lines", key) every line. Headlines that only repeat the tone are left out.
_WORDS: dict[str, tuple[tuple, ...]] = {
    "prompt_code": (("title", "prompt_code"),),
    "prompt_wrist": (("line", "prompt_wrist", 1),),
    "hold_still": (("title", "hold_still"),),
    "measuring_again": (("lines", "measuring_again"),),
    "pass": (("lines", "pass"),),
    "refuse": (("lines", "refuse"),),  # a refusal that names no reason
    "out_of_service": (("title", "out_of_service"), ("lines", "out_of_service")),
    # Each refusal reason: what happened and what to do next, exactly as the screen says it.
    **{str(reason): (("lines", str(reason)),) for reason in Reason},
    # Each hint line ("Move the phone closer" ...): said when it appears on the screen.
    **{f"hint_{hint}": (("lines", f"hint_{hint}"),) for hint in HINTS},
}

# The same prompt is not said again within this many seconds (a visitor stepping back and forth);
# "out of service" not again within a minute (a part that comes and goes).
REPEAT_S = 5.0
REPEAT_OUT_OF_SERVICE_S = 60.0


def prompt_keys() -> tuple[str, ...]:
    """Every prompt a clip is rendered for."""
    return tuple(_WORDS)


def _spoken(text: str) -> str:
    # An all-capitals headline ("OUT OF SERVICE") is said as words, not spelt out.
    return text.capitalize() if text.isupper() else text


def sentence(key: str, language: str) -> str:
    """What the prompt ``key`` says in ``language`` ("zh" or "en")."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    parts: list[str] = []
    for source in _WORDS[key]:
        kind, text_key = source[0], source[1]
        if kind == "title":
            parts += texts.title(text_key, language)  # type: ignore[arg-type]
        elif kind == "line":
            parts.append(texts.lines(text_key, language)[source[2]])  # type: ignore[arg-type]
        else:
            parts += texts.lines(text_key, language)  # type: ignore[arg-type]
    parts = [_spoken(part.strip().rstrip("。.")) for part in parts if part.strip()]
    return "。".join(parts) + "。" if language == "zh" else ". ".join(parts) + "."


def spoken_languages(language: str) -> tuple[str, ...]:
    """The clip languages for kiosk.language: "both" is Chinese, then English."""
    return LANGUAGES if language == "both" else (language,)


@dataclass(frozen=True)
class Cue:
    """What a screen state sounds like: a tone, then prompts; a verdict always plays."""

    kind: str
    tone: str | None
    prompts: tuple[str, ...]
    verdict: bool = False
    repeat_s: float = REPEAT_S


def cue_for(state: "ScreenState") -> Cue | None:
    """The cue of a screen state, or None for states that stay silent (idle, measuring, the
    touchscreen's family lookup pages: the visitor is already looking at the screen)."""
    kind = state.kind
    if kind in ("prompt_code", "prompt_wrist", "hold_still", "measuring_again"):
        return Cue(kind, None, (kind,))
    if kind == "pass":
        return Cue(kind, "pass", ("pass",), verdict=True)
    if kind == "refuse":
        known = tuple(reason for reason in state.reasons if reason in _WORDS)
        return Cue(kind, "refuse", known or ("refuse",), verdict=True)
    if kind == "out_of_service":
        return Cue(kind, "attention", ("out_of_service",), repeat_s=REPEAT_OUT_OF_SERVICE_S)
    return None


def hint_cue(state: "ScreenState") -> Cue | None:
    """The cue of the hint line a screen state shows ("hint_closer" ...), or None. Said even on the
    pages that are otherwise silent: a visitor stuck at the camera or the sensor is looking there,
    not at the screen."""
    if state.hint is None or not PAGES[state.kind].hints:
        return None
    key = f"hint_{state.hint}"
    return Cue(key, None, (key,))
