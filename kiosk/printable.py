"""Text from outside the kiosk made safe to print on a maintainer's terminal or in the journal.

A collector's error message (or any text a server sends) may hold terminal escapes, line breaks or
bidirectional overrides: printed raw they could clear the screen, colour a fake "ok", forge a second
log line or turn a file name around. ``printable`` keeps ordinary text, Chinese included, and writes
every control or formatting character as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``), the way
Python's ``repr`` does.
"""

from __future__ import annotations

import unicodedata

# C0 and C1 controls and DEL (Cc), invisible formatting such as bidi overrides and zero-width
# characters (Cf), line and paragraph separators (Zl, Zp), and lone surrogates (Cs).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control and formatting character escaped; printable text is unchanged."""
    if text.isprintable():
        return text
    return "".join(_escape(char) if unicodedata.category(char) in _ESCAPED_CATEGORIES else char for char in text)


def printable_values(value: object) -> object:
    """The same value with every string inside it (dict keys and values, list items) made printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_values(key): printable_values(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(printable_values(item) for item in value)
    return value
