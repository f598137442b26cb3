"""What an offline verifier (EU DCC, SMART Health Card) found out about one payload.

The router turns it into the kiosk's ``CodeResult``. ``signed`` is the content the signature
covers: the replay guard keys on it rather than on the QR text, because the same signed
certificate can be re-encoded into many different texts.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

from kiosk.decision import Reason
from kiosk.results import Colour


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
        return cls(reasons=(reason,), problem=problem, issuer=issuer)

    @property
    def valid(self) -> bool:
        return not self.reasons and self.colour != "unknown"


class Refused(Exception):
    """Raised inside an offline verifier at the first reason to refuse; becomes a refusing Finding."""

    def __init__(self, reason: Reason, problem: str):
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
