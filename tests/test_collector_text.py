"""A collector's error text reaches the journal and `kiosk status` escaped: it cannot clear the
maintainer's screen, colour a fake "ok", forge a log line or reverse a word."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kiosk.cli import PrintableFormatter
from kiosk.config import load
from kiosk.printable import printable
from kiosk.status import collect, render
from kiosk.sync.client import UpstreamClient
from kiosk.sync.store import EventStore
from kiosk.sync.uploader import Uploader
from sync_helpers import FixedClock, routine

HOSTILE = ("\x1b[2J\x1b[32mall uploads ok\x1b[0m\nINFO kiosk.sync.uploader: upload working again"
           "\r\x07\x85\u2028 \u202eexe.txt\u200b\x9b31m")
RAW = ("\x1b", "\x07", "\x85", "\x9b", "\u2028", "\u202e", "\u200b", "\r")


class Hostile(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"error": HOSTILE}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_printable_escapes_controls_and_keeps_ordinary_text():
    assert printable("通过 PASS 37.2 °C, ünïcode") == "通过 PASS 37.2 °C, ünïcode"
    escaped = printable(HOSTILE)
    assert not any(char in escaped for char in RAW) and "\n" not in escaped
    assert "\\x1b[2J" in escaped and "\\n" in escaped and "\\u202e" in escaped and "\\x85" in escaped


@pytest.mark.slow
@pytest.mark.e2e
def test_the_collectors_error_text_is_escaped_in_the_log_and_in_status(tmp_path: Path, collector: str, caplog):
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n[upstream]\nurl = "{collector}"\n',
                           encoding="utf-8")
    config = load(config_path)
    with EventStore(config.store_path) as store:
        uploader = Uploader(store, UpstreamClient(config.upstream), config.upstream, clock=FixedClock())
        store.append(routine(1))
        with caplog.at_level(logging.WARNING):
            uploader.drain_once()

    # the daemon's log lines, as `kiosk run` writes them to the journal
    formatter = PrintableFormatter("%(levelname)s %(name)s: %(message)s")
    lines = [formatter.format(record) for record in caplog.records if "upload failed" in record.getMessage()]
    assert lines
    for line in lines:
        assert "\n" not in line and not any(char in line for char in RAW)
        assert "all uploads ok" in line and "\\x1b[2J" in line

    table = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(config_path)],
                           capture_output=True, text=True, timeout=60)
    as_json = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(config_path), "--json"],
                             capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    for output in (table.stdout, as_json.stdout, render(collect(config))):
        assert not any(char in output for char in RAW)
        assert "all uploads ok" in output
    error_lines = [line for line in table.stdout.splitlines() if "all uploads ok" in line]
    assert len(error_lines) == 1 and error_lines[0].startswith("last error")
    assert "upload working again" in error_lines[0]  # the forged line stays inside the real one
    assert "INFO" not in "".join(line for line in table.stdout.splitlines() if not line.startswith("last error"))
    shown = json.loads(as_json.stdout)["last_error"]
    assert "\n" not in shown and "\\x1b[2J" in shown


def test_a_traceback_still_follows_its_log_line(caplog):
    formatter = PrintableFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("kiosk.x", logging.ERROR, __file__, 1, "failed: %s", ("a\nb",), sys.exc_info())
    text = formatter.format(record)
    assert text.splitlines()[0] == "ERROR kiosk.x: failed: a\\nb"
    assert "Traceback" in text and "ValueError: boom" in text
