"""SMBus Packet Error Code (PEC), as the MLX90614 sends it after every word it answers.

The PEC is a CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07) and initial value 0, computed over every
byte of the transaction as it travels on the wire, address bytes included (MLX90614 datasheet rev 13,
section "SMBus communication"; SMBus specification 3.x, "Packet Error Checking"):

- read word:  address<<1 (write), command, address<<1 | 1 (read), LSB, MSB
- write word: address<<1 (write), command, LSB, MSB

A corrupted bit anywhere in those bytes (a glitch on SDA, a mis-sampled bit while the clock was
stretched) changes the code, so a reading whose PEC does not match is thrown away.
"""

from __future__ import annotations

from collections.abc import Iterable

POLYNOMIAL = 0x07


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ POLYNOMIAL) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc8(data: Iterable[int]) -> int:
    """CRC-8 (polynomial 0x07, initial value 0, no reflection, no final XOR) of the bytes."""
    crc = 0
    for byte in data:
        crc = _TABLE[crc ^ byte]
    return crc


def read_word_pec(address: int, command: int, lsb: int, msb: int) -> int:
    """The PEC the device appends when it answers `command` with the word MSB:LSB."""
    return crc8((address << 1, command, address << 1 | 1, lsb, msb))


def write_word_pec(address: int, command: int, lsb: int, msb: int) -> int:
    """The PEC the host appends when it writes the word MSB:LSB to `command`."""
    return crc8((address << 1, command, lsb, msb))
