"""Fuzzing the code router: random and mutated payloads of every scheme never raise, and are refused.

More than 10,000 payloads in all: random text, random text behind each scheme's prefix, random
mutations of genuine codes (EU DCC, SMART Health Card, platform), and well-formed containers
(CBOR in COSE, JSON in JWS) with random content. The genuine codes themselves are marked as used
in the replay guard first, so even a mutation that turns out to be a re-encoding of a genuine
certificate must be refused ("replayed"): every single payload is refused with a reason.

Then type confusion and size, behind valid signatures (so that every field is reached): each field
of a genuine certificate's claims, its protected header, and a card's JSON, given every type (list,
map, bytes, text, huge and negative integers, NaN and infinities, booleans, null, CBOR tags and
simple values, shared references and cycles, nesting 60,000 deep, declared lengths of billions).
No verifier may raise (an exception would surface as "cannot_verify"), and memory stays bounded.
Hypothesis runs derandomized, so the run is the same every time.
"""

from __future__ import annotations

import base64
import json
import tracemalloc
import zlib
from datetime import datetime, timedelta, timezone
from typing import Iterator

import base45
import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.codes.clock import ClockCheck
from kiosk.codes.dcc import DccVerifier
from kiosk.codes.hashing import CodeHasher
from kiosk.codes.replay import ReplayGuard
from kiosk.codes.router import CodeRouter, FixedTrust, build_router
from kiosk.codes.shc import ShcVerifier
from kiosk.codes.trust import TrustStore
from kiosk.config import CodesSection, Config, merged
from kiosk.decision import Policy, code_reasons
from kiosk.results import Reason
from kiosk.sim.credentials import DccIssuer, ShcIssuerSim, numeric
from kiosk.sim.population import Population
from kiosk.sim.upstream import ReferenceUpstream

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 26, 9, 30, 20, tzinfo=timezone.utc)
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REASON_VALUES = {str(reason) for reason in Reason}
COUNTED: list[int] = []  # one entry per payload the invariant was checked on
FINISHED: set[str] = set()  # the tests of this file that have run


@pytest.fixture(autouse=True)
def _note_finished(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    FINISHED.add(request.node.originalname)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CodeRouter, list[str]]]:
    upstream = ReferenceUpstream(data_dir=tmp_path_factory.mktemp("upstream"),
                                 population=Population(clock=lambda: NOW)).start()
    dcc, rsa_less, shc = DccIssuer(), DccIssuer(country="YY", kinds="t"), ShcIssuerSim()
    shc.revoke("revoked-rid")
    config = merged(Config(), {"platform": {"url": f"{upstream.url}/platform", "timeout_s": 2.0,
                                            "breaker_failures": 100}}, "fuzz")
    router = build_router(
        config, CodeHasher(b"fuzzing-install-secret-0123456789"),
        trust=FixedTrust(TrustStore.build([dcc.signer(), rsa_less.signer()], [shc.issuer()])),
        clock_check=ClockCheck("off"), utcnow=lambda: NOW,
    )
    router.replay = ReplayGuard(3600)
    issued, expires = NOW - timedelta(days=2), NOW + timedelta(days=60)
    genuine = [
        dcc.issue(issued, expires, "v"),
        dcc.issue(issued, expires, "t", sampled=NOW - timedelta(hours=5)),
        dcc.issue(issued, expires, "r", kid_unprotected=True),
        rsa_less.issue(issued, expires, "t"),
        shc.issue(issued),
        shc.issue(issued, expires, rid="fine-rid"),
        "\n".join(shc.issue_parts(issued, parts=2, rid="parts-rid")),
        upstream.population.code_for("p01"),
        upstream.population.code_for("p11"),
    ]
    for payload in genuine:
        result = router.verify(payload)
        assert result.reasons == () and result.colour == "green", (payload[:20], result)
        router.accepted(result)
    yield router, genuine
    router.close()
    upstream.close()


def check(router: CodeRouter, payload: str) -> None:
    """The invariant: no exception, and a refusal with at least one known reason."""
    result = router.verify(payload)
    assert set(result.reasons) <= REASON_VALUES, result
    reasons = code_reasons(result, Policy(), NOW)
    assert reasons, (payload[:80], result)
    COUNTED.append(1)


@settings(max_examples=3000, **FUZZ)
@given(payload=st.text(max_size=300))
def test_random_text(world, payload: str) -> None:
    check(world[0], payload)


SCHEME_TEXT = st.one_of(
    st.tuples(st.just("HC1:"), st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=400)),
    st.tuples(st.just("shc:/"), st.text(alphabet="0123456789", max_size=400)),
    st.tuples(st.sampled_from(["shc:/1/2/", "shc:/2/2/", "shc:/1/1/"]), st.text(alphabet="0123456789/", max_size=200)),
    st.tuples(st.sampled_from(["HCP1:", "hc1:", "\ufeffHC1:", "SHC:/", " shc:/"]), st.text(max_size=100)),
)


@settings(max_examples=3500, **FUZZ)
@given(parts=SCHEME_TEXT)
def test_random_text_behind_each_schemes_prefix(world, parts: tuple[str, str]) -> None:
    check(world[0], parts[0] + parts[1])


MUTATION = st.tuples(
    st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate", "swap"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=10_000),
    st.characters(codec="utf-8"),
)


def mutate(text: str, mutation: tuple[str, int, int, str]) -> str:
    kind, a, b, char = mutation
    i, j = a % (len(text) + 1), b % (len(text) + 1)
    if kind == "delete":
        return text[:i] + text[i + 1:]
    if kind == "insert":
        return text[:i] + char + text[i:]
    if kind == "replace":
        return text[:i] + char + text[i + 1:]
    if kind == "truncate":
        return text[:i]
    if kind == "duplicate":
        return text[:j] + text[min(i, j):max(i, j)] + text[j:]
    if i == j or max(i, j) >= len(text):
        return text + char
    i, j = min(i, j), max(i, j)
    return text[:i] + text[j] + text[i + 1:j] + text[i] + text[j + 1:]


@settings(max_examples=4000, **FUZZ)
@given(seed=st.integers(min_value=0, max_value=8), mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_genuine_codes(world, seed: int, mutations: list) -> None:
    router, genuine = world
    payload = genuine[seed]
    for mutation in mutations:
        payload = mutate(payload, mutation)
    check(router, payload)


CBOR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.binary(max_size=40)
    | st.text(max_size=20) | st.floats(allow_nan=True),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.integers(min_value=-300, max_value=300) | st.text(max_size=5), children, max_size=5),
    max_leaves=12,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=1000, **FUZZ)
@given(
    protected=CBOR_VALUES, unprotected=CBOR_VALUES, claims=CBOR_VALUES, signature=st.binary(max_size=80),
    tag=st.sampled_from([None, 18, 61, 98]), raw=st.booleans(),
)
def test_well_formed_containers_with_random_content(world, protected, unprotected, claims, signature, tag, raw) -> None:
    router, _ = world
    fields = [cbor2.dumps(protected) if raw else protected, unprotected, cbor2.dumps(claims), signature]
    message = fields if tag is None else cbor2.CBORTag(tag, fields)
    try:
        encoded = cbor2.dumps(message)
    except (cbor2.CBOREncodeError, TypeError, ValueError):
        return
    check(router, "HC1:" + base45.b45encode(zlib.compress(encoded)).decode())


@settings(max_examples=1000, **FUZZ)
@given(header=JSON_VALUES, card=JSON_VALUES, signature=st.binary(max_size=70))
def test_jws_with_random_header_and_payload(world, header, card, signature) -> None:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    payload = deflate.compress(json.dumps(card).encode()) + deflate.flush()
    jws = f"{b64(json.dumps(header).encode())}.{b64(payload)}.{b64(signature)}"
    check(world[0], "shc:/" + numeric(jws))


# -- type confusion and size, behind valid signatures ---------------------------------------------

ISSUED, EXPIRES = NOW - timedelta(days=2), NOW + timedelta(days=60)
_MARKER = b"\xde\xad\xbe\xef" * 4
_ENCODED_MARKER = cbor2.dumps(_MARKER)
# Raw CBOR no Python value encodes to: deep nesting, cycles, lies about lengths, odd simple values.
RAW_CBOR = [
    b"\x81" * 60_000 + b"\x00",  # an array nested 60,000 deep
    b"\xa1\x00" * 20_000 + b"\x00",  # maps nested 20,000 deep
    b"\xd8\x1c\x81\xd8\x1d\x00",  # a shared list containing itself
    b"\xd8\x1d\x05",  # a reference to nothing shared
    b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00",  # an array of 4 billion items, absent
    b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",  # a map of 2^64 pairs, absent
    b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff",  # a byte string of 2^63 bytes, absent
    b"\x9f" + b"\x01" * 40_000 + b"\xff",  # an indefinite array of 40,000 items
    b"\xc2\x59\xea\x60" + b"\xff" * 60_000,  # a 144,000-digit bignum
    b"\xc3\x50" + b"\xff" * 16,  # a negative bignum
    b"\xf8\x10", b"\xf7", b"\xf9\x7c\x00", b"\xf9\xfc\x00", b"\xf9\x7e\x00",  # simple, undefined, inf, -inf, nan
    b"\xc0\x67garbage", b"\xc1\x1b\xff\xff\xff\xff\xff\xff\xff\xff",  # bad date/time tags
    b"\xd8\x23\x6a(a+)+$.{99", b"\xd8\x24\x60", b"\xd9\x01\x02\x82\x80\x80",  # regex, MIME, set of lists
    b"\xd9\xd9\xf7" * 1000 + b"\x00",  # self-described, a thousand times
]
HUGE_INTS = st.sampled_from([2**64, 2**64 + 1, -(2**64) - 1, 10**310, -(10**310), 10**5000, 2**53 + 1, -1, 0])
HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), HUGE_INTS, st.integers(), st.binary(max_size=40), st.text(max_size=30),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324]), st.floats(),
    st.lists(st.integers(), max_size=4), st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.dictionaries(st.integers(min_value=-300, max_value=300), st.text(max_size=4), max_size=3),
    st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 30, 32, 33, 34, 35, 36, 37, 38,
                                              100, 258, 260, 261, 1004, 55799, 99999]),
              st.one_of(st.integers(), st.text(max_size=12), st.binary(max_size=12), st.lists(st.integers(), max_size=3))),
    st.builds(cbor2.CBORSimpleValue, st.sampled_from([0, 16, 19, 32, 255])),
    st.just(cbor2.undefined),
)
HOSTILE = st.one_of(HOSTILE_VALUES.map(lambda value: ("value", value)), st.sampled_from(RAW_CBOR).map(lambda raw: ("raw", raw)))


def _dcc_paths() -> list[tuple]:
    paths: list[tuple] = [(1,), (4,), (5,), (6,), (-260,), (-260, 1), (99,)]
    for kind in ("v", "t", "r"):
        dgc = DccIssuer.certificate_entry(kind)
        base = (-260, 1)
        paths += [(*base, key, kind) for key in dgc] + [(*base, "nam", key, kind) for key in dgc["nam"]]
        paths += [(*base, kind, 0, kind), (*base, kind, 1, kind)]
        paths += [(*base, kind, 0, key, kind) for key in dgc[kind][0]]
    return paths


DCC_PATHS = _dcc_paths()
_SIGNERS: dict[str, DccIssuer] = {}


def _dcc_issuer() -> DccIssuer:
    return _SIGNERS.setdefault("dcc", DccIssuer())


def _claims_with_marker(path: tuple) -> dict:
    kind = path[-1] if isinstance(path[-1], str) and path[-1] in ("v", "t", "r") and len(path) > 2 else "v"
    keys = path[:-1] if len(path) > 2 and path[-1] == kind and path[0] == -260 else path
    claims = {1: "XX", 4: int(EXPIRES.timestamp()), 6: int(ISSUED.timestamp()),
              -260: {1: DccIssuer.certificate_entry(kind, sampled=NOW - timedelta(hours=5))}}
    target: object = claims
    for key in keys[:-1]:
        target = target[key]  # type: ignore[index]
    if isinstance(target, list):
        if keys[-1] >= len(target):
            target.append(_MARKER)
        else:
            target[keys[-1]] = _MARKER
    else:
        target[keys[-1]] = _MARKER  # type: ignore[index]
    return claims


def _encoded(hostile: tuple[str, object]) -> bytes | None:
    kind, value = hostile
    if kind == "raw":
        return value  # type: ignore[return-value]
    try:
        return cbor2.dumps(value)
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError):
        return None


def _signed_dcc(issuer: DccIssuer, protected: bytes, claims: bytes, unprotected: bytes = b"\xa0") -> str:
    """A DCC signed by `issuer`; `unprotected` is the unprotected header's raw CBOR (an empty map by default)."""
    signature = issuer.sign(cbor2.dumps(["Signature1", protected, b"", claims]))
    message = b"\xd2\x84" + cbor2.dumps(protected) + unprotected + cbor2.dumps(claims) + cbor2.dumps(signature)
    return "HC1:" + base45.b45encode(zlib.compress(message, 9)).decode()


def _trusting_dcc_issuer(world) -> tuple[CodeRouter, DccIssuer]:
    """The fuzz router, trusting the test DCC signer."""
    router, _ = world
    issuer = _dcc_issuer()
    router.trust = FixedTrust(TrustStore.build([issuer.signer()]))
    return router, issuer


def check_holds(router: CodeRouter, payload: str) -> None:
    """Type confusion's invariant: no verifier raised (that is "cannot_verify" for an offline code),
    the reasons are known ones, and anything not refused has a colour."""
    result = router.verify(payload)
    assert "cannot_verify" not in result.reasons, (payload[:60], result)
    assert set(result.reasons) <= REASON_VALUES, result
    if not result.reasons:
        assert result.colour in ("green", "yellow", "red"), result
    COUNTED.append(1)


@settings(max_examples=1500, **FUZZ)
@given(path=st.sampled_from(DCC_PATHS), hostile=HOSTILE)
def test_every_claim_of_every_type_behind_a_valid_signature(world, path, hostile) -> None:
    router, issuer = _trusting_dcc_issuer(world)
    raw = _encoded(hostile)
    if raw is None:
        return
    claims = cbor2.dumps(_claims_with_marker(path)).replace(_ENCODED_MARKER, raw)
    check_holds(router, _signed_dcc(issuer, cbor2.dumps({1: issuer.alg, 4: issuer.kid}), claims))


@settings(max_examples=600, **FUZZ)
@given(field=st.sampled_from([1, 4]), where=st.sampled_from(["protected", "unprotected"]), hostile=HOSTILE)
def test_protected_and_unprotected_headers_of_every_type(world, field, where, hostile) -> None:
    router, issuer = _trusting_dcc_issuer(world)
    raw = _encoded(hostile)
    if raw is None:
        return
    header = {1: issuer.alg, 4: issuer.kid}
    claims = cbor2.dumps(_claims_with_marker((1,))).replace(_ENCODED_MARKER, cbor2.dumps("XX"))
    if where == "protected":
        header[field] = _MARKER
        protected = cbor2.dumps(header).replace(_ENCODED_MARKER, raw)
        check_holds(router, _signed_dcc(issuer, protected, claims))
    else:
        del header[field]
        unprotected = cbor2.dumps({field: _MARKER}).replace(_ENCODED_MARKER, raw)
        check_holds(router, _signed_dcc(issuer, cbor2.dumps(header), claims, unprotected))


_JSON_MARKER = "__hostile__"
RAW_JSON = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.sampled_from(["1" + "0" * 310, "-" + "9" * 400, "1" + "0" * 5000, "1e400", "-1e400", "1e-400", "NaN",
                     "Infinity", "-Infinity", "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
                     '{"a":1,"a":2}', '"\\ud800"', '"\\u0000"', "[" + "0," * 30_000 + "0]", "true", "null",
                     "1.7976931348623157e309", "0.000000000000000000000001", "9007199254740993"]),
)


def _card_paths() -> list[tuple]:
    return [("iss",), ("nbf",), ("exp",), ("vc",), ("vc", "type"), ("vc", "type", 0), ("vc", "rid"),
            ("vc", "credentialSubject"), ("vc", "credentialSubject", "fhirBundle"),
            ("vc", "credentialSubject", "fhirBundle", "entry"), ("extra",)]


def _trusting_card_issuer(world) -> tuple[CodeRouter, ShcIssuerSim]:
    """The fuzz router, trusting the test card issuer."""
    router, _ = world
    shc: ShcIssuerSim = _SIGNERS.setdefault("shc", ShcIssuerSim())  # type: ignore[arg-type, assignment]
    router.trust = FixedTrust(TrustStore.build(issuers=[shc.issuer()]))
    return router, shc


def _card_with_raw(shc: ShcIssuerSim, path: tuple, raw: str) -> str:
    """A card signed by `shc` whose field at `path` (under "header" for the JWS header) is the raw
    JSON text `raw`."""
    card = shc.card(ISSUED, EXPIRES, rid="fuzz-rid")
    header = {"zip": "DEF", "alg": "ES256", "kid": shc.kid}
    target: dict = header if path[0] == "header" else card
    keys = path[1:] if path[0] == "header" else path
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = _JSON_MARKER  # a list's index or a map's key alike
    header_text = json.dumps(header).replace(f'"{_JSON_MARKER}"', raw)
    card_text = json.dumps(card).replace(f'"{_JSON_MARKER}"', raw)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    compressed = deflate.compress(card_text.encode("utf-8", "surrogatepass")) + deflate.flush()
    jws = shc.sign_raw(header_text.encode("utf-8", "surrogatepass"), compressed)
    return "shc:/" + numeric(jws)


@settings(max_examples=1200, **FUZZ)
@given(path=st.sampled_from(_card_paths() + [("header", "alg"), ("header", "zip"), ("header", "kid"), ("header", "x")]),
       raw=RAW_JSON)
def test_every_card_field_of_every_type_behind_a_valid_signature(world, path, raw) -> None:
    router, shc = _trusting_card_issuer(world)
    check_holds(router, _card_with_raw(shc, path, raw))


# Every field given every type, exhaustively (the hypothesis runs above sample the same space).
EVERY_TYPE = [
    ("value", value) for value in
    [None, True, False, 0, -1, 2**64, -(2**64) - 1, 10**310, -(10**310), 10**5000, 1.5, float("nan"), float("inf"),
     float("-inf"), b"", b"\x00" * 40, "", "x" * 100, [], [1, [2]], {}, {"k": 1}, {1: 2},
     cbor2.CBORTag(0, "2021-01-01T00:00:00Z"), cbor2.CBORTag(1, 10**12), cbor2.CBORTag(1004, "2021-01-01"),
     cbor2.CBORTag(30, [1, 3]), cbor2.CBORTag(258, [1]), cbor2.CBORTag(99999, "x"), cbor2.CBORSimpleValue(19),
     cbor2.undefined]
] + [("raw", raw) for raw in RAW_CBOR]
EVERY_JSON = ["null", "true", "0", "-1", "1" + "0" * 310, "-" + "9" * 320, "1" + "0" * 5000, "1e400", "1.5", '""',
              '"x"', "[]", "[1,[2]]", "{}", '{"k":1}', "[" * 100_000 + "]" * 100_000, '{"a":1,"a":2}', '"\\ud800"',
              "NaN", "Infinity"]


def test_every_claim_and_header_field_given_every_type(world) -> None:
    router, issuer = _trusting_dcc_issuer(world)
    header = cbor2.dumps({1: issuer.alg, 4: issuer.kid})
    for path in DCC_PATHS:
        for hostile in EVERY_TYPE:
            raw = _encoded(hostile)
            if raw is not None:
                claims = cbor2.dumps(_claims_with_marker(path)).replace(_ENCODED_MARKER, raw)
                check_holds(router, _signed_dcc(issuer, header, claims))
    claims = cbor2.dumps(_claims_with_marker((1,))).replace(_ENCODED_MARKER, cbor2.dumps("XX"))
    for field in (1, 4):
        for hostile in EVERY_TYPE:
            raw = _encoded(hostile)
            if raw is not None:
                protected = cbor2.dumps({1: issuer.alg, 4: issuer.kid, field: _MARKER}).replace(_ENCODED_MARKER, raw)
                check_holds(router, _signed_dcc(issuer, protected, claims))


def test_every_card_field_given_every_type(world) -> None:
    router, shc = _trusting_card_issuer(world)
    for path in _card_paths() + [("header", "alg"), ("header", "zip"), ("header", "kid")]:
        for raw in EVERY_JSON:
            check_holds(router, _card_with_raw(shc, path, raw))


@pytest.mark.parametrize("size", [310, 400, 5000, 100_000])
def test_huge_part_numbers_and_times(world, size: int) -> None:
    router, _ = world
    for payload in ("shc:/" + "7" * size + "/1/00", "shc:/1/" + "3" * size + "/00", "HC1:" + "9" * min(size, 4000)):
        result = router.verify(payload)
        assert result.reasons and "cannot_verify" not in result.reasons, (size, result)


def test_hostile_codes_keep_memory_bounded() -> None:
    """The worst hostile codes, verified twice over: the peak stays small, and the second round
    keeps no more memory than the first."""
    dcc, shc = DccIssuer(), ShcIssuerSim()
    store = TrustStore.build([dcc.signer()], [shc.issuer()])
    payloads = []
    for raw in RAW_CBOR:
        claims = cbor2.dumps(_claims_with_marker((-260, 1, "nam", "v"))).replace(_ENCODED_MARKER, raw)
        payloads.append(_signed_dcc(dcc, cbor2.dumps({1: dcc.alg, 4: dcc.kid}), claims))
    header = json.dumps({"zip": "DEF", "alg": "ES256", "kid": shc.kid}).encode()
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"nbf":' + b"9" * 200_000 + b"}", b"[" + b'"a",' * 60_000 + b'"a"]'):
        deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        payloads.append("shc:/" + numeric(shc.sign_raw(header, deflate.compress(body) + deflate.flush())))
    dcc_verifier, shc_verifier = DccVerifier(CodesSection()), ShcVerifier(CodesSection())

    def round_of_all() -> None:
        for payload in payloads:
            verifier = dcc_verifier if payload.startswith("HC1:") else shc_verifier
            assert verifier.verify(payload, store, NOW).reasons == (Reason.MALFORMED_CODE,), payload[:40]

    round_of_all()  # warm caches (the schema validator, imports)
    tracemalloc.start()
    try:
        round_of_all()
        first, peak = tracemalloc.get_traced_memory()
        round_of_all()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024
    assert second - first < 256 * 1024


COUNTING_TESTS = (
    test_random_text, test_random_text_behind_each_schemes_prefix, test_mutated_genuine_codes,
    test_well_formed_containers_with_random_content, test_jws_with_random_header_and_payload,
    test_every_claim_of_every_type_behind_a_valid_signature, test_protected_and_unprotected_headers_of_every_type,
    test_every_card_field_of_every_type_behind_a_valid_signature, test_every_claim_and_header_field_given_every_type,
    test_every_card_field_given_every_type,
)


def test_the_runs_reach_ten_thousand_payloads(world) -> None:
    """The invariant held for more than 10,000 payloads. After the runs above (pytest keeps file
    order) this only counts; run alone, or with only some of them, it runs the others first."""
    for run in COUNTING_TESTS:
        if run.__name__ not in FINISHED:
            run(world)
    assert len(COUNTED) >= 10_000
