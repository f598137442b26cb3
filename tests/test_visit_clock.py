"""The visit's own clock keeps running while a code is being looked up.

The real kiosk on simulated hardware, against the reference platform trickling its answer: the
visit ends at ``kiosk.abandon_after_s`` as a logged refusal (cannot verify), and the late answer
is never shown, nor applied to the next visitor.
"""

from __future__ import annotations

import threading

import pytest

from kiosk.app import COMMIT_GRACE_S
from kiosk.sim.upstream import Fault
from kit import SteppedClock
from scene import Scene, run_scene

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

RELAY_PIN = 23
ABANDON_S = 3.0
PLATFORM_TIMEOUT_S = 8.0
# The platform's answer (about 110 bytes) arrives after ~4.5 s: after the visit's time is up,
# before the lookup's own deadline. The lookup itself succeeds, late.
TRICKLE_S = 0.04


def test_a_pending_lookup_ends_with_the_visit_and_its_late_answer_is_dropped(tmp_path):
    def scene(s: Scene) -> None:
        s.upstream.inject(Fault("trickle", route="verify", seconds=TRICKLE_S))
        first = s.visit(s.code("green"))  # a green code: its late answer would let the next visitor in
        assert s.upstream.stats["trickled"] == 0  # the visit ended before the platform's answer was in
        assert first.verdict.outcome == "REFUSE"
        assert [str(reason) for reason in first.verdict.reasons] == ["cannot_verify"]
        assert first.event.code_colour is None and first.event.code_hash is None

        second = s.visit(s.code("red"))  # at the kiosk while the first lookup's answer trickles in
        assert [str(reason) for reason in second.verdict.reasons] == ["red_code"]
        s.wait(lambda: s.upstream.stats["trickled"] == 1, "the late answer to be sent")
        s.wait(lambda: s.kiosk.phase == "idle", "the kiosk to be free again")
        s.turns(3)
        assert len(s.decided) == 2
        assert not any(state.kind == "pass" for state in s.screens) and not s.pin(RELAY_PIN)
        assert s.kiosk.parts.store.counts()["total"] == 2

    run_scene(tmp_path, scene, kiosk={"prompt_after_s": 1.0, "abandon_after_s": ABANDON_S},
              platform={"timeout_s": PLATFORM_TIMEOUT_S})


def test_a_decision_that_cannot_be_committed_in_time_is_never_shown(tmp_path):
    """The event log hangs (a dying SD card): once the visit's time and the grace are up, the kiosk
    goes out of service; the verdict committed after that is never shown."""
    clock = SteppedClock()

    def scene(s: Scene) -> None:
        store = s.kiosk.parts.store
        release, appending = threading.Event(), threading.Event()
        append = store.append

        def hung_append(event):
            appending.set()
            release.wait(30)
            return append(event)

        store.append = hung_append
        shown_at = clock()  # the visit starts after this
        s.world.camera.show(s.code("green"), "plain")
        s.world.wrist.approach(36.6)
        s.wait(appending.is_set, "the event log to hang")
        clock.offset += shown_at + ABANDON_S + COMMIT_GRACE_S - 2.0 - clock()  # nearly up, not quite
        s.turns(3)
        assert s.kiosk.phase != "out_of_service"  # the visit's time and the grace are not up yet
        clock.offset += 2.5
        s.wait(lambda: s.kiosk.phase == "out_of_service", "out of service")
        assert s.kiosk.shown.detail == "cannot write the event log"
        release.set()
        s.wait(lambda: store.counts()["total"] == 1, "the late commit")
        s.turns(3)
        assert not s.decided and not any(state.kind in ("pass", "refuse") for state in s.screens)
        assert not s.pin(RELAY_PIN)
        s.world.camera.hide()
        s.world.wrist.leave()

    run_scene(tmp_path, scene, kiosk_options={"clock": clock}, kiosk={"prompt_after_s": 1.0, "abandon_after_s": ABANDON_S})
