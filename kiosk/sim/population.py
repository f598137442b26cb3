"""A simulated health-code platform's population: who exists, what colour they are, which code they show.

The reference platform server (``kiosk.sim.upstream``) answers the kiosk's lookups from this object,
and the demo picks its visitors from it. It behaves like the real platforms in the ways the kiosk
depends on:

- A code is opaque: it names a person and a moment, sealed with an HMAC only the platform can make.
  The colour is not in it; the platform looks the person's *current* colour up at scan time.
- Phone codes are dynamic and change every minute; a printed family-proxy code (for a child or an
  elderly relative without a phone, linked to a family member's phone) is issued once a day.
- The platform does not judge staleness: it reports when the code was generated and the kiosk decides.
- Where a person's latest nucleic-acid test is on record, the lookup reports its sample time and
  result (``test_at``, ``test_result``); the kiosk's test rule, if configured, judges it.

Code text: ``HCP1:`` followed by 24 base32 characters encoding 15 bytes,
``kind (1) | person number (1) | time counter (4, big-endian) | HMAC-SHA256 truncated (9)``,
where the counter counts minutes (phone codes) or days (proxy codes) since the Unix epoch.
Upper-case base32 and ``:`` keep the whole text inside the QR alphanumeric mode (a small, fast code).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal

from kiosk.errors import KioskError

PREFIX = "HCP1:"
_BODY = struct.Struct(">BBI")  # kind, person number, counter
_MAC_BYTES = 9
_CODE_BYTES = _BODY.size + _MAC_BYTES  # 15 bytes: a multiple of 5, so base32 needs no padding
CODE_LENGTH = len(PREFIX) + _CODE_BYTES * 8 // 5

_KIND_PHONE = 1
_KIND_PROXY = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNIT = {_KIND_PHONE: timedelta(minutes=1), _KIND_PROXY: timedelta(days=1)}

PlatformColour = Literal["green", "yellow", "red"]
COLOURS: tuple[str, ...] = ("green", "yellow", "red")


class UnknownPersonError(KioskError, KeyError):
    """No person with this id lives in the simulated population."""


@dataclass
class Person:
    id: str
    name: str
    colour: str
    phone: str | None = None
    guardian: str | None = None  # for a family-proxy entry: the id of the family member whose phone it is linked to
    test_at: datetime | None = None  # sample time of the latest nucleic-acid test on record
    test_result: str | None = None  # "negative", "positive" or "pending"

    @property
    def proxy(self) -> bool:
        return self.guardian is not None


def _people() -> list[Person]:
    """The fixed cast: mostly green, two yellow, two red, two family-proxy entries."""
    return [
        Person("p01", "张伟明", "green", "13800138001"),
        Person("p02", "李娜", "green", "13800138002"),
        Person("p03", "王芳", "green", "13900139003"),
        Person("p04", "刘洋", "green", "13700137004"),
        Person("p05", "陈静", "yellow", "13600136005"),
        Person("p06", "杨建国", "yellow", "15800158006"),
        Person("p07", "赵敏", "red", "15900159007"),
        Person("p08", "黄晓东", "red", "18600186008"),
        Person("p09", "John Smith", "green", "13500135009"),
        Person("p10", "Maria Garcia", "green", None),  # a visitor with a local code but no registered phone
        Person("p11", "张秀英", "green", guardian="p01"),  # elderly mother of p01, printed proxy code
        Person("p12", "王小宝", "green", guardian="p03"),  # child of p03, printed proxy code
    ]


def mask_name(name: str) -> str:
    """The holder's name as a screen may show it: "张伟明" -> "张*明", "李娜" -> "李*", "John Smith" -> "J*** S****"."""
    if " " in name.strip():
        return " ".join(word[0] + "*" * (len(word) - 1) for word in name.split())
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """ "13800138001" -> "138****8001"."""
    return phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class Population:
    """The simulated people and the platform's two jobs: issuing codes and looking them up.

    Safe to share between the threads of a threading HTTP server.
    """

    def __init__(self, secret: bytes = b"sim-platform", clock: Callable[[], datetime] = _utc_now):
        if not secret:
            raise ValueError("the platform secret must not be empty")
        self._secret = secret
        self._clock = clock
        self._lock = threading.Lock()
        self._people = _people()
        self._by_id = {person.id: person for person in self._people}

    # -- the simulated world ------------------------------------------------------------------

    def now(self) -> datetime:
        """The platform's clock (injected in tests)."""
        return self._clock()

    def person_ids(self, colour: str | None = None, proxy: bool | None = None) -> list[str]:
        """Ids in a stable order, optionally only those of one colour and/or proxy status."""
        with self._lock:
            return [
                p.id
                for p in self._people
                if (colour is None or p.colour == colour) and (proxy is None or p.proxy == proxy)
            ]

    def describe_people(self) -> list[dict[str, Any]]:
        """What the demo needs to pick visitors; names and phones masked like on a real platform."""
        with self._lock:
            return [
                {
                    "id": p.id,
                    "colour": p.colour,
                    "proxy": p.proxy,
                    "holder": mask_name(p.name),
                    "phone": mask_phone(p.phone) if p.phone else None,
                    "guardian": p.guardian,
                }
                for p in self._people
            ]

    def set_colour(self, person_id: str, colour: str) -> None:
        """Change a person's colour; codes already shown look up with the new colour from now on."""
        if colour not in COLOURS:
            raise ValueError(f"colour must be one of {', '.join(COLOURS)}, got {colour!r}")
        with self._lock:
            self._person(person_id).colour = colour

    def set_test(self, person_id: str, at: datetime, result: str = "negative") -> None:
        """Record a person's latest nucleic-acid test; lookups report it from now on."""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        if result not in ("negative", "positive", "pending"):
            raise ValueError(f"result must be negative, positive or pending, got {result!r}")
        with self._lock:
            person = self._person(person_id)
            person.test_at, person.test_result = at, result

    def _person(self, person_id: str) -> Person:
        try:
            return self._by_id[person_id]
        except KeyError:
            raise UnknownPersonError(person_id) from None

    # -- issuing -------------------------------------------------------------------------------

    def code_for(self, person_id: str, at: datetime | None = None) -> str:
        """The code the person's phone (or printed proxy code) shows at ``at`` (default: now)."""
        moment = self._clock() if at is None else at
        if moment.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        person = self._person(person_id)
        kind = _KIND_PROXY if person.proxy else _KIND_PHONE
        counter = (moment - _EPOCH) // _UNIT[kind]
        if not 0 <= counter < 2**32:
            raise ValueError(f"at is outside the platform's calendar: {moment.isoformat()}")
        body = _BODY.pack(kind, self._people.index(person) + 1, counter)
        return PREFIX + base64.b32encode(body + self._mac(body)).decode("ascii")

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    # -- looking up ----------------------------------------------------------------------------

    def family(self, phone: str) -> list[dict[str, str]]:
        """The family-proxy entries linked to the owner of this phone number, each as the code
        its printed card shows today and a masked name; empty for a number nobody registered, or
        whose owner has no proxy entries (the platform answers both alike, so a lookup does not
        tell whether a number is registered)."""
        with self._lock:
            owners = {p.id for p in self._people if p.phone is not None and p.phone == phone}
            linked = [p for p in self._people if p.guardian is not None and p.guardian in owners]
        return [{"code": self.code_for(p.id), "holder": mask_name(p.name)} for p in linked]

    def lookup(self, code: str) -> dict[str, Any] | None:
        """The platform's answer for a scanned code, or None for anything this platform did not issue."""
        if not isinstance(code, str) or len(code) != CODE_LENGTH or not code.startswith(PREFIX):
            return None
        text = code[len(PREFIX) :]
        try:
            raw = base64.b32decode(text.encode("ascii"))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None
        # Only the canonical spelling verifies, so no two texts stand for one code.
        if len(raw) != _CODE_BYTES or base64.b32encode(raw).decode("ascii") != text:
            return None
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        kind, number, counter = _BODY.unpack(body)
        if kind not in _UNIT or not 1 <= number <= len(self._people):
            return None
        person = self._people[number - 1]
        if (kind == _KIND_PROXY) != person.proxy:
            return None
        with self._lock:
            colour, test_at, test_result = person.colour, person.test_at, person.test_result
        answer = {
            "status": "ok",
            "colour": colour,
            "generated_at": _iso_z(_EPOCH + counter * _UNIT[kind]),
            "holder": mask_name(person.name),
            "proxy": person.proxy,
        }
        if test_at is not None:
            answer["test_at"] = _iso_z(test_at)
            answer["test_result"] = test_result
        return answer
