"""From skin temperature to body temperature: the heat-balance model, one coefficient per site.

An IR thermometer sees skin, and skin is cooler than the body: heat flows from the body's core
through the skin into the room, so the skin sits between the two. The heat-balance model used by
commercial skin thermometers (Pompei, US patent 6,056,435, Exergen: "a weighted difference of
surface temperature and ambient temperature") says the core is as far above the skin as the skin's
own difference to the room, times a coefficient ``k`` set by how well the site is perfused:

    body = skin + k × (skin − ambient)

``ambient`` is the sensor's own die temperature (RAM 0x06), which follows the room the sensor
stands in. The estimate is of the armpit temperature, the reference China's 37.3 °C checkpoint
threshold was set against.

Coefficients (both in config, ``thermometer.wrist_k`` and ``thermometer.forehead_k``):

- forehead 0.038: over rooms of 14–32 °C, forehead skin averaged 36.2 °C against an armpit 36.7 °C
  (Chen et al. 2022, Int. J. Environ. Res. Public Health 19:15883, 1080 measurements), a gap of
  0.5 °C; with skin 13.2 °C above a 23 °C room (the middle of that range), k = 0.5 / 13.2.
- wrist 0.030: the published non-contact fever cut-offs against the same armpit threshold are
  forehead 36.65 °C and wrist 36.75 °C (Lai et al. 2022, 904 people), so wrist skin sits 0.1 °C
  closer to the body: a 0.4 °C gap at 36.3 °C skin in the same room, k = 0.4 / 13.3.

What the model does not know (one person's skin running warmer than another's, sweat, a hat) is a
spread of a few tenths of a degree around it; `bench/thermometry.py` states the spread it assumes.
People straight in from the cold read far below the model (33.2 °C forehead on entry after
−5…0 °C outside, Dzien et al. 2020): their estimate falls under ``cold_floor_c`` and they are asked
to wait and measure again. A minute or two later a febrile one can read like a healthy person; the
sleeve-covered wrist cools about a third as much as the forehead (Chen et al. 2020), which is why
the wrist is the default site (docs/thermometry.md, "Benchmark").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Site = Literal["wrist", "forehead"]
SITES: tuple[Site, ...] = ("wrist", "forehead")


class _SiteSettings(Protocol):
    site: Site
    wrist_k: float
    forehead_k: float


@dataclass(frozen=True)
class BodyModel:
    """The heat-balance model for one measuring site."""

    site: Site = "wrist"
    k: float = 0.030

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise ValueError(f"site must be one of {', '.join(SITES)}, got {self.site!r}")
        if not 0.0 <= self.k <= 1.0:
            raise ValueError(f"k must be between 0 and 1, got {self.k}")

    @classmethod
    def from_section(cls, section: _SiteSettings) -> BodyModel:
        """The model for the configured site (``thermometer.site`` and its coefficient)."""
        k = section.wrist_k if section.site == "wrist" else section.forehead_k
        return cls(section.site, k)

    def body(self, skin_c: float, ambient_c: float) -> float:
        """The body (armpit) temperature estimated from the skin and the room, in °C, unrounded."""
        return skin_c + self.k * (skin_c - ambient_c)

    def skin(self, body_c: float, ambient_c: float) -> float:
        """The inverse: the skin temperature the model expects on a body of `body_c` in this room."""
        return (body_c + self.k * ambient_c) / (1.0 + self.k)
