"""A damaged or hostile sound folder: a FIFO or a link to /dev/zero in place of a clip or of the
manifest, a huge file, a manifest nested 100,000 deep. The player skips what it cannot read, keeps
playing the tones and its thread alive; nothing waits forever or reads without bound.

The player cases run in a child process with a memory limit and a hard kill: before the clips were
read with a bound, SDL opened a FIFO holding the GIL (the whole process stood still, a test
timeout included) and read /dev/zero until memory ran out."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from kiosk.config import SoundSection
from kiosk.sound.clips import (
    MANIFEST,
    ClipLibrary,
    ClipShelf,
    read_manifest,
    render,
    wanted,
)

# The child's address space: room for pygame and numpy, not for a runaway read.
CHILD_MEMORY = 2 * 1024**3
# Peak memory a player that read no runaway file stays well under (pygame, numpy, the tones).
CHILD_PEAK_MB = 400

CLIP = "pass.en.wav"


def promise_clip(folder: Path) -> None:
    """A manifest that promises the PASS prompt's English clip (as a render would write it)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = next(s for s in wanted(SoundSection()) if s.name == CLIP)
    (folder / MANIFEST).write_text(json.dumps({"clips": {spec.name: spec.entry("test")}}))


def sparse(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        out.truncate(size)


def hostile(folder: Path, kind: str, target: str) -> None:
    """Put a hostile ``kind`` of file at ``folder/target``."""
    path = folder / target
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        sparse(path, 5 * 1024**3)
    else:
        raise AssertionError(kind)


PLAYER = textwrap.dedent("""
    import json, sys, threading
    from pathlib import Path
    from kiosk.config import SoundSection
    from kiosk.sound.clips import ClipShelf
    from kiosk.sound.player import Clip, Player, Tone, Utterance

    player = Player(ClipShelf(Path(sys.argv[1])))
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,), daemon=True)
    thread.start()
    idle = []
    for _ in range(2):
        player.say(Utterance((Tone("pass"), Clip("pass", "en")), 0.8, SoundSection(), verdict=True, label="pass"))
        idle.append(player.wait_idle(30))
    alive = thread.is_alive()
    stop.set()
    thread.join(10)
    # VmHWM: this process's own peak. (ru_maxrss would carry over the forked test runner's size.)
    status = open('/proc/self/status').read()
    peak_mb = int(status.split('VmHWM:')[1].split()[0]) / 1024
    print(json.dumps({"idle": idle, "alive": alive, "played": list(player.played), "peak_mb": peak_mb}))
""")


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def play_in_child(folder: Path, tmp_path: Path) -> tuple[dict, str]:
    env = {**os.environ, "SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": str(tmp_path / "out.raw")}
    try:
        done = subprocess.run([sys.executable, "-c", PLAYER, str(folder)], capture_output=True, text=True,
                              env=env, timeout=90, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:  # run() has killed it (SIGKILL: SDL catches SIGTERM)
        pytest.fail("the player's process stood still")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "huge"])
def test_a_hostile_clip_is_skipped_and_the_tone_still_plays(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "sound"
    promise_clip(folder)
    hostile(folder, kind, CLIP)
    outcome, log = play_in_child(folder, tmp_path)
    assert outcome["idle"] == [True, True]  # every verdict was played, none waits
    assert outcome["played"] == ["pass", "pass"]  # the PASS tone each time
    assert outcome["alive"]
    assert outcome["peak_mb"] < CHILD_PEAK_MB
    assert log.count("cannot play") == 1 and CLIP in log  # said once, naming the clip


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "huge", "deep"])
def test_a_hostile_manifest_leaves_the_tones_playing(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "sound"
    promise_clip(folder)
    if kind == "deep":
        (folder / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    else:
        hostile(folder, kind, MANIFEST)
    outcome, log = play_in_child(folder, tmp_path)
    assert outcome["idle"] == [True, True] and outcome["played"] == ["pass", "pass"] and outcome["alive"]
    assert outcome["peak_mb"] < CHILD_PEAK_MB
    assert "no manifest.json" in log  # what the operator reads: render the prompts again


def in_thread(call, timeout: float = 30.0):
    """``call()`` on a thread: a hang is a failure, not a hung test run."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "waited forever"
    return result[0]


@pytest.mark.parametrize("content", ["[1, 2]", '"clips"', "{\"clips\": [1]}", "\udcff", "[" * 100_000])
def test_a_manifest_that_is_no_manifest_is_none(tmp_path: Path, content: str) -> None:
    (tmp_path / MANIFEST).write_bytes(content.encode("utf-8", "surrogateescape"))
    assert read_manifest(tmp_path) is None
    assert "no manifest.json" in (ClipLibrary(tmp_path, SoundSection()).problem or "")


def test_a_fifo_as_manifest_is_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / MANIFEST)
    assert in_thread(lambda: read_manifest(tmp_path)) is None
    library = in_thread(lambda: ClipShelf(tmp_path).library(SoundSection()))
    assert len(library) == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is missing")
@pytest.mark.parametrize("kind", ["fifo", "deep"])
def test_render_check_over_a_hostile_manifest_says_what_to_render(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "sound"
    folder.mkdir()
    if kind == "fifo":
        os.mkfifo(folder / MANIFEST)
    else:
        (folder / MANIFEST).write_text("{\"clips\": " * 100_000)
    report = in_thread(lambda: render(SoundSection(), folder, check=True), timeout=120)
    assert len(report.rendered) == len(wanted(SoundSection()))  # everything, as for no manifest at all
