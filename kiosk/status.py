"""`kiosk status`: is the event log getting upstream? Read from the log file by a second process.

The upload thread runs inside the daemon and saves its state in the event log (``sync_status``),
so this command opens the file read-only and needs no connection to the daemon. It shows the
backlog and its oldest event's age, the last successful upload, the last error, and the clock's
state; never a token, and no control characters from the collector's text. It also sums up the
last hour's temperatures (`kiosk.temperature_summary`).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from kiosk import __version__
from kiosk.codes.clock import ClockCheck
from kiosk.codes.trustlist import TrustListKeeper
from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.printable import printable_values
from kiosk.sync.store import EventStore
from kiosk.temperature_summary import WINDOW_S, summarise


def _parse(moment: str | None) -> datetime | None:
    if not moment:
        return None
    try:
        return datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None


def _age_s(moment: str | None, now: datetime) -> float | None:
    parsed = _parse(moment)
    return round((now - parsed).total_seconds(), 1) if parsed else None


def _safe_url(url: str) -> str:
    """The URL without any user:password part (a token there must not be shown)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def collect(config: Config, now: datetime | None = None) -> dict[str, Any]:
    """Everything `kiosk status` shows, as plain values (ages in seconds, times UTC ISO)."""
    now = now or datetime.now(timezone.utc)
    path = config.store_path
    with EventStore(path, readonly=True) as store:
        counts = store.counts()
        saved = store.load_status()
        size = store.size_bytes()
        last_hour = store.events(since=now - timedelta(seconds=WINDOW_S))
    temperatures = summarise(last_hour, config.thermometer.site)
    try:
        free_mb: float | None = round(shutil.disk_usage(path.parent).free / 1e6)
    except OSError:
        free_mb = None
    daemon_age = _age_s(saved.get("kiosk_updated_at"), now)
    # Text from the collector (last_error) and from devices comes back escaped: it cannot move the
    # cursor, colour the screen, forge a line or reverse a word on the maintainer's terminal.
    return printable_values({
        "kiosk_id": config.kiosk.id,
        "version": __version__,
        # The daemon saves a heartbeat at least every 30 s: older means it is not running.
        "daemon_running": daemon_age is not None and daemon_age < 90,
        "state": saved.get("kiosk_state"),
        "state_since": saved.get("kiosk_state_since"),
        "fault": saved.get("kiosk_fault"),
        "thermometer": saved.get("thermometer"),
        "camera": saved.get("camera"),
        "camera_fps": saved.get("camera_fps"),
        "lights": saved.get("lights"),
        "sound": saved.get("sound"),
        "last_decisions": saved.get("last_decisions", []),
        "temperatures": temperatures.to_dict(),
        "config_error": saved.get("config_error"),
        "status_age_s": daemon_age,
        "trust_list": _trust(config, now),
        "clock_check": ClockCheck(config.codes.clock_check).describe(),
        "upstream": _safe_url(config.upstream.url),
        "upload_state": saved.get("state", "idle"),
        "backlog": counts["queued"],
        "urgent": counts["urgent"],
        "parked": counts["parked"],
        "oldest_unsent": counts["oldest_unsent"],
        "oldest_unsent_age_s": _age_s(counts["oldest_unsent"], now),
        "last_upload": saved.get("last_success_at"),
        "last_upload_age_s": _age_s(saved.get("last_success_at"), now),
        "last_error": saved.get("last_error"),
        "last_error_at": saved.get("last_error_at"),
        "next_attempt_at": saved.get("next_attempt_at") if saved.get("state") in ("retrying", "stopped") else None,
        "clock_synced": saved.get("clock_synced"),
        "clock_synced_at": saved.get("clock_synced_at"),
        "event_log": str(path),
        "events": counts["total"],
        "db_mb": round(size / 1e6, 1),
        "free_disk_mb": free_mb,
        "min_free_mb": config.upstream.min_free_mb,
    })  # type: ignore[return-value]


def _trust(config: Config, now: datetime) -> dict[str, Any] | str:
    try:
        return TrustListKeeper(config.trust, config.trust_list_path).status(now).to_dict()
    except KioskError as exc:
        return str(exc)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0:
        return "in the future: is the clock right?"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min ago"
    hours = minutes / 60
    return f"{hours:.0f} h ago" if hours < 48 else f"{hours / 24:.0f} days ago"


def render(info: dict[str, Any]) -> str:
    """The status as an aligned table for a person at an SSH prompt."""
    state = info["upload_state"]
    upload = {"ok": "working", "idle": "nothing sent yet", "retrying": "RETRYING", "stopped": "STOPPED"}.get(state, state)
    if info["next_attempt_at"]:
        upload += f" (next attempt {info['next_attempt_at']})"
    backlog = f"{info['backlog']} event(s) waiting"
    if info["urgent"]:
        backlog += f", {info['urgent']} of them urgent"
    if info["oldest_unsent"]:
        backlog += f"; oldest from {info['oldest_unsent']} ({_ago(info['oldest_unsent_age_s'])})"
    parked = f"{info['parked']}" + (" (refused by the collector; see docs/upload-protocol.md)" if info["parked"] else "")
    last_upload = f"{info['last_upload']} ({_ago(info['last_upload_age_s'])})" if info["last_upload"] else "never"
    last_error = f"{info['last_error']} (at {info['last_error_at']})" if info["last_error"] else "none"
    clock = {True: "synchronised", False: "NOT synchronised", None: "unknown"}[info["clock_synced"]]
    if info["clock_synced_at"]:
        clock += f" (since {info['clock_synced_at']})"
    disk = f"{info['event_log']}: {info['events']} event(s), {info['db_mb']} MB"
    if info["free_disk_mb"] is not None:
        disk += f"; {info['free_disk_mb']} MB free (floor {info['min_free_mb']} MB)"
    if info["daemon_running"]:
        state = f"{info['state']} since {info['state_since']}"
        if info["fault"]:
            state += f": {info['fault']}"
    else:
        state = "NOT RUNNING (no status from the daemon" + (
            f" for {_ago(info['status_age_s'])})" if info["status_age_s"] is not None else " yet)")
    decisions = "; ".join(
        f"{d['time']} {d['decision']}" + (f" ({', '.join(d['reasons'])})" if d["reasons"] else "")
        for d in info["last_decisions"]) or "none yet"
    trust = info["trust_list"]
    if isinstance(trust, dict):
        trust = ", ".join(f"{key} {value}" for key, value in trust.items() if value not in (None, "", [], {}))
    rows = [
        ("kiosk", f"{info['kiosk_id']} (version {info['version']})"),
        ("state", state),
        ("thermometer", info["thermometer"] or "unknown"),
        ("camera", f"{info['camera'] or 'unknown'}, {info['camera_fps'] or 0} frames/s"),
        ("lights", info["lights"] or "unknown"),
        ("sound", info["sound"] or "unknown"),
        ("last decisions", decisions),
        ("temperatures", f"last hour: {info['temperatures']['text']}"),
        *(("ADVICE", advice) for advice in info["temperatures"]["advice"].values()),
        ("config", f"last edit REFUSED: {info['config_error']}" if info["config_error"] else "ok"),
        ("trust list", trust),
        ("clock check", info["clock_check"]),
        ("upstream", info["upstream"]),
        ("upload", upload),
        ("backlog", backlog),
        ("parked", parked),
        ("last upload", last_upload),
        ("last error", last_error),
        ("clock", clock),
        ("event log", disk),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run_status(config: Config, as_json: bool, out: IO[str], now: datetime | None = None) -> int:
    """Print the status (a table, or one JSON object); exit status 0."""
    info = collect(config, now)
    out.write((json.dumps(info, ensure_ascii=False) if as_json else render(info)) + "\n")
    return 0
