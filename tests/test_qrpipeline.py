"""The reading pipeline: harder passes read what one decoder call misses, and only where a code is."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.sensors.qrpipeline import STAGES, ReadingPipeline, frame_budget_s, split_image, upscale_factor
from kiosk.sensors.scanner import Scanner
from kiosk.sim.qrframes import Distortion, distortion, render_frame

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "qr-photos"


def codes(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    return [f"https://hc.example.gov.cn/c/{''.join(rng.choice(alphabet) for _ in range(rng.randint(40, 120)))}"
            for _ in range(count)]


def rate(scanner: Scanner, frames: list[tuple[np.ndarray, str]]) -> float:
    return sum(scanner.scan(frame) == [payload] for frame, payload in frames) / len(frames)


@pytest.fixture(scope="module")
def small_codes() -> list[tuple[np.ndarray, str]]:
    rng = random.Random(21)
    return [(render_frame(p, rng=rng, distortion=distortion("small")), p) for p in codes(24, seed=8)]


def test_small_codes_one_call_misses_are_read_from_an_enlarged_crop(small_codes) -> None:
    one_call = rate(Scanner("zxing", ("frame",)), small_codes)
    pipeline = Scanner("zxing")
    full = rate(pipeline, small_codes)
    # Measured on this seeded set: one call about half, the pipeline nearly all.
    assert full >= 0.8, (one_call, full)
    assert full >= one_call + 0.2, (one_call, full)
    stages = set()
    for frame, payload in small_codes:
        if pipeline.scan(frame) == [payload]:
            stages.add(pipeline.last_stage)
    assert "crop_upscale" in stages, stages


def test_a_spent_frame_budget_leaves_the_harder_passes_to_the_next_frame(small_codes) -> None:
    """On a slow device the camera thread must keep pace: with no time left, only the cheap passes run."""
    no_time = Scanner("zxing", budget_s=0.0)
    assert rate(no_time, small_codes) == rate(Scanner("zxing", ("frame", "locate")), small_codes)
    assert rate(no_time, small_codes) < rate(Scanner("zxing"), small_codes)
    assert frame_budget_s(15.0) == pytest.approx(0.8 / 15.0)


def test_a_code_the_first_pass_reads_goes_no_further() -> None:
    scanner = Scanner("zxing")
    frame = render_frame("HCP1:FIRST-PASS", rng=random.Random(1), distortion=distortion("plain"))
    assert scanner.scan(frame) == ["HCP1:FIRST-PASS"]
    assert scanner.last_stage == "frame"


def test_an_empty_scene_gives_nothing_and_no_stage() -> None:
    scanner = Scanner("zxing")
    for seed in range(5):
        assert scanner.scan(render_frame(None, rng=random.Random(seed))) == []
        assert scanner.last_stage is None


def test_main_stream_crop_reads_a_dense_code_too_fine_for_lores() -> None:
    """A DCC-sized code at arm's length: too fine in the 640x480 frame, read from the 1280x960 main stream."""
    rng = random.Random(5)
    payload = "HC1:" + "".join(rng.choice(string.digits + string.ascii_uppercase + " $%*+-./:") for _ in range(700))
    far = Distortion("far", scale=(0.18, 0.2), noise=(2.0, 2.0))
    read_lores = read_main = 0
    scanner = Scanner("zxing")
    for seed in range(8):
        main = render_frame(payload, 1280, 960, rng=random.Random(seed), distortion=far)
        lores = np.asarray(Image.fromarray(main).resize((640, 480), Image.Resampling.BOX))
        lores_only = scanner.scan(lores) == [payload]
        read_lores += lores_only
        if scanner.scan(lores, main) == [payload]:
            read_main += 1
            if not lores_only:
                assert scanner.last_stage == "main_crop"
    assert read_main > read_lores, (read_lores, read_main)


def test_split_image_makes_a_lores_frame_and_keeps_the_picture_as_main() -> None:
    small = np.zeros((240, 320), np.uint8)
    assert split_image(small)[0] is small and split_image(small)[1] is None
    big = np.zeros((1944, 2592), np.uint8)
    lores, main = split_image(big)
    assert lores.shape == (480, 640) and main is big
    tall = np.zeros((1000, 400), np.uint8)
    assert split_image(tall)[0].shape == (480, 192)


def test_scan_image_reads_a_large_photo_as_the_camera_streams_would() -> None:
    payload = "https://hc.example.gov.cn/c/large-photo"
    photo = render_frame(payload, 2048, 1536, rng=random.Random(3), distortion=distortion("typical"))
    assert Scanner("zxing").scan_image(photo) == [payload]


def test_upscale_factor_bounds_the_work() -> None:
    assert upscale_factor(60) == 3.0
    assert upscale_factor(360) == 2.0
    assert upscale_factor(1000) == 1.0
    assert upscale_factor(0) == 1.0


def test_unknown_stage_is_refused() -> None:
    import zxingcpp

    with pytest.raises(ValueError, match="unknown stages"):
        ReadingPipeline(zxingcpp, ("frame", "sharpen"))
    assert ReadingPipeline(zxingcpp, tuple(reversed(STAGES))).stages == STAGES


def test_main_stream_of_another_shape_is_ignored_not_fatal() -> None:
    scanner = Scanner("zxing")
    frame = render_frame("HCP1:MAIN-ODD", rng=random.Random(2), distortion=distortion("plain"))
    assert scanner.scan(frame, np.zeros(5)) == ["HCP1:MAIN-ODD"]


def _same(payload: str, truth: str) -> bool:
    def norm(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()

    if norm(payload) == norm(truth):
        return True
    try:
        return norm(payload.encode("latin-1").decode("shift_jis")) == norm(truth)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False


@pytest.mark.skipif(not (PHOTOS / "truth.json").is_file(), reason="qr-photos corpus not present")
def test_real_photographs_are_read_through_kiosk_scan() -> None:
    """`kiosk scan` on real camera photographs: measured 93.2% (136 of 146); one decoder call read 91.1%."""
    from kiosk.sensors.scanner import scan_files

    truth = json.loads((PHOTOS / "truth.json").read_text())
    names = sorted(truth)
    rows = list(scan_files([PHOTOS / n for n in names]))
    read = sum(all(any(_same(c, t) for c in row["codes"]) for t in truth[n]) for n, row in zip(names, rows))
    assert read / len(names) >= 0.92, read
