"""The simulated hardware: what stands in for the Pi's I2C bus, camera and GPIO pins.

Only the lowest layer is emulated: the real Adafruit driver talks to the emulated chip on this bus,
the real scanner reads the scenario camera's frames, and real gpiozero devices drive mock pins.
"""

from __future__ import annotations

import random

from gpiozero.pins.mock import MockFactory

from kiosk.config import Config
from kiosk.sim.camera import ScenarioCamera
from kiosk.sensors.thermometer import simulated_chip
from kiosk.sim.mlx90614 import SimI2C
from kiosk.sim.wrist import WristProfile

ROOM_C = 22.0


class SimWorld:
    def __init__(self, config: Config, seed: int = 1):
        self.wrist = WristProfile(ambient_c=ROOM_C, rng=random.Random(seed))
        # The emulated twin of the configured chip (thermometer.DRIVERS), at its configured address.
        self.chip = simulated_chip(config.thermometer, ambient_c=ROOM_C, object_source=self.wrist)
        self.bus = SimI2C()
        self.bus.attach(self.chip)
        self.camera = ScenarioCamera(config.camera.width, config.camera.height, seed=seed)
        self.pin_factory = MockFactory()
