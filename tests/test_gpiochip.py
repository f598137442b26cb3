"""Finding the header's GPIO chip by label, on the chip layouts real Pis report (`gpiodetect`)."""

from __future__ import annotations

import pytest

from kiosk.config import LightsSection
from kiosk.display.gpiochip import pick_header_chip
from kiosk.display.lights import Lights
from kiosk.errors import KioskError

PI4 = {0: "pinctrl-bcm2711", 1: "raspberrypi-exp-gpio"}
PI3 = {0: "pinctrl-bcm2835", 1: "raspberrypi-exp-gpio"}
# Pi 5 before kernel 6.6.45: the SoC's own controllers first, RP1 (the header) as gpiochip4.
PI5_OLD_KERNEL = {0: "gpio-brcmstb@107d508500", 1: "gpio-brcmstb@107d508520", 2: "gpio-brcmstb@107d517c00",
                  3: "gpio-brcmstb@107d517c20", 4: "pinctrl-rp1"}
# Pi 5 from kernel 6.6.45: RP1 is gpiochip0.
PI5_NEW_KERNEL = {0: "pinctrl-rp1", 10: "gpio-brcmstb@107d508500", 11: "gpio-brcmstb@107d508520",
                  12: "gpio-brcmstb@107d517c00", 13: "gpio-brcmstb@107d517c20"}


@pytest.mark.parametrize(("labels", "chip"), [(PI4, 0), (PI3, 0), (PI5_OLD_KERNEL, 4), (PI5_NEW_KERNEL, 0)])
def test_the_header_chip_is_found_by_its_label(labels, chip):
    assert pick_header_chip(labels) == chip


def test_no_header_chip_among_other_controllers():
    assert pick_header_chip({0: "gpio-mockup-A", 1: "ftdi-cbus"}) is None
    assert pick_header_chip({}) is None


def test_config_takes_a_chip_number_or_auto():
    assert LightsSection().gpio_chip == "auto"
    assert LightsSection(gpio_chip=4).gpio_chip == 4
    with pytest.raises(ValueError):
        LightsSection(gpio_chip="gpiochip4")


def test_a_chip_that_cannot_be_opened_is_a_lights_error_naming_lgpio():
    # No /dev/gpiochip63 anywhere: lgpio itself refuses, and the kiosk says so in one line.
    with pytest.raises(KioskError, match=r"lights: cannot open GPIO pins: .*lgpio\.error"):
        Lights(LightsSection(driver="gpio", gpio_chip=63))


def test_chips_of_which_none_is_the_header_s_are_an_error_not_a_guess(monkeypatch):
    import kiosk.display.gpiochip as gpiochip

    monkeypatch.setattr(gpiochip, "chip_labels", lambda: {0: "gpio-mockup-A", 1: "ftdi-cbus"})
    with pytest.raises(KioskError, match=r"no GPIO chip carries the header's pins .*gpiochip0 = gpio-mockup-A.*lights.gpio_chip"):
        Lights(LightsSection(driver="gpio"))
