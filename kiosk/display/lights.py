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
import time
from collections.abc import Callable
from typing import Literal, Self

from gpiozero import LED, Buzzer, DigitalOutputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from kiosk.config import LightsSection
from kiosk.display.gpiochip import open_gpio_factory
from kiosk.errors import KioskError, LightsError

log = logging.getLogger(__name__)

PASS_BEEP_S = 0.15
REFUSE_BEEP_S = 0.12  # three of these, with equal gaps: a sound a visitor does not confuse with PASS
REFUSE_BEEPS = 3
OUT_OF_SERVICE_BLINK_S = 0.5  # half period: the red light blinks at 1 Hz


def open_pin_factory(section: LightsSection, given: Factory | None = None) -> Factory:
    """The pins lights.driver asks for; the one place the mock-or-real choice is made.

    "mock": `given` (the simulator's mock pins, which it reads back) or else gpiozero's own
    `MockFactory`. "gpio": the header's GPIO chip, opened anew; a `given` factory is never used
    then, so a config that asks for real pins never drives mock ones. The caller owns what this
    opens (anything that is not `given`) and closes it.
    """
    if section.driver == "mock":
        return given if given is not None else MockFactory()
    return open_gpio_factory(section.gpio_chip)


def _describe(exc: Exception) -> str:
    """The error with its type when that says more than the text (lgpio's is just 'GPIO busy')."""
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{exc} ({name})"


class Lights:
    """Green and red lights, buzzer and gate relay, on the pins `open_pin_factory` picks (a
    ``pin_factory`` handed in is the mock pins offered for lights.driver = "mock"). ``pin_factory``
    and the devices are public so the simulator and tests can read pin levels
    (``lights.pin_factory.pin(17).state``)."""

    def __init__(self, section: LightsSection, pin_factory: Factory | None = None):
        self.section = section
        given = pin_factory
        pin_factory = None
        opened: list[DigitalOutputDevice] = []
        problem = None
        try:
            pin_factory = open_pin_factory(section, given)
            # Claim every pin before any device reserves one: a busy pin fails here. A device half
            # built around it would keep its reservation until garbage-collected, and a retry with
            # the same factory would then find the pin "in use".
            for number in (section.relay_pin, section.green_pin, section.red_pin, section.buzzer_pin):
                pin_factory.pin(number)
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
        except Exception as exc:
            # Any failure to claim a pin is the same to the kiosk. On a Pi a busy pin raises
            # lgpio.error, which is neither OSError nor a gpiozero error.
            for device in opened:
                device.close()
            if pin_factory is not None and pin_factory is not given:
                try:
                    pin_factory.close()  # frees the chip and the pins claimed so far, for the next try
                except Exception:  # the error worth reporting is the one above
                    log.warning("lights: closing the pin factory failed", exc_info=True)
            hint = ' (set lights.driver = "mock" to run without GPIO)' if section.driver == "gpio" else ""
            problem = f"lights: cannot open GPIO pins: {_describe(exc)}{hint}"
        if problem is not None:  # raised here, so no traceback keeps a half-built device alive
            raise LightsError(problem)
        assert pin_factory is not None
        self.pin_factory: Factory = pin_factory
        self._owns_factory = pin_factory is not given
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
        try:
            for device in (self.relay, self.buzzer, self.red, self.green):
                try:
                    device.off()
                finally:
                    device.close()
        finally:
            if self._owns_factory:
                self.pin_factory.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


Steady = Literal["idle", "refuse", "out_of_service"]


class KeptLights:
    """The kiosk's lights, opened again until the pins can be had.

    A pin busy at boot (another program holds it, or a kiosk that is still shutting down) must not
    stop the kiosk: `fault` says why the pins could not be opened, the kiosk is out of service with
    that cause on its screen, and `retry()` tries again every `retry_after_s`. Once the pins are
    open the lights show the last steady state the kiosk asked for (a PASS pulse is never replayed).
    """

    def __init__(self, section: LightsSection, pin_factory: Factory | None = None, *,
                 retry_after_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.section = section
        self._factory = pin_factory
        self._retry_after_s = retry_after_s
        self._clock = clock
        self.lights: Lights | None = None
        self.fault: str | None = None
        self._steady: Steady = "idle"
        self._next_try = float("-inf")
        self.retry()

    @property
    def pin_factory(self) -> Factory | None:
        return self.lights.pin_factory if self.lights is not None else self._factory

    @property
    def given_factory(self) -> Factory | None:
        """The pin factory these lights were offered (the simulator's mock pins), not one they opened;
        hand it on to the lights that replace these, and `open_pin_factory` decides again."""
        return self._factory

    def retry(self) -> None:
        """Open the pins if they are not open and the time for another try has come."""
        if self.lights is not None or self._clock() < self._next_try:
            return
        try:
            self.lights = Lights(self.section, pin_factory=self._factory)
        except KioskError as exc:
            if str(exc) != self.fault:
                log.warning("%s; trying again every %.0f s", exc, self._retry_after_s)
            self.fault = str(exc)
            self._next_try = self._clock() + self._retry_after_s
            return
        if self.fault is not None:
            log.info("lights: GPIO pins open")
        self.fault = None
        self._show(self._steady)

    def _show(self, state: str) -> None:
        if self.lights is not None:
            getattr(self.lights, f"show_{state}")()

    def show_pass(self) -> None:
        self._steady = "idle"
        self._show("pass")

    def show_refuse(self) -> None:
        self._steady = "refuse"
        self._show("refuse")

    def show_out_of_service(self) -> None:
        self._steady = "out_of_service"
        self._show("out_of_service")

    def show_idle(self) -> None:
        self._steady = "idle"
        self._show("idle")

    def close(self) -> None:
        if self.lights is not None:
            self.lights.close()
