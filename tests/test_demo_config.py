"""`kiosk demo --config FILE` with a full config, as staff would try their own: the demo simulates
the hardware and the platform, applies everything else, and says which settings it stood in for."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kiosk.config import SHIPPED_CONFIG
from kiosk.sim.demo import run_demo

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_the_demo_runs_a_full_device_config_on_simulated_hardware(tmp_path, caplog):
    config = tmp_path / "config.toml"
    # The shipped file as installed on a device: real drivers, the live data folder, English only.
    config.write_text(SHIPPED_CONFIG.read_text(encoding="utf-8").replace('language = "both"', 'language = "en"'))
    seen = {}

    def observe(kiosk, world) -> None:
        seen["language"] = kiosk.parts.screen.language
        seen["data_dir"] = Path(kiosk.config.kiosk.data_dir)

    with caplog.at_level(logging.WARNING, logger="kiosk.sim.demo"):
        summary = run_demo(visitors=3, headless=True, config_file=config, data_dir=tmp_path / "demo", observe=observe)
    assert summary["as_expected"] == 3 and "problem" not in summary, summary
    assert seen["language"] == "en", "the config's own settings apply"
    assert seen["data_dir"].is_relative_to(tmp_path / "demo"), "never the live kiosk's event log"
    said = " ".join(record.getMessage() for record in caplog.records)
    for key in ("kiosk.data_dir", "thermometer.driver", "camera.driver", "lights.driver", "platform.url"):
        assert key in said
    assert "language" not in said
