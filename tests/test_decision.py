"""The pass/refuse rules, as a table over every combination of temperature and code."""

from datetime import datetime, timedelta, timezone
from itertools import product

import pytest

from kiosk.decision import Policy, decide
from kiosk.results import CodeResult, Reason, TemperatureResult

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
POLICY = Policy(fever_c=37.3, cold_floor_c=35.5, max_code_age=timedelta(seconds=90),
                max_proxy_code_age=timedelta(hours=24), clock_skew=timedelta(seconds=10))

TEMPERATURES = {
    "normal": (TemperatureResult.measured(36.6), []),
    "at_threshold": (TemperatureResult.measured(37.3), [Reason.FEVER]),
    "fever": (TemperatureResult.measured(38.4), [Reason.FEVER]),
    "cold": (TemperatureResult.measured(33.2), [Reason.REMEASURE]),
    "just_warm_enough": (TemperatureResult.measured(35.5), []),
    "fault": (TemperatureResult.failed("thermometer not answering"), [Reason.SENSOR_FAULT]),
}


def code(colour="green", age_s=5.0, verified=True, generated=True, proxy=False, scheme="platform", reasons=(),
         tested_h=None):
    generated_at = NOW - timedelta(seconds=age_s) if generated else None
    tested_at = NOW - timedelta(hours=tested_h) if tested_h is not None else None
    # Platform codes are dynamic; a signed credential's result says it is not (as the router's does).
    return CodeResult(verified=verified, colour=colour, code_hash="h", generated_at=generated_at, proxy=proxy,
                      scheme=scheme, reasons=reasons, tested_at=tested_at, dynamic=scheme == "platform")


CODES = {
    "green": (code("green"), []),
    "yellow": (code("yellow"), [Reason.YELLOW_CODE]),
    "red": (code("red"), [Reason.RED_CODE]),
    "unknown": (code("unknown", generated=False), [Reason.UNKNOWN_CODE]),
    "proxy_printed_this_morning": (code("green", age_s=5 * 3600, proxy=True), []),
    "proxy_from_yesterday": (code("green", age_s=25 * 3600, proxy=True), [Reason.STALE_CODE]),
    "proxy_red": (code("red", age_s=3600, proxy=True), [Reason.RED_CODE]),
    "stale_green": (code("green", age_s=600), [Reason.STALE_CODE]),
    "stale_yellow": (code("yellow", age_s=600), [Reason.YELLOW_CODE, Reason.STALE_CODE]),
    "edge_of_age": (code("green", age_s=90), []),
    "future_within_skew": (code("green", age_s=-8), []),
    "future_beyond_skew": (code("green", age_s=-60), [Reason.STALE_CODE]),
    "no_generation_time": (code("green", generated=False), [Reason.STALE_CODE]),
    "unverified": (code("unknown", verified=False, generated=False), [Reason.CANNOT_VERIFY]),
    "unverified_claims_green": (code("green", verified=False), [Reason.CANNOT_VERIFY]),
    # Signed certificates carry no generation time: their validity is the verifier's iat/exp check.
    "dcc_green": (code("green", generated=False, scheme="dcc"), []),
    "shc_green": (code("green", generated=False, scheme="shc"), []),
    "dcc_positive_test": (code("red", generated=False, scheme="dcc"), [Reason.RED_CODE]),
    "dcc_expired": (code("unknown", generated=False, scheme="dcc", reasons=("expired",)), [Reason.EXPIRED]),
    "shc_revoked": (code("unknown", generated=False, scheme="shc", reasons=("revoked",)), [Reason.REVOKED]),
    "forged": (code("unknown", generated=False, scheme="dcc", reasons=("invalid_signature",)),
               [Reason.INVALID_SIGNATURE]),
    "stale_trust_list_red": (code("red", generated=False, scheme="dcc", reasons=("trust_list_stale",)),
                             [Reason.TRUST_LIST_STALE, Reason.RED_CODE]),
    "clock_and_expiry": (code("unknown", generated=False, scheme="shc", reasons=("clock_unsynchronised", "expired")),
                         [Reason.CLOCK_UNSYNCHRONISED, Reason.EXPIRED]),
    "replayed_screenshot": (code("green", reasons=("replayed",)), [Reason.REPLAYED]),
    "reason_from_a_newer_version": (code("green", reasons=("something_new",)), [Reason.CANNOT_VERIFY]),
    "unreachable_with_reason": (code("unknown", verified=False, generated=False, reasons=("trust_list_stale",)),
                                [Reason.TRUST_LIST_STALE]),
}


@pytest.mark.parametrize(("temp_name", "code_name"), list(product(TEMPERATURES, CODES)))
def test_every_combination(temp_name, code_name):
    temperature, temp_reasons = TEMPERATURES[temp_name]
    code_result, code_reasons = CODES[code_name]
    verdict = decide(temperature, code_result, POLICY, NOW)
    expected = temp_reasons + code_reasons
    assert verdict.reasons == tuple(expected)
    assert verdict.outcome == ("PASS" if not expected else "REFUSE")
    assert verdict.passed == (not expected)


def test_only_green_normal_fresh_passes():
    passing = {
        (t, c)
        for t, c in product(TEMPERATURES, CODES)
        if decide(TEMPERATURES[t][0], CODES[c][0], POLICY, NOW).passed
    }
    assert passing == set(product(["normal", "just_warm_enough"],
                                  ["green", "edge_of_age", "future_within_skew", "proxy_printed_this_morning",
                                   "dcc_green", "shc_green"]))


def test_fever_refuses_even_with_green_code():
    verdict = decide(TemperatureResult.measured(37.8), code("green"), POLICY, NOW)
    assert verdict.outcome == "REFUSE" and verdict.reasons == (Reason.FEVER,)


def test_policy_threshold_comes_from_config():
    from kiosk.config import parse

    policy = Policy.from_config(parse({"thermometer": {"fever_c": 37.0}, "platform": {"max_code_age_s": 30}}))
    assert decide(TemperatureResult.measured(37.1), code("green"), policy, NOW).reasons == (Reason.FEVER,)
    assert decide(TemperatureResult.measured(36.5), code("green", age_s=45), policy, NOW).reasons == (Reason.STALE_CODE,)


def test_naive_clock_is_a_programming_error():
    with pytest.raises(ValueError):
        decide(TemperatureResult.measured(36.6), code(), POLICY, datetime(2026, 1, 1))


def test_every_reason_has_a_row_in_the_table():
    """Each reason the kiosk can give shows up in some combination above (or in the test rule below)."""
    seen = {reason for _, reasons in TEMPERATURES.values() for reason in reasons}
    seen |= {reason for _, reasons in CODES.values() for reason in reasons}
    assert set(Reason) - seen == {Reason.TEST_REQUIRED, Reason.MALFORMED_CODE, Reason.INCOMPLETE_CODE,
                                  Reason.UNTRUSTED_ISSUER, Reason.NOT_YET_VALID}
    for value in ("malformed_code", "incomplete_code", "untrusted_issuer", "not_yet_valid"):
        verdict = decide(TemperatureResult.measured(36.6), code("unknown", scheme="dcc", reasons=(value,)), POLICY, NOW)
        assert verdict.reasons == (Reason(value),)


@pytest.mark.parametrize(
    ("tested_h", "expected"),
    [(None, (Reason.TEST_REQUIRED,)), (47.9, ()), (48.1, (Reason.TEST_REQUIRED,)), (-0.001, ()), (-1, (Reason.TEST_REQUIRED,))],
    ids=["no-test", "within", "too-old", "future-within-skew", "future-beyond-skew"],
)
def test_test_rule(tested_h, expected):
    strict = Policy(test_within=timedelta(hours=48), clock_skew=timedelta(seconds=10))
    verdict = decide(TemperatureResult.measured(36.6), code("green", tested_h=tested_h), strict, NOW)
    assert verdict.reasons == expected
    # Off by default: the same code passes whatever its test.
    assert decide(TemperatureResult.measured(36.6), code("green", tested_h=tested_h), POLICY, NOW).passed


def test_test_rule_comes_from_config():
    from kiosk.config import parse

    assert Policy.from_config(parse({})).test_within is None
    assert Policy.from_config(parse({"codes": {"test_within_h": 72}})).test_within == timedelta(hours=72)
