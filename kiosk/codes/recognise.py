"""Which scheme a scanned text belongs to, before anything is sent anywhere.

A signed certificate (EU DCC ``HC1:``, SMART Health Card ``shc:/``) carries the holder's name and
date of birth, so it must never reach an online platform. The text from the scanner is therefore
normalised and inspected first:

- **Normalised**: Unicode compatibility forms are folded (NFKC: fullwidth ``ＨＣ１：`` becomes
  ``HC1:``, a no-break space a space) and leading whitespace and invisible format characters
  (byte-order mark, zero-width space and joiners, soft hyphen) are dropped. A text that is a
  certificate after this is verified as one.
- **Looks like a certificate**: a prefix that is a scheme's once letters from other scripts that
  look like Latin ones are folded (Unicode's confusables data, UTS #39) and case is ignored
  (``НC1:`` with a Cyrillic Н, ``hc1:``, ``SHC:/``), or one of the scheme's ``shapes`` (``shc:``
  without its slash); then whatever the scheme itself ``resembles`` (a text whose start decodes as
  Base45, zlib and a COSE message; a long run of digits that spells a compact JWS the ``shc:/``
  way). These go to the offline verifier of that scheme, which refuses them as malformed: they
  never leave the device.

Anything else is a platform code. The schemes are ``kiosk.codes.offline.SCHEMES``, in that order.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.codes.offline import SCHEMES, OfflineVerifier

# How much of the text is inspected for a prefix (after leading junk is dropped).
_HEAD_CHARS = 24
_PREFIX_CHARS = 6
# Leading characters that carry nothing: whitespace, controls, and invisible format characters.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}


@dataclass(frozen=True)
class Recognised:
    """``scheme``: an offline scheme's name ("dcc", "shc") or None (a platform code); ``text``: the
    normalised text for an offline verifier (the scanned text itself for a platform code)."""

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


def recognise(payload: Any, schemes: Sequence[type[OfflineVerifier]] = SCHEMES) -> Recognised:
    """The scheme of a scanned text, and the text an offline verifier should check."""
    if not isinstance(payload, str):
        return Recognised(None, payload)
    text = normalise(payload)
    for scheme in schemes:
        if text.startswith(scheme.prefix):
            return Recognised(scheme.name, text)
    shape = skeleton(text[:_HEAD_CHARS])
    for scheme in schemes:
        if shape.startswith((skeleton(scheme.prefix), *scheme.shapes)):
            return Recognised(scheme.name, text)
    for scheme in schemes:
        if scheme.resembles(text):
            return Recognised(scheme.name, text)
    return Recognised(None, payload)
