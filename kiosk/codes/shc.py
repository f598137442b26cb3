"""SMART Health Cards (``shc:/``), verified offline against the trust list.

``shc:/`` + digits, two per character (value + 45), spell a compact JWS whose payload is raw
DEFLATE-compressed JSON. The header must be exactly ES256 + ``zip: DEF`` + a ``kid``; the key is
looked up only among the keys of the issuer that the card itself names in ``iss`` (a key of
another trusted issuer does not count), and its ``kid`` is its RFC 7638 thumbprint (checked when
the trust list is loaded). Then ``nbf``/``exp`` against the injected time, and revocation by the
card's ``rid`` in the issuer's revocation list for that key.

Parsing is strict: a malformed digit pair, a trailing character, a byte-order mark, a duplicate
JSON key, padding in base64url or bytes after the DEFLATE stream all refuse the card.

Multi-part codes (``shc:/<i>/<n>/...``, deprecated by the specification) are assembled when every
part is in one payload, one per line (``kiosk verify`` reads them so); a single part scanned at the
kiosk is refused with "incomplete_code".
"""

from __future__ import annotations

import array
import json
import logging
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from kiosk.codes.finding import Finding, Refused, inflate, numeric_date
from kiosk.codes.trust import Anchor, ShcIssuer, TrustStore, b64url_decode
from kiosk.config import CodesSection
from kiosk.results import Reason

log = logging.getLogger(__name__)

PREFIX = "shc:/"
HEALTH_CARD_TYPE = "https://smarthealth.cards#health-card"
# Three version-22 QR codes' worth of digits; the specification's largest card.
MAX_PAYLOAD_CHARS = 24000
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_PARTS = 20
_SINGLE = re.compile(r"shc:/([0-9]+)")
# Part numbers are short: a 5,000-digit "part number" is not one (and Python refuses to convert it).
_PART = re.compile(r"shc:/([1-9][0-9]{0,2})/([1-9][0-9]{0,2})/([0-9]+)")
_JWS_CHARS = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
_HEADER_KEYS = {"alg", "zip", "kid"}
_MAX_KID_CHARS = 128
_MAX_ISS_CHARS = 1024
_ECDSA = ec.ECDSA(SHA256())
# A compact JWS starts with a base64url JSON header, '{"' -> "eyJ"; shc:/ spells "e" "y" as 56 76.
_JWS_DIGITS = re.compile(r"5676[0-7][0-9](?:[0-7][0-9]){22,}")
_JWS_DIGITS_START = 40


# Each digit pair 00..77 stands for one character, chr(45 + pair): "-" up to "z". Pairs are looked
# up as 16-bit numbers (two ASCII digits, first digit high), four times faster than slicing.
_PAIRS = {ord(f"{value:02d}"[0]) << 8 | ord(f"{value:02d}"[1]): chr(45 + value) for value in range(78)}


def _digits_to_jws(digits: str) -> str:
    if len(digits) % 2:
        raise Refused.malformed("odd number of digits")
    pairs = array.array("H", digits.encode("ascii"))
    if sys.byteorder == "little":
        pairs.byteswap()
    try:
        return "".join(map(_PAIRS.__getitem__, pairs))
    except KeyError as exc:
        pair = chr(exc.args[0] >> 8) + chr(exc.args[0] & 0xFF)
        raise Refused.malformed(f"digit pair {pair} is out of range (00 to 77)") from None


def numeric_to_jws(payload: str) -> str:
    """The compact JWS that an ``shc:/`` text spells (parts, one per line, are assembled)."""
    if not isinstance(payload, str) or not payload.startswith(PREFIX):
        raise Refused.malformed(f"does not start with {PREFIX}")
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise Refused.malformed(f"longer than {MAX_PAYLOAD_CHARS} characters")
    lines = payload.split("\n")
    if len(lines) == 1:
        single = _SINGLE.fullmatch(payload)
        if single:
            return _digits_to_jws(single.group(1))
        part = _PART.fullmatch(payload)
        if part:
            index, count = int(part.group(1)), int(part.group(2))
            if index == count == 1:
                return _digits_to_jws(part.group(3))
            if index <= count:
                raise Refused(
                    Reason.INCOMPLETE_CODE,
                    f"part {index} of a {count}-part code; show all parts together, or the card as one QR code",
                )
        raise Refused.malformed("not shc:/ followed by digits")
    parts: dict[int, str] = {}
    total: int | None = None
    for line in lines:
        part = _PART.fullmatch(line)
        if not part:
            raise Refused.malformed("a line of a multi-part code is not shc:/<part>/<total>/<digits>")
        index, count = int(part.group(1)), int(part.group(2))
        if total is None:
            total = count
        if count != total or not 1 <= index <= count or count > MAX_PARTS or index in parts:
            raise Refused.malformed("multi-part code parts do not fit together")
        parts[index] = part.group(3)
    if len(parts) != total:
        raise Refused(Reason.INCOMPLETE_CODE, f"{len(parts)} of {total} parts")
    return _digits_to_jws("".join(parts[i] for i in range(1, total + 1)))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _json(raw: bytes, what: str) -> Any:
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            raise ValueError("starts with a byte-order mark")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Refused.malformed(f"{what} is not strict JSON ({exc})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _b64(part: str, what: str) -> bytes:
    try:
        return b64url_decode(part)
    except ValueError as exc:
        raise Refused.malformed(f"{what}: {exc}") from None


def _utc(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise Refused.malformed("a time in the card is out of range") from None


class ShcVerifier:
    """Verifies ``shc:/`` payloads; stateless apart from its policy, so one instance serves all threads.
    An offline scheme (``kiosk.codes.offline``)."""

    name: ClassVar[str] = "shc"
    prefix: ClassVar[str] = PREFIX
    shapes: ClassVar[tuple[str, ...]] = ("shc:", "shc/")  # the slash lost or turned
    anchor: ClassVar[type[Anchor]] = ShcIssuer

    @staticmethod
    def resembles(text: str) -> bool:
        """A long run of digits near the start that spells a compact JWS the ``shc:/`` way."""
        digits = _JWS_DIGITS.search(text[:_JWS_DIGITS_START + 60])
        return digits is not None and digits.start() <= _JWS_DIGITS_START

    def __init__(self, codes: CodesSection, skew: timedelta = timedelta(seconds=10)):
        self._codes = codes
        self._skew = skew.total_seconds()

    def verify(self, payload: str, store: TrustStore, now: datetime) -> Finding:
        """What the card says, judged at ``now`` against ``store``; never raises for bad input."""
        try:
            return self.verify_jws(numeric_to_jws(payload), store, now)
        except Refused as refused:
            log.info("SMART Health Card refused: %s: %s", refused.reason, refused.problem)
            return Finding.refuse(refused.reason, refused.problem)

    def verify_jws(self, jws: str, store: TrustStore, now: datetime) -> Finding:
        """The same checks on a compact JWS (a ``.smart-health-card`` file holds these)."""
        try:
            return self._verify(jws, store, now)
        except Refused as refused:
            log.info("SMART Health Card refused: %s: %s", refused.reason, refused.problem)
            return Finding.refuse(refused.reason, refused.problem)

    def _verify(self, jws: str, store: TrustStore, now: datetime) -> Finding:
        if not isinstance(jws, str) or not _JWS_CHARS.fullmatch(jws):
            raise Refused.malformed("not a compact JWS (three base64url parts)")
        header_b64, payload_b64, signature_b64 = jws.split(".")
        header = _json(_b64(header_b64, "header"), "header")
        if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
            raise Refused.malformed("header must hold exactly alg, zip and kid")
        if header["alg"] != "ES256" or header["zip"] != "DEF" or not isinstance(header["kid"], str):
            raise Refused.malformed("header must say alg ES256, zip DEF, and a kid")
        if not 0 < len(header["kid"]) <= _MAX_KID_CHARS:
            raise Refused.malformed("the header's kid is empty or too long")
        signature = _b64(signature_b64, "signature")
        compressed = _b64(payload_b64, "payload")
        card = _json(inflate(compressed, raw=True, limit=MAX_PAYLOAD_BYTES, what="the payload"), "payload")
        iss, nbf, exp, rid = self._claims(card)
        issuer = store.section(ShcIssuer).get(iss)
        if issuer is None:
            # The claimed issuer is reported (unverified) so that staff know whom the list lacks.
            return Finding.refuse(Reason.UNTRUSTED_ISSUER, f"issuer {iss} is not in the trust list", issuer=iss)
        # Only the keys of the issuer the card names: another trusted issuer's key does not count.
        key = issuer.keys.get(header["kid"])
        if key is None:
            return Finding.refuse(Reason.UNTRUSTED_ISSUER, f"issuer {iss} has no key {header['kid']}", issuer=iss)
        if len(signature) != 64:
            raise Refused(Reason.INVALID_SIGNATURE, "ES256 signature must be 64 bytes")
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        try:
            key.public_key.verify(encode_dss_signature(r, s), f"{header_b64}.{payload_b64}".encode("ascii"), _ECDSA)
        except (InvalidSignature, ValueError):
            raise Refused(Reason.INVALID_SIGNATURE, f"signature does not verify with key {key.kid} of {iss}") from None
        reasons: list[Reason] = []
        moment = now.timestamp()
        if nbf > moment + self._skew:
            reasons.append(Reason.NOT_YET_VALID)
        if exp is not None and moment >= exp:
            reasons.append(Reason.EXPIRED)
        problem = None
        crl = issuer.crls.get(key.kid)
        if key.crl_version is not None and (crl is None or crl.ctr < key.crl_version):
            # The issuer has revoked cards signed with this key, and this list is missing or older.
            reasons.append(Reason.TRUST_LIST_STALE)
            problem = f"revocation list for key {key.kid} missing or older than version {key.crl_version}"
        elif rid is not None and crl is not None and crl.revokes(rid, nbf):
            reasons.append(Reason.REVOKED)
            problem = f"revoked by {iss}"
        if reasons and problem is None:
            problem = f"valid from {_utc(nbf).isoformat()}" + (f" until {_utc(exp).isoformat()}" if exp else "")
        return Finding(
            reasons=tuple(reasons),
            colour=self._codes.shc_card if not reasons else "unknown",
            issuer=iss,
            expires=_utc(exp) if exp is not None else None,
            problem=problem,
            signed=f"{header_b64}.{payload_b64}".encode("ascii"),
        )

    @staticmethod
    def _claims(card: Any) -> tuple[str, float, float | None, str | None]:
        if not isinstance(card, dict):
            raise Refused.malformed("payload is not a JSON object")
        iss, nbf, vc = card.get("iss"), numeric_date(card.get("nbf")), card.get("vc")
        if not isinstance(iss, str) or not 0 < len(iss) <= _MAX_ISS_CHARS:
            raise Refused.malformed("payload has no issuer (iss), or one too long to be a URL")
        if nbf is None:
            raise Refused.malformed("payload has no numeric nbf in range")
        exp = None
        if "exp" in card:
            exp = numeric_date(card["exp"])
            if exp is None:
                raise Refused.malformed("exp is not a number in range")
        if not isinstance(vc, dict) or not isinstance(vc.get("type"), list) or HEALTH_CARD_TYPE not in vc["type"]:
            raise Refused.malformed("payload is not a health card (vc.type)")
        subject = vc.get("credentialSubject")
        if not isinstance(subject, dict) or not isinstance(subject.get("fhirBundle"), dict):
            raise Refused.malformed("payload has no FHIR bundle")
        rid = vc.get("rid")
        if rid is not None and (not isinstance(rid, str) or not rid):
            raise Refused.malformed("rid is not a string")
        return iss, nbf, exp, rid
