"""Online lookup of a scanned health code at the issuing platform.

The colour always comes from the platform's answer, never from the QR text (which anyone can
print). Every failure to get a trustworthy answer becomes ``verified=False`` with a short cause,
which the decision turns into "cannot verify": the kiosk fails closed, and this module never
raises for network or answer problems.

Hardening: the answer must arrive within ``timeout_s`` (each network wait, and the body as a
whole) and be at most 64 KiB; a circuit breaker stops asking a platform that keeps failing, so
visitors get the fallback at once; the answer's schema is strict, and a "pending" or "unknown"
status is refused. Freshness (generation time against the clock, with skew) is judged in
``kiosk.decision``, in one place for every platform.

Neither the code's content nor the platform token is ever logged.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import time
from datetime import timezone
from typing import Annotated, Callable, Literal

import requests
import urllib3
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kiosk.codes.breaker import CircuitBreaker
from kiosk.codes.hashing import CodeHasher
from kiosk.config import PlatformSection
from kiosk.results import CodeResult

log = logging.getLogger(__name__)

MAX_PAYLOAD_CHARS = 2048
# An answer larger than this is not a lookup answer (a misrouted page, a runaway server).
MAX_ANSWER_BYTES = 64 * 1024
PLATFORM_COLOURS = frozenset({"green", "yellow", "red"})
# C0 and C1 control characters, DEL, and lone surrogates: no health code contains them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class _Known(BaseModel):
    """The platform knows the code. Strict: "true" is not a bool, a number is not a timestamp."""

    model_config = ConfigDict(extra="ignore", strict=True)
    status: Literal["ok"]
    colour: Annotated[str, Field(max_length=32)]
    generated_at: AwareDatetime
    holder: Annotated[str, Field(max_length=64)] | None = None
    proxy: bool = False
    # The holder's latest nucleic-acid test: when the sample was taken, and its result.
    test_at: AwareDatetime | None = None
    test_result: Literal["negative", "positive", "pending"] | None = None


class _Unknown(BaseModel):
    """The platform did not issue this code."""

    model_config = ConfigDict(extra="ignore", strict=True)
    status: Literal["unknown"]


class _Pending(BaseModel):
    """The platform knows the code but has no colour for it yet (under review, being re-assessed)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    status: Literal["pending"]


_Answer = _Known | _Unknown | _Pending
_ANSWER: TypeAdapter[_Answer] = TypeAdapter(Annotated[_Answer, Field(discriminator="status")])


class _Failure(Exception):
    """Internal: the platform could not be asked or its answer made no sense."""


def payload_problem(payload: str) -> str | None:
    """Why a scanned text cannot be a health code, or None if it may be sent for lookup."""
    if not payload:
        return "empty"
    if len(payload) > MAX_PAYLOAD_CHARS:
        return f"longer than {MAX_PAYLOAD_CHARS} characters"
    if _CONTROL.search(payload):
        return "holds control characters"
    return None


def _connection_problem(exc: requests.ConnectionError, timeout_s: float) -> str:
    """A requests connection error's root cause in a few words, without the URL and pool details.

    requests reports a read timeout in the middle of an answer's body as a ConnectionError, so
    timeouts are looked for here too.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError)):
            return "platform closed the connection without an answer"
        if isinstance(current, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
            return f"platform timeout after {timeout_s:g} s"
        if isinstance(current, ConnectionRefusedError):
            return "platform unreachable (connection refused)"
        if isinstance(current, socket.gaierror):
            return "platform unreachable (host name not resolved)"
        if type(current).__module__ == "builtins" and isinstance(current, OSError) and current.strerror:
            return f"platform unreachable ({current.strerror.lower()})"
        todo.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return "platform unreachable"


def _shape_problem(exc: ValidationError) -> str:
    """The first thing wrong with an answer, naming the field but never echoing its value."""
    first = exc.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return "not JSON"
    if kind == "union_tag_not_found":
        return "status: missing"
    if kind == "union_tag_invalid":  # pydantic's message would quote the value
        return "status: must be 'ok', 'pending' or 'unknown'"
    # A field's location starts with the status tag that picked the model ("ok", "generated_at").
    where = ".".join(str(part) for part in first["loc"][1:]) or "answer"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


class PlatformVerifier:
    """Looks scanned codes up at ``<platform.url>/verify``; safe to share between worker threads.

    ``name`` is reported as the result's issuer (several platforms may be configured, one per
    region); the breaker defaults to one built from the section's ``breaker_*`` settings.
    """

    def __init__(
        self,
        section: PlatformSection,
        hasher: CodeHasher,
        session: requests.Session | None = None,
        *,
        name: str = "platform",
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self._url = section.url.rstrip("/") + "/verify"
        self._timeout = section.timeout_s
        self._hasher = hasher
        self._clock = clock
        self.breaker = breaker or CircuitBreaker(section.breaker_failures, section.breaker_cooldown_s, clock)
        # The session keeps the connection open between visitors: no TCP/TLS setup per lookup.
        self._session = session if session is not None else requests.Session()
        token = section.token.get_secret_value()
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._session.close()

    def verify(self, payload: str) -> CodeResult:
        """The platform's verdict on one scanned code; never raises for network or answer problems."""
        code_hash = self._hasher.hash(payload)
        problem = payload_problem(payload)
        if problem is not None:
            # Not a code any platform issued: refused as unknown without asking anyone.
            log.info("scanned text is not a health code: %s", problem)
            return CodeResult(
                verified=True, colour="unknown", code_hash=code_hash, problem=f"malformed code: {problem}",
                issuer=self.name,
            )
        if not self.breaker.allow():
            cause = f"platform not asked: it failed repeatedly (next try in {self.breaker.retry_in():.0f} s)"
            log.warning("%s", cause)
            return CodeResult(verified=False, colour="unknown", code_hash=code_hash, problem=cause, issuer=self.name)
        try:
            answer = self._ask(payload)
        except _Failure as failure:
            self.breaker.failure()
            cause = str(failure)
            log.warning("%s", cause)
            return CodeResult(verified=False, colour="unknown", code_hash=code_hash, problem=cause, issuer=self.name)
        self.breaker.success()
        if isinstance(answer, _Unknown):
            return CodeResult(verified=True, colour="unknown", code_hash=code_hash, issuer=self.name)
        if isinstance(answer, _Pending):
            return CodeResult(
                verified=True, colour="unknown", code_hash=code_hash, issuer=self.name,
                problem="platform has no colour for this code yet (pending)",
            )
        generated_at = answer.generated_at.astimezone(timezone.utc)
        tested_at = None
        if answer.test_at is not None and answer.test_result == "negative":
            tested_at = answer.test_at.astimezone(timezone.utc)
        if answer.colour not in PLATFORM_COLOURS:
            cause = "platform reported a colour other than green, yellow or red"  # value not echoed
            log.warning("%s", cause)
            return CodeResult(
                verified=True,
                colour="unknown",
                code_hash=code_hash,
                generated_at=generated_at,
                holder=answer.holder,
                proxy=answer.proxy,
                problem=cause,
                issuer=self.name,
            )
        return CodeResult(
            verified=True,
            colour=answer.colour,  # type: ignore[arg-type]  # checked just above
            code_hash=code_hash,
            generated_at=generated_at,
            holder=answer.holder,
            proxy=answer.proxy,
            issuer=self.name,
            tested_at=tested_at,
        )

    def _ask(self, payload: str) -> _Answer:
        deadline = self._clock() + self._timeout
        try:
            # No redirects: a redirected POST turns into a GET and loses the code. The body is
            # streamed so that its size and its total time can be capped while it arrives.
            response = self._session.post(
                self._url,
                json={"code": payload},
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise _Failure(f"platform timeout after {self._timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise _Failure(_connection_problem(exc, self._timeout)) from None
        except requests.RequestException as exc:
            raise _Failure(f"platform request failed: {type(exc).__name__}") from None

        with response:
            status = response.status_code
            if status in (401, 403):
                raise _Failure(f"platform rejected the kiosk's token ({status})")
            if status not in (200, 404):
                raise _Failure(f"platform answered {status}")
            body = self._read_body(response, deadline)
        try:
            answer = _ANSWER.validate_json(body)
        except ValidationError as exc:
            if status == 404:
                # A 404 without the platform's own "unknown" answer is a wrong URL, not an unknown code.
                raise _Failure("platform answered 404") from None
            raise _Failure(f"platform answer malformed: {_shape_problem(exc)}") from None
        if status == 404 and not isinstance(answer, _Unknown):
            raise _Failure("platform answered 404")
        return answer

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=8192):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise _Failure(f"platform answer malformed: larger than {MAX_ANSWER_BYTES} bytes")
                chunks.append(chunk)
                if self._clock() > deadline:
                    raise _Failure(f"platform timeout after {self._timeout:g} s")
        except requests.ConnectionError as exc:
            raise _Failure(_connection_problem(exc, self._timeout)) from None
        except requests.RequestException as exc:
            raise _Failure(f"platform answer cut short: {type(exc).__name__}") from None
        return b"".join(chunks)
