"""Lights, buzzer and gate relay: real gpiozero devices on gpiozero's MockFactory pins."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.config import LightsSection
from kiosk.display import lights as lights_module
from kiosk.display.lights import REFUSE_BEEPS, Lights, open_pin_factory
from kiosk.errors import KioskError
from kit import wait_until

GREEN, RED, BUZZER, RELAY = 17, 27, 22, 23
PULSE_S = 0.1


def history(factory: MockFactory, pin: int) -> list[bool]:
    """The levels the pin went through, in order, without repeats."""
    levels: list[bool] = []
    for entry in factory.pin(pin).states:
        if not levels or levels[-1] != bool(entry.state):
            levels.append(bool(entry.state))
    return levels


def rising_edges(factory: MockFactory, pin: int) -> int:
    levels = history(factory, pin)
    return sum(1 for before, after in itertools.pairwise(levels) if after and not before)


@pytest.fixture
def make_lights():
    opened: list[Lights] = []

    def _make(**section) -> Lights:
        lights = Lights(LightsSection(**{"driver": "mock", "relay_pulse_s": PULSE_S, **section}))
        opened.append(lights)
        return lights

    yield _make
    for lights in opened:
        lights.close()


def level(lights: Lights, pin: int) -> bool:
    return bool(lights.pin_factory.pin(pin).state)


def test_mock_driver_starts_with_everything_off(make_lights):
    lights = make_lights()
    assert isinstance(lights.pin_factory, MockFactory)
    assert [level(lights, p) for p in (GREEN, RED, BUZZER, RELAY)] == [False] * 4


def test_pass_lights_green_beeps_once_and_pulses_the_gate(make_lights):
    lights = make_lights()
    factory = lights.pin_factory
    lights.show_pass()
    assert level(lights, GREEN) and not level(lights, RED)
    # The relay closes, then opens again by itself after relay_pulse_s; one short beep.
    assert wait_until(lambda: history(factory, RELAY) == [False, True, False])
    assert wait_until(lambda: history(factory, BUZZER) == [False, True, False])
    assert level(lights, GREEN), "green stays on after the pulse"


def test_refuse_lights_red_beeps_three_times_and_keeps_the_gate_shut(make_lights):
    lights = make_lights()
    factory = lights.pin_factory
    lights.show_refuse()
    assert level(lights, RED) and not level(lights, GREEN)
    assert wait_until(lambda: rising_edges(factory, BUZZER) == REFUSE_BEEPS and not level(lights, BUZZER))
    assert history(factory, RELAY) == [False]


def test_out_of_service_blinks_red_silently_with_the_gate_shut(make_lights):
    lights = make_lights()
    factory = lights.pin_factory
    lights.show_out_of_service()
    assert wait_until(lambda: history(factory, RED)[:3] == [False, True, False])  # on, then off again by itself
    assert not level(lights, GREEN)
    assert history(factory, BUZZER) == [False]
    assert history(factory, RELAY) == [False]


def test_idle_switches_everything_off(make_lights):
    lights = make_lights()
    lights.show_out_of_service()
    lights.show_pass()
    lights.show_idle()
    assert [level(lights, p) for p in (GREEN, RED, BUZZER, RELAY)] == [False] * 4


def test_refuse_right_after_pass_shuts_the_gate_at_once(make_lights):
    lights = make_lights(relay_pulse_s=5.0)
    factory = lights.pin_factory
    lights.show_pass()
    assert wait_until(lambda: level(lights, RELAY))
    lights.show_refuse()
    assert not level(lights, RELAY)
    # The stopped pulse does not come back: the relay stays open while the refusal beeps play out.
    assert wait_until(lambda: rising_edges(factory, BUZZER) >= REFUSE_BEEPS and not level(lights, BUZZER))
    assert history(factory, RELAY) == [False, True, False]


def test_out_of_service_and_idle_also_cut_a_running_pulse(make_lights):
    for show in ("show_out_of_service", "show_idle"):
        lights = make_lights(relay_pulse_s=5.0)
        lights.show_pass()
        assert wait_until(lambda lights=lights: level(lights, RELAY))
        getattr(lights, show)()
        assert not level(lights, RELAY), show
        lights.close()


def test_active_low_wiring_inverts_pin_levels(make_lights):
    lights = make_lights(active_high=False, relay_active_high=False)
    factory = lights.pin_factory
    # Off is a high pin for active-low parts: nothing lit, gate shut from the start.
    assert [level(lights, p) for p in (GREEN, RED, BUZZER, RELAY)] == [True] * 4
    assert not lights.relay.value
    lights.show_pass()
    assert not level(lights, GREEN) and level(lights, RED)
    assert wait_until(lambda: history(factory, RELAY)[-3:] == [True, False, True])
    assert level(lights, RELAY)


def test_relay_polarity_is_independent_of_the_lights(make_lights):
    lights = make_lights(active_high=True, relay_active_high=False)
    assert level(lights, RELAY) and not level(lights, GREEN)


def test_close_shuts_the_gate_and_frees_the_pins(make_lights):
    factory = MockFactory()
    lights = Lights(LightsSection(driver="mock", relay_pulse_s=5.0), pin_factory=factory)
    lights.show_pass()
    assert wait_until(lambda: bool(factory.pin(RELAY).state))
    lights.close()
    assert not factory.pin(RELAY).state and not factory.pin(GREEN).state
    again = Lights(LightsSection(driver="mock"), pin_factory=factory)  # pins were released
    assert again.pin_factory is factory
    again.close()


def test_mock_driver_uses_the_offered_pins_and_leaves_them_open():
    offered = MockFactory()
    lights = Lights(LightsSection(driver="mock"), pin_factory=offered)
    assert lights.pin_factory is offered
    lights.show_refuse()
    assert offered.pin(RED).state
    lights.close()
    again = Lights(LightsSection(driver="mock"), pin_factory=offered)  # still usable: not closed with the lights
    again.show_refuse()
    assert offered.pin(RED).state
    again.close()


class HeaderChip(MockFactory):
    """Stands in for the header's GPIO chip (gpiozero's mock pins), remembering whether it was closed."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_gpio_driver_never_drives_offered_mock_pins(monkeypatch):
    header = HeaderChip()
    chips: list[object] = []
    monkeypatch.setattr(lights_module, "open_gpio_factory", lambda chip: chips.append(chip) or header)
    offered = MockFactory()
    lights = Lights(LightsSection(driver="gpio", gpio_chip=4), pin_factory=offered)
    lights.show_refuse()
    assert chips == [4] and lights.pin_factory is header
    assert header.pin(RED).state and not offered.pins, "the offered mock pins were never claimed"
    lights.close()
    assert header.closed, "the pins the lights opened are released with them"


def test_open_pin_factory_makes_the_mock_or_real_choice(monkeypatch):
    header = HeaderChip()
    monkeypatch.setattr(lights_module, "open_gpio_factory", lambda chip: header)
    offered = MockFactory()
    mock = LightsSection(driver="mock")
    assert open_pin_factory(mock, offered) is offered
    own = open_pin_factory(mock)
    assert isinstance(own, MockFactory) and own is not offered and open_pin_factory(mock) is not own
    assert open_pin_factory(LightsSection(driver="gpio"), offered) is header


@pytest.mark.skipif(
    os.environ.get("GPIOZERO_PIN_FACTORY") is not None
    or "Raspberry Pi"
    in (
        Path("/proc/device-tree/model").read_text(errors="replace") if Path("/proc/device-tree/model").exists() else ""
    ),
    reason="real GPIO may be available here",
)
@pytest.mark.filterwarnings("ignore::gpiozero.PinFactoryFallback")
def test_real_gpio_without_a_pi_is_a_clear_error():
    with pytest.raises(KioskError, match="lights.driver"):
        Lights(LightsSection(driver="gpio"))
