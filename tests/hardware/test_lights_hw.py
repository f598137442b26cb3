"""On the Pi: each light, the buzzer and the relay switch (watch and listen while it runs)."""

import time

from kiosk.config import LightsSection
from kiosk.display.lights import Lights


def test_each_output_toggles():
    lights = Lights(LightsSection(driver="gpio"))
    try:
        for device in (lights.green, lights.red, lights.buzzer, lights.relay):
            device.on()
            assert device.value
            time.sleep(0.3)
            device.off()
            assert not device.value
    finally:
        lights.close()
