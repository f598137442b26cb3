"""Which config changes the running kiosk can take on the fly, and which need a restart.

Only the keys in ``HOT`` are applied in place, between visitors: the rules, timings, texts, lights
and the screen, each re-read by the part that uses it. Every other key (the camera, the
thermometer's bus and driver, the platforms, the trust list, the upload, the data folder, the
kiosk's own ids, and any key added later) is applied by a clean restart, which systemd does within
seconds (``Restart=always``). A restart costs a few seconds; a key applied hot that some part
had read once at start would leave the kiosk half on the old config without saying so.

``kiosk.id`` and ``kiosk.site_id`` need a restart: they are written into every record, by the
decisions, the clock watch and the disk guard, and one run of the kiosk keeps one pair, so the
collector never sees a boot's records under two names.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from kiosk.config import Config

# Keys (section.key) applied without a restart. A key belongs here only once the part that uses
# it reads it again after a reload (tests/test_reconfigure.py checks each one in a running kiosk).
HOT = frozenset({
    # read by the kiosk loop from its config at each use
    "kiosk.verdict_s",
    "kiosk.prompt_after_s",
    "kiosk.abandon_after_s",
    "screen.fps",
    # the screen is opened again
    "kiosk.language",
    "screen.mode",
    "screen.width",
    "screen.height",
    "screen.font",
    "screen.temperature_unit",
    "screen.text_size",
    "screen.viewfinder",  # the new screen is given the camera's view again (or none, when false)
    # the thermometry reads its section at each step; the policy is rebuilt
    "thermometer.sample_hz",
    "thermometer.presence_c",
    "thermometer.presence_rise_c",
    "thermometer.stable_window_s",
    "thermometer.stable_tolerance_c",
    "thermometer.hold_still_after_s",
    "thermometer.max_settle_s",
    "thermometer.remeasure_wait_s",
    "thermometer.site",
    "thermometer.wrist_k",
    "thermometer.forehead_k",
    "thermometer.offset_c",
    "thermometer.fever_c",
    "thermometer.cold_floor_c",
    "thermometer.retry_after_s",
    "thermometer.calibration_limit_c",  # read by `kiosk calibrate` only, never by the running kiosk
    # the lights are opened again
    "lights.driver",
    "lights.gpio_chip",
    "lights.green_pin",
    "lights.red_pin",
    "lights.buzzer_pin",
    "lights.relay_pin",
    "lights.active_high",
    "lights.relay_active_high",
    "lights.relay_pulse_s",
})


def needs_restart(path: str) -> bool:
    """Whether a change to this key (section.key) is applied by a restart."""
    return path not in HOT


@dataclass(frozen=True)
class Plan:
    changed: tuple[str, ...]  # every changed key path, e.g. ("thermometer.fever_c", "lights.red_pin")
    restart: tuple[str, ...]  # those that need a restart

    @property
    def hot(self) -> bool:
        return bool(self.changed) and not self.restart

    def touches(self, section: str) -> bool:
        return any(path == section or path.startswith(section + ".") for path in self.changed)


def changed_keys(old: Config, new: Config) -> tuple[str, ...]:
    paths = []
    for section in type(old).model_fields:
        before, after = getattr(old, section), getattr(new, section)
        if not isinstance(before, BaseModel):  # a top-level value, not a section
            if before != after:
                paths.append(section)
            continue
        for key in type(before).model_fields:
            if getattr(before, key) != getattr(after, key):
                paths.append(f"{section}.{key}")
    return tuple(paths)


def plan(old: Config, new: Config) -> Plan:
    changed = changed_keys(old, new)
    return Plan(changed, tuple(path for path in changed if needs_restart(path)))
