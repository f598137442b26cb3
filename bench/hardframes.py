"""Harder camera frames than the simulator's presets, for the scanner benchmark only.

Each case starts from `kiosk.sim.qrframes.render_scene` (a real QR code placed in a camera-like
scene) and adds what a phone held up to the kiosk does to it:

- glare: a bright reflection on the phone's screen, saturating part of the code;
- moire: the screen's pixel grid beating with the sensor's, a faint stripe pattern over the code;
- low light: a dim entrance at night, little contrast and strong sensor noise;
- motion: the phone moving during the exposure, a linear blur of 5 to 10 pixels;
- dcc: a high-version code (an EU DCC, `HC1:` and 540 to 1000 Base45 characters, QR version 13 to 17 as
  in the EU test certificates)
  held 20 to 40 cm from the camera: rendered at the main stream's 1280x960 and scaled down 2x to
  the 640x480 lores frame, so the pipeline can be measured with and without the main stream.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from kiosk.sim.qrframes import Distortion, add_sensor_noise, render_scene

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def dcc_payload(rng: random.Random) -> str:
    """A DCC-sized payload: HC1: and 540-1000 Base45 characters (the EU test certificates' middle to top)."""
    return "HC1:" + "".join(rng.choice(BASE45) for _ in range(rng.randint(540, 1000)))


def _glare(frame: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = frame.shape
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    radius = rng.uniform(0.08, 0.16) * min(h, w)
    ys, xs = np.ogrid[:h, :w]
    blob = np.exp(-(((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * radius**2))).astype(np.float32)
    out = frame.astype(np.float32) + blob * rng.uniform(180, 320)
    return np.clip(out, 0, 255).astype(np.uint8)


def _moire(frame: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = frame.shape
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(2.5, 5.0)
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    phase = (xs * math.cos(angle) + ys * math.sin(angle)) * (2 * math.pi / period)
    stripes = 1.0 + rng.uniform(0.25, 0.4) * np.sin(phase)
    return np.clip(frame.astype(np.float32) * stripes, 0, 255).astype(np.uint8)


def _motion(frame: np.ndarray, rng: random.Random) -> np.ndarray:
    length = rng.randint(5, 10)
    angle = rng.uniform(0, math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    acc = np.zeros(frame.shape, np.float32)
    for i in range(length):
        t = i - (length - 1) / 2
        acc += np.roll(frame, (round(t * dy), round(t * dx)), axis=(0, 1))
    return (acc / length).astype(np.uint8)


@dataclass(frozen=True)
class HardCase:
    name: str
    distortion: Distortion
    effect: Callable[[np.ndarray, random.Random], np.ndarray] | None = None
    noise: float | None = None  # sensor noise added after the effect (else the distortion's)


_HELD = dict(scale=(0.35, 0.6), rotation_deg=(0.0, 10.0), tilt=(0.0, 0.12))
CASES: list[HardCase] = [
    HardCase("glare", Distortion("glare", brightness=(120.0, 150.0), **_HELD), _glare),
    HardCase("moire", Distortion("moire", **_HELD), _moire),
    HardCase("low_light", Distortion("low_light", brightness=(18.0, 30.0), contrast=(0.08, 0.13), **_HELD),
             noise=7.0),
    HardCase("motion", Distortion("motion", **_HELD), _motion),
]
# 20-40 cm from a Camera Module with a 49 degree vertical field: a 5.5 cm code is 0.15-0.3 of the
# frame's height.
DCC = Distortion("dcc", scale=(0.15, 0.3), rotation_deg=(0.0, 8.0), tilt=(0.0, 0.1), noise=(2.0, 4.0))
MAIN_SIZE = (1280, 960)


def render_hard(case: HardCase, payload: str, rng: random.Random, width: int = 640, height: int = 480) -> np.ndarray:
    clean, sigma = render_scene(payload, width, height, rng=rng, distortion=case.distortion)
    if case.effect is not None:
        clean = case.effect(clean, rng)
    return add_sensor_noise(clean, case.noise if case.noise is not None else sigma,
                            np.random.default_rng(rng.getrandbits(64)))


def render_dcc(payload: str, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """(lores 640x480, main 1280x960) views of one exposure of a DCC held 20-40 cm away."""
    width, height = MAIN_SIZE
    clean, sigma = render_scene(payload, width, height, rng=rng, distortion=DCC)
    main = add_sensor_noise(clean, sigma, np.random.default_rng(rng.getrandbits(64)))
    lores = np.asarray(Image.fromarray(clean).resize((width // 2, height // 2), Image.Resampling.BOX))
    lores = add_sensor_noise(lores, sigma, np.random.default_rng(rng.getrandbits(64)))
    return lores, main
