"""The systemd units: `systemd-analyze verify` and `security`, their command lines, the devices
the service may use and waits for, and the one hardening setting that depends on the kiosk's own
code (MemoryDenyWriteExecute).

`verify` needs the programs named in Exec*= to exist: the tests copy the units into a temporary
folder and point /opt/kiosk/venv/bin/kiosk at a stand-in executable there; every other line is
verified as shipped (drop-ins next to the unit, in kiosk.service.d/ and in the device units'
dev-*.device.d/, are read too).
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
UDEV_RULES = REPO / "systemd/70-kiosk.rules"
DEVICE_WAIT = REPO / "systemd/device-wait.conf"
# The devices kiosk.service waits for, as setup.sh installs their drop-ins.
WAITED_FOR = {"/dev/i2c-1": "dev-i2c\\x2d1.device", "/dev/video0": "dev-video0.device"}
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


def stage(tmp_path: Path, unit_text: str, dropins: dict[str, str] | None = None, device_wait: str | None = None) -> Path:
    """The unit in a temporary folder, its kiosk command pointing at an executable stand-in; with
    device_wait, that drop-in for each device the unit waits for, as setup.sh installs it."""
    stand_in = tmp_path / "kiosk"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "kiosk.service"
    unit.write_text(unit_text.replace(INSTALLED_KIOSK, str(stand_in)))
    for name, text in (dropins or {}).items():
        (tmp_path / "kiosk.service.d").mkdir(exist_ok=True)
        (tmp_path / "kiosk.service.d" / name).write_text(text)
    for device in WAITED_FOR.values() if device_wait is not None else ():
        (tmp_path / f"{device}.d").mkdir()
        (tmp_path / f"{device}.d/kiosk.conf").write_text(device_wait)
    return unit


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_the_service_verifies_without_a_single_warning(tmp_path: Path) -> None:
    result = verify(stage(tmp_path, UNIT.read_text(), device_wait=DEVICE_WAIT.read_text()))
    # Unknown or misplaced keys are only warnings for systemd: any output counts as a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.slow
def test_verify_reads_the_device_drop_ins(tmp_path: Path) -> None:
    """The check above covers the devices' drop-ins too: a typo there is reported."""
    result = verify(stage(tmp_path, UNIT.read_text(), device_wait="[Unit]\nJobRunningTimeoutSecs=20s\n"))
    assert "Unknown key 'JobRunningTimeoutSecs'" in result.stdout + result.stderr


@pytest.mark.slow
def test_the_service_with_the_desktop_drop_in_verifies(tmp_path: Path) -> None:
    result = verify(stage(tmp_path, UNIT.read_text(), {"desktop.conf": DESKTOP.read_text()}))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.slow
def test_verify_catches_a_mistyped_setting(tmp_path: Path) -> None:
    """The check above can fail: a typo an editor might make is reported."""
    broken = UNIT.read_text().replace("WatchdogSec=30s", "WatchdogSecs=30s")
    result = verify(stage(tmp_path, broken))
    assert "Unknown key 'WatchdogSecs'" in result.stderr


@pytest.mark.slow
def test_verify_catches_a_missing_program(tmp_path: Path) -> None:
    unit = stage(tmp_path, UNIT.read_text())
    (tmp_path / "kiosk").unlink()
    result = verify(unit)
    assert result.returncode != 0
    assert "is not executable" in result.stderr


@pytest.mark.slow
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
        "char-i2c rw", "char-gpiochip rw", "char-video4linux rw", "char-media rw", "char-dma_heap rw", "char-drm rw",
        "char-input r", "char-alsa rw",
    ])
    assert unit["ReadWritePaths"] == ["/var/lib/kiosk"] and unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == [""]


# The device classes the Raspberry Pi kernel registers (the names /proc/devices lists), and where.
KERNEL_CLASSES = {
    "i2c": "drivers/i2c/i2c-dev.c: register_chrdev_region(..., I2C_MINORS, \"i2c\"): /dev/i2c-*",
    "gpiochip": "drivers/gpio/gpiolib.h: GPIOCHIP_NAME \"gpiochip\": /dev/gpiochip*",
    "video4linux": "drivers/media/v4l2-core/v4l2-dev.c: VIDEO_NAME: /dev/video*, /dev/v4l-subdev*",
    "media": "drivers/media/mc/mc-devnode.c: MEDIA_NAME \"media\": /dev/media*",
    "dma_heap": "drivers/dma-buf/dma-heap.c: DEVNAME \"dma_heap\": /dev/dma_heap/*",
    "drm": "drivers/gpu/drm/drm_drv.c: register_chrdev(DRM_MAJOR, \"drm\", ...): /dev/dri/*",
    "input": "drivers/input/input.c: register_chrdev_region(..., \"input\"): /dev/input/event*",
    "alsa": "sound/core/sound.c: register_chrdev(major, \"alsa\", ...): /dev/snd/*",
}


def test_every_device_class_is_one_the_kernel_registers() -> None:
    """DeviceAllow=char-NAME must name a line of /proc/devices, or systemd allows nothing. Classes,
    not paths: a path is looked up once, when the service starts, so a device that appears later
    (the thermometer plugged in, a camera driver slow to load) would stay forbidden until a restart."""
    allowed = [entry.split() for entry in settings(UNIT.read_text())["DeviceAllow"]]
    assert all(device.startswith("char-") for device, _ in allowed)
    assert {device.removeprefix("char-") for device, _ in allowed} == set(KERNEL_CLASSES)
    # The classes with a fixed major number: where this machine's kernel has one, /proc/devices
    # lists it under the same name as on the Pi.
    chars = Path("/proc/devices").read_text().split("Block devices:")[0].splitlines()[1:]
    registered = dict(line.split(None, 1) for line in chars if line.strip())
    for major, name in {"13": "input", "81": "video4linux", "89": "i2c", "226": "drm", "116": "alsa"}.items():
        assert registered.get(major, name).strip() == name
    # Touches are only read: SDL opens /dev/input/event* read-only and never writes to them.
    assert dict(allowed)["char-input"] == "r"


@pytest.mark.slow
def test_the_service_waits_for_its_devices_but_not_for_long(tmp_path: Path) -> None:
    """The udev rule tags the thermometer's bus and the camera for systemd; the unit wants and is
    ordered after exactly those device units; each waits at most 20 s (not systemd's 90 s)."""
    unit = settings(UNIT.read_text())
    rules = [line for line in UDEV_RULES.read_text().splitlines() if line and not line.startswith("#")]
    tagged = {"/dev/" + line.split('KERNEL=="')[1].split('"')[0] for line in rules if 'TAG+="systemd"' in line}
    assert tagged == set(WAITED_FOR)
    for path, name in WAITED_FOR.items():
        # systemd's own name for the device's unit.
        escaped = subprocess.run(["systemd-escape", "--path", "--suffix=device", path], capture_output=True, text=True)
        assert escaped.stdout.strip() == name
    wants = [word for line in unit["Wants"] for word in line.split() if word.endswith(".device")]
    after = [word for line in unit["After"] for word in line.split() if word.endswith(".device")]
    assert sorted(wants) == sorted(after) == sorted(WAITED_FOR.values())
    # Wants=, not Requires= or BindsTo=: a missing device must not stop the kiosk from starting.
    assert not {"Requires", "BindsTo", "Requisite"} & set(unit)
    assert settings(DEVICE_WAIT.read_text()) == {"JobRunningTimeoutSec": ["20s"]}


@pytest.mark.slow
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
    from kiosk.display.pages import GREEN
    from kiosk.display.screen import Screen
    from kiosk.display.state import ScreenState
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


@pytest.mark.slow
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
