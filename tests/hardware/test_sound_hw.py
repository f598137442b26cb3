"""On the Pi: the tones and a spoken prompt through the sound output the service uses (ALSA's
default card, or the one AUDIODEV names). Listen while it runs: a rising PASS chime, a low falling
REFUSE tone, three short beeps, then the REFUSE tone with "high temperature, please see staff" in
Chinese and English. Run it with the service stopped (it holds the sound card while it plays)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from kiosk.config import SoundSection
from kiosk.sound.clips import ClipShelf, render
from kiosk.sound.player import Clip, Player, Tone, Utterance

CARDS = Path("/proc/asound/cards")


@pytest.fixture
def alsa(monkeypatch):
    # The service's own setting (kiosk.service: Environment=SDL_AUDIODRIVER=alsa).
    monkeypatch.setenv("SDL_AUDIODRIVER", "alsa")
    try:
        cards = CARDS.read_text()
    except OSError:
        cards = ""
    if not cards.strip() or "no soundcards" in cards:
        pytest.skip("no sound card: this kiosk runs without sound (docs/deploy.md, \"Voice and tones\")")


def play(folder: Path, *utterances: Utterance) -> Player:
    player = Player(ClipShelf(folder))
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for utterance in utterances:
            print(f">>> Listen: {utterance.label}")
            player.say(utterance)
            assert player.wait_idle(30)
    finally:
        stop.set()
        thread.join(10)
    return player


def test_the_tones_play_on_the_sound_card(alsa, tmp_path):
    player = play(tmp_path, *(Utterance((Tone(name),), 0.8, SoundSection(), verdict=True, label=f"the {name} tone")
                              for name in ("pass", "refuse", "attention")))
    assert player.format is not None, player.fault
    assert player.played_count == 3


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is missing (setup.sh installs it)")
def test_a_spoken_prompt_plays_on_the_sound_card(alsa, tmp_path):
    report = render(SoundSection(), tmp_path / "sound")
    assert not report.failed, report.failed
    said = Utterance((Tone("refuse"), Clip("fever", "zh"), Clip("fever", "en")), 0.8, SoundSection(), verdict=True,
                     label="REFUSE, then the fever prompt in Chinese and English")
    player = play(tmp_path / "sound", said)
    assert player.format is not None, player.fault
    assert player.played_count == 1
