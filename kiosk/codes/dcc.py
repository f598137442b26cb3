"""EU Digital COVID Certificates (``HC1:``), verified offline against the trust list.

``HC1:`` + Base45 -> zlib -> COSE_Sign1 (optionally inside a CWT tag) -> CWT claims holding the
certificate (claim -260, entry 1). The signer is looked up by ``kid`` (protected header first, the
unprotected one only when the protected header has none), and the signature is checked against
every trusted certificate sharing that kid, with ES256 (EC P-256) or PS256 (RSA-PSS, SHA-256,
salt = hash length). The signature check itself is ``cryptography``'s; only the COSE framing
(the Sig_structure of RFC 8152 section 4.4) is built here. The certificate content is made plain
and validated against the DCC JSON schema (``kiosk.codes.dcc_payload``). ``iat``, ``nbf`` and
``exp`` are checked against the injected time; the certificate is reported under its signer's
country, and a claimed issuer (``iss``) naming another country is refused. A valid certificate gets
its colour from the configured policy (``codes.dcc_*``).

Every field is checked for its type before it is used: a malformed field is a refusal
(``malformed_code``), never an exception. Every refusal names one stable reason; nothing about the
holder is logged.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, TypeGuard

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from kiosk.codes import dcc_payload
from kiosk.codes.dcc_payload import TEST_DETECTED, TEST_NOT_DETECTED
from kiosk.codes.finding import Finding, Refused, inflate, numeric_date
from kiosk.codes.trust import DCC_KINDS, Anchor, DccSigner, TrustStore
from kiosk.config import CodesSection
from kiosk.results import Colour, Reason

log = logging.getLogger(__name__)

PREFIX = "HC1:"
# A QR code holds at most 4296 alphanumeric characters; anything longer was not scanned from one.
MAX_PAYLOAD_CHARS = 4400
MAX_COSE_BYTES = 64 * 1024
_BASE45 = re.compile(r"[0-9A-Z $%*+\-./:]*")
_ES256, _PS256 = -7, -37
_ALGORITHMS = {_ES256: "ES256", _PS256: "PS256"}
_TAG_CWT, _TAG_SIGN1 = 61, 18
_HEADER_ALG, _HEADER_KID = 1, 4
_CLAIM_ISS, _CLAIM_EXP, _CLAIM_NBF, _CLAIM_IAT, _CLAIM_HCERT = 1, 4, 5, 6, -260
_MAX_KID_BYTES = 64
_PSS = padding.PSS(mgf=padding.MGF1(SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_ECDSA = ec.ECDSA(SHA256())
# A Base45 body is looked for at the beginning, or after a short prefix of any spelling.
_BODY_OFFSETS = range(9)
_BODY_PROBE_CHARS = 60  # 40 bytes: a zlib header and the first bytes of the COSE message
_BASE45_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def looks_like_cose(text: str) -> bool:
    """Does Base45 starting near the beginning decode to zlib data holding a COSE message? (A DCC
    whose prefix was lost or misspelt: ``HC1`` without a colon, ``HC2:``, a bare body.)"""
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


def _cbor(data: bytes, what: str) -> Any:
    """One CBOR item filling ``data`` exactly (cbor2 alone would ignore trailing bytes)."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # untrusted bytes: any decoder failure means "not CBOR"
        raise Refused.malformed(f"{what} is not valid CBOR ({type(exc).__name__})") from None
    if stream.tell() != len(data):
        raise Refused.malformed(f"{what} has {len(data) - stream.tell()} trailing bytes")
    return value


def _signature_ok(signer: DccSigner, alg: int, to_be_signed: bytes, signature: bytes) -> bool:
    key = signer.public_key
    try:
        if alg == _ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), to_be_signed, _ECDSA)
            return True
        if alg == _PS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, to_be_signed, _PSS, SHA256())
            return True
    except (InvalidSignature, ValueError):
        return False
    return False  # the algorithm does not fit the certificate's key


def _utc(value: float, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise Refused.malformed(f"{what} is out of range") from None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: Any) -> TypeGuard[int]:
    """A CBOR integer above zero (booleans are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class DccVerifier:
    """Verifies ``HC1:`` payloads; stateless apart from its policy, so one instance serves all threads.
    An offline scheme (``kiosk.codes.offline``)."""

    name: ClassVar[str] = "dcc"
    prefix: ClassVar[str] = PREFIX
    shapes: ClassVar[tuple[str, ...]] = ()  # lookalikes of "HC1:" itself (Cyrillic, hc1:, HCl:) are the skeleton's
    anchor: ClassVar[type[Anchor]] = DccSigner

    @staticmethod
    def resembles(text: str) -> bool:
        return looks_like_cose(text)

    def __init__(self, codes: CodesSection, skew: timedelta = timedelta(seconds=10)):
        self._codes = codes
        self._skew = skew.total_seconds()

    def verify(self, payload: str, store: TrustStore, now: datetime) -> Finding:
        """What the certificate says, judged at ``now`` against ``store``; never raises for bad input."""
        try:
            return self._verify(payload, store, now)
        except Refused as refused:
            log.info("EU DCC refused: %s: %s", refused.reason, refused.problem)
            return Finding.refuse(refused.reason, refused.problem)

    def _verify(self, payload: str, store: TrustStore, now: datetime) -> Finding:
        cose = self._unwrap(payload)
        protected_bytes, unprotected, claims_bytes, signature = self._sign1(cose)
        protected = _cbor(protected_bytes, "protected header") if protected_bytes else {}
        if not isinstance(protected, Mapping):
            raise Refused.malformed("protected header is not a map")
        # A header absent from the protected bucket may come from the unprotected one (COSE lets
        # the kid sit there); the Sig_structure covers only the protected bucket, which is why the
        # algorithm must in any case fit the certificate's key type.
        alg = protected[_HEADER_ALG] if _HEADER_ALG in protected else unprotected.get(_HEADER_ALG)
        kid = protected[_HEADER_KID] if _HEADER_KID in protected else unprotected.get(_HEADER_KID)
        if not _is_int(alg):
            raise Refused.malformed(f"the algorithm (alg) is a {type(alg).__name__}, not an integer")
        if alg not in _ALGORITHMS:
            number = str(alg) if -(2**31) <= alg < 2**31 else "out of range"
            raise Refused(Reason.INVALID_SIGNATURE, f"unsupported algorithm {number} (ES256 or PS256)")
        if kid is None or kid == b"":
            raise Refused(Reason.UNTRUSTED_ISSUER, "no key id (kid) in the headers")
        if not isinstance(kid, bytes) or len(kid) > _MAX_KID_BYTES:
            raise Refused.malformed("the key id (kid) is not a short byte string")
        signers = store.section(DccSigner).get(kid, ())
        if not signers:
            raise Refused(Reason.UNTRUSTED_ISSUER, f"no trusted signer with kid {kid.hex()}")
        to_be_signed = cbor2.dumps(["Signature1", protected_bytes, b"", claims_bytes])
        signer = next((s for s in signers if _signature_ok(s, alg, to_be_signed, signature)), None)
        if signer is None:
            raise Refused(
                Reason.INVALID_SIGNATURE,
                f"{_ALGORITHMS[alg]} signature does not verify with the {len(signers)} signer(s) of kid {kid.hex()}",
            )
        claims = dcc_payload.plain(_cbor(claims_bytes, "claims"), "claims")
        return self._judge(claims, signer, now, to_be_signed)

    def _unwrap(self, payload: str) -> bytes:
        if not isinstance(payload, str) or not payload.startswith(PREFIX):
            raise Refused.malformed(f"does not start with {PREFIX}")
        if len(payload) > MAX_PAYLOAD_CHARS:
            raise Refused.malformed(f"longer than {MAX_PAYLOAD_CHARS} characters")
        text = payload[len(PREFIX):]
        if not _BASE45.fullmatch(text):
            raise Refused.malformed("not Base45 (a character outside the Base45 alphabet)")
        try:
            compressed = base45.b45decode(text)
        except ValueError:
            raise Refused.malformed("not Base45 (bad length or value)") from None
        return inflate(compressed, raw=False, limit=MAX_COSE_BYTES, what="the certificate")

    def _sign1(self, cose: bytes) -> tuple[bytes, Mapping, bytes, bytes]:
        item = _cbor(cose, "COSE message")
        if isinstance(item, cbor2.CBORTag) and item.tag == _TAG_CWT:
            item = item.value
        if isinstance(item, cbor2.CBORTag):
            if item.tag != _TAG_SIGN1:
                raise Refused.malformed(f"CBOR tag {item.tag} is not COSE_Sign1")
            item = item.value
        if not isinstance(item, (list, tuple)) or len(item) != 4:
            raise Refused.malformed("not a COSE_Sign1 structure")
        protected, unprotected, claims, signature = item
        if not (isinstance(protected, bytes) and isinstance(unprotected, Mapping)
                and isinstance(claims, bytes) and isinstance(signature, bytes)):
            raise Refused.malformed("COSE_Sign1 fields have the wrong types")
        return protected, unprotected, claims, signature

    def _judge(self, claims: Any, signer: DccSigner, now: datetime, signed: bytes) -> Finding:
        if not isinstance(claims, dict):
            raise Refused.malformed("claims are not a map")
        claimed = claims.get(_CLAIM_ISS)
        if claimed is not None and not isinstance(claimed, str):
            raise Refused.malformed("the issuer claim (iss) is not a text")
        iat, exp = numeric_date(claims.get(_CLAIM_IAT)), numeric_date(claims.get(_CLAIM_EXP))
        if iat is None or exp is None:
            raise Refused.malformed("claims need numeric iat and exp")
        nbf = None
        if _CLAIM_NBF in claims:
            nbf = numeric_date(claims[_CLAIM_NBF])
            if nbf is None:
                raise Refused.malformed("the not-before claim (nbf) is not a numeric date")
        expires = _utc(exp, "exp")
        hcert = claims.get(_CLAIM_HCERT)
        dgc = hcert.get(1) if isinstance(hcert, dict) else None
        if not isinstance(dgc, dict):
            raise Refused.malformed("no certificate in the claims (hcert -260 / 1)")
        kind, entries = dcc_payload.validate(dgc)
        entry = dcc_payload.latest(kind, entries)
        # The signer's country is what the trust list vouches for; a claim is only a claim.
        issuer = signer.country or claimed
        if claimed is not None and signer.country and claimed.strip().upper() != signer.country.upper():
            problem = f"the certificate claims issuer {claimed[:8]!r}, its signer is of {signer.country}"
            log.info("EU DCC refused: %s: %s", Reason.UNTRUSTED_ISSUER, problem)
            return Finding.refuse(Reason.UNTRUSTED_ISSUER, problem, issuer=signer.country)
        if signer.kinds is not None and kind not in signer.kinds:
            allowed = ", ".join(sorted(DCC_KINDS[k] for k in signer.kinds))
            raise Refused(Reason.UNTRUSTED_ISSUER, f"signer may sign {allowed} certificates, not {DCC_KINDS[kind]}")
        reasons: list[Reason] = []
        moment = now.timestamp()
        if iat > moment + self._skew or (nbf is not None and nbf > moment + self._skew):
            reasons.append(Reason.NOT_YET_VALID)
        if moment >= exp:
            reasons.append(Reason.EXPIRED)
        colour, tested_at = self._colour(kind, entry)
        validity: str | None = None
        if reasons:
            start = max(iat, nbf) if nbf is not None else iat
            validity = f"valid from {_utc(start, 'nbf').isoformat()} until {expires.isoformat()}"
        return Finding(
            reasons=tuple(reasons),
            colour=colour if not reasons else "unknown",
            issuer=issuer,
            expires=expires,
            tested_at=tested_at if not reasons else None,
            problem=validity,
            signed=signed,
        )

    def _colour(self, kind: str, entry: Mapping) -> tuple[Colour, datetime | None]:
        codes = self._codes
        if kind == "r":
            return codes.dcc_recovered, None
        if kind == "v":
            dose, doses = entry.get("dn"), entry.get("sd")
            # 1 to 9 (schema 1.3.0 sets only the minimum): a huge dose number must not make a series complete.
            if not (_positive_int(dose) and _positive_int(doses) and dose <= 9 and doses <= 9):
                raise Refused.malformed("vaccination entry needs dn and sd from 1 to 9")
            return (codes.dcc_vaccinated if dose >= doses else codes.dcc_partly_vaccinated), None
        result = entry.get("tr")
        if result == TEST_DETECTED:
            return codes.dcc_positive_test, None
        if result != TEST_NOT_DETECTED:
            raise Refused.malformed("test entry has no known result (tr)")
        return codes.dcc_negative_test, dcc_payload.sample_time(entry)
