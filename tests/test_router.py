"""Routing each code to its scheme, the policies around offline codes, and the whole chain in the kiosk."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from kiosk.codes.clock import ClockCheck
from kiosk.codes.hashing import CodeHasher
from kiosk.codes.router import CodeRouter, FixedTrust, build_router, offline_scheme
from kiosk.codes.trust import TrustStore
from kiosk.codes.trustlist import TrustListKeeper
from kiosk.config import Config, merged
from kiosk.decision import Policy, Reason, decide
from kiosk.results import TemperatureResult
from kiosk.sim.credentials import DEMO_OPERATOR_PUBLIC_KEY, DccIssuer, ShcIssuerSim
from kiosk.sim.population import Population
from kiosk.sim.upstream import ReferenceUpstream

NOW = datetime(2026, 11, 26, 9, 30, 20, tzinfo=timezone.utc)
SECRET = b"install-secret-for-tests-0123456789"


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[ReferenceUpstream]:
    with ReferenceUpstream(data_dir=tmp_path / "home", population=Population(b"home", clock=lambda: NOW)) as server:
        yield server


@pytest.fixture()
def away(tmp_path: Path) -> Iterator[ReferenceUpstream]:
    """Another region's platform: its own secret, so its codes mean nothing at home."""
    with ReferenceUpstream(data_dir=tmp_path / "away", population=Population(b"away", clock=lambda: NOW)) as server:
        yield server


def config_for(home: ReferenceUpstream, **sections) -> Config:
    base = {"platform": {"url": f"{home.url}/platform", "timeout_s": 0.5}, "codes": {"replay_window_s": 0}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return merged(Config(), base, "test")


def router_for(config: Config, store: TrustStore | None = None, synced: bool = True) -> CodeRouter:
    return build_router(
        config, CodeHasher(SECRET),
        trust=FixedTrust(store if store is not None else TrustStore()),
        clock_check=ClockCheck("auto", kernel=lambda: synced, timesyncd=lambda: False),
        utcnow=lambda: NOW,
    )


def passes(result) -> bool:
    return decide(TemperatureResult.measured(36.6), result, Policy(), NOW).passed


@pytest.mark.parametrize(
    ("payload", "scheme"),
    [
        ("HC1:NCFOXN", "dcc"), ("hc1:abc", "dcc"), ("\ufeffHC1:abc", "dcc"), (" HC1:abc", "dcc"),
        ("shc:/5676", "shc"), ("SHC:/5676", "shc"), ("\ufeffshc:/1/2/56", "shc"),
        ("HCP1:ABC", None), ("HC2:abc", None), ("", None), ("shc:", None),
    ],
)
def test_offline_schemes_are_recognised_by_their_form(payload: str, scheme: str | None) -> None:
    assert offline_scheme(payload) == scheme


def test_codes_of_other_regions_go_to_their_platform(home, away) -> None:
    config = config_for(home, codes={"platforms": [
        {"name": "gd", "prefix": "GD1:", "url": "http://127.0.0.1:9/gd"},
        {"name": "away", "pattern": "^HCP1:[A-Z2-7]{24}$", "url": f"{away.url}/platform"},
    ]})
    router = router_for(config)
    away_code = away.population.code_for("p02")
    assert router.scheme_of("GD1:0123") == "platform:gd"
    assert router.scheme_of(away_code) == "platform:away"
    assert router.scheme_of("ZJ-0123") == "platform:platform"
    result = router.verify(away_code)
    assert result.issuer == "away" and result.colour == "green" and passes(result)
    # The pattern catches the home platform's codes too (first match wins): unknown over there.
    assert router.verify(home.population.code_for("p02")).colour == "unknown"
    home_only = router_for(config_for(home))
    assert home_only.verify(home.population.code_for("p02")).issuer == "platform"
    assert home_only.verify(away_code).colour == "unknown"  # another region's code means nothing at home
    router.close()
    home_only.close()


def test_offline_lookalikes_never_reach_a_platform() -> None:
    # The platform is unreachable: a code sent there would come back "cannot verify".
    router = router_for(merged(Config(), {"platform": {"url": "http://127.0.0.1:9/platform"}}))
    for payload in ("hc1:NCFOXN", "\ufeffHC1:NCF", "SHC:/56", " shc:/5676"):
        result = router.verify(payload)
        assert result.verified and result.scheme in ("dcc", "shc") and result.reasons[-1] == "malformed_code"
    router.close()


def test_offline_codes_need_a_current_trust_list(home, tmp_path: Path) -> None:
    dcc = DccIssuer()
    payload = dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30))
    keeper_config = config_for(home, trust={"url": f"{home.url}/trust/list", "operator_key": DEMO_OPERATOR_PUBLIC_KEY,
                                            "max_age_h": 24}, kiosk={"data_dir": str(tmp_path / "k")})
    keeper = TrustListKeeper(keeper_config.trust, keeper_config.trust_list_path, utcnow=lambda: NOW)
    router = build_router(keeper_config, CodeHasher(SECRET), trust=keeper, clock_check=ClockCheck("off"),
                          utcnow=lambda: NOW)
    no_list = router.verify(payload)
    assert no_list.reasons[0] == "trust_list_stale" and "no trust list" in no_list.problem
    keeper.refresh()
    home_signed = home.credentials.dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30))
    assert router.verify(home_signed).reasons == () and passes(router.verify(home_signed))
    later = NOW + timedelta(hours=30)
    stale = build_router(keeper_config, CodeHasher(SECRET), trust=keeper, clock_check=ClockCheck("off"),
                         utcnow=lambda: later).verify(home_signed)
    assert stale.reasons == ("trust_list_stale",) and not passes(stale)
    accepting = merged(keeper_config, {"trust": {"stale": "accept"}})
    relaxed = build_router(accepting, CodeHasher(SECRET), trust=keeper, clock_check=ClockCheck("off"),
                           utcnow=lambda: later).verify(home_signed)
    assert relaxed.reasons == () and relaxed.colour == "green"
    router.close()


def test_unsynchronised_clock_refuses_offline_codes_only(home) -> None:
    shc = ShcIssuerSim()
    store = TrustStore.build(issuers=[shc.issuer()])
    card = shc.issue(NOW - timedelta(days=1))
    unsynced = router_for(config_for(home), store, synced=False)
    result = unsynced.verify(card)
    assert result.reasons == ("clock_unsynchronised",) and "not synchronised" in result.problem
    assert not passes(result)
    platform = unsynced.verify(home.population.code_for("p01"))
    assert platform.reasons == () and passes(platform)
    accepting = router_for(config_for(home, codes={"unsynchronised_clock": "accept"}), store, synced=False)
    assert accepting.verify(card).reasons == ()
    assert router_for(config_for(home), store, synced=True).verify(card).reasons == ()


def test_clock_check_sources() -> None:
    assert ClockCheck("off", kernel=lambda: False, timesyncd=lambda: False).synchronised()
    assert not ClockCheck("auto", kernel=lambda: None, timesyncd=lambda: False).synchronised()
    assert ClockCheck("auto", kernel=lambda: False, timesyncd=lambda: True).synchronised()
    assert not ClockCheck("timesyncd", kernel=lambda: True, timesyncd=lambda: False).synchronised()
    assert not ClockCheck("kernel", kernel=lambda: False, timesyncd=lambda: True).synchronised()
    state = {"synced": False}
    check = ClockCheck("kernel", kernel=lambda: state["synced"])
    assert not check.synchronised() and "NOT" in check.describe()
    state["synced"] = True
    assert check.synchronised()
    state["synced"] = False  # synchronised since boot: a later NTP hiccup does not undo that
    assert check.synchronised() and check.describe() == "synchronised"


def test_test_rule_with_the_platforms_test_times(home) -> None:
    config = config_for(home, codes={"test_within_h": 48})
    policy = Policy.from_config(config)
    router = router_for(config)
    fresh, old = home.population.person_ids(colour="green", proxy=False)[:2]
    home.population.set_test(fresh, NOW - timedelta(hours=20))
    home.population.set_test(old, NOW - timedelta(hours=50))
    normal = TemperatureResult.measured(36.6)
    assert decide(normal, router.verify(home.population.code_for(fresh)), policy, NOW).passed
    assert decide(normal, router.verify(home.population.code_for(old)), policy, NOW).reasons == (Reason.TEST_REQUIRED,)
    home.population.set_test(fresh, NOW - timedelta(hours=2), "positive")
    untested = router.verify(home.population.code_for(fresh))
    assert untested.tested_at is None
    assert decide(normal, untested, policy, NOW).reasons == (Reason.TEST_REQUIRED,)
    assert decide(normal, untested, Policy.from_config(config_for(home)), NOW).passed  # rule off by default
    router.close()
