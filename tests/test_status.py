"""`kiosk status`: what a maintainer sees over SSH while the daemon keeps the event log open."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.config import Config, load, merged
from kiosk.events import Event, utc_iso
from kiosk.runtime import StatusReporter
from kiosk.sim.upstream import Fault, ReferenceUpstream
from kiosk.status import collect, render
from kiosk.sync.client import UpstreamClient
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import Uploader
from scene import Scene, run_scene
from kit import T0, FixedClock
from sync_helpers import routine, urgent

TOKEN = "s3cret-kiosk-token"


def write_config(folder: Path, url: str) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[kiosk]\nid = "gate-7"\ndata_dir = "{folder / "data"}"\n'
        f'[upstream]\nurl = "{url}"\ntoken = "{TOKEN}"\nbatch_size = 2\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def upstream_options() -> dict:
    return {"collector_token": TOKEN}


def daemon_state(config_path: Path, upstream: ReferenceUpstream, clock: FixedClock) -> EventStore:
    """What a running daemon leaves in its log: 2 events sent, then a failing collector, 3 waiting."""
    config = load(config_path)
    store = EventStore(config.store_path)
    uploader = Uploader(store, UpstreamClient(config.upstream), config.upstream, clock=clock)
    store.append(routine(1))
    store.append(routine(2))
    uploader.drain_once()
    clock.now += timedelta(minutes=5)
    store.append(routine(3))
    store.append(urgent(4))
    store.append(routine(5))
    upstream.inject(Fault("status", status=503, retry_after="120"))
    uploader.drain_once()
    return store


def test_the_table_shows_backlog_oldest_age_last_upload_and_last_error(tmp_path: Path, upstream: ReferenceUpstream) -> None:
    config_path = write_config(tmp_path, upstream.url)
    clock = FixedClock()
    store = daemon_state(config_path, upstream, clock)
    try:
        info = collect(load(config_path), now=T0 + timedelta(minutes=10))
    finally:
        store.close()
    assert info["upload_state"] == "retrying"
    assert (info["backlog"], info["urgent"], info["parked"]) == (3, 1, 0)
    assert info["oldest_unsent"] == routine(3).time  # the oldest waiting, though the urgent one goes first
    assert info["last_upload"] == utc_iso(T0)
    assert info["last_upload_age_s"] == 600.0
    assert info["last_error"] == "collector answered 503: injected fault 503"
    assert info["next_attempt_at"] == utc_iso(T0 + timedelta(minutes=5, seconds=120))
    table = render(info)
    assert "3 event(s) waiting, 1 of them urgent" in table
    assert "10 min ago" in table
    assert "RETRYING" in table and "collector answered 503" in table


@pytest.mark.slow
@pytest.mark.e2e
def test_kiosk_status_runs_beside_the_daemon_and_never_shows_a_secret(tmp_path: Path, upstream: ReferenceUpstream) -> None:
    config_path = write_config(tmp_path, upstream.url)
    store = daemon_state(config_path, upstream, FixedClock())
    try:  # the store stays open, as in the running daemon
        table = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(config_path)],
                               capture_output=True, text=True, timeout=60)
        as_json = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(config_path), "--json"],
                                 capture_output=True, text=True, timeout=60)
    finally:
        store.close()
    assert table.returncode == 0, table.stderr
    assert "3 event(s) waiting" in table.stdout
    assert "collector answered 503" in table.stdout
    info = json.loads(as_json.stdout)
    assert info["backlog"] == 3 and info["kiosk_id"] == "gate-7"
    for output in (table.stdout, table.stderr, as_json.stdout):
        assert TOKEN not in output


@pytest.mark.slow
@pytest.mark.e2e
def test_status_without_an_event_log_says_where_it_looked(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, "http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(config_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no event log here" in result.stderr
    assert str(tmp_path / "data" / "events.db") in result.stderr
    assert not (tmp_path / "data" / "events.db").exists()


# --- the daemon's side: what the kiosk is doing ----------------------------------------------------



class RefusedEdit:
    error = "thermometer.fever_c: Input should be less than or equal to 42 (got 73)"


@pytest.mark.slow
@pytest.mark.e2e
def test_status_shows_state_decisions_faults_and_a_refused_config(tmp_path):
    seen = {}

    def scene(s: Scene) -> None:
        reporter = StatusReporter(s.kiosk)
        s.kiosk.config_watcher = RefusedEdit()
        s.visit(s.code("green"))
        reporter.report()
        seen["serving"] = collect(s.kiosk.config)
        s.world.chip.plugged = False
        s.wait(lambda: s.kiosk.phase == "out_of_service", "out of service")
        reporter.report()
        seen["broken"] = collect(s.kiosk.config)
        s.world.chip.plugged = True
        s.wait(lambda: s.kiosk.phase == "idle", "recovery")

    run_scene(tmp_path, scene)
    serving, broken = seen["serving"], seen["broken"]
    assert serving["daemon_running"] and serving["state"] in ("idle", "verdict")
    assert serving["last_decisions"][0]["decision"] == "PASS"
    assert serving["camera"] == "ok" and serving["camera_fps"] > 0
    assert "thermometer.fever_c" in serving["config_error"]
    assert broken["state"] == "out_of_service" and "0x5A" in broken["thermometer"]
    table = render(broken)
    assert "out_of_service" in table and "REFUSED" in table and "0x5A" in table


def test_status_says_when_the_daemon_is_not_running(tmp_path):
    config = merged(Config(), {"kiosk": {"data_dir": str(tmp_path)}})
    with EventStore(config.store_path) as store:
        store.append(Event(time="2026-11-26T08:00:00.000Z", kiosk_id="k", site_id="s", decision="PASS", reasons=(),
                           temperature_c=36.5, code_colour="green", code_hash="0" * 64))
    info = collect(config)
    assert not info["daemon_running"]
    assert "NOT RUNNING" in render(info)
