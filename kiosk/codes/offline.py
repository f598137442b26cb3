"""Offline code schemes: signed credentials checked on the device against the operator's trust list.

Every scheme is one class following ``OfflineVerifier``, in a module of its own, and one line in
``SCHEMES``. Everything around them works from that list: recognising a scanned text (its prefix,
lookalikes of it, disguised bodies; ``kiosk.codes.recognise``), routing it (``kiosk.codes.router``),
reading the scheme's section of the trust list (its ``anchor``, ``kiosk.codes.trust``), the
trust-list and clock policies, the replay guard, and ``kiosk verify`` / ``kiosk trust``. The
decision never hears of a scheme: a signed credential's result is not ``dynamic``
(``kiosk.results.CodeResult``), and its validity period was judged by its verifier.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Protocol

from kiosk.codes.dcc import DccVerifier
from kiosk.codes.finding import Finding
from kiosk.codes.shc import ShcVerifier
from kiosk.codes.trust import Anchor, TrustStore
from kiosk.config import CodesSection


class OfflineVerifier(Protocol):
    """Recognises a payload, verifies it against the trust store at a given time, gives a Finding."""

    # The scheme's name in results, events and ``kiosk verify`` ("dcc").
    name: ClassVar[str]
    # What every code of the scheme starts with ("HC1:"), after Unicode normalisation.
    prefix: ClassVar[str]
    # Further starts that only look like the prefix, as ``recognise.skeleton`` spells them (lower
    # case, lookalike letters folded); the prefix's own skeleton is always one.
    shapes: ClassVar[tuple[str, ...]]
    # Its trust anchors: the scheme's section of the trust list and how it is looked up.
    anchor: ClassVar[type[Anchor]]

    def __init__(self, codes: CodesSection, skew: timedelta) -> None: ...

    @staticmethod
    def resembles(text: str) -> bool:
        """A code of this scheme with its prefix lost (a bare body): refused, never sent anywhere."""
        ...

    def verify(self, text: str, store: TrustStore, now: datetime) -> Finding:
        """What the code says, judged at ``now`` against ``store``. Never raises for bad input:
        every problem is a refusing Finding with its reason. ``text`` is normalised, and may only
        look like the scheme's (a lookalike prefix, a bare body): it is refused as malformed
        unless it starts with ``prefix``."""
        ...


SCHEMES: tuple[type[OfflineVerifier], ...] = (
    DccVerifier,  # EU Digital COVID Certificate, HC1:
    ShcVerifier,  # SMART Health Card, shc:/
)

# What each scheme trusts, in the order of SCHEMES (the trust list reads one section for each).
ANCHORS: tuple[type[Anchor], ...] = tuple(scheme.anchor for scheme in SCHEMES)
