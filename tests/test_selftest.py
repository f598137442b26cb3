"""`kiosk selftest` against the simulated hardware: every part passes, and a broken part fails with its cause."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from busy_pins import BusyPins

import pytest

from kiosk.config import merged
from kiosk.errors import RenderError
from kiosk.selftest import check_sound, run_selftest, sharpness
from kiosk.sound.clips import clip_folder, render
from kiosk.sim.demo import demo_config
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sim.world import SimWorld

ROOT = Path(__file__).resolve().parent.parent
PARTS = ["green light", "red light", "buzzer", "gate relay", "thermometer", "camera", "sound", "spoken prompts",
         "platform", "collector"]


def by_name(checks):
    return {check.name: check for check in checks}


def test_everything_passes_on_working_simulated_hardware(tmp_path):
    with ReferenceUpstream(port=0, data_dir=tmp_path / "up").start() as upstream:
        config = demo_config(tmp_path, upstream.url, headless=True)
        try:
            render(config.sound, clip_folder(config))  # as setup.sh does
        except RenderError:  # no espeak-ng here: a kiosk with tones only
            config = merged(config, {"sound": {"voice": False}})
        checks = run_selftest(config)
    assert [c.name for c in checks] == PARTS
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert "°C" in by_name(checks)["thermometer"].detail
    assert "brightness" in by_name(checks)["camera"].detail


def test_a_busy_gpio_pin_is_a_failed_part_not_a_crash(tmp_path):
    config = demo_config(tmp_path, "http://127.0.0.1:9", headless=True)
    world = SimWorld(config)
    world.pin_factory = BusyPins({22})  # the buzzer's pin, held by another program
    checks = by_name(run_selftest(config, world))
    assert not checks["lights"].ok
    assert "GPIO busy" in checks["lights"].detail and "lgpio.error" in checks["lights"].detail
    assert checks["thermometer"].ok and checks["camera"].ok, "the other parts are still checked"


def test_broken_parts_fail_with_their_cause(tmp_path):
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((480, 640), dtype=np.uint8)).save(black)
    config = demo_config(tmp_path, "http://127.0.0.1:9", headless=True)  # nothing listens on port 9
    config = merged(config, {"camera": {"driver": "files", "path": str(black)}})
    world = SimWorld(config)
    world.chip.plugged = False
    checks = by_name(run_selftest(config, world))
    assert not checks["thermometer"].ok and "0x5A" in checks["thermometer"].detail
    assert not checks["camera"].ok and "too dark" in checks["camera"].detail
    assert not checks["platform"].ok and "unreachable" in checks["platform"].detail
    assert not checks["collector"].ok
    assert checks["green light"].ok and checks["gate relay"].ok


def test_sharpness_tells_crisp_from_blurred():
    rng = np.random.default_rng(1)
    crisp = (rng.random((120, 160)) > 0.5).astype(np.uint8) * 255
    flat = np.full((120, 160), 128, dtype=np.uint8)
    assert sharpness(crisp) > 1000 > sharpness(flat)


@pytest.mark.slow
@pytest.mark.e2e
def test_command_exits_non_zero_on_a_failure(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[kiosk]\ndata_dir = "{tmp_path}"\n[thermometer]\ndriver = "sim"\n[camera]\ndriver = "sim"\n'
        '[lights]\ndriver = "mock"\n[platform]\nurl = "http://127.0.0.1:9/platform"\ntimeout_s = 0.5\n'
        '[upstream]\nurl = "http://127.0.0.1:9"\ntimeout_s = 0.5\n'
    )
    result = subprocess.run([sys.executable, "-m", "kiosk", "selftest", "--config", str(config), "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["thermometer"]["ok"] and checks["camera"]["ok"]
    assert not checks["platform"]["ok"] and not checks["collector"]["ok"]
    table = subprocess.run([sys.executable, "-m", "kiosk", "selftest", "--config", str(config)],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "FAIL  platform" in table.stdout and "PASS  thermometer" in table.stdout


def test_sound_checks_the_device_and_that_the_spoken_prompts_are_current(tmp_path, monkeypatch):
    config = demo_config(tmp_path, "http://127.0.0.1:9", headless=True)
    device, prompts = check_sound(config)
    assert device.ok and "beeps played" in device.detail  # SDL's dummy audio driver stands in for the card
    assert not prompts.ok and "kiosk sound render" in prompts.detail  # never rendered
    try:
        render(config.sound, clip_folder(config))
    except RenderError:
        pytest.skip("espeak-ng is missing (./setup.sh installs it as root; CI has it)")
    assert check_sound(config)[1].ok
    other_voice = merged(config, {"sound": {"en_voice": "en-gb"}})
    stale = check_sound(other_voice)[1]
    assert not stale.ok and "other texts or voices" in stale.detail
    assert [c.detail for c in check_sound(merged(config, {"sound": {"enabled": False}}))] == [
        "off (sound.enabled = false): nothing to check"]
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-audio-driver")
    device = check_sound(config)[0]
    assert not device.ok and device.detail.startswith("no sound device: ")
