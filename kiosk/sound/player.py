"""Plays tones and clips through pygame.mixer, on its own thread.

The screen loop only hands over what to say: ``say()`` puts it in a short list under a lock and
returns; opening the sound device, reading clips and waiting for the end of a sound all happen on
the player's thread. What is waiting is kept short: a new prompt replaces a prompt not yet played
(it is stale: the visitor has moved on), and a verdict replaces everything waiting and cuts off
a prompt being spoken, since it is what the visitor needs to hear now. A verdict is never
replaced by a prompt: the prompt waits for it.

No sound device (or SDL's audio driver missing) is logged once, the utterances are dropped and the
device is tried again at most once a minute; a clip that cannot be read is logged once and
skipped, and the tones still play. Nothing here ever stops the kiosk.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kiosk.config import SoundSection
from kiosk.sound import tones
from kiosk.sound.clips import MAX_CLIP_BYTES, ClipLibrary, ClipShelf, read_bounded

log = logging.getLogger(__name__)

# The clips' and tones' own format (espeak-ng writes 22050 Hz mono), stereo out; SDL converts for
# a device that wants another rate. allowedchanges=0 keeps this format whatever the device, so a
# recording of the output (SDL's disk driver) always has it.
FREQUENCY, SIZE, CHANNELS = tones.RATE, -16, 2
BUFFER = 1024  # frames: 46 ms at 22050 Hz
RETRY_OPEN_S = 60.0
GAP_S = 0.12  # between two parts of one utterance
PAUSE_S = 0.3  # between two utterances: they do not run into each other
POLL_S = 0.02


@dataclass(frozen=True)
class Tone:
    name: str


@dataclass(frozen=True)
class Clip:
    key: str
    language: str


@dataclass(frozen=True)
class Utterance:
    """A tone and/or clips, played in order at one volume."""

    parts: tuple[Tone | Clip, ...]
    volume: float
    section: SoundSection
    verdict: bool = False
    label: str = ""


class Player:
    def __init__(self, clips: ClipShelf, open_at_start: bool = True, clock: Callable[[], float] = time.monotonic):
        self._clips = clips
        self._open_at_start = open_at_start
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[Utterance] = []
        self._cut = False
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._mixer: Any = None  # the pygame.mixer module, once the device is open
        self._failed_at: float | None = None
        self._ended_at = float("-inf")
        self._logged: set[str] = set()
        self._tones: dict[str, Any] = {}
        # The clips read from the library in use (None: could not be played), dropped when the
        # shelf hands out a new library (every `kiosk sound render` rewrites the manifest).
        self._clip_sounds: dict[Path, Any] = {}
        self._clips_of: ClipLibrary | None = None
        # (frequency, size, channels) of the open device: what a recording of it is in.
        self.format: tuple[int, int, int] | None = None
        self.fault: str | None = None
        # The labels of the last utterances played to their end, newest last (for `kiosk status`-like views).
        self.played: deque[str] = deque(maxlen=20)
        self.played_count = 0

    # --- any thread -----------------------------------------------------------------------------

    def say(self, utterance: Utterance) -> None:
        """Queue ``utterance``; returns at once."""
        with self._lock:
            if utterance.verdict:
                self._pending = [utterance]
                self._cut = True
            else:
                self._pending = [waiting for waiting in self._pending if waiting.verdict] + [utterance]
            self._idle.clear()
        self._wake.set()

    def describe(self, section: SoundSection) -> str:
        """One line for `kiosk status`: "ok", or what is not heard and why."""
        if not section.enabled:
            return "off (sound.enabled = false)"
        if self.fault:
            return self.fault
        if self.format is None:
            return "sound device not opened yet"
        if not section.voice:
            return "ok (tones only: sound.voice = false)"
        library = self._clips.library(section)
        if library.problem:
            return (f"clips missing: run `kiosk sound render` (tones only until then; "
                    f"{len(library)} of {library.expected} clips usable)")
        return "ok"

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything said has been played (or dropped); False on timeout."""
        return self._idle.wait(timeout)

    # --- the player's thread ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            if self._open_at_start:
                self._ready()
            while not stop.is_set():
                utterance = self._take()
                if utterance is None:
                    self._wake.wait(0.1)
                    self._wake.clear()
                    continue
                try:
                    if self._ready():
                        self._play(utterance, stop)
                except Exception:  # a bug in playing must not end the thread: the next prompt still plays
                    self._log_once("play", "sound: could not play %s", utterance.label or "a prompt", exc_info=True)
        finally:
            self._close()
            with self._lock:
                self._pending.clear()
            self._idle.set()

    def _take(self) -> Utterance | None:
        with self._lock:
            self._cut = False
            if not self._pending:
                self._idle.set()
                return None
            return self._pending.pop(0)

    def _cut_off(self) -> bool:
        with self._lock:
            return self._cut

    def _log_once(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message, *args, exc_info=exc_info)

    def _ready(self) -> bool:
        """Open the sound device if it is not open; False (logged once) if it cannot be."""
        if self._mixer is not None:
            return True
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < RETRY_OPEN_S:
            return False
        try:
            import pygame.mixer as mixer

            mixer.init(frequency=FREQUENCY, size=SIZE, channels=CHANNELS, buffer=BUFFER, allowedchanges=0)
            opened = mixer.get_init()
            if not opened:
                raise RuntimeError("the mixer did not open")
        except Exception as exc:  # pygame.error, ImportError: no device, no driver, no SDL audio
            self._failed_at = now
            self.fault = f"no sound device: {exc}"
            self._log_once("open", "sound: no sound output (%s): the kiosk carries on without sound", exc)
            return False
        if self._failed_at is not None:
            log.info("sound: the sound output works again")
        self._mixer, self._failed_at, self.fault = mixer, None, None
        self.format = (opened[0], opened[1], opened[2])
        return True

    def _close(self) -> None:
        if self._mixer is not None:
            self._tones.clear()
            self._clip_sounds.clear()
            try:
                self._mixer.quit()
            except Exception:
                log.debug("sound: closing the mixer failed", exc_info=True)
            self._mixer = None

    def _sound(self, part: Tone | Clip, library: ClipLibrary | None) -> Any:
        """The pygame Sound of a part, or None (logged once) if it cannot be had."""
        mixer = self._mixer
        assert mixer is not None
        if isinstance(part, Tone):
            if part.name not in self._tones:
                self._tones[part.name] = mixer.Sound(file=io.BytesIO(tones.wav_bytes(part.name)))
            return self._tones[part.name]
        assert library is not None
        if library is not self._clips_of:
            # A new library: the manifest changed (a render while the kiosk runs is heard at once).
            self._clip_sounds.clear()
            self._clips_of = library
        path: Path | None = library.path(part.key, part.language)
        if path is None:
            return None  # the shelf has logged why
        if path in self._clip_sounds:
            return self._clip_sounds[path]
        try:
            # Read here, bounded: SDL would wait on a FIFO holding the GIL, or read a device forever.
            sound = mixer.Sound(file=io.BytesIO(read_bounded(path, MAX_CLIP_BYTES)))
        except Exception as exc:  # OSError, pygame.error: a damaged, deleted or odd clip
            self._log_once(f"clip:{path}", "sound: cannot play %s (%s): skipped", path, exc)
            sound = None  # not read again until the next render
        self._clip_sounds[path] = sound
        return sound

    def _play(self, utterance: Utterance, stop: threading.Event) -> None:
        mixer = self._mixer
        assert mixer is not None
        channel = mixer.Channel(0)
        channel.set_volume(1.0)
        if stop.wait(max(0.0, self._ended_at + PAUSE_S - self._clock())) or self._cut_off():
            return
        try:
            self._speak(utterance, channel, stop)
        finally:
            self._ended_at = self._clock()

    def _speak(self, utterance: Utterance, channel: Any, stop: threading.Event) -> None:
        first = True
        heard = False
        # Once per utterance: the shelf checks the manifest's time at each call.
        library = self._clips.library(utterance.section) if any(isinstance(p, Clip) for p in utterance.parts) else None
        for part in utterance.parts:
            sound = self._sound(part, library)
            if sound is None:
                continue
            if not first and (stop.wait(GAP_S) or self._cut_off()):
                return
            first = False
            sound.set_volume(utterance.volume)  # the Sound's own volume: set before it starts
            channel.play(sound)
            heard = True
            while channel.get_busy():
                if stop.is_set() or self._cut_off():
                    channel.stop()
                    return
                stop.wait(POLL_S)
        if heard:
            self.played.append(utterance.label)
            self.played_count += 1
