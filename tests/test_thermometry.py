"""The measurement protocol, walked step by step with a fake clock.

Every reading goes through the real stack: WristProfile -> emulated chip -> emulated bus ->
Adafruit driver's bus device -> PEC-checked Thermometer -> Thermometry. Skin temperatures are
chosen through the body model, so each test says which body temperature it means.
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
from kiosk.sensors.body_model import BodyModel
from kiosk.sensors.thermometer import open_thermometer
from kiosk.sensors.thermometry import (
    UNSETTLED_PROGRESS_MAX,
    Thermometry,
    ThermometryState,
    interquartile_mean,
    is_stable,
)
from kiosk.sim.mlx90614 import MLX90614Chip, SimI2C
from kiosk.sim.wrist import FACTORY_TAU_S, WristProfile
from kit import FakeClock

NOW = datetime(2022, 3, 1, 8, 30, tzinfo=UTC)
GREEN = CodeResult(verified=True, colour="green", code_hash="h", generated_at=NOW)
ROOM_C = 22.0


class Rig:
    """A kiosk's thermometer on the emulated bus, stepped by hand at the configured rate."""

    def __init__(self, seed: int = 0, noise_c: float = 0.05, room_c: float = ROOM_C, **section: object):
        self.clock = FakeClock(1000.0)
        self.section = ThermometerSection(driver="sim", **section)
        self.model = BodyModel.from_section(self.section)
        self.room_c = room_c
        self.wrist = WristProfile(room_c, noise_c=noise_c, rng=random.Random(seed), clock=self.clock)
        self.bus = SimI2C()
        self.chip = self.bus.attach(MLX90614Chip(ambient_c=room_c, object_source=self.wrist,
                                                 clock=self.clock, sleep=self.clock.sleep))
        self.thermometer = open_thermometer(self.section, sim_bus=self.bus, clock=self.clock, sleep=self.clock.sleep)
        self.thermometry = Thermometry(self.thermometer, self.section, clock=self.clock)

    def skin(self, body_c: float) -> float:
        return self.model.skin(body_c, self.room_c)

    def approach(self, body_c: float) -> None:
        self.wrist.approach(self.skin(body_c))

    def step(self) -> ThermometryState:
        deadline = self.clock.now + 1.0 / self.section.sample_hz
        state = self.thermometry.step()
        self.clock.now = max(self.clock.now, deadline)
        return state

    def run_for(self, seconds: float) -> list[ThermometryState]:
        return [self.step() for _ in range(round(seconds * self.section.sample_hz))]

    def until(self, condition, within_s: float = 10.0) -> ThermometryState:  # type: ignore[no-untyped-def]
        wanted = condition if callable(condition) else (lambda s: s.phase == condition)
        for _ in range(round(within_s * self.section.sample_hz)):
            state = self.step()
            if wanted(state):
                return state
        raise AssertionError(f"condition not met within {within_s} s; last: {self.thermometry.snapshot()}")


def test_nobody_there_is_absent() -> None:
    rig = Rig()
    states = rig.run_for(2.0)
    assert {s.phase for s in states} == {"absent"}
    assert states[-1].object_c == pytest.approx(ROOM_C, abs=0.3)
    assert states[-1].ambient_c == pytest.approx(ROOM_C, abs=0.02)
    assert rig.thermometry.consume() is None


def test_normal_visitor_gets_the_body_estimate_from_the_skin() -> None:
    rig = Rig()
    rig.run_for(0.5)
    rig.approach(36.6)
    measuring = rig.until("measuring")
    settled = rig.until("settled")
    assert settled.since - measuring.since <= 1.0
    result = settled.result
    assert result is not None and result.fault is None
    assert result.celsius == pytest.approx(36.6, abs=0.1)
    assert result.skin_c == pytest.approx(rig.skin(36.6), abs=0.05) and result.skin_c < 36.3  # skin is cooler
    assert result.ambient_c == pytest.approx(ROOM_C, abs=0.02)
    assert result.site == "wrist" and result.readings == (result.celsius,)
    assert result.samples >= 4
    assert rig.thermometry.consume() == result
    assert decide(result, GREEN, Policy(), NOW).passed


def test_calibration_offset_moves_the_skin_reading() -> None:
    plain, offset = Rig(), Rig(offset_c=0.4)
    for rig in (plain, offset):
        rig.wrist.approach(35.0)
    a = plain.until("settled").result
    b = offset.until("settled").result
    assert b.skin_c - a.skin_c == pytest.approx(0.4, abs=0.05)
    assert b.celsius - a.celsius == pytest.approx(0.4 * (1 + plain.model.k), abs=0.1)


def test_forehead_site_uses_its_own_model() -> None:
    wrist, forehead = Rig(), Rig(site="forehead")
    for rig in (wrist, forehead):
        rig.wrist.approach(36.0)  # the same skin reading...
    a = wrist.until("settled").result
    b = forehead.until("settled").result
    assert b.site == "forehead"
    assert b.celsius > a.celsius  # ...means a warmer body on the forehead (it sits further from the core)


@pytest.mark.parametrize("seed", range(10))
def test_sensor_noise_does_not_move_the_result(seed: int) -> None:
    rig = Rig(seed=seed, noise_c=0.05)
    rig.approach(36.5)
    result = rig.until("settled", within_s=rig.section.max_settle_s + 0.5).result
    assert result is not None and result.celsius is not None
    assert abs(result.celsius - 36.5) <= 0.15


def test_a_warm_room_is_not_a_visitor() -> None:
    # At 33 °C the room itself reads above presence_c; only something warmer than the room is a visitor.
    rig = Rig(room_c=33.0)
    assert {s.phase for s in rig.run_for(2.0)} == {"absent"}
    rig.approach(36.6)
    assert rig.until("settled").result.celsius == pytest.approx(36.6, abs=0.15)


def test_wrist_removed_mid_measurement_gives_no_result() -> None:
    rig = Rig()
    rig.approach(36.5)
    rig.until("measuring")
    rig.step()
    rig.wrist.leave(at=rig.clock.now)
    assert rig.until("absent").result is None
    assert rig.thermometry.consume() is None
    rig.approach(36.8)
    assert rig.until("settled").result.celsius == pytest.approx(36.8, abs=0.15)


def test_one_measurement_per_wrist() -> None:
    rig = Rig()
    rig.approach(36.5)
    rig.until("settled")
    assert rig.thermometry.consume() is not None
    assert rig.thermometry.snapshot().phase == "done"
    assert {s.phase for s in rig.run_for(5.0)} == {"done"}  # the same wrist stays
    assert rig.thermometry.consume() is None
    rig.wrist.leave()
    rig.until("absent")
    rig.approach(37.0)
    assert rig.until("settled").result.celsius == pytest.approx(37.0, abs=0.15)


def test_result_waits_when_the_wrist_leaves_before_it_is_taken() -> None:
    rig = Rig()
    rig.approach(36.5)
    settled = rig.until("settled")
    rig.wrist.leave()
    assert {s.phase for s in rig.run_for(2.0)} == {"settled"}
    assert rig.thermometry.consume() == settled.result
    assert rig.thermometry.snapshot().phase == "absent"


def test_reset_drops_a_waiting_result() -> None:
    rig = Rig()
    rig.approach(36.5)
    rig.until("settled")
    rig.thermometry.reset()
    assert rig.thermometry.snapshot().phase == "absent"
    assert rig.thermometry.consume() is None


# --- settling: hold still, give up -----------------------------------------------------------------


def test_moving_wrist_is_asked_to_hold_still_then_refused() -> None:
    rig = Rig(noise_c=0.6)
    rig.approach(36.5)
    start = rig.until("measuring").since
    timeline = []  # (seconds since the wrist arrived, state)
    while not timeline or timeline[-1][1].phase != "settled":
        state = rig.step()
        timeline.append((state.since - start if state.phase == "settled" else rig.clock.now - start, state))
    asked_at = next(t for t, s in timeline if s.hold_still)
    assert asked_at == pytest.approx(rig.section.hold_still_after_s, abs=0.06)
    assert all(s.hold_still for t, s in timeline if asked_at <= t and s.phase == "measuring")
    given_up_at, settled = timeline[-1]
    assert given_up_at == pytest.approx(rig.section.max_settle_s, abs=0.06)
    assert not settled.hold_still
    assert settled.result == TemperatureResult.failed("did not settle within 4 s")
    result = rig.thermometry.consume()
    assert decide(result, GREEN, Policy(), NOW).reasons == (Reason.SENSOR_FAULT,)


def test_a_wrist_that_calms_down_after_hold_still_is_measured() -> None:
    rig = Rig(noise_c=0.6)
    rig.approach(36.5)
    asked = rig.until(lambda s: s.hold_still)
    assert asked.phase == "measuring"
    rig.wrist.noise_c = 0.05  # the visitor holds still
    settled = rig.until("settled")
    assert settled.result.celsius == pytest.approx(36.5, abs=0.2) and not settled.hold_still


def test_stability_rule_and_robust_estimate() -> None:
    assert is_stable([36.0, 36.05, 35.98, 36.02, 36.0, 36.03], 0.1)
    assert not is_stable([35.6, 35.7, 35.8, 35.9, 36.0, 36.1], 0.1)  # drifting
    assert not is_stable([36.0, 36.3, 35.7, 36.3, 35.7, 36.0], 0.1)  # scattered
    assert not is_stable([36.0, 36.0, 36.0], 0.1)  # too few readings
    assert interquartile_mean([36.0, 36.1, 36.0, 36.1, 30.0, 36.0, 36.1, 40.0]) == pytest.approx(36.05)


# --- the second reading before a fever refusal -------------------------------------------------------


def test_raised_first_reading_is_measured_again_and_both_are_kept() -> None:
    rig = Rig()
    rig.approach(38.4)
    again = rig.until(lambda s: s.attempt == 2)
    assert again.phase == "measuring" and again.result is None  # nothing reported yet
    settled = rig.until("settled")
    result = settled.result
    assert len(result.readings) == 2
    assert all(r == pytest.approx(38.4, abs=0.15) for r in result.readings)
    assert result.celsius == result.readings[1]
    assert settled.since - again.since >= rig.section.stable_window_s - 1e-6  # a fresh window, not the first one
    verdict = decide(rig.thermometry.consume(), GREEN, Policy(), NOW)
    assert verdict.outcome == "REFUSE" and verdict.reasons == (Reason.FEVER,)


def test_second_reading_decides_when_the_first_was_a_fluke() -> None:
    rig = Rig()
    rig.approach(37.6)
    rig.until(lambda s: s.attempt == 2)
    rig.wrist.approach(rig.skin(36.7), at=rig.clock.now)  # e.g. a warm sleeve moved away
    result = rig.until("settled").result
    first, second = result.readings
    assert first >= 37.3 and second == pytest.approx(36.7, abs=0.15)
    assert result.celsius == second
    assert decide(result, GREEN, Policy(), NOW).passed


def test_normal_reading_is_not_measured_twice() -> None:
    rig = Rig()
    rig.approach(37.0)
    states = [rig.until("settled")]
    assert states[0].attempt == 1 and len(states[0].result.readings) == 1


def test_wrist_taken_away_during_the_second_reading_waits_then_the_first_stands() -> None:
    rig = Rig(remeasure_wait_s=3.0)
    rig.approach(38.0)
    rig.until(lambda s: s.attempt == 2)
    rig.wrist.leave(at=rig.clock.now)
    waiting = rig.run_for(2.5)
    assert {s.phase for s in waiting} == {"measuring"} and waiting[-1].attempt == 2
    settled = rig.until("settled", within_s=1.0)
    assert settled.result.readings == (settled.result.celsius,)
    assert settled.result.celsius == pytest.approx(38.0, abs=0.15)  # unconfirmed: still refused
    assert decide(rig.thermometry.consume(), GREEN, Policy(), NOW).reasons == (Reason.FEVER,)
    assert rig.thermometry.snapshot().phase == "absent"


def test_wrist_brought_back_for_the_second_reading_is_measured() -> None:
    rig = Rig(remeasure_wait_s=5.0)
    rig.approach(38.0)
    rig.until(lambda s: s.attempt == 2)
    rig.wrist.leave(at=rig.clock.now)
    rig.run_for(2.0)
    rig.approach(38.0)
    result = rig.until("settled").result
    assert len(result.readings) == 2


def test_fault_during_the_second_reading_refuses_as_sensor_fault() -> None:
    rig = Rig()
    rig.approach(38.2)
    rig.until(lambda s: s.attempt == 2)
    rig.chip.plugged = False
    state = rig.step()
    assert state.phase == "fault" and state.result.celsius is None
    assert decide(rig.thermometry.consume(), GREEN, Policy(), NOW).reasons == (Reason.SENSOR_FAULT,)


# --- cold arrivals ----------------------------------------------------------------------------------


def test_cold_arrival_is_asked_to_wait_and_later_passes() -> None:
    rig = Rig(site="forehead", room_c=20.0)
    # Dzien 2020: 33.2 °C forehead on entry after -5..0 °C outside; 36.1 °C after five minutes indoors.
    rig.wrist.approach(33.2)
    result = rig.until("settled").result
    assert result.celsius < rig.section.cold_floor_c
    verdict = decide(rig.thermometry.consume(), GREEN, Policy(), NOW)
    assert verdict.outcome == "REFUSE" and verdict.reasons == (Reason.REMEASURE,)
    rig.wrist.leave()
    rig.until("absent")
    rig.wrist.approach(36.1)
    later = rig.until("settled").result
    assert rig.section.cold_floor_c <= later.celsius < rig.section.fever_c
    assert decide(later, GREEN, Policy(), NOW).passed


# --- faults -----------------------------------------------------------------------------------------


def test_unplugged_at_start_recovers_when_plugged_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.sensors.thermometry")
    rig = Rig(retry_after_s=2.0)
    rig.chip.plugged = False
    state = rig.step()
    assert state.phase == "fault" and "0x5A" in state.fault
    rig.run_for(5.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "0x5A" in warnings[0].getMessage()
    rig.chip.plugged = True
    reads = rig.chip.reads
    rig.clock.now = rig.thermometry._last_attempt + 1.9
    assert rig.thermometry.step().phase == "fault"
    assert rig.chip.reads == reads  # not asked again before retry_after_s
    rig.clock.now = rig.thermometry._last_attempt + 2.0
    assert rig.thermometry.step().phase == "absent"
    assert any(r.levelno == logging.INFO and "recovered" in r.getMessage() for r in caplog.records)
    rig.approach(36.5)
    assert rig.until("settled").result.celsius == pytest.approx(36.5, abs=0.15)


def test_unplugged_mid_measurement_refuses_the_visitor_then_recovers() -> None:
    rig = Rig()
    rig.approach(36.5)
    rig.until("measuring")
    rig.step()
    rig.chip.plugged = False
    state = rig.step()
    assert state.phase == "fault"
    assert state.result is not None and state.result.celsius is None
    assert state.result.fault == state.fault
    assert "no thermometer answers at I2C address 0x5A" in state.fault
    verdict = decide(rig.thermometry.consume(), GREEN, Policy(), NOW)
    assert verdict.outcome == "REFUSE" and verdict.reasons == (Reason.SENSOR_FAULT,)
    assert rig.thermometry.snapshot().phase == "fault"  # still out of service
    rig.chip.plugged = True
    rig.wrist.leave()
    assert rig.until("absent").result is None


def test_fault_after_the_measurement_keeps_the_finished_result() -> None:
    rig = Rig()
    rig.approach(36.5)
    settled = rig.until("settled")
    rig.chip.plugged = False
    assert rig.step().phase == "fault"
    assert rig.thermometry.consume() == settled.result


def test_bus_hiccups_during_a_measurement_do_not_disturb_it() -> None:
    rig = Rig()
    rig.approach(36.6)
    rig.until("measuring")
    rig.chip.nack_next(2)
    rig.step()
    rig.chip.corrupt_pec_next(1)
    settled = rig.until("settled")
    assert settled.result.celsius == pytest.approx(36.6, abs=0.15)
    assert rig.thermometer.retried == 3


@pytest.mark.parametrize(
    ("fault", "cause"),
    [("error_flag", "error flag"), ("bad_pec", "checksum"), ("slow", "answered after"), ("stuck", "stuck")],
)
def test_each_sensor_fault_is_named_and_clears_by_itself(fault: str, cause: str) -> None:
    rig = Rig(stuck_after_s=3.0, retry_after_s=1.0)
    rig.run_for(0.5)
    if fault == "error_flag":
        rig.chip.error_flag = True
    elif fault == "bad_pec":
        rig.chip.corrupt_pec_next(10_000)
    elif fault == "slow":
        rig.chip.answer_delay_s = 0.5
    else:
        rig.chip.stuck = True
    state = rig.until("fault", within_s=5.0)
    assert cause in state.fault
    rig.chip.error_flag, rig.chip.stuck, rig.chip.answer_delay_s = False, False, 0.0
    rig.chip.corrupt_pec_next(0)
    assert rig.until("absent", within_s=3.0).fault is None


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
    [(100.0, 36.5, "ambient reading"), (ROOM_C, 52.0, "object reading")],
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
    wrist = WristProfile(ROOM_C, approach_s=0.0)
    bus.attach(MLX90614Chip(ambient_c=ROOM_C, object_source=wrist))
    section = ThermometerSection(driver="sim", sample_hz=50)
    thermometry = Thermometry(open_thermometer(section, sim_bus=bus), section)
    wrist.approach(36.5)
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
    assert result is not None and result.celsius == pytest.approx(BodyModel().body(36.5, ROOM_C), abs=0.15)


# --- guidance while measuring: progress and "closer" ------------------------------------------------


def attempt_states(rig: Rig, attempt: int) -> list[ThermometryState]:
    """Step from now until the attempt's measuring is over; the states it went through."""
    states = []
    while True:
        state = rig.step()
        states.append(state)
        if state.phase != "measuring" or state.attempt != attempt:
            return states


@pytest.mark.parametrize(("tau_s", "noise_c", "seed"), [
    (FACTORY_TAU_S, 0.05, 0), (FACTORY_TAU_S, 0.05, 1), (0.4, 0.05, 2), (FACTORY_TAU_S, 0.08, 3), (0.25, 0.08, 4),
])
def test_progress_fills_as_the_reading_settles_and_never_goes_back(tau_s: float, noise_c: float, seed: int) -> None:
    rig = Rig(seed=seed, noise_c=noise_c)
    rig.wrist.tau_s = tau_s
    assert all(s.progress == 0.0 for s in rig.run_for(0.5)), "nothing measured, nothing shown"
    rig.approach(36.6)
    rig.until("measuring")
    states = attempt_states(rig, 1)
    measuring, settled = states[:-1], states[-1]
    progress = [s.progress for s in measuring]
    assert progress == sorted(progress), "the mark never shrinks while one reading is taken"
    assert all(0.0 <= p <= UNSETTLED_PROGRESS_MAX for p in progress), "full only once there is a result"
    assert len({p for p in progress if 0.0 < p}) >= 2, "it fills in steps, not all at once"
    assert settled.phase == "settled" and settled.result.celsius is not None and settled.progress == 1.0
    rig.thermometry.consume()
    assert rig.thermometry.snapshot().progress == 0.0


def test_progress_of_a_slow_sensor_rises_with_convergence_not_only_with_time() -> None:
    quick, slow = Rig(seed=5), Rig(seed=5)
    slow.wrist.tau_s = 0.6  # the heaviest filter settings: the reading creeps up for a second or more
    for rig in (quick, slow):
        rig.approach(36.6)
        rig.until("measuring")
    window_s = quick.section.stable_window_s
    after_window = [rig.run_for(window_s + 0.1)[-1] for rig in (quick, slow)]
    assert after_window[1].phase == "measuring"
    assert after_window[1].progress < after_window[0].progress or after_window[0].phase == "settled"
    assert after_window[1].progress < 0.5 * UNSETTLED_PROGRESS_MAX, "still converging: far from full"


def test_a_reading_that_never_settles_holds_its_progress_then_ends_full() -> None:
    rig = Rig(noise_c=0.6)
    rig.approach(36.5)
    rig.until("measuring")
    states = attempt_states(rig, 1)
    progress = [s.progress for s in states[:-1]]
    assert progress == sorted(progress) and max(progress) < UNSETTLED_PROGRESS_MAX
    assert states[-1].result.fault and states[-1].progress == 1.0


def test_progress_starts_again_for_the_second_reading() -> None:
    rig = Rig()
    rig.approach(38.5)
    rig.until("measuring")
    first = attempt_states(rig, 1)
    assert first[-1].phase == "measuring" and first[-1].attempt == 2 and first[-1].progress == 0.0
    assert max(s.progress for s in first) > 0.0
    second = attempt_states(rig, 2)
    progress = [s.progress for s in second[:-1]]
    assert progress == sorted(progress)
    assert second[-1].phase == "settled" and second[-1].progress == 1.0 and len(second[-1].result.readings) == 2


@pytest.mark.parametrize("room_c", [ROOM_C, 31.0])
def test_an_empty_room_never_asks_to_come_closer(room_c: float) -> None:
    rig = Rig(room_c=room_c)
    states = rig.run_for(5.0)
    assert {s.phase for s in states} == {"absent"} and not any(s.closer for s in states)


@pytest.mark.parametrize("distance_cm", [6.0, 10.0])
def test_a_wrist_held_too_far_asks_to_come_closer_until_it_does(distance_cm: float) -> None:
    rig = Rig()
    rig.run_for(0.5)
    rig.wrist.approach(rig.skin(36.6), distance_cm=distance_cm)
    far = rig.run_for(2.0)
    assert {s.phase for s in far} == {"absent"}, "too far to be measured"
    assert far[-1].closer and ROOM_C < far[-1].object_c < rig.section.presence_c
    assert all(s.closer for s in far[-10:])
    rig.approach(36.6)  # moved in
    measuring = rig.until("measuring")
    assert not measuring.closer and not rig.until("settled").closer
    assert rig.thermometry.consume().celsius == pytest.approx(36.6, abs=0.15)


def test_a_wrist_that_comes_straight_in_is_never_asked_to_come_closer() -> None:
    rig = Rig()
    rig.run_for(0.5)
    rig.approach(36.6)  # passes through the warm band on its way in
    states = rig.run_for(1.5)
    rig.wrist.leave()  # and again on its way out
    states += rig.run_for(1.5)
    assert "settled" in {s.phase for s in states} and not any(s.closer for s in states)


def test_a_wrist_too_far_for_the_second_reading_is_asked_closer() -> None:
    rig = Rig()
    rig.approach(38.5)
    rig.until(lambda s: s.attempt == 2)
    rig.wrist.approach(rig.skin(38.5), distance_cm=8.0)
    waiting = rig.run_for(1.5)
    assert {s.phase for s in waiting} == {"measuring"} and waiting[-1].closer


def test_no_closer_prompt_during_a_fault() -> None:
    rig = Rig()
    rig.wrist.approach(rig.skin(36.6), distance_cm=8.0)
    assert rig.run_for(1.5)[-1].closer
    rig.chip.plugged = False
    faulted = rig.run_for(1.0)
    assert faulted[-1].phase == "fault" and not faulted[-1].closer and faulted[-1].progress == 0.0
    rig.chip.plugged = True
    recovered = rig.until("absent", within_s=5.0)
    assert not recovered.closer, "asked again only after it has lasted, as at first"
    assert rig.run_for(1.0)[-1].closer
