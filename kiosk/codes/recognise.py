"""Which scheme a scanned text belongs to, before anything is sent anywhere.

A signed certificate (EU DCC ``HC1:``, SMART Health Card ``shc:/``) carries the holder's name and
date of birth, so it must never reach an online platform. The text from the scanner is therefore
normalised and inspected first:

- **Normalised**: Unicode compatibility forms are folded (NFKC: fullwidth ``ＨＣ１：`` becomes
  ``HC1:``, a no-break space a space) and leading whitespace and invisible format characters
  (byte-order mark, zero-width space and joiners, soft hyphen) are dropped. A text that is a
  certificate after this is verified as one.
- **Looks like a certificate**: a prefix that is ``HC1:`` or ``shc:`` once letters from other
  scripts that look like Latin ones are folded (Unicode's confusables data, UTS #39) and case is
  ignored (``НC1:`` with a Cyrillic Н, ``hc1:``, ``SHC:/``, ``shc:`` without its slash); a text
  whose start decodes as Base45, zlib and a COSE message whatever precedes it; a long run of digits
  that spells a compact JWS the ``shc:/`` way. These go to the offline verifier of that scheme,
  which refuses them as malformed: they never leave the device.

Anything else is a platform code.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Any

import base45

DCC_PREFIX = "HC1:"
SHC_PREFIX = "shc:/"

# How much of the text is inspected for a prefix (after leading junk is dropped).
_HEAD_CHARS = 24
_PREFIX_CHARS = 6
# Leading characters that carry nothing: whitespace, controls, and invisible format characters.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
# Where a Base45 body may start: at the beginning, or after a short prefix of any spelling.
_BODY_OFFSETS = range(9)
_BODY_PROBE_CHARS = 60  # 40 bytes: a zlib header and the first bytes of the COSE message
_BASE45_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
# A compact JWS starts with a base64url JSON header, '{"' -> "eyJ"; shc:/ spells "e" "y" as 56 76.
_SHC_DIGITS = re.compile(r"5676[0-7][0-9](?:[0-7][0-9]){22,}")
_SHC_DIGIT_SEARCH_CHARS = 40


@dataclass(frozen=True)
class Recognised:
    """``scheme``: "dcc", "shc" or None (a platform code); ``text``: the normalised text for an
    offline verifier (the scanned text itself for a platform code)."""

    scheme: str | None
    text: str


def normalise(payload: str) -> str:
    """NFKC, without leading whitespace and invisible format characters."""
    text = unicodedata.normalize("NFKC", payload) if not payload.isascii() else payload
    start = 0
    while start < len(text) and unicodedata.category(text[start]) in _INVISIBLE_CATEGORIES:
        start += 1
    return text[start:]


_confusables: dict[str, Any] | None = None
_confusables_lock = threading.Lock()


def _confusable_table() -> dict[str, Any]:
    """Unicode's confusables (loaded on first need: only texts with non-ASCII heads use it)."""
    global _confusables
    with _confusables_lock:
        if _confusables is None:
            from confusable_homoglyphs import confusables

            _confusables = confusables.confusables_data
        return _confusables


def _latin(char: str, table: dict[str, Any]) -> str:
    if char.isascii():
        return char
    for glyph in table.get(char, ()):
        candidate = glyph.get("c", "") if isinstance(glyph, dict) else ""
        if candidate and candidate.isascii():
            return candidate
    return char


# After folding: letters and digits a reader cannot tell apart in a prefix.
_SAME_LOOKING = str.maketrans({"l": "1", "i": "1", "|": "1", ";": ":"})


def skeleton(head: str) -> str:
    """A text's start as it looks: other scripts' lookalikes folded to ASCII, lower case, and
    ``1``/``l``/``I``/``|`` (and ``:``/``;``) taken as the same.

    The confusables table costs about 16 MB, so it is loaded only for a start that could be a
    disguised prefix: not ASCII, and without letters of scripts that have no case (Chinese, Korean,
    Japanese, Arabic...), which a platform code's own prefix is made of. (Whatever the prefix, a
    certificate's body is still recognised, see ``recognise``.)"""
    if not head.isascii() and not any(unicodedata.category(char) == "Lo" for char in head[:_PREFIX_CHARS]):
        table = _confusable_table()
        head = "".join(_latin(char, table) for char in head)
    return head.lower().translate(_SAME_LOOKING)


def _looks_like_cose(text: str) -> bool:
    """Does Base45 starting near the beginning decode to zlib data holding a COSE message?"""
    for offset in _BODY_OFFSETS:
        probe = text[offset:offset + _BODY_PROBE_CHARS]
        if len(probe) < _BODY_PROBE_CHARS:
            return False
        if not _BASE45_CHARS.issuperset(probe):
            continue
        try:
            data = base45.b45decode(probe)
        except ValueError:
            continue
        if len(data) < 2 or data[0] & 0x0F != 8 or (data[0] << 8 | data[1]) % 31:
            continue
        try:
            head = zlib.decompressobj().decompress(data, 8)
        except zlib.error:
            continue
        # COSE_Sign1 (tag 18), a CWT (tag 61), or an untagged four-element array.
        if head[:1] in (b"\xd2", b"\x84") or head[:2] == b"\xd8\x3d":
            return True
    return False


def recognise(payload: Any) -> Recognised:
    """The scheme of a scanned text, and the text an offline verifier should check."""
    if not isinstance(payload, str):
        return Recognised(None, payload)
    text = normalise(payload)
    if text.startswith(DCC_PREFIX):
        return Recognised("dcc", text)
    if text.startswith(SHC_PREFIX):
        return Recognised("shc", text)
    shape = skeleton(text[:_HEAD_CHARS])
    if shape.startswith("hc1:"):
        return Recognised("dcc", text)
    if shape.startswith("shc:") or shape.startswith("shc/"):
        return Recognised("shc", text)
    if _looks_like_cose(text):
        return Recognised("dcc", text)
    digits = _SHC_DIGITS.search(text[:_SHC_DIGIT_SEARCH_CHARS + 60])
    if digits is not None and digits.start() <= _SHC_DIGIT_SEARCH_CHARS:
        return Recognised("shc", text)
    return Recognised(None, payload)
