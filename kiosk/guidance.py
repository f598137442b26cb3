"""What a page adds to guide the visitor: the reading's progress bar and the "what helps" line.

While a wrist is measured, the measuring pages carry the thermometry's progress (in PROGRESS_STEP
steps, full once the reading is taken). Until the code is read, the line is the camera's hint
("closer", "hold_still", "brighter"); while a wrist is awaited, the thermometer's "closer" as
"wrist_closer". Before the code is read the camera's hint comes first: the code is the step the
visitor is stuck on, and the hand holding the phone is often the warm thing near the sensor; once
it is read the camera has nothing more to say. The start page shows "wrist_closer" too: a visitor
who starts with the wrist, held too far, is not measured, so no visit begins and nothing else
would tell them.
"""

from __future__ import annotations

import math

from kiosk.display.state import Hint, Kind
from kiosk.sensors.thermometry import ThermometryState

# The progress bar moves in steps of this: a page differs from the one drawn only when the mark has
# visibly moved, so the loop does not redraw at every reading.
PROGRESS_STEP = 0.05
# The pages that show how far the reading has settled.
MEASURING_KINDS = ("measuring", "hold_still", "measuring_again")


def guide(kind: Kind, thermometry: ThermometryState, camera_hint: Hint | None, *,
          code_read: bool, temperature_taken: bool) -> tuple[float | None, Hint | None]:
    """The progress bar (None: no bar) and the hint line (None: no line) of a page of ``kind``."""
    progress: float | None = None
    if kind in MEASURING_KINDS:
        if temperature_taken:
            progress = 1.0
        elif thermometry.phase == "measuring":
            progress = round(math.floor(thermometry.progress / PROGRESS_STEP + 1e-9) * PROGRESS_STEP, 2)
    hint = None if code_read else camera_hint
    if hint is None and not temperature_taken and thermometry.closer:
        hint = "wrist_closer"
    return progress, hint
