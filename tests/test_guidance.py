"""The pages' guidance rules on their own: which hint a visitor reads and how full the bar is."""

from __future__ import annotations

import pytest

from kiosk.guidance import guide
from kiosk.sensors.thermometry import ThermometryState

MEASURING = ThermometryState(phase="measuring", progress=0.437)
WARM_BUT_FAR = ThermometryState(phase="absent", closer=True)


def test_the_bar_moves_in_visible_steps_and_is_full_once_the_reading_is_taken() -> None:
    assert guide("measuring", MEASURING, None, code_read=True, temperature_taken=False) == (0.4, None)
    assert guide("hold_still", MEASURING, None, code_read=True, temperature_taken=True) == (1.0, None)


@pytest.mark.parametrize("kind", ["idle", "prompt_code", "prompt_wrist"])
def test_pages_that_measure_nothing_have_no_bar(kind) -> None:
    assert guide(kind, MEASURING, None, code_read=False, temperature_taken=False)[0] is None


def test_the_cameras_hint_is_shown_until_the_code_is_read() -> None:
    assert guide("idle", WARM_BUT_FAR, "brighter", code_read=False, temperature_taken=False) == (None, "brighter")
    assert guide("measuring", WARM_BUT_FAR, "brighter", code_read=True, temperature_taken=False) == (None, "wrist_closer")


def test_the_wrist_hint_only_while_a_wrist_is_awaited() -> None:
    assert guide("idle", WARM_BUT_FAR, None, code_read=False, temperature_taken=False)[1] == "wrist_closer"
    assert guide("prompt_code", WARM_BUT_FAR, None, code_read=False, temperature_taken=True)[1] is None
    assert guide("idle", ThermometryState(phase="absent"), None, code_read=False, temperature_taken=False)[1] is None
