"""The real Thermometer class, through the real Adafruit driver, on the emulated chip."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from kiosk.errors import KioskError, SensorError
from kiosk.sensors.thermometer import Thermometer, ThermoSample, open_i2c_bus
from kiosk.sim.mlx90614 import MLX90614Chip, SimI2C


class Source:
    """An object temperature a test can change between reads."""

    def __init__(self, celsius: float):
        self.celsius = celsius

    def __call__(self) -> float:
        return self.celsius


@pytest.fixture
def source() -> Source:
    return Source(36.5)


@pytest.fixture
def bus() -> SimI2C:
    return SimI2C()


@pytest.fixture
def chip(bus: SimI2C, source: Source) -> MLX90614Chip:
    return bus.attach(MLX90614Chip(ambient_c=22.0, object_source=source))


def test_reads_object_and_ambient(bus: SimI2C, chip: MLX90614Chip) -> None:
    sample = Thermometer(bus).read()
    assert isinstance(sample, ThermoSample)
    assert sample.object_c == pytest.approx(36.5, abs=0.011)
    assert sample.ambient_c == pytest.approx(22.0, abs=0.011)


def test_follows_the_object(bus: SimI2C, chip: MLX90614Chip, source: Source) -> None:
    thermometer = Thermometer(bus)
    thermometer.read()
    source.celsius = 38.4
    assert thermometer.read().object_c == pytest.approx(38.4, abs=0.011)


def test_unplugged_at_start_then_plugged_in(bus: SimI2C, chip: MLX90614Chip) -> None:
    chip.plugged = False
    thermometer = Thermometer(bus)  # constructing must not touch the bus
    with pytest.raises(SensorError, match="no thermometer answers at I2C address 0x5A"):
        thermometer.read()
    with pytest.raises(SensorError):
        thermometer.read()
    chip.plugged = True
    assert thermometer.read().object_c == pytest.approx(36.5, abs=0.011)


def test_unplugged_while_running_then_plugged_back(bus: SimI2C, chip: MLX90614Chip) -> None:
    thermometer = Thermometer(bus)
    thermometer.read()
    chip.plugged = False
    with pytest.raises(SensorError, match="no thermometer answers at I2C address 0x5A") as caught:
        thermometer.read()
    assert isinstance(caught.value, KioskError)
    chip.plugged = True
    assert thermometer.read().ambient_c == pytest.approx(22.0, abs=0.011)


def test_wrong_address_is_named(bus: SimI2C, chip: MLX90614Chip) -> None:
    with pytest.raises(SensorError, match="0x5B"):
        Thermometer(bus, address=0x5B).read()


def test_error_flag_is_a_fault(bus: SimI2C, chip: MLX90614Chip) -> None:
    thermometer = Thermometer(bus)
    chip.error_flag = True
    with pytest.raises(SensorError, match="error flag"):
        thermometer.read()
    chip.error_flag = False
    assert thermometer.read().object_c == pytest.approx(36.5, abs=0.011)


@pytest.mark.parametrize("ambient_c", [-45.0, 90.0])
def test_ambient_outside_the_rated_range(bus: SimI2C, chip: MLX90614Chip, ambient_c: float) -> None:
    chip.ambient_c = ambient_c
    with pytest.raises(SensorError, match=r"ambient reading .* outside -40\.\.85"):
        Thermometer(bus).read()


@pytest.mark.parametrize("object_c", [-80.0, 45.5, 120.0])
def test_object_outside_the_plausible_range(bus: SimI2C, chip: MLX90614Chip, source: Source, object_c: float) -> None:
    source.celsius = object_c
    with pytest.raises(SensorError, match=r"object reading .* outside -70\.\.45"):
        Thermometer(bus).read()


def test_plausible_maximum_is_configurable(bus: SimI2C, chip: MLX90614Chip, source: Source) -> None:
    source.celsius = 48.0
    assert Thermometer(bus, plausible_max_c=50.0).read().object_c == pytest.approx(48.0, abs=0.011)
    source.celsius = 51.0
    with pytest.raises(SensorError, match=r"outside -70\.\.50"):
        Thermometer(bus, plausible_max_c=50.0).read()


def test_readings_just_inside_the_limits_are_accepted(bus: SimI2C, chip: MLX90614Chip, source: Source) -> None:
    source.celsius = 44.9
    chip.ambient_c = 84.9
    sample = Thermometer(bus).read()
    assert (sample.object_c, sample.ambient_c) == pytest.approx((44.9, 84.9), abs=0.011)


@pytest.mark.skipif(Path("/dev/i2c-1").exists(), reason="this machine has an I2C bus")
def test_open_i2c_bus_without_a_pi_says_so() -> None:
    with pytest.raises(SensorError, match="no I2C bus"):
        open_i2c_bus()


class FlakyBus(SimI2C):
    """The emulated bus with a disturbed line: every transfer fails with EIO."""

    def writeto_then_readfrom(self, address, out_buffer, in_buffer, **slices):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "Input/output error")


def test_other_bus_errors_keep_their_cause() -> None:
    bus = FlakyBus()
    bus.attach(MLX90614Chip())
    with pytest.raises(SensorError, match=r"I2C read from the thermometer at 0x5A failed: .*Input/output error"):
        Thermometer(bus).read()
