"""People without phones, at the real kiosk on simulated hardware: a visitor taps "No phone?",
types a family member's number on the keypad, taps their own name, holds out a wrist and passes;
and what they see when the number is unknown, the platform is down, the kiosk has been asked too
often, or they walk away. Taps are real pygame events (mouse clicks and touches) posted to the
kiosk's event queue; the platform is the reference upstream on loopback."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pygame

import pytest

from kiosk.codes.family import FamilyMember, FamilyResult, PhoneEntry
from kiosk.family_flow import FamilyFlow
from kiosk.sim.touch import tap as touch_button
from kit import SteppedClock
from scene import Scene, run_scene

MOTHER_OF_P01 = "13800138001"  # p01's phone: linked to the printed proxy code of p11, 张*英
NOBODY = "13000000000"
GREEN_PIN = 17


def tap(s: Scene, name: str, touch: bool = False) -> None:
    """Tap the middle of a button on the page now shown (with a finger, or a mouse click)."""
    s.wait(lambda: touch_button(s.kiosk.parts.screen, name, finger=touch),
           f"a {name!r} button on the {s.kiosk.phase!r} page")


def start_page(s: Scene) -> None:
    s.wait(lambda: s.kiosk.phase == "idle" and s.kiosk.shown is not None and s.kiosk.shown.kind == "idle",
           "the start page")


def look_up(s: Scene, phone: str) -> None:
    """From the idle page: No phone? -> the number -> OK."""
    start_page(s)
    tap(s, "family", touch=True)
    s.wait(lambda: s.kiosk.phase == "family_keypad", "the keypad")
    for index, digit in enumerate(phone):
        tap(s, digit, touch=index % 2 == 0)
    s.wait(lambda: s.kiosk.shown.entry_complete, "the OK key to light up")
    tap(s, "ok")


def no_file_holds(folder: Path, *secrets: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret!r} in {path}"


@pytest.mark.slow
@pytest.mark.e2e
def test_no_phone_visitor_passes_with_a_family_proxy_code(tmp_path, caplog) -> None:
    seen: dict = {}

    def scene(s: Scene) -> None:
        start_page(s)
        assert s.kiosk.shown.family_button  # the start page offers the keypad
        look_up(s, MOTHER_OF_P01)
        s.wait(lambda: s.kiosk.phase == "family_choose", "the names to choose from")
        assert s.kiosk.shown.choices == ("张*英",)
        entry = s.kiosk._family.entry  # the number is gone from the kiosk once it was sent
        assert len(entry) == 0
        tap(s, "member:0", touch=True)
        # Taken like a scanned code: "code read", now the wrist.
        s.wait(lambda: s.kiosk.shown.kind == "measuring" and s.kiosk.shown.code_read, "the chosen code to be taken")
        s.world.wrist.approach(36.6)
        s.wait(lambda: bool(s.decided), "a verdict")
        decided = s.decided[-1]
        assert decided.verdict.outcome == "PASS" and decided.verdict.reasons == ()
        assert s.kiosk.shown.kind == "pass" and s.kiosk.shown.holder == "张*英"
        assert s.pin(GREEN_PIN)
        event = decided.event
        assert event.proxy is True and event.code_colour == "green" and event.code_hash
        seen["code"] = s.upstream.population.code_for("p11")
        assert seen["code"] not in event.to_json() and MOTHER_OF_P01 not in event.to_json()
        s.world.wrist.leave()
        s.wait(lambda: s.upstream.collector.count() == 1, "the event at the collector")
        received = json.dumps(s.upstream.collector.events(), ensure_ascii=False)
        assert MOTHER_OF_P01 not in received and seen["code"] not in received
        assert json.loads(received)[0]["proxy"] is True
        assert s.upstream.stats["family"] == 1

    with caplog.at_level(logging.DEBUG):
        run_scene(tmp_path, scene)
    # The number is in no file the kiosk wrote (event log, its WAL, replay hashes ...), nor in the
    # collector's database, nor in any log line.
    no_file_holds(tmp_path / "kiosk", MOTHER_OF_P01, seen["code"])
    no_file_holds(tmp_path / "upstream", MOTHER_OF_P01)
    assert MOTHER_OF_P01 not in caplog.text and MOTHER_OF_P01[3:] not in caplog.text
    assert "family lookup: 1 members" in caplog.text


@pytest.mark.slow
@pytest.mark.e2e
def test_the_same_proxy_code_chosen_twice_is_a_replay(tmp_path) -> None:
    def scene(s: Scene) -> None:
        outcomes = []
        for _ in range(2):
            look_up(s, MOTHER_OF_P01)
            tap(s, "member:0")
            s.wait(lambda: s.kiosk.shown.kind == "measuring", "the visit")
            count = len(s.decided)
            s.world.wrist.approach(36.6)
            s.wait(lambda count=count: len(s.decided) > count, "a verdict")
            outcomes.append([str(reason) for reason in s.decided[-1].verdict.reasons])
            s.world.wrist.leave()
        assert outcomes == [[], ["replayed"]]

    run_scene(tmp_path, scene, codes={"replay_window_s": 300.0})


@pytest.mark.slow
@pytest.mark.e2e
def test_unknown_numbers_then_the_rate_limit(tmp_path) -> None:
    def scene(s: Scene) -> None:
        for expected in ("family_unknown", "family_unknown", "family_rate_limited"):
            look_up(s, NOBODY)
            s.wait(lambda: s.kiosk.phase == "family_message", "the lookup's message")
            assert s.kiosk.shown.reasons == (expected,)
            s.wait(lambda: s.kiosk.phase == "idle", "the start page after the message")
        # The third lookup never reached the platform.
        assert s.upstream.stats["family"] == 2
        assert not s.decided and s.kiosk.parts.store.counts()["total"] == 0

    run_scene(tmp_path, scene, codes={"family_lookups": 2}, kiosk={"verdict_s": 0.5})


@pytest.mark.slow
@pytest.mark.e2e
def test_platform_down(tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/platform"

    def scene(s: Scene) -> None:
        look_up(s, MOTHER_OF_P01)
        s.wait(lambda: s.kiosk.phase == "family_message", "the lookup's message")
        assert s.kiosk.shown.reasons == ("family_unavailable",)
        s.wait(lambda: s.kiosk.phase == "idle", "the start page after the message")
        assert not s.decided

    run_scene(tmp_path, scene, platform={"url": closed, "timeout_s": 0.3}, kiosk={"verdict_s": 0.5})


@pytest.mark.slow
@pytest.mark.e2e
def test_keypad_and_names_go_back_to_idle_without_a_touch(tmp_path) -> None:
    clock = SteppedClock()

    def scene(s: Scene) -> None:
        tap(s, "family")
        s.wait(lambda: s.kiosk.phase == "family_keypad", "the keypad")
        for digit in "138":
            tap(s, digit)
        s.wait(lambda: s.kiosk.shown.entry == "138", "the digits typed")
        clock.offset += 20.0  # a touch within family_idle_s keeps it open ...
        tap(s, "delete")
        s.wait(lambda: s.kiosk.shown.entry == "13", "a digit deleted")
        s.turns(3)
        assert s.kiosk.phase == "family_keypad"
        clock.offset += 31.0  # ... and 30 s without one closes it
        s.wait(lambda: s.kiosk.phase == "idle", "the start page after the keypad was left alone")
        tap(s, "family")
        s.wait(lambda: s.kiosk.phase == "family_keypad", "the keypad again")
        assert s.kiosk.shown.entry == ""  # nothing left over from the visitor who walked away
        tap(s, "cancel")
        s.wait(lambda: s.kiosk.phase == "idle", "the start page after Cancel")

        look_up(s, MOTHER_OF_P01)
        s.wait(lambda: s.kiosk.phase == "family_choose", "the names")
        clock.offset += 31.0
        s.wait(lambda: s.kiosk.phase == "idle", "the start page after the names were left alone")
        assert not s.decided and s.kiosk.parts.store.counts()["total"] == 0

    run_scene(tmp_path, scene, kiosk_options={"clock": clock})


@pytest.mark.slow
@pytest.mark.e2e
def test_a_code_shown_at_the_keypad_is_served_as_usual(tmp_path) -> None:
    def scene(s: Scene) -> None:
        tap(s, "family")
        s.wait(lambda: s.kiosk.phase == "family_keypad", "the keypad")
        tap(s, "1")
        s.world.camera.show(s.code("green"), "plain")
        s.world.wrist.approach(36.6)
        s.wait(lambda: bool(s.decided), "a verdict")
        assert s.decided[-1].verdict.outcome == "PASS" and s.decided[-1].event.proxy is False
        s.world.camera.hide()
        s.world.wrist.leave()
        s.wait(lambda: s.kiosk.phase == "idle", "the start page")
        assert s.upstream.stats["family"] == 0

    run_scene(tmp_path, scene)


@pytest.mark.slow
@pytest.mark.e2e
def test_the_lookup_can_be_turned_off(tmp_path) -> None:
    def scene(s: Scene) -> None:
        start_page(s)
        assert not s.kiosk.shown.family_button and s.kiosk.parts.family is None
        assert s.kiosk.parts.screen.buttons == {}
        screen = s.kiosk.parts.screen
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(660, 100), button=1))
        s.turns(3)
        assert s.kiosk.phase == "idle" and screen.buttons == {}

    run_scene(tmp_path, scene, codes={"family_lookups": 0})


# --- the keypad flow by itself: taps and times in, pages and choices out ------------------------


def keypad(now: float = 0.0) -> FamilyFlow:
    return FamilyFlow(PhoneEntry(11, 11), now, idle_s=30.0, message_s=3.0)


def test_flow_sends_the_number_once_and_forgets_it() -> None:
    flow = keypad()
    step = flow.step(1.0, [*MOTHER_OF_P01[:-1], None, "delete", MOTHER_OF_P01[-2], MOTHER_OF_P01[-1]])
    assert step.page.kind == "family_keypad" and step.page.entry_complete and step.lookup is None
    assert MOTHER_OF_P01 not in step.page.entry  # only the last four digits are shown
    step = flow.step(2.0, ["ok", "5", "ok"])  # the taps after OK were meant for the keypad just left
    assert step.lookup == MOTHER_OF_P01 and step.page.kind == "family_searching"
    assert len(flow.entry) == 0
    assert flow.step(3.0, ["ok"]).lookup is None


def test_flow_offers_the_names_and_hands_over_the_chosen_code() -> None:
    flow = keypad()
    flow.step(1.0, [*MOTHER_OF_P01, "ok"])
    found = FamilyResult("found", members=(FamilyMember("张*英", "HCP1:code-a"), FamilyMember("李*", "HCP1:code-b")))
    page = flow.step(2.0, [], found).page
    assert page.kind == "family_choose" and page.choices == ("张*英", "李*")
    assert flow.step(3.0, ["member:7"]).chosen is None  # no such name on the page
    step = flow.step(4.0, ["member:1"])
    assert step.chosen == "HCP1:code-b" and step.page is None and step.ended is None


def test_flow_shows_a_message_for_a_while_then_ends() -> None:
    flow = keypad()
    flow.step(1.0, [*NOBODY, "ok"])
    assert flow.step(2.0, [], FamilyResult("unknown")).page.reasons == ("family_unknown",)
    assert flow.step(4.9, ["cancel"]).page.kind == "family_message"  # the message is not cut short
    assert flow.step(5.0, []).ended == "message shown"


def test_flow_gives_up_on_a_lookup_without_an_answer_only_when_left_alone() -> None:
    flow = keypad()
    flow.step(1.0, [*NOBODY, "ok"])
    assert flow.step(25.0, [None]).page.kind == "family_searching"  # a touch beside the buttons keeps it
    page = flow.step(55.5, []).page
    assert page.kind == "family_message" and page.reasons == ("family_unavailable",)


def test_flow_ends_when_cancelled_or_left_alone() -> None:
    assert keypad().step(1.0, ["1", "cancel", "2"]).ended == "cancelled"
    flow = keypad()
    assert flow.step(30.0, []).page.kind == "family_keypad"
    assert flow.step(30.5, []).ended == "no touch for 30 s"
