"""What a temperature measurement and a code verification hand to the decision.

Both are plain frozen values, so the decision stays a pure function of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Colour = Literal["green", "yellow", "red", "unknown"]


@dataclass(frozen=True)
class TemperatureResult:
    """One settled measurement, or the reason there is none.

    ``celsius`` is the temperature the rules are applied to (offset included), rounded to 0.1 °C;
    it is None exactly when ``fault`` says why the sensor could not be trusted.
    """

    celsius: float | None
    fault: str | None = None
    samples: int = 0

    @classmethod
    def measured(cls, celsius: float, samples: int = 0) -> "TemperatureResult":
        return cls(celsius=round(celsius, 1), samples=samples)

    @classmethod
    def failed(cls, fault: str) -> "TemperatureResult":
        return cls(celsius=None, fault=fault)


@dataclass(frozen=True)
class CodeResult:
    """What the issuing platform (or, later, a verified signature) says about a scanned code.

    ``verified`` is False when the platform could not be asked or its answer made no sense;
    ``colour`` then is "unknown" and ``problem`` says what went wrong, for the daemon's log.
    ``code_hash`` is the keyed hash of the payload; the payload itself never leaves the scanner path.
    """

    verified: bool
    colour: Colour
    code_hash: str
    generated_at: datetime | None = None
    holder: str | None = None
    proxy: bool = False
    scheme: str = "platform"
    problem: str | None = None
