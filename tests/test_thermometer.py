"""The MLX90614 driver (`kiosk.sensors.mlx90614`), through the real Adafruit driver's bus device, on the emulated chip.

Every fault the chip can show (NACK bursts, back-to-back failures, bad PEC, the error flag, a stuck
value, unplug and replug, slow answers) is driven here and checked the way a technician would see
it: a reading, or a `SensorError` that says what is wrong. Time is a fake clock: pauses and slow
answers advance it, nothing sleeps.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import types
from pathlib import Path

import adafruit_mlx90614
import pytest

from kiosk.config import ThermometerSection, parse_text
from kiosk.errors import ConfigError, KioskError, SensorError
from kiosk.sensors.pec import crc8, read_word_pec, write_word_pec
from kiosk.sensors.mlx90614 import MLX90614
from kiosk.sensors.thermometer import (DRIVERS, Driver, EmissivitySetting, Thermometer, ThermoSample, driver_names,
                                      find_driver, open_i2c_bus, open_thermometer, simulated_chip)
from kiosk.sim.mlx90614 import MLX90614Chip, SimI2C
from kit import FakeClock


class Source:
    """An object temperature a test can change between reads (a live sensor's noise included)."""

    def __init__(self, celsius: float):
        self.celsius = celsius
        self._flip = 0.0

    def __call__(self) -> float:
        self._flip = 0.02 - self._flip  # the last bit moves, as on a real sensor
        return self.celsius + self._flip


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source() -> Source:
    return Source(36.5)


@pytest.fixture
def bus() -> SimI2C:
    return SimI2C()


@pytest.fixture
def chip(bus: SimI2C, source: Source, clock: FakeClock) -> MLX90614Chip:
    return bus.attach(MLX90614Chip(ambient_c=22.0, object_source=source, clock=clock, sleep=clock.sleep))


def thermometer(bus: SimI2C, clock: FakeClock, **settings: object) -> MLX90614:
    return MLX90614(bus, clock=clock, sleep=clock.sleep, **settings)  # type: ignore[arg-type]


def test_reads_object_and_ambient(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sample = thermometer(bus, clock).read()
    assert isinstance(sample, ThermoSample)
    assert sample.object_c == pytest.approx(36.5, abs=0.03)
    assert sample.ambient_c == pytest.approx(22.0, abs=0.011)


def test_reads_go_through_the_adafruit_driver_on_the_same_bus(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock)
    sensor.read()
    driver = sensor._driver
    assert isinstance(driver, adafruit_mlx90614.MLX90614)
    assert driver._device.i2c is bus and driver._device.device_address == 0x5A
    assert bus.try_lock()  # the bus lock was released after the reads
    bus.unlock()
    assert chip.reads == 2


def test_follows_the_object(bus: SimI2C, chip: MLX90614Chip, source: Source, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock)
    sensor.read()
    source.celsius = 38.4
    assert sensor.read().object_c == pytest.approx(38.4, abs=0.03)


def test_pec_functions_match_the_datasheet() -> None:
    # Datasheet: slave 0x5A, command 0x07, data 0x3AD2 -> PEC 0x30 over B4 07 B5 D2 3A.
    assert read_word_pec(0x5A, 0x07, 0xD2, 0x3A) == 0x30 == crc8(bytes([0xB4, 0x07, 0xB5, 0xD2, 0x3A]))
    # A write carries no repeated start: address+W, command, LSB, MSB.
    assert write_word_pec(0x5A, 0x24, 0x00, 0x00) == crc8(bytes([0xB4, 0x24, 0x00, 0x00]))


# --- the bus misbehaves ------------------------------------------------------------------------


def test_nack_burst_shorter_than_the_retries_is_absorbed(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock, retries=3, retry_pause_s=0.02)
    sensor.read()
    chip.nack_next(3)
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)
    assert sensor.retried == 3
    assert clock.slept.count(0.02) == 3  # a short pause before each retry


def test_nack_burst_longer_than_the_retries_is_a_fault_then_recovers(
    bus: SimI2C, chip: MLX90614Chip, clock: FakeClock
) -> None:
    sensor = thermometer(bus, clock, retries=2)
    chip.nack_next(5)
    with pytest.raises(SensorError, match=r"no thermometer answers at I2C address 0x5A .*after 3 tries"):
        sensor.read()
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)  # the burst is over


def test_a_pause_between_reads_avoids_back_to_back_failures(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    chip.min_gap_s = 0.001
    clock.now += 1.0
    hasty = thermometer(bus, clock, read_pause_s=0.0, retries=0)
    with pytest.raises(SensorError):
        hasty.read()  # the ambient read follows the object read at once
    clock.now += 1.0
    careful = thermometer(bus, clock, read_pause_s=0.002, retries=0)
    for _ in range(5):
        careful.read()


def test_bad_pec_is_retried(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock)
    chip.corrupt_pec_next(1)
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)
    assert sensor.retried == 1


def test_persistent_bad_pec_is_a_fault(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock, retries=3)
    chip.corrupt_pec_next(100)
    with pytest.raises(SensorError, match=r"answer to 0x07 failed its checksum \(PEC\) \(after 4 tries\)"):
        sensor.read()


def test_error_flag_is_a_fault_where_the_driver_reports_382_degrees(
    bus: SimI2C, chip: MLX90614Chip, clock: FakeClock
) -> None:
    sensor = thermometer(bus, clock)
    chip.error_flag = True
    assert adafruit_mlx90614.MLX90614(bus).object_temperature > 382
    with pytest.raises(SensorError, match="error flag"):
        sensor.read()
    chip.error_flag = False
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)


def test_slow_answer_within_the_limit_is_accepted(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    chip.answer_delay_s = 0.05
    before = clock.now
    assert thermometer(bus, clock, max_read_s=0.1).read().object_c == pytest.approx(36.5, abs=0.03)
    assert clock.now - before >= 0.1  # two words, each 50 ms late


def test_answers_slower_than_the_limit_are_a_fault(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    chip.answer_delay_s = 0.3
    with pytest.raises(SensorError, match=r"answered after 0\.30 s \(limit 0\.1 s\)"):
        thermometer(bus, clock, max_read_s=0.1).read()


def test_bus_timeout_is_named(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    chip.answer_delay_s = 5.0
    with pytest.raises(SensorError, match="held the I2C bus too long"):
        thermometer(bus, clock, retries=1, max_read_s=2.0).read()


def test_stuck_reading_is_a_fault_after_the_configured_time(
    bus: SimI2C, chip: MLX90614Chip, clock: FakeClock
) -> None:
    sensor = thermometer(bus, clock, stuck_after_s=10.0)
    sensor.read()
    chip.stuck = True
    for _ in range(9):
        clock.now += 1.0
        sensor.read()  # the same word for less than 10 s: still fine
    clock.now += 1.0
    with pytest.raises(SensorError, match=r"stuck: object reading 0x[0-9A-F]{4} \(36\.5\d °C\) has not changed for 1\d s"):
        sensor.read()
    chip.stuck = False
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)


def test_a_live_sensor_is_never_taken_for_stuck(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock, stuck_after_s=2.0)
    for _ in range(200):
        clock.now += 0.05
        sensor.read()


# --- unplugged, wrong address, out of range ---------------------------------------------------------


def test_unplugged_at_start_then_plugged_in(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    chip.plugged = False
    sensor = thermometer(bus, clock)  # constructing must not touch the bus
    assert chip.reads == 0
    with pytest.raises(SensorError, match="no thermometer answers at I2C address 0x5A"):
        sensor.read()
    chip.plugged = True
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)


def test_unplugged_while_running_then_plugged_back(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock)
    sensor.read()
    chip.plugged = False
    with pytest.raises(SensorError, match="no thermometer answers at I2C address 0x5A") as caught:
        sensor.read()
    assert isinstance(caught.value, KioskError)
    chip.plugged = True
    assert sensor.read().ambient_c == pytest.approx(22.0, abs=0.011)


def test_wrong_address_is_named(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    with pytest.raises(SensorError, match="0x5B"):
        MLX90614(bus, address=0x5B, clock=clock, sleep=clock.sleep).read()


@pytest.mark.parametrize("ambient_c", [-45.0, 90.0])
def test_ambient_outside_the_rated_range(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock, ambient_c: float) -> None:
    chip.ambient_c = ambient_c
    with pytest.raises(SensorError, match=r"ambient reading .* outside -40\.\.85"):
        thermometer(bus, clock).read()


@pytest.mark.parametrize("object_c", [-80.0, 45.5, 120.0])
def test_object_outside_the_plausible_range(
    bus: SimI2C, chip: MLX90614Chip, source: Source, clock: FakeClock, object_c: float
) -> None:
    source.celsius = object_c
    with pytest.raises(SensorError, match=r"object reading .* outside -70\.\.45"):
        thermometer(bus, clock).read()


def test_plausible_maximum_is_configurable(bus: SimI2C, chip: MLX90614Chip, source: Source, clock: FakeClock) -> None:
    source.celsius = 48.0
    assert thermometer(bus, clock, plausible_max_c=50.0).read().object_c == pytest.approx(48.0, abs=0.03)
    source.celsius = 51.0
    with pytest.raises(SensorError, match=r"outside -70\.\.50"):
        thermometer(bus, clock, plausible_max_c=50.0).read()


@pytest.mark.skipif(Path("/dev/i2c-1").exists(), reason="this machine has an I2C bus")
def test_open_i2c_bus_without_a_pi_says_so() -> None:
    with pytest.raises(SensorError, match="no I2C bus"):
        open_i2c_bus()


@pytest.mark.parametrize(("raised", "advice"), [
    # What Blinka raises: I2C switched off on a Pi, a device node the user may not open, a PC.
    (ValueError("No Hardware I2C on (scl,sda)=(3, 2) Make sure I2C is enabled"), "raspi-config nonint do_i2c 0"),
    (PermissionError(13, "Permission denied", "/dev/i2c-1"), "i2c group"),
    (AttributeError("module 'board' has no attribute 'I2C'"), "not a Raspberry Pi"),
])
def test_open_i2c_bus_says_what_to_do_for_each_way_it_fails(monkeypatch, raised, advice) -> None:
    def i2c():
        raise raised

    monkeypatch.setitem(sys.modules, "board", types.SimpleNamespace(I2C=i2c))
    monkeypatch.delenv("BLINKA_SKIP_DEPENDENCY_CHECK", raising=False)
    with pytest.raises(SensorError, match="no I2C bus") as failure:
        open_i2c_bus()
    assert advice in str(failure.value)
    # Blinka must never stop to offer a pip install at a maintainer's terminal.
    assert os.environ["BLINKA_SKIP_DEPENDENCY_CHECK"] == "1"


class FlakyBus(SimI2C):
    """The emulated bus with a disturbed line: every transfer fails with EIO."""

    def writeto_then_readfrom(self, address, out_buffer, in_buffer, **slices):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "Input/output error")


def test_other_bus_errors_keep_their_cause(clock: FakeClock) -> None:
    bus = FlakyBus()
    bus.attach(MLX90614Chip())
    with pytest.raises(SensorError, match=r"I2C read from the thermometer at 0x5A failed: .*Input/output error"):
        thermometer(bus, clock).read()


def test_settings_come_from_the_config(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    section = ThermometerSection(driver="sim", retries=0, stuck_after_s=3.0, plausible_max_c=50.0)
    sensor = MLX90614.from_config(bus, section, clock=clock, sleep=clock.sleep)
    assert (sensor.retries, sensor.stuck_after_s, sensor.plausible_max_c) == (0, 3.0, 50.0)
    chip.nack_next(1)
    with pytest.raises(SensorError, match="after 1 tries"):
        sensor.read()


# --- EEPROM: emissivity ------------------------------------------------------------------------------


def test_emissivity_and_filter_are_read_from_eeprom(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock)
    assert sensor.emissivity() == 1.0
    assert sensor.iir_bandwidth_hz() == 7.23  # factory config register 0x9FB4


def test_emissivity_write_erases_then_writes_with_pec(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock)
    stored = sensor.write_emissivity(0.95)
    assert chip.eeprom(0x24) == round(0.95 * 65535)
    assert stored == pytest.approx(0.95, abs=1e-4)
    assert chip.writes == 2  # the erase, then the value
    assert sensor.emissivity() == pytest.approx(0.95, abs=1e-4)
    assert clock.slept.count(0.01) == 2  # waited out the EEPROM write time after each


def test_emissivity_write_that_does_not_take_is_reported(
    bus: SimI2C, chip: MLX90614Chip, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor = thermometer(bus, clock)
    real_write = sensor._write_word
    # Skip the erase: the chip then keeps a mix of old and new bits.
    monkeypatch.setattr(sensor, "_write_word", lambda command, value: real_write(command, value) if value else None)
    with pytest.raises(SensorError, match="did not take"):
        sensor.write_emissivity(0.95)


@pytest.mark.parametrize("value", [0.05, 1.2])
def test_emissivity_out_of_range_is_refused_before_touching_the_chip(
    bus: SimI2C, chip: MLX90614Chip, clock: FakeClock, value: float
) -> None:
    with pytest.raises(SensorError, match="emissivity must be between"):
        thermometer(bus, clock).write_emissivity(value)
    assert chip.writes == 0 and chip.eeprom(0x24) == 0xFFFF


def test_emissivity_write_to_an_absent_sensor_says_so(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    chip.plugged = False
    with pytest.raises(SensorError, match="writing 0x0000 to thermometer EEPROM 0x24: no thermometer answers"):
        thermometer(bus, clock).write_emissivity(0.95)


# --- the Thermometer interface and the driver registry --------------------------------------------


def test_the_mlx90614_is_a_thermometer_with_an_emissivity_setting(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = thermometer(bus, clock)
    assert isinstance(sensor, Thermometer) and isinstance(sensor, EmissivitySetting)
    assert sensor.describe() == "MLX90614 at I2C 0x5A: emissivity 1.0000; object filter bandwidth 7.23 Hz"


def test_the_sim_driver_runs_the_real_driver_on_the_simulated_bus(bus: SimI2C, chip: MLX90614Chip, clock: FakeClock) -> None:
    sensor = open_thermometer(ThermometerSection(driver="sim"), sim_bus=bus, clock=clock, sleep=clock.sleep)
    assert isinstance(sensor, MLX90614)
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)
    assert chip.reads == 2
    with pytest.raises(KioskError, match="only works inside `kiosk demo`"):
        open_thermometer(ThermometerSection(driver="sim"))


def test_the_real_driver_opens_the_pi_bus_at_its_first_read(
    monkeypatch: pytest.MonkeyPatch, bus: SimI2C, chip: MLX90614Chip, clock: FakeClock
) -> None:
    adapters: list[SimI2C] = []

    def i2c() -> SimI2C:
        if not adapters:  # i2c-dev not loaded yet
            raise ValueError("No Hardware I2C on (scl,sda)=(3, 2)")
        return adapters[0]

    monkeypatch.setitem(sys.modules, "board", types.SimpleNamespace(I2C=i2c))
    sensor = open_thermometer(ThermometerSection(driver="mlx90614"), clock=clock, sleep=clock.sleep)  # no crash
    with pytest.raises(SensorError, match="no I2C bus"):
        sensor.read()
    adapters.append(bus)
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.03)


def test_a_simulated_chip_is_the_configured_chips_twin_at_its_address() -> None:
    twin = simulated_chip(ThermometerSection(driver="sim", i2c_address=0x5B), ambient_c=19.0)
    assert isinstance(twin, MLX90614Chip) and twin.address == 0x5B and twin.ambient_c == 19.0


def test_the_config_accepts_exactly_the_registered_driver_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert driver_names() == ("mlx90614", "sim")
    for name in driver_names():
        assert ThermometerSection(driver=name).driver == name
    with pytest.raises(ConfigError, match='thermometer.driver: must be one of "mlx90614", "sim"'):
        parse_text('[thermometer]\ndriver = "tmp117"\n', "config.toml")
    # A second chip is one registry line: the config takes its name and its simulated twin's at once.
    chip = Driver("kiosk.sensors.tmp117", sim_chip="kiosk.sim.tmp117:TMP117Chip", sim_name="sim-tmp117")
    monkeypatch.setitem(DRIVERS, "tmp117", chip)
    assert parse_text('[thermometer]\ndriver = "tmp117"\n', "config.toml").thermometer.driver == "tmp117"
    assert find_driver("sim-tmp117") == ("tmp117", chip, True)
    assert find_driver("mlx90614")[2] is False


def test_the_config_scheme_imports_no_hardware_library() -> None:
    probe = "import sys, kiosk.config; print(sorted(m for m in ('adafruit_mlx90614', 'board', 'busio') if m in sys.modules))"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parent.parent)
    assert shown.stdout.strip() == "[]"
