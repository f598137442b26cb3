"""Demo issuers of signed credentials, and the demo operator who vouches for them.

The reference upstream serves a trust list signed with the demo operator key; tests and the
benchmark issue EU DCCs (``HC1:``) and SMART Health Cards (``shc:/``) with these issuers, valid or
deliberately broken (forged, expired, revoked, wrong kid...). Every key here is a demo key derived
from a public label: never use them outside the simulation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import base45
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kiosk.codes.offline import ANCHORS
from kiosk.codes.trust import DccSigner, ShcIssuer, dcc_kid, jwk_thumbprint
from kiosk.codes.trustlist import LIST_FORMAT, public_key_text, sign_list

DEMO_COUNTRY = "XX"
DEMO_SHC_ISSUER = "https://shc.demo.invalid/issuer"
NEGATIVE, POSITIVE = "260415000", "260373001"
_USAGE_OID = {"t": "1.3.6.1.4.1.1847.2021.1.1", "v": "1.3.6.1.4.1.1847.2021.1.2", "r": "1.3.6.1.4.1.1847.2021.1.3"}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def derived_ec_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key derived from a label: the same demo key on every run."""
    secret = int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest(), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(secret, ec.SECP256R1())


def demo_operator_key() -> ed25519.Ed25519PrivateKey:
    """The demo operator's trust-list signing key (its public half: ``DEMO_OPERATOR_PUBLIC_KEY``)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"kiosk demo operator key").digest())


DEMO_OPERATOR_PUBLIC_KEY = public_key_text(demo_operator_key().public_key())


def _seconds(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds())


def _raw_ecdsa(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class DccIssuer:
    """A DCC document signer: a self-signed certificate and the key that signs certificates."""

    section = DccSigner.section  # its place in the trust list

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
        country: str = DEMO_COUNTRY,
        kinds: str = "",
        valid_from: datetime = datetime(2020, 1, 1, tzinfo=timezone.utc),
        valid_days: int = 365 * 30,
    ):
        """``kinds`` ("t", "v", "r", any mix) restricts what it may sign by extended key usage."""
        self.key = key or derived_ec_key(f"demo DCC signer {country}")
        self.country = country
        name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Demo DSC {country}"),
        ])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(int.from_bytes(hashlib.sha256(name.public_bytes()).digest()[:8], "big"))
            .not_valid_before(valid_from)
            .not_valid_after(valid_from + timedelta(days=valid_days))
        )
        if kinds:
            usage = [x509.ObjectIdentifier(_USAGE_OID[kind]) for kind in kinds]
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        self.certificate = builder.sign(self.key, SHA256())
        self.der = self.certificate.public_bytes(Encoding.DER)
        self.kid = dcc_kid(self.der)

    @property
    def alg(self) -> int:
        return -7 if isinstance(self.key, ec.EllipticCurvePrivateKey) else -37

    def signer(self) -> DccSigner:
        return DccSigner.from_der(self.der, country=self.country)

    def trust_entry(self) -> dict[str, str]:
        return {"kid": base64.b64encode(self.kid).decode(), "country": self.country,
                "certificate": base64.b64encode(self.der).decode()}

    def sign(self, to_be_signed: bytes) -> bytes:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return _raw_ecdsa(self.key, to_be_signed)
        return self.key.sign(to_be_signed, padding.PSS(padding.MGF1(SHA256()), padding.PSS.DIGEST_LENGTH), SHA256())

    @staticmethod
    def certificate_entry(kind: str, *, dn: int = 2, sd: int = 2, result: str = NEGATIVE,
                          sampled: datetime | None = None, country: str = DEMO_COUNTRY) -> dict[str, Any]:
        """The holder's certificate (the DGC) with one vaccination, test or recovery entry."""
        dgc: dict[str, Any] = {
            "ver": "1.3.0",
            "nam": {"fn": "Zhang", "fnt": "ZHANG", "gn": "Wei", "gnt": "WEI"},
            "dob": "1980-01-01",
        }
        common = {"tg": "840539006", "co": country, "is": "Demo Ministry of Health", "ci": "URN:UVCI:01:XX:DEMO#0"}
        if kind == "v":
            dgc["v"] = [{**common, "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                         "dn": dn, "sd": sd, "dt": "2021-06-01"}]
        elif kind == "t":
            sampled = sampled or datetime(2021, 6, 1, tzinfo=timezone.utc)
            dgc["t"] = [{**common, "tt": "LP6464-4", "nm": "Demo PCR", "tr": result, "tc": "Demo test centre",
                         "sc": sampled.isoformat().replace("+00:00", "Z")}]
        elif kind == "r":
            dgc["r"] = [{**common, "fr": "2021-05-01", "df": "2021-05-12", "du": "2021-10-28"}]
        else:
            raise ValueError(f"kind must be 'v', 't' or 'r', got {kind!r}")
        return dgc

    def issue(
        self,
        issued: datetime,
        expires: datetime,
        kind: str = "v",
        *,
        dgc: Any = None,
        claims: dict[Any, Any] | None = None,
        kid: bytes | None = None,
        kid_unprotected: bool = False,
        tamper: bool = False,
        cwt_tag: bool = False,
        **entry: Any,
    ) -> str:
        """A signed ``HC1:`` code. ``claims`` replaces the whole CWT, ``dgc`` the certificate;
        ``kid`` overrides the key id; ``tamper`` changes the claims after signing (a forgery)."""
        if claims is None:
            claims = {1: self.country, 4: _seconds(expires), 6: _seconds(issued),
                      -260: {1: dgc if dgc is not None else self.certificate_entry(kind, country=self.country, **entry)}}
        kid = self.kid if kid is None else kid
        header: dict[int, Any] = {1: self.alg}
        unprotected: dict[int, Any] = {}
        if kid_unprotected:
            unprotected[4] = kid
        else:
            header[4] = kid
        protected = cbor2.dumps(header)
        payload = cbor2.dumps(claims)
        signature = self.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
        if tamper:
            payload = cbor2.dumps({**claims, 1: "ZZ"})
        message = cbor2.CBORTag(18, [protected, unprotected, payload, signature])
        if cwt_tag:
            message = cbor2.CBORTag(61, message)
        return "HC1:" + base45.b45encode(zlib.compress(cbor2.dumps(message), 9)).decode("ascii")


def numeric(jws: str) -> str:
    """The ``shc:/`` digits spelling a compact JWS."""
    return "".join(f"{ord(char) - 45:02d}" for char in jws)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


class ShcIssuerSim:
    """A SMART Health Card issuer: one ES256 key, its key set and its revocation list."""

    section = ShcIssuer.section

    def __init__(self, iss: str = DEMO_SHC_ISSUER, key: ec.EllipticCurvePrivateKey | None = None):
        self.iss = iss
        self.key = key or derived_ec_key(f"demo SHC issuer {iss}")
        numbers = self.key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": _b64url(numbers.x.to_bytes(32, "big")),
               "y": _b64url(numbers.y.to_bytes(32, "big"))}
        self.kid = jwk_thumbprint(jwk)
        self.jwk: dict[str, Any] = {**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}
        self.revoked: list[str] = []

    def revoke(self, rid: str, before: datetime | None = None) -> None:
        """Revoke the cards with this rid (only those issued before ``before``, if given)."""
        self.revoked.append(rid if before is None else f"{rid}.{_seconds(before)}")
        self.jwk = {**self.jwk, "crlVersion": len(self.revoked)}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def crls(self) -> list[dict[str, Any]]:
        if not self.revoked:
            return []
        return [{"kid": self.kid, "method": "rid", "ctr": len(self.revoked), "rids": list(self.revoked)}]

    def issuer(self) -> ShcIssuer:
        return ShcIssuer.from_json(self.iss, self.jwks(), self.crls(), strict=True)

    def trust_entry(self) -> dict[str, Any]:
        return {"iss": self.iss, "keys": self.jwks()["keys"], "crls": self.crls()}

    def card(self, issued: datetime, expires: datetime | None = None, rid: str | None = None,
             iss: str | None = None) -> dict[str, Any]:
        vc: dict[str, Any] = {
            "type": ["https://smarthealth.cards#health-card", "https://smarthealth.cards#immunization"],
            "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {
                "resourceType": "Bundle", "type": "collection", "entry": [
                    {"fullUrl": "resource:0", "resource": {"resourceType": "Patient",
                                                           "name": [{"family": "Zhang", "given": ["Wei"]}],
                                                           "birthDate": "1980-01-01"}},
                    {"fullUrl": "resource:1", "resource": {"resourceType": "Immunization", "status": "completed",
                                                           "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
                                                           "patient": {"reference": "resource:0"},
                                                           "occurrenceDateTime": "2021-01-01"}},
                ]}},
        }
        if rid is not None:
            vc["rid"] = rid
        card: dict[str, Any] = {"iss": iss or self.iss, "nbf": _seconds(issued), "vc": vc}
        if expires is not None:
            card["exp"] = _seconds(expires)
        return card

    def jws(self, card: dict[str, Any] | bytes, header: dict[str, Any] | bytes | None = None,
            key: ec.EllipticCurvePrivateKey | None = None) -> str:
        """A compact JWS of a card (a dict, or raw payload bytes to sign as they are)."""
        if header is None:
            header = {"zip": "DEF", "alg": "ES256", "kid": self.kid}
        header_bytes = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
        payload = card if isinstance(card, bytes) else json.dumps(card, separators=(",", ":")).encode()
        signing_input = f"{_b64url(header_bytes)}.{_b64url(_deflate(payload))}"
        signature = _raw_ecdsa(key or self.key, signing_input.encode("ascii"))
        return f"{signing_input}.{_b64url(signature)}"

    def sign_raw(self, header: bytes, compressed_payload: bytes) -> str:
        """A correctly signed JWS over any header and (already compressed) payload bytes: for
        checking that a signature alone does not make malformed content acceptable."""
        signing_input = f"{_b64url(header)}.{_b64url(compressed_payload)}"
        return f"{signing_input}.{_b64url(_raw_ecdsa(self.key, signing_input.encode('ascii')))}"

    def issue(self, issued: datetime, expires: datetime | None = None, rid: str | None = None) -> str:
        """A signed single-QR ``shc:/`` code."""
        return "shc:/" + numeric(self.jws(self.card(issued, expires, rid)))

    def issue_parts(self, issued: datetime, parts: int = 3, **card: Any) -> list[str]:
        """The same card split into a multi-part code, one ``shc:/i/n/...`` text per QR."""
        digits = numeric(self.jws(self.card(issued, **card)))
        size = -(-len(digits) // parts)
        size += size % 2  # never split a digit pair
        chunks = [digits[i:i + size] for i in range(0, len(digits), size)]
        return [f"shc:/{i}/{len(chunks)}/{chunk}" for i, chunk in enumerate(chunks, start=1)]


class SimIssuer(Protocol):
    """A simulated issuer of any offline scheme, as the trust list names it."""

    section: str

    def trust_entry(self) -> dict[str, Any]: ...


def trust_list_document(issued_at: datetime, dcc: Sequence[DccIssuer] = (), shc: Sequence[ShcIssuerSim] = (),
                        others: Sequence[SimIssuer] = ()) -> dict[str, Any]:
    """The trust list naming these issuers, each in its scheme's section (every scheme has one)."""
    document: dict[str, Any] = {
        "format": LIST_FORMAT,
        "issued_at": issued_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        **{anchor.section: [] for anchor in ANCHORS},
    }
    issuers: list[SimIssuer] = [*dcc, *shc, *others]
    for issuer in issuers:
        document.setdefault(issuer.section, []).append(issuer.trust_entry())
    return document


class DemoCredentials:
    """What the reference upstream vouches for: one issuer of each offline scheme, the operator key."""

    def __init__(self) -> None:
        self.operator = demo_operator_key()
        self.dcc = DccIssuer()
        self.shc = ShcIssuerSim()

    def issuers(self) -> list[SimIssuer]:
        return [self.dcc, self.shc]

    def signed_trust_list(self, issued_at: datetime) -> bytes:
        return sign_list(trust_list_document(issued_at, others=self.issuers()), self.operator)
