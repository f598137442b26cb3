"""`kiosk parked`: staff see the events the collector refused and queue them again over SSH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sync.client import UpstreamClient
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import Uploader
from kit import T0, FixedClock
from sync_helpers import make_event, routine

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-kiosk-token"


def kiosk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture
def upstream_options() -> dict:
    return {"collector_token": TOKEN}


@pytest.fixture
def config_path(tmp_path: Path, upstream: ReferenceUpstream) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n'
                    f'[upstream]\nurl = "{upstream.url}"\ntoken = "{TOKEN}"\n', encoding="utf-8")
    return path


def test_staff_list_the_refused_event_and_queue_it_again(config_path: Path, upstream: ReferenceUpstream) -> None:
    config = load(config_path)
    # The running kiosk's log: one event the collector refuses (a decision it does not know).
    store = EventStore(config.store_path)
    uploader = Uploader(store, UpstreamClient(config.upstream), config.upstream, clock=FixedClock(T0))
    store.append(routine(1))
    refused = store.append(make_event(2, decision="LATER"))
    uploader.drain_once()
    assert store.counts()["parked"] == 1

    listed = kiosk("parked", "--config", str(config_path))
    assert listed.returncode == 0, listed.stderr
    assert refused.id in listed.stdout and "decision" in listed.stdout
    assert "1 parked event(s)" in listed.stdout

    requeued = kiosk("parked", "--requeue", "--config", str(config_path))
    assert requeued.returncode == 0, requeued.stderr
    assert "1 parked event(s) queued for upload again" in requeued.stdout
    # The daemon's own connection sees it queued again, and its next upload sends it.
    counts = store.counts()
    assert (counts["parked"], counts["queued"]) == (0, 1)
    assert [event.id for event in store.unsent(10)] == [refused.id]
    store.close()


def test_the_collectors_reason_cannot_forge_terminal_lines(tmp_path: Path, config_path: Path) -> None:
    config = load(config_path)
    with EventStore(config.store_path) as store:
        event = store.append(routine(1))
        store.park({event.seq: "bad\n2026-11-30 ok \x1b[32mall sent"}, T0)
    listed = kiosk("parked", "--config", str(config_path))
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout
    assert "bad\\n2026-11-30 ok \\x1b[32mall sent" in listed.stdout


@pytest.mark.parametrize("flags", [(), ("--requeue",)])
def test_no_event_log_yet_is_a_clear_error(config_path: Path, flags: tuple[str, ...]) -> None:
    answer = kiosk("parked", *flags, "--config", str(config_path))
    assert answer.returncode == 1
    assert "no event log here" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert not load(config_path).store_path.exists()  # nothing created on the way
