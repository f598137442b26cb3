"""The MLX90614 IR thermometer, through Adafruit's driver, with the checks the driver leaves out.

The `mlx90614` driver of `kiosk.sensors.thermometer.DRIVERS` (and, on the emulated chip of
`kiosk.sim.mlx90614`, the `sim` driver); the kiosk talks to it as a `Thermometer`.

Wiring (Raspberry Pi): sensor VIN to 3V3 (pin 1), GND to pin 6, SDA to GPIO2 (pin 3), SCL to GPIO3
(pin 5); the sensor answers at I2C address 0x5A unless its EEPROM says otherwise. Keep the bus at
100 kHz: the MLX90614 is an SMBus device.

`adafruit_mlx90614.MLX90614` reads two bytes per word and converts them to °C: it never looks at
the PEC byte the chip sends after them, nor at the error flag (bit 15; a flagged reading comes back
as 382 °C or more). So this module keeps the driver (it probes the sensor and owns the bus device)
but reads every word itself, through the driver's own `I2CDevice` (``driver._device``, the same bus
object and lock): command, repeated start, LSB, MSB, PEC. A word is trusted only when

- the bus transfer succeeded (the Pi's I2C answers "Remote I/O error" in bursts when the chip
  stretches the clock; a short pause and another try usually gets through),
- the PEC matches (`kiosk.sensors.pec`),
- the error flag is clear,
- the answer came within ``max_read_s`` (a long clock stretch means the value's moment is unknown).

A word that fails any check is tried again up to ``retries`` times, ``retry_pause_s`` apart; then
`SensorError` says what went wrong. On top of that, readings outside the sensor's rated range are
faults, and an object reading whose raw word does not change at all for ``stuck_after_s`` is a
stuck sensor: a live sensor's noise (a few hundredths of a degree) always moves the last bit.

A `SensorError` makes the kiosk refuse the visitor being measured, or go out of service.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from typing import Any

import adafruit_mlx90614

from kiosk.config import ThermometerSection
from kiosk.errors import SensorError
from kiosk.sensors.pec import read_word_pec, write_word_pec
from kiosk.sensors.thermometer import ThermoSample

log = logging.getLogger(__name__)

# RAM and EEPROM addresses (datasheet rev 13, "RAM" and "EEPROM" tables).
TA = 0x06
TOBJ1 = 0x07
EMISSIVITY = 0x24
CONFIG1 = 0x25

ERROR_FLAG = 0x8000
KELVIN_PER_LSB = 0.02
AMBIENT_RANGE_C = (-40.0, 85.0)  # the sensor's rated operating range
OBJECT_MIN_C = -70.0  # the sensor's lowest object temperature
# The datasheet asks for at least 5 ms after an EEPROM write; twice that is what drivers use.
EEPROM_WRITE_PAUSE_S = 0.01
EMISSIVITY_RANGE = (0.1, 1.0)
# Low-pass bandwidth (Hz) of the object reading for each value of config register 1 bits 2:0,
# with the FIR stage at 1024 (the Linux kernel's mlx90614 driver table, from Melexis).
IIR_BANDWIDTH_HZ = (0.77, 0.31, 0.20, 0.15, 7.23, 1.53, 1.10, 0.86)


def raw_to_celsius(raw: int) -> float:
    return raw * KELVIN_PER_LSB - 273.15


class _Untrusted(Exception):
    """One transfer's answer cannot be used (internal: it is retried)."""


class MLX90614:
    """An MLX90614 on `bus` (a `busio.I2C`, or `kiosk.sim.mlx90614.SimI2C`).

    The driver is built on the first read, not here: its constructor probes the bus and fails when
    the sensor is unplugged, so an absent sensor at start-up is probed again on every try. Given
    `open_bus` instead of a bus, the bus itself is opened the same way: an I2C adapter that is not
    there yet at boot is a sensor fault that the next try may clear, not a crash. Once built
    it stays: a sensor unplugged later fails its reads and answers again when plugged back in,
    without restarting the kiosk.

    ``clock`` times reads (slow answers, stuck readings) and ``sleep`` makes the pauses; both are
    injectable so tests and the benchmark run on a fake clock.
    """

    def __init__(
        self,
        bus: Any | None,
        address: int = 0x5A,
        plausible_max_c: float = 45.0,
        *,
        retries: int = 3,
        retry_pause_s: float = 0.02,
        read_pause_s: float = 0.002,
        max_read_s: float = 0.1,
        stuck_after_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        open_bus: Callable[[], Any] | None = None,
    ):
        if bus is None and open_bus is None:
            raise ValueError("MLX90614 needs a bus or a way to open one")
        self._bus = bus
        self._open_bus = open_bus
        self.address = address
        self.plausible_max_c = plausible_max_c
        self.retries = retries
        self.retry_pause_s = retry_pause_s
        self.read_pause_s = read_pause_s
        self.max_read_s = max_read_s
        self.stuck_after_s = stuck_after_s
        self._clock = clock
        self._sleep = sleep
        self._driver: adafruit_mlx90614.MLX90614 | None = None
        self._last_object_raw: int | None = None
        self._unchanged_since = 0.0
        self._transferred = False
        # Counters for the daemon's log and the benchmark.
        self.words_read = 0
        self.retried = 0

    @classmethod
    def from_config(
        cls,
        bus: Any | None,
        section: ThermometerSection,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        open_bus: Callable[[], Any] | None = None,
    ) -> MLX90614:
        return cls(
            bus,
            section.i2c_address,
            section.plausible_max_c,
            retries=section.retries,
            retry_pause_s=section.retry_pause_s,
            read_pause_s=section.read_pause_s,
            max_read_s=section.max_read_s,
            stuck_after_s=section.stuck_after_s,
            clock=clock,
            sleep=sleep,
            open_bus=open_bus,
        )

    def describe(self) -> str:
        """The chip, its address and its EEPROM settings; reads the chip (`SensorError` when it cannot)."""
        return (f"MLX90614 at I2C 0x{self.address:02X}: emissivity {self.emissivity():.4f}; "
                f"object filter bandwidth {self.iir_bandwidth_hz():g} Hz")

    # --- readings ------------------------------------------------------------------------------

    def read(self) -> ThermoSample:
        """Read object and ambient temperature; raise `SensorError` saying why if they cannot be trusted."""
        object_raw = self.read_word(TOBJ1, temperature=True)
        ambient_raw = self.read_word(TA, temperature=True)
        sample = ThermoSample(
            object_c=round(raw_to_celsius(object_raw), 2), ambient_c=round(raw_to_celsius(ambient_raw), 2)
        )
        self._check_range(sample)
        self._check_stuck(object_raw)
        return sample

    def read_word(self, command: int, *, temperature: bool = False) -> int:
        """One PEC-checked word from RAM or EEPROM, retried; `temperature` words must have bit 15 clear."""
        cause = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                self._sleep(self.retry_pause_s)
            try:
                value = self._transfer_word(command, temperature)
            except _Untrusted as exc:
                cause = str(exc)
                log.debug("read 0x%02X attempt %d: %s", command, attempt + 1, cause)
                continue
            if attempt:
                log.info("thermometer read 0x%02X succeeded on attempt %d (before: %s)", command, attempt + 1, cause)
            self.words_read += 1
            return value
        raise SensorError(f"{cause} (after {self.retries + 1} tries)")

    def _pause_between_transfers(self) -> None:
        """The Pi's I2C fails a transfer that follows the previous one too closely (the probe included)."""
        if self._transferred and self.read_pause_s > 0:
            self._sleep(self.read_pause_s)
        self._transferred = True

    def _transfer_word(self, command: int, temperature: bool) -> int:
        buffer = bytearray(3)
        try:
            driver = self._get_driver()
            self._pause_between_transfers()
            started = self._clock()
            with driver._device as device:
                device.write_then_readinto(bytes([command]), buffer)
        except SensorError:
            raise  # no I2C bus (an OSError too): already says why, and retrying will not bring one
        except (ValueError, OSError) as exc:
            raise _Untrusted(self._describe(exc)) from exc
        took = self._clock() - started
        lsb, msb, pec = buffer
        if pec != read_word_pec(self.address, command, lsb, msb):
            raise _Untrusted(f"thermometer answer to 0x{command:02X} failed its checksum (PEC)")
        if took > self.max_read_s:
            raise _Untrusted(f"thermometer answered after {took:.2f} s (limit {self.max_read_s:g} s)")
        value = lsb | msb << 8
        if temperature and value & ERROR_FLAG:
            raise _Untrusted("thermometer reports an invalid measurement (error flag set)")
        return value

    def _get_driver(self) -> adafruit_mlx90614.MLX90614:
        if self._bus is None:
            assert self._open_bus is not None
            self._bus = self._open_bus()  # SensorError when there is no bus (yet): the next read tries again
        if self._driver is None:
            self._pause_between_transfers()
            self._driver = adafruit_mlx90614.MLX90614(self._bus, self.address)  # probes the address
        return self._driver

    def _describe(self, exc: ValueError | OSError) -> str:
        # The driver's probe raises ValueError when nobody acknowledges the address; a read from a
        # sensor that has gone away fails with EREMOTEIO (or ENXIO). Both mean the same to a technician.
        if isinstance(exc, ValueError) or exc.errno in (errno.EREMOTEIO, errno.ENXIO):
            return f"no thermometer answers at I2C address 0x{self.address:02X} (unplugged, or wrong address?)"
        if exc.errno == errno.ETIMEDOUT:
            return f"the thermometer at 0x{self.address:02X} held the I2C bus too long (timed out)"
        return f"I2C read from the thermometer at 0x{self.address:02X} failed: {exc}"

    def _check_range(self, sample: ThermoSample) -> None:
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

    def _check_stuck(self, object_raw: int) -> None:
        now = self._clock()
        if object_raw != self._last_object_raw:
            self._last_object_raw = object_raw
            self._unchanged_since = now
            return
        unchanged = now - self._unchanged_since
        if unchanged >= self.stuck_after_s:
            raise SensorError(
                f"thermometer stuck: object reading 0x{object_raw:04X} ({raw_to_celsius(object_raw):.2f} °C) "
                f"has not changed for {unchanged:.0f} s"
            )

    # --- EEPROM --------------------------------------------------------------------------------

    def emissivity(self) -> float:
        """The emissivity the sensor corrects for (EEPROM 0x24, value / 65535)."""
        return self.read_word(EMISSIVITY) / 0xFFFF

    def iir_bandwidth_hz(self) -> float:
        """The object reading's low-pass bandwidth set by config register 1 (bits 2:0)."""
        return IIR_BANDWIDTH_HZ[self.read_word(CONFIG1) & 0x7]

    def write_emissivity(self, emissivity: float) -> float:
        """Store a new emissivity in EEPROM 0x24 and return the emissivity read back from it.

        The datasheet's sequence: erase the cell (write 0x0000), wait, write the value, wait, each
        write carrying its PEC (the chip ignores a write whose PEC is wrong); then read it back.
        The cell has a limited number of write cycles: this is a maintenance step, never routine.
        """
        low, high = EMISSIVITY_RANGE
        if not low <= emissivity <= high:
            raise SensorError(f"emissivity must be between {low} and {high}, got {emissivity}")
        value = round(emissivity * 0xFFFF)
        for word in (0x0000, value):
            self._write_word(EMISSIVITY, word)
            self._sleep(EEPROM_WRITE_PAUSE_S)
        stored = self.read_word(EMISSIVITY)
        if stored != value:
            raise SensorError(f"emissivity write did not take: wrote 0x{value:04X}, read back 0x{stored:04X}")
        log.warning("thermometer emissivity changed to %.4f (EEPROM 0x%02X = 0x%04X)", value / 0xFFFF, EMISSIVITY, value)
        return stored / 0xFFFF

    def _write_word(self, command: int, value: int) -> None:
        lsb, msb = value & 0xFF, value >> 8
        message = bytes([command, lsb, msb, write_word_pec(self.address, command, lsb, msb)])
        try:
            driver = self._get_driver()
            self._pause_between_transfers()
            with driver._device as device:
                device.write(message)
        except SensorError:
            raise  # no I2C bus (an OSError too): already says why
        except (ValueError, OSError) as exc:
            raise SensorError(f"writing 0x{value:04X} to thermometer EEPROM 0x{command:02X}: {self._describe(exc)}") from exc


def open_thermometer(
    section: ThermometerSection,
    bus: Any | None,
    *,
    open_bus: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> MLX90614:
    """The registry's way in (`kiosk.sensors.thermometer.DRIVERS`): the chip on `bus`, or on the bus
    `open_bus` opens at the first read."""
    return MLX90614.from_config(bus, section, clock=clock, sleep=sleep, open_bus=open_bus)
