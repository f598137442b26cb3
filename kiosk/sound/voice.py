"""The kiosk's voice: listens to the screen states and says what matters, through the Player.

Called on the screen loop for every new screen state, it only picks a cue and hands it to the
player (no file, no device, no waiting). It keeps quiet about what the visitor has just heard: a
page redrawn with new details (the settling bar, a hint) is not a new page, and the same prompt is
not said again within a few seconds; a verdict always plays. The [sound] settings and
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
from kiosk.sound.prompts import cue_for, spoken_languages
from kiosk.sound.quiet import QuietHours

if TYPE_CHECKING:
    from kiosk.app import Kiosk
    from kiosk.display.screen import ScreenState

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
        cue = cue_for(state)
        if cue is None:
            return None
        section, language = self._settings()
        if not section.enabled:
            return None
        quiet = self.quiet_now(section)
        volume = min(section.quiet_volume, section.volume) if quiet else section.volume
        speak = section.voice and (section.quiet_voice or not quiet)
        parts: list[Tone | Clip] = [Tone(cue.tone)] if cue.tone else []
        if speak:
            # "both": every Chinese sentence, then every English one.
            parts += [Clip(key, spoken) for spoken in spoken_languages(language) for key in cue.prompts]
        if not parts or volume <= 0:
            return None
        label = cue.kind + (":" + ",".join(cue.prompts) if cue.kind == "refuse" else "")
        return Utterance(tuple(parts), volume, section, verdict=cue.verdict, label=label)

    def _hear(self, state: "ScreenState") -> None:
        last, self._last = self._last, state
        cue = cue_for(state)
        if cue is None:
            return
        if cue.verdict:
            if state == last:  # the same verdict page shown again (the screen reopened)
                return
        elif last is not None and last.kind == state.kind:
            return  # the same page with new details
        now = self._clock()
        said_at = self._said_at.get(cue.kind)
        if not cue.verdict and said_at is not None and now - said_at < cue.repeat_s:
            return
        utterance = self.utterance(state)
        if utterance is None:
            return
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
