"""The staff's commands, run as a maintainer would run them over SSH."""

import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from kiosk.cli import build_parser
from kiosk.sim.qrframes import render_frame

ROOT = Path(__file__).resolve().parent.parent


def kiosk(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, **kwargs)


@pytest.mark.slow
@pytest.mark.e2e
def test_scan_prints_one_json_line_per_image(tmp_path):
    good = tmp_path / "code.png"
    Image.fromarray(render_frame("HCP1:SCANME", rng=random.Random(1))).save(good)
    empty = tmp_path / "empty.png"
    Image.fromarray(render_frame(None, rng=random.Random(2))).save(empty)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = kiosk("scan", str(good), str(empty), str(broken))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(empty), str(broken)]
    assert lines[0]["codes"] == ["HCP1:SCANME"]
    assert lines[1]["codes"] == []
    assert lines[2]["codes"] == [] and lines[2]["error"]


def test_every_command_has_help_with_an_example():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"run", "demo", "check-config", "scan", "upstream"} <= set(commands)
    for name, sub in commands.items():
        assert "example" in sub.format_help(), name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.e2e
def test_upstream_runs_on_its_own(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "kiosk", "upstream", "--port", str(port), "--data-dir",
                               str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                people = requests.get(f"http://127.0.0.1:{port}/platform/sim/people", timeout=1).json()
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"the upstream did not start: {server.stderr.read() if server.poll() is not None else ''}")
                time.sleep(0.1)
        assert {p["colour"] for p in people} == {"green", "yellow", "red"}
        assert any(p["proxy"] for p in people)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.e2e
def test_scan_of_a_fifo_or_a_device_answers_at_once(tmp_path):
    import os

    fifo = tmp_path / "frames"
    os.mkfifo(fifo)
    result = kiosk("scan", str(fifo), "/dev/zero")  # used to wait forever on both
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(fifo), "/dev/zero"]
    assert all(line["codes"] == [] and "not a regular file" in line["error"] for line in lines)
