"""`kiosk calibrate`: the offset against a reference source, written into the config file safely.

The reference is an emulated blackbody in front of the emulated chip, read through the real driver
and the PEC-checked MLX90614 driver; the config file is a copy of the shipped, commented one.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk import cli
from kiosk.calibration import (
    CalibrationError,
    add_arguments,
    measure_offset,
    run,
    write_offset,
)
from kiosk.config import SHIPPED_CONFIG, Config, ConfigError, load
from kiosk.errors import KioskError, SensorError
from kiosk.sensors.mlx90614 import MLX90614
from kiosk.sim.mlx90614 import MLX90614Chip, SimI2C
from kit import FakeClock


class Blackbody:
    """A reference source at `celsius`, seen by a sensor that reads `error_c` off, with its noise."""

    def __init__(self, celsius: float = 37.0, error_c: float = 0.0, noise_c: float = 0.05, seed: int = 1):
        self.celsius, self.error_c, self.noise_c = celsius, error_c, noise_c
        self._rng = random.Random(seed)

    def __call__(self) -> float:
        return self.celsius + self.error_c + self._rng.gauss(0.0, self.noise_c)


class Bench:
    def __init__(self, blackbody: Blackbody):
        self.clock = FakeClock()
        self.bus = SimI2C()
        self.chip = self.bus.attach(MLX90614Chip(ambient_c=23.0, object_source=blackbody,
                                                 clock=self.clock, sleep=self.clock.sleep))
        self.thermometer = MLX90614(self.bus, clock=self.clock, sleep=self.clock.sleep)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(SHIPPED_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    path.chmod(0o640)
    return path


def args(config: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser, config)
    return parser.parse_args(list(extra))


def calibrate(config: Path, bench: Bench, *extra: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = run(args(config, *extra), thermometer_for=lambda _: bench.thermometer, out=lines.append,
               utcnow=lambda: datetime(2024, 3, 1, 8, 0, tzinfo=UTC), sleep=bench.clock.sleep)
    return code, lines


def test_offset_is_reference_minus_the_mean_reading() -> None:
    bench = Bench(Blackbody(37.0, error_c=0.3))
    result = measure_offset(bench.thermometer, 37.0, readings=50, sleep=bench.clock.sleep)
    assert result.offset_c == pytest.approx(-0.3, abs=0.03)
    assert result.mean_c == pytest.approx(37.3, abs=0.03)
    assert result.spread_c == pytest.approx(0.05, abs=0.03)
    assert result.ambient_c == pytest.approx(23.0, abs=0.02)
    assert bench.chip.reads == 100  # 50 object and 50 ambient words


def test_too_large_an_offset_is_refused() -> None:
    bench = Bench(Blackbody(37.0, error_c=1.6))
    with pytest.raises(CalibrationError, match=r"offset of -1\.6\d °C is more than thermometer.calibration_limit_c \(1 °C\)"):
        measure_offset(bench.thermometer, 37.0, limit_c=1.0, sleep=bench.clock.sleep)


def test_scattered_readings_are_refused() -> None:
    bench = Bench(Blackbody(37.0, noise_c=0.5))
    with pytest.raises(CalibrationError, match="scatter"):
        measure_offset(bench.thermometer, 37.0, sleep=bench.clock.sleep)


@pytest.mark.parametrize(("reference", "readings", "problem"), [(20.0, 50, "--reference"), (37.0, 3, "--readings")])
def test_nonsense_arguments_are_refused_before_reading(reference: float, readings: int, problem: str) -> None:
    bench = Bench(Blackbody())
    with pytest.raises(CalibrationError, match=problem):
        measure_offset(bench.thermometer, reference, readings=readings)
    assert bench.chip.reads == 0


def test_sensor_faults_pass_through() -> None:
    bench = Bench(Blackbody())
    bench.chip.plugged = False
    with pytest.raises(SensorError, match="no thermometer answers"):
        measure_offset(bench.thermometer, 37.0, sleep=bench.clock.sleep)


def test_write_keeps_every_comment_and_changes_only_the_offset(config_file: Path) -> None:
    before = config_file.read_text(encoding="utf-8").splitlines()
    config = write_offset(config_file, -0.23, "kiosk calibrate 2024-03-01T08:00Z")
    after = config_file.read_text(encoding="utf-8").splitlines()
    assert config.thermometer.offset_c == -0.23 == load(config_file).thermometer.offset_c
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("offset_c = 0.0", "offset_c = -0.23 # kiosk calibrate 2024-03-01T08:00Z")]
    assert [line for line in after if line.startswith("#")] == [line for line in before if line.startswith("#")]


def test_write_is_atomic_and_keeps_the_file_mode(config_file: Path) -> None:
    write_offset(config_file, 0.12)
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640
    assert sorted(p.name for p in config_file.parent.iterdir()) == ["config.toml"]  # no temporary left


def test_write_adds_the_section_to_a_minimal_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# site A\n[kiosk]\nid = "gate-a"\n', encoding="utf-8")
    write_offset(path, 0.3)
    config = load(path)
    assert (config.kiosk.id, config.thermometer.offset_c) == ("gate-a", 0.3)
    assert path.read_text(encoding="utf-8").startswith("# site A\n")


def test_an_invalid_result_leaves_the_file_untouched(config_file: Path) -> None:
    original = config_file.read_bytes()
    with pytest.raises(ConfigError, match="thermometer.offset_c"):
        write_offset(config_file, 9.0)  # beyond the scheme's +-5 °C
    assert config_file.read_bytes() == original
    broken = config_file.parent / "broken.toml"
    broken.write_text("[thermometer\noffset_c = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        write_offset(broken, 0.1)
    assert broken.read_text(encoding="utf-8") == "[thermometer\noffset_c = 0\n"


def test_a_failure_while_replacing_leaves_the_old_file_and_no_debris(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = config_file.read_bytes()

    def disk_full(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_offset(config_file, 0.1)
    assert config_file.read_bytes() == original
    assert sorted(p.name for p in config_file.parent.iterdir()) == ["config.toml"]


# --- the command ---------------------------------------------------------------------------------


def test_calibrate_command_writes_the_offset(config_file: Path) -> None:
    bench = Bench(Blackbody(37.0, error_c=-0.4))
    code, lines = calibrate(config_file, bench, "--reference", "37.0", "--readings", "40")
    assert code == 0
    offset = load(config_file).thermometer.offset_c
    assert offset == pytest.approx(0.4, abs=0.03)
    assert f"offset {offset:+.2f} °C (was +0.00 °C) written to {config_file}" in lines
    assert "kiosk calibrate 2024-03-01T08:00Z: reference 37.00 °C" in config_file.read_text(encoding="utf-8")


def test_dry_run_writes_nothing(config_file: Path) -> None:
    original = config_file.read_bytes()
    code, lines = calibrate(config_file, Bench(Blackbody(37.0, error_c=0.2)), "--reference", "37", "--dry-run")
    assert code == 0 and config_file.read_bytes() == original
    assert any("offset would be -0.2" in line for line in lines)


def test_refused_calibration_writes_nothing(config_file: Path) -> None:
    original = config_file.read_bytes()
    with pytest.raises(CalibrationError):
        calibrate(config_file, Bench(Blackbody(37.0, error_c=2.0)), "--reference", "37")
    assert config_file.read_bytes() == original


def test_show_reads_emissivity_and_filter(config_file: Path) -> None:
    code, lines = calibrate(config_file, Bench(Blackbody()), "--show")
    assert code == 0
    assert lines[0] == "MLX90614 at I2C 0x5A: emissivity 1.0000; object filter bandwidth 7.23 Hz"
    seen = re.fullmatch(r"object (\S+) °C, room (\S+) °C", lines[1])
    assert seen is not None, lines[1]
    assert float(seen[1]) == pytest.approx(37.0, abs=0.2) and float(seen[2]) == pytest.approx(23.0, abs=0.02)


def test_emissivity_write_needs_the_explicit_flag(config_file: Path) -> None:
    bench = Bench(Blackbody())
    with pytest.raises(CalibrationError, match="--write-eeprom"):
        calibrate(config_file, bench, "--set-emissivity", "0.98")
    assert bench.chip.writes == 0 and bench.chip.eeprom(0x24) == 0xFFFF
    code, lines = calibrate(config_file, bench, "--set-emissivity", "0.98", "--write-eeprom")
    assert code == 0 and bench.chip.eeprom(0x24) == round(0.98 * 65535)
    assert lines == ["emissivity 1.0000 -> 0.9800"]


class ReadOnlySensor:
    """A chip that only reads: the real driver behind the plain `Thermometer` interface, no emissivity."""

    def __init__(self, sensor: MLX90614) -> None:
        self.read = sensor.read
        self.describe = sensor.describe


def test_a_sensor_without_an_emissivity_setting_refuses_the_write_before_touching_it(config_file: Path) -> None:
    bench = Bench(Blackbody())
    lines: list[str] = []
    with pytest.raises(CalibrationError, match="no emissivity setting"):
        run(args(config_file, "--show", "--set-emissivity", "0.98", "--write-eeprom"),
            thermometer_for=lambda _: ReadOnlySensor(bench.thermometer), out=lines.append)
    assert lines == [] and bench.chip.reads == 0 and bench.chip.writes == 0


def test_nothing_to_do_is_a_clear_error(config_file: Path) -> None:
    with pytest.raises(CalibrationError, match="say what to do"):
        calibrate(config_file, Bench(Blackbody()))


def test_cli_registers_calibrate_and_refuses_without_the_real_sensor(config_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    parser = cli.build_parser()
    parsed = parser.parse_args(["calibrate", "--reference", "37.0", "--config", str(config_file)])
    assert parsed.reference == 37.0 and parsed.config == config_file
    simulated = config_file.parent / "sim.toml"
    simulated.write_text('[thermometer]\ndriver = "sim"\n', encoding="utf-8")
    assert cli.main(["calibrate", "--reference", "37.0", "--config", str(simulated)]) == 1
    assert 'needs the real sensor (thermometer.driver = "mlx90614")' in capsys.readouterr().err


def test_open_thermometer_is_a_kiosk_error_for_the_simulator() -> None:
    from kiosk.calibration import open_thermometer

    with pytest.raises(KioskError, match="real sensor"):
        open_thermometer(Config.model_validate({"thermometer": {"driver": "sim"}}))
