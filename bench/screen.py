"""The screen loop's cost: frame time and CPU share, with the camera viewfinder on and off.

Runs the loop the kiosk runs between and during visits (``pump()`` every tick at ``screen.fps``,
``show()`` + ``render()`` when the state changes) on real pygame with SDL's dummy video driver, for a
few seconds per case:

- idle, viewfinder off: the start page, nothing changing;
- idle, viewfinder on: the camera's low-resolution frames (320x240 by default) changing at 15 fps;
- measuring, viewfinder off / on: the progress bar stepping at the thermometer's 20 Hz (only the
  bar is drawn again), without and with the frames.

Frame time is the screen's own work per tick (pump and render); CPU share is the process's CPU
time over the wall time of the case, at the loop's pace. The frames are made before the run (a
pool of distinct arrays, handed out as the camera reader's ``Preview``), so their making is not
counted.

    .venv/bin/python bench/screen.py [--seconds 5] [--fps 30] [--size 800x480] [--frame 320x240]

The assumptions are printed first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["SDL_VIDEODRIVER"] = "dummy"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pygame  # noqa: E402

from kiosk.config import ScreenSection  # noqa: E402
from kiosk.display.screen import Screen  # noqa: E402
from kiosk.display.state import ScreenState  # noqa: E402
from kiosk.sensors.reader import Preview  # noqa: E402

# A Raspberry Pi 4 core against one core of the x86 machine the numbers are taken on (single-core
# benchmark scores); an estimate, not a measurement on the Pi.
PI_SLOWDOWN = 5.0
CAMERA_FPS = 15.0
THERMOMETER_HZ = 20.0


def size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def frame_pool(width: int, height: int, count: int = 16) -> list[np.ndarray]:
    """Camera-like frames: a noisy scene with a bright card moving across it."""
    rng = np.random.default_rng(1)
    pool = []
    for index in range(count):
        frame = rng.normal(90, 25, (height, width)).clip(0, 255).astype(np.uint8)
        x = (index * width // count) % (width - width // 3)
        frame[height // 4: height * 3 // 4, x: x + width // 3] = 235
        pool.append(frame)
    return pool


def run_case(screen: Screen, case: str, seconds: float, fps: float, pool: list[np.ndarray]) -> dict[str, float]:
    start = time.perf_counter()

    def camera() -> Preview:
        # As the camera thread hands it out: a new read-only view of its latest frame at each
        # call, a new frame every 1/15 s.
        index = int((time.perf_counter() - start) * CAMERA_FPS)
        view = pool[index % len(pool)].view()
        view.flags.writeable = False
        return Preview(view, start + index / CAMERA_FPS, 0.0)

    screen.set_preview(camera if case.endswith("viewfinder on") else None)
    measuring = case.startswith("measuring")
    screen.show(ScreenState("measuring", progress=0.0) if measuring else ScreenState("idle", family_button=True))
    screen.render()
    tick = 1.0 / fps
    times: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    next_tick = wall0
    while True:
        now = time.perf_counter()
        if now - wall0 >= seconds:
            break
        t0 = time.perf_counter()
        screen.pump()
        if measuring:
            # The progress the thermometry reports, in its 20 Hz steps.
            step = int((now - wall0) * THERMOMETER_HZ)
            progress = (step % 40) / 39
            state = ScreenState("measuring", progress=progress)
            if state != screen.state:
                screen.show(state)
                screen.render()
        times.append(time.perf_counter() - t0)
        next_tick += tick
        pause = next_tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            next_tick = time.perf_counter()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    times.sort()
    return {
        "ticks": len(times),
        "mean_ms": round(statistics.mean(times) * 1000, 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1000, 3),
        "cpu_percent": round(100 * cpu / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per case")
    parser.add_argument("--fps", type=float, default=ScreenSection().fps, help="the loop's pace (screen.fps)")
    parser.add_argument("--size", type=size, default=(800, 480), help="display size")
    parser.add_argument("--frame", type=size, default=(320, 240), help="camera preview frame size")
    parser.add_argument("--language", default="both", choices=["both", "zh", "en"])
    args = parser.parse_args()

    cases = ["idle, viewfinder off", "idle, viewfinder on", "measuring, viewfinder off", "measuring, viewfinder on"]
    print("assumptions:")
    print(f"  pygame {pygame.version.ver}, SDL {'.'.join(map(str, pygame.get_sdl_version()))}, "
          f"numpy {np.__version__}, Python {sys.version.split()[0]}; SDL dummy video driver")
    print(f"  display {args.size[0]}x{args.size[1]}, loop at {args.fps:g} ticks/s, {args.seconds:g} s per case")
    print(f"  camera preview {args.frame[0]}x{args.frame[1]} greyscale, a new frame at {CAMERA_FPS:g} fps; "
          f"progress steps at {THERMOMETER_HZ:g} Hz")
    print(f"  Pi 4 estimate: x86 CPU time x {PI_SLOWDOWN:g} (single-core scores; not measured on a Pi)")

    pool = frame_pool(*args.frame)
    section = ScreenSection(mode="headless", width=args.size[0], height=args.size[1], fps=args.fps)
    results: dict[str, dict[str, float]] = {}
    with Screen(section, args.language) as screen:
        screen.warm_up([ScreenState("idle", family_button=True), ScreenState("measuring", progress=0.5)])
        for case in cases:
            results[case] = run_case(screen, case, args.seconds, args.fps, pool)

    print(f"{'case':<28} {'mean ms':>8} {'p95 ms':>8} {'CPU %':>7} {'Pi 4 CPU % (est.)':>18}")
    for case, result in results.items():
        result["pi4_cpu_percent_estimate"] = round(result["cpu_percent"] * PI_SLOWDOWN, 1)
        print(f"{case:<28} {result['mean_ms']:>8.3f} {result['p95_ms']:>8.3f} {result['cpu_percent']:>7.2f} "
              f"{result['pi4_cpu_percent_estimate']:>18.1f}")
    viewfinder = results["idle, viewfinder on"]["cpu_percent"] - results["idle, viewfinder off"]["cpu_percent"]
    print(f"the viewfinder costs {viewfinder:.2f} % of one core here, about {viewfinder * PI_SLOWDOWN:.1f} % "
          f"of a Pi 4 core (target: a few %)")
    print(json.dumps({
        "size": list(args.size), "frame": list(args.frame), "fps": args.fps, "cases": results,
        "viewfinder_cpu_percent": round(viewfinder, 2),
        "viewfinder_pi4_cpu_percent_estimate": round(viewfinder * PI_SLOWDOWN, 1),
    }))


if __name__ == "__main__":
    main()
