"""Code verification benchmark: time per verification, per scheme, through the kiosk's router.

    .venv/bin/python bench/verify.py [--rounds 2000]

Times ``CodeRouter.verify`` (the whole path the kiosk runs: routing, decoding, signature, time
and revocation checks, the replay lookup in SQLite) for EU DCCs signed with ES256 and PS256, SMART
Health Cards (a demo card, and the specification's 3-part example 02 when the public corpora are
beside the project), and a platform lookup against the reference upstream on loopback. Reports the
median and p95 in ms; the target is 1 ms or less per offline verification. Prints a table, then one
JSON line with every number.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from kiosk.codes.clock import ClockCheck  # noqa: E402
from kiosk.codes.hashing import CodeHasher  # noqa: E402
from kiosk.codes.router import FixedTrust, build_router  # noqa: E402
from kiosk.codes.trust import TrustStore, issuer_directory  # noqa: E402
from kiosk.config import Config, merged  # noqa: E402
from kiosk.sim.credentials import DccIssuer, ShcIssuerSim  # noqa: E402
from kiosk.sim.population import Population  # noqa: E402
from kiosk.sim.upstream import ReferenceUpstream  # noqa: E402

TARGET_MS = 1.0
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "shc"
EXAMPLE_ISSUER = "https://spec.smarthealth.cards/examples/issuer"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def time_it(verify, payload: str, rounds: int) -> tuple[float, float]:
    for _ in range(min(50, rounds)):  # warm caches and the connection
        verify(payload)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        verify(payload)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(samples), percentile(samples, 0.95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="verifications per scheme (default 2000)")
    args = parser.parse_args()

    now = datetime.now(timezone.utc)
    issued, expires = now - timedelta(days=2), now + timedelta(days=60)
    es256, ps256 = DccIssuer(), DccIssuer(key=rsa.generate_private_key(public_exponent=65537, key_size=2048), country="YY")
    shc = ShcIssuerSim()
    issuers = [shc.issuer()]
    cases: dict[str, str] = {
        "dcc_es256": es256.issue(issued, expires),
        "dcc_ps256": ps256.issue(issued, expires),
        "shc": shc.issue(issued, expires),
    }
    at = {name: now for name in cases}
    if CORPUS.is_dir():
        issuers.append(issuer_directory(EXAMPLE_ISSUER, CORPUS / "issuer/.well-known/jwks.json"))
        parts = sorted(CORPUS.glob("example-02-f-qr-code-numeric-value-*.txt"))
        cases["shc_example_02_3_parts"] = "\n".join(p.read_text().strip() for p in parts)
        at["shc_example_02_3_parts"] = datetime(2023, 7, 1, tzinfo=timezone.utc)
    store = TrustStore.build([es256.signer(), ps256.signer()], issuers)

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-verify-") as tmp, \
            ReferenceUpstream(data_dir=Path(tmp) / "upstream", population=Population()) as upstream:
        config = merged(Config(), {"kiosk": {"data_dir": str(Path(tmp) / "kiosk")},
                                   "platform": {"url": f"{upstream.url}/platform"}}, "bench")
        hasher = CodeHasher(b"benchmark-install-secret-0123456789")
        for name, payload in cases.items():
            moment = at[name]
            router = build_router(config, hasher, trust=FixedTrust(store), clock_check=ClockCheck("off"),
                                  utcnow=lambda moment=moment: moment)
            result = router.verify(payload)
            assert result.reasons == () and result.colour == "green", (name, result)
            median, p95 = time_it(router.verify, payload, args.rounds)
            results[name] = {"median_ms": round(median, 3), "p95_ms": round(p95, 3), "rounds": args.rounds}
            router.close()
        router = build_router(config, hasher, trust=FixedTrust(store), clock_check=ClockCheck("off"))
        code = upstream.population.code_for("p01")
        assert router.verify(code).colour == "green"
        rounds = max(50, args.rounds // 4)
        median, p95 = time_it(router.verify, code, rounds)
        results["platform_loopback"] = {"median_ms": round(median, 3), "p95_ms": round(p95, 3), "rounds": rounds}
        router.close()

    offline = {name: r for name, r in results.items() if name != "platform_loopback"}
    print(f"{'scheme':<26}{'median ms':>10}{'p95 ms':>10}")
    for name, r in results.items():
        print(f"{name:<26}{r['median_ms']:>10.3f}{r['p95_ms']:>10.3f}")
    summary = {
        "benchmark": "verify",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "schemes": results,
        "offline_target_ms": TARGET_MS,
        "offline_within_target": all(r["median_ms"] <= TARGET_MS for r in offline.values()),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
