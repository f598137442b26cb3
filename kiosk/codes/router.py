"""Routes every scanned code to the verifier of its scheme, and applies the checks around them all.

- A signed credential goes to the verifier of its offline scheme (``kiosk.codes.offline.SCHEMES``:
  ``HC1:`` the EU DCC's, ``shc:/`` the SMART Health Card's), checked against the trust list. The
  scanned text is normalised first (Unicode compatibility forms,
  leading whitespace and invisible characters), and a text that only looks like a certificate
  (a lookalike prefix, a Base45 COSE body, an ``shc:/``-style digit run; ``kiosk.codes.recognise``)
  goes there too, to be refused: a certificate never reaches a platform.
- Any other code is looked up at a platform: the first configured platform of another region whose
  prefix or pattern matches (``codes.platforms``, mutual recognition), else the home platform.
- Offline codes are refused while the trust list is out of date or the clock is not synchronised,
  when the configured policy says so (``trust.stale``, ``codes.unsynchronised_clock``).
- A code that would pass is refused as "replayed" if it got someone in within the replay window.
  The kiosk reports each PASS with ``accepted()``; the guard keeps only a keyed hash (for signed
  credentials, of the signed content, so a re-encoded copy of the same certificate is caught too).

The interface is the platform verifier's: ``verify(payload) -> CodeResult``, called from a worker
thread, never raising: a bad code or an unreachable platform is a refusal with its reason, and an
unexpected exception in any verifier is logged (its type and place, never the code) and refused
as ``cannot_verify``.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Protocol, Sequence

from kiosk.codes.clock import ClockCheck, system_clock_check
from kiosk.codes.hashing import CodeHasher
from kiosk.codes.offline import SCHEMES, OfflineVerifier
from kiosk.codes.platform import PlatformVerifier
from kiosk.codes.recognise import recognise
from kiosk.codes.replay import ReplayGuard
from kiosk.codes.trust import TrustStore
from kiosk.codes.trustlist import TrustListKeeper
from kiosk.config import Config, OtherPlatform
from kiosk.results import CodeResult, Reason

log = logging.getLogger(__name__)

_EMPTY = TrustStore()
# Replay keys of codes verified but not yet decided; a kiosk decides one visitor at a time.
_PENDING_MAX = 64


class TrustSource(Protocol):
    """Where the offline verifiers' trust anchors come from (the keeper, or fixed files)."""

    @property
    def store(self) -> TrustStore | None: ...

    def stale_problem(self, now: datetime) -> str | None: ...


@dataclass
class FixedTrust:
    """Trust anchors given by hand (``kiosk verify --trust-cert/--trust-jwks``): never stale."""

    store: TrustStore | None

    def stale_problem(self, now: datetime) -> str | None:
        return None


@dataclass(frozen=True)
class Route:
    """An other region's platform and the codes it issued."""

    prefix: str
    pattern: re.Pattern[str] | None
    verifier: PlatformVerifier

    def matches(self, payload: str) -> bool:
        if self.pattern is not None:
            return self.pattern.match(payload) is not None
        return payload.startswith(self.prefix)


def offline_scheme(payload: str) -> str | None:
    """The offline scheme's name ("dcc", "shc") if the text is (or looks like) a signed credential,
    else None."""
    return recognise(payload).scheme


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class CodeRouter:
    def __init__(
        self,
        config: Config,
        hasher: CodeHasher,
        platform: PlatformVerifier,
        trust: TrustSource,
        *,
        routes: tuple[Route, ...] = (),
        replay: ReplayGuard | None = None,
        clock_check: ClockCheck | None = None,
        utcnow: Callable[[], datetime] = _utc_now,
        schemes: Sequence[type[OfflineVerifier]] = SCHEMES,
    ):
        self.config = config
        self.platform = platform
        self.routes = routes
        self.trust = trust
        self.replay = replay if replay is not None else ReplayGuard(0)
        # The event log stamps events from the same check (``system_clock_check``), so a code
        # refused for the clock and the event recording it agree.
        self.clock_check = clock_check if clock_check is not None else system_clock_check(config.codes.clock_check)
        self._hasher = hasher
        self._utcnow = utcnow
        skew = timedelta(seconds=config.platform.clock_skew_s)
        self.schemes = tuple(schemes)
        # One instance per scheme; verifiers keep no state between codes, so threads share them.
        self.offline: dict[str, OfflineVerifier] = {scheme.name: scheme(config.codes, skew) for scheme in self.schemes}
        self._pending: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    # -- the verifier interface ----------------------------------------------------------------

    def verify(self, payload: str) -> CodeResult:
        """The verdict on one scanned code; never raises (see the module docstring)."""
        try:
            result, replay_key = self._verify(payload)
        except Exception as exc:  # a verifier's bug must cost one visit, never the service
            return self._internal_failure(payload, exc)
        with self._lock:
            self._pending[result.code_hash] = replay_key
            while len(self._pending) > _PENDING_MAX:
                self._pending.popitem(last=False)
        return result

    def _verify(self, payload: str) -> tuple[CodeResult, str]:
        recognised = recognise(payload, self.schemes)
        if recognised.scheme is None:
            result = self._platform_for(payload).verify(payload)
            replay_key = result.code_hash
        else:
            result, replay_key = self._offline(recognised.scheme, payload, recognised.text)
        if result.verified and result.colour == "green" and not result.reasons and self.replay.seen(replay_key):
            log.info("code refused: accepted here within the last %.0f s", self.replay.window_s)
            reasons = (str(Reason.REPLAYED),)
            problem = f"accepted at this kiosk within the last {self.replay.window_s:.0f} s"
            result = replace(result, reasons=reasons, problem=problem)
        return result, replay_key

    def _internal_failure(self, payload: object, exc: Exception) -> CodeResult:
        """A logged refusal for an exception no verifier should have raised. The log names the
        exception's type and where it was raised, not its message (which may quote the code)."""
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"
        log.error("code verification failed unexpectedly (%s at %s); the code is refused", type(exc).__name__, where)
        try:
            code_hash = self._hasher.hash(payload) if isinstance(payload, str) else self._hasher.hash(repr(type(payload)))
            scheme = recognise(payload, self.schemes).scheme or "platform"
        except Exception:
            code_hash, scheme = "", "platform"
        return CodeResult(
            verified=False,
            colour="unknown",
            code_hash=code_hash,
            scheme=scheme,
            problem=f"internal error while checking the code ({type(exc).__name__})",
            reasons=(str(Reason.CANNOT_VERIFY),),
        )

    def accepted(self, code: CodeResult) -> None:
        """The kiosk let the holder of this code in: the same code is refused for the replay window."""
        with self._lock:
            key = self._pending.pop(code.code_hash, code.code_hash)
        self.replay.accept(key)

    def close(self) -> None:
        self.platform.close()
        for route in self.routes:
            route.verifier.close()
        self.replay.close()
        closer = getattr(self.trust, "close", None)
        if closer:
            closer()

    # -- routing -------------------------------------------------------------------------------

    def _platform_for(self, payload: str) -> PlatformVerifier:
        if isinstance(payload, str):
            for route in self.routes:
                if route.matches(payload):
                    return route.verifier
        return self.platform

    def scheme_of(self, payload: str) -> str:
        """An offline scheme's name ("dcc", "shc"), or "platform:<name>" (for staff tools and the
        benchmark)."""
        return recognise(payload, self.schemes).scheme or f"platform:{self._platform_for(payload).name}"

    def _offline(self, scheme: str, payload: str, text: str) -> tuple[CodeResult, str]:
        """``payload`` as scanned (its hash stands for it), ``text`` as normalised for the verifier."""
        code_hash = self._hasher.hash(payload)
        now = self._utcnow()
        store = self.trust.store or _EMPTY
        finding = self.offline[scheme].verify(text, store, now)
        blocking, problems = self._policy_reasons(now)
        reasons = tuple(dict.fromkeys([*blocking, *finding.reasons]))
        if finding.problem:
            problems.append(finding.problem)
        result = CodeResult(
            verified=True,
            colour=finding.colour,
            code_hash=code_hash,
            scheme=scheme,
            problem="; ".join(problems) or None,
            reasons=tuple(str(reason) for reason in reasons),
            issuer=finding.issuer,
            expires=finding.expires,
            tested_at=finding.tested_at,
            # Valid from its signature and validity period, not from a recent generation time.
            dynamic=False,
        )
        replay_key = self._hasher.hash(f"{scheme}:{finding.signed.hex()}") if finding.signed else code_hash
        return result, replay_key

    def _policy_reasons(self, now: datetime) -> tuple[list[Reason], list[str]]:
        """Offline checks cannot be trusted without a current trust list and a synchronised clock."""
        reasons: list[Reason] = []
        problems: list[str] = []
        stale = self.trust.stale_problem(now)
        if stale:
            if self.config.trust.stale == "refuse":
                reasons.append(Reason.TRUST_LIST_STALE)
                problems.append(stale)
            else:
                log.warning("accepting offline certificates with a stale trust list: %s", stale)
        if not self.clock_check.synchronised():
            if self.config.codes.unsynchronised_clock == "refuse":
                reasons.append(Reason.CLOCK_UNSYNCHRONISED)
                problems.append("system clock not synchronised since boot")
            else:
                log.warning("accepting offline certificates with an unsynchronised clock")
        return reasons, problems


def _route(other: OtherPlatform, config: Config, hasher: CodeHasher) -> Route:
    section = config.platform.model_copy(update={"url": other.url, "token": other.token})
    return Route(
        prefix=other.prefix,
        pattern=re.compile(other.pattern) if other.pattern else None,
        verifier=PlatformVerifier(section, hasher, name=other.name),
    )


def build_router(
    config: Config,
    hasher: CodeHasher,
    *,
    trust: TrustSource | None = None,
    clock_check: ClockCheck | None = None,
    utcnow: Callable[[], datetime] = _utc_now,
    schemes: Sequence[type[OfflineVerifier]] = SCHEMES,
) -> CodeRouter:
    """The kiosk's verifier as the config describes it: the home platform, the other regions'
    platforms, the trust list keeper (its ``run`` is a thread body) and the replay guard."""
    replay_path = config.replay_path if config.codes.replay_store == "sqlite" else None
    return CodeRouter(
        config,
        hasher,
        PlatformVerifier(config.platform, hasher),
        trust if trust is not None else TrustListKeeper(config.trust, config.trust_list_path, utcnow=utcnow),
        routes=tuple(_route(other, config, hasher) for other in config.codes.platforms),
        replay=ReplayGuard(config.codes.replay_window_s, replay_path),
        clock_check=clock_check,
        utcnow=utcnow,
        schemes=schemes,
    )
