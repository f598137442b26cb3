"""Online lookup of a scanned health code at the issuing platform.

The colour always comes from the platform's answer, never from the QR text (which anyone can
print). Every failure to get a trustworthy answer becomes ``verified=False`` with a short cause,
which the decision turns into "cannot verify": the kiosk fails closed, and this module never
raises for network or answer problems.

Hardening: the whole lookup (connecting, headers, body) must be over within ``timeout_s``, and
the answer be at most 64 KiB; a circuit breaker stops asking a platform that keeps failing, so
visitors get the fallback at once; the answer's schema is strict, and a "pending" or "unknown"
status is refused. Freshness (generation time against the clock, with skew) is judged in
``kiosk.decision``, in one place for every platform.

Neither the code's content nor the platform token is ever logged.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timezone
from typing import Annotated, Callable, Literal

import requests
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kiosk.codes.breaker import CircuitBreaker
from kiosk.codes.hashing import CodeHasher
from kiosk.codes.platform_http import PlatformFailure, post_json, shape_problem
from kiosk.config import PlatformSection
from kiosk.http import guard_session
from kiosk.results import CodeResult

log = logging.getLogger(__name__)

MAX_PAYLOAD_CHARS = 2048
# An answer larger than this is not a lookup answer (a misrouted page, a runaway server).
MAX_ANSWER_BYTES = 64 * 1024
STATUSES = "'ok', 'pending' or 'unknown'"  # the answer's status tags, for error messages
PLATFORM_COLOURS = frozenset({"green", "yellow", "red"})
# C0 and C1 control characters, DEL, and lone surrogates: no health code contains them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class _Known(BaseModel):
    """The platform knows the code. Strict: "true" is not a bool, a number is not a timestamp."""

    model_config = ConfigDict(extra="ignore", strict=True)
    status: Literal["ok"]
    colour: Annotated[str, Field(max_length=32)]
    generated_at: AwareDatetime
    # Goes on the screen: printable text only, as the family lookup's names (a NUL stops pygame).
    holder: Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")] | None = None
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


def payload_problem(payload: str) -> str | None:
    """Why a scanned text cannot be a health code, or None if it may be sent for lookup."""
    if not payload:
        return "empty"
    if len(payload) > MAX_PAYLOAD_CHARS:
        return f"longer than {MAX_PAYLOAD_CHARS} characters"
    if _CONTROL.search(payload):
        return "holds control characters"
    return None


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
        self.breaker = breaker or CircuitBreaker(section.breaker_failures, section.breaker_cooldown_s, clock)
        # The session keeps the connection open between visitors: no TCP/TLS setup per lookup.
        self._session = guard_session(session)
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
        except PlatformFailure as failure:
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
        status, body = post_json(self._session, self._url, {"code": payload}, self._headers, self._timeout,
                                 MAX_ANSWER_BYTES)
        try:
            answer = _ANSWER.validate_json(body)
        except ValidationError as exc:
            if status == 404:
                # A 404 without the platform's own "unknown" answer is a wrong URL, not an unknown code.
                raise PlatformFailure("platform answered 404") from None
            raise PlatformFailure(f"platform answer malformed: {shape_problem(exc, STATUSES)}") from None
        if status == 404 and not isinstance(answer, _Unknown):
            raise PlatformFailure("platform answered 404")
        if isinstance(answer, _Known):
            try:  # year 9999 at -23:59 is valid ISO 8601 but no UTC time Python has
                for moment in (answer.generated_at, answer.test_at):
                    if moment is not None:
                        moment.astimezone(timezone.utc)
            except OverflowError:
                raise PlatformFailure("platform answer malformed: a time out of range") from None
        return answer

