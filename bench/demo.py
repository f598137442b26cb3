"""Decision latency and memory of the whole kiosk, from a headless demo run.

Decision latency runs from the first moment a visitor's readable code and settled temperature
are both there to the verdict drawn on screen; it includes the loopback platform's answer and the
event commit, and leaves out the deliberate sensor settling. Peak RSS is the demo process's
(kiosk and reference upstream together).

    .venv/bin/python bench/demo.py [--visitors 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=40)
    args = parser.parse_args()
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "demo", "--headless", "--visitors", str(args.visitors)],
        capture_output=True, text=True, env=env, check=True,
    )
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    result = {
        "visitors": summary["visitors"],
        "as_expected": summary["as_expected"],
        "decision_latency_p50_ms": summary["p50_ms"],
        "decision_latency_p95_ms": summary["p95_ms"],
        "peak_rss_mb": summary["peak_rss_mb"],
        "seconds": summary["seconds"],
        "targets": {"decision_latency_p95_ms": 50, "peak_rss_mb": 150},
    }
    print(f"{result['visitors']} visitors in {result['seconds']} s; "
          f"decision latency p50 {result['decision_latency_p50_ms']} ms, p95 {result['decision_latency_p95_ms']} ms; "
          f"peak RSS {result['peak_rss_mb']} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
