"""Which config changes the running kiosk can take on the fly, and which need a restart.

Rules, timings, texts, lights and the screen are rebuilt in place between visitors. Settings that
reach into hardware streams, threads or stored state (the camera, the thermometer's bus address,
the platforms, the trust list, the upload, the data folder) are applied by a clean restart, which
systemd does within seconds (`Restart=always`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.config import Config

# Keys (section or section.key) that only a restart applies.
NEEDS_RESTART = (
    "kiosk.data_dir",
    "thermometer.driver",
    "thermometer.i2c_address",
    # read once by the thermometer driver wrapper when it is built
    "thermometer.plausible_max_c",
    "thermometer.retries",
    "thermometer.retry_pause_s",
    "thermometer.read_pause_s",
    "thermometer.max_read_s",
    "thermometer.stuck_after_s",
    "camera",
    "platform",
    "codes",
    "trust",
    "upstream",
)


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
    for section in Config.model_fields:
        before, after = getattr(old, section), getattr(new, section)
        for key in type(before).model_fields:
            if getattr(before, key) != getattr(after, key):
                paths.append(f"{section}.{key}")
    return tuple(paths)


def plan(old: Config, new: Config) -> Plan:
    changed = changed_keys(old, new)
    restart = tuple(path for path in changed
                    if any(path == rule or path.startswith(rule + ".") for rule in NEEDS_RESTART))
    return Plan(changed, restart)
