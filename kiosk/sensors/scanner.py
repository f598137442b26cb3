"""QR decoding of camera frames, by a well-kept library: zxing-cpp (default) or ZBar through pyzbar.

Only QR symbols are looked for (health codes and signed credentials are QR), which also keeps an
empty frame cheap. Payloads come back as text: a QR code carries bytes, and the kiosk reads them as
UTF-8 (what health-code platforms, DCC and SMART Health Cards use); bytes that are not valid UTF-8
are read as ISO 8859-1 (the QR standard's default byte-mode charset), which maps every byte to one
character, so nothing is lost. zxing-cpp hands over the raw bytes, so that rule holds exactly; ZBar
converts non-UTF-8 data by guessing a charset first (ISO 8859-1 text may come back as Shift JIS),
one more reason zxing-cpp is the default.

A frame that holds nothing readable, or is not an image at all, gives an empty list, never an
exception: the kiosk simply keeps looking. A missing decoder library is a setup fault and raises
DecoderMissing, naming the package to install.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from kiosk.errors import DecoderMissing, SettingError
from kiosk.sensors.qrpipeline import STAGES, Located, ReadingPipeline, split_image

log = logging.getLogger(__name__)

Decoder = Literal["zxing", "pyzbar"]
DECODERS: tuple[Decoder, ...] = ("zxing", "pyzbar")

_INSTALL_HINT = {
    "zxing": "pip install zxing-cpp (module zxingcpp)",
    "pyzbar": "pip install pyzbar, and the ZBar library: apt install libzbar0",
}


def payload_text(data: bytes) -> str:
    """Bytes from a QR code as text: UTF-8 when valid, else ISO 8859-1 (one character per byte)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def as_gray(frame: Any) -> np.ndarray | None:
    """A 2-D uint8 view of `frame`, or None when it cannot be a picture."""
    try:
        array = np.asarray(frame)
    except Exception:  # noqa: BLE001 - anything that is not array-like is simply not a picture
        return None
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[:, :, :3].mean(axis=2)
    if array.ndim != 2 or array.shape[0] < 8 or array.shape[1] < 8:
        return None
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            return None
        array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).astype(np.uint8)
    return array


class Scanner:
    """Finds and decodes the QR codes in a grayscale frame.

    The decoder library is imported here, so a kiosk configured for a library that is not
    installed stops at start-up with a clear message rather than on the first visitor.
    """

    def __init__(self, decoder: Decoder = "zxing", stages: Sequence[str] = STAGES, budget_s: float | None = None) -> None:
        if decoder not in DECODERS:
            raise SettingError(f"camera.decoder: unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
        self.decoder: Decoder = decoder
        self._lib = self._load(decoder)
        self.last_stage: str | None = None
        # Symbols the last scan located but could not read (zxing-cpp only: ZBar reports none).
        self.last_located: list[Located] = []
        if decoder == "zxing":
            # zxing-cpp reads through the pipeline: one cheap pass, harder passes only where a code is.
            self._pipeline = ReadingPipeline(self._lib, stages, budget_s)
            self._read = self._read_zxing
        else:
            self._symbols = [self._lib.ZBarSymbol.QRCODE]
            self._read = self._read_pyzbar

    @staticmethod
    def _load(decoder: Decoder) -> Any:
        module = "zxingcpp" if decoder == "zxing" else "pyzbar.pyzbar"
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            # pyzbar imports fine but raises ImportError when libzbar0 is missing; say which.
            raise DecoderMissing(
                f"QR decoder {decoder!r} is not available ({exc}); install it: {_INSTALL_HINT[decoder]}"
            ) from exc

    def scan(self, frame: np.ndarray, main: np.ndarray | None = None) -> list[str]:
        """The text of every QR code found in `frame` (2-D uint8 grayscale); [] when none.

        `main` is the same view at full resolution (the camera's main stream), when there is one:
        a code located but not read in `frame` is read again from it.
        """
        self.last_stage = None
        self.last_located = []
        gray = as_gray(frame)
        if gray is None:
            log.debug("not a grayscale picture: %r", getattr(frame, "shape", type(frame)))
            return []
        full = as_gray(main) if main is not None else None
        try:
            return self._read(gray, full)
        except Exception:  # a decoder hiccup on one frame must not stop the camera loop
            log.warning("QR decoder %s failed on a %sx%s frame", self.decoder, gray.shape[1], gray.shape[0], exc_info=True)
            return []

    def scan_image(self, image: np.ndarray) -> list[str]:
        """The codes in a whole picture, read as the camera's streams would show it (`kiosk scan`).

        A picture larger than the lores stream is scaled down to it for the first passes, and the
        picture itself serves as the full-resolution main stream; see `split_image`.
        """
        gray = as_gray(image)
        if gray is None:
            return []
        lores, main = split_image(gray)
        return self.scan(lores, main)

    def _read_zxing(self, gray: np.ndarray, main: np.ndarray | None) -> list[str]:
        reading = self._pipeline.read(gray, main)
        self.last_stage = reading.stage
        self.last_located = [] if reading.codes else reading.located
        return [payload_text(code) for code in reading.codes]

    def _read_pyzbar(self, gray: np.ndarray, main: np.ndarray | None) -> list[str]:
        # pyzbar copies the pixels with tobytes(), which also makes a strided view contiguous.
        found = self._lib.decode(gray, symbols=self._symbols)
        return [payload_text(d.data) for d in found]


# `kiosk scan` reads at most this much of a file, and decodes at most this many pixels (a 48 MP
# phone photo is 8000 x 6000); what is bigger is refused with a line saying so.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 50_000_000

_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


class _Unreadable(Exception):
    """Why a file is not read; the text goes into the file's "error"."""


def _not_regular(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
    return f"not a regular file ({kind}): only image files are read"


def _read_bounded(path: str | Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; never blocks on a FIFO or a device."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise _Unreadable("no such file") from None
    except OSError as exc:
        raise _Unreadable(f"cannot read: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the name
        raise _Unreadable("no such file") from None
    if not stat.S_ISREG(info.st_mode):
        raise _Unreadable(_not_regular(info.st_mode))
    too_big = _Unreadable(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: not read")
    if info.st_size > MAX_FILE_BYTES:
        raise too_big
    try:
        # O_NONBLOCK: a FIFO swapped in after the check cannot hold the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _Unreadable(f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(opened):
            raise _Unreadable(_not_regular(opened))
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _Unreadable(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise too_big
    return data


def _gray_image(path: str | Path) -> np.ndarray:
    data = _read_bounded(path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise _Unreadable(f"{width} x {height} pixels is more than {MAX_PIXELS // 1_000_000} million: "
                                  "scale the picture down")
            return np.asarray(image.convert("L"))
    except UnidentifiedImageError:
        raise _Unreadable("not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _Unreadable(f"cannot read image: {exc}") from None


def scan_files(paths: Iterable[str | Path], decoder: Decoder = "zxing") -> Iterator[dict[str, Any]]:
    """For each image file: {"file": path, "codes": [...]}, plus "error" when it cannot be read.

    One bad file does not stop the others; the `kiosk scan IMAGE...` command prints each dict as
    a JSON line. Only regular files are read (a FIFO or a device such as /dev/zero is refused at
    once, never waited on), up to MAX_FILE_BYTES and MAX_PIXELS.
    """
    scanner = Scanner(decoder)
    for path in paths:
        name = str(path)
        try:
            gray = _gray_image(path)
        except _Unreadable as exc:
            yield {"file": name, "codes": [], "error": str(exc)}
            continue
        yield {"file": name, "codes": scanner.scan_image(gray)}
