"""What a temperature measurement and a code verification hand to the decision.

Both are plain frozen values, so the decision stays a pure function of them. A code result also
answers for its own freshness (``CodeResult.stale``, ``CodeResult.tested_within``): the decision
applies the policy's limits without knowing which scheme the code came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

Colour = Literal["green", "yellow", "red", "unknown"]


class Reason(StrEnum):
    """Stable reason codes: they are logged, uploaded and mapped to on-screen text."""

    SENSOR_FAULT = "sensor_fault"
    FEVER = "fever"
    REMEASURE = "remeasure"
    CANNOT_VERIFY = "cannot_verify"
    UNKNOWN_CODE = "unknown_code"
    RED_CODE = "red_code"
    YELLOW_CODE = "yellow_code"
    STALE_CODE = "stale_code"
    # Signed credentials (EU DCC, SMART Health Cards) and the checks around every code.
    MALFORMED_CODE = "malformed_code"
    INCOMPLETE_CODE = "incomplete_code"
    INVALID_SIGNATURE = "invalid_signature"
    UNTRUSTED_ISSUER = "untrusted_issuer"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    REPLAYED = "replayed"
    TRUST_LIST_STALE = "trust_list_stale"
    CLOCK_UNSYNCHRONISED = "clock_unsynchronised"
    TEST_REQUIRED = "test_required"


@dataclass(frozen=True)
class TemperatureResult:
    """One settled measurement, or the reason there is none.

    ``celsius`` is the temperature the rules are applied to: the body temperature estimated from
    the skin reading (calibration offset included) by the site's model, rounded to 0.1 °C; it is
    None exactly when ``fault`` says why the sensor could not be trusted.
    ``readings`` holds every body estimate taken, in order: two when a raised first reading was
    measured again (``celsius`` is then the second). ``skin_c`` and ``ambient_c`` are the sensor's
    object and room readings behind ``celsius``; ``site`` is where it was measured.
    """

    celsius: float | None
    fault: str | None = None
    samples: int = 0
    readings: tuple[float, ...] = ()
    skin_c: float | None = None
    ambient_c: float | None = None
    site: str | None = None

    @classmethod
    def measured(
        cls,
        celsius: float,
        samples: int = 0,
        *,
        readings: tuple[float, ...] = (),
        skin_c: float | None = None,
        ambient_c: float | None = None,
        site: str | None = None,
    ) -> "TemperatureResult":
        rounded = round(celsius, 1)
        return cls(
            celsius=rounded,
            samples=samples,
            readings=tuple(round(r, 1) for r in readings) or (rounded,),
            skin_c=None if skin_c is None else round(skin_c, 2),
            ambient_c=None if ambient_c is None else round(ambient_c, 2),
            site=site,
        )

    @classmethod
    def failed(cls, fault: str) -> "TemperatureResult":
        return cls(celsius=None, fault=fault)


@dataclass(frozen=True)
class CodeResult:
    """What the issuing platform (or a verified signature) says about a scanned code.

    ``verified`` is False when the platform could not be asked or its answer made no sense;
    ``colour`` then is "unknown" and ``problem`` says what went wrong, for the daemon's log.
    ``code_hash`` is the keyed hash of the payload; the payload itself never leaves the scanner path.
    ``dynamic``: the code is current only for a short while after the platform generated it (a
    screenshot goes stale). A signed credential is not: its verifier judged its validity period.
    """

    verified: bool
    colour: Colour
    code_hash: str
    generated_at: datetime | None = None
    holder: str | None = None
    proxy: bool = False
    scheme: str = "platform"
    problem: str | None = None
    # Why the verifier refuses the code (``Reason`` values, e.g. "invalid_signature");
    # empty when it found nothing wrong. The decision refuses on any of them.
    reasons: tuple[str, ...] = ()
    # Who vouches for the code (the platform's name, a DCC country, a SMART Health Card issuer URL).
    issuer: str | None = None
    # When a signed credential stops being valid (None: no expiry, or a platform code).
    expires: datetime | None = None
    # The sample time of the holder's latest negative nucleic-acid test, if the code reports one.
    tested_at: datetime | None = None
    dynamic: bool = True

    def stale(self, now: datetime, max_age: timedelta, max_proxy_age: timedelta, skew: timedelta) -> bool:
        """Is this code too old (or from too far in the future) to stand for its holder now? A
        printed family-proxy code may be ``max_proxy_age`` old, any other dynamic code ``max_age``;
        a dynamic code without a generation time cannot be shown to be fresh."""
        if not self.dynamic:
            return False
        if self.generated_at is None:
            return True
        age = now - self.generated_at
        return age > (max_proxy_age if self.proxy else max_age) or age < -skew

    def tested_within(self, now: datetime, within: timedelta, skew: timedelta) -> bool:
        """Does the code report a negative test sampled no longer than ``within`` before now?"""
        tested = self.tested_at
        return tested is not None and now - tested <= within and tested - now <= skew
