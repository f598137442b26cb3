"""The signed trust list: its format, its signature, and the keeper that fetches it and keeps it on disk.

The upstream serves the signed list (``GET <trust.url>``) as one line of header and the payload::

    kiosk-signed/2 <alg> <base64url signature>\n
    <the list's JSON, exactly the bytes that were signed>

``alg`` is ``Ed25519`` or ``ES256`` (ECDSA P-256, DER signature), matching the operator's key,
whose public half is in the kiosk's config (``trust.operator_key``). The signature is checked over
the raw payload bytes before anything is parsed: bytes nobody signed are never handed to a JSON
parser, however they are shaped. The list itself::

    {"format": "kiosk-trust-list/1", "issued_at": "2026-11-26T09:00:00Z",
     "dcc": [{"kid": "<base64>", "country": "DE", "certificate": "<base64 DER>"}, ...],
     "shc": [{"iss": "https://issuer.example", "keys": [<JWK>, ...], "crls": [<revocation list>, ...]}, ...]}

The keeper asks with ``If-None-Match`` (an unchanged list costs a 304) within one deadline of
``trust.timeout_s`` for the whole request (``kiosk.http``), takes at most ``MAX_LIST_BYTES``, and
refuses a list dated more than ``FUTURE_TOLERANCE`` ahead of the kiosk's clock or older than the newest one it
ever accepted (a replayed old list must not bring back a revoked signer). The signed list is
written atomically to ``data_dir/trust-list.json`` exactly as received (checked again on every
load); the newest issue time accepted, the ETag and the last check go to a small state file beside
it (``trust-list.state.json``), so a damaged or deleted list does not reopen the door to an older
one. Age counts from ``issued_at``, which the operator signs, so nobody in between can make an old
list look fresh.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import random
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

from kiosk.codes.offline import ANCHORS
from kiosk.codes.trust import TrustError, TrustStore, b64url_decode
from kiosk.config import TrustSection
from kiosk.datadir import make_private_dir, open_private
from kiosk.http import AnswerTooLarge, NetworkError, guard_session, request
from kiosk.sync.retry import backoff_s

log = logging.getLogger(__name__)

ENVELOPE_FORMAT = "kiosk-signed/2"
LIST_FORMAT = "kiosk-trust-list/1"
MEDIA_TYPE = "application/vnd.kiosk.signed-list"
# The header line: format, algorithm and a signature of at most 72 bytes (96 base64url characters).
MAX_HEADER_BYTES = 256
# A real list's entries are 1-2.3 KB per EU DCC signer (DER certificates of 0.7-1.6 KB, in base64)
# and well under 1 KB per card issuer key: 8 MiB holds several thousand signers. Anything larger
# is not a list, and is cut off while it arrives.
MAX_LIST_BYTES = 8 * 1024 * 1024
# The state file beside the list is a few hundred bytes; a larger one is not ours.
MAX_STATE_BYTES = 4096
# A list dated further ahead of the kiosk's clock than this is refused: accepted, it would make
# every current list look older than it, and shut them out until that date.
FUTURE_TOLERANCE = timedelta(minutes=10)
# After a failed fetch, try again after about this long, doubling per failure (with jitter) up to
# MAX_RETRY_S, and never later than the normal refresh interval.
RETRY_S = 60.0
MAX_RETRY_S = 900.0

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
    """The signed form of a trust list document, with the operator's private key (the operator's
    signing tool: see docs/codes.md)."""
    payload = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        alg, signature = "Ed25519", key.sign(payload)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        alg, signature = "ES256", key.sign(payload, ec.ECDSA(SHA256()))
    else:
        raise TypeError("the operator key must be Ed25519 or ECDSA P-256")
    return f"{ENVELOPE_FORMAT} {alg} {_b64url(signature)}\n".encode("ascii") + payload


def signed_payload(envelope: bytes, key: OperatorPublicKey) -> bytes:
    """The payload bytes of a signed list, once their signature checks out with ``key``.

    Nothing but the short header line is looked at before the signature is checked.
    """
    newline = envelope.find(b"\n", 0, MAX_HEADER_BYTES)
    if newline < 0:
        if envelope[:1] == b"{":
            raise TrustError(f"trust list is not a {ENVELOPE_FORMAT} list (it starts like the old kiosk-signed/1 "
                             "form: sign it again with this version)")
        raise TrustError(f"trust list is not a {ENVELOPE_FORMAT} list")
    fields = envelope[:newline].split(b" ")
    if len(fields) != 3 or fields[0] != ENVELOPE_FORMAT.encode("ascii"):
        raise TrustError(f"trust list is not a {ENVELOPE_FORMAT} list")
    try:
        alg = fields[1].decode("ascii")
        signature = b64url_decode(fields[2].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise TrustError("trust list signature is not base64url") from None
    payload = envelope[newline + 1:]
    try:
        if alg == "Ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(SHA256()))
        else:
            shown = alg if alg in ("Ed25519", "ES256") else "another algorithm"
            raise TrustError(f"trust list signed with {shown}, but the operator key is {type(key).__name__}")
    except InvalidSignature:
        raise TrustError("trust list signature does not verify with the operator key") from None
    return payload


def open_list(envelope: bytes, key: OperatorPublicKey) -> dict[str, Any]:
    """The trust list document inside a signed list, once its signature checks out with ``key``."""
    payload = signed_payload(envelope, key)
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
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
    # One section per offline scheme, read by that scheme's anchor (kiosk.codes.offline.ANCHORS).
    return TrustStore.from_document(document, ANCHORS, issued_at=issued_at.astimezone(timezone.utc), source=source)


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
    codes cannot be trusted now (no list, or too old), or None. ``path`` is where the signed list is
    kept; its state file (``<name>.state.json``) sits beside it.
    """

    def __init__(
        self,
        section: TrustSection,
        path: Path,
        session: requests.Session | None = None,
        utcnow: Callable[[], datetime] = _utc_now,
        jitter: Callable[[], float] = random.random,
    ):
        self._section = section
        self._path = path
        self._state_path = path.with_name(path.stem + ".state.json")
        self._session = guard_session(session)
        self._utcnow = utcnow
        self._jitter = jitter
        self._max_age = timedelta(hours=section.max_age_h)
        self._lock = threading.Lock()
        self.key = load_operator_key(section.operator_key)
        self.store: TrustStore | None = None
        self.etag: str | None = None
        self.checked_at: datetime | None = None
        # The newest issue time ever accepted: no older list is taken, even after the file is lost.
        self.newest_issued_at: datetime | None = None
        self.error: str | None = None
        self.failures = 0  # failed refreshes in a row
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
        state = self._read_state()
        self.newest_issued_at = _moment(state.get("newest_issued_at"))
        try:
            with open(self._path, "rb") as handle:
                envelope = handle.read(MAX_LIST_BYTES + 1)
            if len(envelope) > MAX_LIST_BYTES:
                raise TrustError(f"larger than {MAX_LIST_BYTES} bytes")
            store = store_from_document(open_list(envelope, self.key), str(self._path))  # type: ignore[arg-type]
        except FileNotFoundError:
            return
        except Exception as exc:  # whatever is in the file, the kiosk starts
            # A damaged or tampered file is ignored (and replaced at the next fetch), never used.
            self.error = f"{self._path}: not usable ({_cause(exc)})"
            log.warning("trust list: %s", self.error)
            return
        issued = store.issued_at
        if self.newest_issued_at is not None and (issued is None or issued < self.newest_issued_at):
            # A genuine but older list put back on disk (a restored backup, a rolled-back image):
            # it may still trust a signer the newer list revoked. Not used, and no ETag kept, so
            # the next fetch brings the current list in full.
            self.error = (f"{self._path}: older ({issued.isoformat() if issued else 'undated'}) than the newest list accepted "
                          f"({self.newest_issued_at.isoformat()}): not used")
            log.warning("trust list: %s", self.error)
            return
        self.store = store
        self.newest_issued_at = _later(self.newest_issued_at, store.issued_at)
        etag = state.get("etag")
        self.etag = etag if isinstance(etag, str) else None
        self.checked_at = _moment(state.get("checked_at"))
        log.info("trust list loaded from %s (issued %s)", self._path, store.issued_at)

    def _read_state(self) -> dict[str, Any]:
        """The state file's record; empty (and a warning) when it is missing or damaged."""
        try:
            with open(self._state_path, "rb") as handle:
                raw = handle.read(MAX_STATE_BYTES + 1)
            if len(raw) > MAX_STATE_BYTES:
                raise ValueError(f"larger than {MAX_STATE_BYTES} bytes")
            state = json.loads(raw)
            if not isinstance(state, dict):
                raise ValueError("not a JSON object")
            return state
        except FileNotFoundError:
            return {}
        except Exception as exc:
            log.warning("trust list: state file %s not usable (%s); starting without it", self._state_path, _cause(exc))
            return {}

    def _write(self, path: Path, data: bytes) -> None:
        make_private_dir(path.parent)  # the data folder: 0700 when the kiosk creates it
        tmp = path.with_name(path.name + ".tmp")
        with open_private(tmp, "wb") as handle:  # 0600, whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _save_state(self) -> None:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        record = {"newest_issued_at": iso(self.newest_issued_at), "etag": self.etag, "checked_at": iso(self.checked_at)}
        self._write(self._state_path, json.dumps(record, separators=(",", ":")).encode("utf-8"))

    # -- fetching ------------------------------------------------------------------------------

    def refresh(self) -> str:
        """Ask the upstream once: "updated", "unchanged", or raise TrustError saying what went wrong
        (the list in use stays as it was). Never raises anything else."""
        if self.key is None:
            raise TrustError(self.error or "no operator key configured")
        with self._lock:
            try:
                outcome = self._fetch()
            except Exception as exc:
                if not isinstance(exc, TrustError):
                    log.debug("trust list refresh failed", exc_info=True)
                    exc = TrustError(f"trust list refresh failed: {_cause(exc)}")
                self.error = str(exc)
                self.failures += 1
                raise exc from None
            self.error = None
            self.failures = 0
            return outcome

    def _fetch(self) -> str:
        headers = {"Accept": f"{MEDIA_TYPE}, */*;q=0.1"}
        if self.etag and self.store is not None:
            headers["If-None-Match"] = self.etag
        try:
            answer = request(self._session, "GET", self._section.url, seconds=self._section.timeout_s,
                             max_bytes=MAX_LIST_BYTES, headers=headers)
        except AnswerTooLarge:
            raise TrustError(f"trust list larger than {MAX_LIST_BYTES} bytes: not fetched") from None
        except NetworkError as exc:
            raise TrustError(f"cannot fetch the trust list: {exc}") from None
        now = self._utcnow()
        if answer.status == 304 and self.store is not None:
            self.checked_at = now
            self._save_state_quietly()
            return "unchanged"
        if answer.status != 200:
            raise TrustError(f"trust list fetch answered {answer.status}")
        store = store_from_document(open_list(answer.body, self.key), self._section.url)  # type: ignore[arg-type]
        issued_at = store.issued_at
        assert issued_at is not None  # store_from_document requires it
        if issued_at > now + FUTURE_TOLERANCE:
            raise TrustError(
                f"upstream served a list issued {issued_at.isoformat()}, ahead of this kiosk's clock "
                f"({now.isoformat()}); not accepted"
            )
        newest = self.newest_issued_at
        if newest is not None and issued_at < newest:
            raise TrustError(
                f"upstream served a list issued {issued_at.isoformat()}, older than the newest accepted "
                f"({newest.isoformat()}); kept the newer one"
            )
        self._write(self._path, answer.body)
        self.store = store
        self.etag = answer.headers.get("ETag")
        self.checked_at = now
        self.newest_issued_at = issued_at
        self._save_state()
        summary = store.summary()
        log.info("trust list updated (issued %s): %d EU DCC signer(s), %d card issuer(s)",
                 store.issued_at, summary["dcc_signers"], len(summary["shc_issuers"]))
        return "updated"

    def _save_state_quietly(self) -> None:
        try:
            self._save_state()
        except OSError as exc:
            log.warning("trust list: cannot record the check in %s: %s", self._state_path, exc)

    def retry_in(self) -> float:
        """Seconds until the next attempt: the refresh interval, or a growing delay after failures."""
        refresh = self._section.refresh_s
        if not self.failures:
            return refresh
        return min(refresh, backoff_s(self.failures, min(RETRY_S, refresh), MAX_RETRY_S, self._jitter()))

    def run(self, stop: threading.Event) -> None:
        """Thread body: refresh now, then every ``trust.refresh_s`` (sooner after a failure, with
        backoff). Whatever the upstream sends, the thread goes on."""
        if self.key is None:
            return
        while not stop.is_set():
            try:
                outcome = self.refresh()
                log.debug("trust list %s", outcome)
            except TrustError as exc:
                log.warning("trust list: %s (next try in %.0f s)", exc, self.retry_in())
            except Exception:  # refresh() raises only TrustError; this thread must outlive a surprise
                log.exception("trust list: unexpected error")
                self.failures = max(1, self.failures)
            stop.wait(self.retry_in())

    def close(self) -> None:
        self._session.close()


def _cause(exc: BaseException) -> str:
    """A short cause that never quotes what was received."""
    if isinstance(exc, (TrustError, OSError)):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "nested too deep"
    return type(exc).__name__


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)
