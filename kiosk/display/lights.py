"""The verdict lights, the buzzer and the gate relay, as gpiozero devices.

Wiring (BCM GPIO numbers; the defaults of the ``[lights]`` config section):

- GPIO17 (pin 11) -> green LED: GPIO -> 330 ohm resistor -> LED anode; cathode -> GND.
- GPIO27 (pin 13) -> red LED, wired the same way.
- GPIO22 (pin 15) -> buzzer: an *active* 5 V buzzer switched by an NPN transistor (e.g. 2N2222 or
  S8050: GPIO -> 1 kohm -> base, emitter -> GND, buzzer between 5 V and collector). A GPIO pin gives
  at most ~16 mA at 3.3 V, not enough to drive a buzzer directly.
- GPIO23 (pin 16) -> gate relay: the IN pin of an opto-isolated relay board powered from 5 V; the
  gate controller's "open" contact goes on the relay's COM / NO terminals. With NO wiring a powered-off
  or crashed kiosk leaves the gate shut (fail closed).

``active_high = true`` means "GPIO high = LED lit / buzzer sounding" (the wiring above). Set it to
false for LEDs wired from 3.3 V into the GPIO pin (current sinking). ``relay_active_high`` is the
same for the relay board: many cheap relay boards energise when IN is pulled *low*; set it to false
for those. gpiozero then inverts the pin levels; the code always speaks of on/off.

Every pattern runs on gpiozero's background threads (``blink`` / ``beep``), so the kiosk loop never
waits for a light or a beep. The gate relay is only ever closed by ``show_pass`` for
``relay_pulse_s``; every other state switches it off at once, so a refusal that follows a pass
cannot leave the gate open.
"""

from __future__ import annotations

import logging
from typing import Self

from gpiozero import LED, Buzzer, DigitalOutputDevice, GPIOZeroError
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from kiosk.config import LightsSection
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

PASS_BEEP_S = 0.15
REFUSE_BEEP_S = 0.12  # three of these, with equal gaps: a sound a visitor does not confuse with PASS
REFUSE_BEEPS = 3
OUT_OF_SERVICE_BLINK_S = 0.5  # half period: the red light blinks at 1 Hz


class Lights:
    """Green and red lights, buzzer and gate relay. ``pin_factory`` and the devices are public so the
    simulator and tests can read pin levels (``lights.pin_factory.pin(17).state``)."""

    def __init__(self, section: LightsSection, pin_factory: Factory | None = None):
        self.section = section
        if pin_factory is None and section.driver == "mock":
            pin_factory = MockFactory()
        opened: list[DigitalOutputDevice] = []
        try:
            # The relay first, initial_value False: the gate is shut from the first instant.
            self.relay = DigitalOutputDevice(
                section.relay_pin, active_high=section.relay_active_high, initial_value=False, pin_factory=pin_factory
            )
            opened.append(self.relay)
            self.green = LED(
                section.green_pin, active_high=section.active_high, initial_value=False, pin_factory=pin_factory
            )
            opened.append(self.green)
            self.red = LED(
                section.red_pin, active_high=section.active_high, initial_value=False, pin_factory=pin_factory
            )
            opened.append(self.red)
            self.buzzer = Buzzer(
                section.buzzer_pin, active_high=section.active_high, initial_value=False, pin_factory=pin_factory
            )
            opened.append(self.buzzer)
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            for device in opened:
                device.close()
            hint = ' (set lights.driver = "mock" to run without GPIO)' if section.driver == "gpio" else ""
            raise KioskError(f"lights: cannot open GPIO pins: {exc}{hint}") from exc
        self.pin_factory: Factory = self.relay.pin_factory
        self._closed = False

    def show_pass(self) -> None:
        """Green on, one short beep, gate relay pulsed for relay_pulse_s."""
        self.red.off()
        self.green.on()
        self.buzzer.beep(on_time=PASS_BEEP_S, off_time=0, n=1, background=True)
        self.relay.blink(on_time=self.section.relay_pulse_s, off_time=0, n=1, background=True)

    def show_refuse(self) -> None:
        """Red on, three short beeps, gate shut."""
        self.relay.off()
        self.green.off()
        self.red.on()
        self.buzzer.beep(on_time=REFUSE_BEEP_S, off_time=REFUSE_BEEP_S, n=REFUSE_BEEPS, background=True)

    def show_out_of_service(self) -> None:
        """Red blinking at 1 Hz, silent, gate shut."""
        self.relay.off()
        self.green.off()
        self.buzzer.off()
        self.red.blink(on_time=OUT_OF_SERVICE_BLINK_S, off_time=OUT_OF_SERVICE_BLINK_S, background=True)

    def show_idle(self) -> None:
        """Everything off, gate shut."""
        self.relay.off()
        self.green.off()
        self.red.off()
        self.buzzer.off()

    def close(self) -> None:
        """Switch everything off (gate shut) and release the pins."""
        if self._closed:
            return
        self._closed = True
        for device in (self.relay, self.buzzer, self.red, self.green):
            try:
                device.off()
            finally:
                device.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
