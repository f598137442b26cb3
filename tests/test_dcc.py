"""EU Digital COVID Certificates: the public test corpus, then forgeries and edge cases of our own."""

from __future__ import annotations

import base64
import json
import re
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kiosk.codes.dcc import DccVerifier
from kiosk.codes.trust import DccSigner, TrustError, TrustStore
from kiosk.config import CodesSection
from kiosk.decision import Reason
from kiosk.sim.credentials import NEGATIVE, POSITIVE, DccIssuer

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "dcc"
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
ISSUED, EXPIRES = NOW - timedelta(days=30), NOW + timedelta(days=335)
VERIFIER = DccVerifier(CodesSection())

# Upstream cases whose expectation we do not meet, and why (see docs/codes.md, "Known issues").
KNOWN_ISSUES = {
    "common/CO15": "its signer certificate carries an empty ExtendedKeyUsage, which X.509 forbids "
                   "(SIZE 1..MAX); cryptography refuses to parse it, and a signer whose key usage cannot "
                   "be read is not trusted, so the certificate is refused as untrusted_issuer",
}
# The upstream's decoding steps, and what our refusal says when that step fails.
DECODING_STEPS = {
    "UNPREFIX": r"start with HC1:",
    "B45DECODE": r"Base45",
    "COMPRESSION": r"zlib|compress",
    "DECODE": r"CBOR|claims|certificate",
    "SCHEMAVALIDATION": r"certificate",
}
# What a refusal in the other steps of the upstream's test procedure looks like here.
SIGNATURE_REFUSALS = {Reason.INVALID_SIGNATURE, Reason.UNTRUSTED_ISSUER, Reason.MALFORMED_CODE}
TIME_REFUSALS = {Reason.EXPIRED, Reason.NOT_YET_VALID}
# Upstream files use a few misspelled flag names.
SPELLING = {"EXPTECTED": "EXPECTED", "_2DCODE": "2DCODE"}


def corpus_cases() -> list:
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"EU DCC corpus not found at {CORPUS}"))]
    cases = []
    for path in sorted(CORPUS.glob("*/2DCode/raw/*.json")):
        name = f"{path.parts[-4]}/{path.stem}"
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_ISSUES[name])] if name in KNOWN_ISSUES else []
        cases.append(pytest.param(path, id=name, marks=marks))
    return cases


def flags(case: dict) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for key, value in case.get("EXPECTEDRESULTS", {}).items():
        for wrong, right in SPELLING.items():
            key = key.replace(wrong, right)
        if key == "EXPECTEDEXPIRED":  # the inverse of the expiration check
            key, value = "EXPECTEDEXPIRATIONCHECK", not value
        found[key.removeprefix("EXPECTED")] = value
    return found


def corpus_store(case: dict) -> TrustStore:
    try:
        return TrustStore.build([DccSigner.from_der(base64.b64decode(case["TESTCTX"]["CERTIFICATE"]))])
    except TrustError:
        return TrustStore.build([])


@pytest.mark.parametrize("path", corpus_cases())
def test_corpus_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    expected = flags(case)
    clock = datetime.fromisoformat(case["TESTCTX"]["VALIDATIONCLOCK"])
    finding = VERIFIER.verify(case["PREFIX"], corpus_store(case), clock)
    reasons = set(finding.reasons)
    description = case["TESTCTX"].get("DESCRIPTION", "")
    # The decoding steps form a pipeline: one failing step makes the code malformed, and the
    # refusal names that step; when every listed step succeeds, nothing is malformed.
    failing = [step for step in DECODING_STEPS if expected.get(step) is False]
    listed = [step for step in DECODING_STEPS if step in expected]
    if failing:
        assert Reason.MALFORMED_CODE in reasons, (description, finding)
        assert re.search(DECODING_STEPS[failing[0]], finding.problem), (description, finding)
    elif listed:
        assert Reason.MALFORMED_CODE not in reasons, (description, finding)
    if "VERIFY" in expected:
        assert (not reasons & SIGNATURE_REFUSALS) == expected["VERIFY"], (description, finding)
    if "EXPIRATIONCHECK" in expected:
        assert (not reasons & TIME_REFUSALS) == expected["EXPIRATIONCHECK"], (description, finding)
    if "KEYUSAGE" in expected:
        assert (Reason.UNTRUSTED_ISSUER not in reasons) == expected["KEYUSAGE"], (description, finding)
    if not reasons:
        assert finding.colour in ("green", "yellow", "red") and finding.expires is not None and finding.issuer
    else:
        assert finding.colour == "unknown" and finding.problem


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"EU DCC corpus not found at {CORPUS}")
def test_corpus_covers_every_case_with_an_expectation() -> None:
    paths = sorted(CORPUS.glob("*/2DCode/raw/*.json"))
    assert len(paths) == 83
    checked = {"UNPREFIX", "B45DECODE", "COMPRESSION", "DECODE", "SCHEMAVALIDATION", "VERIFY", "EXPIRATIONCHECK", "KEYUSAGE"}
    # Every case but the one that only tests reading its QR picture is checked by at least one flag.
    unchecked = [p.stem for p in paths if not set(flags(json.loads(p.read_text()))) & checked]
    assert unchecked == ["Q1"]


# -- our own certificates -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> DccIssuer:
    return DccIssuer()


@pytest.fixture(scope="module")
def store(issuer: DccIssuer) -> TrustStore:
    return TrustStore.build([issuer.signer()])


def verify(payload: str, store: TrustStore, now: datetime = NOW, codes: CodesSection | None = None):
    return DccVerifier(codes or CodesSection()).verify(payload, store, now)


def test_valid_vaccination_is_green_with_issuer_and_expiry(issuer: DccIssuer, store: TrustStore) -> None:
    finding = verify(issuer.issue(ISSUED, EXPIRES), store)
    assert finding.reasons == () and finding.colour == "green"
    assert finding.issuer == "XX" and finding.expires == EXPIRES
    assert finding.signed  # the replay guard's key material


def test_rsa_pss_signer() -> None:
    rsa_issuer = DccIssuer(key=rsa.generate_private_key(public_exponent=65537, key_size=2048), country="YY")
    finding = verify(rsa_issuer.issue(ISSUED, EXPIRES), TrustStore.build([rsa_issuer.signer()]))
    assert finding.reasons == () and finding.colour == "green" and finding.issuer == "YY"


def test_kid_in_unprotected_header_and_cwt_tag(issuer: DccIssuer, store: TrustStore) -> None:
    assert verify(issuer.issue(ISSUED, EXPIRES, kid_unprotected=True), store).colour == "green"
    assert verify(issuer.issue(ISSUED, EXPIRES, cwt_tag=True), store).colour == "green"


def test_forged_claims_do_not_verify(issuer: DccIssuer, store: TrustStore) -> None:
    finding = verify(issuer.issue(ISSUED, EXPIRES, tamper=True), store)
    assert finding.reasons == (Reason.INVALID_SIGNATURE,) and finding.colour == "unknown"


def test_signed_by_someone_else_under_a_trusted_kid(issuer: DccIssuer, store: TrustStore) -> None:
    forger = DccIssuer(country="ZZ")
    finding = verify(forger.issue(ISSUED, EXPIRES, kid=issuer.kid), store)
    assert finding.reasons == (Reason.INVALID_SIGNATURE,)


def test_unknown_kid_is_an_untrusted_signer(issuer: DccIssuer, store: TrustStore) -> None:
    finding = verify(DccIssuer(country="ZZ").issue(ISSUED, EXPIRES), store)
    assert finding.reasons == (Reason.UNTRUSTED_ISSUER,) and "kid" in finding.problem


def test_every_certificate_sharing_a_kid_is_tried(issuer: DccIssuer) -> None:
    other = DccIssuer(country="ZZ")
    # Two signers under one kid: the first does not fit, the second does.
    shared = TrustStore.build([DccSigner.from_der(other.der, kid=issuer.kid), issuer.signer()])
    assert len(shared.dcc[issuer.kid]) == 2
    assert verify(issuer.issue(ISSUED, EXPIRES), shared).colour == "green"
    stranger = DccIssuer(country="QQ")
    finding = verify(stranger.issue(ISSUED, EXPIRES, kid=issuer.kid), shared)
    assert finding.reasons == (Reason.INVALID_SIGNATURE,) and "2 signer(s)" in finding.problem


def test_algorithm_must_fit_the_key(issuer: DccIssuer, store: TrustStore) -> None:
    payload = issuer.issue(ISSUED, EXPIRES)
    message = cbor2.loads(zlib.decompress(base45.b45decode(payload[4:])))
    protected = cbor2.dumps({1: -37, 4: issuer.kid})  # claims PS256 for an EC key
    message = cbor2.CBORTag(18, [protected, {}, message.value[2], message.value[3]])
    relabelled = "HC1:" + base45.b45encode(zlib.compress(cbor2.dumps(message))).decode()
    assert verify(relabelled, store).reasons == (Reason.INVALID_SIGNATURE,)


@pytest.mark.parametrize(
    ("issued", "expires", "now", "reason"),
    [
        (ISSUED, NOW - timedelta(seconds=1), NOW, Reason.EXPIRED),
        (ISSUED, NOW, NOW, Reason.EXPIRED),  # valid until, not including, exp
        (NOW + timedelta(minutes=5), EXPIRES, NOW, Reason.NOT_YET_VALID),
        (NOW + timedelta(seconds=5), EXPIRES, NOW, None),  # within the clock skew
    ],
    ids=["expired", "expires-now", "issued-in-the-future", "issued-within-skew"],
)
def test_validity_period(issuer, store, issued, expires, now, reason) -> None:
    finding = verify(issuer.issue(issued, expires), store, now)
    assert finding.reasons == ((reason,) if reason else ())
    assert (finding.colour == "unknown") == (reason is not None)


def test_key_usage_limits_what_a_signer_may_sign() -> None:
    test_only = DccIssuer(country="TT", kinds="t")
    store = TrustStore.build([test_only.signer()])
    assert verify(test_only.issue(ISSUED, EXPIRES, "t"), store).colour == "green"
    finding = verify(test_only.issue(ISSUED, EXPIRES, "v"), store)
    assert finding.reasons == (Reason.UNTRUSTED_ISSUER,) and "vaccination" in finding.problem


@pytest.mark.parametrize(
    ("kind", "entry", "colour"),
    [
        ("v", {"dn": 2, "sd": 2}, "green"),
        ("v", {"dn": 3, "sd": 2}, "green"),
        ("v", {"dn": 1, "sd": 2}, "yellow"),
        ("r", {}, "green"),
        ("t", {"result": NEGATIVE}, "green"),
        ("t", {"result": POSITIVE}, "red"),
    ],
)
def test_colour_policy(issuer, store, kind, entry, colour) -> None:
    assert verify(issuer.issue(ISSUED, EXPIRES, kind, **entry), store).colour == colour


def test_colour_policy_is_configurable(issuer, store) -> None:
    strict = CodesSection(dcc_recovered="yellow", dcc_partly_vaccinated="red")
    assert verify(issuer.issue(ISSUED, EXPIRES, "r"), store, codes=strict).colour == "yellow"
    assert verify(issuer.issue(ISSUED, EXPIRES, "v", dn=1, sd=2), store, codes=strict).colour == "red"


def test_negative_test_reports_its_sample_time(issuer, store) -> None:
    sampled = NOW - timedelta(hours=20)
    finding = verify(issuer.issue(ISSUED, EXPIRES, "t", sampled=sampled), store)
    assert finding.tested_at == sampled and finding.colour == "green"


@pytest.mark.parametrize(
    "dgc",
    [
        {"ver": "1.3.0", "nam": {"fn": "A"}, "dob": "1980-01-01"},  # no entry at all
        {**DccIssuer.certificate_entry("v"), "t": DccIssuer.certificate_entry("t")["t"]},  # two kinds
        {**DccIssuer.certificate_entry("v"), "v": DccIssuer.certificate_entry("v")["v"] * 2},  # two entries
        {**DccIssuer.certificate_entry("t"), "t": [{"tr": "something else"}]},  # unknown test result
        "a string",
    ],
    ids=["no-entry", "two-kinds", "two-entries", "unknown-test-result", "not-a-map"],
)
def test_malformed_certificates(issuer, store, dgc) -> None:
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc=dgc), store).reasons == (Reason.MALFORMED_CODE,)


def test_claims_without_times_are_malformed(issuer, store) -> None:
    claims = {1: "XX", -260: {1: DccIssuer.certificate_entry("v")}}
    assert verify(issuer.issue(ISSUED, EXPIRES, claims=claims), store).reasons == (Reason.MALFORMED_CODE,)


def _reencode(payload: str, transform) -> str:
    return "HC1:" + base45.b45encode(transform(zlib.decompress(base45.b45decode(payload[4:])))).decode()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:-1],
        lambda p: p[: len(p) // 2],
        lambda p: p[:4],
        lambda p: p + "A",
        lambda p: p + "\n",
        lambda p: p + " ",
        lambda p: " " + p,
        lambda p: "hc1:" + p[4:],
        lambda p: "HC2:" + p[4:],
        lambda p: "\ufeff" + p,
        lambda p: p[4:],
        lambda p: p.replace("HC1:", "HC1:a", 1),
        lambda p: _reencode(p, lambda cose: zlib.compress(cose + b"\x00")),  # trailing CBOR byte
        lambda p: _reencode(p, lambda cose: zlib.compress(cose) + b"\x00"),  # trailing zlib byte
        lambda p: _reencode(p, lambda cose: zlib.compress(cose)[:-3]),  # truncated zlib
        lambda p: _reencode(p, lambda cose: cose),  # not compressed
        lambda p: "HC1:" + base45.b45encode(zlib.compress(b"\x00" * 5_000_000)).decode(),  # zlib bomb
    ],
    ids=["cut-1", "cut-half", "prefix-only", "padded", "newline", "space", "leading-space", "lower-case",
         "HC2", "bom", "no-prefix", "lower-char", "trailing-cbor", "trailing-zlib", "truncated-zlib",
         "uncompressed", "zlib-bomb"],
)
def test_truncated_and_padded_payloads_are_malformed(issuer, store, mangle) -> None:
    finding = verify(mangle(issuer.issue(ISSUED, EXPIRES)), store)
    assert finding.reasons == (Reason.MALFORMED_CODE,) and finding.colour == "unknown"


def test_certificate_with_unreadable_extensions_is_not_trusted() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"EU DCC corpus not found at {CORPUS}")
    case = json.loads((CORPUS / "common/2DCode/raw/CO15.json").read_text())
    with pytest.raises(TrustError, match="extensions"):
        DccSigner.from_der(base64.b64decode(case["TESTCTX"]["CERTIFICATE"]))
