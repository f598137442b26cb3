"""Config edits over SSH: a good edit is picked up, a bad one is refused with its key path and the
kiosk keeps the last good config."""

import os
import re
import signal
import threading
import time

import pytest

from kiosk.config import SHIPPED_CONFIG, load, merged
from kiosk.reload import ConfigWatcher
from scene import Scene, run_scene


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(SHIPPED_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def edit(path, old, new):
    """Replace the setting line that starts with `old` (comments mention some values too)."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile("^" + re.escape(old), re.M)
    assert pattern.search(text)
    path.write_text(pattern.sub(lambda _: new, text, count=1), encoding="utf-8")
    # a new mtime even on coarse file systems
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))


def watcher_for(path):
    applied = []
    watcher = ConfigWatcher(path, load(path), applied.append)
    return watcher, applied


def test_a_good_edit_is_applied(config_file):
    watcher, applied = watcher_for(config_file)
    assert not watcher.check()  # nothing changed yet
    edit(config_file, "fever_c = 37.3", "fever_c = 37.5")
    assert watcher.check()
    assert applied[-1].thermometer.fever_c == 37.5 and watcher.error is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("fever_c = 37.3", "fever_c = 37.3 oops", "not valid TOML"),
        ("fever_c = 37.3", 'fever_c = "high"', "thermometer.fever_c"),
        ("fever_c = 37.3", "fever_c = 73", "thermometer.fever_c: Input should be less than or equal to 42"),
        ("fever_c = 37.3", "fever_c = 37.3\nfevr_c = 37.0", "thermometer.fevr_c: unknown key"),
    ],
    ids=["syntax", "type", "range", "unknown-key"],
)
def test_a_bad_edit_is_refused_and_the_last_good_one_kept(config_file, old, new, expected, caplog):
    watcher, applied = watcher_for(config_file)
    edit(config_file, old, new)
    assert not watcher.check()
    assert applied == []
    assert expected in watcher.error
    assert expected in caplog.text and "last good" in caplog.text
    # fixing the file clears the error and applies it
    edit(config_file, new, "fever_c = 37.4")
    assert watcher.check() and watcher.error is None and applied[-1].thermometer.fever_c == 37.4


def test_a_file_replaced_by_rename_is_noticed(config_file, tmp_path):
    watcher, applied = watcher_for(config_file)
    replacement = tmp_path / "new.toml"
    replacement.write_text(config_file.read_text().replace("verdict_s = 3.0", "verdict_s = 5.0"))
    os.replace(replacement, config_file)
    assert watcher.check() and applied[-1].kiosk.verdict_s == 5.0


def test_sighup_forces_a_check(config_file):
    watcher, applied = watcher_for(config_file)
    watcher.install_sighup()
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    watcher._poll_s = 60  # only the signal can wake it in time
    thread.start()
    try:
        edit(config_file, "verdict_s = 3.0", "verdict_s = 4.0")
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not applied and time.monotonic() < deadline:
            time.sleep(0.02)
        assert applied and applied[-1].kiosk.verdict_s == 4.0
    finally:
        stop.set()
        watcher.request()
        thread.join(timeout=5)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


# --- in a running kiosk --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.e2e
def test_running_kiosk_applies_a_good_edit_and_keeps_serving_through_a_bad_one(tmp_path):
    def scene(s: Scene) -> None:
        kiosk = s.kiosk
        path = tmp_path / "config.toml"
        path.write_text("# the maintainer's file\n[thermometer]\nfever_c = 37.3\n")
        watcher = ConfigWatcher(path, kiosk.config, kiosk.request_config)
        lowered = merged(kiosk.config, {"thermometer": {"fever_c": 36.0}, "lights": {"red_pin": 5}})
        # a good edit: a lower threshold and another red pin, applied without a restart
        kiosk.request_config(lowered)
        s.wait(lambda: kiosk.policy.fever_c == 36.0, "the new threshold")
        assert not kiosk.stopped and kiosk.parts.lights.lights.red.pin.info.name.endswith("5")
        decided = s.visit(s.code("green"), skin_c=36.2)
        assert [str(r) for r in decided.verdict.reasons] == ["fever"]
        assert s.pin(5) and not s.pin(27)  # the new red pin lights, the old one stays dark
        # a bad edit on disk is refused; the kiosk keeps the last good config and keeps serving
        path.write_text("[thermometer]\nfever_c = 73\n")
        assert not watcher.check(forced=True)
        assert "thermometer.fever_c" in watcher.error
        assert kiosk.policy.fever_c == 36.0
        # still serving, still on the last good threshold (37.3 would have passed this visitor)
        assert [str(r) for r in s.visit(s.code("green", 1), skin_c=36.2).verdict.reasons] == ["fever"]

    run_scene(tmp_path, scene)


@pytest.mark.slow
@pytest.mark.e2e
def test_a_camera_change_restarts_the_kiosk(tmp_path):
    def scene(s: Scene) -> None:
        s.kiosk.request_config(merged(s.kiosk.config, {"camera": {"fps": 10.0}}))
        s.wait(lambda: s.kiosk.stopped, "the kiosk to stop for a restart")
        assert s.kiosk.restart_for == ("camera.fps",)

    run_scene(tmp_path, scene)
