"""What an offline verifier (EU DCC, SMART Health Card) found out about one payload.

The router turns it into the kiosk's ``CodeResult``. ``signed`` is the content the signature
covers: the replay guard keys on it rather than on the QR text, because the same signed
certificate can be re-encoded into many different texts.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.errors import VerificationError
from kiosk.results import Colour, Reason

# A refusal's problem line goes to the log and the event: it never quotes more than this (a hostile
# code can put a 200 KB "key name" into a parser's error message).
MAX_PROBLEM_CHARS = 300


def _bounded(problem: str) -> str:
    return problem if len(problem) <= MAX_PROBLEM_CHARS else problem[:MAX_PROBLEM_CHARS - 1] + "…"


@dataclass(frozen=True)
class Finding:
    reasons: tuple[Reason, ...] = ()
    colour: Colour = "unknown"
    issuer: str | None = None
    expires: datetime | None = None
    tested_at: datetime | None = None
    problem: str | None = None
    signed: bytes | None = None

    @classmethod
    def refuse(cls, reason: Reason, problem: str, issuer: str | None = None) -> "Finding":
        return cls(reasons=(reason,), problem=_bounded(problem), issuer=issuer)

    @property
    def valid(self) -> bool:
        return not self.reasons and self.colour != "unknown"


class Refused(VerificationError):
    """Raised inside an offline verifier at the first reason to refuse; becomes a refusing Finding.

    No built-in base: the verifiers catch ValueError around their parsing, and a refusal must pass
    through those handlers with its own reason."""

    def __init__(self, reason: Reason, problem: str):
        problem = _bounded(problem)
        super().__init__(problem)
        self.reason = reason
        self.problem = problem

    @classmethod
    def malformed(cls, problem: str) -> "Refused":
        return cls(Reason.MALFORMED_CODE, problem)


def inflate(data: bytes, *, raw: bool, limit: int, what: str) -> bytes:
    """Decompress zlib (or raw DEFLATE) data exactly: bounded in size, complete, nothing after it."""
    inflater = zlib.decompressobj(wbits=-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    kind = "raw DEFLATE" if raw else "zlib"
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise Refused.malformed(f"{what} is not {kind}-compressed ({exc})") from None
    if len(out) > limit:
        raise Refused.malformed(f"{what} inflates to more than {limit} bytes")
    if not inflater.eof:
        raise Refused.malformed(f"{what}: the {kind} stream is truncated")
    if inflater.unused_data:
        raise Refused.malformed(f"{what}: trailing bytes after the {kind} stream")
    return out


# NumericDate bounds: the Unix epoch to the last second of year 9999 (what datetime can hold).
_LATEST_SECOND = 253402300799


def numeric_date(value: Any) -> float | None:
    """A JSON/CBOR NumericDate as float seconds, or None if it is not a number in range. Integers
    are bounded before conversion: a 400-digit integer must not overflow, and must never be
    formatted (Python refuses to print integers of more than 4300 digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if 0 <= value <= _LATEST_SECOND else None
    if isinstance(value, float) and math.isfinite(value) and 0 <= value <= _LATEST_SECOND:
        return value
    return None
