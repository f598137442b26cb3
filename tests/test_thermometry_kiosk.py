"""The measurement protocol inside the running kiosk: what the visitor sees, what the log keeps.

The real kiosk loop, thermometry, screen and event log run on the emulated chip, scenario camera
and mock pins against the loopback reference upstream; a scene thread plays the visitors.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.app import Kiosk
from kiosk.sensors.body_model import BodyModel
from kiosk.sim.world import ROOM_C, SimWorld
from kit import wait_until
from scene import Scene
from scene import run_scene as run_stage

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def run_scene(tmp_path: Path, scene: Callable[[Kiosk, SimWorld, Callable[[str], str], list], None],
              **overrides: object) -> Kiosk:
    def play(stage: Scene) -> None:
        scene(stage.kiosk, stage.world, stage.code, stage.decided)

    return run_stage(tmp_path, play, **overrides).kiosk


def logged_events(tmp_path: Path) -> list[dict]:
    with sqlite3.connect(tmp_path / "kiosk" / "events.db") as connection:
        return [json.loads(body) for (body,) in connection.execute("SELECT body FROM events ORDER BY rowid")]


def skin(body_c: float) -> float:
    return BodyModel().skin(body_c, ROOM_C)


def test_fever_is_measured_twice_and_both_readings_are_logged(tmp_path: Path) -> None:
    screens: list[str] = []

    def scene(kiosk: Kiosk, world: SimWorld, code: Callable[[str], str], decided: list) -> None:
        kiosk.screen_listeners.append(lambda state: screens.append(state.kind))
        world.camera.show(code("green"), "plain")
        world.wrist.approach(skin(38.5))
        assert wait_until(lambda: bool(decided)), "a verdict"
        world.camera.hide()
        world.wrist.leave()

    kiosk = run_scene(tmp_path, scene)
    assert "measuring_again" in screens
    assert screens.index("measuring_again") < screens.index("refuse")
    (event,) = logged_events(tmp_path)
    assert event["decision"] == "REFUSE" and event["reasons"] == ["fever"]
    first, second = event["temperature_readings_c"]
    assert first >= 37.3 and second == event["temperature_c"]
    assert abs(second - 38.5) <= 0.15
    assert event["temperature_site"] == "wrist"
    assert event["skin_c"] < event["temperature_c"] and abs(event["ambient_c"] - ROOM_C) < 0.1
    assert event["temperature_fault"] is None
    assert kiosk.stopped


def test_unsteady_wrist_sees_hold_still_and_a_fault_is_logged_with_its_cause(tmp_path: Path) -> None:
    screens: list[str] = []

    def scene(kiosk: Kiosk, world: SimWorld, code: Callable[[str], str], decided: list) -> None:
        kiosk.screen_listeners.append(lambda state: screens.append(state.kind))
        world.camera.show(code("green"), "plain")
        world.wrist.noise_c = 0.6  # a hand that will not keep still
        world.wrist.approach(skin(36.6))
        assert wait_until(lambda: kiosk.phase == "hold_still"), "the hold-still prompt"
        world.chip.plugged = False  # and then the sensor is pulled
        assert wait_until(lambda: bool(decided)), "a verdict"
        world.camera.hide()
        world.wrist.leave()
        assert wait_until(lambda: kiosk.phase == "out_of_service"), "out of service"
        world.wrist.noise_c = 0.05
        world.chip.plugged = True
        assert wait_until(lambda: kiosk.phase == "idle"), "recovery"

    run_scene(tmp_path, scene, kiosk={"prompt_after_s": 8.0, "abandon_after_s": 12.0})
    assert "hold_still" in screens and "refuse" in screens
    (event,) = logged_events(tmp_path)
    assert event["decision"] == "REFUSE" and event["reasons"] == ["sensor_fault"]
    assert event["temperature_c"] is None and event["temperature_readings_c"] == []
    assert "no thermometer answers at I2C address 0x5A" in event["temperature_fault"]


def test_fahrenheit_on_screen_celsius_in_the_log(tmp_path: Path) -> None:
    shown: list[str] = []

    def scene(kiosk: Kiosk, world: SimWorld, code: Callable[[str], str], decided: list) -> None:
        world.camera.show(code("green"), "plain")
        world.wrist.approach(skin(36.6))
        assert wait_until(lambda: bool(decided)), "a verdict"
        shown.append(kiosk.parts.screen.format_temperature(kiosk.shown.temperature_c))
        world.camera.hide()
        world.wrist.leave()

    run_scene(tmp_path, scene, screen={"mode": "headless", "temperature_unit": "F"})
    (event,) = logged_events(tmp_path)
    assert event["decision"] == "PASS" and abs(event["temperature_c"] - 36.6) <= 0.15
    assert shown == [f"{event['temperature_c'] * 9 / 5 + 32:.1f} °F"]
