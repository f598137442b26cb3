"""The signed trust list: signature, fetching with ETag from the reference upstream, disk, age."""

from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kiosk.codes.trust import TrustError
from kiosk.codes.trustlist import (
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
from kiosk.sim.upstream import ReferenceUpstream

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture()
def upstream(tmp_path: Path, clock: Clock) -> Iterator[ReferenceUpstream]:
    with ReferenceUpstream(data_dir=tmp_path / "upstream", population=Population(clock=clock)) as server:
        yield server


def keeper_for(upstream: ReferenceUpstream, path: Path, clock: Clock, **section) -> TrustListKeeper:
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
    envelope = json.loads(sign_list(document(), demo_operator_key()))
    payload = json.loads(base64.urlsafe_b64decode(envelope["payload"] + "=="))
    payload["dcc"].append(DccIssuer(country="ZZ").trust_entry())  # slip in a signer of one's own
    envelope["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(TrustError, match="does not verify"):
        open_list(json.dumps(envelope).encode(), load_operator_key(DEMO_OPERATOR_PUBLIC_KEY))


def test_list_signed_by_another_key_is_refused() -> None:
    envelope = sign_list(document(), ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(TrustError, match="does not verify"):
        open_list(envelope, load_operator_key(DEMO_OPERATOR_PUBLIC_KEY))
    p256 = load_operator_key(public_key_text(ec.generate_private_key(ec.SECP256R1()).public_key()))
    with pytest.raises(TrustError, match="Ed25519"):
        open_list(envelope, p256)


@pytest.mark.parametrize("envelope", [b"not json", b"[]", b'{"format": "other"}', b'{"format": "kiosk-signed/1"}'])
def test_garbage_is_not_a_list(envelope: bytes) -> None:
    with pytest.raises(TrustError):
        open_list(envelope, load_operator_key(DEMO_OPERATOR_PUBLIC_KEY))


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


def test_fetch_keep_on_disk_and_ask_with_etag(upstream, tmp_path: Path, clock: Clock) -> None:
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


def test_age_and_staleness(upstream, tmp_path: Path, clock: Clock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock, max_age_h=24)
    keeper.refresh()
    assert keeper.status(NOW + timedelta(hours=5)).to_dict()["age_h"] == 5.0
    later = NOW + timedelta(hours=25)
    assert "25 h old" in keeper.stale_problem(later)
    assert keeper.status(later).stale is True
    # The upstream re-signs hourly: fetching again makes it current.
    clock.now = later
    assert keeper.refresh() == "updated" and keeper.stale_problem(later) is None


def test_older_list_is_not_taken_back(upstream, tmp_path: Path, clock: Clock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock)
    keeper.refresh()
    clock.now = NOW - timedelta(days=3)  # the upstream now serves a list signed three days earlier
    upstream._trust = None
    with pytest.raises(TrustError, match="older than the one in use"):
        keeper.refresh()
    assert keeper.store.issued_at == NOW


def test_upstream_down_keeps_the_list_in_use(upstream, tmp_path: Path, clock: Clock) -> None:
    keeper = keeper_for(upstream, tmp_path / "t.json", clock)
    keeper.refresh()
    upstream.stop()
    with pytest.raises(TrustError, match="cannot fetch"):
        keeper.refresh()
    assert keeper.store is not None and keeper.status(NOW).error.startswith("cannot fetch")


def test_tampered_file_on_disk_is_not_used(upstream, tmp_path: Path, clock: Clock, caplog) -> None:
    path = tmp_path / "t.json"
    keeper_for(upstream, path, clock).refresh()
    saved = json.loads(path.read_text())
    saved["envelope"]["signature"] = saved["envelope"]["signature"][:-4] + "AAAA"
    path.write_text(json.dumps(saved))
    caplog.set_level(logging.WARNING)
    keeper = keeper_for(upstream, path, clock)
    assert keeper.store is None and "not usable" in caplog.text
    assert keeper.refresh() == "updated"  # replaced at the next fetch (no ETag sent for a list not in use)


def test_wrong_operator_key_refuses_the_upstreams_list(upstream, tmp_path: Path, clock: Clock) -> None:
    other = public_key_text(ed25519.Ed25519PrivateKey.generate().public_key())
    keeper = keeper_for(upstream, tmp_path / "t.json", clock, operator_key=other)
    with pytest.raises(TrustError, match="does not verify"):
        keeper.refresh()
    assert keeper.store is None and not (tmp_path / "t.json").exists()


def test_no_operator_key_means_no_list(tmp_path: Path) -> None:
    keeper = TrustListKeeper(TrustSection(), tmp_path / "t.json")
    assert keeper.status().configured is False
    assert "operator key" in keeper.stale_problem(NOW)
    with pytest.raises(TrustError):
        keeper.refresh()


def test_run_fetches_until_stopped(upstream, tmp_path: Path, clock: Clock) -> None:
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
