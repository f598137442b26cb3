"""An emulated MLX90614 on an emulated I2C bus, for the demo, the tests and the benchmark.

`SimI2C` answers the calls `adafruit_bus_device.I2CDevice` makes on a `busio.I2C` (try_lock,
unlock, writeto, readfrom_into, writeto_then_readfrom), so the real `adafruit_mlx90614.MLX90614`
driver runs unchanged on top of it. Only the bottom layer is swapped: the driver, our
`Thermometer` and everything above it are the code that runs on the Pi.

`MLX90614Chip` answers from a register map, the way the datasheet (rev 13) describes it:

- RAM 0x06 ambient (Ta), 0x07 object 1 (Tobj1), 0x08 object 2 (Tobj2, same as Tobj1 here:
  the emulated part is single-zone); raw = round((T + 273.15) / 0.02); bit 15 is the error flag.
- EEPROM 0x20..0x3F, of which 0x24 emissivity (0xFFFF = 1.0), 0x25 config register 1 (IIR filter
  in bits 2:0) and 0x2E the SMBus address are filled in; other cells read 0.
- An SMBus read-word answers LSB, MSB and, if the caller reads a third byte, the PEC: CRC-8
  (polynomial 0x07) over address<<1, command, address<<1|1, LSB, MSB.
- An SMBus write-word (command, LSB, MSB, PEC) to a writable EEPROM cell is accepted only with
  the right PEC (over address<<1, command, LSB, MSB). Writing 0x0000 erases the cell; a value must
  be written to an erased cell (the datasheet's erase-then-write), otherwise the cell ends up
  wrong (here: the bitwise OR of old and new), which a read-back catches. After a write the chip
  is busy for ``EEPROM_WRITE_S`` and does not acknowledge anything.

A device that is absent or unplugged does not acknowledge its address; Linux reports that as
``OSError(errno.EREMOTEIO, "Remote I/O error")`` and so does this bus.

Faults a test (or the demo) can switch on, each the way it shows on a Raspberry Pi:

- `nack_next(n)`: the next n transactions are not acknowledged (the Pi's "Remote I/O error"
  bursts), then the chip answers again;
- ``min_gap_s``: a transaction starting sooner than this after the previous one is not
  acknowledged (the Pi's I2C controller mishandles a clock-stretching device read back to back);
- ``error_flag``: bit 15 of every object reading is set, as the chip does when its measurement is
  invalid (the Adafruit driver then returns about 382 °C);
- `corrupt_pec_next(n)`: the PEC byte of the next n answers is wrong (a flipped bit on the wire);
- ``stuck``: the object reading stays at its last value whatever is in front of the sensor;
- ``plugged = False``: the chip vanishes from the bus (and comes back when set True);
- ``answer_delay_s``: every answer is late by this long (a long clock stretch); longer than
  ``BUS_TIMEOUT_S`` and the bus gives up with ``ETIMEDOUT``.

``clock`` and ``sleep`` are injectable, so tests and the benchmark run on a fake clock.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from kiosk.sensors.pec import crc8, read_word_pec, write_word_pec

__all__ = ["MLX90614Chip", "SimDevice", "SimI2C", "celsius_to_raw", "crc8"]

# RAM (linearised temperatures)
TA = 0x06
TOBJ1 = 0x07
TOBJ2 = 0x08
# EEPROM
EEPROM_FIRST = 0x20
EEPROM_LAST = 0x3F
EMISSIVITY = 0x24
CONFIG1 = 0x25
SMBUS_ADDRESS = 0x2E
# Cells a user may write (To max/min, PWM control, Ta range, emissivity, config 1, SMBus address);
# the rest hold Melexis calibration data and the chip's ID.
WRITABLE = frozenset({0x20, 0x21, 0x22, 0x23, EMISSIVITY, CONFIG1, SMBUS_ADDRESS})

ERROR_FLAG = 0x8000
KELVIN_PER_LSB = 0.02
# A typical factory value of config register 1: IIR bits 2:0 = 100 (no IIR stage, 7.23 Hz
# bandwidth with the FIR at 1024), single IR zone.
FACTORY_CONFIG1 = 0x9FB4
# EEPROM write time: the datasheet asks for at least 5 ms before the next command.
EEPROM_WRITE_S = 0.005
# How long the Pi's I2C adapter waits for a stretched answer before giving up.
BUS_TIMEOUT_S = 1.0


def celsius_to_raw(celsius: float) -> int:
    """The RAM word for a temperature, clamped to the 15 data bits (bit 15 is the error flag)."""
    return max(0, min(0x7FFF, round((celsius + 273.15) / KELVIN_PER_LSB)))


def _nack() -> OSError:
    return OSError(errno.EREMOTEIO, "Remote I/O error")


class MLX90614Chip:
    """The sensor: attach it to a `SimI2C` and steer it through its attributes.

    ``ambient_c``: the die (room) temperature. ``object_source``: a callable returning the object
    temperature in °C each time it is read (a `WristProfile`, or ``lambda: 36.5``); None means the
    sensor sees the room. ``reads`` counts the words read and ``writes`` the words written, so a
    test can see how often the sensor was asked. The fault switches are listed in the module doc.
    """

    def __init__(
        self,
        address: int = 0x5A,
        *,
        ambient_c: float = 22.0,
        object_source: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.address = address
        self.ambient_c = ambient_c
        self.object_source = object_source
        self.plugged = True
        self.error_flag = False
        self.stuck = False
        self.answer_delay_s = 0.0
        self.min_gap_s = 0.0
        self.reads = 0
        self.writes = 0
        self._clock = clock
        self._sleep = sleep
        self._eeprom = {EMISSIVITY: 0xFFFF, CONFIG1: FACTORY_CONFIG1, SMBUS_ADDRESS: address}
        self._command: int | None = None
        self._last_object: int | None = None
        self._nacks_left = 0
        self._bad_pecs_left = 0
        self._busy_until = float("-inf")
        self._last_end = float("-inf")
        self._lock = threading.Lock()

    # Faults that last a number of transactions.

    def nack_next(self, count: int) -> None:
        """Do not acknowledge the next `count` transactions, then answer normally again."""
        with self._lock:
            self._nacks_left = count

    def corrupt_pec_next(self, count: int) -> None:
        """Send a wrong PEC byte with the next `count` answers."""
        with self._lock:
            self._bad_pecs_left = count

    def eeprom(self, cell: int) -> int:
        """The word stored in an EEPROM cell (0x20..0x3F), for tests to look at."""
        return self._eeprom.get(cell, 0)

    def word(self, command: int) -> int:
        """The 16-bit value behind a command (RAM or EEPROM address)."""
        if command == TA:
            return celsius_to_raw(self.ambient_c)
        if command in (TOBJ1, TOBJ2):
            if self.stuck and self._last_object is not None:
                raw = self._last_object
            else:
                source = self.object_source
                raw = celsius_to_raw(source() if source is not None else self.ambient_c)
                self._last_object = raw
            return raw | ERROR_FLAG if self.error_flag else raw
        if EEPROM_FIRST <= command <= EEPROM_LAST:
            return self._eeprom.get(command, 0)
        if command < EEPROM_FIRST:
            return 0  # other RAM cells (raw IR data) are not emulated
        raise _nack()

    # The I2C side, called by SimI2C.

    def acknowledge(self) -> None:
        """The address phase of a transaction: raise the bus's NACK error when the chip does not answer."""
        with self._lock:
            now = self._clock()
            if not self.plugged:
                raise _nack()
            refused = False
            if self._nacks_left > 0:
                self._nacks_left -= 1
                refused = True
            elif now < self._busy_until or now - self._last_end < self.min_gap_s:
                refused = True
            self._last_end = now
            if refused:
                raise _nack()

    def i2c_write(self, data: bytes) -> None:
        """An empty write is the bus probe; one byte selects a command; four write a word with PEC."""
        if not data:
            return
        if len(data) == 1:
            with self._lock:
                self._command = data[0]
            return
        if len(data) == 4:
            self._write_word(*data)
            return
        raise _nack()

    def _write_word(self, command: int, lsb: int, msb: int, pec: int) -> None:
        if command not in WRITABLE or pec != write_word_pec(self.address, command, lsb, msb):
            raise _nack()
        value = lsb | msb << 8
        with self._lock:
            old = self._eeprom.get(command, 0)
            self._eeprom[command] = value if value == 0 or old == 0 else old | value
            self.writes += 1
            self._busy_until = self._clock() + EEPROM_WRITE_S

    def i2c_read(self, count: int) -> bytes:
        """LSB, MSB, PEC of the selected command; bytes past the PEC read 0xFF (released bus)."""
        delay = self.answer_delay_s
        if delay > 0:
            if delay > BUS_TIMEOUT_S:
                self._sleep(BUS_TIMEOUT_S)
                raise OSError(errno.ETIMEDOUT, "Connection timed out")
            self._sleep(delay)
        with self._lock:
            command = self._command
            if command is None:
                raise _nack()
            value = self.word(command)
            self.reads += 1
            bad_pec = self._bad_pecs_left > 0
            if bad_pec:
                self._bad_pecs_left -= 1
            self._last_end = self._clock()
        lsb, msb = value & 0xFF, value >> 8
        pec = read_word_pec(self.address, command, lsb, msb) ^ (0x01 if bad_pec else 0x00)
        return bytes([lsb, msb, pec] + [0xFF] * max(0, count - 3))[:count]


class SimDevice(Protocol):
    """What `SimI2C` needs of an emulated chip (`MLX90614Chip` is one; another chip's twin is another)."""

    address: int
    plugged: bool

    def acknowledge(self) -> None: ...

    def i2c_write(self, data: bytes) -> None: ...

    def i2c_read(self, count: int) -> bytes: ...


_Device = TypeVar("_Device", bound=SimDevice)


class SimI2C:
    """A stand-in for `busio.I2C`: routes transactions to the chips attached at their addresses."""

    def __init__(self) -> None:
        self._devices: dict[int, SimDevice] = {}
        self._lock = threading.Lock()

    def attach(self, device: _Device) -> _Device:
        self._devices[device.address] = device
        return device

    def _device(self, address: int) -> SimDevice:
        if not self._lock.locked():
            raise RuntimeError("I2C bus used without try_lock()")
        device = self._devices.get(address)
        if device is None:
            raise _nack()
        device.acknowledge()
        return device

    # The busio.I2C calls.

    def try_lock(self) -> bool:
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        self._lock.release()

    def scan(self) -> list[int]:
        return sorted(a for a, d in self._devices.items() if d.plugged)

    def writeto(self, address: int, buffer: bytes | bytearray, *, start: int = 0, end: int | None = None) -> None:
        self._device(address).i2c_write(bytes(buffer[start:end]))

    def readfrom_into(self, address: int, buffer: bytearray, *, start: int = 0, end: int | None = None) -> None:
        end = len(buffer) if end is None else end
        buffer[start:end] = self._device(address).i2c_read(end - start)

    def writeto_then_readfrom(
        self,
        address: int,
        out_buffer: bytes | bytearray,
        in_buffer: bytearray,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        """Write, repeated start, read. The driver passes one buffer as both, so copy out first."""
        device = self._device(address)
        out = bytes(out_buffer[out_start:out_end])
        in_end = len(in_buffer) if in_end is None else in_end
        device.i2c_write(out)
        in_buffer[in_start:in_end] = device.i2c_read(in_end - in_start)

    def deinit(self) -> None:
        """Nothing to release; present because busio.I2C has it."""
