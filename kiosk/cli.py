"""The `kiosk` command: the daemon, the demo, and the staff's tools over SSH."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from kiosk import __version__
from kiosk.config import DEFAULT_CONFIG_PATH, ConfigError, load
from kiosk.errors import KioskError

EXIT_USAGE = 2

EPILOG = """examples:
  kiosk check-config /etc/kiosk/config.toml
  kiosk demo --headless --visitors 10 --screenshots /tmp/screens
  kiosk scan photo1.png photo2.jpg
  kiosk upstream --port 8470
  kiosk run --config /etc/kiosk/config.toml
"""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _config_or_exit(path: Path):
    try:
        return load(path)
    except ConfigError as exc:
        print(f"kiosk: config error in {exc.source}: " + "; ".join(exc.problems), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        load(args.path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.path}: ok")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _config_or_exit(args.config)
    from kiosk.app import Kiosk
    from kiosk.parts import build_parts

    parts = build_parts(config)
    kiosk = Kiosk(config, parts)
    kiosk.run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk.sim.demo import run_demo

    try:
        summary = run_demo(
            visitors=args.visitors,
            headless=args.headless,
            screenshots=args.screenshots,
            config_file=args.config,
            seed=args.seed,
        )
    except ConfigError as exc:
        print(f"kiosk: config error in {exc.source}: " + "; ".join(exc.problems), file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(summary, ensure_ascii=False))
    # The demo's script did not play out (the summary's "problem" says why).
    return 1 if "problem" in summary else 0


def cmd_scan(args: argparse.Namespace) -> int:
    from kiosk.sensors.scanner import scan_files

    for line in scan_files(args.images, args.decoder):
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


def cmd_upstream(args: argparse.Namespace) -> int:
    from kiosk.sim.upstream import serve

    serve(args.port, args.data_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Entrance checkpoint: IR temperature and a verified health code make PASS or REFUSE.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str, example: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    sub = command("run", cmd_run, "run the kiosk on its real hardware (the systemd service runs this)",
                  "kiosk run --config /etc/kiosk/config.toml")
    sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"config file (default {DEFAULT_CONFIG_PATH})")

    sub = command("demo", cmd_demo, "serve a scripted queue of visitors on simulated hardware with a loopback upstream",
                  "kiosk demo --headless --visitors 10 --screenshots /tmp/screens")
    sub.add_argument("--visitors", type=int, default=10, help="how many visitors (default 10; the first 10 cover every case)")
    sub.add_argument("--headless", action="store_true", help="no window (SDL dummy driver)")
    sub.add_argument("--screenshots", type=Path, help="save one PNG per screen state into this folder")
    sub.add_argument("--config", type=Path, help="a config file whose settings override the demo's (e.g. upstream.url)")
    sub.add_argument("--seed", type=int, default=7, help="random seed for the simulated visitors")

    sub = command("check-config", cmd_check_config, "validate a config file: exit 0 if valid, 2 with every problem",
                  "kiosk check-config /etc/kiosk/config.toml")
    sub.add_argument("path", type=Path, nargs="?", default=DEFAULT_CONFIG_PATH)

    sub = command("scan", cmd_scan, "decode the QR codes in image files; one JSON line per image",
                  "kiosk scan photo1.png photo2.jpg")
    sub.add_argument("images", nargs="+")
    sub.add_argument("--decoder", choices=["zxing", "pyzbar"], default="zxing")

    sub = command("upstream", cmd_upstream, "run the reference platform and log collector on loopback",
                  "kiosk upstream --port 8470 --data-dir /tmp/upstream")
    sub.add_argument("--port", type=int, default=8470)
    sub.add_argument("--data-dir", type=Path, default=Path("upstream-data"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.handler(args)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
