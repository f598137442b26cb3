"""The kiosk heard from the queue: a PASS visit and a REFUSE visit through the real kiosk (the demo's
simulated hardware), its sound recorded by SDL's disk audio driver. A missing clip folder or a
missing sound device is logged once, and every visitor is still served."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk.sim.demo import run_demo
from kiosk.sound.recording import best_match, bursts, dominant_frequency, raw_to_wav, read_wav
from kiosk.sound.voice import attach_sound

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

KIOSK = Path(sys.executable).with_name("kiosk")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is missing (./setup.sh installs it as root; CI has it)")


def demo_with_sound(tmp_path: Path, settings: str) -> tuple[dict, np.ndarray, int]:
    """`kiosk demo` with two visitors (green and normal: PASS; then a fever: REFUSE), recorded.
    In its own process: the disk driver and the mixer stay out of the other tests."""
    config = tmp_path / "demo.toml"
    config.write_text(settings)
    wav = tmp_path / "heard.wav"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_AUDIO")}
    result = subprocess.run([str(KIOSK), "demo", "--headless", "--visitors", "2", "--sound", str(wav),
                             "--config", str(config)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (summary["pass"], summary["refuse"], summary["by_reason"]) == (1, 1, {"fever": 1})
    assert summary["sound"]["file"] == str(wav)
    signal, rate = read_wav(wav)
    return summary, signal, rate


def test_pass_and_refuse_sound_different(tmp_path):
    _, signal, rate = demo_with_sound(tmp_path, "[sound]\nvoice = false\n")
    sounds = bursts(signal, rate, gap_s=0.3)
    assert len(sounds) == 2  # one per verdict, nothing else
    (pass_start, pass_end), (refuse_start, refuse_end) = sounds
    passing = dominant_frequency(signal[pass_start:pass_end], rate)
    refusing = dominant_frequency(signal[refuse_start:refuse_end], rate)
    # A listener hears a high PASS and a low REFUSE: more than an octave apart.
    assert passing > 2 * refusing, (passing, refusing)
    for start, end in sounds:
        assert np.abs(signal[start:end]).max() > 0.1  # clearly audible at the default volume


@needs_espeak
def test_the_verdict_and_the_reason_are_spoken_in_both_languages(tmp_path):
    # Time for the whole PASS to be said before the next visitor's verdict (which would cut it off).
    summary, signal, rate = demo_with_sound(tmp_path, '[kiosk]\nlanguage = "both"\nverdict_s = 5.0\n')
    clips = Path(summary["data_dir"]) / "kiosk" / "sound"

    def heard_at(name: str) -> float | None:
        clip, _ = read_wav(clips / f"{name}.wav")
        score, offset = best_match(signal, clip)
        return offset / rate if score > 0.9 else None

    said = {name: heard_at(name) for name in ("pass.zh", "pass.en", "fever.zh", "fever.en")}
    assert all(at is not None for at in said.values()), said
    assert said["pass.zh"] < said["pass.en"] < said["fever.zh"] < said["fever.en"]
    # What did not happen is not said.
    for name in ("yellow_code.en", "red_code.zh", "out_of_service.en"):
        assert heard_at(name) is None, name


def run_two_visitors(tmp_path: Path, folder: Path | None = None) -> tuple[dict, list]:
    players = []
    summary = run_demo(visitors=2, headless=True, data_dir=tmp_path / "demo",
                       observe=lambda kiosk, world: players.append(attach_sound(kiosk, folder)))
    return summary, players


def test_without_clips_the_kiosk_serves_logs_once_and_still_plays_tones(tmp_path, monkeypatch, caplog):
    raw = tmp_path / "out.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(raw))
    caplog.set_level(logging.INFO)
    summary, (player,) = run_two_visitors(tmp_path, folder=tmp_path / "no-such-folder")
    assert summary["as_expected"] == 2 and "problem" not in summary
    missing = [r for r in caplog.records if "no spoken prompts" in r.getMessage()]
    assert len(missing) == 1 and missing[0].levelno == logging.WARNING
    raw_to_wav(raw, tmp_path / "heard.wav", *player.format)
    signal, rate = read_wav(tmp_path / "heard.wav")
    pitches = [dominant_frequency(signal[a:b], rate) for a, b in bursts(signal, rate, gap_s=0.3)]
    assert len(pitches) == 2 and pitches[0] > 2 * pitches[1]  # the PASS tone, then the REFUSE tone


def test_without_a_sound_device_the_kiosk_serves_and_logs_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-audio-driver")
    summary, (player,) = run_two_visitors(tmp_path)
    assert summary["as_expected"] == 2 and "problem" not in summary
    assert summary["visitors"] == 2
    assert [r.levelno for r in caplog.records if "no sound output" in r.getMessage()] == [logging.WARNING]
    assert player.format is None and player.played_count == 0
