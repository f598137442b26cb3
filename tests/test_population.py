"""The simulated platform population: dynamic codes, lookups, forgeries, masking."""

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.errors import KioskError
from kiosk.sim.population import PREFIX, Population, UnknownPersonError
from kit import FixedClock

NOW = datetime(2026, 11, 26, 9, 30, 27, tzinfo=timezone.utc)
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def population(clock: FixedClock) -> Population:
    return Population(clock=clock)


def full_names(population: Population) -> list[str]:
    return [person.name for person in population._people]


def test_cast_has_every_kind_of_visitor(population: Population) -> None:
    people = population.describe_people()
    assert 10 <= len(people) <= 15
    assert len({p["id"] for p in people}) == len(people)
    colours = [p["colour"] for p in people]
    assert colours.count("green") > len(people) / 2
    assert colours.count("yellow") >= 2 and colours.count("red") >= 2
    assert population.person_ids(colour="yellow") == [p["id"] for p in people if p["colour"] == "yellow"]
    proxies = [p for p in people if p["proxy"]]
    assert proxies and all(p["phone"] is None for p in proxies)
    # A proxy is linked to a family member who has a phone.
    phones = {p["id"]: p["phone"] for p in people}
    assert all(phones[p["guardian"]] for p in proxies)
    assert population.person_ids(proxy=True) == [p["id"] for p in proxies]


def test_describe_people_masks_names_and_phones(population: Population) -> None:
    text = json.dumps(population.describe_people(), ensure_ascii=False)
    for name in full_names(population):
        assert name not in text
    assert "13800138001" not in text
    assert "138****8001" in text
    assert {"张*明", "J*** S****"} <= {p["holder"] for p in population.describe_people()}


def test_code_changes_every_minute_and_is_opaque(population: Population, clock: FixedClock) -> None:
    code = population.code_for("p01")
    assert code.startswith(PREFIX) and code.isascii() and code.isprintable()
    assert population.code_for("p01", NOW.replace(second=59)) == code
    next_minute = population.code_for("p01", NOW + timedelta(minutes=1))
    assert next_minute != code
    clock.now = NOW + timedelta(minutes=1)
    assert population.code_for("p01") == next_minute
    # The colour (in any spelling) is not in the text: only the platform knows it.
    for person_id in population.person_ids():
        code = population.code_for(person_id)
        for word in ("green", "yellow", "red", "GREEN", "YELLOW", "RED", "绿", "黄", "红"):
            assert word not in code
    # Different people, different codes at the same moment.
    codes = {population.code_for(pid) for pid in population.person_ids()}
    assert len(codes) == len(population.person_ids())


def test_lookup_reports_colour_generation_minute_and_masked_holder(population: Population) -> None:
    answer = population.lookup(population.code_for("p01"))
    assert answer == {
        "status": "ok",
        "colour": "green",
        "generated_at": "2026-11-26T09:30:00Z",
        "holder": "张*明",
        "proxy": False,
    }
    assert population.lookup(population.code_for("p09"))["holder"] == "J*** S****"


def test_old_code_still_looks_up_with_its_old_time(population: Population) -> None:
    """The platform does not judge staleness: a screenshot from 10 minutes ago reports its own minute."""
    old = population.code_for("p02", NOW - timedelta(minutes=10))
    assert old != population.code_for("p02")
    assert population.lookup(old)["generated_at"] == "2026-11-26T09:20:00Z"


def test_colours_as_assigned_and_changeable(population: Population) -> None:
    for person in population.describe_people():
        assert population.lookup(population.code_for(person["id"]))["colour"] == person["colour"]
    code = population.code_for("p01")
    population.set_colour("p01", "red")
    # The colour lives on the platform, so the same code now looks up red.
    assert population.lookup(code)["colour"] == "red"
    assert "p01" in population.person_ids(colour="red")
    with pytest.raises(ValueError):
        population.set_colour("p01", "purple")


def test_proxy_code_is_issued_once_a_day(population: Population) -> None:
    proxy_id = population.person_ids(proxy=True)[0]
    code = population.code_for(proxy_id)
    assert population.code_for(proxy_id, NOW.replace(hour=0, minute=0)) == code
    assert population.code_for(proxy_id, NOW.replace(hour=23, minute=59)) == code
    assert population.code_for(proxy_id, NOW + timedelta(days=1)) != code
    answer = population.lookup(code)
    assert answer["proxy"] is True
    assert answer["generated_at"] == "2026-11-26T00:00:00Z"
    assert "*" in answer["holder"]


def test_unknown_person_is_a_clear_error(population: Population) -> None:
    with pytest.raises(UnknownPersonError) as caught:
        population.code_for("p99")
    assert isinstance(caught.value, KioskError) and isinstance(caught.value, KeyError)
    with pytest.raises(UnknownPersonError):
        population.set_colour("p99", "green")
    with pytest.raises(ValueError):
        population.code_for("p01", datetime(2026, 11, 26, 9, 30))  # naive time


def test_full_name_never_in_lookup_output(population: Population) -> None:
    answers = json.dumps(
        [population.lookup(population.code_for(pid)) for pid in population.person_ids()], ensure_ascii=False
    )
    for name in full_names(population):
        assert name not in answers


@pytest.mark.parametrize("position", range(len(PREFIX), len(PREFIX) + 24))
def test_any_altered_character_fails(population: Population, position: int) -> None:
    code = population.code_for("p07")
    replacements = {B32[(B32.index(code[position]) + 1) % 32], code[position].lower(), "0", "="} - {code[position]}
    for replacement in replacements:
        altered = code[:position] + replacement + code[position + 1 :]
        assert population.lookup(altered) is None


def test_forged_codes_fail(population: Population) -> None:
    code = population.code_for("p07")  # red
    raw = base64.b32decode(code[len(PREFIX) :])
    # Take a red person's code and point it at a green person, keeping the seal.
    green_number = population.person_ids().index("p01") + 1
    relabelled = raw[:1] + bytes([green_number]) + raw[2:]
    assert population.lookup(PREFIX + base64.b32encode(relabelled).decode()) is None
    # Move the time forward to refresh a screenshot.
    counter = int.from_bytes(raw[2:6], "big") + 10
    refreshed = raw[:2] + counter.to_bytes(4, "big") + raw[6:]
    assert population.lookup(PREFIX + base64.b32encode(refreshed).decode()) is None
    # A different platform secret: well formed, but not ours.
    other = Population(secret=b"another-platform", clock=lambda: NOW)
    assert other.lookup(code) is None
    assert population.lookup(other.code_for("p01")) is None
    # Wrong prefix, wrong seal, padding, whitespace.
    assert population.lookup("HCP2:" + code[len(PREFIX) :]) is None
    assert population.lookup(PREFIX + base64.b32encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode()) is None
    assert population.lookup(code + "=") is None
    assert population.lookup(" " + code) is None
    assert population.lookup(code.lower()) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "HCP1:",
        "green",
        '{"colour": "green", "name": "张伟明"}',
        "https://example.org/healthcode?c=green",
        "HCP1:" + "A" * 24,
        "HCP1:" + "\x00" * 24,
        "HCP1:" + "绿" * 24,
        "\udcff" * 29,
        "A" * 1_000_000,
        b"HCP1:AAAA".decode("latin-1") + "\xff" * 20,
    ],
)
def test_garbage_is_unknown(population: Population, garbage: str) -> None:
    assert population.lookup(garbage) is None


def test_non_text_is_unknown(population: Population) -> None:
    code = population.code_for("p01")
    assert population.lookup(code.encode()) is None  # type: ignore[arg-type]
    assert population.lookup(None) is None  # type: ignore[arg-type]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"HCP1:[A-Z2-7]{24}", fullmatch=True))
def test_random_text_is_unknown(text: str) -> None:
    assert Population(clock=lambda: NOW).lookup(text) is None
