"""Render every screen state to docs/screens/*.png (the pictures in the README).

    .venv/bin/python docs/screens.py [--language both|zh|en]

The plain pages are drawn without a camera (as with ``screen.viewfinder = false``); the
``-viewfinder`` ones with a simulated camera frame of a visitor's phone, the ``large-`` ones with
``screen.text_size = "large"``.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from kiosk.config import ScreenSection  # noqa: E402  (after choosing the SDL driver)
from kiosk.display.screen import Screen  # noqa: E402
from kiosk.display.state import ScreenState  # noqa: E402
from kiosk.sim.qrframes import render_frame  # noqa: E402

STATES = {
    "idle": ScreenState(kind="idle", family_button=True),
    "measuring": ScreenState(kind="measuring", code_read=True),
    "hold_still": ScreenState(kind="hold_still", code_read=True),
    "measuring_again": ScreenState(kind="measuring_again", code_read=True),
    "prompt_code": ScreenState(kind="prompt_code", temperature_c=36.5),
    "prompt_wrist": ScreenState(kind="prompt_wrist"),
    "pass": ScreenState(kind="pass", temperature_c=36.6, holder="张*明"),
    "refuse-fever": ScreenState(kind="refuse", temperature_c=38.2, reasons=("fever",)),
    "refuse-yellow_code": ScreenState(kind="refuse", temperature_c=36.5, reasons=("yellow_code",)),
    "refuse-stale_code": ScreenState(kind="refuse", temperature_c=36.5, reasons=("stale_code",)),
    "refuse-cannot_verify": ScreenState(kind="refuse", temperature_c=36.4, reasons=("cannot_verify",)),
    "refuse-replayed": ScreenState(kind="refuse", temperature_c=36.5, reasons=("replayed",)),
    "out_of_service": ScreenState(kind="out_of_service", detail="thermometer: no thermometer answers at I2C address 0x5A"),
    # People without phones: the family member's phone number, then the names to choose from.
    "family_keypad": ScreenState(kind="family_keypad", entry="••• •••• 8001", entry_complete=True),
    "family_keypad-typing": ScreenState(kind="family_keypad", entry="•38 00"),
    "family_searching": ScreenState(kind="family_searching"),
    "family_choose": ScreenState(kind="family_choose", choices=("张*英", "王*宝")),
    "family_message-unknown": ScreenState(kind="family_message", reasons=("family_unknown",)),
    "family_message-rate_limited": ScreenState(kind="family_message", reasons=("family_rate_limited",)),
    # While a visitor is measured: the bar fills as the reading settles; a hint says what helps.
    "measuring-progress": ScreenState(kind="measuring", code_read=True, progress=0.6),
    "measuring-hint": ScreenState(kind="measuring", code_read=True, progress=0.2, hint="wrist_closer"),
}

# With the camera's live view (until the code is read).
VIEWFINDER_STATES = {
    "idle-viewfinder": ScreenState(kind="idle", family_button=True),
    "idle-viewfinder-hint": ScreenState(kind="idle", family_button=True, hint="closer"),
    "measuring-viewfinder": ScreenState(kind="measuring", progress=0.4),
    "prompt_code-viewfinder-hint": ScreenState(kind="prompt_code", temperature_c=36.5, hint="brighter"),
}

# screen.text_size = "large".
LARGE_STATES = {
    "large-idle-viewfinder": ScreenState(kind="idle", family_button=True),
    "large-measuring": ScreenState(kind="measuring", code_read=True, progress=0.6),
    "large-pass": ScreenState(kind="pass", temperature_c=36.6, holder="张*明"),
    "large-refuse-fever": ScreenState(kind="refuse", temperature_c=38.2, reasons=("fever",)),
}


def camera_frame():
    """The simulated camera's 320x240 view of a visitor holding up a code (fixed seed: same picture)."""
    return render_frame("HC1:NCFOXN%TSMAHN-HWWK2RL99TEZ", 320, 240, rng=random.Random(7))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="both", choices=["both", "zh", "en"])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screens")
    args = parser.parse_args()
    frame = camera_frame()
    runs = (
        (ScreenSection(mode="headless"), None, STATES),
        (ScreenSection(mode="headless"), lambda: frame, VIEWFINDER_STATES),
        (ScreenSection(mode="headless", text_size="large"), lambda: frame, LARGE_STATES),
    )
    for section, preview, states in runs:
        with Screen(section, args.language, preview=preview) as screen:
            for name, state in states.items():
                screen.show(state)
                print(screen.screenshot(args.out / f"{name}.png", camera=True))  # the simulated camera


if __name__ == "__main__":
    main()
