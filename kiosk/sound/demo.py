"""`kiosk demo --sound FILE`: what the demo kiosk said, as a WAV file to listen to.

The mixer plays into SDL's disk driver (so nothing needs a sound card, and nothing is heard while
it runs); the clips are rendered into the demo's scratch data folder first (tones only, logged,
without espeak-ng). After the run the raw output becomes FILE, on the demo's real timeline.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.errors import RenderError
from kiosk.sound.clips import clip_folder, render
from kiosk.sound.recording import raw_to_wav, use_disk_driver
from kiosk.sound.voice import attach_sound

if TYPE_CHECKING:
    from kiosk.app import Kiosk

log = logging.getLogger(__name__)


class SoundRecording:
    """The demo kiosk's voice, recorded into a WAV file."""

    def __init__(self, kiosk: "Kiosk", wav: Path, workdir: Path):
        self.wav = wav
        self._raw = workdir / "sound.raw"
        use_disk_driver(self._raw)
        self._clips = 0
        try:
            report = render(kiosk.config.sound, clip_folder(kiosk.config))
            self._clips = len(report.rendered) + len(report.unchanged)
        except RenderError as exc:
            log.warning("sound: %s", exc)
        self._player = attach_sound(kiosk)
        self._enabled = kiosk.config.sound.enabled

    def idle(self) -> bool:
        """Everything said has been played: the demo can end without cutting a sentence off."""
        return self._player.wait_idle(0)

    def finish(self) -> dict[str, Any]:
        """Write the WAV file, once the kiosk has stopped (and closed the mixer)."""
        player = self._player
        if player.format is None or not self._raw.exists():
            why = player.fault or ("the config turns sound off (sound.enabled = false)" if not self._enabled
                                   else "the sound output did not open")
            return {"file": None, "problem": why}
        self.wav.parent.mkdir(parents=True, exist_ok=True)
        seconds = raw_to_wav(self._raw, self.wav, *player.format)
        self._raw.unlink()
        return {"file": str(self.wav), "seconds": round(seconds, 1), "clips": self._clips,
                "played": player.played_count}
