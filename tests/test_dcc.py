"""EU Digital COVID Certificates: the public test corpus and real issuers' certificates, then
forgeries, hostile fields and edge cases of our own."""

from __future__ import annotations

import base64
import json
import logging
import re
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import base45
import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kiosk.codes.dcc import DccVerifier
from kiosk.codes.trust import DccSigner, TrustError, TrustStore, dcc_kid
from kiosk.config import CodesSection
from kiosk.results import Reason
from kiosk.sim.credentials import NEGATIVE, POSITIVE, DccIssuer

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "dcc"
# Certificates of more issuers from the same public suite (see tests/data/dcc-testdata/README.md).
ISSUERS = Path(__file__).resolve().parent / "data" / "dcc-testdata"
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
ISSUED, EXPIRES = NOW - timedelta(days=30), NOW + timedelta(days=335)
VERIFIER = DccVerifier(CodesSection())

# Cases where the suite's expectation contradicts the certificate or the suite's own rules: what
# the kiosk says instead, and why (docs/codes.md, "Known issues in the upstream corpora").
DISAGREEMENTS: dict[str, tuple[tuple[Reason, ...], str]] = {
    **{f"BG/{n}": ((), "EXPTECTEDEXPIRED is no flag of the suite, and all four certificates are within "
                       "their iat..exp at the validation clock") for n in (1, 3, 4)},
    "BG/2": ((Reason.MALFORMED_CODE,), "dob and the recovery dates are date-times, which the DCC schema "
                                       "does not allow for dates"),
    **{f"FI/{n}": ((), "the signer certificate has no extended key usage, which lets it sign every kind "
                       "(the suite's own common/CO15), yet KEYUSAGE is false") for n in (2, 3)},
    "FI/4": ((Reason.EXPIRED,), "the validation clock (2022-06-11) is after exp (2022-06-09), yet the "
                                "expiration check is expected to pass; and KEYUSAGE as for FI/2"),
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
    cases = []
    if CORPUS.is_dir():
        cases += [pytest.param(path, id=f"{path.parts[-4]}/{path.stem}") for path in sorted(CORPUS.glob("*/2DCode/raw/*.json"))]
    else:
        cases.append(pytest.param(None, marks=pytest.mark.skip(reason=f"EU DCC corpus not found at {CORPUS}")))
    cases += [pytest.param(path, id=f"{path.parent.name}/{path.stem}") for path in sorted(ISSUERS.glob("*/*.json"))]
    return cases


def validation_clock(text: str) -> datetime:
    """The suite's clocks: ISO 8601, some with nanoseconds, some a bare date (taken as UTC)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
    name = f"{path.parts[-4]}/{path.stem}" if path.is_relative_to(CORPUS) else f"{path.parent.name}/{path.stem}"
    clock = validation_clock(case["TESTCTX"]["VALIDATIONCLOCK"])
    finding = VERIFIER.verify(case["PREFIX"], corpus_store(case), clock)
    reasons = set(finding.reasons)
    description = case["TESTCTX"].get("DESCRIPTION", "")
    if name in DISAGREEMENTS:
        expected_reasons, why = DISAGREEMENTS[name]
        assert finding.reasons == expected_reasons, (why, finding)
        return
    expected = flags(case)
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


def test_real_issuers_certificates_are_reported_under_their_signers_country() -> None:
    """Every real issuer's valid certificate verifies, under the country of its signer."""
    valid = [path for path in sorted(ISSUERS.glob("*/*.json")) if f"{path.parent.name}/{path.stem}" not in DISAGREEMENTS]
    assert len(valid) >= 25
    for path in valid:
        case = json.loads(path.read_text(encoding="utf-8"))
        if flags(case).get("VERIFY") is False:
            continue
        finding = VERIFIER.verify(case["PREFIX"], corpus_store(case), validation_clock(case["TESTCTX"]["VALIDATIONCLOCK"]))
        assert finding.reasons == () and finding.issuer == path.parent.name, (path, finding)


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
        ("v", {"dn": 2**64, "sd": 2}, None),  # out of the schema's 1..9: refused, never a complete series
        ("r", {}, "green"),
        ("t", {"result": NEGATIVE}, "green"),
        ("t", {"result": POSITIVE}, "red"),
    ],
)
def test_colour_policy(issuer, store, kind, entry, colour) -> None:
    finding = verify(issuer.issue(ISSUED, EXPIRES, kind, **entry), store)
    if colour is None:
        assert finding.reasons == (Reason.MALFORMED_CODE,)
    else:
        assert finding.colour == colour


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
        {**DccIssuer.certificate_entry("v"), "v": []},  # an empty group
        {**DccIssuer.certificate_entry("t"), "t": [{"tr": "something else"}]},  # unknown test result
        "a string",
    ],
    ids=["no-entry", "two-kinds", "empty-group", "unknown-test-result", "not-a-map"],
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


def corpus_certificate(name: str) -> bytes:
    path = CORPUS / f"{name.split('/')[0]}/2DCode/raw/{name.split('/')[1]}.json"
    if not path.is_file():
        path = ISSUERS / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{name} not found")
    return base64.b64decode(json.loads(path.read_text())["TESTCTX"]["CERTIFICATE"])


@pytest.mark.parametrize(
    ("name", "quirk", "country"),
    [("common/CO15", "extensions", None), ("FI/1", "EncodedDefault", "FI")],
    ids=["empty-extended-key-usage", "basic-constraints-default-encoded"],
)
def test_certificates_cryptography_refuses_are_read_leniently(caplog, name: str, quirk: str, country: str | None) -> None:
    der = corpus_certificate(name)
    with pytest.raises(ValueError):  # what made these certificates unusable before
        x509.load_der_x509_certificate(der).extensions
    with caplog.at_level(logging.INFO, logger="kiosk.codes.trust"):
        signer = DccSigner.from_der(der)
    assert signer.kinds is None  # no usable extended key usage: it may sign every kind
    assert signer.country == country and isinstance(signer.public_key, ec.EllipticCurvePublicKey)
    assert "read leniently" in caplog.text and quirk in caplog.text


def test_lenient_reading_keeps_the_key_usage_limits() -> None:
    """A certificate with a DER quirk still has its extended key usage read, and obeyed."""
    issuer = DccIssuer(country="TT", kinds="t")
    quirky = _with_encoded_default_basic_constraints(issuer)
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(quirky.der).extensions
    signer = DccSigner.from_der(quirky.der, country="TT")
    assert signer.kinds == frozenset({"t"})
    store = TrustStore.build([signer])
    assert verify(quirky.issue(ISSUED, EXPIRES, "t"), store).colour == "green"
    assert verify(quirky.issue(ISSUED, EXPIRES, "v"), store).reasons == (Reason.UNTRUSTED_ISSUER,)


def _with_encoded_default_basic_constraints(issuer: DccIssuer) -> DccIssuer:
    """The issuer's certificate re-signed with BasicConstraints(cA FALSE) encoded explicitly, as
    the Finnish signers have it (DER forbids encoding a default value)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.hashes import SHA256

    certificate = asn1_x509.Certificate.load(issuer.der)
    tbs = certificate["tbs_certificate"]
    extensions = list(tbs["extensions"]) if tbs["extensions"].native else []
    # Loaded from its bytes, the value keeps its explicit cA FALSE when dumped again.
    explicit_default = asn1_x509.BasicConstraints.load(bytes.fromhex("3003010100"))
    extensions.append(asn1_x509.Extension({"extn_id": "basic_constraints", "critical": True,
                                           "extn_value": explicit_default}))
    tbs["extensions"] = asn1_x509.Extensions(extensions)
    tbs_der = tbs.dump()
    assert bytes.fromhex("0405") + bytes.fromhex("3003010100") in tbs_der
    signature = issuer.key.sign(tbs_der, ec.ECDSA(SHA256()))
    algorithm = certificate["signature_algorithm"].dump()
    body = tbs_der + algorithm + bytes([0x03]) + _der_length(len(signature) + 1) + b"\x00" + signature
    der = bytes([0x30]) + _der_length(len(body)) + body
    quirky = DccIssuer.__new__(DccIssuer)
    quirky.__dict__.update(issuer.__dict__)
    quirky.der, quirky.kid = der, dcc_kid(der)
    return quirky


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_unreadable_certificates_are_still_refused() -> None:
    with pytest.raises(TrustError, match="not an X.509 certificate"):
        DccSigner.from_der(b"\x30\x03\x02\x01\x00")
    truncated = DccIssuer().der[:-10]
    with pytest.raises(TrustError):
        DccSigner.from_der(truncated)


# -- hostile fields: every malformed field is a refusal, never an exception -----------------------


def _signed_with_header(issuer: DccIssuer, protected: dict, unprotected: dict | None = None, claims: dict | None = None) -> str:
    claims = claims if claims is not None else {1: "XX", 4: int(EXPIRES.timestamp()), 6: int(ISSUED.timestamp()),
                                                 -260: {1: DccIssuer.certificate_entry("v")}}
    protected_bytes = cbor2.dumps(protected)
    payload = cbor2.dumps(claims)
    signature = issuer.sign(cbor2.dumps(["Signature1", protected_bytes, b"", payload]))
    message = cbor2.CBORTag(18, [protected_bytes, unprotected or {}, payload, signature])
    return "HC1:" + base45.b45encode(zlib.compress(cbor2.dumps(message))).decode()


def _shared_list() -> bytes:
    """A CBOR value that is a shared reference to a list (tags 28 and 29)."""
    return b"\xd8\x1c\x82\x01\x02"


@pytest.mark.parametrize(
    "alg",
    [[-7], {1: -7}, True, None, "ES256", b"\xf9", 2**80, -(2**80), 1.5, float("nan"), cbor2.CBORTag(99, -7)],
    ids=["list", "map", "bool", "null", "text", "bytes", "huge", "huge-negative", "float", "nan", "tag"],
)
def test_algorithm_of_any_type_is_refused(issuer, store, alg) -> None:
    finding = verify(_signed_with_header(issuer, {1: alg, 4: issuer.kid}), store)
    assert finding.reasons in ((Reason.MALFORMED_CODE,), (Reason.INVALID_SIGNATURE,)) and finding.colour == "unknown"


def test_algorithm_as_a_shared_reference_is_refused(issuer, store) -> None:
    # The issue's 54-character code: an unsigned HC1: whose protected header alg is a shared list.
    protected = b"\xa2\x01" + _shared_list() + b"\x04\x41\x00"
    message = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, b"", b""]))
    payload = "HC1:" + base45.b45encode(zlib.compress(message)).decode()
    assert len(payload) < 80
    assert verify(payload, store).reasons == (Reason.MALFORMED_CODE,)
    for alg in ([1, 2], {1: 2}):
        tiny = cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: alg}), {}, b"", b""]))
        assert verify("HC1:" + base45.b45encode(zlib.compress(tiny)).decode(), store).reasons == (Reason.MALFORMED_CODE,)


@pytest.mark.parametrize("kid", [[b"k"], {1: b"k"}, "kid", 7, True, b"\x00" * 65], ids=["list", "map", "text", "int", "bool", "long"])
def test_key_id_of_any_type_is_refused(issuer, store, kid) -> None:
    assert verify(_signed_with_header(issuer, {1: -7, 4: kid}), store).reasons == (Reason.MALFORMED_CODE,)
    assert verify(_signed_with_header(issuer, {1: -7}, {4: kid}), store).reasons == (Reason.MALFORMED_CODE,)


@pytest.mark.parametrize(
    ("claim", "value"),
    [(4, 10**400), (6, 10**400), (4, -(10**400)), (6, float("inf")), (4, float("nan")), (6, -1), (4, 10**13),
     (5, "2021-01-01"), (5, 10**400), (5, [1]), (1, [1]), (1, {"c": "XX"}), (1, b"XX"), (-260, [1]), (-260, {1: b"\xa0"})],
    ids=["exp-huge", "iat-huge", "exp-huge-negative", "iat-inf", "exp-nan", "iat-negative", "exp-year-318857",
         "nbf-text", "nbf-huge", "nbf-list", "iss-list", "iss-map", "iss-bytes", "hcert-list", "dgc-bytes"],
)
def test_claims_of_the_wrong_type_or_size_are_malformed(issuer, store, claim, value) -> None:
    claims = {1: "XX", 4: int(EXPIRES.timestamp()), 6: int(ISSUED.timestamp()), -260: {1: DccIssuer.certificate_entry("v")}}
    claims[claim] = value
    assert verify(issuer.issue(ISSUED, EXPIRES, claims=claims), store).reasons == (Reason.MALFORMED_CODE,)


@pytest.mark.parametrize(
    "value",
    [cbor2.CBORTag(2, b"\xff" * 600), cbor2.CBORTag(30, [1, 3]), cbor2.CBORTag(35, "(a+)+$"),
     cbor2.CBORTag(258, [1, 2]), cbor2.CBORTag(37, b"\x00" * 16), cbor2.CBORTag(99, "x"),
     cbor2.undefined, cbor2.CBORSimpleValue(99), float("-inf")],
    ids=["bignum", "fraction", "regex", "set", "uuid", "unknown-tag", "undefined", "simple", "infinity"],
)
def test_cbor_values_a_certificate_cannot_hold_are_malformed(issuer, store, value) -> None:
    dgc = DccIssuer.certificate_entry("v")
    dgc["v"][0]["dn"] = value
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc=dgc), store).reasons == (Reason.MALFORMED_CODE,)


def test_deep_or_cyclic_certificates_are_malformed(issuer, store) -> None:
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    dgc = DccIssuer.certificate_entry("v")
    dgc["nam"]["fn"] = deep
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc=dgc), store).reasons == (Reason.MALFORMED_CODE,)
    # A shared reference pointing at its own container: a cycle.
    cyclic = b"\xd8\x1c\x81\xd8\x1d\x00"
    header = cbor2.dumps({1: issuer.alg, 4: issuer.kid})
    claims = (b"\xa4\x01\x62XX\x04" + cbor2.dumps(int(EXPIRES.timestamp())) + b"\x06" + cbor2.dumps(int(ISSUED.timestamp()))
              + b"\x39\x01\x03\xa1\x01" + cyclic)
    signature = issuer.sign(cbor2.dumps(["Signature1", header, b"", claims]))
    message = cbor2.dumps(cbor2.CBORTag(18, [header, {}, claims, signature]))
    payload = "HC1:" + base45.b45encode(zlib.compress(message)).decode()
    assert verify(payload, store).reasons == (Reason.MALFORMED_CODE,)


# -- the DCC JSON schema ---------------------------------------------------------------------------


def _edited(kind: str, **changes) -> dict:
    dgc = DccIssuer.certificate_entry(kind)
    for path, value in changes.items():
        target = dgc
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value
    return dgc


@pytest.mark.parametrize(
    "dgc",
    [
        _edited("v", v__0__tg="840539007"),  # a disease other than COVID-19
        _edited("t", t__0__tr="260415001"),  # a test result outside the value set
        _edited("t", t__0__tt="LP0000-0"),  # a test type outside the value set
        _edited("v", nam__fnt="Zhang"),  # lower case in the standardised name
        _edited("v", dob="1980/01/01"),  # not an ISO 8601 date
        _edited("v", dob="1880-01-01"),  # outside 1900-2099
        _edited("v", v__0__dt="2021-02-30"),  # not a calendar date
        _edited("v", v__0__dn=0),  # dose number below 1
        _edited("v", v__0__sd="2"),  # a text for a number
        _edited("t", t__0__sc="2021-06-01 10:00"),  # not RFC 3339
        _edited("t", t__0__sc="2021-06-01T10:00:00"),  # no time zone
        _edited("r", r__0__du=20211028),  # a number for a date
        _edited("v", ver="one"),  # a version that is not semantic
        {**_edited("v"), "nam": {"fn": "Zhang"}},  # no standardised surname
        {k: v for k, v in _edited("v").items() if k != "ver"},  # no version
        {**_edited("v"), "v": [{**_edited("v")["v"][0], "ci": "x" * 81}]},  # identifier too long
    ],
    ids=["disease", "test-result", "test-type", "fnt-lower", "dob-month", "dob-1880", "dt-feb-30", "dn-0",
         "sd-text", "sc-not-rfc3339", "sc-no-zone", "du-number", "ver", "no-fnt", "no-ver", "ci-too-long"],
)
def test_schema_invalid_certificates_are_malformed(issuer, store, dgc) -> None:
    finding = verify(issuer.issue(ISSUED, EXPIRES, dgc=dgc), store)
    assert finding.reasons == (Reason.MALFORMED_CODE,) and "DCC schema" in finding.problem
    # The refusal says where and which rule, never the value (it may be the holder's name).
    assert "Zhang" not in finding.problem and "ZHANG" not in finding.problem


def test_cbor_date_tags_are_read_like_text(issuer, store) -> None:
    """Times tagged as CBOR date/times (RFC 8949 tag 0, epoch tag 1) and dates as RFC 8943 tags, as
    Hungarian and Swedish issuers wrote them, mean the same as the plain text."""
    sampled = NOW - timedelta(hours=20)
    test = _edited("t", t__0__sc=sampled)
    test["t"][0]["dr"] = cbor2.CBORTag(1, int(sampled.timestamp()) + 3600)
    finding = verify(issuer.issue(ISSUED, EXPIRES, dgc=test), store)
    assert finding.reasons == () and finding.tested_at == sampled
    vaccination = _edited("v", v__0__dt=cbor2.CBORTag(1004, "2021-06-01"), dob=cbor2.CBORTag(1004, "1980-01-01"))
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc=vaccination), store).colour == "green"
    # A tagged time in a date field is not a date: refused.
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc=_edited("v", v__0__dt=sampled)), store).reasons == (Reason.MALFORMED_CODE,)


def test_null_groups_beside_the_entry_are_absent(issuer, store) -> None:
    dgc = {**_edited("v"), "r": None, "t": None}
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc=dgc), store).colour == "green"
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc={**_edited("v"), "v": None}), store).reasons == (Reason.MALFORMED_CODE,)


def test_several_entries_are_judged_by_the_latest(issuer, store) -> None:
    first = {**_edited("v")["v"][0], "dn": 1, "dt": "2021-01-10"}
    second = {**_edited("v")["v"][0], "dn": 2, "dt": "2021-02-10"}
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc={**_edited("v"), "v": [second, first]}), store).colour == "green"
    booster_first = {**second, "dn": 1, "sd": 2, "dt": "2021-03-10"}  # a later dose that restarts a series
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc={**_edited("v"), "v": [second, booster_first]}), store).colour == "yellow"
    old_negative = {**_edited("t")["t"][0], "sc": "2021-06-01T08:00:00Z"}
    new_positive = {**_edited("t")["t"][0], "sc": "2021-06-03T08:00:00+02:00", "tr": POSITIVE}
    finding = verify(issuer.issue(ISSUED, EXPIRES, dgc={**_edited("t"), "t": [new_positive, old_negative]}), store)
    assert finding.colour == "red"
    # Equally late entries: the less favourable decides, in either order.
    same_negative = {**new_positive, "tr": NEGATIVE}
    for tests in ([same_negative, new_positive], [new_positive, same_negative]):
        assert verify(issuer.issue(ISSUED, EXPIRES, dgc={**_edited("t"), "t": tests}), store).colour == "red"
    of_two, of_three = {**second, "sd": 2}, {**second, "sd": 3}
    for doses in ([of_three, of_two], [of_two, of_three]):
        assert verify(issuer.issue(ISSUED, EXPIRES, dgc={**_edited("v"), "v": doses}), store).colour == "yellow"
    # Every entry must be valid, not only the latest.
    broken = {**first, "tg": "0"}
    assert verify(issuer.issue(ISSUED, EXPIRES, dgc={**_edited("v"), "v": [second, broken]}), store).reasons == (Reason.MALFORMED_CODE,)


# -- not before, and who issued it -----------------------------------------------------------------


def _claims(issuer: DccIssuer) -> dict:
    return {1: issuer.country, 4: int(EXPIRES.timestamp()), 6: int(ISSUED.timestamp()),
            -260: {1: DccIssuer.certificate_entry("v", country=issuer.country)}}


def test_not_before_is_enforced(issuer, store) -> None:
    later = NOW + timedelta(days=3)
    finding = verify(issuer.issue(ISSUED, EXPIRES, claims=_claims(issuer) | {5: int(later.timestamp())}), store)
    assert finding.reasons == (Reason.NOT_YET_VALID,) and later.isoformat() in finding.problem
    within_skew = int((NOW + timedelta(seconds=5)).timestamp())
    assert verify(issuer.issue(ISSUED, EXPIRES, claims=_claims(issuer) | {5: within_skew}), store).reasons == ()
    past = int((NOW - timedelta(days=1)).timestamp())
    assert verify(issuer.issue(ISSUED, EXPIRES, claims=_claims(issuer) | {5: past}), store).colour == "green"


def test_certificate_is_reported_under_its_signers_country(issuer, store) -> None:
    """The issuer shown is the signer's country from the trust list; a claim naming another
    country is refused (the claim may only say which country's signers to use)."""
    finding = verify(issuer.issue(ISSUED, EXPIRES, claims=_claims(issuer) | {1: "DE"}), store)
    assert finding.reasons == (Reason.UNTRUSTED_ISSUER,) and finding.issuer == "XX" and "'DE'" in finding.problem
    assert verify(issuer.issue(ISSUED, EXPIRES, claims=_claims(issuer) | {1: "xx"}), store).issuer == "XX"
    unclaimed = {key: value for key, value in _claims(issuer).items() if key != 1}
    finding = verify(issuer.issue(ISSUED, EXPIRES, claims=unclaimed), store)
    assert finding.reasons == () and finding.issuer == "XX"
    # The trust list's country wins over the certificate's own subject.
    listed = TrustStore.build([DccSigner.from_der(issuer.der, country="YY")])
    assert verify(issuer.issue(ISSUED, EXPIRES, claims=_claims(issuer) | {1: "YY"}), listed).issuer == "YY"
