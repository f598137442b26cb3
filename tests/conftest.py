"""Shared test setup: pygame draws off-screen, and nothing here needs a display or a sound card.

The fixtures every area uses: `upstream` (the reference platform, trust list and log collector on
loopback; a module sets `upstream_options` to start it with tokens or a population on its own
clock) and `store` (an empty event log). Clocks and waiting are in kit.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from kiosk.sim.upstream import ReferenceUpstream  # noqa: E402
from kiosk.sync.store import EventStore  # noqa: E402


@pytest.fixture
def upstream_options() -> dict[str, Any]:
    """What `upstream` is started with besides its data folder (a module overrides this fixture)."""
    return {}


@pytest.fixture
def upstream(tmp_path: Path, upstream_options: dict[str, Any]) -> Iterator[ReferenceUpstream]:
    with ReferenceUpstream(data_dir=tmp_path / "upstream", **upstream_options) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    """An empty event log in the kiosk's data folder."""
    with EventStore(tmp_path / "kiosk" / "events.db") as opened:
        yield opened


@pytest.fixture
def screen() -> Iterator[Any]:
    """The 800x480 screen in both languages, drawn off-screen (SDL's dummy driver, set above)."""
    from kiosk.config import ScreenSection
    from kiosk.display.screen import Screen

    with Screen(ScreenSection(mode="headless"), "both") as opened:
        yield opened
