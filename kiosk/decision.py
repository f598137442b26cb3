"""The pass/refuse rules: a pure function of (temperature, code, policy, now).

Everything with side effects (screen, lights, log, upload) sits around this module; nothing here
reads a clock, a file or the network, so every combination is tested as a table. It names no code
scheme: whether a code is fresh is the code result's to say (``kiosk.results.CodeResult``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kiosk.config import Config
from kiosk.results import CodeResult, Reason, TemperatureResult

Outcome = Literal["PASS", "REFUSE"]


@dataclass(frozen=True)
class Policy:
    fever_c: float = 37.3
    cold_floor_c: float = 35.5
    max_code_age: timedelta = timedelta(seconds=90)
    max_proxy_code_age: timedelta = timedelta(hours=24)
    clock_skew: timedelta = timedelta(seconds=10)
    # When set, a negative nucleic-acid test no older than this is required (None: no test rule).
    test_within: timedelta | None = None

    @classmethod
    def from_config(cls, config: Config) -> "Policy":
        return cls(
            fever_c=config.thermometer.fever_c,
            cold_floor_c=config.thermometer.cold_floor_c,
            max_code_age=timedelta(seconds=config.platform.max_code_age_s),
            max_proxy_code_age=timedelta(seconds=config.platform.max_proxy_code_age_s),
            clock_skew=timedelta(seconds=config.platform.clock_skew_s),
            test_within=timedelta(hours=config.codes.test_within_h) if config.codes.test_within_h else None,
        )


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[Reason, ...]

    @property
    def passed(self) -> bool:
        return self.outcome == "PASS"


def _temperature_reasons(temperature: TemperatureResult, policy: Policy) -> list[Reason]:
    if temperature.fault is not None or temperature.celsius is None:
        return [Reason.SENSOR_FAULT]
    if temperature.celsius >= policy.fever_c:
        return [Reason.FEVER]
    if temperature.celsius < policy.cold_floor_c:
        return [Reason.REMEASURE]
    return []


def _verifier_reason(value: str) -> Reason:
    try:
        return Reason(value)
    except ValueError:  # a reason this version does not know: still a refusal
        return Reason.CANNOT_VERIFY


def code_reasons(code: CodeResult, policy: Policy, now: datetime) -> list[Reason]:
    """Every reason the code alone refuses entry: the verifier's own first, then colour, freshness, test."""
    reasons = [_verifier_reason(value) for value in code.reasons]
    if not code.verified:
        return reasons or [Reason.CANNOT_VERIFY]
    if code.colour not in ("green", "yellow", "red"):
        return reasons or [Reason.UNKNOWN_CODE]
    if code.colour == "red":
        reasons.append(Reason.RED_CODE)
    elif code.colour == "yellow":
        reasons.append(Reason.YELLOW_CODE)
    if code.stale(now, policy.max_code_age, policy.max_proxy_code_age, policy.clock_skew):
        reasons.append(Reason.STALE_CODE)
    if policy.test_within is not None and not code.tested_within(now, policy.test_within, policy.clock_skew):
        reasons.append(Reason.TEST_REQUIRED)
    return list(dict.fromkeys(reasons))


def decide(temperature: TemperatureResult, code: CodeResult, policy: Policy, now: datetime) -> Verdict:
    """PASS only when the temperature is normal and a fresh code is verified green; otherwise REFUSE
    with every reason that applies, the temperature's first."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    reasons = _temperature_reasons(temperature, policy) + code_reasons(code, policy, now)
    return Verdict("REFUSE", tuple(reasons)) if reasons else Verdict("PASS", ())
