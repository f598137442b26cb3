"""The emulated MLX90614 and I2C bus, checked through the real Adafruit driver and against the datasheet."""

from __future__ import annotations

import errno
import random
import threading

import adafruit_mlx90614
import pytest

from kiosk.sensors.pec import write_word_pec
from kiosk.sim.mlx90614 import BUS_TIMEOUT_S, EEPROM_WRITE_S, MLX90614Chip, SimI2C, crc8
from kiosk.sim.wrist import FACTORY_TAU_S, WristProfile, tau_for_bandwidth, view_filled
from kit import FakeClock


@pytest.fixture
def bus() -> SimI2C:
    return SimI2C()


def read_word(bus: SimI2C, command: int, count: int = 2, address: int = 0x5A) -> bytes:
    buffer = bytearray(count)
    assert bus.try_lock()
    try:
        bus.writeto_then_readfrom(address, bytes([command]), buffer)
    finally:
        bus.unlock()
    return bytes(buffer)


def test_pec_matches_the_datasheet_example() -> None:
    # Datasheet: slave 0x5A, command 0x07, data 0x3AD2 -> PEC 0x30 over B4 07 B5 D2 3A.
    assert crc8(bytes([0xB4, 0x07, 0xB5, 0xD2, 0x3A])) == 0x30


def test_chip_answers_lsb_msb_pec_for_the_datasheet_reading(bus: SimI2C) -> None:
    # 0x3AD2 * 0.02 - 273.15 = 28.01 °C
    bus.attach(MLX90614Chip(object_source=lambda: 28.01))
    assert read_word(bus, 0x07, count=3) == bytes([0xD2, 0x3A, 0x30])
    assert read_word(bus, 0x07) == bytes([0xD2, 0x3A])


def test_pec_covers_the_address_byte() -> None:
    bus = SimI2C()
    bus.attach(MLX90614Chip(address=0x5B, object_source=lambda: 28.01))
    lsb, msb, pec = read_word(bus, 0x07, count=3, address=0x5B)
    assert (lsb, msb) == (0xD2, 0x3A)
    assert pec == crc8(bytes([0xB6, 0x07, 0xB7, 0xD2, 0x3A])) != 0x30


def test_real_driver_reads_ambient_and_object(bus: SimI2C) -> None:
    bus.attach(MLX90614Chip(ambient_c=23.4, object_source=lambda: 36.62))
    sensor = adafruit_mlx90614.MLX90614(bus)
    assert sensor.ambient_temperature == pytest.approx(23.4, abs=0.011)
    assert sensor.object_temperature == pytest.approx(36.62, abs=0.011)


def test_object_follows_its_source_on_every_read(bus: SimI2C) -> None:
    readings = iter([30.0, 31.0, 32.5])
    bus.attach(MLX90614Chip(object_source=lambda: next(readings)))
    sensor = adafruit_mlx90614.MLX90614(bus)
    assert [round(sensor.object_temperature, 1) for _ in range(3)] == [30.0, 31.0, 32.5]


def test_without_a_source_the_sensor_sees_the_room(bus: SimI2C) -> None:
    bus.attach(MLX90614Chip(ambient_c=19.5))
    assert adafruit_mlx90614.MLX90614(bus).object_temperature == pytest.approx(19.5, abs=0.011)


def test_eeprom_emissivity_and_config(bus: SimI2C) -> None:
    bus.attach(MLX90614Chip())
    assert read_word(bus, 0x24) == b"\xff\xff"  # emissivity 1.0
    assert read_word(bus, 0x25) != b"\x00\x00"
    assert read_word(bus, 0x2E)[0] == 0x5A  # its own SMBus address


def test_error_flag_sets_bit_15_of_object_readings_only(bus: SimI2C) -> None:
    chip = bus.attach(MLX90614Chip(ambient_c=22.0, object_source=lambda: 36.5))
    chip.error_flag = True
    assert read_word(bus, 0x07)[1] & 0x80
    assert read_word(bus, 0x08)[1] & 0x80
    assert not read_word(bus, 0x06)[1] & 0x80
    # The driver ignores the flag and hands back an impossible temperature.
    assert adafruit_mlx90614.MLX90614(bus).object_temperature > 382


def test_extreme_temperatures_clamp_without_faking_the_error_flag(bus: SimI2C) -> None:
    bus.attach(MLX90614Chip(object_source=lambda: 1000.0))
    assert read_word(bus, 0x07) == b"\xff\x7f"


def test_unplugged_chip_answers_remote_io_error(bus: SimI2C) -> None:
    chip = bus.attach(MLX90614Chip())
    chip.plugged = False
    assert bus.try_lock()
    try:
        with pytest.raises(OSError) as caught:
            bus.writeto(0x5A, b"")
    finally:
        bus.unlock()
    assert caught.value.errno == errno.EREMOTEIO
    assert bus.scan() == []
    with pytest.raises(ValueError, match="No I2C device at address: 0x5a"):
        adafruit_mlx90614.MLX90614(bus)
    chip.plugged = True
    assert bus.scan() == [0x5A]
    assert adafruit_mlx90614.MLX90614(bus).ambient_temperature == pytest.approx(22.0, abs=0.011)


def test_unplug_after_probe_fails_the_next_read(bus: SimI2C) -> None:
    chip = bus.attach(MLX90614Chip())
    sensor = adafruit_mlx90614.MLX90614(bus)
    chip.plugged = False
    with pytest.raises(OSError) as caught:
        _ = sensor.object_temperature
    assert caught.value.errno == errno.EREMOTEIO
    assert bus.try_lock()  # the driver released the bus despite the error
    bus.unlock()


def test_nobody_at_another_address(bus: SimI2C) -> None:
    bus.attach(MLX90614Chip())
    with pytest.raises(ValueError, match="0x5b"):
        adafruit_mlx90614.MLX90614(bus, 0x5B)


def test_bus_lock_is_exclusive_and_required(bus: SimI2C) -> None:
    bus.attach(MLX90614Chip())
    assert bus.try_lock()
    assert not bus.try_lock()
    bus.unlock()
    with pytest.raises(RuntimeError, match="try_lock"):
        bus.writeto(0x5A, b"")


def test_separate_write_then_read_uses_the_selected_command(bus: SimI2C) -> None:
    bus.attach(MLX90614Chip(object_source=lambda: 28.01))
    buffer = bytearray(3)
    assert bus.try_lock()
    try:
        with pytest.raises(OSError):
            bus.readfrom_into(0x5A, buffer)  # no command selected yet
        bus.writeto(0x5A, b"\x07")
        bus.readfrom_into(0x5A, buffer)
    finally:
        bus.unlock()
    assert bytes(buffer) == bytes([0xD2, 0x3A, 0x30])


def write_word(bus: SimI2C, command: int, value: int, pec: int | None = None, address: int = 0x5A) -> None:
    lsb, msb = value & 0xFF, value >> 8
    pec = write_word_pec(address, command, lsb, msb) if pec is None else pec
    assert bus.try_lock()
    try:
        bus.writeto(address, bytes([command, lsb, msb, pec]))
    finally:
        bus.unlock()


def test_eeprom_erase_then_write_with_pec(bus: SimI2C) -> None:
    clock = FakeClock()
    chip = bus.attach(MLX90614Chip(clock=clock, sleep=clock.sleep))
    write_word(bus, 0x24, 0x0000)
    clock.now += 0.01
    assert read_word(bus, 0x24) == b"\x00\x00"
    write_word(bus, 0x24, 0xF332)  # emissivity 0.95
    clock.now += 0.01
    assert read_word(bus, 0x24) == b"\x32\xf3"
    assert chip.writes == 2 and chip.eeprom(0x24) == 0xF332


def test_eeprom_write_with_a_bad_pec_is_not_acknowledged(bus: SimI2C) -> None:
    chip = bus.attach(MLX90614Chip())
    good = write_word_pec(0x5A, 0x24, 0x00, 0x00)
    with pytest.raises(OSError) as caught:
        write_word(bus, 0x24, 0x0000, pec=good ^ 0x01)
    assert caught.value.errno == errno.EREMOTEIO
    assert chip.eeprom(0x24) == 0xFFFF and chip.writes == 0


def test_eeprom_write_without_erase_leaves_a_wrong_value(bus: SimI2C) -> None:
    clock = FakeClock()
    chip = bus.attach(MLX90614Chip(clock=clock, sleep=clock.sleep))
    write_word(bus, 0x25, 0x0001)  # config register holds 0x9FB4: not erased
    assert chip.eeprom(0x25) not in (0x0001, 0x9FB4)


def test_chip_is_busy_right_after_an_eeprom_write(bus: SimI2C) -> None:
    clock = FakeClock()
    bus.attach(MLX90614Chip(clock=clock, sleep=clock.sleep))
    write_word(bus, 0x24, 0x0000)
    with pytest.raises(OSError):
        read_word(bus, 0x24)
    clock.now += EEPROM_WRITE_S
    assert read_word(bus, 0x24) == b"\x00\x00"


@pytest.mark.parametrize("command", [0x07, 0x3C, 0x2F])
def test_ram_and_factory_cells_cannot_be_written(bus: SimI2C, command: int) -> None:
    chip = bus.attach(MLX90614Chip(object_source=lambda: 30.0))
    with pytest.raises(OSError):
        write_word(bus, command, 0x0000)
    assert chip.writes == 0
    assert bus.try_lock()
    try:
        with pytest.raises(OSError):
            bus.writeto(0x5A, bytes([0x24, 0x00]))  # neither a command nor a whole word
    finally:
        bus.unlock()


# Faults, as a Raspberry Pi shows them


def test_nack_burst_then_answers_again(bus: SimI2C) -> None:
    chip = bus.attach(MLX90614Chip(object_source=lambda: 28.01))
    chip.nack_next(2)
    for _ in range(2):
        with pytest.raises(OSError) as caught:
            read_word(bus, 0x07, count=3)
        assert caught.value.errno == errno.EREMOTEIO
    assert read_word(bus, 0x07, count=3) == bytes([0xD2, 0x3A, 0x30])


def test_back_to_back_transfers_fail_without_a_pause(bus: SimI2C) -> None:
    clock = FakeClock()
    chip = bus.attach(MLX90614Chip(object_source=lambda: 28.01, clock=clock, sleep=clock.sleep))
    chip.min_gap_s = 0.001
    clock.now += 1.0
    assert read_word(bus, 0x07) == bytes([0xD2, 0x3A])
    with pytest.raises(OSError):
        read_word(bus, 0x07)  # straight after the last one
    clock.now += 0.001
    assert read_word(bus, 0x07) == bytes([0xD2, 0x3A])


def test_corrupted_pec_for_the_next_answers_only(bus: SimI2C) -> None:
    chip = bus.attach(MLX90614Chip(object_source=lambda: 28.01))
    chip.corrupt_pec_next(1)
    lsb, msb, pec = read_word(bus, 0x07, count=3)
    assert (lsb, msb) == (0xD2, 0x3A) and pec != 0x30
    assert read_word(bus, 0x07, count=3)[2] == 0x30
    # The driver never looks at the PEC: it takes the word either way.
    chip.corrupt_pec_next(1)
    assert adafruit_mlx90614.MLX90614(bus).object_temperature == pytest.approx(28.01, abs=0.011)


def test_stuck_object_reading_ignores_the_source(bus: SimI2C) -> None:
    temperatures = iter([30.0, 31.0, 32.0, 33.0])
    chip = bus.attach(MLX90614Chip(object_source=lambda: next(temperatures)))
    sensor = adafruit_mlx90614.MLX90614(bus)
    assert round(sensor.object_temperature, 1) == 30.0
    chip.stuck = True
    assert [round(sensor.object_temperature, 1) for _ in range(2)] == [30.0, 30.0]
    chip.stuck = False
    assert round(sensor.object_temperature, 1) == 31.0


def test_slow_answers_take_their_time(bus: SimI2C) -> None:
    clock = FakeClock()
    chip = bus.attach(MLX90614Chip(object_source=lambda: 28.01, clock=clock, sleep=clock.sleep))
    chip.answer_delay_s = 0.3
    before = clock.now
    assert read_word(bus, 0x07) == bytes([0xD2, 0x3A])
    assert clock.now - before == pytest.approx(0.3)


def test_answers_slower_than_the_bus_timeout_fail(bus: SimI2C) -> None:
    clock = FakeClock()
    chip = bus.attach(MLX90614Chip(object_source=lambda: 28.01, clock=clock, sleep=clock.sleep))
    chip.answer_delay_s = BUS_TIMEOUT_S + 1
    before = clock.now
    with pytest.raises(OSError) as caught:
        read_word(bus, 0x07)
    assert caught.value.errno == errno.ETIMEDOUT
    assert clock.now - before == pytest.approx(BUS_TIMEOUT_S)


def test_reads_are_counted(bus: SimI2C) -> None:
    chip = bus.attach(MLX90614Chip())
    sensor = adafruit_mlx90614.MLX90614(bus)
    _ = sensor.object_temperature, sensor.ambient_temperature
    assert chip.reads == 2


# WristProfile


def test_wrist_absent_reads_the_room() -> None:
    clock = FakeClock()
    wrist = WristProfile(21.0, noise_c=0.0, clock=clock)
    assert wrist.temperature() == pytest.approx(21.0)
    assert not wrist.present


def test_wrist_rises_exponentially_then_falls_back() -> None:
    clock = FakeClock()
    wrist = WristProfile(22.0, tau_s=0.15, approach_s=0.0, noise_c=0.0, clock=clock)
    wrist.approach(36.0, at=clock.now)
    assert wrist.present
    # One time constant: 63 % of the way from 22 to 36.
    assert wrist.temperature(clock.now + 0.15) == pytest.approx(22.0 + 14.0 * 0.632, abs=0.01)
    assert wrist.temperature(clock.now + 2.0) == pytest.approx(36.0, abs=0.001)
    clock.now += 2.0
    wrist.leave()
    assert not wrist.present
    assert wrist.temperature(clock.now + 0.15) == pytest.approx(36.0 - 14.0 * 0.632, abs=0.01)
    assert wrist.temperature(clock.now + 2.0) == pytest.approx(22.0, abs=0.001)


def test_wrist_leaving_half_way_starts_from_where_it_was() -> None:
    wrist = WristProfile(22.0, tau_s=0.15, approach_s=0.0, noise_c=0.0, clock=FakeClock(0.0))
    wrist.approach(36.0, at=0.0)
    half = wrist.temperature(0.1)
    wrist.leave(at=0.1)
    assert wrist.temperature(0.1) == pytest.approx(half)
    assert 22.0 < wrist.temperature(0.2) < half


def test_a_wrist_held_far_away_reads_between_room_and_skin_and_warms_as_it_comes_nearer() -> None:
    clock = FakeClock(0.0)
    wrist = WristProfile(22.0, noise_c=0.0, clock=clock)
    seen = {}
    for distance_cm in (30.0, 10.0, 5.0, 2.5):
        wrist.approach(34.0, distance_cm=distance_cm)
        clock.now += 2.0  # long past the approach and the filter
        seen[distance_cm] = wrist.temperature()
    assert 22.0 < seen[30.0] < seen[10.0] < seen[5.0] < 34.0
    assert seen[2.5] == pytest.approx(34.0)  # the skin fills the 90 degree view at 2.5 cm
    assert seen[5.0] == pytest.approx(22.0 + 12.0 * view_filled(5.0)) and view_filled(5.0) == pytest.approx(0.25)
    wrist.approach(34.0)  # moved in to the right distance
    clock.now += 2.0
    assert wrist.temperature() == pytest.approx(34.0)
    with pytest.raises(ValueError, match="distance_cm"):
        wrist.approach(34.0, distance_cm=-1.0)


def test_wrist_noise_is_small_and_seeded() -> None:
    def readings(seed: int) -> list[float]:
        wrist = WristProfile(22.0, noise_c=0.05, rng=random.Random(seed), clock=FakeClock(0.0))
        wrist.approach(36.5, at=-10.0)
        return [wrist.temperature(0.0) for _ in range(500)]

    first = readings(1)
    assert first == readings(1)
    assert first != readings(2)
    assert all(abs(value - 36.5) < 0.3 for value in first)
    assert 0.03 < (sum((v - 36.5) ** 2 for v in first) / len(first)) ** 0.5 < 0.07


def test_wrist_can_be_steered_while_another_thread_reads() -> None:
    wrist = WristProfile(22.0)
    stop = threading.Event()
    seen: list[float] = []

    def sample() -> None:
        while not stop.is_set():
            seen.append(wrist())

    reader = threading.Thread(target=sample)
    reader.start()
    for _ in range(200):
        wrist.approach(36.5)
        wrist.leave()
    stop.set()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert seen and all(21.5 < value < 37.0 for value in seen)


def test_wrist_rejects_nonsense_parameters() -> None:
    with pytest.raises(ValueError, match="tau_s"):
        WristProfile(tau_s=0)
    with pytest.raises(ValueError, match="noise_c"):
        WristProfile(noise_c=-1)
    with pytest.raises(ValueError, match="approach_s"):
        WristProfile(approach_s=-0.1)


def test_wrist_default_response_is_the_sensors_factory_filter() -> None:
    # Config register 1 bits 2:0 = 100 at the factory: 7.23 Hz bandwidth, a 22 ms time constant.
    assert FACTORY_TAU_S == pytest.approx(0.022, abs=0.0005)
    assert tau_for_bandwidth(0.15) == pytest.approx(1.06, abs=0.01)  # the heaviest IIR setting


def test_wrist_moving_into_view_ramps_then_settles() -> None:
    wrist = WristProfile(22.0, approach_s=0.2, noise_c=0.0, clock=FakeClock(0.0))
    wrist.approach(36.0, at=0.0)
    readings = [wrist.temperature(t / 100) for t in range(0, 41, 5)]
    assert readings == sorted(readings)  # rises all the way
    assert 22.0 < wrist.temperature(0.1) < 29.0  # half way through the ramp, lagging it a little
    assert wrist.temperature(0.2) < 36.0 - 1.0  # at the end of the ramp the filter still lags
    assert wrist.temperature(0.35) == pytest.approx(36.0, abs=0.01)  # settled a few time constants later
