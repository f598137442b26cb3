"""The kiosk loop: wires the parts together and walks each visitor through idle, measuring, verdict.

It owns no rules: temperatures are judged by the thermometry and the decision, codes by the
verifier. The screen loop runs on the main thread and never waits for the network or the disk:
code verification starts on a worker as soon as a code is scanned, and the decision job (verify
result, decide, commit the event) runs there too. The verdict is shown only after its event is
committed, so nothing that was shown can be missing from the log.

A visit lasts at most ``kiosk.abandon_after_s``, a pending lookup included: a verification still
without an answer then is refused as ``cannot_verify`` (logged and shown, like an unreachable
platform), and its late answer is dropped; a decision that still cannot be committed a little
later puts the kiosk out of service, as a failed commit does. Nothing of an ended visit is ever
shown or applied to the next one.

A visitor without a phone taps "No phone?" on the idle screen, types a family member's phone
number on the keypad, and taps their own name among the family's proxy codes; the chosen code then
enters the visit exactly as a scanned one would (verified at the platform, replay and freshness
rules, wrist measurement, event with ``proxy``). The keypad's pages and timeouts are
``kiosk.family_flow``'s; the lookup runs on its own worker thread; the number lives only in the
keypad's entry until it is sent, and is never logged.

The pages' progress bar and hint line are ``kiosk.guidance``'s.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Callable

from kiosk.codes.family import FamilyLookup, FamilyResult
from kiosk.codes.router import CodeRouter
from kiosk.config import Config
from kiosk.decision import Policy, Verdict, decide
from kiosk.display.lights import KeptLights
from kiosk.display.screen import Screen
from kiosk.display.state import Kind, ScreenState
from kiosk.events import Event, utc_iso
from kiosk.family_flow import FamilyFlow, sample_pages
from kiosk.guidance import MEASURING_KINDS, guide
from kiosk.reconfigure import plan
from kiosk.reload import ConfigWatcher
from kiosk.results import CodeResult, Reason, TemperatureResult
from kiosk.sensors.reader import CodeReader, SeenCode
from kiosk.sensors.thermometry import Thermometry, ThermometryState
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import Uploader
from kiosk.watchdog import Watchdog

log = logging.getLogger(__name__)

# How long the out-of-service screen stays after the platform could not be reached (with
# fallback = "out_of_service") or an event could not be committed; then the next visitor tries again.
OUTAGE_S = 10.0
# The loop's pace while a visitor is being served (between visitors it redraws at screen.fps).
BUSY_TICK_S = 0.005
# Once a visit's time is up, its decision job has this long to commit the refusal before the
# kiosk stops waiting for it (the event log is then taken to be failing).
COMMIT_GRACE_S = 5.0


@dataclass
class Visit:
    started: float
    code: SeenCode | None = None
    verification: Future | None = None
    temperature: TemperatureResult | None = None
    temperature_at: float | None = None
    decision: Future | None = None
    ready_at: float | None = None


class Phase(StrEnum):
    """Where the kiosk is with the visitor in front of it (``kiosk status`` shows it as is)."""

    IDLE = "idle"
    MEASURING = "measuring"
    HOLD_STILL = "hold_still"
    MEASURING_AGAIN = "measuring_again"
    PROMPT_CODE = "prompt_code"
    PROMPT_WRIST = "prompt_wrist"
    VERDICT = "verdict"
    OUT_OF_SERVICE = "out_of_service"
    FAMILY_KEYPAD = "family_keypad"
    FAMILY_SEARCHING = "family_searching"
    FAMILY_CHOOSE = "family_choose"
    FAMILY_MESSAGE = "family_message"


@dataclass(frozen=True)
class Decided:
    """What listeners hear after a verdict is on screen."""

    verdict: Verdict
    event: Event
    latency_ms: float
    holder: str | None = None


def decision_event(config: Config, temperature: TemperatureResult, code: CodeResult, verdict: Verdict,
                   at: datetime) -> Event:
    """The record of one decision, made ``at`` (the time the rules were applied at)."""
    return Event(
        time=utc_iso(at),
        kiosk_id=config.kiosk.id,
        site_id=config.kiosk.site_id,
        decision=verdict.outcome,
        reasons=tuple(str(reason) for reason in verdict.reasons),
        temperature_c=temperature.celsius,
        temperature_readings_c=temperature.readings,
        skin_c=temperature.skin_c,
        ambient_c=temperature.ambient_c,
        temperature_site=temperature.site,
        temperature_fault=temperature.fault,
        code_colour=code.colour if code.verified else None,
        code_hash=code.code_hash or None,
        code_scheme=code.scheme,
        proxy=code.proxy,
    )


@dataclass
class KioskParts:
    thermometry: Thermometry
    reader: CodeReader
    verifier: CodeRouter
    store: EventStore
    uploader: Uploader
    screen: Screen
    lights: KeptLights
    extra_threads: list[Callable[[threading.Event], None]] = field(default_factory=list)
    family: FamilyLookup | None = None  # the phone-number lookup (None: no "No phone?" button)


class Kiosk:
    def __init__(
        self,
        config: Config,
        parts: KioskParts,
        utcnow: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        clock: Callable[[], float] = time.monotonic,
        watchdog: Watchdog | None = None,
    ):
        self.config = config
        self.parts = parts
        self.policy = Policy.from_config(config)
        self._utcnow = utcnow
        self.watchdog = watchdog or Watchdog()
        self._clock = clock
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decide")
        # Verifications have their own threads: slow lookups never hold a decision job in the queue
        # (a decision waits for its lookup only until the visit's time is up, then refuses).
        self._verifiers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")
        # Family lookups get their own thread: a slow one never holds up a visitor's verification.
        self._family_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="family")
        self._family: FamilyFlow | None = None
        self._family_lookup: Future | None = None  # the flow's lookup, on the family worker
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._visit: Visit | None = None
        self._verdict_until = 0.0
        self._outage_until = 0.0
        self._outage_reason = ""
        self._shown: ScreenState | None = None
        self.phase = Phase.IDLE
        self.listeners: list[Callable[[Decided], None]] = []
        self.screen_listeners: list[Callable[[ScreenState], None]] = []
        self._pending_config: Config | None = None
        self.restart_for: tuple[str, ...] = ()
        self.config_watcher: ConfigWatcher | None = None  # set by `kiosk run`: its `error` is the last refused edit
        parts.reader.on_code = self.wake

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        loops = [self.parts.thermometry.run, self.parts.reader.run, self.parts.uploader.run, *self.parts.extra_threads]
        for loop in loops:
            thread = threading.Thread(target=loop, args=(self._stop,), daemon=True, name=getattr(loop, "__qualname__", "loop"))
            thread.start()
            self._threads.append(thread)
        # Before READY: the first visitor should not pay for fonts and first drawings.
        self.parts.screen.warm_up(self._pages_to_warm())
        self._show(self._idle_screen())
        self.parts.lights.show_idle()
        self.watchdog.ready()

    def _pages_to_warm(self) -> list[ScreenState]:
        """One of each page a visitor can meet, with text of the usual length."""
        pages = [ScreenState(kind=kind, temperature_c=36.6, code_read=True)  # type: ignore[arg-type]
                 for kind in ("measuring", "hold_still", "measuring_again", "prompt_code", "prompt_wrist")]
        pages += [ScreenState(kind="pass", temperature_c=36.6, holder="张*"),
                  ScreenState(kind="out_of_service", detail="thermometer: no thermometer answers")]
        pages += [ScreenState(kind="refuse", temperature_c=37.9, reasons=(str(reason),), holder="张*") for reason in Reason]
        # The guidance: the bar, and each hint's words (the camera's on the start page).
        pages += [ScreenState(kind="measuring", code_read=True, progress=0.5, hint="wrist_closer")]
        pages += [ScreenState(kind="idle", hint=hint) for hint in ("closer", "hold_still", "brighter")]
        if self.parts.family is not None:
            pages += sample_pages()
        return pages

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self.watchdog.stopping()
        self.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._workers.shutdown(wait=True, cancel_futures=False)
        self._verifiers.shutdown(wait=True, cancel_futures=True)  # lookups no decision waits for any more
        self._family_worker.shutdown(wait=True, cancel_futures=True)
        if self.parts.family is not None:
            self.parts.family.close()
        self.parts.lights.close()
        self.parts.screen.close()
        self.parts.store.close()
        self.parts.verifier.close()

    @property
    def shown(self) -> ScreenState | None:
        """What the screen shows now (what a visitor in front of the kiosk sees)."""
        return self._shown

    def wake(self) -> None:
        self._wake.set()

    def request_config(self, config: Config) -> None:
        """A new, already validated config (from any thread); applied between visitors."""
        self._pending_config = config
        self.wake()

    def _apply_config(self, new: Config) -> None:
        change = plan(self.config, new)
        if change.restart:
            log.warning("config change needs a restart (%s): restarting", ", ".join(change.restart))
            self.restart_for = change.restart
            self.stop()
            return
        parts = self.parts
        if change.touches("lights"):
            # Only a factory handed in (the simulator's) carries over, and open_pin_factory decides whether
            # the new lights use it; one the old lights opened is closed with them.
            offered = parts.lights.given_factory
            parts.lights.close()
            parts.lights = KeptLights(new.lights, pin_factory=offered)
            if self.phase is Phase.OUT_OF_SERVICE:
                parts.lights.show_out_of_service()
            else:
                parts.lights.show_idle()
        if change.touches("screen") or "kiosk.language" in change.changed:
            parts.screen.close()
            # The camera's view goes to the new screen too, or the viewfinder would be lost.
            parts.screen = Screen(new.screen, new.kiosk.language, preview=parts.reader.preview)
            parts.screen.warm_up(self._pages_to_warm())  # new fonts or language: warmed as at start
            state, self._shown = self._shown, None
            self._show(state or self._idle_screen())
        if change.touches("thermometer"):
            parts.thermometry.section = new.thermometer
        self.config = new
        self.policy = Policy.from_config(new)
        log.info("config applied without a restart: %s", ", ".join(change.changed))

    def run(self, until: Callable[[], bool] = lambda: False, before_close: Callable[[], None] | None = None) -> None:
        """The screen loop, on the calling (main) thread, until stopped, `until()` or the window closes."""
        self.start()
        try:
            while not self._stop.is_set() and not until():
                if not self.parts.screen.pump():
                    break
                self.tick()
                self.watchdog.pet()  # only a loop that keeps turning keeps systemd from restarting it
                # screen.fps is read each turn: a reloaded config changes the pace at once
                self._wake.wait(BUSY_TICK_S if self._visit else 1.0 / self.config.screen.fps)
                self._wake.clear()
        finally:
            if before_close:
                before_close()
            self.close()

    # --- the state machine -----------------------------------------------------------------

    def tick(self) -> None:
        now = self._clock()
        taps = self.parts.screen.taps()  # taken every tick, so a tap never acts on a later page
        if self._pending_config is not None and self._visit is None and self.phase in (Phase.IDLE, Phase.OUT_OF_SERVICE):
            new, self._pending_config = self._pending_config, None
            self._apply_config(new)
            if self._stop.is_set():
                return
        if self.phase is Phase.VERDICT:
            if now < self._verdict_until:
                return
            self._end_visit()
        fault = self._fault(now)
        if fault and self._family is not None:
            log.info("family lookup abandoned: the kiosk is out of service")
            self._family = self._family_lookup = None
        if fault and self._visit and self._visit.decision is None:
            if self._visit.code:
                # A part failed while a visitor was being served: refuse them (and log it), never pass.
                # A measurement the thermometry finished before the fault still counts.
                self._visit.temperature = self.parts.thermometry.consume() or TemperatureResult.failed(fault)
                self._visit.temperature_at = now
            else:
                self._visit = None
        if self._visit is None and fault:
            self._enter_out_of_service(fault)
            return
        if self.phase is Phase.OUT_OF_SERVICE and not fault:
            log.info("back in service")
            # A code shown during the outage may be long gone (or someone else's): not a visit's start.
            self.parts.reader.forget()
            self._show(self._idle_screen())
            self.parts.lights.show_idle()
            self.phase = Phase.IDLE
        if self._family is not None:
            self._family_step(now, taps)
            return
        if self._visit is None and self.phase is Phase.IDLE and "family" in self._tapped(taps):
            self._open_keypad(now)
            return
        self._serve(now)

    def _fault(self, now: float) -> str | None:
        lights = self.parts.lights
        lights.retry()  # GPIO pins that were busy are tried again every few seconds
        if lights.fault:
            return lights.fault
        snapshot = self.parts.thermometry.snapshot()
        if snapshot.phase == "fault":
            return f"thermometer: {snapshot.fault}"
        camera_fault = self.parts.reader.fault
        if camera_fault:
            return f"camera: {camera_fault}"
        if now < self._outage_until:
            return self._outage_reason
        return None

    def _enter_out_of_service(self, fault: str) -> None:
        # Screen and lights first: whoever sees the phase change sees them already changed.
        self._show(ScreenState(kind="out_of_service", detail=fault))
        if self.phase is not Phase.OUT_OF_SERVICE:
            log.warning("out of service: %s", fault)
            self.parts.lights.show_out_of_service()
            self.phase = Phase.OUT_OF_SERVICE

    def _serve(self, now: float, seen: SeenCode | None = None) -> None:
        """Walk the visit on; ``seen`` is a code chosen at the keypad, else the camera is asked."""
        visit = self._visit
        if seen is None:
            seen = self.parts.reader.take_new()
        thermometry = self.parts.thermometry
        # One look at the thermometry per turn, taken before its result is consumed: the page drawn
        # below shows the state the result came from.
        snapshot = thermometry.snapshot()
        if visit is None:
            if seen is None and snapshot.phase not in ("measuring", "settled"):
                # Between visitors each tick (at screen.fps) shows a hint that has appeared or gone.
                self._show(self._idle_screen(snapshot))
                return
            visit = self._visit = Visit(started=now)
            self.phase = Phase.MEASURING
        if visit.code is None and seen is not None:
            visit.code = seen
            visit.verification = self._verifiers.submit(self.parts.verifier.verify, seen.payload)
        if visit.temperature is None:
            result = thermometry.consume()
            if result is not None:
                visit.temperature = result
                visit.temperature_at = snapshot.since if snapshot.phase == "settled" else now
                shown = self._shown
                if visit.code is not None and shown is not None and shown.kind in MEASURING_KINDS \
                        and shown.progress is not None:
                    # The reading is taken: the bar is full while the verdict is prepared (without a
                    # code yet, the page drawn below has the full bar).
                    self._show(dataclasses.replace(shown, progress=1.0))
        if visit.decision is None and visit.code and visit.temperature:
            visit.ready_at = max(visit.code.seen_at, visit.temperature_at or now)
            visit.decision = self._workers.submit(self._decide, visit)
        if visit.decision is not None:
            if visit.decision.done():
                self._show_verdict(visit, now)
            elif now - visit.started > self.config.kiosk.abandon_after_s + COMMIT_GRACE_S:
                # The decision job should have refused by now (see _decide): the event log is stuck.
                log.error("visit abandoned: its decision was not committed in time; kiosk out of service")
                self._visit = None  # whatever the job still does is never shown
                self._outage_reason = "cannot write the event log"
                self._outage_until = now + OUTAGE_S
                self._enter_out_of_service(self._outage_reason)
            return
        self._prompt(visit, now, snapshot)

    def _prompt(self, visit: Visit, now: float, thermometry: ThermometryState) -> None:
        waited = now - visit.started
        if waited > self.config.kiosk.abandon_after_s:
            log.info("visit abandoned after %.0f s (code: %s, temperature: %s)", waited, bool(visit.code), bool(visit.temperature))
            self._end_visit()
            return
        kind: Kind
        if waited > self.config.kiosk.prompt_after_s:
            kind = "prompt_wrist" if visit.code else "prompt_code"
        else:
            kind = "measuring"
        if visit.temperature is None and thermometry.phase == "measuring":
            # The thermometry says what the visitor at the sensor should hear now.
            if thermometry.attempt > 1:
                kind = "measuring_again"
            elif thermometry.hold_still:
                kind = "hold_still"
        temperature = visit.temperature.celsius if visit.temperature else None
        camera_hint = None if visit.code else self.parts.reader.hint()  # a read code needs no more advice
        progress, hint = guide(kind, thermometry, camera_hint, code_read=visit.code is not None,
                               temperature_taken=visit.temperature is not None)
        self._show(ScreenState(kind=kind, temperature_c=temperature, code_read=visit.code is not None,
                               progress=progress, hint=hint))
        self.phase = Phase(kind)

    def _decide(self, visit: Visit) -> tuple[Verdict, Event, CodeResult]:
        """Worker thread: wait for the code's verification, apply the rules, commit the event."""
        assert visit.verification is not None and visit.temperature is not None
        # The visit's own clock keeps running while the code is being verified.
        left = visit.started + self.config.kiosk.abandon_after_s - self._clock()
        try:
            code = visit.verification.result(timeout=max(0.0, left))
        except FutureTimeout:
            # The lookup goes on in the background; its answer is never read.
            code = CodeResult(verified=False, colour="unknown", code_hash="",
                              problem=f"no verification within kiosk.abandon_after_s "
                                      f"({self.config.kiosk.abandon_after_s:g} s)")
        # One reading: the event says when the decision was made, the time its rules were applied at.
        at = self._utcnow()
        verdict = decide(visit.temperature, code, self.policy, at)
        event = decision_event(self.config, visit.temperature, code, verdict, at)
        if verdict.passed:
            # The replay guard refuses this code for a while. Recorded before the event: if it
            # fails, nothing is logged and nothing shown (the kiosk goes out of service).
            self.parts.verifier.accepted(code)
        event = self.parts.store.append(event)  # committed and fsynced (with its seq): now it may be shown
        self.parts.uploader.wake()
        self._wake.set()
        return verdict, event, code

    def _show_verdict(self, visit: Visit, now: float) -> None:
        assert visit.decision is not None
        try:
            verdict, event, code = visit.decision.result()
        except Exception:
            # The event could not be committed: show nothing we cannot account for.
            log.exception("decision failed; kiosk out of service")
            self._visit = None
            self._outage_reason = "cannot write the event log"
            self._outage_until = now + OUTAGE_S
            self._enter_out_of_service(self._outage_reason)
            return
        temperature = visit.temperature.celsius if visit.temperature else None
        if verdict.passed:
            self.parts.lights.show_pass()
            state = ScreenState(kind="pass", temperature_c=temperature, holder=code.holder)
        else:
            self.parts.lights.show_refuse()
            state = ScreenState(kind="refuse", temperature_c=temperature, reasons=event.reasons, holder=code.holder)
        self._show(state)
        self.parts.screen.render()
        latency_ms = (self._clock() - (visit.ready_at or now)) * 1000.0
        log.info("%s %s temperature=%s colour=%s event=%s", verdict.outcome, ",".join(event.reasons) or "-", temperature, event.code_colour, event.id)
        if not code.verified:
            log.warning("code not verified: %s", code.problem)
            if self.config.platform.fallback == "out_of_service":
                self._outage_reason = "health-code platform unreachable"
                self._outage_until = now + self.config.kiosk.verdict_s + OUTAGE_S
        self.phase = Phase.VERDICT
        self._verdict_until = now + self.config.kiosk.verdict_s
        decided = Decided(verdict, event, latency_ms, code.holder)
        for listener in self.listeners:
            listener(decided)

    def _end_visit(self) -> None:
        # The thermometry stays "done" until the wrist is taken away, and the reader reports a code
        # still held up only once, so a visitor lingering after the verdict is not served twice.
        self._visit = None
        self.parts.thermometry.consume()  # a result left over belongs to the visitor who just left
        self.parts.lights.show_idle()
        self._show(self._idle_screen())
        self.phase = Phase.IDLE

    # --- people without phones: the family lookup ----------------------------------------------

    def _idle_screen(self, thermometry: ThermometryState | None = None) -> ScreenState:
        thermometry = thermometry or self.parts.thermometry.snapshot()
        _, hint = guide("idle", thermometry, self.parts.reader.hint(), code_read=False, temperature_taken=False)
        return ScreenState(kind="idle", family_button=self.parts.family is not None, hint=hint)

    def _tapped(self, taps: list[tuple[int, int]]) -> list[str]:
        """The buttons hit by these taps, in order (taps beside every button are left out)."""
        names = (self.parts.screen.button_at(pos) for pos in taps)
        return [name for name in names if name is not None]

    def _open_keypad(self, now: float) -> None:
        if self.parts.family is None:  # the button is drawn only when there is a lookup
            return
        log.info("family lookup: keypad opened")
        self._family = FamilyFlow(self.parts.family.entry(), now, idle_s=self.config.codes.family_idle_s,
                                  message_s=self.config.kiosk.verdict_s)
        self._show_family(self._family.page())

    def _show_family(self, page: ScreenState) -> None:
        self._show(page)
        self.phase = Phase(page.kind)

    def _close_family(self, why: str) -> None:
        log.info("family lookup: back to the start screen (%s)", why)
        self._family = self._family_lookup = None
        self._show(self._idle_screen())
        self.phase = Phase.IDLE

    def _family_step(self, now: float, taps: list[tuple[int, int]]) -> None:
        """Route this tick's taps and the lookup's answer to the keypad flow, and do what it says."""
        flow = self._family
        assert flow is not None and self.parts.family is not None
        seen = self.parts.reader.take_new()
        if seen is not None:
            # A code shown to the camera meanwhile: that visitor has one after all; serve it as usual.
            log.info("family lookup abandoned: a code was shown to the camera")
            self._family = self._family_lookup = None
            self._serve(now, seen)
            return
        answer = None
        if self._family_lookup is not None and self._family_lookup.done():
            answer = self._lookup_result(self._family_lookup)
            self._family_lookup = None
        step = flow.step(now, [self.parts.screen.button_at(pos) for pos in taps], answer)
        if step.lookup is not None:
            self._family_lookup = self._family_worker.submit(self.parts.family.lookup, step.lookup)
            self._family_lookup.add_done_callback(lambda _: self.wake())
        if step.chosen is not None:
            self._family = None
            # From here on the chosen code is a code like any scanned one.
            self._serve(now, SeenCode(step.chosen, now))
        elif step.ended is not None:
            self._close_family(step.ended)
        elif step.page is not None:
            self._show_family(step.page)

    @staticmethod
    def _lookup_result(lookup: Future) -> FamilyResult:
        try:
            return lookup.result()
        except Exception:  # lookup() does not raise for network or answer problems; anything else is a bug
            log.exception("family lookup failed")
            return FamilyResult("unavailable", problem="lookup failed")

    def _show(self, state: ScreenState) -> None:
        if state == self._shown:
            return
        self._shown = state
        self.parts.screen.show(state)
        self.parts.screen.render()
        for listener in self.screen_listeners:
            listener(state)
