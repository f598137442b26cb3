"""The code checks inside the running kiosk: a replayed screenshot, and signed certificates
verified against the trust list the kiosk fetched from the reference upstream."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.sim.credentials import DccIssuer
from scene import Scene, run_scene

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_kiosk_refuses_a_replayed_screenshot(tmp_path: Path) -> None:
    def scene(s: Scene) -> None:
        code = s.code("green")
        assert s.visit(code).verdict.passed
        second = s.visit(code)
        assert [str(r) for r in second.verdict.reasons] == ["replayed"]
        assert s.kiosk.shown.kind == "refuse"
        assert s.visit(s.code("green", person=1)).verdict.passed  # someone else's code

    run_scene(tmp_path, scene, codes={"replay_window_s": 120, "replay_store": "memory"})


def test_kiosk_verifies_signed_certificates_against_the_upstreams_trust_list(tmp_path: Path) -> None:
    def scene(s: Scene) -> None:
        s.wait(lambda: s.kiosk.parts.verifier.trust.store is not None, "the trust list from the upstream")
        now = datetime.now(timezone.utc)
        credentials = s.upstream.credentials
        dcc = s.visit(credentials.dcc.issue(now - timedelta(days=1), now + timedelta(days=30)))
        assert dcc.verdict.passed and dcc.event.code_scheme == "dcc" and dcc.event.code_colour == "green"
        shc = s.visit(credentials.shc.issue(now - timedelta(days=1)))
        assert shc.verdict.passed and shc.event.code_scheme == "shc"
        forged = s.visit(DccIssuer(country="ZZ").issue(now - timedelta(days=1), now + timedelta(days=30),
                                                        kid=credentials.dcc.kid))
        assert [str(r) for r in forged.verdict.reasons] == ["invalid_signature"]

    run_scene(tmp_path, scene, codes={"clock_check": "off"})
