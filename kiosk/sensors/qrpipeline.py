"""The QR reading pipeline: a cheap pass over every frame, harder passes only where a code is.

Most frames hold no code (nobody at the kiosk), so the first pass must stay cheap; a frame with a
code the first pass reads costs no more than one decoder call. Only when the first pass reads
nothing does the pipeline look further, and only where a code probably is:

1. ``frame``: zxing-cpp on the whole low-resolution frame, QR only, with its own rotation,
   downscale and inversion tries. It is asked for the symbols it located but could not decode
   too (``return_errors``): their corners say where a code is.
2. ``locate``: when the first pass located nothing, zxing-cpp's global-histogram binariser on
   the whole frame (about a third of the first pass's cost). It reads some low-contrast codes
   outright and locates others for the passes below.
3. ``main_crop``: when the camera's full-resolution main stream is at hand (Picamera2 delivers both
   streams of one exposure), the located region cut out of it: the same code with two to four
   times the pixels per module.
4. ``crop_upscale``: the located region of the low-resolution frame, enlarged (bicubic) so each
   module spans several pixels: small codes and blurred codes, whose modules are one or two
   pixels wide, are read there.
5. ``crop_sharpen``: the enlarged region once more, through an unsharp mask: defocus and hand
   shake that spread each module into its neighbours.
6. ``crop_global``: the located region with the global-histogram binariser: uneven light and
   glare that the default local-average binariser breaks up.

A frame where symbols were located but none read also says where they are (``Reading.located``),
and ``look_at`` measures one of them (module size, contrast, sharpness): what the camera thread
turns into a hint for the visitor. Nothing of this runs on a frame where nothing was located.

``bench/scanner.py`` measures what each pass adds and costs; passes that did not pay (contrast
equalisation of the crop, a blur before the read, a whole-frame enlargement, a fixed
threshold, the global binariser on an enlarged crop) are not here. Only zxing-cpp options that every supported release has are used
(``return_errors``, ``binarizer``, ``Barcode.valid`` and ``position`` since zxing-cpp 2.2).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("frame", "locate", "main_crop", "crop_upscale", "crop_sharpen", "crop_global")

# Regions looked at harder per frame; a frame rarely holds more than one code.
MAX_REGIONS = 2
# Margin added around a located symbol, as a fraction of its side: the corners of a symbol that
# failed to decode are approximate, and the decoder wants some quiet zone.
MARGIN = 0.25
# The enlarged crop's longer side is kept at or under this many pixels (cost grows with area).
MAX_UPSCALED_SIDE = 720
# The camera thread's time budget per frame, as a share of the frame period: once it is spent, the
# harder passes stop and the next frame gets its turn (a code held up stays in view for many
# frames). On this x86 machine no pass comes near it; on a Pi 4, about five times slower, the
# sharpened crop's slowest frames would.
FRAME_BUDGET_SHARE = 0.8
# Lores sizes the pipeline assumes when an image is handed to it whole (`kiosk scan`).
LORES_SIZE = (640, 480)


@dataclass(frozen=True)
class Region:
    """A box in lores pixel coordinates: x0, y0 inclusive; x1, y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def side(self) -> int:
        return max(self.x1 - self.x0, self.y1 - self.y0)

    def cut(self, image: np.ndarray, scale_x: float = 1.0, scale_y: float = 1.0) -> np.ndarray:
        h, w = image.shape[:2]
        x0, x1 = max(0, int(self.x0 * scale_x)), min(w, int(np.ceil(self.x1 * scale_x)))
        y0, y1 = max(0, int(self.y0 * scale_y)), min(h, int(np.ceil(self.y1 * scale_y)))
        # A box off the frame is empty (a negative end would count from the far side).
        return np.ascontiguousarray(image[y0:max(y0, y1), x0:max(x0, x1)])


# What zxing-cpp 3 reports as QR: plain QR codes, and Micro QR and rMQR, whose failed detections
# are mostly parts of a real QR code (same module size) or of the scene.
KINDS = ("qr", "micro", "rmqr")


@dataclass(frozen=True)
class Located:
    """A symbol the decoder found but could not read: where it is, and how large its modules are."""

    corners: tuple[tuple[float, float], ...]  # top left, top right, bottom right, bottom left, lores pixels
    module_px: float | None  # lores pixels per module, from the version the decoder read; None when unknown
    kind: str  # one of KINDS

    @property
    def is_qr(self) -> bool:
        return self.kind == "qr"


@dataclass
class Reading:
    """What the pipeline read in one frame: the payloads (raw bytes) and the pass that read them.

    `located`: the symbols located, plain QR codes first, then Micro QR, then rMQR, each kind
    largest first; only when the first pass read nothing (a frame read at once never needs them).
    """

    codes: list[bytes] = field(default_factory=list)
    stage: str | None = None
    regions: int = 0
    located: list[Located] = field(default_factory=list)


@dataclass(frozen=True)
class Looks:
    """How a located symbol looks in the lores frame; see `look_at`."""

    module_px: float | None  # lores pixels per module; None when the version is unknown
    contrast: float  # grey levels between dark and light, in the symbol's dimmer parts
    sharpness: float  # the steepest edges' step per pixel, as a share of the symbol's contrast


# `look_at` measures on a grid of this many tiles a side: contrast is the lower quartile of the
# tiles' ranges, so a dim screen and a reflection over part of the code both count.
LOOK_TILES = 4
# ... from about this many rows and columns of the symbol.
LOOK_LINES = 48


def _inside(points: np.ndarray, corners: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Which of `points` (n, 2) are inside the convex quadrilateral `corners` (either winding)."""
    c = np.asarray(corners, dtype=np.float64)
    edge = np.roll(c, -1, axis=0) - c
    cross = (edge[None, :, 0] * (points[:, None, 1] - c[None, :, 1])
             - edge[None, :, 1] * (points[:, None, 0] - c[None, :, 0]))
    return np.asarray((cross >= 0).all(axis=1) | (cross <= 0).all(axis=1))


def _at(ordered: np.ndarray, share: float) -> float:
    """The value at `share` of a sorted 1-D array (np.percentile costs far more on small arrays)."""
    return float(ordered[int(share * (ordered.size - 1))])


def look_at(frame: np.ndarray, located: Located) -> Looks:
    """Module size, contrast and sharpness of `located` in `frame` (2-D uint8 lores).

    Sharpness is the 98th percentile of the one-pixel steps over the symbol's range: a sharp
    edge between a dark and a light module is one step of most of the range (about 0.8 once
    the camera's optics and scaling soften it), a blurred one spreads over several pixels.
    """
    xs = [p[0] for p in located.corners]
    ys = [p[1] for p in located.corners]
    h, w = frame.shape
    x0, y0 = max(0, int(min(xs))), max(0, int(min(ys)))
    x1, y1 = min(w, int(max(xs)) + 1), min(h, int(max(ys)) + 1)
    box = frame[y0:max(y0, y1), x0:max(x0, x1)].astype(np.int16)
    if box.shape[0] < LOOK_TILES * 2 or box.shape[1] < LOOK_TILES * 2:
        return Looks(located.module_px, 0.0, 0.0)
    # Every k-th row and column is enough for these statistics, and keeps a large code cheap.
    k = max(1, min(box.shape) // LOOK_LINES)
    sample = box[::k, ::k]
    values = np.sort(sample, axis=None)
    spread = _at(values, 0.95) - _at(values, 0.05)
    th, tw = sample.shape[0] // LOOK_TILES, sample.shape[1] // LOOK_TILES
    grid = sample[:th * LOOK_TILES, :tw * LOOK_TILES].reshape(LOOK_TILES, th, LOOK_TILES, tw).swapaxes(1, 2)
    tiles = grid.reshape(LOOK_TILES * LOOK_TILES, th * tw)
    # Only tiles whose centre is on the symbol: a turned code's box has the scene in its corners.
    index = np.arange(len(tiles))
    centres = np.stack((x0 + (index % LOOK_TILES + 0.5) * tw * k, y0 + (index // LOOK_TILES + 0.5) * th * k), axis=1)
    inside = _inside(centres, located.corners)
    ordered = np.sort(tiles[inside] if inside.any() else tiles, axis=1)
    n = ordered.shape[1] - 1
    contrast = _at(np.sort(ordered[:, int(0.95 * n)] - ordered[:, int(0.05 * n)]), 0.25)
    # Steps between neighbouring pixels, along the sampled rows and columns.
    steps = np.concatenate((np.abs(np.diff(box[::k], axis=1)).ravel(), np.abs(np.diff(box[:, ::k], axis=0)).ravel()))
    kth = int(0.98 * (steps.size - 1))
    sharpness = float(np.partition(steps, kth)[kth]) / max(spread, 1.0)
    return Looks(located.module_px, contrast, sharpness)


def frame_budget_s(fps: float) -> float:
    """How long the harder passes may work on one frame at the camera's frame rate."""
    return FRAME_BUDGET_SHARE / fps


def _modules(version: str) -> tuple[int, int] | None:
    """(modules across, modules down) of a symbol of `version` ("4", "M3", "R11x77"); None for
    anything else a decoder might report (the longest real version, "R17x139", has 7 characters)."""
    if not version.isascii() or len(version) > 8:
        return None
    if version.isdigit():
        n = 17 + 4 * int(version)
        return n, n
    if version[:1] == "M" and version[1:].isdigit():  # Micro QR M1-M4
        n = 9 + 2 * int(version[1:])
        return n, n
    down, _, across = version[1:].partition("x")
    # rMQR, R{height}x{width}; a zero side would divide by zero in the module size.
    if version[:1] == "R" and down.isdigit() and across.isdigit() and int(down) and int(across):
        return int(across), int(down)
    return None


def _located(barcode: Any, kind: str) -> Located | None:
    pos = barcode.position
    points = tuple((float(p.x), float(p.y)) for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left))
    if not all(math.isfinite(v) and abs(v) < 1e6 for point in points for v in point):
        return None  # nowhere in any frame: nothing to look at
    # The version is in `extra` (zxing-cpp 2.3 on; a JSON string before 3.0).
    extra = getattr(barcode, "extra", None)
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except (ValueError, RecursionError):
            extra = None
    modules = _modules(str(extra.get("Version", ""))) if isinstance(extra, dict) else None
    module_px = None
    if modules is not None:
        def edge(i: int) -> float:
            (ax, ay), (bx, by) = points[i], points[(i + 1) % 4]
            return float(np.hypot(bx - ax, by - ay))
        across, down = modules
        module_px = ((edge(0) + edge(2)) / across + (edge(1) + edge(3)) / down) / 4
    return Located(points, module_px, kind)


def _region_of(located: Located, width: int, height: int) -> Region:
    xs = [p[0] for p in located.corners]
    ys = [p[1] for p in located.corners]
    side = max(max(xs) - min(xs), max(ys) - min(ys), 8)
    pad = side * MARGIN
    return Region(max(0, int(min(xs) - pad)), max(0, int(min(ys) - pad)),
                  min(width, int(max(xs) + pad) + 1), min(height, int(max(ys) + pad) + 1))


def _overlaps(a: Region, b: Region) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _enlarge(crop: np.ndarray, factor: float) -> np.ndarray:
    h, w = crop.shape
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    return np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC))


def upscale_factor(side: int) -> float:
    """How much a located region of `side` lores pixels is enlarged: 3x small ones, never past MAX_UPSCALED_SIDE."""
    if side <= 0:
        return 1.0
    return max(1.0, min(3.0, MAX_UPSCALED_SIDE / side))


def split_image(gray: np.ndarray, lores_size: tuple[int, int] = LORES_SIZE) -> tuple[np.ndarray, np.ndarray | None]:
    """An image as the camera would deliver it: (lores frame, main frame or None).

    A picture larger than the lores stream is scaled down to fit it (as the camera's ISP scales
    the lores stream), and the picture itself plays the full-resolution main stream; a picture
    that fits is the lores frame itself.
    """
    h, w = gray.shape
    lw, lh = lores_size
    if w <= lw and h <= lh:
        return gray, None
    scale = min(lw / w, lh / h)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    lores = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX))
    return lores, gray


class ReadingPipeline:
    """Reads the QR codes of one frame with zxing-cpp, pass by pass (see the module's docstring).

    `zxing` is the imported zxingcpp module; `stages` picks the passes (all by default; the
    benchmark switches them on one by one to measure what each adds). `budget_s` bounds the time
    one frame may take before the passes after the first two are given up (None: no bound).
    """

    def __init__(self, zxing: Any, stages: Sequence[str] = STAGES, budget_s: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        stages = tuple(stages)
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")
        self._z = zxing
        self.budget_s = budget_s
        self._clock = clock
        self.stages = tuple(s for s in STAGES if s in stages)
        self._formats = self._qr = zxing.BarcodeFormat.QRCode
        self._micro = zxing.BarcodeFormat.MicroQRCode
        self._global = zxing.Binarizer.GlobalHistogram

    def _read(self, image: np.ndarray, **options: Any) -> tuple[list[bytes], list[Located]]:
        """(payloads of valid symbols, where symbols were located but failed to decode)."""
        found = self._z.read_barcodes(image, formats=self._formats, return_errors=True, **options)
        good = [bytes(b.bytes) for b in found if b.valid]
        bad = [_located(b, self._kind(b.format)) for b in found if not b.valid]
        return good, [located for located in bad if located is not None]

    def _kind(self, format: Any) -> str:
        return "qr" if format == self._qr else "micro" if format == self._micro else "rmqr"

    def read(self, frame: np.ndarray, main: np.ndarray | None = None) -> Reading:
        """The codes in `frame` (2-D uint8 lores), using `main` (same view, more pixels) if given."""
        height, width = frame.shape
        started = self._clock()
        positions: list[Located] = []
        if "frame" in self.stages:
            codes, positions = self._read(frame)
            if codes:
                return Reading(_unique(codes), "frame")
        if not positions and "locate" in self.stages:
            # Only to find a code for the passes below: the full-size frame is enough (no downscale tries).
            codes, positions = self._read(frame, binarizer=self._global, try_downscale=False)
            if codes:
                return Reading(_unique(codes), "locate")
        # Largest first (QR before Micro QR): a failed symbol inside a larger one is usually a
        # misread part of it.
        boxed = sorted(((p, _region_of(p, width, height)) for p in positions),
                       key=lambda item: (not item[0].is_qr, -item[1].side))
        regions: list[Region] = []
        for _, region in boxed:
            if not any(_overlaps(region, r) for r in regions):
                regions.append(region)
        regions = regions[:MAX_REGIONS]
        # For the hint: plain QR first, then Micro QR (a part of a code, with its module size), then rMQR.
        located = [p for p, _ in sorted(boxed, key=lambda item: (KINDS.index(item[0].kind), -item[1].side))]
        reading = Reading(regions=len(regions), located=located)
        for region in regions:
            for stage in self.stages:
                if self.budget_s is not None and self._clock() - started > self.budget_s:
                    break
                codes = self._read_region(stage, region, frame, main)
                if codes:
                    reading.codes.extend(codes)
                    reading.stage = reading.stage or stage
                    break
        reading.codes = _unique(reading.codes)
        return reading

    def _read_region(self, stage: str, region: Region, frame: np.ndarray, main: np.ndarray | None) -> list[bytes]:
        height, width = frame.shape
        if min(region.x1, width) <= max(region.x0, 0) or min(region.y1, height) <= max(region.y0, 0):
            return []  # off the frame: the decoder refuses an empty image
        if stage == "main_crop":
            if main is None:
                return []
            crop = region.cut(main, main.shape[1] / frame.shape[1], main.shape[0] / frame.shape[0])
            codes, _ = self._read(crop)
            return codes
        if stage == "crop_upscale":
            crop = region.cut(frame)
            codes, _ = self._read(_enlarge(crop, upscale_factor(region.side)))
            return codes
        if stage == "crop_sharpen":
            enlarged = Image.fromarray(_enlarge(region.cut(frame), upscale_factor(region.side)))
            codes, _ = self._read(np.asarray(enlarged.filter(ImageFilter.UnsharpMask(2, 100, 2))))
            return codes
        if stage == "crop_global":
            codes, _ = self._read(region.cut(frame), binarizer=self._global)
            return codes
        return []


def _unique(codes: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(codes))
