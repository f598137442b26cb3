"""Smoke test on a real Raspberry Pi with an MLX90614 wired to I2C bus 1 at address 0x5A.

Skipped everywhere else. On the Pi (sensor wired as in kiosk/sensors/mlx90614.py):

    .venv/bin/pytest -q tests/hardware -m hardware

It reads through the same path as the kiosk (Adafruit driver's bus device, PEC checked) and writes
nothing to the sensor.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.hardware

ADDRESS = 0x5A


@pytest.fixture(scope="module")
def thermometer():  # type: ignore[no-untyped-def]
    if not Path("/dev/i2c-1").exists():
        pytest.skip("no /dev/i2c-1: not a Raspberry Pi with I2C enabled")
    try:
        import board

        bus = board.I2C()
    except Exception as exc:  # Blinka raises several kinds on a board without I2C
        pytest.skip(f"no I2C bus through Blinka: {exc}")
    if not bus.try_lock():
        pytest.skip("the I2C bus is busy")
    try:
        present = ADDRESS in bus.scan()
    finally:
        bus.unlock()
    if not present:
        pytest.skip(f"no device answers at 0x{ADDRESS:02X} on /dev/i2c-1")
    from kiosk.sensors.mlx90614 import MLX90614

    return MLX90614(bus, ADDRESS)


def test_reads_plausible_temperatures_with_valid_pec(thermometer) -> None:  # type: ignore[no-untyped-def]
    samples = [thermometer.read() for _ in range(20)]
    for sample in samples:
        assert -10.0 < sample.ambient_c < 50.0
        assert -20.0 < sample.object_c < 45.0
    assert thermometer.words_read >= 40


def test_eeprom_reads_back_sensible_settings(thermometer) -> None:  # type: ignore[no-untyped-def]
    assert 0.1 <= thermometer.emissivity() <= 1.0
    assert thermometer.iir_bandwidth_hz() > 0
