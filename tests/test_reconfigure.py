"""Which config edits the running kiosk applies in place, and that each of those really takes effect.

Only the keys in ``kiosk.reconfigure.HOT`` are applied without a restart; each one is changed here
in a running kiosk (real parts on simulated hardware), and its new value is read back from the part
that uses it, not from the config the kiosk was handed. Every other key, one added later included,
restarts the kiosk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygame
import pytest

from kiosk.config import Config, merged
from kiosk.reconfigure import HOT, needs_restart, plan
from scene import Scene, run_scene

FONT = str(Path(pygame.__file__).parent / "freesansbold.ttf")  # a font file every pygame ships


def _thermometry(key: str) -> Callable[[Any], Any]:
    return lambda kiosk: getattr(kiosk.parts.thermometry.section, key)


def _lights(key: str) -> Callable[[Any], Any]:
    return lambda kiosk: getattr(kiosk.parts.lights.section, key)


def _pin(device: str) -> Callable[[Any], Any]:
    # The pin the open light is really on (the mock factory names it GPIO<n>).
    return lambda kiosk: int(getattr(kiosk.parts.lights.lights, device).pin.info.name.removeprefix("GPIO"))


def _config(section: str, key: str) -> Callable[[Any], Any]:
    # Only for keys the kiosk loop reads from its own config at each use (or, for
    # calibration_limit_c, that only `kiosk calibrate` reads): there the config is the live value.
    return lambda kiosk: getattr(getattr(kiosk.config, section), key)


# Every hot key: a new value (valid together with the ones before it, applied in this order) and
# where the running kiosk uses it. A key added to HOT needs a line here, reading the value where
# it takes effect; a key that is not re-read after a reload then fails below.
HOT_KEYS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "kiosk.verdict_s": (2.5, _config("kiosk", "verdict_s")),
    "kiosk.prompt_after_s": (5.0, _config("kiosk", "prompt_after_s")),
    "kiosk.abandon_after_s": (12.0, _config("kiosk", "abandon_after_s")),
    "screen.fps": (20.0, _config("screen", "fps")),
    "kiosk.language": ("en", lambda kiosk: kiosk.parts.screen.language),
    "screen.mode": ("window", lambda kiosk: kiosk.parts.screen.mode),
    "screen.width": (640, lambda kiosk: kiosk.parts.screen.surface.get_width()),
    "screen.height": (400, lambda kiosk: kiosk.parts.screen.surface.get_height()),
    "screen.font": (FONT, lambda kiosk: str(kiosk.parts.screen.fonts.path)),
    "screen.temperature_unit": ("F", lambda kiosk: kiosk.parts.screen.section.temperature_unit),
    "screen.text_size": ("large", lambda kiosk: kiosk.parts.screen.section.text_size),
    # The start page as drawn: with the camera's view until it is turned off (each screen opened
    # again before this one must have kept it).
    "screen.viewfinder": (False, lambda kiosk: kiosk.parts.screen.viewfinder is not None),
    "thermometer.sample_hz": (15.0, _thermometry("sample_hz")),
    "thermometer.presence_c": (31.0, _thermometry("presence_c")),
    "thermometer.presence_rise_c": (1.5, _thermometry("presence_rise_c")),
    "thermometer.stable_window_s": (0.4, _thermometry("stable_window_s")),
    "thermometer.stable_tolerance_c": (0.15, _thermometry("stable_tolerance_c")),
    "thermometer.hold_still_after_s": (2.0, _thermometry("hold_still_after_s")),
    "thermometer.max_settle_s": (5.0, _thermometry("max_settle_s")),
    "thermometer.remeasure_wait_s": (6.0, _thermometry("remeasure_wait_s")),
    "thermometer.site": ("forehead", _thermometry("site")),
    "thermometer.wrist_k": (0.05, _thermometry("wrist_k")),
    "thermometer.forehead_k": (0.04, _thermometry("forehead_k")),
    "thermometer.offset_c": (0.3, _thermometry("offset_c")),
    # fever_c: the thermometry's re-measure rule and the decision's threshold
    "thermometer.fever_c": (37.8, lambda kiosk: (kiosk.parts.thermometry.section.fever_c, kiosk.policy.fever_c)),
    "thermometer.cold_floor_c": (35.0, lambda kiosk: kiosk.policy.cold_floor_c),
    "thermometer.retry_after_s": (1.5, _thermometry("retry_after_s")),
    "thermometer.calibration_limit_c": (1.5, _config("thermometer", "calibration_limit_c")),
    "lights.gpio_chip": (4, _lights("gpio_chip")),
    "lights.green_pin": (5, _pin("green")),
    "lights.red_pin": (6, _pin("red")),
    "lights.buzzer_pin": (12, _pin("buzzer")),
    "lights.relay_pin": (13, _pin("relay")),
    "lights.active_high": (False, lambda kiosk: kiosk.parts.lights.lights.green.active_high),
    "lights.relay_active_high": (False, lambda kiosk: kiosk.parts.lights.lights.relay.active_high),
    "lights.relay_pulse_s": (0.8, lambda kiosk: kiosk.parts.lights.lights.section.relay_pulse_s),
    "lights.driver": ("gpio", _lights("driver")),  # last: there are no GPIO pins here to open
}

# Values the kiosk's fever_c probe reads twice.
EXPECTED = {"thermometer.fever_c": (37.8, 37.8)}


def test_every_hot_key_is_checked():
    assert set(HOT_KEYS) == set(HOT)


@pytest.mark.slow
@pytest.mark.e2e
def test_every_hot_key_is_re_read_by_the_running_kiosk(tmp_path):
    stale: list[str] = []

    def scene(s: Scene) -> None:
        kiosk = s.kiosk
        for path, (value, live) in HOT_KEYS.items():
            section, key = path.split(".")
            before = live(kiosk)
            new = merged(kiosk.config, {section: {key: value}}, "test")
            kiosk.request_config(new)
            s.wait(lambda new=new: kiosk.config == new, f"{path} to be applied")
            assert not kiosk.stopped and kiosk.restart_for == (), path
            expected = EXPECTED.get(path, value)
            if live(kiosk) != expected or before == expected:
                stale.append(f"{path}: {live(kiosk)!r} in effect, {value!r} wanted (was {before!r})")

    run_scene(tmp_path, scene)
    assert stale == []


@pytest.mark.slow
@pytest.mark.e2e
def test_an_id_edit_restarts_the_kiosk(tmp_path):
    """The ids go into every record, the clock watch's and the disk guard's too (built once at
    start): a running kiosk never takes a new id half-way, it restarts with it."""
    def scene(s: Scene) -> None:
        s.visit(s.code("green"))
        s.kiosk.request_config(merged(s.kiosk.config, {"kiosk": {"id": "gate-9", "site_id": "north"}}, "test"))
        s.wait(lambda: s.kiosk.stopped, "the kiosk to stop for a restart")
        assert s.kiosk.restart_for == ("kiosk.id", "kiosk.site_id")
        assert s.kiosk.config.kiosk.id == "demo-gate-01"  # never applied in place

    stage = run_scene(tmp_path, scene)
    assert [decided.event.kiosk_id for decided in stage.decided] == ["demo-gate-01"]


@pytest.mark.parametrize("path", ["kiosk.id", "kiosk.site_id", "kiosk.data_dir", "camera.fps", "thermometer.driver",
                                  "thermometer.plausible_max_c", "upstream.url", "codes.family_idle_s",
                                  # keys this version does not have yet: a restart until they are listed
                                  "sound.volume"])
def test_keys_outside_the_list_need_a_restart(path):
    assert needs_restart(path)


@pytest.mark.parametrize("path", sorted(HOT))
def test_listed_keys_are_applied_in_place(path):
    assert not needs_restart(path)


def test_a_plan_names_each_key_that_needs_a_restart():
    old = Config()
    new = merged(old, {"kiosk": {"site_id": "north", "verdict_s": 5.0}, "camera": {"fps": 10.0}}, "test")
    change = plan(old, new)
    assert change.changed == ("kiosk.site_id", "kiosk.verdict_s", "camera.fps")
    assert change.restart == ("kiosk.site_id", "camera.fps") and not change.hot
    assert plan(old, merged(old, {"kiosk": {"verdict_s": 5.0}}, "test")).hot
