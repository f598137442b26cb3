"""The kiosk's voice: listens to the screen states and says what matters, through the Player.

Called on the screen loop for every new screen state, it only picks a cue and hands it to the
player (no file, no device, no waiting). It keeps quiet about what the visitor has just heard: a
page redrawn with new details (the settling bar) is not a new page, and the same prompt is not said
again within a few seconds; a verdict always plays. A hint line that appears (or changes) is said
too, after the page's own prompt when both come at once, under the same few-seconds rule (a hint
that comes and goes as the phone moves is said once). The [sound] settings and
kiosk.language are read from the kiosk's config at each cue: a language applied without a restart
is spoken at the next prompt (clips exist for both languages).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from kiosk.config import SoundSection
from kiosk.sound.clips import ClipShelf, clip_folder
from kiosk.sound.player import Clip, Player, Tone, Utterance
from kiosk.sound.prompts import Cue, cue_for, hint_cue, spoken_languages
from kiosk.sound.quiet import QuietHours

if TYPE_CHECKING:
    from kiosk.app import Kiosk
    from kiosk.display.state import ScreenState

log = logging.getLogger(__name__)


def local_now() -> datetime:
    return datetime.now().astimezone()


class Voice:
    def __init__(self, say: Callable[[Utterance], None], settings: Callable[[], tuple[SoundSection, str]],
                 localnow: Callable[[], datetime] = local_now, clock: Callable[[], float] = time.monotonic):
        self._say = say
        self._settings = settings
        self._localnow = localnow
        self._clock = clock
        self._last: "ScreenState | None" = None
        self._said_at: dict[str, float] = {}
        self._failed = False

    def __call__(self, state: "ScreenState") -> None:
        try:
            self._hear(state)
        except Exception:  # sound is a help, never a reason for the screen loop to stop
            if not self._failed:
                self._failed = True
                log.exception("sound: could not pick what to say")

    def quiet_now(self, section: SoundSection) -> bool:
        hours = QuietHours.parse(section.quiet_hours)
        return hours is not None and self._localnow().time() in hours

    def utterance(self, state: "ScreenState") -> Utterance | None:
        """What ``state`` would sound like now (ignoring what was said before), or None."""
        return self._utterance([cue for cue in (cue_for(state), hint_cue(state)) if cue is not None])

    def _utterance(self, cues: list[Cue]) -> Utterance | None:
        if not cues:
            return None
        section, language = self._settings()
        if not section.enabled:
            return None
        quiet = self.quiet_now(section)
        volume = min(section.quiet_volume, section.volume) if quiet else section.volume
        speak = section.voice and (section.quiet_voice or not quiet)
        parts: list[Tone | Clip] = [Tone(cue.tone) for cue in cues if cue.tone]
        if speak:
            # "both": every Chinese sentence, then every English one.
            prompts = [key for cue in cues for key in cue.prompts]
            parts += [Clip(key, spoken) for spoken in spoken_languages(language) for key in prompts]
        if not parts or volume <= 0:
            return None
        label = "+".join(cue.kind + (":" + ",".join(cue.prompts) if cue.kind == "refuse" else "") for cue in cues)
        return Utterance(tuple(parts), volume, section, verdict=any(cue.verdict for cue in cues), label=label)

    def _fresh(self, cue: Cue, now: float) -> bool:
        """Not said within its repeat time (a verdict always is)."""
        said_at = self._said_at.get(cue.kind)
        return cue.verdict or said_at is None or now - said_at >= cue.repeat_s

    def _hear(self, state: "ScreenState") -> None:
        last, self._last = self._last, state
        now = self._clock()
        cues: list[Cue] = []
        page = cue_for(state)
        if page is not None:
            if page.verdict:
                new = state != last  # the same verdict page shown again (the screen reopened): not new
            else:
                new = last is None or last.kind != state.kind  # the same page with new details: not new
            if new and self._fresh(page, now):
                cues.append(page)
        hint = hint_cue(state)
        if hint is not None and (last is None or last.hint != state.hint) and self._fresh(hint, now):
            cues.append(hint)
        utterance = self._utterance(cues)
        if utterance is None:
            return
        for cue in cues:
            self._said_at[cue.kind] = now
        self._say(utterance)


def attach_sound(kiosk: "Kiosk", folder: Path | None = None,
                 localnow: Callable[[], datetime] = local_now) -> Player:
    """Give ``kiosk`` a voice: a listener of its screen states, and the player as one of its threads
    (started and stopped with the kiosk). Call before ``kiosk.run()``."""
    config = kiosk.config
    player = Player(ClipShelf(folder or clip_folder(config)), open_at_start=config.sound.enabled)
    voice = Voice(player.say, lambda: (kiosk.config.sound, kiosk.config.kiosk.language), localnow=localnow)
    kiosk.screen_listeners.append(voice)
    kiosk.parts.extra_threads.append(player.run)
    return player
