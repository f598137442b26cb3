"""The systemd units: `systemd-analyze verify` and `security`, their command lines, and the one
hardening setting that depends on the kiosk's own code (MemoryDenyWriteExecute).

`verify` needs the programs named in Exec*= to exist: the tests copy the units into a temporary
folder and point /opt/kiosk/venv/bin/kiosk at a stand-in executable there; every other line is
verified as shipped (drop-ins next to the unit, in kiosk.service.d/, are read too).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd/kiosk.service"
DESKTOP = REPO / "systemd/desktop.conf"
INSTALLED_KIOSK = "/opt/kiosk/venv/bin/kiosk"
KIOSK = Path(sys.executable).with_name("kiosk")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing (./setup.sh installs systemd as root)"
)


def settings(text: str) -> dict[str, list[str]]:
    """Every Key=value of a unit file, in order (keys such as DeviceAllow= repeat)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def stage(tmp_path: Path, unit_text: str, dropins: dict[str, str] | None = None) -> Path:
    """The unit in a temporary folder, its kiosk command pointing at an executable stand-in."""
    stand_in = tmp_path / "kiosk"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "kiosk.service"
    unit.write_text(unit_text.replace(INSTALLED_KIOSK, str(stand_in)))
    for name, text in (dropins or {}).items():
        (tmp_path / "kiosk.service.d").mkdir(exist_ok=True)
        (tmp_path / "kiosk.service.d" / name).write_text(text)
    return unit


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)


def test_the_service_verifies_without_a_single_warning(tmp_path: Path) -> None:
    result = verify(stage(tmp_path, UNIT.read_text()))
    # Unknown or misplaced keys are only warnings for systemd: any output counts as a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_service_with_the_desktop_drop_in_verifies(tmp_path: Path) -> None:
    result = verify(stage(tmp_path, UNIT.read_text(), {"desktop.conf": DESKTOP.read_text()}))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_catches_a_mistyped_setting(tmp_path: Path) -> None:
    """The check above can fail: a typo an editor might make is reported."""
    broken = UNIT.read_text().replace("WatchdogSec=30s", "WatchdogSecs=30s")
    result = verify(stage(tmp_path, broken))
    assert "Unknown key 'WatchdogSecs'" in result.stderr


def test_verify_catches_a_missing_program(tmp_path: Path) -> None:
    unit = stage(tmp_path, UNIT.read_text())
    (tmp_path / "kiosk").unlink()
    result = verify(unit)
    assert result.returncode != 0
    assert "is not executable" in result.stderr


def test_exposure_score_of_the_hardened_service(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(stage(tmp_path, UNIT.read_text()))],
        capture_output=True, text=True, timeout=60,
    )
    match = re.search(r"Overall exposure level for kiosk.service: ([\d.]+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    # 0 is a fully locked-down service, 10 an unprotected one; systemd calls up to 2.0 "OK".
    assert float(match.group(1)) <= 2.0, result.stdout
    assert match.group(2) == "OK"


def test_the_service_is_a_watchdogged_notify_service_with_only_its_devices() -> None:
    unit = settings(UNIT.read_text())
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["30s"] and unit["Restart"] == ["always"]
    assert unit["User"] == ["kiosk"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["DevicePolicy"] == ["closed"]
    assert "PrivateDevices" not in unit
    assert sorted(unit["DeviceAllow"]) == sorted([
        "/dev/i2c-1 rw", "char-gpiochip rw", "char-video4linux rw", "char-media rw", "char-dma_heap rw", "char-drm rw",
    ])
    assert unit["ReadWritePaths"] == ["/var/lib/kiosk"] and unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == [""]


def test_the_units_command_lines_work_with_the_shipped_config(tmp_path: Path) -> None:
    """ExecStartPre= and ExecStart= as written, run with this checkout's kiosk and config."""
    unit = settings(UNIT.read_text())

    def command(line: str) -> list[str]:
        argv = shlex.split(line.replace(INSTALLED_KIOSK, str(KIOSK)))
        return [str(REPO / "config.toml") if arg == "/etc/kiosk/config.toml" else arg for arg in argv]

    check = subprocess.run(command(unit["ExecStartPre"][0]), capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().endswith("config.toml: ok")
    # A bad config stops the start with the key named.
    bad = tmp_path / "bad.toml"
    bad.write_text("[thermometer]\nfever_c = 73\n")
    refused = subprocess.run(command(unit["ExecStartPre"][0]) [:-1] + [str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "thermometer.fever_c" in refused.stderr
    # ExecStart= parses (its --help proves the options exist without opening hardware).
    start = subprocess.run(command(unit["ExecStart"][0]) + ["--help"], capture_output=True, text=True, timeout=60)
    assert start.returncode == 0, start.stderr


def test_the_desktop_drop_in_draws_on_the_sessions_x_server() -> None:
    dropin = settings(DESKTOP.read_text())
    assert "SDL_VIDEODRIVER=x11" in dropin["Environment"] and "DISPLAY=:0" in dropin["Environment"]
    assert dropin["BindReadOnlyPaths"] == ["-/tmp/.X11-unix"]
    xhost = (REPO / "systemd/kiosk-xhost.desktop").read_text()
    assert "Exec=xhost +si:localuser:kiosk" in xhost.splitlines()
    assert "SDL_VIDEODRIVER=kmsdrm" in settings(UNIT.read_text())["Environment"]


MDWE_PROBE = textwrap.dedent("""
    import ctypes, json, mmap, sys
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print(json.dumps({"mdwe": False}))
        sys.exit(0)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        refused = False
    except PermissionError:
        refused = True
    import numpy as np, segno
    from kiosk.config import ScreenSection
    from kiosk.display.screen import GREEN, Screen, ScreenState
    from kiosk.sensors.scanner import scan_files
    image, shot = sys.argv[1], sys.argv[2]
    segno.make("HC1-MDWE-PROBE", error="m", micro=False).save(image, scale=8, border=4)
    codes = {decoder: next(scan_files([image], decoder))["codes"] for decoder in ("zxing", "pyzbar")}
    with Screen(ScreenSection(mode="headless"), "both") as screen:
        screen.show(ScreenState("pass", temperature_c=36.5))
        screen.render()
        screen.screenshot(shot)
    from PIL import Image
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    green = float((pixels == np.array(GREEN)).all(axis=1).mean())
    print(json.dumps({"mdwe": True, "refused": refused, "codes": codes, "green": green}))
""")


def test_scanner_and_screen_run_under_memory_deny_write_execute(tmp_path: Path) -> None:
    """The kernel's own form of MemoryDenyWriteExecute= (prctl PR_SET_MDWE, Linux 6.3+) around the
    kiosk's native code: zxing-cpp, pyzbar through ctypes, numpy, Pillow and pygame drawing."""
    result = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE, str(tmp_path / "code.png"), str(tmp_path / "pass.png")],
        capture_output=True, text=True, timeout=60, env={"SDL_VIDEODRIVER": "dummy", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    if not probe["mdwe"]:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or newer)")
    assert probe["refused"], "the rule was not in force"
    assert probe["codes"] == {"zxing": ["HC1-MDWE-PROBE"], "pyzbar": ["HC1-MDWE-PROBE"]}
    assert probe["green"] > 0.3
