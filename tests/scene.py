"""A harness for running the real kiosk on simulated hardware while a scene plays from a second thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from kiosk.app import Kiosk
from kiosk.config import merged
from kiosk.parts import build_parts
from kiosk.sim.demo import demo_config
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sim.world import SimWorld
from kit import wait_until


class Scene:
    """What the test's scene thread can see and do."""

    def __init__(self, kiosk: Kiosk, world: SimWorld, upstream: ReferenceUpstream):
        self.kiosk, self.world, self.upstream = kiosk, world, upstream
        self.decided: list = []
        self.screens: list = []
        kiosk.listeners.append(self.decided.append)
        kiosk.screen_listeners.append(self.screens.append)
        self.ticks = 0
        tick = kiosk.tick

        def counted_tick() -> None:
            tick()
            self.ticks += 1

        kiosk.tick = counted_tick  # type: ignore[method-assign]

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        if not wait_until(condition, timeout):
            raise AssertionError(f"timed out waiting for {what}; kiosk is {self.kiosk.phase!r}")

    def turns(self, count: int = 3) -> None:
        """Wait until the kiosk's loop has gone round `count` more times: what it has not done by
        then, it would not do on its own (checks that something did NOT happen use this, not a sleep)."""
        target = self.ticks + count
        self.wait(lambda: self.ticks >= target, f"{count} turns of the kiosk's loop")

    def code(self, colour: str = "green", person: int = 0) -> str:
        population = self.upstream.population
        return population.code_for(population.person_ids(colour=colour, proxy=False)[person])

    def visit(self, payload: str, skin_c: float = 36.6) -> object:
        """Show a code and a wrist, wait for the verdict, walk away."""
        self.wait(lambda: self.kiosk.phase == "idle", "the kiosk to be free")
        count = len(self.decided)
        self.world.camera.show(payload, "plain")
        self.world.wrist.approach(skin_c)
        self.wait(lambda: len(self.decided) > count, "a verdict")
        self.world.camera.hide()
        self.world.wrist.leave()
        time.sleep(0.3)  # the next person steps up a moment later
        return self.decided[-1]

    def pin(self, number: int) -> bool:
        return self.world.pin_factory.pin(number).state


def run_scene(tmp_path: Path, scene: Callable[[Scene], None], kiosk_options: dict | None = None,
              world_setup: Callable[[SimWorld], None] | None = None,
              ready: Callable[[Kiosk], bool] = lambda kiosk: kiosk.phase == "idle",
              upstream_options: dict | None = None, **overrides) -> Scene:
    """Run the kiosk until `scene` returns; `world_setup` changes the simulated hardware before the
    parts are opened, and the scene starts once `ready(kiosk)` holds (by default: serving).
    `upstream_options` go to the reference upstream (e.g. its `credentials`)."""
    upstream = ReferenceUpstream(port=0, data_dir=tmp_path / "upstream", **(upstream_options or {})).start()
    try:
        config = demo_config(tmp_path / "kiosk", upstream.url, headless=True)
        config = merged(config, overrides, "test")
        world = SimWorld(config, seed=3)
        if world_setup is not None:
            world_setup(world)
        kiosk = Kiosk(config, build_parts(config, world), **(kiosk_options or {}))
        stage = Scene(kiosk, world, upstream)
        failure: list[BaseException] = []
        done = threading.Event()

        def play(stop: threading.Event) -> None:
            try:
                stage.wait(lambda: ready(kiosk), "the kiosk to start")
                scene(stage)
            except BaseException as exc:  # reported on the test's thread
                failure.append(exc)
            finally:
                done.set()

        kiosk.parts.extra_threads.append(play)
        kiosk.run(until=done.is_set)
        if failure:
            raise failure[0]
        return stage
    finally:
        upstream.stop()
