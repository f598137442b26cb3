"""SMART Health Cards: the specification's examples, then forgeries and strict parsing of our own."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.codes.shc import ShcVerifier
from kiosk.codes.trust import ShcIssuer, TrustError, TrustStore, issuer_directory
from kiosk.config import CodesSection
from kiosk.results import Reason
from kiosk.sim.credentials import ShcIssuerSim, derived_ec_key, numeric

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "shc"
EXAMPLE_ISSUER = "https://spec.smarthealth.cards/examples/issuer"
# The examples were issued on 2023-06-22; example 03 expires on 2024-06-21.
EXAMPLE_TIME = datetime(2023, 7, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
VERIFIER = ShcVerifier(CodesSection())

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"SMART Health Card examples not found at {CORPUS}")


def example_parts(number: int) -> list[str]:
    paths = sorted(CORPUS.glob(f"example-{number:02d}-f-qr-code-numeric-value-*.txt"))
    return [path.read_text(encoding="utf-8").strip() for path in paths]


@pytest.fixture(scope="module")
def example_store() -> TrustStore:
    if not CORPUS.is_dir():
        pytest.skip(f"SMART Health Card examples not found at {CORPUS}")
    return TrustStore.build(issuers=[issuer_directory(EXAMPLE_ISSUER, CORPUS / "issuer/.well-known/jwks.json")])


@needs_corpus
@pytest.mark.parametrize("number", [0, 1, 2])
def test_examples_are_valid(example_store: TrustStore, number: int) -> None:
    finding = VERIFIER.verify("\n".join(example_parts(number)), example_store, EXAMPLE_TIME)
    assert finding.reasons == () and finding.colour == "green" and finding.issuer == EXAMPLE_ISSUER


@needs_corpus
@pytest.mark.parametrize("number", [0, 1, 2, 3])
def test_example_jws_matches_its_qr_code(example_store: TrustStore, number: int) -> None:
    jws = (CORPUS / f"example-{number:02d}-d-jws.txt").read_text(encoding="utf-8")
    assert VERIFIER.verify_jws(jws, example_store, EXAMPLE_TIME) == VERIFIER.verify(
        "\n".join(example_parts(number)), example_store, EXAMPLE_TIME
    )


@needs_corpus
def test_example_03_is_revoked_through_the_crl(example_store: TrustStore) -> None:
    (payload,) = example_parts(3)
    finding = VERIFIER.verify(payload, example_store, EXAMPLE_TIME)
    assert finding.reasons == (Reason.REVOKED,) and finding.colour == "unknown"
    assert finding.expires == datetime(2024, 6, 21, 16, 19, 24, 657000, tzinfo=timezone.utc)
    later = VERIFIER.verify(payload, example_store, datetime(2024, 7, 1, tzinfo=timezone.utc))
    assert set(later.reasons) == {Reason.EXPIRED, Reason.REVOKED}


@needs_corpus
def test_one_part_of_the_three_part_example_is_incomplete(example_store: TrustStore) -> None:
    parts = example_parts(2)
    assert len(parts) == 3
    finding = VERIFIER.verify(parts[0], example_store, EXAMPLE_TIME)
    assert finding.reasons == (Reason.INCOMPLETE_CODE,) and "part 1 of a 3-part" in finding.problem
    assert VERIFIER.verify("\n".join(parts[:2]), example_store, EXAMPLE_TIME).reasons == (Reason.INCOMPLETE_CODE,)
    # Parts in any order assemble; a part twice does not.
    assert VERIFIER.verify("\n".join(reversed(parts)), example_store, EXAMPLE_TIME).colour == "green"
    twice = VERIFIER.verify("\n".join([parts[0], parts[0], parts[1]]), example_store, EXAMPLE_TIME)
    assert twice.reasons == (Reason.MALFORMED_CODE,)


@needs_corpus
def test_examples_without_their_issuer_are_untrusted() -> None:
    (payload,) = example_parts(0)
    finding = VERIFIER.verify(payload, TrustStore.build(issuers=[ShcIssuerSim().issuer()]), EXAMPLE_TIME)
    assert finding.reasons == (Reason.UNTRUSTED_ISSUER,) and finding.issuer == EXAMPLE_ISSUER


# -- our own cards ------------------------------------------------------------------------------


@pytest.fixture()
def issuer() -> ShcIssuerSim:
    return ShcIssuerSim()


def store_of(*issuers: ShcIssuerSim) -> TrustStore:
    return TrustStore.build(issuers=[i.issuer() for i in issuers])


def verify(payload: str, store: TrustStore, now: datetime = NOW):
    return VERIFIER.verify(payload, store, now)


def test_valid_card(issuer: ShcIssuerSim) -> None:
    finding = verify(issuer.issue(NOW - timedelta(days=3), NOW + timedelta(days=30)), store_of(issuer))
    assert finding.reasons == () and finding.colour == "green"
    assert finding.issuer == issuer.iss and finding.expires == NOW + timedelta(days=30)


def test_colour_is_configurable(issuer: ShcIssuerSim) -> None:
    finding = ShcVerifier(CodesSection(shc_card="yellow")).verify(issuer.issue(NOW), store_of(issuer), NOW)
    assert finding.colour == "yellow"


def test_forged_signature(issuer: ShcIssuerSim) -> None:
    jws = issuer.jws(issuer.card(NOW), key=derived_ec_key("a forger"))  # the issuer's kid, another key
    assert verify("shc:/" + numeric(jws), store_of(issuer)).reasons == (Reason.INVALID_SIGNATURE,)


def test_payload_changed_after_signing(issuer: ShcIssuerSim) -> None:
    header, _, signature = issuer.jws(issuer.card(NOW)).split(".")
    _, payload, _ = issuer.jws(issuer.card(NOW - timedelta(days=400))).split(".")
    assert verify("shc:/" + numeric(f"{header}.{payload}.{signature}"), store_of(issuer)).reasons == (
        Reason.INVALID_SIGNATURE,
    )


def test_unknown_issuer(issuer: ShcIssuerSim) -> None:
    stranger = ShcIssuerSim("https://stranger.demo.invalid")
    finding = verify(stranger.issue(NOW), store_of(issuer))
    assert finding.reasons == (Reason.UNTRUSTED_ISSUER,) and finding.issuer == stranger.iss


def test_key_of_another_trusted_issuer_does_not_count(issuer: ShcIssuerSim) -> None:
    other = ShcIssuerSim("https://other.demo.invalid")
    # Signed by the other (trusted) issuer with its own kid, but the card names the first issuer.
    card = other.card(NOW, iss=issuer.iss)
    finding = verify("shc:/" + numeric(other.jws(card)), store_of(issuer, other))
    assert finding.reasons == (Reason.UNTRUSTED_ISSUER,) and "has no key" in finding.problem


def test_wrong_kid(issuer: ShcIssuerSim) -> None:
    jws = issuer.jws(issuer.card(NOW), header={"zip": "DEF", "alg": "ES256", "kid": "not-a-known-kid"})
    assert verify("shc:/" + numeric(jws), store_of(issuer)).reasons == (Reason.UNTRUSTED_ISSUER,)


@pytest.mark.parametrize(
    ("issued", "expires", "reasons"),
    [
        (NOW - timedelta(days=400), NOW - timedelta(days=35), (Reason.EXPIRED,)),
        (NOW + timedelta(hours=1), None, (Reason.NOT_YET_VALID,)),
        (NOW + timedelta(seconds=5), None, ()),
        (NOW - timedelta(days=4000), None, ()),
    ],
    ids=["expired", "future", "within-skew", "old-without-exp"],
)
def test_validity_period(issuer, issued, expires, reasons) -> None:
    assert verify(issuer.issue(issued, expires), store_of(issuer)).reasons == reasons


def test_revocation_by_rid(issuer: ShcIssuerSim) -> None:
    issuer.revoke("rid-revoked")
    issuer.revoke("rid-before", before=NOW - timedelta(days=10))
    store = store_of(issuer)
    assert verify(issuer.issue(NOW, rid="rid-revoked"), store).reasons == (Reason.REVOKED,)
    assert verify(issuer.issue(NOW - timedelta(days=20), rid="rid-before"), store).reasons == (Reason.REVOKED,)
    # Reissued after the revocation time: valid again.
    assert verify(issuer.issue(NOW - timedelta(days=5), rid="rid-before"), store).reasons == ()
    assert verify(issuer.issue(NOW, rid="rid-fine"), store).reasons == ()


def test_missing_or_old_revocation_list_is_a_stale_trust_list(issuer: ShcIssuerSim) -> None:
    issuer.revoke("rid-1")
    issuer.revoke("rid-2")  # the key now says crlVersion 2
    old_list = {"kid": issuer.kid, "method": "rid", "ctr": 1, "rids": ["rid-1"]}
    old = TrustStore.build(issuers=[ShcIssuer.from_json(issuer.iss, issuer.jwks(), [old_list])])
    assert verify(issuer.issue(NOW, rid="rid-2"), old).reasons == (Reason.TRUST_LIST_STALE,)
    none = TrustStore.build(issuers=[ShcIssuer.from_json(issuer.iss, issuer.jwks(), [])])
    assert verify(issuer.issue(NOW, rid="rid-3"), none).reasons == (Reason.TRUST_LIST_STALE,)


def test_kid_must_be_the_thumbprint(issuer: ShcIssuerSim) -> None:
    wrong = {**issuer.jwk, "kid": "chosen-by-hand"}
    with pytest.raises(TrustError, match="thumbprint"):
        ShcIssuer.from_json(issuer.iss, {"keys": [wrong]}, strict=True)
    assert ShcIssuer.from_json(issuer.iss, {"keys": [wrong, issuer.jwk]}).keys.keys() == {issuer.kid}


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _signed(issuer: ShcIssuerSim, header: bytes, payload: bytes) -> str:
    return "shc:/" + numeric(issuer.sign_raw(header, payload))


def test_strict_parsing_of_signed_content(issuer: ShcIssuerSim) -> None:
    """Correctly signed, but not what a health card is: each of these refuses as malformed."""
    store = store_of(issuer)
    header = json.dumps({"zip": "DEF", "alg": "ES256", "kid": issuer.kid}).encode()
    card = json.dumps(issuer.card(NOW)).encode()
    cases = {
        "bom-in-header": (b"\xef\xbb\xbf" + header, _deflate(card)),
        "bom-in-payload": (header, _deflate(b"\xef\xbb\xbf" + card)),
        "zlib-not-raw": (header, zlib.compress(card)),
        "trailing-after-deflate": (header, _deflate(card) + b"\x00"),
        "truncated-deflate": (header, _deflate(card)[:-4]),
        "trailing-json": (header, _deflate(card + b"x")),
        "duplicate-iss": (header, _deflate(card[:-1] + b',"iss":"https://x"}')),
        "alg-none": (json.dumps({"zip": "DEF", "alg": "none", "kid": issuer.kid}).encode(), _deflate(card)),
        "no-zip": (json.dumps({"alg": "ES256", "kid": issuer.kid}).encode(), _deflate(card)),
        "crit-header": (json.dumps({"zip": "DEF", "alg": "ES256", "kid": issuer.kid, "crit": ["x"]}).encode(),
                        _deflate(card)),
        "not-a-health-card": (header, _deflate(json.dumps({**issuer.card(NOW), "vc": {"type": ["x"]}}).encode())),
        "no-nbf": (header, _deflate(json.dumps({k: v for k, v in issuer.card(NOW).items() if k != "nbf"}).encode())),
        "nan-nbf": (header, _deflate(card.replace(b'"nbf":', b'"nbf":NaN,"x":'))),
        "deflate-bomb": (header, _deflate(b" " * 1_000_000)),
    }
    for name, (head, payload) in cases.items():
        finding = verify(_signed(issuer, head, payload), store)
        assert finding.reasons == (Reason.MALFORMED_CODE,), (name, finding)


def test_strict_parsing_of_the_qr_text(issuer: ShcIssuerSim) -> None:
    store = store_of(issuer)
    good = issuer.issue(NOW)
    assert verify(good, store).colour == "green"
    mangled = {
        "odd-digits": good[:-1],
        "pair-out-of-range": good[:5] + "78" + good[7:],
        "pair-99": good[:5] + "99" + good[7:],
        "trailing-char": good + "0",
        "trailing-letter": good + "x",
        "trailing-newline": good + "\n",
        "leading-bom": "\ufeff" + good,
        "upper-case": "SHC:/" + good[5:],
        "no-digits": "shc:/",
        "padding-in-base64": "shc:/" + numeric(issuer.jws(issuer.card(NOW)) + "=="),
        "four-parts": "shc:/" + numeric(issuer.jws(issuer.card(NOW)) + ".AAAA"),
        "part-zero": "shc:/0/2/" + good[5:],
        "part-beyond-total": "shc:/3/2/" + good[5:],
    }
    for name, payload in mangled.items():
        finding = verify(payload, store)
        assert finding.reasons == (Reason.MALFORMED_CODE,), (name, finding)


def test_multi_part_codes(issuer: ShcIssuerSim) -> None:
    store = store_of(issuer)
    parts = issuer.issue_parts(NOW, parts=3)
    assert len(parts) == 3
    assert verify("\n".join(parts), store).colour == "green"
    assert verify(parts[1], store).reasons == (Reason.INCOMPLETE_CODE,)
    mixed = parts[:2] + [parts[2].replace("/3/3/", "/3/4/")]
    assert verify("\n".join(mixed), store).reasons == (Reason.MALFORMED_CODE,)
    swapped = [parts[0], parts[2].replace("/3/3/", "/2/3/"), parts[1].replace("/2/3/", "/3/3/")]
    assert verify("\n".join(swapped), store).reasons != ()  # digits in the wrong order
    assert verify("shc:/1/1/" + issuer.issue(NOW)[5:], store).colour == "green"


# -- hostile fields: every malformed field is a refusal, never an exception -----------------------


def _card_json(issuer: ShcIssuerSim, **fields) -> bytes:
    """The card as JSON with raw JSON texts substituted for some fields (numbers Python would not
    write, such as a 400-digit integer)."""
    card = issuer.card(NOW - timedelta(days=1), NOW + timedelta(days=30))
    text = json.dumps(card, separators=(",", ":"))
    for name, raw in fields.items():
        text = text.replace(f'"{name}":{json.dumps(card[name])}', f'"{name}":{raw}')
    return text.encode()


@pytest.mark.parametrize(
    ("field", "raw"),
    [("nbf", "1" + "0" * 310), ("exp", "1" + "0" * 310), ("nbf", "-" + "9" * 320), ("exp", "1" + "0" * 5000),
     ("nbf", "1e400"), ("exp", "-1e400"), ("nbf", "1e300"), ("exp", "253402300800"), ("nbf", "-1"),
     ("nbf", "true"), ("exp", "null"), ("nbf", '"1700000000"'), ("exp", "[1700000000]"), ("nbf", '{"t":1}')],
    ids=["nbf-310-digits", "exp-310-digits", "nbf-negative-320-digits", "exp-5000-digits", "nbf-1e400",
         "exp-minus-1e400", "nbf-1e300", "exp-year-10000", "nbf-negative", "nbf-bool", "exp-null", "nbf-text",
         "exp-list", "nbf-object"],
)
def test_times_of_any_size_or_type_are_malformed(issuer: ShcIssuerSim, field: str, raw: str) -> None:
    header = json.dumps({"zip": "DEF", "alg": "ES256", "kid": issuer.kid}).encode()
    finding = verify(_signed(issuer, header, _deflate(_card_json(issuer, **{field: raw}))), store_of(issuer))
    assert finding.reasons == (Reason.MALFORMED_CODE,), finding


@pytest.mark.parametrize(
    "header",
    [{"zip": "DEF", "alg": "ES256", "kid": ["k"]}, {"zip": "DEF", "alg": "ES256", "kid": {"k": 1}},
     {"zip": "DEF", "alg": "ES256", "kid": 10**30}, {"zip": "DEF", "alg": ["ES256"], "kid": "k"},
     {"zip": ["DEF"], "alg": "ES256", "kid": "k"}, {"zip": "DEF", "alg": "ES256", "kid": ""},
     {"zip": "DEF", "alg": "ES256", "kid": "k" * 500}, ["zip", "alg", "kid"], "header", None, 7],
    ids=["kid-list", "kid-object", "kid-number", "alg-list", "zip-list", "kid-empty", "kid-long", "header-list",
         "header-text", "header-null", "header-number"],
)
def test_headers_of_any_type_are_malformed(issuer: ShcIssuerSim, header) -> None:
    finding = verify(_signed(issuer, json.dumps(header).encode(), _deflate(_card_json(issuer))), store_of(issuer))
    assert finding.reasons == (Reason.MALFORMED_CODE,), finding


@pytest.mark.parametrize(
    "change",
    [{"iss": ["https://x"]}, {"iss": ""}, {"iss": "https://" + "x" * 2000}, {"vc": []}, {"vc": {"type": "x"}},
     {"vc": {"type": [["https://smarthealth.cards#health-card"]]}}, {"vc": None}],
    ids=["iss-list", "iss-empty", "iss-too-long", "vc-list", "vc-type-text", "vc-type-nested", "vc-null"],
)
def test_claims_of_any_type_are_malformed(issuer: ShcIssuerSim, change: dict) -> None:
    card = {**issuer.card(NOW - timedelta(days=1)), **change}
    assert verify("shc:/" + numeric(issuer.jws(card)), store_of(issuer)).reasons == (Reason.MALFORMED_CODE,)


def test_a_revocation_id_that_is_not_a_text_is_malformed(issuer: ShcIssuerSim) -> None:
    card = issuer.card(NOW - timedelta(days=1))
    card["vc"]["rid"] = ["r"]
    assert verify("shc:/" + numeric(issuer.jws(card)), store_of(issuer)).reasons == (Reason.MALFORMED_CODE,)


def test_deeply_nested_json_is_malformed(issuer: ShcIssuerSim) -> None:
    header = json.dumps({"zip": "DEF", "alg": "ES256", "kid": issuer.kid}).encode()
    deep = b'{"iss":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert verify(_signed(issuer, header, _deflate(deep)), store_of(issuer)).reasons == (Reason.MALFORMED_CODE,)
    assert verify(_signed(issuer, b"[" * 5000 + b"]" * 5000, _deflate(_card_json(issuer))), store_of(issuer)).reasons == (
        Reason.MALFORMED_CODE,)


@pytest.mark.parametrize(
    "payload",
    ["shc:/" + "5" * 5000 + "/1/00", "shc:/1/" + "9" * 5000 + "/00", "shc:/1/2/56\nshc:/2/" + "7" * 4400 + "/56",
     "shc:/1000/1000/56", "shc:/" + "0" * 4500 + "1/1/56"],
    ids=["5000-digit-part", "5000-digit-total", "5000-digit-total-second-line", "four-digit-part-numbers",
         "zero-padded-part"],
)
def test_part_numbers_of_any_size_are_malformed(payload: str) -> None:
    assert VERIFIER.verify(payload, TrustStore(), NOW).reasons == (Reason.MALFORMED_CODE,)
