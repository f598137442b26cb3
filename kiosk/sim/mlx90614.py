"""An emulated MLX90614 on an emulated I2C bus, for the demo and the tests.

`SimI2C` answers the calls `adafruit_bus_device.I2CDevice` makes on a `busio.I2C` (try_lock,
unlock, writeto, readfrom_into, writeto_then_readfrom), so the real `adafruit_mlx90614.MLX90614`
driver runs unchanged on top of it. Only the bottom layer is swapped: the driver, our
`Thermometer` and everything above it are the code that runs on the Pi.

`MLX90614Chip` answers from a register map, the way the datasheet describes it:

- RAM 0x06 ambient (Ta), 0x07 object 1 (Tobj1), 0x08 object 2 (Tobj2, same as Tobj1 here:
  the emulated part is single-zone); raw = round((T + 273.15) / 0.02); bit 15 is the error flag.
- EEPROM 0x20..0x3F, of which 0x24 emissivity (0xFFFF = 1.0), 0x25 config register 1 and 0x2E the
  SMBus address are filled in; other cells read 0.
- An SMBus read-word answers LSB, MSB and, if the caller reads a third byte, the PEC: CRC-8
  (polynomial 0x07) over address<<1, command, address<<1|1, LSB, MSB.

A device that is absent or unplugged does not acknowledge its address; Linux reports that as
``OSError(errno.EREMOTEIO, "Remote I/O error")`` and so does this bus. The emulated chip is read-only:
EEPROM writes are refused the same way (nothing in the kiosk writes to the sensor).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable

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

ERROR_FLAG = 0x8000
KELVIN_PER_LSB = 0.02
# A typical factory value of config register 1 (IIR/FIR filter settings, single IR zone).
FACTORY_CONFIG1 = 0x9FB4


def crc8(data: bytes) -> int:
    """SMBus PEC: CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07), initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def celsius_to_raw(celsius: float) -> int:
    """The RAM word for a temperature, clamped to the 15 data bits (bit 15 is the error flag)."""
    return max(0, min(0x7FFF, round((celsius + 273.15) / KELVIN_PER_LSB)))


def _nack() -> OSError:
    return OSError(errno.EREMOTEIO, "Remote I/O error")


class MLX90614Chip:
    """The sensor: attach it to a `SimI2C` and steer it through its attributes.

    ``ambient_c``: the die (room) temperature. ``object_source``: a callable returning the object
    temperature in °C each time it is read (a `WristProfile`, or ``lambda: 36.5``); None means the
    sensor sees the room. ``plugged``: False makes the chip vanish from the bus. ``error_flag``:
    True sets bit 15 of every object reading, as the chip does when its measurement is invalid.
    ``reads`` counts the words read, so a test can see how often the sensor was asked.
    """

    def __init__(
        self,
        address: int = 0x5A,
        *,
        ambient_c: float = 22.0,
        object_source: Callable[[], float] | None = None,
    ):
        self.address = address
        self.ambient_c = ambient_c
        self.object_source = object_source
        self.plugged = True
        self.error_flag = False
        self.reads = 0
        self._eeprom = {EMISSIVITY: 0xFFFF, CONFIG1: FACTORY_CONFIG1, SMBUS_ADDRESS: address}
        self._command: int | None = None
        self._lock = threading.Lock()

    def word(self, command: int) -> int:
        """The 16-bit value behind a command (RAM or EEPROM address)."""
        if command == TA:
            return celsius_to_raw(self.ambient_c)
        if command in (TOBJ1, TOBJ2):
            source = self.object_source
            raw = celsius_to_raw(source() if source is not None else self.ambient_c)
            return raw | ERROR_FLAG if self.error_flag else raw
        if EEPROM_FIRST <= command <= EEPROM_LAST:
            return self._eeprom.get(command, 0)
        if command < EEPROM_FIRST:
            return 0  # other RAM cells (raw IR data) are not emulated
        raise _nack()

    # The I2C side, called by SimI2C.

    def i2c_write(self, data: bytes) -> None:
        """An empty write is the bus probe (acknowledged); one byte selects the command."""
        if not data:
            return
        if len(data) == 1:
            with self._lock:
                self._command = data[0]
            return
        raise _nack()

    def i2c_read(self, count: int) -> bytes:
        """LSB, MSB, PEC of the selected command; bytes past the PEC read 0xFF (released bus)."""
        with self._lock:
            command = self._command
            if command is None:
                raise _nack()
            value = self.word(command)
            self.reads += 1
        lsb, msb = value & 0xFF, value >> 8
        pec = crc8(bytes([self.address << 1, command, self.address << 1 | 1, lsb, msb]))
        return bytes([lsb, msb, pec] + [0xFF] * max(0, count - 3))[:count]


class SimI2C:
    """A stand-in for `busio.I2C`: routes transactions to the chips attached at their addresses."""

    def __init__(self) -> None:
        self._devices: dict[int, MLX90614Chip] = {}
        self._lock = threading.Lock()

    def attach(self, device: MLX90614Chip) -> MLX90614Chip:
        self._devices[device.address] = device
        return device

    def detach(self, address: int) -> None:
        self._devices.pop(address, None)

    def _device(self, address: int) -> MLX90614Chip:
        if not self._lock.locked():
            raise RuntimeError("I2C bus used without try_lock()")
        device = self._devices.get(address)
        if device is None or not device.plugged:
            raise _nack()
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
