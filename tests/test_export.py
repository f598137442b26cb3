"""`kiosk export`: a time range of the event log as CSV or JSON lines."""

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kiosk.errors import KioskError
from kiosk.events import Event
from kiosk.export import export, parse_moment
from kiosk.sync.store import EventStore

ROOT = Path(__file__).resolve().parent.parent


def event(time: str, decision: str = "PASS", reasons=()) -> Event:
    return Event(time=time, kiosk_id="k1", site_id="s1", decision=decision, reasons=tuple(reasons),
                 temperature_c=36.6, code_colour="green", code_hash="ab" * 32)


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        store.append(event("2026-11-25T23:59:59.000Z"))
        store.append(event("2026-11-26T08:00:00.000Z", "REFUSE", ["fever", "yellow_code"]))
        store.append(event("2026-11-26T12:00:00.000Z"))
        store.append(event("2026-11-27T00:00:00.000Z"))
    return path


def test_jsonl_for_one_day(store_path):
    out = io.StringIO()
    count = export(store_path, out, "jsonl", parse_moment("2026-11-26"), parse_moment("2026-11-27"))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == 2 and [r["time"] for r in rows] == ["2026-11-26T08:00:00.000Z", "2026-11-26T12:00:00.000Z"]
    assert rows[0]["reasons"] == ["fever", "yellow_code"]


def test_csv_has_a_header_and_joined_reasons(store_path):
    out = io.StringIO()
    export(store_path, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 4
    assert rows[1]["decision"] == "REFUSE" and rows[1]["reasons"] == "fever;yellow_code"
    assert rows[0]["code_hash"] == "ab" * 32


def test_bad_input_is_a_clear_error(tmp_path, store_path):
    with pytest.raises(KioskError, match="ISO 8601"):
        parse_moment("yesterday")
    with pytest.raises(KioskError, match="no event log"):
        export(tmp_path / "absent.db", io.StringIO(), "csv")
    assert parse_moment("2026-11-26T08:00:00+08:00") == datetime(2026, 11, 26, 0, 0, tzinfo=timezone.utc)


@pytest.mark.slow
@pytest.mark.e2e
def test_command(store_path, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[kiosk]\ndata_dir = "{store_path.parent}"\n')
    result = subprocess.run([sys.executable, "-m", "kiosk", "export", "--config", str(config), "--since",
                             "2026-11-26T00:00:00Z", "--format", "csv"], capture_output=True, text=True, cwd=ROOT,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1 + 3
    assert "3 event(s) exported" in result.stderr
    bad = subprocess.run([sys.executable, "-m", "kiosk", "export", "--config", str(config), "--since", "soon"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 1 and "ISO 8601" in bad.stderr and "Traceback" not in bad.stderr
