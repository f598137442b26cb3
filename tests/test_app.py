"""The kiosk loop on simulated hardware, case by case: what a visitor sees when something goes wrong.

Each test runs the real kiosk (thermometry, scanner, verifier, event log, screen, lights) on the
emulated chip, scenario camera and mock pins, against the reference upstream on loopback, and
plays one short scene from a second thread, the way a visitor or a maintainer would.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.events import utc_iso
from scene import Scene, run_scene

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

RED_PIN, GREEN_PIN, RELAY_PIN = 27, 17, 23


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/platform"


def test_unreachable_platform_refuses_and_logs(tmp_path):
    def scene(s: Scene) -> None:
        decided = s.visit(s.code("green"))
        assert decided.verdict.outcome == "REFUSE"
        assert [str(r) for r in decided.verdict.reasons] == ["cannot_verify"]
        assert s.kiosk.shown.kind == "refuse" and s.pin(RED_PIN) and not s.pin(RELAY_PIN)
        assert decided.event.code_colour is None  # nothing claimed about a code nobody verified
        assert s.kiosk.parts.store.counts()["total"] == 1

    run_scene(tmp_path, scene, platform={"url": closed_port_url(), "timeout_s": 0.3})


def test_platform_fallback_out_of_service(tmp_path):
    def scene(s: Scene) -> None:
        decided = s.visit(s.code("green"))
        assert [str(r) for r in decided.verdict.reasons] == ["cannot_verify"]
        s.wait(lambda: s.kiosk.phase == "out_of_service", "out of service after the platform failed")
        assert "platform" in (s.kiosk.shown.detail or "")

    run_scene(tmp_path, scene, platform={"url": closed_port_url(), "timeout_s": 0.3, "fallback": "out_of_service"})


@pytest.mark.parametrize(
    "payload",
    ["not a health code", "HCP1:" + "A" * 24, "\u00ff\u00fe binary \u00e9\u00e8", "X" * 1500],
    ids=["garbage", "forged-looking", "binary", "very-long"],
)
def test_bad_qr_content_is_refused_as_unknown(tmp_path, payload):
    def scene(s: Scene) -> None:
        decided = s.visit(payload)
        assert decided.verdict.outcome == "REFUSE"
        assert [str(r) for r in decided.verdict.reasons] == ["unknown_code"]
        assert decided.event.code_hash and payload not in decided.event.to_json()

    run_scene(tmp_path, scene)


def test_only_a_code_prompts_for_the_wrist_then_gives_up(tmp_path):
    def scene(s: Scene) -> None:
        s.world.camera.show(s.code("green"), "plain")
        s.wait(lambda: s.kiosk.phase == "prompt_wrist", "the prompt to hold a wrist to the sensor", timeout=10)
        s.wait(lambda: s.kiosk.phase == "idle", "the kiosk to give up", timeout=15)
        s.world.camera.hide()
        assert not s.decided and s.kiosk.parts.store.counts()["total"] == 0

    run_scene(tmp_path, scene, kiosk={"prompt_after_s": 1.0, "abandon_after_s": 2.5})


def test_only_a_wrist_prompts_for_the_code(tmp_path):
    def scene(s: Scene) -> None:
        s.world.wrist.approach(36.6)
        s.wait(lambda: s.kiosk.phase == "prompt_code", "the prompt to show a code", timeout=10)
        assert s.kiosk.shown.temperature_c is not None
        s.world.camera.show(s.code("green"), "plain")
        s.wait(lambda: bool(s.decided), "a verdict once the code shows up")
        assert s.decided[0].verdict.outcome == "PASS"
        s.world.camera.hide()
        s.world.wrist.leave()

    run_scene(tmp_path, scene, kiosk={"prompt_after_s": 1.0, "abandon_after_s": 8.0})


def test_error_flag_puts_the_kiosk_out_of_service_until_it_clears(tmp_path):
    def scene(s: Scene) -> None:
        s.world.chip.error_flag = True
        s.wait(lambda: s.kiosk.phase == "out_of_service", "out of service")
        assert s.kiosk.shown.kind == "out_of_service" and "thermometer" in s.kiosk.shown.detail
        assert not s.pin(GREEN_PIN) and not s.pin(RELAY_PIN)
        # red blinks while out of service
        seen = set()
        s.wait(lambda: seen.add(s.pin(RED_PIN)) or len(seen) == 2, "the red light to blink", timeout=5)
        print('PENDING', s.kiosk.parts.reader._pending, s.kiosk.parts.reader.frames)
        s.world.chip.error_flag = False
        s.wait(lambda: s.kiosk.phase == "idle", "recovery")
        assert s.visit(s.code("green")).verdict.outcome == "PASS"

    run_scene(tmp_path, scene)


def test_upstream_down_loses_nothing(tmp_path):
    def scene(s: Scene) -> None:
        s.upstream.stop()
        for person in range(2):
            s.visit(s.code("red", person))
        assert s.kiosk.parts.store.counts()["unsent"] == 2
        s.upstream.start()
        s.wait(lambda: s.upstream.collector.count() == 2, "the backlog to arrive", timeout=30)

    run_scene(tmp_path, scene, platform={"fallback": "refuse", "timeout_s": 0.3})


def test_an_event_that_cannot_be_committed_is_never_shown(tmp_path):
    def scene(s: Scene) -> None:
        s.kiosk.parts.store.close()  # the SD card has gone read-only, say
        s.world.camera.show(s.code("green"), "plain")
        s.world.wrist.approach(36.6)
        s.wait(lambda: s.kiosk.phase == "out_of_service", "out of service")
        assert s.kiosk.shown.detail == "cannot write the event log"
        assert not s.decided
        assert not any(state.kind in ("pass", "refuse") for state in s.screens)
        assert not s.pin(RELAY_PIN) and not s.pin(GREEN_PIN)
        s.world.camera.hide()
        s.world.wrist.leave()

    run_scene(tmp_path, scene)


def test_the_event_is_timed_by_the_clock_reading_the_decision_used(tmp_path):
    """A wall clock that jumps an hour at every reading (NTP stepping it, say): the decision and its
    event still share one reading, so the log never says a code was accepted an hour after it expired."""
    start = datetime.now(timezone.utc)
    readings: list[datetime] = []

    def utcnow() -> datetime:
        at = start + timedelta(hours=len(readings))
        readings.append(at)
        return at

    def scene(s: Scene) -> None:
        decided = s.visit(s.code("green"))
        assert decided.verdict.outcome == "PASS"  # the fresh code was judged at the first reading ...
        assert [utc_iso(at) for at in readings] == [decided.event.time]  # ... which is the event's time
        stored = [event for event in s.kiosk.parts.store.events() if event.kind == "decision"]
        assert [event.time for event in stored] == [decided.event.time]

    run_scene(tmp_path, scene, kiosk_options={"utcnow": utcnow})


def test_a_code_shown_during_an_outage_does_not_start_a_visit_after_it(tmp_path):
    """Someone shows a code while the kiosk is out of service and walks on; once it is back, that code
    starts no visit, and the next wrist is not paired with it."""
    def scene(s: Scene) -> None:
        s.world.chip.error_flag = True
        s.wait(lambda: s.kiosk.phase == "out_of_service", "out of service")
        frames = s.kiosk.parts.reader.frames
        s.world.camera.show(s.code("green"), "plain")
        s.wait(lambda: s.kiosk.parts.reader.frames > frames + 5, "the camera to see the code")
        s.world.camera.hide()
        frames = s.kiosk.parts.reader.frames
        s.wait(lambda: s.kiosk.parts.reader.frames > frames + 3, "the code to leave the view")
        back = len(s.screens)
        s.world.chip.error_flag = False
        s.wait(lambda: s.kiosk.phase == "idle", "recovery")
        s.world.wrist.approach(36.6)
        s.wait(lambda: s.kiosk.shown is not None and s.kiosk.shown.temperature_c is not None, "the wrist measured")
        s.turns(10)
        assert not s.decided
        assert not any(state.code_read for state in s.screens[back:])
        s.world.wrist.leave()

    run_scene(tmp_path, scene)
