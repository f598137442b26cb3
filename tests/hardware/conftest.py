"""Smoke tests for the real device: they run only on a Raspberry Pi with the kiosk's parts wired."""

from pathlib import Path

import pytest

MODEL = Path("/proc/device-tree/model")


def on_raspberry_pi() -> bool:
    try:
        return "Raspberry Pi" in MODEL.read_text(errors="replace")
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    if on_raspberry_pi():
        return
    skip = pytest.mark.skip(reason="needs a Raspberry Pi with the kiosk's hardware")
    for item in items:
        if "tests/hardware" in str(item.fspath):
            item.add_marker(skip)
