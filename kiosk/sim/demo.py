"""`kiosk demo`: the whole kiosk on simulated hardware, serving a scripted queue of visitors.

The reference upstream (platform + collector) runs on loopback; the kiosk runs its real loop,
thermometry, scanner, verifier, event log, uploader, screen and lights, with only the I2C bus,
the camera frames and the GPIO pins emulated.
"""

from __future__ import annotations

import logging
import os
import random
import resource
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from kiosk.app import Kiosk
from kiosk.config import Config, load_overrides, merged
from kiosk.display.state import ScreenState
from kiosk.parts import build_parts
from kiosk.sim.credentials import DEMO_OPERATOR_PUBLIC_KEY
from kiosk.sim.scenario import SCRIPT, Director, PlatformPhone, queue_of
from kiosk.sim.touch import tap
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sim.world import SimWorld

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 20.0

# What the demo provides whatever a given config says: simulated hardware, the reference platform
# and trust list on loopback, a scratch data folder (never a live kiosk's event log), and no replay
# guard (the scripted people come round again within a minute). Everything else in the config
# (language, thresholds, timings, screen, upload) applies.
DEMO_OWNS: dict[str, tuple[str, ...]] = {
    "kiosk": ("data_dir",),
    "thermometer": ("driver",),
    "camera": ("driver", "path"),
    "lights": ("driver", "gpio_chip"),
    "platform": ("url", "token"),
    "codes": ("platforms", "replay_window_s"),
    "trust": ("url", "operator_key"),
}


def demo_overrides(settings: dict[str, Any], headless: bool) -> tuple[dict[str, Any], list[str]]:
    """A config file's settings without those the demo stands in for, and the key paths left out."""
    kept: dict[str, Any] = {}
    replaced: list[str] = []
    for section, values in settings.items():
        if not isinstance(values, dict):
            kept[section] = values
            continue
        owned = DEMO_OWNS.get(section, ()) + (("mode",) if section == "screen" and headless else ())
        kept[section] = {key: value for key, value in values.items() if key not in owned}
        replaced += [f"{section}.{key}" for key in values if key in owned]
    return kept, replaced


def demo_config(data_dir: Path, upstream_url: str, headless: bool) -> Config:
    return merged(Config(), {
        "kiosk": {"id": "demo-gate-01", "site_id": "demo-site", "data_dir": str(data_dir), "verdict_s": 1.0,
                  "prompt_after_s": 4.0, "abandon_after_s": 10.0},
        "thermometer": {"driver": "sim", "retry_after_s": 0.5},
        "camera": {"driver": "sim", "fps": 30.0},
        "platform": {"url": f"{upstream_url}/platform"},
        "upstream": {"url": upstream_url, "interval_s": 0.5},
        "lights": {"driver": "mock", "relay_pulse_s": 0.5},
        "screen": {"mode": "headless" if headless else "auto"},
        # The scripted queue draws from a dozen simulated people, so one person's code comes round
        # again within the same minute: the replay guard would refuse them (see docs/codes.md).
        "codes": {"replay_window_s": 0.0},
        "trust": {"url": f"{upstream_url}/trust/list", "operator_key": DEMO_OPERATOR_PUBLIC_KEY},
    }, "demo")


class ScreenshotTaker:
    """Saves the first screen of each kind (and of each refusal reason, and of each hint on a kind:
    ``idle-hint-closer``) as a PNG, and the first measuring page whose bar is at least half full
    (``measuring-progress``). The viewfinder keeps its camera frame: the demo's camera is simulated."""

    PROGRESS_SHOT_FROM = 0.5  # a bar clearly part-filled

    def __init__(self, screen, folder: Path):
        self._screen = screen
        self._folder = folder
        self._taken: set[str] = set()
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, state: ScreenState) -> None:
        name = state.kind if state.kind != "refuse" else f"refuse-{state.reasons[0] if state.reasons else 'other'}"
        if state.hint is not None:
            name += f"-hint-{state.hint}"
        self._take(name)
        if state.progress is not None and self.PROGRESS_SHOT_FROM <= state.progress < 1.0:
            self._take(f"{state.kind}-progress")

    def _take(self, name: str) -> None:
        if name not in self._taken:
            self._taken.add(name)
            self._screen.screenshot(self._folder / f"{name}.png", camera=True)

    @property
    def taken(self) -> list[str]:
        return sorted(self._taken)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run_demo(visitors: int = len(SCRIPT), headless: bool = False, screenshots: Path | None = None,
             config_file: Path | None = None, seed: int = 7, data_dir: Path | None = None,
             observe: Callable[[Kiosk, SimWorld], None] | None = None, sound: Path | None = None) -> dict[str, Any]:
    if visitors < 1:
        raise ValueError("visitors must be at least 1")
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    workdir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    upstream = ReferenceUpstream(port=0, data_dir=workdir / "upstream")
    upstream.start()
    try:
        config = demo_config(workdir / "kiosk", upstream.url, headless)
        if config_file is not None:
            settings, replaced = demo_overrides(load_overrides(config_file), headless)
            if replaced:
                log.warning("the demo simulates the hardware and the platform: these settings of %s are not used: %s",
                            config_file, ", ".join(replaced))
            config = merged(config, settings, str(config_file))
        world = SimWorld(config, seed=seed)
        parts = build_parts(config, world)
        kiosk = Kiosk(config, parts)
        rng = random.Random(seed)
        director = Director(world, PlatformPhone(config.platform.url, rng), queue_of(visitors, rng),
                            kiosk_phase=lambda: kiosk.phase, shown=lambda: kiosk.shown,
                            tap=lambda name: tap(parts.screen, name))
        kiosk.listeners.append(director.on_decided)
        shots = ScreenshotTaker(parts.screen, screenshots) if screenshots else None
        if shots:
            kiosk.screen_listeners.append(shots)
        if observe:
            observe(kiosk, world)
        recording = None
        if sound is not None:
            from kiosk.sound.demo import SoundRecording

            recording = SoundRecording(kiosk, Path(sound), workdir)  # what was played, as a WAV file
        kiosk.parts.extra_threads.append(director.run)
        started = time.monotonic()
        drained_by: list[float] = []

        def finished() -> bool:
            # After the last visitor, keep running until the upload has caught up (bounded).
            if not director.finished.is_set():
                return False
            if not drained_by:
                drained_by.append(time.monotonic() + DRAIN_TIMEOUT_S)
            # ...and until the last words have been said, when they are recorded.
            done = parts.store.counts()["unsent"] == 0 and (recording is None or recording.idle())
            return done or time.monotonic() > drained_by[0]

        counts: dict[str, Any] = {}
        kiosk.run(until=finished, before_close=lambda: counts.update(parts.store.counts()))
        served = director.served
        latencies = [s.latency_ms for s in served]
        by_reason = Counter(reason for s in served for reason in s.reasons)
        summary: dict[str, Any] = {
            "visitors": len(served),
            "pass": sum(1 for s in served if s.outcome == "PASS"),
            "refuse": sum(1 for s in served if s.outcome == "REFUSE"),
            "by_reason": dict(sorted(by_reason.items())),
            "as_expected": sum(1 for s in served if (s.outcome, s.reasons) == (s.visitor.expect_outcome, s.visitor.expect_reasons)),
            "events_logged": counts["total"],
            "events_sent": counts["total"] - counts["unsent"],
            "events_received": upstream.collector.count() if config.upstream.url == upstream.url else None,
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(_percentile(latencies, 0.95), 1) if latencies else None,
            "seconds": round(time.monotonic() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "data_dir": str(workdir),
        }
        if shots:
            summary["screenshots"] = shots.taken
        if recording is not None:
            summary["sound"] = recording.finish()
        if director.problem:
            summary["problem"] = director.problem
        return summary
    finally:
        upstream.stop()
