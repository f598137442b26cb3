"""Real QR codes rendered into camera-like grayscale frames, for the scenario camera, tests and benchmarks.

A frame is what the Pi camera's low-res Y plane shows when a visitor holds up a phone: a QR code
(made by segno, so it is a real, decodable symbol) on a light phone screen, placed somewhere in a
non-uniform scene, a little rotated, seen at a tilt (perspective), with the scene's brightness and
contrast, some defocus blur and sensor noise. Each `Distortion` draws those parameters from ranges
with the caller's seeded `random.Random`, so every frame can be reproduced.

Everything is numpy + Pillow and stays cheap (a 640x480 frame in a few ms): the code is placed
with one `Image.transform(PERSPECTIVE)`, noise comes from a precomputed noise field at a random offset.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import segno
from PIL import Image, ImageFilter

log = logging.getLogger(__name__)

Range = tuple[float, float]

# Modules of white quiet zone around the symbol, as the QR standard asks for (4).
QUIET_ZONE = 4


@dataclass(frozen=True)
class Distortion:
    """How a code is shown to the camera; each field is a (low, high) range sampled per frame.

    scale: the code's side (quiet zone included) as a fraction of the frame's shorter side.
    rotation_deg: in-plane rotation; the sign is chosen at random.
    tilt: perspective foreshortening, the fraction by which the far edge of the phone shrinks.
    brightness: mean level of the scene (0-255) after exposure.
    contrast: gain applied around that mean (1 = as printed, lower = washed out or dim).
    blur: Gaussian blur radius in pixels (defocus, hand shake).
    noise: standard deviation of sensor noise in grey levels.
    """

    name: str
    scale: Range = (0.45, 0.55)
    rotation_deg: Range = (0.0, 0.0)
    tilt: Range = (0.0, 0.0)
    brightness: Range = (120.0, 140.0)
    contrast: Range = (0.9, 1.0)
    blur: Range = (0.0, 0.0)
    noise: Range = (2.0, 3.0)


# What a visitor typically does: a code of moderate size, slightly turned and tilted.
TYPICAL = Distortion(
    "typical",
    scale=(0.35, 0.65),
    rotation_deg=(0.0, 10.0),
    tilt=(0.0, 0.12),
    brightness=(105.0, 150.0),
    contrast=(0.75, 1.0),
    blur=(0.0, 0.8),
    noise=(2.0, 6.0),
)

# Eight named presets, each stressing one thing, for benchmarks and decode-rate tests.
DISTORTIONS: list[Distortion] = [
    Distortion("plain"),
    Distortion("small", scale=(0.13, 0.18)),
    Distortion("large", scale=(0.85, 0.98)),
    Distortion("rotated", rotation_deg=(5.0, 20.0)),
    Distortion("tilted", scale=(0.35, 0.5), rotation_deg=(0.0, 5.0), tilt=(0.2, 0.4)),
    Distortion("blurred", scale=(0.35, 0.45), blur=(1.2, 2.0)),
    Distortion("noisy", scale=(0.3, 0.45), noise=(30.0, 45.0)),
    Distortion("dim", brightness=(30.0, 45.0), contrast=(0.12, 0.2), noise=(3.0, 5.0)),
]

# Codes shown so that they are often located but hard to read, each for one of the viewfinder's
# hints (kiosk/sensors/reader.py): modules of about one pixel (too far away), blur of about half a
# module (moving, or out of focus), a dim screen in a dark frame (little contrast under the noise).
UNREADABLE: list[Distortion] = [
    Distortion("too_far", scale=(0.095, 0.11), noise=(2.0, 3.0)),
    Distortion("shaking", scale=(0.38, 0.42), blur=(2.5, 2.6), noise=(2.0, 3.0)),
    Distortion("dim_screen", brightness=(22.0, 28.0), contrast=(0.045, 0.055), noise=(8.0, 9.0)),
]

# A phone held at arm's length, further than "too_far": there no code is located or read, whatever
# its size (the reference platform's short codes, QR version 2, still read at "too_far", where
# denser ones do not), so the camera has nothing to advise; the viewfinder shows the phone, small.
ARM_LENGTH = Distortion("arm_length", scale=(0.05, 0.058), noise=(2.0, 3.0))

_BY_NAME = {d.name: d for d in [*DISTORTIONS, *UNREADABLE, ARM_LENGTH, TYPICAL]}


def distortion(name: str) -> Distortion:
    """The preset called `name` (one of DISTORTIONS, UNREADABLE, "arm_length" or "typical"); KeyError
    lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown distortion {name!r}; known: {', '.join(_BY_NAME)}") from None


@lru_cache(maxsize=512)
def qr_modules(payload: str | bytes) -> np.ndarray:
    """The QR symbol for `payload` as a read-only bool array (True = dark), quiet zone included.

    segno picks the smallest version and the best mask (the slow part, hence the cache); error
    correction is raised as far as the version allows. Payloads beyond QR capacity raise
    segno's DataOverflowError.
    """
    qr = segno.make_qr(payload)
    modules = np.array(list(qr.matrix_iter(scale=1, border=QUIET_ZONE)), dtype=bool)
    modules.flags.writeable = False
    return modules


@lru_cache(maxsize=4)
def _noise_field(height: int, width: int) -> np.ndarray:
    """Unit Gaussian noise, larger than a frame, sliced at random offsets for cheap fresh noise."""
    gen = np.random.default_rng(0x5EED)
    return gen.standard_normal((height + 64, width + 64), dtype=np.float32)


def add_sensor_noise(frame: np.ndarray, sigma: float, gen: np.random.Generator) -> np.ndarray:
    """A copy of `frame` with Gaussian noise of `sigma` grey levels (a slice of a cached field)."""
    if sigma <= 0:
        return frame.copy()
    h, w = frame.shape
    field = _noise_field(h, w)
    dy, dx = (int(v) for v in gen.integers(0, 64, size=2))
    noise = field[dy:dy + h, dx:dx + w]
    if gen.integers(0, 2):  # flipped half the time, so successive frames differ beyond a shift
        noise = noise[::-1, ::-1]
    out = frame.astype(np.float32)
    out += noise * np.float32(sigma)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def background(width: int, height: int, rng: random.Random) -> np.ndarray:
    """A non-uniform scene: soft blotches (walls, a counter, a sleeve) under a lighting gradient."""
    gen = np.random.default_rng(rng.getrandbits(64))
    coarse = Image.fromarray(gen.uniform(60, 190, size=(6, 8)).astype(np.uint8), "L")
    # Work at 1/16 size and scale up once: smooth anyway, and far cheaper than full-size float maths.
    sw, sh = max(2, width // 16), max(2, height // 16)
    small = np.asarray(coarse.resize((sw, sh), Image.Resampling.BICUBIC), np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ys = np.linspace(-1.0, 1.0, sh, dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, sw, dtype=np.float32)[None, :]
    small = np.clip(small + 25.0 * (math.cos(angle) * xs + math.sin(angle) * ys), 0, 255).astype(np.uint8)
    return np.array(Image.fromarray(small, "L").resize((width, height), Image.Resampling.BILINEAR))


def _perspective_coeffs(dst: list[tuple[float, float]], src: list[tuple[float, float]]) -> list[float]:
    """PIL PERSPECTIVE coefficients mapping output points `dst` to input (code image) points `src`."""
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return np.linalg.solve(np.array(rows, dtype=np.float64), np.array(rhs, dtype=np.float64)).tolist()


def _corners(side: float, angle: float, tilt: float, far_edge: int) -> list[tuple[float, float]]:
    """The code's corners (TL, TR, BR, BL) around (0, 0): a square, its far edge shrunk, then rotated."""
    half = side / 2
    square = [(-half, -half), (half, -half), (half, half), (-half, half)]
    a, b = far_edge, (far_edge + 1) % 4
    pts = [list(p) for p in square]
    # The edge farther from the camera looks shorter: pull its two corners toward its middle.
    for i, j in ((a, b), (b, a)):
        pts[i][0] += (square[j][0] - square[i][0]) * tilt / 2
        pts[i][1] += (square[j][1] - square[i][1]) * tilt / 2
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    return [(x * cos_a - y * sin_a, x * sin_a + y * cos_a) for x, y in pts]


def _place_code(frame: np.ndarray, payload: str | bytes, d: Distortion, rng: random.Random) -> None:
    """Warp the code into `frame` in place, somewhere it fits whole."""
    height, width = frame.shape
    modules = qr_modules(payload)
    n = modules.shape[0]
    side = rng.uniform(*d.scale) * min(width, height)
    # Draw the symbol at an integer scale near its final size, so the warp only resamples a little.
    # Dark modules are 1, not 0: 0 is the warp's fill and marks pixels outside the code.
    px = max(1, round(side / n))
    code = np.where(modules, 1, 255).astype(np.uint8).repeat(px, axis=0).repeat(px, axis=1)
    size = code.shape[0]
    angle = math.radians(rng.uniform(*d.rotation_deg) * rng.choice((-1, 1)))
    corners = _corners(side, angle, rng.uniform(*d.tilt), rng.randrange(4))
    xs = [p[0] for p in corners]
    ys = [p[1] for p in corners]
    cx = rng.uniform(-min(xs), max(width - max(xs), -min(xs)))
    cy = rng.uniform(-min(ys), max(height - max(ys), -min(ys)))
    # Warp only the code's bounding box, not the whole frame.
    x0, y0 = max(0, int(cx + min(xs))), max(0, int(cy + min(ys)))
    x1, y1 = min(width, math.ceil(cx + max(xs)) + 1), min(height, math.ceil(cy + max(ys)) + 1)
    dst = [(x + cx - x0, y + cy - y0) for x, y in corners]
    src = [(0.0, 0.0), (float(size), 0.0), (float(size), float(size)), (0.0, float(size))]
    warped = Image.fromarray(code, "L").transform(
        (x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, _perspective_coeffs(dst, src), Image.Resampling.BILINEAR, fillcolor=0
    )
    patch = np.asarray(warped)
    region = frame[y0:y1, x0:x1]
    # The rim where the white card blends into the 0 fill reads as a thin dark edge: a phone's bezel.
    np.copyto(region, patch, where=patch > 0)


def render_scene(
    payload: str | bytes | None,
    width: int = 640,
    height: int = 480,
    *,
    rng: random.Random,
    distortion: Distortion | None = None,
    scene: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """The noise-free frame, and the noise sigma to add to each read of it (see `render_frame`).

    `scene` is the (height, width) background to hold the code up in front of; a fresh random
    one by default.
    """
    d = distortion or TYPICAL
    frame = scene.copy() if scene is not None else background(width, height, rng)
    if payload is not None:
        _place_code(frame, payload, d, rng)
    # Exposure: contrast around mid-grey, then the scene's mean level, through one lookup table.
    level, gain = rng.uniform(*d.brightness), rng.uniform(*d.contrast)
    lut = np.clip((np.arange(256, dtype=np.float32) - 128.0) * gain + level, 0, 255).astype(np.uint8)
    image = Image.fromarray(lut[frame], "L")
    radius = rng.uniform(*d.blur)
    if radius > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(radius))
    return np.array(image), rng.uniform(*d.noise)


def render_frame(
    payload: str | bytes | None,
    width: int = 640,
    height: int = 480,
    *,
    rng: random.Random | None = None,
    distortion: Distortion | None = None,
) -> np.ndarray:
    """A (height, width) uint8 grayscale camera frame showing `payload` as a QR code, or no code if None.

    `distortion` defaults to TYPICAL (a visitor holding a phone up normally); pass a seeded `rng`
    for a reproducible frame (a fresh unseeded one is used otherwise).
    """
    rng = rng if rng is not None else random.Random()
    clean, sigma = render_scene(payload, width, height, rng=rng, distortion=distortion)
    return add_sensor_noise(clean, sigma, np.random.default_rng(rng.getrandbits(64)))
