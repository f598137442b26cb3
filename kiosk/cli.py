"""The `kiosk` command: the daemon, the demo, and the staff's tools over SSH."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from kiosk import __version__
from kiosk.config import DEFAULT_CONFIG_PATH, ConfigError, load, load_overrides
from kiosk.datadir import make_private_dir
from kiosk.errors import KioskError, SettingError
from kiosk.printable import printable

EXIT_USAGE = 2
EXIT_RESTART = 75  # the config changed in a way only a restart applies (EX_TEMPFAIL)

EPILOG = """examples:
  kiosk check-config /etc/kiosk/config.toml
  kiosk calibrate --reference 37.0
  kiosk demo --headless --visitors 20 --screenshots /tmp/screens
  kiosk scan photo1.png photo2.jpg
  kiosk verify --at 2021-06-01T12:00:00Z --trust-cert signer.pem 'HC1:6BFOXN...'
  kiosk upstream --port 8470
  kiosk status --json
  kiosk parked --requeue
  kiosk run --config /etc/kiosk/config.toml
"""


class PrintableFormatter(logging.Formatter):
    """One log record, one line: control characters in the message (a collector's error text, say)
    are escaped, so no server can forge a journal line or send escapes to a terminal. A traceback
    still follows on its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def _config_or_exit(path: Path):
    try:
        return load(path)
    except ConfigError as exc:
        print(f"kiosk: config error in {exc.source}: " + "; ".join(exc.problems), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _make_data_dir(path: Path) -> None:
    """The data folder, made the kiosk's alone (0700) if it has to be created, before any part writes there."""
    try:
        make_private_dir(path)
    except OSError as exc:
        raise SettingError(f"kiosk.data_dir: cannot create {path}: {exc.strerror or exc}") from None


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
    from kiosk.reload import ConfigWatcher
    from kiosk.runtime import StatusReporter

    _make_data_dir(config.kiosk.data_dir)
    parts = build_parts(config)
    kiosk = Kiosk(config, parts)
    watcher = ConfigWatcher(args.config, config, kiosk.request_config)
    watcher.install_sighup()  # systemctl reload kiosk
    parts.extra_threads.append(watcher.run)
    kiosk.config_watcher = watcher
    from kiosk.sound.voice import attach_sound

    player = attach_sound(kiosk)  # tones and spoken prompts, on the player's own thread
    # For `kiosk status`, which runs in another process and can only read what is saved.
    parts.extra_threads.append(StatusReporter(kiosk, sound=lambda: player.describe(kiosk.config.sound)).run)
    # systemctl stop: a clean stop, so the gate relay is switched off and the event log closed.
    signal.signal(signal.SIGTERM, lambda *_: kiosk.stop())
    kiosk.run()
    if kiosk.restart_for:
        # systemd (Restart=always) starts the kiosk again with the new settings.
        print(f"kiosk: restarting to apply {', '.join(kiosk.restart_for)}", file=sys.stderr)
        return EXIT_RESTART
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk.sim.demo import run_demo
    from kiosk.sim.scenario import SCRIPT

    try:
        if args.config is not None:
            load_overrides(args.config)  # a bad file stops the demo before anything starts
        summary = run_demo(
            visitors=len(SCRIPT) if args.visitors is None else args.visitors,
            headless=args.headless,
            screenshots=args.screenshots,
            config_file=args.config,
            seed=args.seed,
            sound=args.sound,
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


def cmd_verify(args: argparse.Namespace) -> int:
    from kiosk.codes.commands import cmd_verify as verify

    return verify(args)


def cmd_trust(args: argparse.Namespace) -> int:
    from kiosk.codes.commands import cmd_trust as trust

    return trust(args)


def cmd_upstream(args: argparse.Namespace) -> int:
    from kiosk.sim.upstream import serve

    serve(args.port, args.data_dir, tls_cert=args.tls_cert, tls_key=args.tls_key)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from kiosk.status import run_status

    return run_status(_config_or_exit(args.config), args.json, sys.stdout)


def cmd_selftest(args: argparse.Namespace) -> int:
    from kiosk.selftest import as_dicts, as_table, run_selftest

    checks = run_selftest(_config_or_exit(args.config))
    print(json.dumps(as_dicts(checks), ensure_ascii=False) if args.json else as_table(checks))
    return 0 if all(check.ok for check in checks) else 1


def cmd_export(args: argparse.Namespace) -> int:
    from kiosk.export import export, parse_moment

    config = _config_or_exit(args.config)
    since = parse_moment(args.since) if args.since else None
    until = parse_moment(args.until) if args.until else None
    count = export(config.store_path, sys.stdout, args.format, since, until)
    print(f"{count} event(s) exported", file=sys.stderr)
    return 0


def cmd_sound(args: argparse.Namespace) -> int:
    from kiosk.sound.commands import run_render

    return run_render(_config_or_exit(args.config), args.check)


def cmd_parked(args: argparse.Namespace) -> int:
    from kiosk.parked import run_parked

    return run_parked(_config_or_exit(args.config), args.requeue, sys.stdout)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from kiosk.calibration import run

    return run(args)


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
                  "kiosk demo --headless --visitors 20 --screenshots /tmp/screens")
    sub.add_argument("--visitors", type=int,
                     help="how many visitors (default: the scripted queue, one of each case; more are drawn at random)")
    sub.add_argument("--headless", action="store_true", help="no window (SDL dummy driver)")
    sub.add_argument("--screenshots", type=Path, help="save one PNG per screen state into this folder")
    sub.add_argument("--config", type=Path, help="a config file whose settings override the demo's (e.g. upstream.url)")
    sub.add_argument("--seed", type=int, default=7, help="random seed for the simulated visitors")
    sub.add_argument("--sound", type=Path, metavar="FILE",
                     help="write what the kiosk played (tones and spoken prompts) to this WAV file")

    sub = command("check-config", cmd_check_config, "validate a config file: exit 0 if valid, 2 with every problem",
                  "kiosk check-config /etc/kiosk/config.toml")
    sub.add_argument("path", type=Path, nargs="?", default=DEFAULT_CONFIG_PATH)

    sub = command("calibrate", cmd_calibrate,
                  "set the thermometer's offset against a reference source (or read/write its emissivity)",
                  "kiosk calibrate --reference 37.0 --config /etc/kiosk/config.toml")
    from kiosk.calibration import add_arguments as add_calibrate_arguments

    add_calibrate_arguments(sub, DEFAULT_CONFIG_PATH)

    sub = command("sound", cmd_sound, "render the spoken prompts with espeak-ng (setup.sh runs it; again after "
                  "changing sound.zh_voice or sound.en_voice)",
                  "sudo -u kiosk /opt/kiosk/venv/bin/kiosk sound render --config /etc/kiosk/config.toml")
    from kiosk.sound.commands import add_arguments as add_sound_arguments

    add_sound_arguments(sub, DEFAULT_CONFIG_PATH)

    sub = command("scan", cmd_scan, "decode the QR codes in image files; one JSON line per image",
                  "kiosk scan photo1.png photo2.jpg")
    sub.add_argument("images", nargs="+")
    sub.add_argument("--decoder", choices=["zxing", "pyzbar"], default="zxing")

    sub = command("selftest", cmd_selftest, "test each part in turn (lights, buzzer, relay, thermometer, camera, "
                  "platform, collector); exit 1 if any fails. Stop the service first.",
                  "sudo systemctl stop kiosk && sudo -u kiosk sh -c 'cd /var/lib/kiosk && exec kiosk selftest'; sudo systemctl start kiosk")
    sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"config file (default {DEFAULT_CONFIG_PATH})")
    sub.add_argument("--json", action="store_true", help="one JSON list instead of the table")

    sub = command("parked", cmd_parked, "list the events the collector refused (with its reason); "
                  "--requeue queues them for upload again once the collector is fixed",
                  "sudo -u kiosk kiosk parked --requeue --config /etc/kiosk/config.toml")
    sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"config file (default {DEFAULT_CONFIG_PATH})")
    sub.add_argument("--requeue", action="store_true", help="put every parked event back in the upload queue")

    sub = command("export", cmd_export, "write the event log (or a time range of it) as CSV or JSON lines to stdout",
                  "kiosk export --since 2026-11-26 --until 2026-11-27 --format csv > events.csv")
    sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"config file (default {DEFAULT_CONFIG_PATH})")
    sub.add_argument("--since", help="ISO 8601 date or time, inclusive (UTC unless it says otherwise)")
    sub.add_argument("--until", help="ISO 8601 date or time, exclusive")
    sub.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")

    from kiosk.codes.commands import add_trust_arguments, add_verify_arguments

    sub = command("verify", cmd_verify, "check one health code as the kiosk would; one JSON line, exit 0 whatever the verdict",
                  "kiosk verify --at 2021-06-01T12:00:00Z --trust-cert signer.pem 'HC1:6BFOXN...'")
    add_verify_arguments(sub)

    sub = command("trust", cmd_trust, "show what the kiosk trusts for offline certificates and how old the list is",
                  "kiosk trust --refresh --config /etc/kiosk/config.toml")
    add_trust_arguments(sub)

    sub = command("upstream", cmd_upstream, "run the reference platform and log collector on loopback",
                  "kiosk upstream --port 8470 --data-dir /tmp/upstream")
    sub.add_argument("--port", type=int, default=8470)
    sub.add_argument("--data-dir", type=Path, default=Path("upstream-data"))
    sub.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate (and --tls-key)")
    sub.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")

    sub = command("status", cmd_status, "show the upload backlog, the oldest unsent event, the last upload "
                  "and the last error (read from the event log; the daemon may be running)",
                  "kiosk status --config /etc/kiosk/config.toml --json")
    sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"config file (default {DEFAULT_CONFIG_PATH})")
    sub.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.handler(args)
    except KioskError as exc:
        print(printable(f"kiosk: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
