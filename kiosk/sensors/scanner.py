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
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

Decoder = Literal["zxing", "pyzbar"]
DECODERS: tuple[Decoder, ...] = ("zxing", "pyzbar")

_INSTALL_HINT = {
    "zxing": "pip install zxing-cpp (module zxingcpp)",
    "pyzbar": "pip install pyzbar, and the ZBar library: apt install libzbar0",
}


class DecoderMissing(KioskError):
    """The QR decoder library chosen in camera.decoder is not installed."""


def payload_text(data: bytes) -> str:
    """Bytes from a QR code as text: UTF-8 when valid, else ISO 8859-1 (one character per byte)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _as_gray(frame: Any) -> np.ndarray | None:
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

    def __init__(self, decoder: Decoder = "zxing") -> None:
        if decoder not in DECODERS:
            raise KioskError(f"camera.decoder: unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
        self.decoder: Decoder = decoder
        self._lib = self._load(decoder)
        if decoder == "zxing":
            self._formats = self._lib.BarcodeFormat.QRCode
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

    def scan(self, frame: np.ndarray) -> list[str]:
        """The text of every QR code found in `frame` (2-D uint8 grayscale); [] when none."""
        gray = _as_gray(frame)
        if gray is None:
            log.debug("not a grayscale picture: %r", getattr(frame, "shape", type(frame)))
            return []
        try:
            return self._read(gray)
        except Exception:  # a decoder hiccup on one frame must not stop the camera loop
            log.warning("QR decoder %s failed on a %sx%s frame", self.decoder, gray.shape[1], gray.shape[0], exc_info=True)
            return []

    def _read_zxing(self, gray: np.ndarray) -> list[str]:
        found = self._lib.read_barcodes(gray, formats=self._formats)
        return [payload_text(b.bytes) for b in found]

    def _read_pyzbar(self, gray: np.ndarray) -> list[str]:
        # pyzbar copies the pixels with tobytes(), which also makes a strided view contiguous.
        found = self._lib.decode(gray, symbols=self._symbols)
        return [payload_text(d.data) for d in found]


def scan_files(paths: Iterable[str | Path], decoder: Decoder = "zxing") -> Iterator[dict[str, Any]]:
    """For each image file: {"file": path, "codes": [...]}, plus "error" when it cannot be read.

    One bad file does not stop the others; the `kiosk scan IMAGE...` command prints each dict as
    a JSON line.
    """
    scanner = Scanner(decoder)
    for path in paths:
        name = str(path)
        try:
            with Image.open(path) as image:
                gray = np.asarray(image.convert("L"))
        except FileNotFoundError:
            yield {"file": name, "codes": [], "error": "no such file"}
            continue
        except IsADirectoryError:
            yield {"file": name, "codes": [], "error": "is a directory"}
            continue
        except UnidentifiedImageError:
            yield {"file": name, "codes": [], "error": "not an image Pillow can read"}
            continue
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            yield {"file": name, "codes": [], "error": f"cannot read image: {exc}"}
            continue
        yield {"file": name, "codes": scanner.scan(gray)}
