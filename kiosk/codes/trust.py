"""The trust anchors of the offline verifiers: who may sign a certificate the kiosk accepts.

Each offline scheme has one kind of anchor here (an ``Anchor``: how one entry of its section of the
operator's trust list is read, indexed for look-up and summarised for staff):

- EU DCC: document signer certificates (X.509), indexed by their key id (``kid``, the first 8
  bytes of the SHA-256 of the certificate). Kids are short, so several certificates may share one;
  a signature is tried against each of them. A certificate's extended key usage may limit it to
  test, vaccination or recovery certificates.
- SMART Health Cards: issuers by their URL (``iss``), each with its ES256 keys by ``kid`` (which
  must be the key's RFC 7638 thumbprint) and its revocation lists, one per key.

A ``TrustStore`` holds every scheme's anchors as an immutable snapshot: the trust list keeper swaps in a new one whole, so a
verification in flight never sees half a list. Parsed public keys are kept, so a verification does
no certificate parsing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Iterable, Mapping, Protocol, Sequence, Self

from asn1crypto import pem
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kiosk.codes.certificates import CertificateError, read_certificate
from kiosk.errors import TrustError

log = logging.getLogger(__name__)

# Extended key usage OIDs of DCC signers (both spellings are in use): which kinds they may sign.
_DCC_USAGE = {
    "1.3.6.1.4.1.1847.2021.1.1": "t",
    "1.3.6.1.4.1.1847.2021.1.2": "v",
    "1.3.6.1.4.1.1847.2021.1.3": "r",
    "1.3.6.1.4.1.0.1847.2021.1.1": "t",
    "1.3.6.1.4.1.0.1847.2021.1.2": "v",
    "1.3.6.1.4.1.0.1847.2021.1.3": "r",
}
DCC_KINDS = {"v": "vaccination", "t": "test", "r": "recovery"}


class Anchor(Protocol):
    """One trust anchor of an offline scheme (a DCC signer, a card issuer...)."""

    # The scheme's key in the trust list ({"dcc": [...]}) and what one entry is called in a log line.
    section: ClassVar[str]
    title: ClassVar[str]

    @classmethod
    def from_entry(cls, entry: Any) -> Self:
        """One entry of the list's section; raises (TrustError, KeyError, ValueError ...) if it cannot be used."""
        ...

    @classmethod
    def index(cls, anchors: Sequence[Self]) -> Mapping[Any, Any]:
        """The anchors as the scheme's verifier looks them up (``TrustStore.section``)."""
        ...

    @classmethod
    def summary(cls, index: Mapping[Any, Any]) -> dict[str, Any]:
        """Counts and names for staff (JSON; no key material), merged into ``TrustStore.summary``."""
        ...

    @classmethod
    def report(cls, summary: Mapping[str, Any]) -> list[str]:
        """Lines for ``kiosk trust``'s table, from the summary."""
        ...


def dcc_kid(der: bytes) -> bytes:
    """The DCC key id of a signer certificate: the first 8 bytes of its SHA-256."""
    return hashlib.sha256(der).digest()[:8]


@dataclass(frozen=True)
class DccSigner:
    section: ClassVar[str] = "dcc"
    title: ClassVar[str] = "DCC signer"

    kid: bytes
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    subject: str
    country: str | None = None
    kinds: frozenset[str] | None = None  # "v", "t", "r" it may sign; None: any

    @classmethod
    def from_der(cls, der: bytes, kid: bytes | None = None, country: str | None = None) -> "DccSigner":
        """A signer from its DER certificate; the kid defaults to the one computed from it, the
        country to the certificate subject's. A certificate whose encoding ``cryptography`` refuses
        is read leniently (``kiosk.codes.certificates``)."""
        try:
            facts = read_certificate(der)
        except CertificateError as exc:
            raise TrustError(f"not an X.509 certificate: {exc}") from None
        public_key, subject = facts.public_key, facts.subject
        if facts.lenient:
            log.info("%s: read leniently (%s)", subject, facts.lenient)
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if not isinstance(public_key.curve, ec.SECP256R1):
                raise TrustError(f"{subject}: EC key on {public_key.curve.name}, DCC signatures use P-256")
        elif not isinstance(public_key, rsa.RSAPublicKey):
            raise TrustError(f"{subject}: {type(public_key).__name__} cannot sign a DCC (EC P-256 or RSA)")
        oids = facts.usages or frozenset()
        kinds = frozenset(_DCC_USAGE[oid] for oid in oids if oid in _DCC_USAGE) or None
        return cls(kid=kid if kid is not None else dcc_kid(der), public_key=public_key, subject=subject,
                   country=country or facts.country, kinds=kinds)

    @classmethod
    def from_entry(cls, entry: Any) -> "DccSigner":
        """``{"kid": "<base64>", "country": "DE", "certificate": "<base64 DER>"}``."""
        der = base64.b64decode(entry["certificate"], validate=True)
        kid = base64.b64decode(entry["kid"], validate=True) if entry.get("kid") else None
        country = entry.get("country") if isinstance(entry.get("country"), str) else None
        return cls.from_der(der, kid=kid, country=country)

    @classmethod
    def index(cls, anchors: Sequence["DccSigner"]) -> Mapping[bytes, tuple["DccSigner", ...]]:
        # Kids are short: several certificates may share one, and each is tried.
        by_kid: dict[bytes, list[DccSigner]] = {}
        for signer in anchors:
            by_kid.setdefault(signer.kid, []).append(signer)
        return MappingProxyType({kid: tuple(group) for kid, group in by_kid.items()})

    @classmethod
    def summary(cls, index: Mapping[Any, Any]) -> dict[str, Any]:
        countries: dict[str, int] = {}
        for group in index.values():
            for signer in group:
                countries[signer.country or "?"] = countries.get(signer.country or "?", 0) + 1
        return {"dcc_signers": sum(len(group) for group in index.values()),
                "dcc_countries": dict(sorted(countries.items()))}

    @classmethod
    def report(cls, summary: Mapping[str, Any]) -> list[str]:
        countries = ", ".join(f"{country} {count}" for country, count in summary["dcc_countries"].items()) or "-"
        return [f"EU DCC signers  {summary['dcc_signers']}  ({countries})"]


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 thumbprint of an EC public JWK (base64url, no padding)."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode("utf-8")).digest()).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: any other character or non-canonical tail is an error."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ValueError("not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise ValueError("not canonical base64url")
    return raw


@dataclass(frozen=True)
class ShcKey:
    kid: str
    public_key: ec.EllipticCurvePublicKey
    crl_version: int | None = None  # the issuer's revocation list for this key is at least this new

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> "ShcKey":
        if not isinstance(jwk, Mapping):
            raise TrustError("a key is not a JSON object")
        kid = jwk.get("kid")
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise TrustError(f"key {kid!r}: not an EC P-256 key")
        if jwk.get("alg", "ES256") != "ES256" or jwk.get("use", "sig") != "sig":
            raise TrustError(f"key {kid!r}: not an ES256 signing key")
        if "d" in jwk:
            raise TrustError(f"key {kid!r}: holds a private key; only public keys belong in a key set")
        try:
            x, y = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
            if len(x) != 32 or len(y) != 32:
                raise ValueError("coordinates must be 32 bytes")
            public_key = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustError(f"key {kid!r}: bad coordinates ({exc})") from None
        thumbprint = jwk_thumbprint(jwk)
        if kid != thumbprint:
            raise TrustError(f"key {kid!r}: kid is not the key's thumbprint ({thumbprint})")
        version = jwk.get("crlVersion")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise TrustError(f"key {kid!r}: crlVersion must be a positive integer")
        return cls(kid=kid, public_key=public_key, crl_version=version)


@dataclass(frozen=True)
class Revocations:
    """One key's revocation list: revocation ids, each for all cards, or for cards issued before a time."""

    kid: str
    ctr: int
    rids: Mapping[str, float | None]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Revocations":
        if not isinstance(data, Mapping) or data.get("method") != "rid":
            raise TrustError("revocation list: method must be \"rid\"")
        kid, ctr, rids = data.get("kid"), data.get("ctr"), data.get("rids")
        if not isinstance(kid, str) or isinstance(ctr, bool) or not isinstance(ctr, int) or not isinstance(rids, list):
            raise TrustError("revocation list: needs a kid, an integer ctr and a list of rids")
        parsed: dict[str, float | None] = {}
        for entry in rids:
            if not isinstance(entry, str) or not entry:
                raise TrustError(f"revocation list {kid}: rids must be strings")
            rid, _, suffix = entry.partition(".")
            before: float | None = None
            if suffix:
                try:
                    before = float(int(suffix))
                except ValueError:
                    raise TrustError(f"revocation list {kid}: bad timestamp in {entry!r}") from None
            # One rid listed twice: the broader revocation wins (no time beats any time, later beats earlier).
            if rid not in parsed:
                parsed[rid] = before
            elif parsed[rid] is not None:
                parsed[rid] = None if before is None else max(parsed[rid], before)  # type: ignore[type-var]
        return cls(kid=kid, ctr=ctr, rids=MappingProxyType(parsed))

    def revokes(self, rid: str, issued_at: float) -> bool:
        """Is a card with this rid, issued (``nbf``) at ``issued_at``, revoked?"""
        if rid not in self.rids:
            return False
        before = self.rids[rid]
        return before is None or issued_at < before


@dataclass(frozen=True)
class ShcIssuer:
    section: ClassVar[str] = "shc"
    title: ClassVar[str] = "SMART Health Card issuer"

    iss: str
    keys: Mapping[str, ShcKey]
    crls: Mapping[str, Revocations] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_json(cls, iss: str, jwks: Any, crls: Iterable[Any] = (), strict: bool = False) -> "ShcIssuer":
        """An issuer from its key set and revocation lists. A key that cannot be used is skipped with
        a warning (others of the issuer stay usable), or is an error when ``strict``."""
        if not isinstance(iss, str) or not iss.startswith("https://") and not iss.startswith("http://"):
            raise TrustError(f"issuer {iss!r}: must be an http(s) URL")
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise TrustError(f"issuer {iss}: key set must be an object with a \"keys\" list")
        keys: dict[str, ShcKey] = {}
        for jwk in jwks["keys"]:
            try:
                key = ShcKey.from_jwk(jwk)
            except TrustError as exc:
                if strict:
                    raise TrustError(f"issuer {iss}: {exc}") from None
                log.warning("issuer %s: %s; key skipped", iss, exc)
                continue
            keys[key.kid] = key
        lists: dict[str, Revocations] = {}
        for crl in crls:
            revocations = Revocations.from_json(crl)
            lists[revocations.kid] = revocations
        return cls(iss=iss, keys=MappingProxyType(keys), crls=MappingProxyType(lists))

    @classmethod
    def from_entry(cls, entry: Any) -> "ShcIssuer":
        """``{"iss": "https://...", "keys": [<JWK>], "crls": [<revocation list>]}``."""
        return cls.from_json(entry["iss"], {"keys": entry["keys"]}, entry.get("crls") or [])

    @classmethod
    def index(cls, anchors: Sequence["ShcIssuer"]) -> Mapping[str, "ShcIssuer"]:
        return MappingProxyType({issuer.iss: issuer for issuer in anchors})

    @classmethod
    def summary(cls, index: Mapping[Any, Any]) -> dict[str, Any]:
        return {"shc_issuers": [
            {"iss": issuer.iss, "keys": len(issuer.keys),
             "revocation_lists": {kid: crl.ctr for kid, crl in sorted(issuer.crls.items())}}
            for issuer in sorted(index.values(), key=lambda i: i.iss)
        ]}

    @classmethod
    def report(cls, summary: Mapping[str, Any]) -> list[str]:
        lines = [f"card issuers    {len(summary['shc_issuers'])}"]
        for issuer in summary["shc_issuers"]:
            crls = ", ".join(f"{kid[:12]}… v{ctr}" for kid, ctr in issuer["revocation_lists"].items()) or "none"
            lines.append(f"  {issuer['iss']}  {issuer['keys']} key(s), revocation lists: {crls}")
        return lines


_NOTHING: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True)
class TrustStore:
    """Everything the offline verifiers trust, as one immutable snapshot: each scheme's anchors,
    indexed by its ``Anchor.index``."""

    anchors: Mapping[type[Anchor], Mapping[Any, Any]] = field(default_factory=lambda: MappingProxyType({}))
    # When the operator signed the list (None: anchors given by hand, which do not go stale).
    issued_at: datetime | None = None
    source: str = ""

    @classmethod
    def of(cls, anchors: Iterable[Anchor], issued_at: datetime | None = None, source: str = "",
           kinds: Iterable[type[Anchor]] = ()) -> "TrustStore":
        """The store of these anchors, of any schemes (``kinds`` are present even with none)."""
        groups: dict[type[Anchor], list[Anchor]] = {kind: [] for kind in kinds}
        for anchor in anchors:
            groups.setdefault(type(anchor), []).append(anchor)
        return cls(anchors=MappingProxyType({kind: kind.index(group) for kind, group in groups.items()}),
                   issued_at=issued_at, source=source)

    @classmethod
    def build(cls, signers: Iterable[DccSigner] = (), issuers: Iterable[ShcIssuer] = (),
              issued_at: datetime | None = None, source: str = "") -> "TrustStore":
        """DCC signers and card issuers (``of`` takes anchors of any scheme)."""
        return cls.of([*signers, *issuers], issued_at, source, kinds=(DccSigner, ShcIssuer))

    @classmethod
    def from_document(cls, document: Mapping[str, Any], kinds: Iterable[type[Anchor]],
                      issued_at: datetime | None = None, source: str = "") -> "TrustStore":
        """The anchors a (signature-checked) trust list names, one section per scheme. An entry that
        cannot be used is skipped with a warning: one bad certificate must not take every other
        signer down with it."""
        kinds = tuple(kinds)
        for kind in kinds:
            if not isinstance(document.get(kind.section) or [], list):
                raise TrustError(f"trust list {kind.section}: must be a list")
        anchors: list[Anchor] = []
        for kind in kinds:
            for number, entry in enumerate(document.get(kind.section) or []):
                try:
                    anchors.append(kind.from_entry(entry))
                except Exception as exc:  # whatever one entry raises costs that entry, not the whole list
                    log.warning("trust list: %s %d skipped: %s", kind.title, number, exc)
        return cls.of(anchors, issued_at, source, kinds=kinds)

    def section(self, kind: type[Anchor]) -> Mapping[Any, Any]:
        """One scheme's anchors (empty if the store has none of that kind)."""
        return self.anchors.get(kind, _NOTHING)

    @property
    def dcc(self) -> Mapping[bytes, tuple[DccSigner, ...]]:
        return self.section(DccSigner)

    @property
    def shc(self) -> Mapping[str, ShcIssuer]:
        return self.section(ShcIssuer)

    def age(self, now: datetime) -> timedelta | None:
        return None if self.issued_at is None else now - self.issued_at

    def summary(self) -> dict[str, Any]:
        """What is trusted, for staff (``kiosk trust``): counts and names, no key material."""
        summary: dict[str, Any] = {}
        for kind, index in self.anchors.items():
            summary.update(kind.summary(index))
        return summary


def certificate_file(path: Path) -> DccSigner:
    """A DCC signer from a DER or PEM certificate file (``kiosk verify --trust-cert``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            kind, _, data = pem.unarmor(data)
        except ValueError as exc:
            raise TrustError(f"{path}: not a PEM certificate ({exc})") from None
        if kind != "CERTIFICATE":
            raise TrustError(f"{path}: not a PEM certificate (it holds a {kind})")
    try:
        return DccSigner.from_der(data)
    except TrustError as exc:
        raise TrustError(f"{path}: {exc}") from None


def issuer_directory(iss: str, jwks_path: Path) -> ShcIssuer:
    """A SMART Health Card issuer from its JWKS file and the ``crl/<kid>.json`` files beside it
    (the layout of an issuer's ``.well-known/``; ``kiosk verify --trust-jwks``)."""
    try:
        jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrustError(f"{jwks_path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise TrustError(f"{jwks_path}: not a JSON key set ({exc})") from None
    crls = []
    crl_dir = jwks_path.parent / "crl"
    if crl_dir.is_dir():
        for crl_path in sorted(crl_dir.glob("*.json")):
            try:
                crls.append(json.loads(crl_path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise TrustError(f"{crl_path}: not a JSON revocation list ({exc})") from None
    return ShcIssuer.from_json(iss, jwks, crls, strict=True)
