"""Finding a family's proxy codes by a family member's phone number (people without phones).

A child or an elderly relative without a phone has a family-proxy code, linked to a family
member's phone. At the kiosk's touchscreen keypad a visitor types that member's number; the
platform answers with the proxy codes linked to it and a masked name for each; the visitor taps
their own name, and the chosen code is verified like any scanned code (the colour comes from the
platform's verify answer, never from this lookup).

    POST <platform.url>/family {"phone": "<digits>"}   (bearer token as for /verify)
    200 {"status": "ok", "members": [{"code": "...", "holder": "张*英"}, ...]}
    404 {"status": "unknown"}

Hardening, as for code lookups (``kiosk.http``): one deadline over the whole request
(``timeout_s``), at most 16 KiB of answer, a strict schema, and never an exception for network or answer problems (the
result says what happened). A per-kiosk rate limit (``codes.family_lookups`` per
``codes.family_window_s``) is checked before anything is sent, so numbers cannot be enumerated.

The phone number is never logged (at no level) and never kept: it goes into the request body and
nowhere else. ``PhoneEntry`` holds it only while it is being typed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Callable, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kiosk.codes.platform import payload_problem
from kiosk.codes.platform_http import PlatformFailure, post_json, shape_problem
from kiosk.codes.ratelimit import SlidingWindow
from kiosk.config import Config, PlatformSection
from kiosk.http import guard_session

log = logging.getLogger(__name__)

# A family with more proxy entries than fit on one screen of names is not a family lookup answer.
MAX_MEMBERS = 8
MAX_ANSWER_BYTES = 16 * 1024
STATUSES = "'ok' or 'unknown'"  # the answer's status tags, for error messages
MASK = "•"

Outcome = Literal["found", "unknown", "unavailable", "rate_limited", "invalid"]


class _Member(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    code: Annotated[str, Field(min_length=1, max_length=2048)]
    # A masked name: printable text only (it goes on the screen).
    holder: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]


class _Found(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    status: Literal["ok"]
    members: Annotated[list[_Member], Field(max_length=MAX_MEMBERS)]


class _Unknown(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    status: Literal["unknown"]


_ANSWER: TypeAdapter[_Found | _Unknown] = TypeAdapter(Annotated[_Found | _Unknown, Field(discriminator="status")])


@dataclass(frozen=True)
class FamilyMember:
    """One proxy entry to choose from. ``code`` is a health code: never logged (not in the repr)."""

    holder: str
    code: str = field(repr=False)


@dataclass(frozen=True)
class FamilyResult:
    """What a lookup came to:

    - ``found``: ``members`` holds at least one entry;
    - ``unknown``: the platform has no proxy codes for that number;
    - ``unavailable``: the platform could not be asked or answered nonsense (``problem`` says why);
    - ``rate_limited``: this kiosk made too many lookups lately; nothing was sent;
    - ``invalid``: not a phone number of the configured length; nothing was sent.
    """

    outcome: Outcome
    members: tuple[FamilyMember, ...] = ()
    problem: str | None = None


class PhoneEntry:
    """The number being typed on the keypad: digits only, at most ``max_digits`` of them.

    Its repr never shows the digits. ``take()`` hands the number over and forgets it.
    """

    def __init__(self, min_digits: int = 11, max_digits: int = 11):
        if not 1 <= min_digits <= max_digits:
            raise ValueError(f"need 1 <= min_digits <= max_digits, got {min_digits}, {max_digits}")
        self.min_digits = min_digits
        self.max_digits = max_digits
        self._digits = ""

    def __repr__(self) -> str:
        return f"PhoneEntry({len(self._digits)} digits)"

    def __len__(self) -> int:
        return len(self._digits)

    def press(self, digit: str) -> None:
        """Add one digit (ignored once the number is at its longest)."""
        if len(digit) != 1 or digit not in "0123456789":
            raise ValueError("a keypad key is one digit 0-9")
        if len(self._digits) < self.max_digits:
            self._digits += digit

    def delete(self) -> None:
        self._digits = self._digits[:-1]

    @property
    def complete(self) -> bool:
        """Long enough to look up (the OK key is enabled)."""
        return len(self._digits) >= self.min_digits

    def masked(self) -> str:
        """What the screen shows: every digit but the last four masked, in groups of 3-4-4(-4),
        the way Chinese mobile numbers are written: "••• •••• 8001"."""
        shown = MASK * max(0, len(self._digits) - 4) + self._digits[-4:]
        groups = [shown[:3]] + [shown[i : i + 4] for i in range(3, len(shown), 4)]
        return " ".join(group for group in groups if group)

    def take(self) -> str:
        """The number, and forget it."""
        digits, self._digits = self._digits, ""
        return digits


class FamilyLookup:
    """Looks a phone number's family-proxy codes up at ``<platform.url>/family``.

    ``limiter`` is this kiosk's rate limit. Call ``lookup`` from a worker thread (it waits for the
    network, at most ``section.timeout_s``); it never raises for network or answer problems.
    """

    def __init__(
        self,
        section: PlatformSection,
        limiter: SlidingWindow,
        *,
        min_digits: int = 11,
        max_digits: int = 11,
        session: requests.Session | None = None,
    ):
        self._url = section.url.rstrip("/") + "/family"
        self._timeout = section.timeout_s
        self.limiter = limiter
        self.min_digits = min_digits
        self.max_digits = max_digits
        self._session = guard_session(session)
        token = section.token.get_secret_value()
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_config(cls, config: Config, clock: Callable[[], float] = time.monotonic) -> "FamilyLookup":
        codes = config.codes
        return cls(
            config.platform,
            SlidingWindow(codes.family_lookups, codes.family_window_s, clock),
            min_digits=codes.family_min_digits,
            max_digits=codes.family_max_digits,
        )

    def entry(self) -> PhoneEntry:
        """An empty keypad entry of the configured length."""
        return PhoneEntry(self.min_digits, self.max_digits)

    def close(self) -> None:
        self._session.close()

    def lookup(self, phone: str) -> FamilyResult:
        """The proxy codes linked to this phone number; never raises for network or answer problems."""
        if not (isinstance(phone, str) and phone.isascii() and phone.isdigit()
                and self.min_digits <= len(phone) <= self.max_digits):
            log.info("family lookup refused: not a phone number of %d-%d digits", self.min_digits, self.max_digits)
            return FamilyResult("invalid", problem="not a phone number")
        if not self.limiter.try_acquire():
            log.warning(
                "family lookup refused: rate limit (%d per %.0f s; room again in %.0f s)",
                self.limiter.limit, self.limiter.window_s, self.limiter.retry_in(),
            )
            return FamilyResult("rate_limited", problem="rate limit")
        try:
            answer = self._ask(phone)
        except PlatformFailure as failure:
            log.warning("family lookup failed: %s", failure)
            return FamilyResult("unavailable", problem=str(failure))
        if isinstance(answer, _Unknown) or not answer.members:
            log.info("family lookup: no proxy codes for that number")
            return FamilyResult("unknown")
        for member in answer.members:
            if payload_problem(member.code) is not None:
                cause = "platform answer malformed: members.code: not a health code"
                log.warning("family lookup failed: %s", cause)
                return FamilyResult("unavailable", problem=cause)
        log.info("family lookup: %d members", len(answer.members))
        return FamilyResult("found", tuple(FamilyMember(m.holder, m.code) for m in answer.members))

    def _ask(self, phone: str) -> _Found | _Unknown:
        status, body = post_json(self._session, self._url, {"phone": phone}, self._headers, self._timeout,
                                 MAX_ANSWER_BYTES)
        try:
            answer = _ANSWER.validate_json(body)
        except ValidationError as exc:
            if status == 404:
                raise PlatformFailure("platform answered 404 (no family lookup at this URL?)") from None
            raise PlatformFailure(f"platform answer malformed: {shape_problem(exc, STATUSES)}") from None
        if (status == 404) != isinstance(answer, _Unknown):
            raise PlatformFailure(f"platform answered {status} with status {answer.status!r}")
        return answer


