"""The replay guard: an accepted code shown again within the window is refused, and only hashes are kept."""

from __future__ import annotations

import sqlite3
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import base45
import pytest

from kiosk.codes.clock import ClockCheck
from kiosk.codes.hashing import CodeHasher
from kiosk.codes.platform import PlatformVerifier
from kiosk.codes.replay import ReplayGuard
from kiosk.codes.router import CodeRouter, FixedTrust
from kiosk.codes.trust import TrustStore
from kiosk.config import Config
from kiosk.sim.credentials import DccIssuer, ShcIssuerSim

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
SECRET = b"install-secret-for-tests-0123456789"


class Seconds:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_seen_within_the_window_only(tmp_path: Path, where: str) -> None:
    clock = Seconds()
    guard = ReplayGuard(300, tmp_path / "replay.db" if where == "sqlite" else None, clock=clock)
    assert not guard.seen("k1")
    guard.accept("k1")
    clock.now += 299
    assert guard.seen("k1") and not guard.seen("k2")
    clock.now += 1
    assert not guard.seen("k1")


def test_a_clock_stepped_back_does_not_forget(tmp_path: Path) -> None:
    clock = Seconds()
    guard = ReplayGuard(300, clock=clock)
    guard.accept("k")
    clock.now -= 120
    assert guard.seen("k")


def test_window_zero_turns_it_off(tmp_path: Path) -> None:
    guard = ReplayGuard(0, tmp_path / "replay.db")
    guard.accept("k")
    assert not guard.seen("k") and not (tmp_path / "replay.db").exists()


def test_sqlite_survives_a_restart_and_forgets_old_entries(tmp_path: Path) -> None:
    clock = Seconds()
    path = tmp_path / "replay.db"
    guard = ReplayGuard(300, path, clock=clock)
    guard.accept("old")
    clock.now += 200
    guard.accept("new")
    guard.close()
    again = ReplayGuard(300, path, clock=clock)
    assert again.seen("old") and again.seen("new")
    clock.now += 250  # "old" is 450 s old now; the next accept prunes it
    again.accept("newest")
    assert len(again) == 2 and not again.seen("old")


# -- through the router -------------------------------------------------------------------------


@pytest.fixture()
def issuers() -> tuple[DccIssuer, ShcIssuerSim]:
    return DccIssuer(), ShcIssuerSim()


def router(tmp_path: Path, issuers, clock: Seconds) -> CodeRouter:
    dcc, shc = issuers
    config = Config()
    hasher = CodeHasher(SECRET)
    return CodeRouter(
        config, hasher,
        PlatformVerifier(config.platform.model_copy(update={"url": "http://127.0.0.1:9/platform"}), hasher),
        FixedTrust(TrustStore.build([dcc.signer()], [shc.issuer()])),
        replay=ReplayGuard(300, tmp_path / "replay.db", clock=clock),
        clock_check=ClockCheck("off"),
        utcnow=lambda: NOW,
    )


def test_replayed_certificate_is_refused(tmp_path: Path, issuers) -> None:
    clock = Seconds()
    dcc, shc = issuers
    verifier = router(tmp_path, issuers, clock)
    for payload in (dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=100)), shc.issue(NOW - timedelta(days=1))):
        first = verifier.verify(payload)
        assert first.reasons == () and first.colour == "green"
        assert verifier.verify(payload).reasons == ()  # verified but nobody let in yet: not a replay
        verifier.accepted(first)
        second = verifier.verify(payload)
        assert second.reasons == ("replayed",) and "300 s" in second.problem
        clock.now += 301
        assert verifier.verify(payload).reasons == ()
    verifier.close()


def test_a_reencoded_copy_of_the_same_certificate_is_a_replay(tmp_path: Path, issuers) -> None:
    dcc, _ = issuers
    verifier = router(tmp_path, issuers, Seconds())
    payload = dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=100))
    verifier.accepted(verifier.verify(payload))
    cose = zlib.decompress(base45.b45decode(payload[4:]))
    copy = "HC1:" + base45.b45encode(zlib.compress(cose, 1)).decode()
    assert copy != payload
    assert verifier.verify(copy).reasons == ("replayed",)
    verifier.close()


def test_only_keyed_hashes_are_stored(tmp_path: Path, issuers) -> None:
    dcc, _ = issuers
    verifier = router(tmp_path, issuers, Seconds())
    payload = dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=100))
    verifier.accepted(verifier.verify(payload))
    verifier.close()
    raw = (tmp_path / "replay.db").read_bytes()
    assert payload[4:40].encode() not in raw and b"Zhang" not in raw
    keys = [row[0] for row in sqlite3.connect(tmp_path / "replay.db").execute("SELECT key FROM accepted")]
    assert len(keys) == 1 and len(keys[0]) == 64 and keys[0] != CodeHasher(SECRET).hash(payload)


def test_a_refused_code_is_never_a_replay(tmp_path: Path, issuers) -> None:
    dcc, _ = issuers
    verifier = router(tmp_path, issuers, Seconds())
    expired = dcc.issue(NOW - timedelta(days=100), NOW - timedelta(days=1))
    verifier.accepted(verifier.verify(expired))  # (the kiosk would not; the guard still remembers)
    assert verifier.verify(expired).reasons == ("expired",)
    verifier.close()
