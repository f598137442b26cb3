"""The player on a real pygame.mixer, heard through SDL's disk audio driver: what waits is kept
short, a verdict comes first, quiet hours are quieter and wordless, and nothing it meets stops it."""

from __future__ import annotations

import shutil
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import Config, SoundSection
from kiosk.display.state import ScreenState
from kiosk.sound.clips import ClipShelf, render
from kiosk.sound.player import Player, Tone, Utterance
from kiosk.sound.recording import best_match, bursts, dominant_frequency, raw_to_wav, read_wav
from kiosk.sound.voice import Voice


pytestmark = [pytest.mark.slow]  # real sound, in real time


@pytest.fixture
def disk(tmp_path, monkeypatch) -> Path:
    """The mixer plays into a file (set before it opens; only this test's mixer sees it)."""
    raw = tmp_path / "out.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(raw))
    return raw


class Running:
    """A player on its own thread, as the kiosk runs it."""

    def __init__(self, folder: Path):
        self.player = Player(ClipShelf(folder))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.player.run, args=(self.stop,), daemon=True)

    def start(self) -> "Running":
        self.thread.start()
        return self

    def finish(self, raw: Path, tmp_path: Path) -> tuple[np.ndarray, int]:
        assert self.player.wait_idle(60)
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        wav = tmp_path / "heard.wav"
        raw_to_wav(raw, wav, *self.player.format)
        return read_wav(wav)


def tone(name: str, volume: float = 0.8, verdict: bool = False) -> Utterance:
    return Utterance((Tone(name),), volume, SoundSection(), verdict=verdict, label=name)


def heard(signal: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """(pitch in Hz, loudness as RMS) of each sound in the recording, in order."""
    return [(dominant_frequency(signal[a:b], rate), float(np.sqrt(np.mean(signal[a:b] ** 2))))
            for a, b in bursts(signal, rate, gap_s=0.2)]


def test_a_new_prompt_replaces_one_still_waiting(disk, tmp_path):
    running = Running(tmp_path / "no-clips")
    running.player.say(tone("refuse"))  # a prompt nobody needs any more...
    running.player.say(tone("pass"))  # ...once the next one is there
    signal, rate = running.start().finish(disk, tmp_path)
    sounds = heard(signal, rate)
    assert len(sounds) == 1 and sounds[0][0] > 600


def test_a_verdict_is_never_replaced_by_a_prompt(disk, tmp_path):
    running = Running(tmp_path / "no-clips")
    running.player.say(tone("refuse", verdict=True))
    running.player.say(tone("pass"))
    signal, rate = running.start().finish(disk, tmp_path)
    pitches = [pitch for pitch, _ in heard(signal, rate)]
    assert len(pitches) == 2 and pitches[0] < 450 < 600 < pitches[1]


def test_say_returns_at_once_even_with_no_player_running(tmp_path):
    player = Player(ClipShelf(tmp_path))
    for _ in range(1000):
        player.say(tone("pass"))
    assert not player.wait_idle(0)  # it is all still waiting, and the caller went on


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is missing (./setup.sh installs it as root; CI has it)")
def test_quiet_hours_are_heard_quieter_and_without_words(disk, tmp_path):
    folder = tmp_path / "sound"
    render(SoundSection(), folder)
    config = Config(sound=SoundSection(quiet_hours="22:00-07:00", volume=0.8, quiet_volume=0.2))
    local = [datetime(2026, 11, 30, 12, 0).astimezone()]
    running = Running(folder).start()
    voice = Voice(running.player.say, lambda: (config.sound, "en"), localnow=lambda: local[0])
    voice(ScreenState(kind="refuse", reasons=("fever",)))
    assert running.player.wait_idle(60)
    voice(ScreenState(kind="idle"))
    local[0] = datetime(2026, 11, 30, 23, 0).astimezone()
    voice(ScreenState(kind="refuse", reasons=("fever",)))
    signal, rate = running.finish(disk, tmp_path)
    clip, _ = read_wav(folder / "fever.en.wav")
    score, at = best_match(signal, clip)
    assert score > 0.9  # by day the reason is spoken...
    day, night = signal[: at + len(clip)], signal[at + len(clip):]
    assert best_match(night, clip)[0] < 0.5  # ...at night it is not:
    (start, end), = bursts(night, rate)  # one sound only,
    assert end - start < 0.8 * rate and dominant_frequency(night[start:end], rate) < 450  # the REFUSE tone,
    assert np.abs(night).max() < 0.5 * np.abs(day).max()  # and a lot softer


def test_a_clip_that_cannot_be_read_is_logged_once_and_the_tone_still_plays(disk, tmp_path, caplog):
    folder = tmp_path / "sound"
    folder.mkdir()
    from kiosk.sound.clips import wanted
    import json

    # A manifest that promises the clip, and a file that is not a WAV.
    spec = next(s for s in wanted(SoundSection()) if s.name == "pass.en.wav")
    (folder / "manifest.json").write_text(json.dumps({"clips": {spec.name: spec.entry("test")}}))
    (folder / spec.name).write_bytes(b"not a sound")
    from kiosk.sound.player import Clip

    running = Running(folder).start()
    for _ in range(3):
        running.player.say(Utterance((Tone("pass"), Clip("pass", "en")), 0.8, SoundSection(), verdict=True))
        assert running.player.wait_idle(30)
    signal, rate = running.finish(disk, tmp_path)
    assert len(bursts(signal, rate, gap_s=0.2)) == 3  # three PASS tones
    assert sum("cannot play" in r.getMessage() for r in caplog.records) == 1
