"""Render every screen state to docs/screens/*.png (the pictures in the README).

    .venv/bin/python docs/screens.py [--language both|zh|en]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from kiosk.config import ScreenSection  # noqa: E402  (after choosing the SDL driver)
from kiosk.display.screen import Screen, ScreenState  # noqa: E402

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
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="both", choices=["both", "zh", "en"])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screens")
    args = parser.parse_args()
    with Screen(ScreenSection(mode="headless"), args.language) as screen:
        for name, state in STATES.items():
            screen.show(state)
            print(screen.screenshot(args.out / f"{name}.png"))


if __name__ == "__main__":
    main()
