"""The QR scanner against real QR codes rendered into camera-like frames, with both decoders."""

from __future__ import annotations

import json
import random
import string
import sys

import numpy as np
import pytest
import segno

from kiosk.errors import KioskError
from kiosk.sensors.scanner import DECODERS, DecoderMissing, Scanner, payload_text, scan_files
from kiosk.sim.qrframes import DISTORTIONS, Distortion, render_frame

PLAIN = DISTORTIONS[0]


@pytest.fixture(scope="module", params=DECODERS)
def scanner(request: pytest.FixtureRequest) -> Scanner:
    return Scanner(request.param)


def health_codes(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    return [
        f"https://hc.example.gov.cn/c/{''.join(rng.choice(alphabet) for _ in range(rng.randint(20, 60)))}?t={1700000000 + i}"
        for i in range(count)
    ]


def decode_rates(scanner: Scanner, codes: list[str], seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    rates = {}
    for distortion in DISTORTIONS:
        hits = sum(scanner.scan(render_frame(code, rng=rng, distortion=distortion)) == [code] for code in codes)
        rates[distortion.name] = hits / len(codes)
    return rates


# Seeded set: 10 codes x 8 distortions. Measured on it: zxing 100%, pyzbar 78% overall.
MIN_OVERALL = {"zxing": 0.85, "pyzbar": 0.6}


def test_reads_rendered_codes_across_distortions(scanner: Scanner) -> None:
    rates = decode_rates(scanner, health_codes(10, seed=7), seed=11)
    assert rates["plain"] == 1.0, rates
    assert rates["large"] == 1.0, rates
    overall = sum(rates.values()) / len(rates)
    assert overall >= MIN_OVERALL[scanner.decoder], rates


def test_zxing_reads_at_least_as_many_codes_as_pyzbar() -> None:
    codes = health_codes(10, seed=3)
    zxing = decode_rates(Scanner("zxing"), codes, seed=5)
    pyzbar = decode_rates(Scanner("pyzbar"), codes, seed=5)
    assert sum(zxing.values()) >= sum(pyzbar.values()), (zxing, pyzbar)


@pytest.mark.parametrize(
    "payload",
    [
        "HC1:6BFOXN*TS0BI$ZD.P9UOL97O4-2HH77HRM3DSPTLRR+%3",
        "shc:/56762909524320603460292437404460312229595326546034602925407728043360287028647167452228092861",
        "健康码 绿码 张*三 2022-05-01",
    ],
)
def test_text_payloads_round_trip(scanner: Scanner, payload: str) -> None:
    frame = render_frame(payload, rng=random.Random(1), distortion=PLAIN)
    assert scanner.scan(frame) == [payload]


def test_binary_payload_comes_back_as_latin1_text() -> None:
    """Bytes that are not UTF-8 map one byte to one character, so nothing is lost."""
    payload = bytes(random.Random(4).getrandbits(8) for _ in range(120)) + b"\xff\xfe"
    frame = render_frame(payload, rng=random.Random(2), distortion=PLAIN)
    (text,) = Scanner("zxing").scan(frame)
    assert text == payload.decode("latin-1")
    assert text.encode("latin-1") == payload


def test_pyzbar_never_raises_on_binary_payload() -> None:
    # ZBar guesses a charset for non-UTF-8 bytes, so the text may differ from zxing's; it is still one code.
    payload = bytes(range(256))
    frame = render_frame(payload, rng=random.Random(2), distortion=PLAIN)
    assert len(Scanner("pyzbar").scan(frame)) == 1


def test_payload_text_rule() -> None:
    assert payload_text("绿码".encode()) == "绿码"
    assert payload_text(b"caf\xe9") == "café"


def test_payload_at_qr_capacity_round_trips(scanner: Scanner) -> None:
    # 2953 bytes is the most a version 40 code holds (byte mode, error correction L).
    rng = random.Random(9)
    payload = "".join(rng.choice(string.ascii_letters + string.digits + "/?=&") for _ in range(2953))
    close_up = Distortion("close-up", scale=(0.92, 0.95), noise=(1.0, 2.0))
    frame = render_frame(payload, 1000, 1000, rng=rng, distortion=close_up)
    assert scanner.scan(frame) == [payload]


def test_two_codes_in_one_frame_are_both_read(scanner: Scanner) -> None:
    left = render_frame("https://hc.example.gov.cn/c/LEFT", 320, 480, rng=random.Random(1), distortion=PLAIN)
    right = render_frame("https://hc.example.gov.cn/c/RIGHT", 320, 480, rng=random.Random(2), distortion=PLAIN)
    codes = scanner.scan(np.hstack([left, right]))
    assert sorted(codes) == ["https://hc.example.gov.cn/c/LEFT", "https://hc.example.gov.cn/c/RIGHT"]


@pytest.mark.parametrize("kind", ["DataMatrix", "EAN13"])
def test_other_barcode_kinds_are_ignored(scanner: Scanner, kind: str) -> None:
    import zxingcpp

    content = "5901234123457" if kind == "EAN13" else "https://hc.example.gov.cn/c/dm"
    symbol = np.asarray(zxingcpp.create_barcode(content, getattr(zxingcpp.BarcodeFormat, kind)).to_image(scale=4))
    frame = np.full((480, 640), 255, np.uint8)
    frame[100:100 + symbol.shape[0], 100:100 + symbol.shape[1]] = symbol
    # The symbol is readable by an unrestricted reader, so an empty result means it was filtered out.
    assert [b.text for b in zxingcpp.read_barcodes(frame)] == [content]
    assert scanner.scan(frame) == []


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((480, 640), np.uint8),
        np.full((480, 640), 255, np.uint8),
        np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8),
        render_frame(None, rng=random.Random(3)),
        np.zeros((2, 2), np.uint8),
        np.zeros((0, 640), np.uint8),
        np.zeros(640, np.uint8),
        np.full((480, 640), np.nan),
        np.array([["a", "b"], ["c", "d"]]),
        None,
        "not a frame",
    ],
    ids=["black", "white", "noise", "scene", "tiny", "empty", "1-d", "nan", "strings", "none", "str"],
)
def test_garbage_frames_give_no_codes(scanner: Scanner, frame: object) -> None:
    assert scanner.scan(frame) == []  # type: ignore[arg-type]


def test_colour_and_float_frames_are_read_as_grey(scanner: Scanner) -> None:
    grey = render_frame("https://hc.example.gov.cn/c/colour", rng=random.Random(5), distortion=PLAIN)
    assert scanner.scan(np.dstack([grey, grey, grey])) == ["https://hc.example.gov.cn/c/colour"]
    assert scanner.scan(grey.astype(np.float64)) == ["https://hc.example.gov.cn/c/colour"]


def test_unknown_decoder_is_refused() -> None:
    with pytest.raises(KioskError, match="camera.decoder"):
        Scanner("opencv")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("decoder", "module", "hint"),
    [("zxing", "zxingcpp", "pip install zxing-cpp"), ("pyzbar", "pyzbar.pyzbar", "apt install libzbar0")],
)
def test_missing_decoder_library_names_the_package(monkeypatch: pytest.MonkeyPatch, decoder: str, module: str, hint: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(DecoderMissing, match=hint) as caught:
        Scanner(decoder)  # type: ignore[arg-type]
    assert isinstance(caught.value, KioskError)


def test_scan_files_reports_each_file(tmp_path) -> None:
    good = tmp_path / "code.png"
    segno.make_qr("https://hc.example.gov.cn/c/file-1").save(good, scale=6)
    photo = tmp_path / "photo.jpg"
    from PIL import Image

    Image.fromarray(render_frame("https://hc.example.gov.cn/c/photo", rng=random.Random(6), distortion=PLAIN)).convert(
        "RGB"
    ).save(photo, quality=90)
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    missing = tmp_path / "missing.png"

    rows = list(scan_files([good, photo, blank, text, missing, tmp_path], decoder="zxing"))

    assert [row["file"] for row in rows] == [str(p) for p in (good, photo, blank, text, missing, tmp_path)]
    assert rows[0] == {"file": str(good), "codes": ["https://hc.example.gov.cn/c/file-1"]}
    assert rows[1]["codes"] == ["https://hc.example.gov.cn/c/photo"] and "error" not in rows[1]
    assert rows[2] == {"file": str(blank), "codes": []}
    assert rows[3]["codes"] == [] and "not an image" in rows[3]["error"]
    assert rows[4]["codes"] == [] and "no such file" in rows[4]["error"]
    assert rows[5]["codes"] == [] and rows[5]["error"]
    for row in rows:  # each becomes one JSON line of `kiosk scan`
        assert json.loads(json.dumps(row, ensure_ascii=False)) == row


def scan_with_deadline(paths: list, seconds: float = 20) -> list[dict]:
    """scan_files in a thread: a file that makes it wait fails the test instead of hanging it."""
    import threading

    rows: list[dict] = []
    thread = threading.Thread(target=lambda: rows.extend(scan_files(paths)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"kiosk scan hung on {paths}"
    return rows


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge picture (no pixels follow): Pillow reads the size first."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_fifo_or_a_device_is_refused_at_once(tmp_path) -> None:
    import os

    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)
    good = tmp_path / "code.png"
    segno.make_qr("HCP1:AFTER-THE-FIFO").save(good, scale=6)
    rows = scan_with_deadline([fifo, "/dev/zero", good])
    assert rows[0]["codes"] == [] and "not a regular file (a FIFO)" in rows[0]["error"]
    assert rows[1]["codes"] == [] and "not a regular file (a character device)" in rows[1]["error"]
    assert rows[2] == {"file": str(good), "codes": ["HCP1:AFTER-THE-FIFO"]}


def test_a_huge_file_or_picture_is_refused_without_reading_it_all(tmp_path) -> None:
    from kiosk.sensors import scanner as scanner_module

    big = tmp_path / "big.png"
    with open(big, "wb") as handle:  # sparse: larger than the limit, costs no disk
        handle.write(huge_png_header(100, 100))
        handle.truncate(scanner_module.MAX_FILE_BYTES + 1)
    wide = tmp_path / "wide.png"
    wide.write_bytes(huge_png_header(9000, 9000))
    rows = scan_with_deadline([big, wide])
    assert rows[0]["codes"] == [] and "larger than 64 MB" in rows[0]["error"]
    assert rows[1]["codes"] == [] and "9000 x 9000 pixels" in rows[1]["error"]
