"""The demo's queue of visitors, and the director that plays them on the simulated hardware.

Each visitor fetches their current code from the reference platform (as their phone would), shows
it to the scenario camera and holds a wrist to the emulated thermometer; they leave once the
kiosk shows its verdict. Some hold the phone or the wrist too far away at first, and come closer
once the screen asks them to (or the code is read anyway). A visitor without a phone taps "No phone?" on the touchscreen, types a
family member's number and taps their own name instead. The director only touches the simulated
world (camera, wrist, chip, taps on the screen) and watches the kiosk the way a person would: what
the screen shows.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests

from kiosk.sim.world import SimWorld

log = logging.getLogger(__name__)

# Wrist skin temperatures in the demo's 22 °C room. The kiosk estimates the body from the skin
# (kiosk.sensors.body_model, wrist: body = skin + 0.03 * (skin - room)): 36.2 °C skin is a 36.6 °C body.
NORMAL_SKIN_C = 36.2
# How visitors hold their phones up: the camera presets a queue of people produces in practice
# (the harsher presets in kiosk.sim.qrframes are for the scanner's benchmark).
HOW_PHONES_ARE_HELD = ("plain", "large", "rotated", "tilted", "dim")
# The number of p01 in kiosk.sim.population's fixed cast, whose mother (p11) has a printed proxy code.
FAMILY_PHONE = "13800138001"
# How long a person takes per key on the keypad.
KEY_PAUSE_S = 0.15
# How long a person takes to follow a hint on the screen: they read it (or hear it said) first.
HINT_REACTION_S = 2.5
# A wrist held this far from the sensor fills a sixth of its view: warmer than the room, not a wrist.
WRIST_TOO_FAR_CM = 6.0


@dataclass(frozen=True)
class Visitor:
    label: str
    colour: str | None  # the platform colour of the person; None: a code the platform never issued
    skin_c: float = NORMAL_SKIN_C
    code_minutes_ago: int = 0
    proxy: bool = False
    keypad_phone: str | None = None  # no phone: this family member's number is typed on the keypad
    unplug_sensor: bool = False
    # Holds the phone at arm's length first, wrist already at the sensor, then brings it nearer:
    # "too_far" (where a dense code gets the "closer" hint), then close enough.
    phone_far: bool = False
    wrist_far: bool = False  # holds the wrist too far from the sensor until the screen asks for it closer
    expect_outcome: str = "PASS"
    expect_reasons: tuple[str, ...] = ()


# The first eleven cover every case the demo promises; more visitors are drawn at random after them.
SCRIPT: tuple[Visitor, ...] = (
    Visitor("green, normal, phone held too far at first", "green", phone_far=True),
    Visitor("green, fever", "green", skin_c=38.4, expect_outcome="REFUSE", expect_reasons=("fever",)),
    Visitor("yellow code, wrist held too far at first", "yellow", wrist_far=True, expect_outcome="REFUSE",
            expect_reasons=("yellow_code",)),
    Visitor("red code", "red", expect_outcome="REFUSE", expect_reasons=("red_code",)),
    Visitor("stale screenshot", "green", code_minutes_ago=10, expect_outcome="REFUSE", expect_reasons=("stale_code",)),
    Visitor("unknown code", None, expect_outcome="REFUSE", expect_reasons=("unknown_code",)),
    Visitor("cold arrival", "green", skin_c=33.2, expect_outcome="REFUSE", expect_reasons=("remeasure",)),
    Visitor("thermometer unplugged", "green", unplug_sensor=True, expect_outcome="REFUSE", expect_reasons=("sensor_fault",)),
    Visitor("family proxy code", "green", proxy=True),
    Visitor("no phone, family number on the keypad", "green", proxy=True, keypad_phone=FAMILY_PHONE),
    Visitor("green, after recovery", "green"),
)


def queue_of(count: int, rng: random.Random) -> list[Visitor]:
    visitors = list(SCRIPT[:count])
    while len(visitors) < count:
        roll = rng.random()
        if roll < 0.8:
            visitors.append(Visitor("green, normal", "green", skin_c=round(rng.uniform(35.9, 36.6), 2)))
        elif roll < 0.9:
            visitors.append(Visitor("green, fever", "green", skin_c=round(rng.uniform(37.4, 38.8), 2),
                                    expect_outcome="REFUSE", expect_reasons=("fever",)))
        else:
            visitors.append(Visitor("yellow code", "yellow", expect_outcome="REFUSE", expect_reasons=("yellow_code",)))
    return visitors


class PlatformPhone:
    """What a visitor's phone does: ask the platform for the code to show now."""

    def __init__(self, platform_url: str, rng: random.Random):
        self._url = platform_url.rstrip("/")
        self._rng = rng
        self._session = requests.Session()
        self._people = self._session.get(f"{self._url}/sim/people", timeout=5).json()
        self._last_person: str | None = None

    def code_for(self, visitor: Visitor) -> str:
        if visitor.colour is None:
            # Looks like a platform code, but the platform never issued it.
            return "HCP1:" + "".join(self._rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(24))
        candidates = [p["id"] for p in self._people if p["colour"] == visitor.colour and p["proxy"] == visitor.proxy]
        # The next in line is someone else (unless there is nobody else of that kind).
        person = self._rng.choice([c for c in candidates if c != self._last_person] or candidates)
        self._last_person = person
        answer = self._session.get(
            f"{self._url}/sim/code", params={"person": person, "minutes_ago": visitor.code_minutes_ago}, timeout=5
        )
        answer.raise_for_status()
        return answer.json()["code"]


@dataclass(frozen=True)
class Served:
    visitor: Visitor
    outcome: str
    reasons: tuple[str, ...]
    latency_ms: float
    event_id: str


class Director:
    """Plays a queue of visitors against a running kiosk; `run()` is the body of its thread."""

    def __init__(self, world: SimWorld, phone: PlatformPhone, visitors: list[Visitor],
                 kiosk_phase: Callable[[], str], shown: Callable[[], Any], tap: Callable[[str], bool],
                 outage_s: float = 1.5, step_timeout_s: float = 30.0):
        """``shown`` is the screen state on display; ``tap(name)`` touches that button if the page has it."""
        self.world = world
        self.phone = phone
        self.visitors = visitors
        self._phase = kiosk_phase
        self._shown = shown
        self._tap = tap
        self._outage_s = outage_s
        self._timeout = step_timeout_s
        self.verdicts: queue.Queue = queue.Queue()
        self.served: list[Served] = []
        self.finished = threading.Event()
        self.problem: str | None = None
        self._rng = random.Random(len(visitors))

    def on_decided(self, decided) -> None:
        """Kiosk listener: the verdict a visitor in front of the kiosk sees."""
        self.verdicts.put(decided)

    def _wait(self, condition: Callable[[], bool], what: str, stop: threading.Event) -> None:
        deadline = time.monotonic() + self._timeout
        while not condition():
            if stop.is_set():
                raise InterruptedError
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {self._timeout:.0f} s (the kiosk is {self._phase()!r})")
            time.sleep(0.01)

    def _wait_phase(self, wanted: str, stop: threading.Event) -> None:
        self._wait(lambda: self._phase() == wanted, f"{wanted!r} phase", stop)

    def _shows(self, field: str) -> bool:
        state = self._shown()
        return state is not None and bool(getattr(state, field))

    def _touch(self, button: str, stop: threading.Event) -> None:
        """Tap a button once the page showing it is on the screen."""
        self._wait(lambda: self._tap(button), f"{button!r} button", stop)
        time.sleep(KEY_PAUSE_S)

    def _verdict(self, code: str | None, stop: threading.Event):
        """Wait for the verdict; like a person, hold the phone up again if the kiosk asks for the code."""
        deadline = time.monotonic() + self._timeout
        reshown = False
        while time.monotonic() < deadline and not stop.is_set():
            try:
                return self.verdicts.get(timeout=0.05)
            except queue.Empty:
                pass
            if self._phase() == "prompt_code" and code is not None and not reshown:
                self.world.camera.show(code, self._rng.choice(HOW_PHONES_ARE_HELD))
                reshown = True
        raise TimeoutError(f"no verdict within {self._timeout:.0f} s (kiosk is {self._phase()!r})")

    def _choose_on_keypad(self, phone: str, stop: threading.Event) -> None:
        """No phone? -> a family member's number -> OK -> the first name listed (their own)."""
        self._wait_phase("idle", stop)
        self._touch("family", stop)
        self._wait_phase("family_keypad", stop)
        for digit in phone:
            self._touch(digit, stop)
        self._wait(lambda: self._shows("entry_complete"), "complete number", stop)
        self._touch("ok", stop)
        self._wait_phase("family_choose", stop)
        self._touch("member:0", stop)
        self._wait(lambda: self._shows("code_read"), "chosen code taken", stop)

    def _serve(self, visitor: Visitor, stop: threading.Event) -> None:
        world = self.world
        code = None
        if visitor.keypad_phone:
            self._choose_on_keypad(visitor.keypad_phone, stop)
        elif visitor.phone_far:
            code = self.phone.code_for(visitor)
            self._wait_phase("idle", stop)
            self._phone_from_afar(visitor, code, stop)
        else:
            code = self.phone.code_for(visitor)
            self._wait_phase("idle", stop)
            world.camera.show(code, self._rng.choice(HOW_PHONES_ARE_HELD))
            time.sleep(0.1)
        if visitor.wrist_far:
            self._wrist_from_afar(visitor, stop)
        elif not visitor.phone_far:
            world.wrist.approach(visitor.skin_c)
        if visitor.unplug_sensor:
            # Pull the plug once the kiosk has read the code and is measuring.
            self._wait(lambda: self._shows("code_read"), "code read", stop)
            log.info("demo: thermometer unplugged")
            world.chip.plugged = False
        decided = self._verdict(code, stop)
        self.served.append(Served(visitor, decided.verdict.outcome, tuple(decided.event.reasons),
                                  decided.latency_ms, decided.event.id))
        time.sleep(0.2)
        world.camera.hide()
        world.wrist.leave()
        if visitor.unplug_sensor:
            self._wait_phase("out_of_service", stop)
            time.sleep(self._outage_s)
            log.info("demo: thermometer plugged back in")
            world.chip.plugged = True

    def _follows_hint(self, hint: str, give_up_s: float, stop: threading.Event) -> bool:
        """Wait for the screen to show `hint` (True, after reading it), the code to be read or `give_up_s`
        to pass (False)."""
        deadline = time.monotonic() + give_up_s
        while time.monotonic() < deadline:
            if stop.is_set():
                raise InterruptedError
            state = self._shown()
            if state is not None and state.hint == hint:
                time.sleep(HINT_REACTION_S)
                return True
            if state is not None and (state.code_read or state.kind in ("pass", "refuse")):
                return False
            time.sleep(0.01)
        return False

    def _phone_from_afar(self, visitor: Visitor, code: str, stop: threading.Event) -> None:
        """Phone at arm's length and the wrist at the sensor; then the phone comes nearer, step by step."""
        world = self.world
        world.camera.show(code, "arm_length")
        time.sleep(0.3)
        world.wrist.approach(visitor.skin_c)
        self._wait(lambda: self._shows("progress"), "the reading to start", stop)
        world.camera.show(code, "too_far")
        # A dense code is not read there and the screen asks for it closer; a short one may be read at once.
        if self._follows_hint("closer", 1.5, stop) or not self._shows("code_read"):
            world.camera.show(code, self._rng.choice(HOW_PHONES_ARE_HELD))

    def _wrist_from_afar(self, visitor: Visitor, stop: threading.Event) -> None:
        """The wrist held too far once the code is read, then brought in when the screen asks."""
        self._wait(lambda: self._shows("code_read"), "code read", stop)
        self.world.wrist.approach(visitor.skin_c, distance_cm=WRIST_TOO_FAR_CM)
        self._wait(lambda: getattr(self._shown(), "hint", None) == "wrist_closer", "the hint to bring the wrist closer", stop)
        time.sleep(HINT_REACTION_S)  # read (or heard) first
        self.world.wrist.approach(visitor.skin_c)

    def run(self, stop: threading.Event) -> None:
        try:
            for visitor in self.visitors:
                if stop.is_set():
                    return
                self._serve(visitor, stop)
            self._wait_phase("idle", stop)
        except InterruptedError:
            pass
        except Exception as exc:  # the demo reports it; the kiosk itself is not at fault
            self.problem = f"{type(exc).__name__}: {exc}"
            log.error("demo scenario stopped: %s", self.problem)
        finally:
            self.finished.set()
