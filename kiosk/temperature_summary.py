"""The last hour's temperatures, as `kiosk status` shows them: what a health officer would ask about.

Two things a maintainer cannot see from single decisions, but can from an hour of them:

- **Visitors arriving cold.** A person just in from winter weather reads low; the coldest are asked
  to wait (the ``remeasure`` reason), but a febrile person a minute or two indoors reads like a
  healthy one, and the forehead cools about three times as much as the sleeve-covered wrist (Chen
  et al. 2020; `bench/thermometry.py`: at 10 % cold arrivals a forehead kiosk misses about 2 % of
  fevers, a wrist kiosk 0.3 %). When many visitors are asked to wait for cold, the summary says so.
- **Drift.** A crowd's median body estimate sits near 36.5 °C; a median outside 36.0–37.0 °C over
  enough visitors points at the sensor (dirty window, moved, needs ``kiosk calibrate``), not at
  the crowd.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kiosk.events import Event
from kiosk.results import Reason

WINDOW_S = 3600
# Below this many measured visitors an hour says little about the crowd.
MIN_VISITORS = 20
# The share of visitors asked to wait for cold above which the kiosk is taken to stand where
# people arrive cold (5 % cold arrivals cost a forehead kiosk about 1 % of fevers in the benchmark).
COLD_SHARE_ADVICE = 0.05
# Where a healthy crowd's median armpit-equivalent temperature lies (36.5 ± 0.5 °C).
CROWD_MEDIAN_RANGE_C = (36.0, 37.0)


@dataclass(frozen=True)
class TemperatureSummary:
    measured: int = 0  # visitors with a body estimate
    fever: int = 0  # refused for fever
    cold: int = 0  # asked to wait: estimate under the cold floor
    faults: int = 0  # refused because the thermometer could not be trusted
    median_c: float | None = None  # median estimate of the visitors not asked to wait
    site: str | None = None
    advice: dict[str, str] = field(default_factory=dict)  # by kind: "cold_arrivals", "median_drift"

    @property
    def cold_share(self) -> float:
        return self.cold / self.measured if self.measured else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"cold_share": round(self.cold_share, 3), "window_s": WINDOW_S, "text": self.describe()}

    def describe(self) -> str:
        if not self.measured and not self.faults:
            return "no visitors measured in the last hour"
        text = f"{self.measured} measured"
        if self.median_c is not None:
            text += f", median {self.median_c:.1f} °C"
        text += (f"; {self.fever} refused for fever, {self.cold} asked to wait for cold "
                 f"({self.cold_share:.0%}), {self.faults} sensor fault(s)")
        return text


def summarise(events: Iterable[Event], site: str) -> TemperatureSummary:
    """The summary of these decision events (the caller picks the hour); ``site`` is the configured one."""
    estimates: list[float] = []
    measured = fever = cold = faults = 0
    for event in events:
        if event.kind != "decision":
            continue
        if Reason.SENSOR_FAULT in event.reasons:
            faults += 1
        if event.temperature_c is None:
            continue
        measured += 1
        site = event.temperature_site or site
        if Reason.REMEASURE in event.reasons:
            cold += 1
            continue
        fever += Reason.FEVER in event.reasons
        estimates.append(event.temperature_c)
    median = round(statistics.median(estimates), 2) if estimates else None
    summary = TemperatureSummary(measured, fever, cold, faults, median, site)
    return replace(summary, advice=_advice(summary))


def _advice(summary: TemperatureSummary) -> dict[str, str]:
    if summary.measured < MIN_VISITORS:
        return {}
    advice = {}
    if summary.cold_share >= COLD_SHARE_ADVICE:
        where = "move the kiosk to where visitors have been indoors for about five minutes"
        if summary.site == "forehead":
            advice["cold_arrivals"] = (
                f"{summary.cold_share:.0%} of visitors read too cold: people just in from the cold hide a fever "
                f"on the forehead; measure at the wrist (thermometer.site = \"wrist\") or {where}")
        else:
            advice["cold_arrivals"] = (f"{summary.cold_share:.0%} of visitors read too cold: they arrive straight "
                                       f"from the cold; to keep the wait short, {where}")
    low, high = CROWD_MEDIAN_RANGE_C
    if summary.median_c is not None and not low <= summary.median_c <= high:
        advice["median_drift"] = (f"the median reading {summary.median_c:.1f} °C is outside the {low:g}-{high:g} °C "
                                  f"a healthy crowd reads: check the sensor's window and position, then run "
                                  f"kiosk calibrate")
    return advice


class TemperatureWatch:
    """The daemon's running view of the last hour. ``add`` is cheap (the screen loop calls it after
    each verdict); ``check``, run from a background thread, tells which advice is new, so the daemon's
    log (journald, a fleet's log shipping) carries each piece once, not after every visitor."""

    def __init__(self, site: str):
        self._site = site
        self._lock = threading.Lock()
        self._recent: deque[tuple[float, Event]] = deque()
        self._standing: set[str] = set()

    def add(self, event: Event, now: float) -> None:
        """Take one decision (``now`` from a monotonic clock in seconds)."""
        with self._lock:
            self._recent.append((now, event))

    def check(self, now: float) -> tuple[list[str], list[str]]:
        """The advice that has appeared since the last check (its text), and the kinds of advice
        that have cleared."""
        with self._lock:
            while self._recent and self._recent[0][0] < now - WINDOW_S:
                self._recent.popleft()
            recent = [event for _, event in self._recent]
        advice = summarise(recent, self._site).advice
        fresh = [text for kind, text in advice.items() if kind not in self._standing]
        cleared = sorted(self._standing - advice.keys())
        self._standing = set(advice)
        return fresh, cleared
