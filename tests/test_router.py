"""Routing each code to its scheme, the policies around offline codes, and the whole chain in the kiosk."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, Iterator

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk.codes.clock import ClockCheck, timesyncd_synchronised
from kiosk.codes.finding import Finding
from kiosk.codes.hashing import CodeHasher
from kiosk.codes.offline import ANCHORS, SCHEMES
from kiosk.codes.recognise import recognise
from kiosk.codes.router import CodeRouter, FixedTrust, build_router, offline_scheme
from kiosk.codes.trust import TrustStore
from kiosk.codes.trustlist import TrustListKeeper
from kiosk.config import Config, merged
from kiosk.decision import Policy, decide
from kiosk.events import Event, utc_iso
from kiosk.results import Reason, TemperatureResult
from kiosk.sim.credentials import DEMO_OPERATOR_PUBLIC_KEY, DccIssuer, ShcIssuerSim, trust_list_document
from kiosk.sim.population import Population
from kiosk.sim.upstream import ReferenceUpstream
from kiosk.sync import open_sync

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
        ("HCP1:ABC", None), ("HC2:abc", None), ("", None), ("shc:", "shc"), ("HC123456", None),
        ("ZJ-0123", None), ("GD1:0123", None), ("12345678901234567890", None),
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


# -- lookalikes: a certificate never leaves the device ---------------------------------------------


class RecordingPopulation(Population):
    """The reference platform's population, noting every code it is asked about."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    def lookup(self, code: str) -> dict[str, Any] | None:
        self.asked.append(code)
        return super().lookup(code)


@pytest.fixture()
def recording(tmp_path: Path) -> Iterator[ReferenceUpstream]:
    population = RecordingPopulation(b"home", clock=lambda: NOW)
    with ReferenceUpstream(data_dir=tmp_path / "recording", population=population) as server:
        yield server


def _lookalikes(genuine: str, card: str) -> dict[str, str]:
    body = genuine[4:]
    return {
        "cyrillic-en": "\u041dC1:" + body,  # Н
        "cyrillic-es": "H\u04211:" + body,  # С
        "greek-eta": "\u0397C1:" + body,  # Η
        "fullwidth-lower-latin": "\uff48\uff43\uff11\uff1a" + body,  # ｈｃ１：
        "lower-case": "hc1:" + body,
        "letter-l-for-one": "HCl:" + body,
        "capital-i-for-one": "HCI:" + body,
        "ratio-colon": "HC1\u2236" + body,  # ∶
        "modifier-colon": "HC1\ua789" + body,  # ꞉
        "semicolon": "HC1;" + body,
        "no-colon": "HC1" + body,
        "no-prefix": body,
        "other-version": "HC2:" + body,
        "padded-prefix": "HC 1:" + body,
        "shc-no-slash": "shc:" + card[5:],
        "shc-upper": "SHC:/" + card[5:],
        "shc-cyrillic-es": "\u0455hc:/" + card[5:],  # ѕ
        "shc-backslash": "shc:\\" + card[5:],
        "shc-digits-only": card[5:],
        "shc-other-prefix": "CARD:" + card[5:],
    }


def test_lookalike_certificates_are_refused_without_reaching_the_platform(recording) -> None:
    """Each text that looks like a certificate is refused locally; the platform, a real HTTP server
    on loopback, is asked about none of them (nor about anything that carries the holder's name)."""
    dcc, shc = DccIssuer(), ShcIssuerSim()
    genuine = dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30))
    card = shc.issue(NOW - timedelta(days=1))
    router = router_for(config_for(recording), TrustStore.build([dcc.signer()], [shc.issuer()]))
    for name, payload in _lookalikes(genuine, card).items():
        result = router.verify(payload)
        assert result.scheme in ("dcc", "shc") and result.reasons[-1] == "malformed_code", (name, result)
        assert not passes(result)
    assert recording.population.asked == []
    # The platform is really there: a platform code reaches it.
    assert router.verify(recording.population.code_for("p01")).colour == "green"
    assert len(recording.population.asked) == 1
    router.close()


@pytest.mark.parametrize(
    "junk",
    ["\u200b", "\u00a0", "\ufeff", "\u2060", "\u200c\u200d", "\u00ad", " \t\r\n", "\u3000", "\u180e"],
    ids=["zero-width-space", "no-break-space", "bom", "word-joiner", "zero-width-joiners", "soft-hyphen",
         "whitespace", "ideographic-space", "mongolian-vowel-separator"],
)
def test_leading_invisible_characters_are_dropped(recording, junk: str) -> None:
    """A genuine certificate behind invisible characters or spaces is still the certificate."""
    dcc, shc = DccIssuer(), ShcIssuerSim()
    router = router_for(config_for(recording), TrustStore.build([dcc.signer()], [shc.issuer()]))
    for genuine in (dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30)), shc.issue(NOW - timedelta(days=1))):
        result = router.verify(junk + genuine)
        assert result.reasons == () and result.colour == "green" and passes(result)
    assert recording.population.asked == []
    router.close()


def test_compatibility_forms_are_normalised(recording) -> None:
    """A certificate in fullwidth characters (NFKC folds them) is the certificate."""
    dcc = DccIssuer()
    genuine = dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30))
    fullwidth = "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in genuine)
    router = router_for(config_for(recording), TrustStore.build([dcc.signer()]))
    result = router.verify(fullwidth)
    assert result.scheme == "dcc" and result.reasons == () and result.colour == "green"
    assert recognise(fullwidth).text == genuine
    router.close()
    shc = ShcIssuerSim()
    card = shc.issue(NOW - timedelta(days=1))
    router = router_for(config_for(recording), TrustStore.build(issuers=[shc.issuer()]))
    assert router.verify("shc:\uff0f" + card[5:]).colour == "green"  # a fullwidth solidus
    assert recording.population.asked == []
    router.close()


def test_platform_codes_are_not_mistaken_for_certificates(recording) -> None:
    router = router_for(config_for(recording))
    codes = [recording.population.code_for(person) for person in recording.population.person_ids()[:6]]
    for code in codes + ["HC123456", "ZJ-330102-0001", "shc", "5676", "HC1", "NCFOXN", "粤康码:0123", "健康码-HC1"]:
        assert recognise(code).scheme is None, code
    for code in codes:
        assert router.verify(code).scheme == "platform"
    assert recording.population.asked == codes
    router.close()


# -- a verifier's bug costs one visit, never the service ---------------------------------------------


@pytest.mark.parametrize("scheme", ["dcc", "shc", "platform"])
def test_an_exception_in_any_verifier_is_a_logged_refusal(recording, caplog, monkeypatch, scheme: str) -> None:
    dcc, shc = DccIssuer(), ShcIssuerSim()
    router = router_for(config_for(recording), TrustStore.build([dcc.signer()], [shc.issuer()]))
    payloads = {"dcc": dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30)),
                "shc": shc.issue(NOW - timedelta(days=1)), "platform": recording.population.code_for("p01")}
    secret = "Zhang Wei 1980-01-01"

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"unhashable: {secret}")

    target = {**router.offline, "platform": router.platform}[scheme]
    monkeypatch.setattr(target, "verify", explode)
    with caplog.at_level(logging.DEBUG):
        result = router.verify(payloads[scheme])
    assert result.reasons == ("cannot_verify",) and not result.verified and not passes(result)
    assert result.code_hash and result.problem == "internal error while checking the code (TypeError)"
    record = next(r for r in caplog.records if "failed unexpectedly" in r.getMessage())
    assert record.levelno == logging.ERROR and "TypeError" in record.getMessage()
    # The log names the exception and where, never its message or the code.
    assert secret not in caplog.text and payloads[scheme] not in caplog.text
    # The router goes on serving.
    monkeypatch.undo()
    assert router.verify(payloads["dcc"]).colour == "green"
    router.close()


def test_non_text_payloads_are_refused_not_raised(recording) -> None:
    router = router_for(config_for(recording))
    for payload in (None, b"HC1:", 7, ["HC1:"]):
        result = router.verify(payload)  # type: ignore[arg-type]
        assert not passes(result)
    router.close()


# -- one clock check for the verifier and the event log -------------------------------------------


def _decision_event(config: Config, result, now: datetime) -> Event:
    """The event the kiosk logs for this code with a normal temperature."""
    verdict = decide(TemperatureResult.measured(36.6), result, Policy.from_config(config), now)
    return Event(time=utc_iso(now), kiosk_id=config.kiosk.id, site_id=config.kiosk.site_id,
                 decision=verdict.outcome, reasons=tuple(str(r) for r in verdict.reasons), temperature_c=36.6,
                 code_colour=result.colour, code_hash=result.code_hash, code_scheme=result.scheme)


def test_the_kiosks_verifier_and_event_log_share_one_clock_check(home, tmp_path: Path) -> None:
    """Built as the kiosk builds them (no clock given to either), both follow codes.clock_check: with
    "off" (a device with a real-time clock) a certificate is not refused for the clock, and its event
    does not say the clock was unsynchronised, whatever the kernel's NTP status on this machine."""
    dcc = DccIssuer()
    config = config_for(home, codes={"clock_check": "off"}, kiosk={"data_dir": str(tmp_path / "data")})
    store, uploader = open_sync(config, utcnow=lambda: NOW)
    router = build_router(config, CodeHasher(SECRET), trust=FixedTrust(TrustStore.build([dcc.signer()])),
                          utcnow=lambda: NOW)
    try:
        result = router.verify(dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30)))
        assert "clock_unsynchronised" not in result.reasons and passes(result)
        assert store.append(_decision_event(config, result, NOW)).clock_synced is True
    finally:
        router.close()
        store.close()


@pytest.mark.parametrize(("mode", "synced"), [("timesyncd", True), ("auto", True), ("kernel", False)])
def test_a_certificate_and_its_event_agree_on_the_clock(home, tmp_path: Path, mode: str, synced: bool) -> None:
    """timesyncd has synchronised the clock (its flag is there) while the kernel's NTP status says it
    is not: whichever source the config trusts, the certificate's verdict and its event's
    ``clock_synced`` say the same."""
    flag = tmp_path / "run" / "timesync" / "synchronized"
    flag.parent.mkdir(parents=True)
    flag.touch()
    config = config_for(home, codes={"clock_check": mode}, kiosk={"data_dir": str(tmp_path / "data")})
    check = ClockCheck(config.codes.clock_check, kernel=lambda: False, timesyncd=lambda: timesyncd_synchronised(flag))
    store, uploader = open_sync(config, synchronised=check, utcnow=lambda: NOW)
    dcc = DccIssuer()
    router = build_router(config, CodeHasher(SECRET), trust=FixedTrust(TrustStore.build([dcc.signer()])),
                          clock_check=check, utcnow=lambda: NOW)
    try:
        result = router.verify(dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30)))
        event = store.append(_decision_event(config, result, NOW))
        assert ("clock_unsynchronised" in result.reasons) is (not synced)
        assert event.decision == ("PASS" if synced else "REFUSE")
        assert event.clock_synced is synced
    finally:
        router.close()
        store.close()


def test_an_event_right_after_the_clock_synchronised_says_so(home, tmp_path: Path) -> None:
    """The clock becomes synchronised between two of the upload thread's looks at it: the first
    certificate that sees it is accepted, and its event already says synchronised."""
    synced = [False]
    config = config_for(home, codes={"clock_check": "kernel"}, kiosk={"data_dir": str(tmp_path / "data")})
    check = ClockCheck("kernel", kernel=lambda: synced[0])
    store, uploader = open_sync(config, synchronised=check, utcnow=lambda: NOW)
    dcc = DccIssuer()
    router = build_router(config, CodeHasher(SECRET), trust=FixedTrust(TrustStore.build([dcc.signer()])),
                          clock_check=check, utcnow=lambda: NOW)
    code = dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30))
    try:
        before = router.verify(code)
        assert before.reasons == ("clock_unsynchronised",)
        assert store.append(_decision_event(config, before, NOW)).clock_synced is False
        synced[0] = True  # NTP answers; the upload thread has not looked since
        after = router.verify(code)
        assert after.reasons == () and passes(after)
        assert store.append(_decision_event(config, after, NOW)).clock_synced is True
    finally:
        router.close()
        store.close()


# -- an offline scheme is a plug-in ------------------------------------------------------------------


@dataclass(frozen=True)
class ToySigner:
    """The trust anchor of a small scheme written here only to plug in: an Ed25519 signer by name."""

    section: ClassVar[str] = "toy"
    title: ClassVar[str] = "toy signer"

    name: str
    public_key: Ed25519PublicKey

    @classmethod
    def from_entry(cls, entry: Any) -> ToySigner:
        return cls(entry["name"], Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["key"], validate=True)))

    @classmethod
    def index(cls, anchors: Sequence[ToySigner]) -> Mapping[str, ToySigner]:
        return {signer.name: signer for signer in anchors}

    @classmethod
    def summary(cls, index: Mapping[Any, Any]) -> dict[str, Any]:
        return {"toy_signers": sorted(index)}

    @classmethod
    def report(cls, summary: Mapping[str, Any]) -> list[str]:
        return [f"toy signers     {', '.join(summary['toy_signers'])}"]


class ToyVerifier:
    """``TOY1:<base64 JSON {signer, colour, exp}>.<base64 Ed25519 signature>``."""

    name: ClassVar[str] = "toy"
    prefix: ClassVar[str] = "TOY1:"
    shapes: ClassVar[tuple[str, ...]] = ()
    anchor: ClassVar[type] = ToySigner

    def __init__(self, codes: Any, skew: timedelta) -> None:
        self._skew = skew

    @staticmethod
    def resembles(text: str) -> bool:
        return False

    def verify(self, text: str, store: TrustStore, now: datetime) -> Finding:
        if not text.startswith(self.prefix):  # a lookalike is routed here to be refused
            return Finding.refuse(Reason.MALFORMED_CODE, f"does not start with {self.prefix}")
        try:
            body_b64, signature_b64 = text[len(self.prefix):].split(".")
            body = base64.urlsafe_b64decode(body_b64)
            claims = json.loads(body)
            signature = base64.urlsafe_b64decode(signature_b64)
            signer, colour, exp = claims["signer"], claims["colour"], claims["exp"]
            if colour not in ("green", "yellow", "red") or not isinstance(exp, int) or not isinstance(signer, str):
                raise ValueError("fields")
        except (ValueError, TypeError, KeyError, AttributeError):
            return Finding.refuse(Reason.MALFORMED_CODE, "not a toy code")
        anchor = store.section(ToySigner).get(signer)
        if anchor is None:
            return Finding.refuse(Reason.UNTRUSTED_ISSUER, f"no toy signer {signer[:20]!r}")
        try:
            anchor.public_key.verify(signature, body)
        except InvalidSignature:
            return Finding.refuse(Reason.INVALID_SIGNATURE, "toy signature does not verify")
        expires = datetime.fromtimestamp(exp, timezone.utc)
        if now >= expires:
            return Finding(reasons=(Reason.EXPIRED,), issuer=signer, expires=expires, problem="expired")
        return Finding(colour=colour, issuer=signer, expires=expires, signed=body)


class ToyIssuerSim:
    section = ToySigner.section

    def __init__(self, name: str = "toy-issuer") -> None:
        self.name = name
        self.key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())

    def trust_entry(self) -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"name": self.name, "key": base64.b64encode(raw).decode()}

    def issue(self, colour: str, expires: datetime, *, forged: bool = False) -> str:
        body = json.dumps({"signer": self.name, "colour": colour, "exp": int(expires.timestamp())}).encode()
        signature = self.key.sign(body)
        if forged:
            body = body.replace(colour.encode(), b"green")
        return f"TOY1:{base64.urlsafe_b64encode(body).decode()}.{base64.urlsafe_b64encode(signature).decode()}"


def test_an_offline_scheme_plugs_in_with_one_list_line(recording, tmp_path: Path) -> None:
    """A scheme the kiosk has never heard of, given as its verifier, its trust anchor and its
    simulated issuer, and added to the list of schemes: the trust list's new section is read, its
    codes are recognised (lookalikes too) and refused locally when wrong, the clock, replay and
    decision rules apply to them as to any certificate, and no platform is asked about them."""
    dcc, toy = DccIssuer(), ToyIssuerSim()
    document = trust_list_document(NOW - timedelta(hours=1), dcc=[dcc], others=[toy])
    assert set(document) >= {"dcc", "shc", "toy"}
    store = TrustStore.from_document(document, (*ANCHORS, ToySigner), issued_at=NOW - timedelta(hours=1))
    assert store.summary()["toy_signers"] == ["toy-issuer"] and store.summary()["dcc_signers"] == 1
    schemes = (*SCHEMES, ToyVerifier)
    config = config_for(recording, codes={"replay_window_s": 300}, kiosk={"data_dir": str(tmp_path / "data")})

    def router(synced: bool = True) -> CodeRouter:
        return build_router(config, CodeHasher(SECRET), trust=FixedTrust(store), utcnow=lambda: NOW, schemes=schemes,
                            clock_check=ClockCheck("kernel", kernel=lambda: synced))

    kiosk = router()
    good = toy.issue("green", NOW + timedelta(days=30))
    result = kiosk.verify(good)
    # No generation time, yet not stale: the decision takes the result's word for its freshness.
    assert (result.scheme, result.colour, result.reasons, result.issuer) == ("toy", "green", (), "toy-issuer")
    assert passes(result)
    kiosk.accepted(result)
    assert kiosk.verify(good).reasons == ("replayed",)

    refusals = {
        "red": (toy.issue("red", NOW + timedelta(days=30)), (), "red"),
        "forged": (toy.issue("red", NOW + timedelta(days=30), forged=True), ("invalid_signature",), "unknown"),
        "expired": (toy.issue("green", NOW - timedelta(days=1)), ("expired",), "unknown"),
        "stranger": (ToyIssuerSim("stranger").issue("green", NOW + timedelta(days=30)), ("untrusted_issuer",),
                     "unknown"),
        "lookalike": ("toy1:" + good[5:], ("malformed_code",), "unknown"),
        "truncated": (good[:20], ("malformed_code",), "unknown"),
    }
    for name, (payload, reasons, colour) in refusals.items():
        refused = kiosk.verify(payload)
        assert (refused.scheme, refused.reasons, refused.colour) == ("toy", reasons, colour), name
        assert not passes(refused), name
    assert router(synced=False).verify(toy.issue("green", NOW + timedelta(days=60))).reasons == ("clock_unsynchronised",)
    # The schemes already there still work beside it; none of these reached the platform.
    assert kiosk.verify(dcc.issue(NOW - timedelta(days=1), NOW + timedelta(days=30))).colour == "green"
    assert recording.population.asked == []
    # Without its list line the kiosk does not know the scheme: its code is a platform code.
    assert recognise(good).scheme is None and recognise(good, schemes).scheme == "toy"
    kiosk.close()
