"""The data folder is the kiosk's alone: a folder it creates is 0700 and every file in it 0600, even
when a `kiosk` command is run by hand from a shell whose umask is 022."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kiosk.codes.replay import ReplayGuard
from kiosk.codes.trustlist import TrustListKeeper
from kiosk.config import TrustSection
from kiosk.sim.credentials import DEMO_OPERATOR_PUBLIC_KEY
from kiosk.sim.population import Population
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sync.store import EventStore
from sync_helpers import routine

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def shell_umask():
    """What a maintainer's SSH shell usually has."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_event_log_and_a_folder_it_creates_are_private(tmp_path: Path, shell_umask) -> None:
    data = tmp_path / "new" / "data"
    with EventStore(data / "events.db") as store:
        store.append(routine(1))
        files = sorted(p.name for p in data.iterdir())
        assert {"events.db", "events.db-wal", "events.db-shm"} <= set(files)
        assert {name: mode(data / name) for name in files} == {name: 0o600 for name in files}
    assert mode(data) == 0o700
    assert mode(data.parent) == 0o755  # parents made on the way are ordinary folders


def test_an_existing_event_log_from_before_is_made_private(tmp_path: Path, shell_umask) -> None:
    with EventStore(tmp_path / "events.db") as store:
        store.append(routine(1))
    os.chmod(tmp_path / "events.db", 0o644)
    before = mode(tmp_path)
    with EventStore(tmp_path / "events.db") as store:
        assert len(store.events()) == 1
        assert mode(tmp_path / "events.db") == 0o600
    assert mode(tmp_path) == before  # a folder that was there is left as it was


def test_the_replay_hashes_are_private(tmp_path: Path, shell_umask) -> None:
    guard = ReplayGuard(300, tmp_path / "data" / "replay.db")
    guard.accept("k" * 64)
    guard.close()
    assert mode(tmp_path / "data") == 0o700
    assert all(mode(path) == 0o600 for path in (tmp_path / "data").iterdir())


def test_the_stored_trust_list_is_private(tmp_path: Path, shell_umask) -> None:
    now = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    with ReferenceUpstream(data_dir=tmp_path / "upstream", population=Population(clock=lambda: now)) as upstream:
        section = TrustSection(url=f"{upstream.url}/trust/list", operator_key=DEMO_OPERATOR_PUBLIC_KEY)
        keeper = TrustListKeeper(section, tmp_path / "data" / "trust-list.json", utcnow=lambda: now)
        assert keeper.refresh() == "updated"
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "trust-list.json") == 0o600


@pytest.mark.slow
@pytest.mark.e2e
def test_a_kiosk_started_by_hand_keeps_everything_private(tmp_path: Path) -> None:
    """`kiosk demo` runs the same parts as `kiosk run` (install secret, event log, trust list)."""
    result = subprocess.run([sys.executable, "-m", "kiosk", "demo", "--headless", "--visitors", "2"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300,
                            preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr[-3000:]
    # The demo keeps its own scratch folder (never a configured data_dir) and names it.
    data = Path(json.loads(result.stdout.strip().splitlines()[-1])["data_dir"]) / "kiosk"
    assert mode(data) == 0o700
    files = [path for path in data.rglob("*")]
    assert {"events.db", "install.key", "trust-list.json"} <= {path.name for path in files}
    assert {str(path): mode(path) for path in files if path.is_file()} == {
        str(path): 0o600 for path in files if path.is_file()}
