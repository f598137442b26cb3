"""The whole kiosk, end to end on simulated hardware: the demo's scripted queue of visitors.

Checks what each party would notice: the visitor (verdict, reason, screen colour, lights, gate),
the maintainer (rows in the local log) and the operator (events at the collector, each once).
"""

import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from kiosk.sim.collector import Collector
from kiosk.sim.demo import run_demo
from kiosk.sim.scenario import FAMILY_PHONE, SCRIPT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

GREEN_PIN, RED_PIN, RELAY_PIN = 17, 27, 23


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    pins_at_verdict = []

    def observe(kiosk, world):
        def record(decided):
            pin = world.pin_factory.pin
            pins_at_verdict.append({
                "outcome": decided.verdict.outcome,
                "green": pin(GREEN_PIN).state,
                "red": pin(RED_PIN).state,
                "relay": pin(RELAY_PIN).state,
            })
        kiosk.listeners.append(record)

    summary = run_demo(visitors=len(SCRIPT), headless=True, screenshots=root / "shots", data_dir=root / "data",
                       observe=observe)
    return {"summary": summary, "pins": pins_at_verdict, "root": root}


def test_every_visitor_gets_the_expected_verdict_and_reason(demo):
    summary = demo["summary"]
    assert "problem" not in summary
    assert summary["visitors"] == len(SCRIPT)
    assert summary["as_expected"] == len(SCRIPT)
    expected_pass = sum(1 for v in SCRIPT if v.expect_outcome == "PASS")
    assert summary["pass"] == expected_pass
    assert summary["refuse"] == len(SCRIPT) - expected_pass
    for reason in ("fever", "yellow_code", "red_code", "stale_code", "unknown_code", "remeasure", "sensor_fault"):
        assert summary["by_reason"].get(reason) == 1, reason


def test_lights_and_gate_follow_the_verdict(demo):
    assert len(demo["pins"]) == len(SCRIPT)
    for pins in demo["pins"]:
        if pins["outcome"] == "PASS":
            assert (pins["green"], pins["red"], pins["relay"]) == (True, False, True)
        else:
            assert (pins["green"], pins["red"], pins["relay"]) == (False, True, False)


def _dominant(path: Path) -> tuple[int, int, int]:
    image = Image.open(path).convert("RGB").resize((80, 48))
    colours = image.getcolors(80 * 48)
    return max(colours)[1]


def test_screenshots_show_each_state_in_its_colour(demo):
    shots = demo["root"] / "shots"
    names = {p.stem for p in shots.glob("*.png")}
    assert {"idle", "measuring", "pass", "out_of_service", "refuse-fever", "refuse-sensor_fault"} <= names
    assert {"family_keypad", "family_choose"} <= names  # the visitor without a phone used the keypad
    r, g, b = _dominant(shots / "pass.png")
    assert g > r + 40 and g > b + 40
    for refusal in [n for n in names if n.startswith("refuse-")]:
        r, g, b = _dominant(shots / f"{refusal}.png")
        assert r > g + 60 and r > b + 60, refusal
    assert _dominant(shots / "out_of_service.png") != _dominant(shots / "idle.png")


def test_local_log_has_one_row_per_decision_and_no_code_content(demo):
    db = demo["root"] / "data" / "kiosk" / "events.db"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        bodies = [json.loads(row[0]) for row in connection.execute("SELECT body FROM events")]
    assert len(bodies) == len(SCRIPT)
    assert len({b["id"] for b in bodies}) == len(SCRIPT)
    for body in bodies:
        assert body["kiosk_id"] == "demo-gate-01" and body["site_id"] == "demo-site"
        assert body["time"].endswith("Z")
        assert len(body["code_hash"]) == 64
        assert body["temperature_c"] is None or round(body["temperature_c"], 1) == body["temperature_c"]
    raw = b"".join(p.read_bytes() for p in db.parent.glob("events.db*"))
    assert b"HCP1:" not in raw  # the codes themselves never reach the disk
    assert "张".encode() not in raw  # nor any name
    assert FAMILY_PHONE.encode() not in raw  # nor the number typed on the keypad
    # Both people without phones (a printed card, a number on the keypad) passed on proxy codes.
    proxies = [b for b in bodies if b["proxy"]]
    assert len(proxies) == sum(1 for v in SCRIPT if v.proxy) == 2
    assert all(b["decision"] == "PASS" for b in proxies)


def test_collector_received_each_event_exactly_once(demo):
    summary = demo["summary"]
    assert summary["events_logged"] == summary["events_sent"] == summary["events_received"] == len(SCRIPT)
    db = demo["root"] / "data" / "kiosk" / "events.db"
    with sqlite3.connect(db) as connection:
        local_ids = {row[0] for row in connection.execute("SELECT id FROM events")}
    received = Collector(demo["root"] / "data" / "upstream" / "collector.db").events()
    assert sorted(e["id"] for e in received) == sorted(local_ids)


def test_decision_latency_is_reported(demo):
    summary = demo["summary"]
    assert summary["p50_ms"] is not None and summary["p95_ms"] >= summary["p50_ms"] > 0
