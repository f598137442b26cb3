"""The signed trust list: its format, its signature, and the keeper that fetches it and keeps it on disk.

The upstream serves one JSON envelope (``GET <trust.url>``)::

    {"format": "kiosk-signed/1", "alg": "Ed25519" | "ES256",
     "payload": "<base64url of the list's JSON>", "signature": "<base64url>"}

signed by the operator's key (Ed25519, or ECDSA P-256 with a DER signature), whose public half
is in the kiosk's config (``trust.operator_key``). The list itself::

    {"format": "kiosk-trust-list/1", "issued_at": "2026-11-26T09:00:00Z",
     "dcc": [{"kid": "<base64>", "country": "DE", "certificate": "<base64 DER>"}, ...],
     "shc": [{"iss": "https://issuer.example", "keys": [<JWK>, ...], "crls": [<revocation list>, ...]}, ...]}

The keeper asks with ``If-None-Match`` (an unchanged list costs a 304), checks the signature
before using anything, refuses a list older than the one it has (a replayed old list must not
bring back a revoked signer), writes the envelope atomically to ``data_dir/trust-list.json``
(checked again on every load), and reports the list's age. Age counts from ``issued_at``, which
the operator signs, so nobody in between can make an old list look fresh.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)

from kiosk.codes.trust import DccSigner, ShcIssuer, TrustError, TrustStore, b64url_decode
from kiosk.config import TrustSection

log = logging.getLogger(__name__)

ENVELOPE_FORMAT = "kiosk-signed/1"
LIST_FORMAT = "kiosk-trust-list/1"
MAX_LIST_BYTES = 32 * 1024 * 1024
# After a failed fetch, try again this soon (or at the normal interval, if that is sooner).
RETRY_S = 60.0

OperatorPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
OperatorPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def load_operator_key(text: str) -> OperatorPublicKey | None:
    """The operator's public key from the config (PEM or base64 DER); None when not configured."""
    text = text.strip()
    if not text:
        return None
    try:
        if "-----BEGIN" in text:
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error) as exc:
        raise TrustError(f"trust.operator_key: not a public key ({exc})") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise TrustError("trust.operator_key: must be an Ed25519 or ECDSA P-256 public key")


def public_key_text(key: OperatorPublicKey) -> str:
    """A public key as one line of base64 DER, the form ``trust.operator_key`` takes."""
    return base64.b64encode(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_list(document: dict[str, Any], key: OperatorPrivateKey) -> bytes:
    """The envelope for a trust list document, signed with the operator's private key."""
    payload = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        alg, signature = "Ed25519", key.sign(payload)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        alg, signature = "ES256", key.sign(payload, ec.ECDSA(SHA256()))
    else:
        raise TypeError("the operator key must be Ed25519 or ECDSA P-256")
    envelope = {"format": ENVELOPE_FORMAT, "alg": alg, "payload": _b64url(payload), "signature": _b64url(signature)}
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


def open_list(envelope: bytes, key: OperatorPublicKey) -> dict[str, Any]:
    """The trust list document inside an envelope, once its signature checks out with ``key``."""
    try:
        outer = json.loads(envelope)
    except (UnicodeDecodeError, ValueError):
        raise TrustError("trust list is not JSON") from None
    if not isinstance(outer, dict) or outer.get("format") != ENVELOPE_FORMAT:
        raise TrustError(f"trust list is not a {ENVELOPE_FORMAT} envelope")
    encoded_payload, encoded_signature = outer.get("payload"), outer.get("signature")
    if not isinstance(encoded_payload, str) or not isinstance(encoded_signature, str):
        raise TrustError("trust list payload or signature is missing")
    try:
        payload = b64url_decode(encoded_payload)
        signature = b64url_decode(encoded_signature)
    except ValueError:
        raise TrustError("trust list payload or signature is not base64url") from None
    alg = outer.get("alg")
    try:
        if alg == "Ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(SHA256()))
        else:
            raise TrustError(f"trust list signed with {alg!r}, but the operator key is {type(key).__name__}")
    except InvalidSignature:
        raise TrustError("trust list signature does not verify with the operator key") from None
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise TrustError("signed trust list is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != LIST_FORMAT:
        raise TrustError(f"signed document is not a {LIST_FORMAT}")
    return document


def store_from_document(document: dict[str, Any], source: str = "") -> TrustStore:
    """The trust store a (signature-checked) list describes. An entry that cannot be used is
    skipped with a warning: one bad certificate must not take every other signer down with it."""
    try:
        issued_at = datetime.fromisoformat(document["issued_at"])
    except (KeyError, TypeError, ValueError):
        raise TrustError("trust list has no valid issued_at") from None
    if issued_at.tzinfo is None:
        raise TrustError("trust list issued_at has no time zone")
    signers: list[DccSigner] = []
    for number, entry in enumerate(document.get("dcc") or []):
        try:
            der = base64.b64decode(entry["certificate"], validate=True)
            kid = base64.b64decode(entry["kid"], validate=True) if entry.get("kid") else None
            country = entry.get("country") if isinstance(entry.get("country"), str) else None
            signers.append(DccSigner.from_der(der, kid=kid, country=country))
        except (TrustError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            log.warning("trust list: DCC signer %d skipped: %s", number, exc)
    issuers: list[ShcIssuer] = []
    for number, entry in enumerate(document.get("shc") or []):
        try:
            issuers.append(ShcIssuer.from_json(entry["iss"], {"keys": entry["keys"]}, entry.get("crls") or []))
        except (TrustError, KeyError, TypeError) as exc:
            log.warning("trust list: SMART Health Card issuer %d skipped: %s", number, exc)
    return TrustStore.build(signers, issuers, issued_at=issued_at.astimezone(timezone.utc), source=source)


@dataclass(frozen=True)
class TrustStatus:
    """What staff see in ``kiosk trust`` (and ``kiosk status``)."""

    configured: bool
    issued_at: datetime | None
    age: timedelta | None
    stale: bool
    checked_at: datetime | None
    error: str | None
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat().replace("+00:00", "Z") if moment else None

        return {
            "configured": self.configured,
            "issued_at": iso(self.issued_at),
            "age_h": round(self.age.total_seconds() / 3600, 2) if self.age is not None else None,
            "stale": self.stale,
            "checked_at": iso(self.checked_at),
            "error": self.error,
            **self.summary,
        }


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class TrustListKeeper:
    """Keeps the current trust list: loaded from disk at start, refreshed from the upstream.

    ``store`` is the last good list (None before the first); ``stale_problem(now)`` says why offline
    codes cannot be trusted now (no list, or too old), or None.
    """

    def __init__(
        self,
        section: TrustSection,
        path: Path,
        session: requests.Session | None = None,
        utcnow: Callable[[], datetime] = _utc_now,
    ):
        self._section = section
        self._path = path
        self._session = session if session is not None else requests.Session()
        self._utcnow = utcnow
        self._max_age = timedelta(hours=section.max_age_h)
        self._lock = threading.Lock()
        self.key = load_operator_key(section.operator_key)
        self.store: TrustStore | None = None
        self.etag: str | None = None
        self.checked_at: datetime | None = None
        self.error: str | None = None
        if self.key is None:
            self.error = "no operator key configured (trust.operator_key)"
            log.warning("trust list: %s; offline certificates (HC1:, shc:/) are refused", self.error)
        else:
            self._load()

    # -- reading -------------------------------------------------------------------------------

    @property
    def source(self) -> str:
        return f"{self._path} (from {self._section.url})"

    def stale_problem(self, now: datetime) -> str | None:
        store = self.store
        if store is None:
            return f"no trust list ({self.error or 'not fetched yet'})"
        age = store.age(now)
        if age is not None and age > self._max_age:
            hours = age.total_seconds() / 3600
            return f"trust list is {hours:.0f} h old (trust.max_age_h = {self._section.max_age_h:g})"
        return None

    def status(self, now: datetime | None = None) -> TrustStatus:
        now = now or self._utcnow()
        store = self.store
        return TrustStatus(
            configured=self.key is not None,
            issued_at=store.issued_at if store else None,
            age=store.age(now) if store else None,
            stale=self.stale_problem(now) is not None,
            checked_at=self.checked_at,
            error=self.error,
            summary=store.summary() if store else {},
        )

    # -- disk ----------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            saved = json.loads(self._path.read_text(encoding="utf-8"))
            envelope = json.dumps(saved["envelope"]).encode("utf-8")
            store = store_from_document(open_list(envelope, self.key), str(self._path))  # type: ignore[arg-type]
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, TrustError) as exc:
            # A damaged or tampered file is ignored (and replaced at the next fetch), never used.
            self.error = f"{self._path}: not usable ({exc})"
            log.warning("trust list: %s", self.error)
            return
        self.store = store
        self.etag = saved.get("etag") if isinstance(saved.get("etag"), str) else None
        try:
            self.checked_at = datetime.fromisoformat(saved["checked_at"])
        except (KeyError, TypeError, ValueError):
            self.checked_at = None
        log.info("trust list loaded from %s (issued %s)", self._path, store.issued_at)

    def _save(self, envelope: bytes) -> None:
        record = {
            "etag": self.etag,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "envelope": json.loads(envelope),
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._path)

    # -- fetching ------------------------------------------------------------------------------

    def refresh(self) -> str:
        """Ask the upstream once: "updated", "unchanged", or raise TrustError saying what went wrong
        (the list in use stays as it was)."""
        if self.key is None:
            raise TrustError(self.error or "no operator key configured")
        with self._lock:
            try:
                outcome = self._fetch()
            except TrustError as exc:
                self.error = str(exc)
                raise
            self.error = None
            return outcome

    def _fetch(self) -> str:
        headers = {"Accept": "application/json"}
        if self.etag and self.store is not None:
            headers["If-None-Match"] = self.etag
        try:
            with self._session.get(
                self._section.url, headers=headers, timeout=self._section.timeout_s,
                allow_redirects=False, stream=True,
            ) as response:
                status = response.status_code
                body = b"" if status == 304 else self._body(response)
                etag = response.headers.get("ETag")
        except requests.RequestException as exc:
            raise TrustError(f"cannot fetch the trust list: {type(exc).__name__}") from None
        now = self._utcnow()
        if status == 304 and self.store is not None:
            self.checked_at = now
            self._save_current()
            return "unchanged"
        if status != 200:
            raise TrustError(f"trust list fetch answered {status}")
        store = store_from_document(open_list(body, self.key), self._section.url)  # type: ignore[arg-type]
        current = self.store
        if current is not None and current.issued_at and store.issued_at and store.issued_at < current.issued_at:
            raise TrustError(
                f"upstream served a list issued {store.issued_at.isoformat()}, older than the one in use "
                f"({current.issued_at.isoformat()}); kept the newer one"
            )
        self.store = store
        self.etag = etag
        self.checked_at = now
        self._save(body)
        summary = store.summary()
        log.info("trust list updated (issued %s): %d EU DCC signer(s), %d card issuer(s)",
                 store.issued_at, summary["dcc_signers"], len(summary["shc_issuers"]))
        return "updated"

    def _save_current(self) -> None:
        try:
            saved = json.loads(self._path.read_text(encoding="utf-8"))
            self._save(json.dumps(saved["envelope"]).encode("utf-8"))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("trust list: cannot record the check in %s: %s", self._path, exc)

    @staticmethod
    def _body(response: requests.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > MAX_LIST_BYTES:
                raise TrustError(f"trust list larger than {MAX_LIST_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def run(self, stop: threading.Event) -> None:
        """Thread body: refresh now, then every ``trust.refresh_s`` (sooner after a failure)."""
        if self.key is None:
            return
        while not stop.is_set():
            try:
                outcome = self.refresh()
                log.debug("trust list %s", outcome)
                wait = self._section.refresh_s
            except TrustError as exc:
                log.warning("trust list: %s", exc)
                wait = min(RETRY_S, self._section.refresh_s)
            stop.wait(wait)

    def close(self) -> None:
        self._session.close()
