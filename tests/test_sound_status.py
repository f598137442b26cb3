"""`kiosk status` says how the sound is: the daemon's player, saved with the rest of the status and
read by the status command in another process (here: from the event log file, as it does)."""

from __future__ import annotations

import threading

import pytest

from kiosk.config import SoundSection
from kiosk.runtime import StatusReporter
from kiosk.sound.clips import ClipShelf
from kiosk.sound.player import Player
from kiosk.status import collect, render
from kit import wait_until
from scene import Scene, run_scene


def running_player(folder) -> tuple[Player, threading.Event, threading.Thread]:
    player = Player(ClipShelf(folder))
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,), daemon=True)
    thread.start()
    assert wait_until(lambda: player.format is not None or player.fault is not None, 10)
    return player, stop, thread


def test_the_player_says_what_is_not_heard_and_why(tmp_path, monkeypatch):
    player, stop, thread = running_player(tmp_path / "no-clips")
    try:
        said = player.describe(SoundSection())
        assert said.startswith("clips missing: run `kiosk sound render`") and "0 of " in said
        assert player.describe(SoundSection(voice=False)) == "ok (tones only: sound.voice = false)"
        assert player.describe(SoundSection(enabled=False)) == "off (sound.enabled = false)"
    finally:
        stop.set()
        thread.join(5)
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-audio-driver")
    player, stop, thread = running_player(tmp_path / "no-clips")
    try:
        assert player.describe(SoundSection()).startswith("no sound device: ")
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.slow
@pytest.mark.e2e
def test_kiosk_status_shows_the_sound_line(tmp_path):
    seen = {}

    def scene(s: Scene) -> None:
        player, stop, thread = running_player(tmp_path / "no-clips")
        try:
            reporter = StatusReporter(s.kiosk, sound=lambda: player.describe(s.kiosk.config.sound))
            reporter.report()
            seen["missing"] = collect(s.kiosk.config)
            # A kiosk whose config turns sound off (a restart key: its own run, with its own player).
            StatusReporter(s.kiosk, sound=lambda: player.describe(SoundSection(enabled=False))).report()
            seen["off"] = collect(s.kiosk.config)
        finally:
            stop.set()
            thread.join(5)

    run_scene(tmp_path, scene)
    assert seen["missing"]["sound"].startswith("clips missing: run `kiosk sound render`")
    table = render(seen["off"]).splitlines()
    assert "off (sound.enabled = false)" in next(line for line in table if line.startswith("sound "))
