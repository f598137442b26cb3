"""What the screen tells a visitor who is not quite there yet, through the real kiosk on simulated
hardware: the camera's hint while a code is held too far away, the thermometer's "closer" while a
wrist is held too far from the sensor, the bar filling while the reading settles, and the camera's
view on the start page, kept across a screen setting changed on the fly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kiosk.config import Config, merged
from kiosk.sensors.reader import CodeReader
from kiosk.sensors.scanner import Scanner
from kiosk.sim.camera import ScenarioCamera
from kiosk.sim.credentials import DccIssuer, DemoCredentials
from kiosk.sim.scenario import WRIST_TOO_FAR_CM
from kiosk.sim.world import SimWorld
from scene import Scene, run_scene

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

VISIT_KINDS = ("measuring", "hold_still", "measuring_again", "prompt_code", "prompt_wrist")


def shows(s: Scene, field: str) -> object:
    """A field of the screen state on display (None before the first page is drawn)."""
    return getattr(s.kiosk.shown, field, None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def far_certificate(issuer: DccIssuer, width: int, height: int) -> tuple[str, int]:
    """A signed certificate (a dense code, QR version 13) and a camera seed under which, held as
    "small" (too far away for its tiny modules), it is located but not read: the scene a visitor
    holding it too far makes. Found by playing the scene through a reader first: whether a code
    so small is located depends on where it lands in the picture."""
    now = datetime.now(timezone.utc)
    payload = issuer.issue(now - timedelta(days=1), now + timedelta(days=30))
    scanner = Scanner("zxing")
    for seed in range(60):
        clock, camera = Clock(), ScenarioCamera(width, height, seed=seed)
        camera.show(payload, "small")
        reader = CodeReader(camera, scanner, fps=15.0, clock=clock)
        hints = []
        for _ in range(20):
            reader.step()
            clock.now += 1 / 15
            hints.append(reader.hint())
        if reader.take_new() is None and hints[-8:] == ["closer"] * 8:
            return payload, seed
    raise AssertionError("no placement of the certificate held too far got the hint")


def test_a_code_held_too_far_gets_the_camera_hint_then_passes(tmp_path):
    camera = Config().camera  # the scene's camera is the default size
    credentials = DemoCredentials()  # the upstream's signers: its trust list vouches for them
    payload, seed = far_certificate(credentials.dcc, camera.width, camera.height)

    def same_scene(world: SimWorld) -> None:
        world.camera = ScenarioCamera(world.camera.width, world.camera.height, seed=seed)

    def scene(s: Scene) -> None:
        s.wait(lambda: s.kiosk.parts.verifier.trust.store is not None, "the trust list from the upstream")
        s.world.camera.show(payload, "small")
        s.wait(lambda: shows(s, "hint") == "closer", "the hint to bring the phone closer")
        assert s.kiosk.shown.kind == "idle" and not s.decided  # nothing read: no visit yet
        s.world.camera.show(payload, "plain")  # brought closer
        s.world.wrist.approach(36.6)
        s.wait(lambda: s.decided, "a verdict")
        s.world.camera.hide()
        s.world.wrist.leave()

    stage = run_scene(tmp_path, scene, world_setup=same_scene, upstream_options={"credentials": credentials},
                      codes={"clock_check": "off"})
    assert [(d.verdict.outcome, d.event.reasons) for d in stage.decided] == [("PASS", ())]
    hinted = [i for i, state in enumerate(stage.screens) if state.hint == "closer"]
    read = next(i for i, state in enumerate(stage.screens) if state.code_read)
    assert hinted and hinted[0] < read
    # Once the code is read the camera has nothing more to say.
    assert all(state.hint is None for state in stage.screens[read:])


def test_a_wrist_held_too_far_is_asked_closer_and_the_bar_fills_before_the_verdict(tmp_path):
    def scene(s: Scene) -> None:
        s.world.camera.show(s.code("green"), "plain")
        s.wait(lambda: shows(s, "code_read"), "the code to be read")
        s.world.wrist.approach(36.2, distance_cm=WRIST_TOO_FAR_CM)
        s.wait(lambda: shows(s, "hint") == "wrist_closer", "the hint to bring the wrist closer")
        assert not s.decided and s.kiosk.shown.progress is None  # nothing measured at that distance
        s.world.wrist.approach(36.2)
        s.wait(lambda: s.decided, "a verdict")
        s.world.camera.hide()
        s.world.wrist.leave()

    stage = run_scene(tmp_path, scene)
    assert [d.verdict.outcome for d in stage.decided] == ["PASS"]
    visit = [state for state in stage.screens if state.kind in VISIT_KINDS]
    first_bar = next(i for i, state in enumerate(visit) if state.progress is not None)
    assert any(state.hint == "wrist_closer" for state in visit[:first_bar])
    assert all(state.hint is None for state in visit[first_bar:])  # the wrist is there now
    bars = [state.progress for state in visit[first_bar:] if state.progress is not None]
    assert any(0 < value < 1 for value in bars), bars  # seen part-filled ...
    assert bars == sorted(bars) and bars[-1] == 1.0, bars  # ... rising, full before the verdict
    assert stage.screens[stage.screens.index(visit[-1]) + 1].kind == "pass"


def test_the_camera_view_survives_a_screen_setting_changed_on_the_fly(tmp_path):
    def scene(s: Scene) -> None:
        screen = s.kiosk.parts.screen
        s.wait(lambda: screen.viewfinder is not None, "the camera's view on the start page")
        new = merged(s.kiosk.config, {"screen": {"text_size": "large"}}, "test")
        s.kiosk.request_config(new)
        s.wait(lambda: s.kiosk.config == new, "the edit to be applied")
        assert s.kiosk.parts.screen is not screen and not s.kiosk.stopped  # opened again, no restart
        s.turns(5)
        assert s.kiosk.parts.screen.viewfinder is not None

    run_scene(tmp_path, scene)
