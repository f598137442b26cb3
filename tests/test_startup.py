"""Hardware missing at boot: the kiosk opens its screen, says why it is out of service, and recovers.

Each case swaps only the lowest layer for what a Pi gives when the part is not there: Blinka's
`board.I2C()` failing while the I2C adapter is not loaded, a GPIO pin that lgpio reports busy. The
real kiosk runs on top (screen, lights, status snapshot), and must come back by itself once the
part appears, then serve a visitor.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from kiosk.runtime import StatusReporter
from kiosk.sim.qrframes import render_frame
from kiosk.sim.world import SimWorld
from busy_pins import BusyPins
from picamera2_standin import StandInPicamera2, install_standin
from scene import Scene, run_scene

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

GREEN, RED = 17, 27
ROOT = Path(__file__).resolve().parent.parent


def out_of_service_with(scene: Scene, words: str) -> bool:
    shown = scene.kiosk.shown
    return scene.kiosk.phase == "out_of_service" and shown is not None and words in (shown.detail or "")


def red_blinks(scene: Scene) -> bool:
    levels = set()
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and len(levels) < 2:
        levels.add(scene.pin(RED))
        time.sleep(0.05)
    return levels == {True, False}


def test_a_busy_gpio_pin_at_boot_puts_the_kiosk_out_of_service_until_it_is_free(tmp_path):
    pins = BusyPins({GREEN})

    def use_busy_pins(world: SimWorld) -> None:
        world.pin_factory = pins

    def scene(s: Scene) -> None:
        s.wait(lambda: out_of_service_with(s, "GPIO busy"), "out of service for the busy pin")
        assert "lgpio.error" in s.kiosk.shown.detail
        status = StatusReporter(s.kiosk).snapshot()
        assert status["kiosk_state"] == "out_of_service" and "GPIO busy" in status["lights"]
        pins.busy.clear()  # the other program lets go of GPIO17
        s.wait(lambda: s.kiosk.phase == "idle", "back in service", timeout=12)
        assert StatusReporter(s.kiosk).snapshot()["lights"] == "ok"
        decided = s.visit(s.code("green"))
        assert decided.verdict.passed and decided.event.decision == "PASS"

    scene_ran = run_scene(tmp_path, scene, world_setup=use_busy_pins, ready=lambda kiosk: kiosk.shown is not None)
    assert [d.event.decision for d in scene_ran.decided] == ["PASS"]


def test_an_absent_i2c_bus_at_boot_is_a_thermometer_fault_that_clears_when_the_bus_appears(tmp_path, monkeypatch):
    world_bus: list = []
    adapter_loaded = threading.Event()

    def i2c():
        # Blinka, while /dev/i2c-1 does not exist yet (i2c-dev not loaded, I2C not enabled).
        if not adapter_loaded.is_set():
            raise ValueError("No Hardware I2C on (scl,sda)=(3, 2)\nValid I2C ports: ()")
        return world_bus[0]

    monkeypatch.setitem(sys.modules, "board", types.SimpleNamespace(I2C=i2c))

    def scene(s: Scene) -> None:
        s.wait(lambda: out_of_service_with(s, "no I2C bus"), "out of service for the missing bus")
        assert "raspi-config" in s.kiosk.shown.detail
        assert red_blinks(s), "the red light blinks while out of service"
        assert "no I2C bus" in StatusReporter(s.kiosk).snapshot()["thermometer"]
        adapter_loaded.set()
        s.wait(lambda: s.kiosk.phase == "idle", "back in service")
        decided = s.visit(s.code("green"))
        assert decided.event.decision == "PASS"

    run_scene(tmp_path, scene, world_setup=lambda world: world_bus.append(world.bus),
              ready=lambda kiosk: kiosk.shown is not None, thermometer={"driver": "mlx90614"})


def test_a_camera_missing_at_boot_is_out_of_service_until_it_is_plugged_in(tmp_path, monkeypatch):
    install_standin(monkeypatch)
    monkeypatch.setattr(StandInPicamera2, "fail_on", "open")  # no camera on the ribbon connector

    def scene(s: Scene) -> None:
        s.wait(lambda: out_of_service_with(s, "cannot start camera"), "out of service for the missing camera")
        assert red_blinks(s)
        assert "trying again" in StatusReporter(s.kiosk).snapshot()["camera"]
        frame = render_frame(s.code("green"), 640, 480, rng=random.Random(2))
        monkeypatch.setattr(StandInPicamera2, "y_plane", frame)  # a visitor holds up a code ...
        monkeypatch.setattr(StandInPicamera2, "fail_on", None)  # ... once the camera is plugged in
        s.wait(lambda: bool(s.kiosk.parts.reader.frames), "frames from the camera")
        s.world.wrist.approach(36.6)
        s.wait(lambda: bool(s.decided), "a verdict")
        assert s.decided[0].event.decision == "PASS"
        s.world.wrist.leave()

    run_scene(tmp_path, scene, ready=lambda kiosk: kiosk.shown is not None, camera={"driver": "picamera2"})


def status_json(config: Path) -> dict:
    answer = subprocess.run([sys.executable, "-m", "kiosk", "status", "--json", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    return json.loads(answer.stdout) if answer.stdout.strip() else {}


def test_kiosk_run_on_a_machine_without_the_hardware_stays_up_out_of_service(tmp_path):
    """`kiosk run` with the real drivers where there is no I2C, no camera and no GPIO: no crash loop."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n'
        '[screen]\nmode = "headless"\n'
        '[platform]\nurl = "http://127.0.0.1:9/platform"\n'
        '[upstream]\nurl = "http://127.0.0.1:9"\n'
    )
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    daemon = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 40
        status: dict = {}
        while time.monotonic() < deadline and daemon.poll() is None:
            status = status_json(config)
            if status.get("state") == "out_of_service" and status.get("camera") not in (None, "ok"):
                break
            time.sleep(0.5)
        assert daemon.poll() is None, f"kiosk run exited: {daemon.communicate()[1][-2000:]}"
        assert status.get("state") == "out_of_service", status
        assert "lgpio.error" in status["lights"]
        assert "no I2C bus" in status["thermometer"]
        assert "picamera2" in status["camera"]
        assert status["fault"].startswith("lights: cannot open GPIO pins")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=20)
        assert daemon.returncode == 0, "SIGTERM is a clean stop"
        # What a technician reads in the journal: the cause and what to do, no traceback.
        assert "Traceback" not in stderr
        assert "not a Raspberry Pi with I2C" in stderr and "kiosk demo" in stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
