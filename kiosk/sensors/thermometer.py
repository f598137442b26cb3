"""The MLX90614 IR thermometer, read through Adafruit's driver, with the checks the driver leaves out.

Wiring (Raspberry Pi): sensor VIN to 3V3 (pin 1), GND to pin 6, SDA to GPIO2 (pin 3), SCL to GPIO3
(pin 5); the sensor answers at I2C address 0x5A unless its EEPROM says otherwise.

`adafruit_mlx90614.MLX90614` converts the RAM words to °C and nothing more: it ignores the PEC byte
and the error flag (bit 15). A reading with the flag set comes back as 382.2 °C or more, so this
module treats that as an error, and anything outside the plausible range as a fault. A sensor that
cannot be trusted raises `SensorError`, which makes the kiosk refuse or go out of service.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import Any

import adafruit_mlx90614

from kiosk.errors import SensorError

log = logging.getLogger(__name__)

# The lowest value a RAM word with bit 15 set can convert to: 0x8000 * 0.02 - 273.15.
ERROR_FLAG_C = 0x8000 * 0.02 - 273.15
AMBIENT_RANGE_C = (-40.0, 85.0)  # the sensor's rated operating range
OBJECT_MIN_C = -70.0  # the sensor's lowest object temperature


@dataclass(frozen=True)
class ThermoSample:
    """One reading, in °C: what the sensor sees (`object_c`) and its own die temperature."""

    object_c: float
    ambient_c: float


def open_i2c_bus() -> Any:
    """The Pi's I2C bus (SDA GPIO2, SCL GPIO3) as a `busio.I2C`, for the real sensor only.

    The MLX90614 is an SMBus device and does not work at 400 kHz: keep the bus at its 100 kHz
    default (``dtparam=i2c_arm=on`` and no faster ``i2c_arm_baudrate`` in /boot/firmware/config.txt).
    `board` is imported here, not at module load, so the simulator never needs it.
    """
    try:
        import board

        return board.I2C()
    except Exception as exc:  # Blinka raises several kinds on a board without I2C
        raise SensorError(f"no I2C bus on this machine ({type(exc).__name__}: {exc})") from exc


class Thermometer:
    """An MLX90614 on `bus` (a `busio.I2C`, or `kiosk.sim.mlx90614.SimI2C`).

    The driver is built on the first read, not here: its constructor probes the bus and fails when
    the sensor is unplugged. After any bus failure it is built again on the next read, so a sensor
    plugged back in is picked up without restarting the kiosk.
    """

    def __init__(self, bus: Any, address: int = 0x5A, plausible_max_c: float = 45.0):
        self._bus = bus
        self.address = address
        self.plausible_max_c = plausible_max_c
        self._driver: adafruit_mlx90614.MLX90614 | None = None

    def read(self) -> ThermoSample:
        """Read object and ambient temperature; raise `SensorError` saying why if they cannot be trusted."""
        try:
            if self._driver is None:
                self._driver = adafruit_mlx90614.MLX90614(self._bus, self.address)
            object_c = self._driver.object_temperature
            ambient_c = self._driver.ambient_temperature
        except (ValueError, OSError) as exc:
            self._driver = None
            raise SensorError(self._describe(exc)) from exc
        sample = ThermoSample(object_c=round(object_c, 2), ambient_c=round(ambient_c, 2))
        self._check(sample)
        return sample

    def _describe(self, exc: ValueError | OSError) -> str:
        # The driver's probe raises ValueError when nobody acknowledges the address; a read from a
        # sensor that has gone away fails with EREMOTEIO (or ENXIO). Both mean the same to a technician.
        if isinstance(exc, ValueError) or exc.errno in (errno.EREMOTEIO, errno.ENXIO):
            return f"no thermometer answers at I2C address 0x{self.address:02X} (unplugged, or wrong address?)"
        return f"I2C read from the thermometer at 0x{self.address:02X} failed: {exc}"

    def _check(self, sample: ThermoSample) -> None:
        if sample.object_c >= ERROR_FLAG_C or sample.ambient_c >= ERROR_FLAG_C:
            raise SensorError("thermometer reports an invalid measurement (error flag set)")
        low, high = AMBIENT_RANGE_C
        if not low <= sample.ambient_c <= high:
            raise SensorError(
                f"thermometer ambient reading {sample.ambient_c:.2f} °C is outside {low:.0f}..{high:.0f} °C"
            )
        if not OBJECT_MIN_C <= sample.object_c <= self.plausible_max_c:
            raise SensorError(
                f"thermometer object reading {sample.object_c:.2f} °C is outside "
                f"{OBJECT_MIN_C:.0f}..{self.plausible_max_c:.0f} °C"
            )
