"""Mock GPIO pins of which some are held by another program, failing the way lgpio does on a Pi."""

from __future__ import annotations

import lgpio
from gpiozero.pins.mock import MockFactory, MockPin


class BusyPins(MockFactory):
    """gpiozero's MockFactory, except that claiming a pin in `busy` (BCM numbers) raises lgpio.error."""

    def __init__(self, busy: set[int]) -> None:
        self.busy = busy
        factory = self

        class Pin(MockPin):
            def __init__(self, owner: MockFactory, info) -> None:
                if info.name in {f"GPIO{number}" for number in factory.busy}:
                    raise lgpio.error("GPIO busy")  # neither an OSError nor a gpiozero error
                super().__init__(owner, info)

        super().__init__(pin_class=Pin)
