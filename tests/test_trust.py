"""The signed trust list: signature, fetching with ETag from the reference upstream, disk, age."""

from __future__ import annotations

import base64
import json
import logging
import threading
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kiosk.codes import trustlist
from kiosk.codes.trust import TrustError
from kiosk.codes.trustlist import (
    MAX_LIST_BYTES,
    TrustListKeeper,
    load_operator_key,
    open_list,
    public_key_text,
    sign_list,
    store_from_document,
)
from kiosk.config import TrustSection
from kiosk.sim.credentials import (
    DEMO_OPERATOR_PUBLIC_KEY,
    DccIssuer,
    ShcIssuerSim,
    demo_operator_key,
    trust_list_document,
)
from kiosk.sim.population import Population
from kiosk.sim.upstream import Fault, ReferenceUpstream
from kit import FixedClock

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture()
def upstream_options(clock: FixedClock) -> dict:
    return {"population": Population(clock=clock)}


def keeper_for(upstream: ReferenceUpstream, path: Path, clock: FixedClock, **section) -> TrustListKeeper:
    settings = {"url": f"{upstream.url}/trust/list", "operator_key": DEMO_OPERATOR_PUBLIC_KEY, **section}
    return TrustListKeeper(TrustSection(**settings), path, utcnow=clock)


def document(issued_at: datetime = NOW) -> dict:
    return trust_list_document(issued_at, [DccIssuer()], [ShcIssuerSim()])


# -- the signature ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_signed_list_round_trip(kind: str) -> None:
    private = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    public = load_operator_key(public_key_text(private.public_key()))
    listed = document()
    assert open_list(sign_list(listed, private), public) == listed


def test_tampered_list_is_refused() -> None:
    header, payload = sign_list(document(), demo_operator_key()).split(b"\n", 1)
    listed = json.loads(payload)
    listed["dcc"].append(DccIssuer(country="ZZ").trust_entry())  # slip in a signer of one's own
    tampered = header + b"\n" + json.dumps(listed, separators=(",", ":"), sort_keys=True).encode()
    with pytest.raises(TrustError, match="does not verify"):
        open_list(tampered, load_operator_key(DEMO_OPERATOR_PUBLIC_KEY))


def test_list_signed_by_another_key_is_refused() -> None:
    envelope = sign_list(document(), ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(TrustError, match="does not verify"):
        open_list(envelope, load_operator_key(DEMO_OPERATOR_PUBLIC_KEY))
    p256 = load_operator_key(public_key_text(ec.generate_private_key(ec.SECP256R1()).public_key()))
    with pytest.raises(TrustError, match="Ed25519"):
        open_list(envelope, p256)


@pytest.mark.parametrize("envelope", [
    b"", b"not json", b"[]", b'{"format": "other"}', b'{"format": "kiosk-signed/1"}', b"kiosk-signed/2\n{}",
    b"kiosk-signed/2 Ed25519\n{}", b"kiosk-signed/2 Ed25519 !!!\n{}", b"kiosk-signed/2 HS256 AAAA\n{}",
    b"kiosk-signed/2 Ed25519 " + b"A" * 86 + b"\n{}", b"kiosk-signed/2 \xff\xfe AAAA\n{}", b"kiosk-signed/2" + b" " * 300,
])
def test_garbage_is_not_a_list(envelope: bytes) -> None:
    with pytest.raises(TrustError):
        open_list(envelope, load_operator_key(DEMO_OPERATOR_PUBLIC_KEY))


def test_a_list_of_the_old_form_says_so() -> None:
    old = json.dumps({"format": "kiosk-signed/1", "alg": "Ed25519", "payload": "e30", "signature": "AA"}).encode()
    with pytest.raises(TrustError, match="old kiosk-signed/1 form"):
        open_list(old, load_operator_key(DEMO_OPERATOR_PUBLIC_KEY))


def test_unsigned_bytes_are_never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever shape unsigned bytes have, the signature is checked first, over the raw bytes."""
    parsed: list[object] = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda *args, **kwargs: parsed.append(args) or real_loads(*args, **kwargs))
    key = load_operator_key(DEMO_OPERATOR_PUBLIC_KEY)
    header = sign_list(document(), demo_operator_key()).split(b"\n", 1)[0]
    for payload in (b"[" * 100_000 + b"]" * 100_000, b'{"format": "kiosk-trust-list/1", "dcc": 7}'):
        for envelope in (payload, header + b"\n" + payload):
            with pytest.raises(TrustError):
                open_list(envelope, key)
    assert parsed == []


def test_a_signed_list_nested_too_deep_is_refused_not_a_crash() -> None:
    """Even the operator's own key cannot make the kiosk's parser overflow its stack."""
    private = ed25519.Ed25519PrivateKey.generate()
    payload = b"[" * 100_000 + b"]" * 100_000
    signed = f"kiosk-signed/2 Ed25519 {base64.urlsafe_b64encode(private.sign(payload)).rstrip(b'=').decode()}\n"
    with pytest.raises(TrustError, match="not JSON"):
        open_list(signed.encode() + payload, load_operator_key(public_key_text(private.public_key())))


def test_one_bad_entry_does_not_take_the_others_down(caplog: pytest.LogCaptureFixture) -> None:
    good = document()
    good["dcc"].append({"kid": "AAAA", "certificate": base64.b64encode(b"not a certificate").decode()})
    good["shc"].append({"iss": "ftp://nope", "keys": []})
    store = store_from_document(good)
    assert sum(len(group) for group in store.dcc.values()) == 1 and len(store.shc) == 1
    assert "skipped" in caplog.text


def test_operator_key_forms() -> None:
    assert load_operator_key("") is None
    pem = "-----BEGIN PUBLIC KEY-----\n" + DEMO_OPERATOR_PUBLIC_KEY + "\n-----END PUBLIC KEY-----\n"
    assert public_key_text(load_operator_key(pem)) == DEMO_OPERATOR_PUBLIC_KEY
    with pytest.raises(TrustError):
        load_operator_key("not a key")


# -- the keeper ---------------------------------------------------------------------------------


def test_fetch_keep_on_disk_and_ask_with_etag(upstream, tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "kiosk" / "trust-list.json"
    keeper = keeper_for(upstream, path, clock)
    assert keeper.store is None and keeper.stale_problem(NOW).startswith("no trust list")
    assert keeper.refresh() == "updated"
    assert keeper.store.issued_at == NOW and keeper.stale_problem(NOW) is None
    assert upstream.credentials.dcc.kid in keeper.store.dcc
    assert set(keeper.store.shc) == {upstream.credentials.shc.iss}
    assert keeper.refresh() == "unchanged"  # If-None-Match answered 304
    # A new keeper (a restart, offline) starts from the file.
    again = TrustListKeeper(TrustSection(operator_key=DEMO_OPERATOR_PUBLIC_KEY, url="http://127.0.0.1:9/x"), path)
    assert again.store is not None and again.store.issued_at == NOW and again.etag == keeper.etag


def test_age_and_staleness(upstream, tmp_path: Path, clock: FixedClock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock, max_age_h=24)
    keeper.refresh()
    assert keeper.status(NOW + timedelta(hours=5)).to_dict()["age_h"] == 5.0
    later = NOW + timedelta(hours=25)
    assert "25 h old" in keeper.stale_problem(later)
    assert keeper.status(later).stale is True
    # The upstream re-signs hourly: fetching again makes it current.
    clock.now = later
    assert keeper.refresh() == "updated" and keeper.stale_problem(later) is None


def test_older_list_is_not_taken_back(upstream, tmp_path: Path, clock: FixedClock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock)
    keeper.refresh()
    clock.now = NOW - timedelta(days=3)  # the upstream now serves a list signed three days earlier
    upstream._trust = None
    with pytest.raises(TrustError, match="older than the newest accepted"):
        keeper.refresh()
    assert keeper.store.issued_at == NOW


def test_upstream_down_keeps_the_list_in_use(upstream, tmp_path: Path, clock: FixedClock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock)
    keeper.refresh()
    upstream.stop()
    with pytest.raises(TrustError, match="cannot fetch"):
        keeper.refresh()
    assert keeper.store is not None and keeper.status(NOW).error.startswith("cannot fetch")


def test_tampered_file_on_disk_is_not_used(upstream, tmp_path: Path, clock: FixedClock, caplog) -> None:
    path = tmp_path / "t.json"
    keeper_for(upstream, path, clock).refresh()
    signed = path.read_bytes()
    path.write_bytes(signed.replace(b'"issued_at":"2026', b'"issued_at":"2027'))  # a year's more life
    assert path.read_bytes() != signed
    caplog.set_level(logging.WARNING)
    keeper = keeper_for(upstream, path, clock)
    assert keeper.store is None and "not usable" in caplog.text
    assert keeper.refresh() == "updated"  # replaced at the next fetch (no ETag sent for a list not in use)


def test_wrong_operator_key_refuses_the_upstreams_list(upstream, tmp_path: Path, clock: FixedClock) -> None:
    other = public_key_text(ed25519.Ed25519PrivateKey.generate().public_key())
    keeper = keeper_for(upstream, tmp_path / "t.json", clock, operator_key=other)
    with pytest.raises(TrustError, match="does not verify"):
        keeper.refresh()
    assert keeper.store is None and not (tmp_path / "t.json").exists()
    assert not (tmp_path / "t.state.json").exists()


def test_no_operator_key_means_no_list(tmp_path: Path) -> None:
    keeper = TrustListKeeper(TrustSection(), tmp_path / "t.json")
    assert keeper.status().configured is False
    assert "operator key" in keeper.stale_problem(NOW)
    with pytest.raises(TrustError):
        keeper.refresh()


def test_run_fetches_until_stopped(upstream, tmp_path: Path, clock: FixedClock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock)
    stop = threading.Event()
    thread = threading.Thread(target=keeper.run, args=(stop,))
    thread.start()
    try:
        for _ in range(500):
            if keeper.store is not None:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert keeper.store is not None and not thread.is_alive()


# -- hostile and misdated lists ---------------------------------------------------------------------


def deeply_nested() -> bytes:
    return b"[" * 100_000 + b"]" * 100_000


def test_keeper_survives_whatever_it_is_sent(upstream, tmp_path: Path, clock: FixedClock, monkeypatch, caplog) -> None:
    """Hostile answers cost an attempt each, never the keeper's thread; the real list then arrives."""
    monkeypatch.setattr(trustlist, "RETRY_S", 0.02)
    hostile = [deeply_nested(), b'{"format":"kiosk-signed/1","x":' + deeply_nested() + b"}", b"\xff" * 1000,
               b"kiosk-signed/2 Ed25519 AAAA\n" + deeply_nested()]
    upstream.inject(*(Fault("answer", route="trust", body=body) for body in hostile))
    keeper = keeper_for(upstream, tmp_path / "t.json", clock, refresh_s=10)
    stop = threading.Event()
    thread = threading.Thread(target=keeper.run, args=(stop,), name="trust-keeper")
    caplog.set_level(logging.WARNING)
    thread.start()
    try:
        for _ in range(1000):
            if keeper.store is not None or not thread.is_alive():
                break
            stop.wait(0.01)
        assert thread.is_alive(), "the keeper's thread died"
        assert keeper.store is not None and keeper.store.issued_at == NOW
    finally:
        stop.set()
        thread.join(timeout=5)
    assert upstream.pending_faults == 0
    assert caplog.text.count("trust list: ") >= len(hostile) and "Traceback" not in caplog.text


def test_backoff_grows_after_failures_and_resets(tmp_path: Path) -> None:
    keeper = TrustListKeeper(TrustSection(operator_key=DEMO_OPERATOR_PUBLIC_KEY, url="http://127.0.0.1:9/x",
                                          refresh_s=3600), tmp_path / "t.json", jitter=lambda: 0.999)
    assert keeper.retry_in() == 3600
    waits = []
    for _ in range(6):
        with pytest.raises(TrustError):
            keeper.refresh()
        waits.append(round(keeper.retry_in()))
    assert waits == [60, 120, 240, 480, 900, 900]


def test_oversized_list_is_cut_off_while_it_arrives(upstream, tmp_path: Path, clock: FixedClock) -> None:
    item = b'{"a":1,"b":[1,2]},'
    body = b"[" + item * (30 * 1024 * 1024 // len(item)) + b"{}]"  # 30 MB of unsigned objects
    upstream.inject(Fault("answer", route="trust", body=body))
    keeper = keeper_for(upstream, tmp_path / "t.json", clock, timeout_s=30)
    tracemalloc.start()
    try:
        with pytest.raises(TrustError, match=f"larger than {MAX_LIST_BYTES} bytes"):
            keeper.refresh()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_LIST_BYTES  # the list is never held whole, let alone parsed
    assert keeper.refresh() == "updated"


def test_a_list_dated_in_the_future_is_refused_and_blocks_nothing(upstream, tmp_path: Path, clock: FixedClock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock)
    future = sign_list(document(NOW + timedelta(days=30)), demo_operator_key())
    upstream.inject(Fault("answer", route="trust", body=future))
    with pytest.raises(TrustError, match="ahead of this kiosk's clock"):
        keeper.refresh()
    assert keeper.store is None
    assert keeper.refresh() == "updated" and keeper.store.issued_at == NOW
    # A few minutes ahead is clock skew between the operator's machine and the kiosk: accepted.
    upstream.inject(Fault("answer", route="trust", body=sign_list(document(NOW + timedelta(minutes=5)), demo_operator_key())))
    assert keeper.refresh() == "updated"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "deleted", "old form"])
def test_after_the_stored_list_is_damaged_an_older_list_is_still_refused(
    upstream, tmp_path: Path, clock: FixedClock, damage: str
) -> None:
    path = tmp_path / "t.json"
    keeper_for(upstream, path, clock).refresh()
    if damage == "garbage":
        path.write_bytes(b"\x00" * 100)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(b'{"format":"kiosk-signed/1"}')
    restarted = keeper_for(upstream, path, clock)
    assert restarted.store is None
    older = sign_list(document(NOW - timedelta(days=3)), demo_operator_key())
    upstream.inject(Fault("answer", route="trust", body=older))
    with pytest.raises(TrustError, match="older than the newest accepted"):
        restarted.refresh()
    assert restarted.store is None
    assert restarted.refresh() == "updated" and restarted.store.issued_at == NOW


def test_an_older_genuine_list_put_back_on_disk_is_not_used(upstream, tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "t.json"
    keeper_for(upstream, path, clock).refresh()  # the current list, issued NOW
    # A backup restored over it: signed by the operator, but three days older.
    path.write_bytes(sign_list(document(NOW - timedelta(days=3)), demo_operator_key()))
    restarted = keeper_for(upstream, path, clock)
    assert restarted.store is None and "older" in (restarted.error or "")
    assert restarted.refresh() == "updated" and restarted.store.issued_at == NOW  # fetched in full, not a 304


def test_a_damaged_state_file_falls_back_to_the_lists_own_date(upstream, tmp_path: Path, clock: FixedClock, caplog) -> None:
    path = tmp_path / "t.json"
    keeper_for(upstream, path, clock).refresh()
    (tmp_path / "t.state.json").write_bytes(b"[" * 100_000)
    caplog.set_level(logging.WARNING)
    restarted = keeper_for(upstream, path, clock)
    assert restarted.store is not None and "state file" in caplog.text
    upstream.inject(Fault("answer", route="trust", body=sign_list(document(NOW - timedelta(days=3)), demo_operator_key())))
    with pytest.raises(TrustError, match="older than the newest accepted"):
        restarted.refresh()
    assert restarted.store.issued_at == NOW


@pytest.mark.parametrize("kind", ["trickle", "trickle_head"])
def test_a_trickled_list_ends_at_the_deadline(upstream, tmp_path: Path, clock: FixedClock, kind: str) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock, timeout_s=0.5)
    upstream.inject(Fault(kind, route="trust", seconds=0.05))  # the list would take over a minute
    with pytest.raises(TrustError, match="no complete answer within 0.5 s"):
        keeper.refresh()
    assert upstream.stats["trickled"] == 0  # it gave up while the list was still arriving
    assert keeper.store is None
    assert keeper.refresh() == "updated"
