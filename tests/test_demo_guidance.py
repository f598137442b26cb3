"""The demo shows the guidance: `kiosk demo --screenshots DIR --sound FILE` over the first visitors of
the script (one holds the phone at arm's length at first, one the wrist too far from the sensor).
Its pictures must show the camera's view with the phone in it, a hint line, and the bar part-filled
while a reading settles; its recording must hold the spoken hint. Pixels are compared with the same
pages drawn without what the kiosk adds, so a guidance that is not wired in shows up here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame
import pytest

from kiosk.config import ScreenSection
from kiosk.display.pages import AMBER, WHITE
from kiosk.display.screen import Screen
from kiosk.display.state import ScreenState
from kiosk.sim.scenario import SCRIPT
from kiosk.sound.recording import best_match, read_wav

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

KIOSK = Path(sys.executable).with_name("kiosk")
VISITORS = next(i for i, visitor in enumerate(SCRIPT, 1) if visitor.wrist_far)
assert any(visitor.phone_far for visitor in SCRIPT[:VISITORS])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("guidance")
    config = root / "demo.toml"
    # English only (the pictures' words), and verdicts long enough for what was said before to end.
    config.write_text('[kiosk]\nlanguage = "en"\nverdict_s = 3.0\n')
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_AUDIO")}
    result = subprocess.run([str(KIOSK), "demo", "--headless", "--visitors", str(VISITORS), "--config", str(config),
                             "--screenshots", str(root / "shots"), "--sound", str(root / "heard.wav")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.splitlines()[-1])
    return {"summary": summary, "shots": root / "shots", "wav": root / "heard.wav"}


FLAT = np.full((480, 640), 128, dtype=np.uint8)


def flat_frame() -> np.ndarray:
    """A camera frame with nothing in it: where the viewfinder's box goes."""
    return FLAT


@pytest.fixture(scope="module")
def screen():
    """The demo's screen, to draw the same pages without the guidance."""
    with Screen(ScreenSection(mode="headless"), "en", preview=flat_frame) as opened:
        yield opened


def pixels(path: Path) -> np.ndarray:
    """A PNG as a (height, width, 3) array."""
    return pygame.surfarray.array3d(pygame.image.load(str(path))).swapaxes(0, 1)


def drawn(screen: Screen, state: ScreenState) -> np.ndarray:
    screen.show(state)
    screen.render()
    return pygame.surfarray.array3d(screen.surface).swapaxes(0, 1)


def near(image: np.ndarray, colour: tuple[int, int, int], within: int = 12) -> np.ndarray:
    return np.all(np.abs(image.astype(int) - colour) <= within, axis=-1)


def test_every_visitor_is_served_as_the_script_expects(demo):
    summary = demo["summary"]
    assert "problem" not in summary
    assert summary["visitors"] == summary["as_expected"] == VISITORS


def test_the_viewfinder_shows_the_camera_and_the_phone_in_it(demo, screen):
    # The first measuring page: the wrist at the sensor, the phone still at arm's length, unread.
    shot = pixels(demo["shots"] / "measuring.png")
    drawn(screen, ScreenState(kind="measuring", progress=0.0))
    box = screen.viewfinder
    assert box is not None
    inner = box.inflate(-12, -12)
    view = shot[inner.top:inner.bottom, inner.left:inner.right]
    grey = view[(view[..., 0] == view[..., 1]) & (view[..., 1] == view[..., 2])][:, 0]
    assert len(np.unique(grey)) > 40  # a camera picture, not an empty box or the icon
    # The phone: its lit screen, small at arm's length, stands out of the smooth, noisy scene behind.
    assert (grey >= np.percentile(grey, 99) + 20).sum() >= 10
    screen.set_preview(None)
    try:
        without = drawn(screen, ScreenState(kind="measuring", progress=0.0))  # the icon in the box's place
    finally:
        screen.set_preview(flat_frame)
    assert np.mean(np.any(view != without[inner.top:inner.bottom, inner.left:inner.right], axis=-1)) > 0.5


def test_a_hint_line_is_drawn_in_amber(demo, screen):
    hinted = sorted(path.stem for path in demo["shots"].glob("*-hint-*.png"))
    assert "measuring-hint-wrist_closer" in hinted
    shot = pixels(demo["shots"] / "measuring-hint-wrist_closer.png")
    plain = drawn(screen, ScreenState(kind="measuring", code_read=True))
    assert near(plain, AMBER).sum() == 0  # nothing on this page is amber but a hint
    assert near(shot, AMBER).sum() > 500


def test_the_bar_is_drawn_part_filled_while_the_reading_settles(demo, screen):
    shot = pixels(demo["shots"] / "measuring-progress.png")
    bars = []
    for code_read in (True, False):  # the page beside the viewfinder, or without it
        drawn(screen, ScreenState(kind="measuring", code_read=code_read, progress=0.0))
        bars.append(screen.progress_bar)
    empty_bar = [bar for bar in bars if bar is not None]
    assert empty_bar
    # The bar whose outline the picture has.
    bar = next(bar for bar in empty_bar if near(shot[bar.centery, bar.left + 1], WHITE))
    row = shot[bar.centery, bar.left + bar.height // 2 : bar.right - bar.height // 2]
    filled = near(row, WHITE).mean()
    assert 0.3 < filled < 0.97, filled  # at least half way (the demo's rule), not yet full


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is missing (./setup.sh installs it)")
def test_the_hint_is_spoken_before_the_verdict(demo):
    summary = demo["summary"]
    signal, rate = read_wav(demo["wav"])
    clips = Path(summary["data_dir"]) / "kiosk" / "sound"

    def heard_at(name: str) -> float | None:
        clip, _ = read_wav(clips / f"{name}.wav")
        score, offset = best_match(signal, clip)
        return offset / rate if score > 0.9 else None

    hint, verdict = heard_at("hint_wrist_closer.en"), heard_at("yellow_code.en")
    assert hint is not None and verdict is not None and hint < verdict
