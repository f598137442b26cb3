"""`kiosk calibrate`: the thermometer's offset against a reference source, and its emissivity.

Over SSH, with a blackbody (or a calibrated water bath) at a known temperature in front of the
sensor:

    kiosk calibrate --reference 37.0 --config /etc/kiosk/config.toml

takes ``--readings`` readings (default 50) through the same PEC-checked path the kiosk measures
with, and computes ``offset = reference - mean reading``. It refuses when the readings scatter
(the reference is not steady or not in view) or when the offset is larger than
``thermometer.calibration_limit_c`` (a sensor that far off is broken, dirty or misplaced: it needs
a technician, not a correction). Otherwise it writes ``thermometer.offset_c`` into the config file:
the file is edited with tomlkit so every comment and the layout survive, the new text is validated
against the config scheme, written to a temporary file in the same folder and moved over the old
one in one step (``os.replace``), so a crash leaves either the old file or the new one, never half.

    kiosk calibrate --show
    kiosk calibrate --set-emissivity 0.98 --write-eeprom

the first shows the sensor's settings (the MLX90614's EEPROM: emissivity, filter) and a reading;
the second writes the emissivity (on the MLX90614 an EEPROM erase-then-write with PEC), on a
sensor that stores one (`EmissivitySetting`), and is refused without ``--write-eeprom``: the cell
has a limited number of write cycles and a wrong emissivity changes every reading.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from kiosk.config import Config, ConfigError, load, parse_text
from kiosk.errors import CalibrationError, SettingError
from kiosk.sensors.thermometer import EmissivitySetting, Thermometer, find_driver
from kiosk.sensors.thermometer import open_thermometer as open_configured_thermometer

log = logging.getLogger(__name__)

REFERENCE_RANGE_C = (30.0, 45.0)  # a reference near body temperature; the offset is set where it matters
MAX_SPREAD_C = 0.15  # standard deviation of the readings of a steady reference (sensor noise is ~0.05)
MIN_READINGS = 10


@dataclass(frozen=True)
class Calibration:
    """One calibration run: what the sensor read against the reference, and the offset that follows."""

    reference_c: float
    readings: int
    mean_c: float
    spread_c: float
    ambient_c: float
    offset_c: float


def measure_offset(
    thermometer: Thermometer,
    reference_c: float,
    *,
    readings: int = 50,
    limit_c: float = 1.0,
    interval_s: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> Calibration:
    """Read the reference `readings` times and compute the offset; raise `CalibrationError` if it cannot be trusted.

    The sensor's own errors (`SensorError`) pass through unchanged.
    """
    low, high = REFERENCE_RANGE_C
    if not low <= reference_c <= high:
        raise CalibrationError(f"--reference must be between {low:g} and {high:g} °C, got {reference_c:g}")
    if readings < MIN_READINGS:
        raise CalibrationError(f"--readings must be at least {MIN_READINGS}, got {readings}")
    objects: list[float] = []
    ambients: list[float] = []
    for index in range(readings):
        if index:
            sleep(interval_s)
        sample = thermometer.read()
        objects.append(sample.object_c)
        ambients.append(sample.ambient_c)
    mean_c = statistics.fmean(objects)
    spread_c = statistics.stdev(objects)
    result = Calibration(
        reference_c=reference_c,
        readings=readings,
        mean_c=round(mean_c, 3),
        spread_c=round(spread_c, 3),
        ambient_c=round(statistics.median(ambients), 2),
        offset_c=round(reference_c - mean_c, 2),
    )
    if spread_c > MAX_SPREAD_C:
        raise CalibrationError(
            f"the readings scatter by {spread_c:.2f} °C (standard deviation; at most {MAX_SPREAD_C:g} °C allowed): "
            "is the reference source settled and filling the sensor's view?"
        )
    if abs(result.offset_c) > limit_c:
        raise CalibrationError(
            f"the sensor reads {mean_c:.2f} °C against a {reference_c:.2f} °C reference: an offset of "
            f"{result.offset_c:+.2f} °C is more than thermometer.calibration_limit_c ({limit_c:g} °C). "
            "A sensor that far off is broken, dirty or not looking at the reference; nothing was written."
        )
    return result


def write_offset(path: Path | str, offset_c: float, note: str = "") -> Config:
    """Set ``thermometer.offset_c`` in the config file, keeping its comments; atomic and validated.

    Returns the new config. Raises `ConfigError` (and leaves the file alone) if the file cannot be
    read or the result would not be a valid config.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        document = tomlkit.parse(text)
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except (UnicodeDecodeError, TOMLKitError) as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    section = document.get("thermometer")
    if section is None:
        section = tomlkit.table()
        document.add("thermometer", section)
    item = tomlkit.item(round(offset_c, 2))
    if note:
        item.comment(note)
    section["offset_c"] = item
    new_text = tomlkit.dumps(document)
    config = parse_text(new_text, str(path))
    _replace_atomically(path, new_text)
    return config


def _replace_atomically(path: Path, text: str) -> None:
    folder = path.parent
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# --- the command ---------------------------------------------------------------------------------


def open_thermometer(config: Config) -> Thermometer:
    """The configured sensor on the Pi's I2C bus (calibration needs the real one)."""
    chip, _driver, simulated = find_driver(config.thermometer.driver)
    if simulated:
        raise SettingError(f'kiosk calibrate needs the real sensor (thermometer.driver = "{chip}")')
    return open_configured_thermometer(config.thermometer)


def add_arguments(parser: argparse.ArgumentParser, default_config: Path) -> None:
    parser.add_argument("--config", type=Path, default=default_config, help=f"config file (default {default_config})")
    parser.add_argument("--reference", type=float, metavar="C",
                        help="temperature of the reference source in front of the sensor, °C")
    parser.add_argument("--readings", type=int, default=50, help="readings to average (default 50)")
    parser.add_argument("--dry-run", action="store_true", help="measure and report, but do not write the config")
    parser.add_argument("--show", action="store_true", help="print the sensor's emissivity, filter and a reading")
    parser.add_argument("--set-emissivity", type=float, metavar="E",
                        help="write a new emissivity (0.1 to 1.0) to the sensor's EEPROM; needs --write-eeprom")
    parser.add_argument("--write-eeprom", action="store_true", help="allow --set-emissivity to write the EEPROM")


def run(
    args: argparse.Namespace,
    thermometer_for: Callable[[Config], Thermometer] = open_thermometer,
    out: Callable[[str], None] = print,
    utcnow: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The body of `kiosk calibrate`; returns the exit code. Refusals raise `CalibrationError` or `SettingError`."""
    if args.reference is None and not args.show and args.set_emissivity is None:
        raise CalibrationError("say what to do: --reference C, --show, or --set-emissivity E --write-eeprom")
    if args.set_emissivity is not None and not args.write_eeprom:
        raise CalibrationError(
            "--set-emissivity writes the sensor's EEPROM (limited write cycles; every reading changes): "
            "add --write-eeprom to confirm"
        )
    config = load(args.config)
    thermometer = thermometer_for(config)
    if args.set_emissivity is not None and not isinstance(thermometer, EmissivitySetting):
        raise CalibrationError(f"{config.thermometer.driver}: this sensor has no emissivity setting to write")
    if args.show:
        out(thermometer.describe())
        sample = thermometer.read()
        out(f"object {sample.object_c:.2f} °C, room {sample.ambient_c:.2f} °C")
        out(f"configured offset {config.thermometer.offset_c:+.2f} °C, site {config.thermometer.site}")
    if args.set_emissivity is not None:
        assert isinstance(thermometer, EmissivitySetting)  # checked above, before anything was read
        before = thermometer.emissivity()
        stored = thermometer.write_emissivity(args.set_emissivity)
        out(f"emissivity {before:.4f} -> {stored:.4f}")
    if args.reference is not None:
        section = config.thermometer
        result = measure_offset(
            thermometer, args.reference, readings=args.readings, limit_c=section.calibration_limit_c,
            interval_s=1.0 / section.sample_hz, sleep=sleep,
        )
        out(f"reference {result.reference_c:.2f} °C, {result.readings} readings: sensor {result.mean_c:.2f} °C "
            f"(sd {result.spread_c:.2f} °C), room {result.ambient_c:.1f} °C")
        if args.dry_run:
            out(f"offset would be {result.offset_c:+.2f} °C (now {section.offset_c:+.2f} °C); --dry-run: nothing written")
            return 0
        stamp = utcnow().astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
        note = (f"kiosk calibrate {stamp}: reference {result.reference_c:.2f} °C, "
                f"sensor {result.mean_c:.2f} °C, {result.readings} readings")
        write_offset(args.config, result.offset_c, note)
        log.info("thermometer offset %+.2f °C written to %s (%s)", result.offset_c, args.config, note)
        out(f"offset {result.offset_c:+.2f} °C (was {section.offset_c:+.2f} °C) written to {args.config}")
        out("restart the kiosk to use it: sudo systemctl restart kiosk")
    return 0
