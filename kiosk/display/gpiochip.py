"""Which /dev/gpiochip holds the 40-pin header's GPIOs, and the gpiozero pin factory that drives it.

On a Pi 4 (and 3, Zero 2) the header is the SoC's own controller, gpiochip0 ("pinctrl-bcm2711" or
"pinctrl-bcm2835"). On a Pi 5 it is the RP1 south bridge ("pinctrl-rp1"), which kernels before
6.6.45 numbered gpiochip4 and later ones gpiochip0, with the SoC's small controllers beside it.
Guessing the number by model breaks on one of those kernels; the chip's label does not, so
`lights.gpio_chip = "auto"` opens each chip and takes the one whose label names the header's
controller. A number in the config skips the search.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from gpiozero.pins import Factory

log = logging.getLogger(__name__)

# Labels of the controllers that own the header's GPIO0..27, newest board first.
HEADER_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")
_reported: set[str] = set()  # chip layouts already logged


def pick_header_chip(labels: Mapping[int, str]) -> int | None:
    """The chip number whose label is a header controller's (first in HEADER_LABELS order), or None."""
    for wanted in HEADER_LABELS:
        for number in sorted(labels):
            if labels[number] == wanted:
                return number
    return None


def chip_labels(dev: Path = Path("/dev")) -> dict[int, str]:
    """Every gpiochip's label, read through lgpio (a chip that cannot be opened is left out)."""
    import lgpio

    labels: dict[int, str] = {}
    for path in dev.glob("gpiochip*"):
        match = re.fullmatch(r"gpiochip(\d+)", path.name)
        if match is None or path.is_symlink():  # Bookworm links gpiochip4 to gpiochip0 on new Pi 5 kernels
            continue
        number = int(match.group(1))
        try:
            handle = lgpio.gpiochip_open(number)
        except lgpio.error:
            continue
        try:
            status, _lines, _name, label = lgpio.gpio_get_chip_info(handle)
            if status >= 0:
                labels[number] = label
        finally:
            lgpio.gpiochip_close(handle)
    return labels


def open_gpio_factory(chip: int | Literal["auto"]) -> Factory:
    """gpiozero's lgpio pin factory on the header's chip. Raises whatever lgpio raises (lgpio.error)."""
    from gpiozero.pins.lgpio import LGPIOFactory

    if chip == "auto":
        labels = chip_labels()
        found = pick_header_chip(labels)
        if found is None and labels:
            # GPIO chips, none of them the header's: driving a guessed one would leave the lights
            # and the buzzer dark while the kiosk reported them working.
            raise RuntimeError("no GPIO chip carries the header's pins (" + ", ".join(
                f"gpiochip{n} = {label}" for n, label in sorted(labels.items())) + "): set lights.gpio_chip")
        chip = 0 if found is None else found  # no chip readable at all: lgpio says why opening 0 fails
        # Said once: busy pins are retried every few seconds; with no chip at all the lights' own error says enough.
        seen = ", ".join(f"{n}={label}" for n, label in sorted(labels.items()))
        (log.info if labels and seen not in _reported else log.debug)(
            "GPIO: header pins on gpiochip%d (chips seen: %s)", chip, seen or "none")
        _reported.add(seen)
    factory = LGPIOFactory(chip=chip)
    # gpiozero 2.0 and 2.0.1 ignore `chip` on a Pi 5 (fixed in 2.0.1.post3): never drive another chip.
    if factory.chip != chip:
        opened = factory.chip
        factory.close()
        raise RuntimeError(f"gpiozero opened gpiochip{opened} when gpiochip{chip} was asked for: "
                           "gpiozero 2.0.1.post3 or newer is needed")
    return factory
