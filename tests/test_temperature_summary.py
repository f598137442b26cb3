"""The last hour's temperatures in `kiosk status`: cold arrivals and drift, as a maintainer sees them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.app import Decided
from kiosk.config import Config, merged
from kiosk.decision import Reason, Verdict
from kiosk.events import Event, utc_iso
from kiosk.runtime import StatusReporter
from kiosk.status import collect, render
from kiosk.sync.store import EventStore
from kiosk.temperature_summary import TemperatureWatch, summarise
from scene import Scene, run_scene

NOW = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)


def measured(minutes_ago: float, celsius: float | None, site: str = "forehead", cold_floor: float = 35.5,
             fever: float = 37.3) -> Event:
    """A decision event as the kiosk logs it for a green code and this body estimate."""
    if celsius is None:
        decision, reasons = "REFUSE", ("sensor_fault",)
    elif celsius < cold_floor:
        decision, reasons = "REFUSE", ("remeasure",)
    elif celsius >= fever:
        decision, reasons = "REFUSE", ("fever",)
    else:
        decision, reasons = "PASS", ()
    return Event(time=utc_iso(NOW - timedelta(minutes=minutes_ago)), kiosk_id="gate-3", site_id="north",
                 decision=decision, reasons=reasons, temperature_c=celsius, code_colour="green",
                 code_hash="ab" * 32, temperature_site=site if celsius is not None else None,
                 temperature_fault="no thermometer answers at I2C address 0x5A" if celsius is None else None)


def crowd(site: str, cold: int, healthy: int = 30, fevers: int = 1, healthy_c: float = 36.5) -> list[Event]:
    events = [measured(50 - i, healthy_c + (i % 5 - 2) * 0.1, site) for i in range(healthy)]
    events += [measured(20 + i, 34.1 + i * 0.1, site) for i in range(cold)]
    events += [measured(5, 38.4, site) for _ in range(fevers)]
    return events


def test_a_forehead_kiosk_where_many_arrive_cold_is_told_to_measure_the_wrist():
    summary = summarise(crowd("forehead", cold=12), site="forehead")
    assert (summary.measured, summary.cold, summary.fever, summary.faults) == (43, 12, 1, 0)
    assert summary.median_c == 36.5  # the visitors asked to wait do not drag the crowd's median down
    assert list(summary.advice) == ["cold_arrivals"]
    assert "28% of visitors read too cold" in summary.advice["cold_arrivals"]
    assert 'thermometer.site = "wrist"' in summary.advice["cold_arrivals"]


def test_a_wrist_kiosk_is_told_about_cold_arrivals_but_not_to_change_site():
    summary = summarise(crowd("wrist", cold=4), site="wrist")
    advice = summary.advice["cold_arrivals"]
    assert list(summary.advice) == ["cold_arrivals"]
    assert "read too cold" in advice and "thermometer.site" not in advice


def test_a_few_cold_visitors_or_a_quiet_hour_give_no_advice():
    assert summarise(crowd("forehead", cold=1), site="forehead").advice == {}  # 1 in 32: under 5 %
    quiet = summarise(crowd("forehead", cold=3, healthy=10), site="forehead")  # 14 measured: too few to judge
    assert quiet.cold == 3 and quiet.advice == {}


def test_a_crowd_reading_low_points_at_the_sensor():
    summary = summarise(crowd("wrist", cold=0, healthy_c=35.8), site="wrist")
    assert summary.median_c == 35.8
    assert list(summary.advice) == ["median_drift"]
    assert "kiosk calibrate" in summary.advice["median_drift"] and "35.8" in summary.advice["median_drift"]


def test_faults_are_counted_and_records_that_are_not_decisions_are_skipped():
    loss = Event(time=utc_iso(NOW), kiosk_id="gate-3", site_id="north", decision="LOSS", reasons=(),
                 temperature_c=None, code_colour=None, code_hash=None, kind="loss", detail={"dropped": 3})
    summary = summarise([measured(3, None), measured(2, 36.6), loss], site="wrist")
    assert (summary.measured, summary.faults, summary.median_c) == (1, 1, 36.6)
    assert summary.site == "forehead"  # the site the events were measured at
    assert "1 measured, median 36.6 °C; 0 refused for fever, 0 asked to wait for cold (0%), 1 sensor fault(s)" \
        == summary.describe()


@pytest.mark.slow
@pytest.mark.e2e
def test_kiosk_status_shows_only_the_last_hour_and_its_advice(tmp_path: Path):
    config = merged(Config(), {"kiosk": {"data_dir": str(tmp_path / "data")}, "thermometer": {"site": "forehead"}})
    with EventStore(config.store_path) as store:
        for event in crowd("forehead", cold=4):
            store.append(event)
        store.append(measured(90, 34.0))  # an hour and a half ago: outside the window
    info = collect(config, now=NOW)
    assert info["temperatures"]["measured"] == 35 and info["temperatures"]["cold"] == 4
    table = render(info)
    assert "last hour: 35 measured, median 36.5 °C; 1 refused for fever, 4 asked to wait for cold (11%)" in table
    assert "ADVICE" in table and "measure at the wrist" in table
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    as_json = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(config_path), "--json"],
                             capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    # Run now, a long time after NOW: the hour is empty, and says so.
    assert json.loads(as_json.stdout)["temperatures"]["text"] == "no visitors measured in the last hour"


@pytest.mark.slow
@pytest.mark.e2e
def test_a_cold_arrival_at_the_real_kiosk_shows_in_the_status(tmp_path: Path):
    seen = {}

    def scene(s: Scene) -> None:
        s.visit(s.code("green"), skin_c=33.0)  # straight in from the cold
        s.visit(s.code("green", person=1))
        seen["info"] = collect(s.kiosk.config)

    run_scene(tmp_path, scene)
    temperatures = seen["info"]["temperatures"]
    assert (temperatures["measured"], temperatures["cold"], temperatures["fever"]) == (2, 1, 0)
    assert 36.0 <= temperatures["median_c"] <= 37.0
    assert temperatures["advice"] == {}  # two visitors say nothing about the crowd


def test_the_daemon_log_carries_each_piece_of_advice_once_until_it_clears():
    watch = TemperatureWatch("forehead")
    said, cleared = [], []
    clock = 0.0
    for event in crowd("forehead", cold=0, healthy=25):
        clock += 10
        watch.add(event, clock)
        fresh, gone = watch.check(clock)
        said += fresh
        cleared += gone
    assert said == [] and cleared == []
    for minute in range(4):  # a cold spell: four visitors straight in from outside
        clock += 60
        watch.add(measured(0, 34.2 + minute * 0.2), clock)
        fresh, _ = watch.check(clock)
        said += fresh
    assert len(said) == 1 and "read too cold" in said[0] and "wrist" in said[0]
    # An hour of indoor visitors later the cold ones have left the window, and the advice clears.
    for event in crowd("forehead", cold=0, healthy=25):
        clock += 180
        watch.add(event, clock)
        fresh, gone = watch.check(clock)
        said += fresh
        cleared += gone
    assert len(said) == 1 and cleared == ["cold_arrivals"]


@pytest.mark.slow
@pytest.mark.e2e
def test_the_running_kiosk_logs_cold_advice(tmp_path: Path, caplog):
    def scene(s: Scene) -> None:
        reporter = StatusReporter(s.kiosk)
        for event in crowd("wrist", cold=4):
            verdict = Verdict(event.decision, tuple(Reason(r) for r in event.reasons))
            reporter.on_decided(Decided(verdict, event, 10.0))
            reporter.check_temperatures()

    with caplog.at_level(logging.INFO, logger="kiosk.runtime"):
        run_scene(tmp_path, scene)
    warnings = [r.getMessage() for r in caplog.records if r.name == "kiosk.runtime" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "read too cold" in warnings[0]
