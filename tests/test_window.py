"""The demo in a real window, as on a desktop: on a virtual X display when Xvfb is installed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (./setup.sh installs it as root)")
def test_demo_runs_in_a_window(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-m", "kiosk", "demo", "--visitors", "2", "--screenshots", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "screen open: window 800x480" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["as_expected"] == summary["visitors"] == 2
    assert (tmp_path / "pass.png").exists()
