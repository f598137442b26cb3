"""On the Pi: each light, the buzzer and the relay switch (watch and listen while it runs)."""

import time

from kiosk.config import LightsSection
from kiosk.display.gpiochip import HEADER_LABELS, chip_labels
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


def test_the_pins_are_driven_on_the_header_chip():
    """Pi 5: the header is RP1 (gpiochip4 or gpiochip0 by kernel); the lights must be on that chip."""
    lights = Lights(LightsSection(driver="gpio"))
    try:
        labels = chip_labels()
        assert labels.get(lights.pin_factory.chip) in HEADER_LABELS, (lights.pin_factory.chip, labels)
    finally:
        lights.close()
