"""``kiosk verify`` and ``kiosk trust``: the code checks, for staff and for external test suites.

``kiosk verify PAYLOAD`` runs one code through the kiosk's own router and rules and prints one
JSON line: ``scheme``, ``valid``, ``colour``, ``reasons``, ``issuer``, ``expires``, ``problem``.
``valid`` means the code is genuine and current under this kiosk's policy (its colour may still
refuse entry: a red code is valid and red). It exits 0 whatever the verdict, 2 on usage errors.

``kiosk trust`` shows what the kiosk trusts and how old its trust list is (``--refresh`` fetches
it first); it exits 1 when the list is missing or out of date.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kiosk.codes.clock import ClockCheck
from kiosk.codes.hashing import CodeHasher
from kiosk.codes.router import FixedTrust, TrustSource, build_router
from kiosk.codes.trust import TrustError, TrustStore, certificate_file, issuer_directory
from kiosk.codes.trustlist import TrustListKeeper
from kiosk.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load
from kiosk.decision import Policy, code_reasons
from kiosk.errors import UsageError
from kiosk.results import Reason

EXIT_USAGE = 2
# Reasons that say what colour a genuine code is, not that anything is wrong with it.
_COLOUR_REASONS = {Reason.RED_CODE, Reason.YELLOW_CODE}


def _config(path: Path | None) -> Config:
    """The given config file, else the installed one if there is one, else the defaults."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return Config()
        path = DEFAULT_CONFIG_PATH
    try:
        return load(path)
    except ConfigError as exc:
        raise UsageError(f"config error in {exc.source}: " + "; ".join(exc.problems)) from None


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at: not an ISO 8601 time: {text!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _payload(text: str) -> str:
    if text != "-":
        return text
    # Bytes that are not UTF-8 are replaced, not an exception: the code is then simply malformed.
    binary = getattr(sys.stdin, "buffer", None)
    data = binary.read().decode("utf-8", "replace") if binary is not None else sys.stdin.read()
    # One code per line (a multi-part SMART Health Card has several); line ends are not part of it.
    lines = [line.rstrip("\r") for line in data.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise UsageError("no payload on standard input")
    return "\n".join(lines)


def _explicit_trust(certs: list[str], jwks: list[str]) -> TrustStore:
    try:
        signers = [certificate_file(Path(path)) for path in certs]
        issuers = []
        for binding in jwks:
            iss, sep, path = binding.partition("=")
            if not sep or not iss or not path:
                raise UsageError(f"--trust-jwks: expected ISSUER_URL=PATH, got {binding!r}")
            issuers.append(issuer_directory(iss, Path(path)))
    except TrustError as exc:
        raise UsageError(str(exc)) from None
    return TrustStore.build(signers, issuers)


def verify_payload(payload: str, config: Config, trust: TrustSource, at: datetime | None = None) -> dict[str, Any]:
    """The JSON line ``kiosk verify`` prints for one payload."""
    now = at or datetime.now(timezone.utc)
    router = build_router(
        config, CodeHasher(secrets.token_bytes(32)), trust=trust,
        # With an explicit time the question is "was it valid then?": the clock is beside the point.
        clock_check=ClockCheck("off") if at is not None else None,
        utcnow=lambda: now,
    )
    try:
        result = router.verify(payload)
    finally:
        router.close()
    reasons = code_reasons(result, Policy.from_config(config), now)
    return {
        "scheme": result.scheme,
        "valid": result.verified and result.colour != "unknown" and set(reasons) <= _COLOUR_REASONS,
        "colour": result.colour,
        "reasons": [str(reason) for reason in reasons],
        "issuer": result.issuer,
        "expires": result.expires.isoformat().replace("+00:00", "Z") if result.expires else None,
        "problem": result.problem,
    }


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        at = _moment(args.at) if args.at else None
        config = _config(args.config)
        if args.trust_cert or args.trust_jwks:
            trust: TrustSource = FixedTrust(_explicit_trust(args.trust_cert, args.trust_jwks))
        else:
            trust = TrustListKeeper(config.trust, config.trust_list_path)
        # A staff check lets nobody in: the replay guard neither consults nor keeps anything.
        config = config.model_copy(update={"codes": config.codes.model_copy(update={"replay_window_s": 0.0})})
        line = verify_payload(_payload(args.payload), config, trust, at)
    except UsageError as exc:
        print(f"kiosk verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


def add_verify_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("payload", metavar="PAYLOAD", help='the scanned text (HC1:..., shc:/..., a platform code), or "-" for stdin')
    sub.add_argument("--at", metavar="ISO8601", help="judge validity at this time (UTC unless it says otherwise); "
                     "the clock check is then skipped")
    sub.add_argument("--trust-cert", action="append", default=[], metavar="PATH",
                     help="trust this EU DCC signer certificate (DER or PEM); repeatable")
    sub.add_argument("--trust-jwks", action="append", default=[], metavar="ISSUER_URL=PATH",
                     help="trust this SMART Health Card issuer's key set (a crl/ folder beside it holds its "
                          "revocation lists); repeatable. Without --trust-* the kiosk's trust list is used")
    sub.add_argument("--config", type=Path, help=f"config file (default {DEFAULT_CONFIG_PATH} if present)")


def _age_text(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours:.1f} h ago" if hours < 48 else f"{hours / 24:.1f} days ago"


def trust_report(keeper: TrustListKeeper, clock: ClockCheck, now: datetime) -> tuple[dict[str, Any], str]:
    """``kiosk trust``'s JSON and its readable table."""
    status = keeper.status(now).to_dict()
    status["stale_reason"] = keeper.stale_problem(now)
    status["clock"] = clock.describe()
    lines = [
        f"trust list      {'not configured (trust.operator_key is empty)' if not status['configured'] else keeper.source}",
        f"issued          {status['issued_at'] or '-'}  ({_age_text(status['age_h'])})",
        f"state           {'OUT OF DATE: ' + status['stale_reason'] if status['stale'] else 'current'}",
        f"last checked    {status['checked_at'] or '-'}",
        f"clock           {status['clock']}",
    ]
    if status.get("error"):
        lines.append(f"last error      {status['error']}")
    store = keeper.store
    if store is not None:
        for anchor, index in store.anchors.items():  # each scheme's signers or issuers
            lines.extend(anchor.report(anchor.summary(index)))
    return status, "\n".join(lines)


def cmd_trust(args: argparse.Namespace) -> int:
    try:
        config = _config(args.config)
        keeper = TrustListKeeper(config.trust, config.trust_list_path)
    except (UsageError, TrustError) as exc:
        print(f"kiosk trust: {exc}", file=sys.stderr)
        return EXIT_USAGE
    refresh_failed = False
    if args.refresh:
        try:
            print(f"trust list {keeper.refresh()}", file=sys.stderr)
        except TrustError as exc:
            print(f"kiosk trust: refresh failed: {exc}", file=sys.stderr)
            refresh_failed = True
    status, table = trust_report(keeper, ClockCheck(config.codes.clock_check), datetime.now(timezone.utc))
    print(json.dumps(status, ensure_ascii=False) if args.json else table)
    keeper.close()
    return 1 if status["stale"] or refresh_failed else 0


def add_trust_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--refresh", action="store_true", help="fetch the trust list from trust.url first")
    sub.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    sub.add_argument("--config", type=Path, help=f"config file (default {DEFAULT_CONFIG_PATH} if present)")
