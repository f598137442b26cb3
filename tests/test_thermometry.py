"""The sampling rules, walked step by step with a fake clock.

Every reading goes through the real stack: WristProfile -> emulated chip -> emulated bus ->
Adafruit driver -> Thermometer -> Thermometry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import UTC, datetime

import pytest

from kiosk.config import ThermometerSection
from kiosk.decision import Policy, Reason, decide
from kiosk.results import CodeResult, TemperatureResult
from kiosk.sensors.thermometer import Thermometer
from kiosk.sensors.thermometry import Thermometry, ThermometryState
from kiosk.sim.mlx90614 import MLX90614Chip, SimI2C
from kiosk.sim.wrist import WristProfile

NOW = datetime(2022, 3, 1, 8, 30, tzinfo=UTC)
GREEN = CodeResult(verified=True, colour="green", code_hash="h", generated_at=NOW)


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


class Rig:
    """A kiosk's thermometer on the emulated bus, stepped by hand at the configured rate."""

    def __init__(self, seed: int = 0, noise_c: float = 0.05, **section: object):
        self.clock = FakeClock()
        self.section = ThermometerSection(driver="sim", **section)
        self.wrist = WristProfile(22.0, noise_c=noise_c, rng=random.Random(seed), clock=self.clock)
        self.bus = SimI2C()
        self.chip = self.bus.attach(MLX90614Chip(ambient_c=22.0, object_source=self.wrist))
        self.thermometer = Thermometer(self.bus, self.section.i2c_address, self.section.plausible_max_c)
        self.thermometry = Thermometry(self.thermometer, self.section, clock=self.clock)

    def step(self) -> ThermometryState:
        self.clock.now += 1.0 / self.section.sample_hz
        return self.thermometry.step()

    def run_for(self, seconds: float) -> list[ThermometryState]:
        return [self.step() for _ in range(round(seconds * self.section.sample_hz))]

    def until(self, phase: str, within_s: float = 10.0) -> ThermometryState:
        for _ in range(round(within_s * self.section.sample_hz)):
            state = self.step()
            if state.phase == phase:
                return state
        raise AssertionError(f"no {phase!r} within {within_s} s; last: {self.thermometry.snapshot()}")


def test_nobody_there_is_absent() -> None:
    rig = Rig()
    states = rig.run_for(2.0)
    assert {s.phase for s in states} == {"absent"}
    assert states[-1].object_c == pytest.approx(22.0, abs=0.3)
    assert rig.thermometry.consume() is None


def test_normal_visitor_settles_to_the_skin_temperature_plus_offset() -> None:
    rig = Rig(offset_c=0.4)
    rig.run_for(0.5)
    rig.wrist.approach(36.2)
    measuring = rig.until("measuring")
    settled = rig.until("settled")
    assert settled.since - measuring.since <= rig.section.max_settle_s
    assert settled.result is not None and settled.result.fault is None
    assert settled.result.celsius == pytest.approx(36.6, abs=0.15)
    assert settled.result.samples >= 3
    result = rig.thermometry.consume()
    assert result == settled.result
    assert decide(result, GREEN, Policy(), NOW).passed


def test_fever_is_reported_as_measured() -> None:
    rig = Rig()
    rig.wrist.approach(38.3)
    result = rig.until("settled").result
    assert result is not None
    assert result.celsius == pytest.approx(38.3, abs=0.15)
    verdict = decide(result, GREEN, Policy(), NOW)
    assert verdict.outcome == "REFUSE" and verdict.reasons == (Reason.FEVER,)


@pytest.mark.parametrize("seed", range(20))
def test_sensor_noise_does_not_move_the_result(seed: int) -> None:
    rig = Rig(seed=seed, noise_c=0.05)
    rig.wrist.approach(36.5)
    result = rig.until("settled", within_s=rig.section.max_settle_s + 0.5).result
    assert result is not None and result.celsius is not None
    assert abs(result.celsius - 36.5) <= 0.15


def test_wrist_removed_mid_measurement_gives_no_result() -> None:
    rig = Rig()
    rig.wrist.approach(36.5)
    rig.until("measuring")
    rig.step()
    rig.wrist.leave(at=rig.clock.now)
    assert rig.until("absent").result is None
    assert rig.thermometry.consume() is None
    # The next wrist is measured from scratch.
    rig.wrist.approach(36.8)
    assert rig.until("settled").result.celsius == pytest.approx(36.8, abs=0.15)


def test_one_measurement_per_wrist() -> None:
    rig = Rig()
    rig.wrist.approach(36.5)
    rig.until("settled")
    assert rig.thermometry.consume() is not None
    assert rig.thermometry.snapshot().phase == "done"
    states = rig.run_for(5.0)  # the same wrist stays
    assert {s.phase for s in states} == {"done"}
    assert rig.thermometry.consume() is None
    rig.wrist.leave()
    rig.until("absent")
    rig.wrist.approach(37.0)
    assert rig.until("settled").result.celsius == pytest.approx(37.0, abs=0.15)


def test_result_waits_when_the_wrist_leaves_before_it_is_taken() -> None:
    rig = Rig()
    rig.wrist.approach(36.5)
    settled = rig.until("settled")
    rig.wrist.leave()
    states = rig.run_for(2.0)
    assert {s.phase for s in states} == {"settled"}
    assert rig.thermometry.consume() == settled.result
    assert rig.thermometry.snapshot().phase == "absent"


def test_reset_drops_a_waiting_result() -> None:
    rig = Rig()
    rig.wrist.approach(36.5)
    rig.until("settled")
    rig.thermometry.reset()
    assert rig.thermometry.snapshot().phase == "absent"
    assert rig.thermometry.consume() is None


def test_readings_that_never_settle_fail_and_are_refused() -> None:
    rig = Rig(noise_c=0.6)
    rig.wrist.approach(36.5)
    start = rig.until("measuring").since
    settled = rig.until("settled")
    assert settled.since - start == pytest.approx(rig.section.max_settle_s, abs=0.06)
    assert settled.result == TemperatureResult.failed("did not settle within 4 s")
    result = rig.thermometry.consume()
    assert decide(result, GREEN, Policy(), NOW).reasons == (Reason.SENSOR_FAULT,)
    assert rig.thermometry.snapshot().phase == "done"


def test_unplugged_at_start_recovers_when_plugged_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.sensors.thermometry")
    rig = Rig(retry_after_s=2.0)
    rig.chip.plugged = False
    state = rig.step()
    assert state.phase == "fault"
    assert "0x5A" in state.fault
    rig.run_for(5.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "0x5A" in warnings[0].getMessage()
    # Plugged back in: not asked again before retry_after_s has passed since the last try...
    rig.chip.plugged = True
    last_try = rig.clock.now - 1.0  # 5 s of 20 Hz steps with retries every 2 s: last at +4 s
    rig.clock.now = last_try + 1.9
    assert rig.thermometry.step().phase == "fault"
    assert rig.chip.reads == 0
    # ...then it comes back by itself.
    rig.clock.now = last_try + 2.0
    assert rig.thermometry.step().phase == "absent"
    assert any(r.levelno == logging.INFO and "recovered" in r.getMessage() for r in caplog.records)
    rig.wrist.approach(36.5)
    assert rig.until("settled").result.celsius == pytest.approx(36.5, abs=0.15)


def test_unplugged_mid_measurement_refuses_the_visitor_then_recovers() -> None:
    rig = Rig()
    rig.wrist.approach(36.5)
    rig.until("measuring")
    rig.step()
    rig.chip.plugged = False
    state = rig.step()
    assert state.phase == "fault"
    assert state.result is not None and state.result.celsius is None
    assert state.result.fault == state.fault
    assert "no thermometer answers at I2C address 0x5A" in state.fault
    result = rig.thermometry.consume()
    verdict = decide(result, GREEN, Policy(), NOW)
    assert verdict.outcome == "REFUSE" and verdict.reasons == (Reason.SENSOR_FAULT,)
    assert rig.thermometry.snapshot().phase == "fault"  # still out of service
    rig.chip.plugged = True
    rig.wrist.leave()
    assert rig.until("absent").result is None


def test_fault_after_the_measurement_keeps_the_finished_result() -> None:
    rig = Rig()
    rig.wrist.approach(36.5)
    settled = rig.until("settled")
    rig.chip.plugged = False
    assert rig.step().phase == "fault"
    assert rig.thermometry.consume() == settled.result


def test_error_flag_is_a_fault_until_it_clears() -> None:
    rig = Rig()
    rig.chip.error_flag = True
    state = rig.step()
    assert state.phase == "fault" and "error flag" in state.fault
    rig.chip.error_flag = False
    assert rig.until("absent").fault is None


def test_changed_fault_cause_is_logged_once_more(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kiosk.sensors.thermometry")
    rig = Rig()
    rig.chip.error_flag = True
    rig.run_for(3.0)
    rig.chip.plugged = False
    rig.run_for(6.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "error flag" in messages[0] and "0x5A" in messages[1]


@pytest.mark.parametrize(
    ("ambient_c", "skin_c", "cause"),
    [(100.0, 36.5, "ambient reading"), (22.0, 52.0, "object reading")],
)
def test_out_of_range_readings_are_faults(ambient_c: float, skin_c: float, cause: str) -> None:
    rig = Rig()
    rig.chip.ambient_c = ambient_c
    rig.wrist.approach(skin_c)
    states = rig.run_for(3.0)
    assert states[-1].phase == "fault" and cause in states[-1].fault
    assert all(s.result is None or s.result.celsius is None for s in states)


def test_run_samples_on_its_own_thread_until_stopped() -> None:
    bus = SimI2C()
    bus.attach(MLX90614Chip(ambient_c=22.0, object_source=lambda: 36.5))
    section = ThermometerSection(driver="sim", sample_hz=50)
    thermometry = Thermometry(Thermometer(bus), section)
    stop = threading.Event()
    worker = threading.Thread(target=thermometry.run, args=(stop,))
    worker.start()
    try:
        deadline = time.monotonic() + 10.0  # a bound against hanging, not a timing check
        while thermometry.snapshot().phase != "settled" and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(timeout=5.0)
    assert not worker.is_alive()
    result = thermometry.consume()
    assert result is not None and result.celsius == 36.5 and result.samples >= 3
