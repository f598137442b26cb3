"""setup.sh: shellcheck, the Raspberry Pi path's actions, idempotence, uninstall, the dev path.

The Pi path runs for real into a temporary folder (``SETUP_ROOT``) that holds what Raspberry Pi OS
would: /boot/firmware/config.txt and cmdline.txt, /etc/passwd and /etc/group with the Pi's device
groups. The commands that would change this machine (apt-get, dpkg-query, getent, useradd,
usermod, userdel, systemctl, runuser, ``python3 -m venv`` and the venv's pip) are small
stand-ins first on PATH that act on that folder and log each call. Everything else is real:
the script's checks, its edits of config.txt and cmdline.txt, install/chown/chmod, the comparison
of config keys, and ``kiosk check-config`` (the real one, from this checkout).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "setup.sh"
KIOSK = Path(sys.executable).with_name("kiosk")
GROUPS = ["gpio", "i2c", "video", "render", "input"]
APT_PACKAGES = ["python3-picamera2", "python3-pygame", "fonts-wqy-microhei", "libzbar0", "i2c-tools"]
# Commands that change something; a second run must call none of them.
MUTATING = ("apt-get", "useradd", "usermod", "userdel", "pip ", "systemctl enable", "systemctl disable",
            "systemctl daemon-reload", "systemctl try-restart", "modprobe", "python3 -m venv")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="setting file owners (root:kiosk) needs root; CI runs as root")

CONFIG_TXT = """\
# For more options and information see
# http://rptl.io/configtxt
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
disable_fw_kms_setup=1
arm_64bit=1
disable_overscan=1
arm_boost=1

[cm4]
otg_mode=1

[all]
"""
CMDLINE_TXT = ("console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
               "fsck.repair=yes rootwait quiet splash plymouth.ignore-serial-consoles\n")

STUBS = {
    "apt-get": r"""
if [ "$1" = install ]; then
    for arg in "$@"; do case "$arg" in install|-*) ;; *) echo "$arg" >>"$STUB_STATE/dpkg" ;; esac; done
fi
""",
    "dpkg-query": r"""
for package; do :; done
grep -qsx "$package" "$STUB_STATE/dpkg" && printf 'install ok installed'
exit 0
""",
    "getent": r"""
grep -s "^$2:" "$SETUP_ROOT/etc/$1" || exit 2
""",
    "useradd": r"""
for name; do :; done
echo "$name:x:990:990:Checkpoint kiosk:/var/lib/kiosk:/usr/sbin/nologin" >>"$SETUP_ROOT/etc/passwd"
echo "$name:x:990:" >>"$SETUP_ROOT/etc/group"
""",
    "usermod": r"""
[ "$1" = -aG ] || exit 2
for group in $(echo "$2" | tr , ' '); do
    sed -i -E "s/^($group:[^:]*:[^:]*:)(.+)\$/\1\2,$3/; s/^($group:[^:]*:[^:]*:)\$/\1$3/" "$SETUP_ROOT/etc/group"
done
""",
    "userdel": r"""
sed -i "/^$1:/d" "$SETUP_ROOT/etc/passwd" "$SETUP_ROOT/etc/group"
""",
    "systemctl": r"""
command="$1"; shift
[ "${1:-}" = --quiet ] && shift
case "$command" in
    is-enabled) grep -qsx "$1" "$STUB_STATE/enabled" ;;
    is-active) exit 3 ;;
    enable) echo "$1" >>"$STUB_STATE/enabled" ;;
    disable) sed -i "/^$2\$/d" "$STUB_STATE/enabled" ;;
esac
""",
    "runuser": r"""
while [ "$1" != -- ]; do shift; done
shift
exec "$@"
""",
    "python3": r"""
if [ "$1 $2" != "-m venv" ]; then exec "$REAL_PYTHON" "$@"; fi
for venv; do :; done
mkdir -p "$venv/bin"
ln -s "$REAL_PYTHON" "$venv/bin/python"
cat >"$venv/bin/pip" <<'PIP'
#!/bin/bash
echo "pip $*" >>"$STUB_LOG"
cat >"$(dirname "$0")/kiosk" <<'KIOSK'
#!/bin/bash
echo "kiosk $*" >>"$STUB_LOG"
case "$1" in
    check-config) exec "$REAL_KIOSK" "$@" ;;
    selftest) [ "${2:-}" = --help ] || echo "selftest: every part passed" ;;
esac
KIOSK
chmod +x "$(dirname "$0")/kiosk"
PIP
chmod +x "$venv/bin/pip"
""",
}


class FakePi:
    """A Raspberry Pi OS file tree in a temporary folder, and stand-ins for its system commands."""

    def __init__(self, base: Path, desktop: bool = False):
        self.root = base / "root"
        self.stubs = base / "stubs"
        self.state = base / "state"
        self.log = base / "calls.log"
        for folder in (self.root / "boot/firmware", self.root / "etc", self.stubs, self.state):
            folder.mkdir(parents=True)
        (self.root / "boot/firmware/config.txt").write_text(CONFIG_TXT)
        (self.root / "boot/firmware/cmdline.txt").write_text(CMDLINE_TXT)
        (self.root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        (self.root / "etc/group").write_text("root:x:0:\n" + "".join(f"{g}:x:{900 + i}:\n" for i, g in enumerate(GROUPS)))
        if desktop:
            (self.root / "etc/systemd/system").mkdir(parents=True)
            (self.root / "etc/systemd/system/display-manager.service").symlink_to("/lib/systemd/system/lightdm.service")
        for name, body in STUBS.items():
            path = self.stubs / name
            path.write_text(f'#!/bin/bash\necho "{name} $*" >>"$STUB_LOG"\n{body}')
            path.chmod(0o755)
        self.env = {
            **os.environ,
            "PATH": f"{self.stubs}:{os.environ['PATH']}",
            "SETUP_ROOT": str(self.root),
            "STUB_LOG": str(self.log),
            "STUB_STATE": str(self.state),
            "REAL_PYTHON": sys.executable,
            "REAL_KIOSK": str(KIOSK),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        return subprocess.run([str(SETUP), "--pi", *args], env=self.env, capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def changes(self) -> list[str]:
        return [call for call in self.calls() if call.startswith(MUTATING)]

    def snapshot(self) -> dict[str, tuple]:
        """Every file and folder under the root: content, mode, owner and modification time."""
        seen = {}
        for path in sorted(self.root.rglob("*")):
            info = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            seen[str(path.relative_to(self.root))] = (content, info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns)
        return seen

    def mode_owner(self, relative: str) -> tuple[str, int, int]:
        info = (self.root / relative).stat()
        return oct(stat.S_IMODE(info.st_mode)), info.st_uid, info.st_gid


@pytest.fixture
def pi(tmp_path: Path) -> FakePi:
    return FakePi(tmp_path)


def test_setup_and_ci_script_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (./setup.sh installs it when run as root)")
    result = subprocess.run(["shellcheck", str(SETUP), str(REPO / ".ci/run")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_help_lists_the_options() -> None:
    result = subprocess.run([str(SETUP), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--pi", "--dev", "--dry-run", "--desktop", "--uninstall", "--purge"):
        assert option in result.stdout


def test_unknown_option_is_refused() -> None:
    result = subprocess.run([str(SETUP), "--pie"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown option --pie" in result.stderr


def test_dry_run_of_the_pi_path_shows_every_action_and_does_nothing(pi: FakePi) -> None:
    before = pi.snapshot()
    result = pi.run("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    apt_line = next(line for line in out.splitlines() if "would run:" in line and "apt-get install" in line)
    for package in APT_PACKAGES:
        assert package in apt_line.split()
    assert "dtparam=i2c_arm=on" in out
    assert "dtparam=i2c_arm_baudrate=100000" in out
    assert "camera_auto_detect=1" in out
    assert "consoleblank=0" in out
    assert "would run: useradd --system" in out and out.count(" kiosk\n") >= 1
    assert "would run: usermod -aG gpio,i2c,video,render,input kiosk" in out
    assert f"would run: python3 -m venv --system-site-packages {pi.root}/opt/kiosk/venv" in out
    assert f"would run: {pi.root}/opt/kiosk/venv/bin/pip install" in out
    assert f"would run: install -d -m 0750 -o kiosk -g kiosk {pi.root}/var/lib/kiosk" in out
    assert f"would run: install -m 0640 -o 0 -g kiosk {REPO}/config.toml {pi.root}/etc/kiosk/config.toml" in out
    assert f"{pi.root}/etc/systemd/system/kiosk.service" in out
    assert "would run: systemctl enable kiosk.service" in out
    assert "kiosk check-config" in out and "kiosk selftest" in out
    assert "screen: full screen through KMS/DRM" in out
    # Nothing happened.
    assert pi.snapshot() == before
    assert pi.changes() == []


def test_dry_run_on_this_machine_needs_no_root_and_changes_nothing() -> None:
    """What a maintainer types anywhere: ./setup.sh --dry-run --pi."""
    result = subprocess.run([str(SETUP), "--dry-run", "--pi"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "would run:" in result.stdout
    assert "check-config" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("==> dry run:")


def test_dry_run_on_a_desktop_pi_uses_the_desktop_session(tmp_path: Path) -> None:
    pi = FakePi(tmp_path, desktop=True)
    result = pi.run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "screen: the desktop session" in result.stdout
    assert f"{pi.root}/etc/systemd/system/kiosk.service.d/desktop.conf" in result.stdout
    assert f"{pi.root}/etc/xdg/autostart/kiosk-xhost.desktop" in result.stdout
    assert "x11-xserver-utils" in result.stdout


@needs_root
def test_pi_install_then_a_second_run_changes_nothing(pi: FakePi) -> None:
    first = pi.run()
    assert first.returncode == 0, first.stdout + first.stderr
    # System packages, user and groups.
    assert "apt-get install" in "\n".join(pi.calls())
    assert all(package in (pi.state / "dpkg").read_text().split() for package in APT_PACKAGES)
    group_file = (pi.root / "etc/group").read_text()
    for group in GROUPS:
        assert any(line.startswith(f"{group}:") and line.endswith(":kiosk") for line in group_file.splitlines()), group
    # I2C at 100 kHz and the camera, at the end of config.txt, after the image's own lines.
    config_txt = (pi.root / "boot/firmware/config.txt").read_text()
    assert config_txt.startswith(CONFIG_TXT)
    block = config_txt[len(CONFIG_TXT):].splitlines()
    assert "[all]" in block and "dtparam=i2c_arm=on" in block and "dtparam=i2c_arm_baudrate=100000" in block
    assert "camera_auto_detect=1" in block
    # No console blanking, no console cursor; the kernel command line is still one line.
    cmdline = (pi.root / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and cmdline.split()[:2] == ["console=serial0,115200", "console=tty1"]
    assert "consoleblank=0" in cmdline.split() and "vt.global_cursor_default=0" in cmdline.split()
    assert (pi.root / "etc/modules-load.d/kiosk-i2c.conf").read_text().splitlines()[-1] == "i2c-dev"
    # Data folder, program, config, units.
    assert pi.mode_owner("var/lib/kiosk") == ("0o750", 990, 990)
    assert "python3 -m venv --system-site-packages " + str(pi.root / "opt/kiosk/venv") in pi.calls()
    assert any(call.startswith("pip install") and call.endswith(str(REPO)) for call in pi.calls())
    assert (pi.root / "etc/kiosk/config.toml").read_bytes() == (REPO / "config.toml").read_bytes()
    assert pi.mode_owner("etc/kiosk/config.toml") == ("0o640", 0, 990)
    unit = pi.root / "etc/systemd/system/kiosk.service"
    assert unit.read_bytes() == (REPO / "systemd/kiosk.service").read_bytes()
    assert not (pi.root / "etc/systemd/system/kiosk.service.d").exists()
    assert (pi.state / "enabled").read_text().split() == ["kiosk.service"]
    # It ends by checking the config (the real check) and running the selftest as the kiosk user.
    assert "etc/kiosk/config.toml: ok" in first.stdout
    assert f"kiosk selftest --config {pi.root}/etc/kiosk/config.toml" in pi.calls()
    assert "selftest: every part passed" in first.stdout
    assert "reboot to apply" in first.stdout

    before = pi.snapshot()
    second = pi.run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert pi.changes() == []
    assert pi.snapshot() == before
    assert "==> nothing changed: everything was already in place" in second.stdout
    assert "unchanged: " + str(pi.root / "etc/kiosk/config.toml") in second.stdout
    assert "reboot" not in second.stdout


@needs_root
def test_an_existing_config_is_kept_and_new_settings_are_reported(pi: FakePi) -> None:
    config = pi.root / "etc/kiosk/config.toml"
    config.parent.mkdir(parents=True)
    mine = '[kiosk]\nid = "gate-7"\nsite_id = "mall-3"\n\n[thermometer]\nfever_c = 37.5\n'
    config.write_text(mine)
    config.chmod(0o644)
    result = pi.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert config.read_text() == mine
    # Tokens live in this file: it is made root:kiosk 0640 even when it was there before.
    assert pi.mode_owner("etc/kiosk/config.toml") == ("0o640", 0, 990)
    reported = [line.rsplit(": ", 1)[1] for line in result.stdout.splitlines() if "new setting, not in" in line]
    assert "camera.fps" in reported and "thermometer.cold_floor_c" in reported
    assert "kiosk.id" not in reported and "thermometer.fever_c" not in reported


@needs_root
def test_a_bad_existing_config_fails_the_install_naming_the_key(pi: FakePi) -> None:
    config = pi.root / "etc/kiosk/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[thermometer]\nfever_c = 73\n")
    result = pi.run()
    assert result.returncode == 1
    assert "thermometer.fever_c" in result.stderr
    assert config.read_text() == "[thermometer]\nfever_c = 73\n"
    # Everything else was still installed.
    assert (pi.root / "etc/systemd/system/kiosk.service").exists()


@needs_root
def test_desktop_install_adds_the_session_drop_in_and_lite_removes_it(tmp_path: Path) -> None:
    pi = FakePi(tmp_path, desktop=True)
    assert pi.run().returncode == 0
    dropin = pi.root / "etc/systemd/system/kiosk.service.d/desktop.conf"
    assert dropin.read_bytes() == (REPO / "systemd/desktop.conf").read_bytes()
    assert (pi.root / "etc/xdg/autostart/kiosk-xhost.desktop").exists()
    relite = pi.run("--lite")
    assert relite.returncode == 0, relite.stderr
    assert not dropin.exists()
    assert "systemctl daemon-reload" in pi.calls()


@needs_root
def test_uninstall_keeps_config_and_data_and_purge_removes_them(pi: FakePi) -> None:
    assert pi.run().returncode == 0
    (pi.root / "var/lib/kiosk/events.db").write_text("the event log")

    dry = pi.run("--uninstall", "--dry-run")
    assert dry.returncode == 0
    assert "would run: systemctl disable --now kiosk.service" in dry.stdout
    assert f"would run: rm -rf {pi.root}/opt/kiosk" in dry.stdout
    assert pi.changes() == [] and (pi.root / "opt/kiosk").exists()

    result = pi.run("--uninstall")
    assert result.returncode == 0, result.stderr
    assert "systemctl disable --now kiosk.service" in pi.calls()
    assert not (pi.root / "etc/systemd/system/kiosk.service").exists()
    assert not (pi.root / "opt/kiosk").exists()
    assert (pi.root / "etc/kiosk/config.toml").exists()
    assert (pi.root / "var/lib/kiosk/events.db").read_text() == "the event log"

    purge = pi.run("--uninstall", "--purge")
    assert purge.returncode == 0, purge.stderr
    assert not (pi.root / "etc/kiosk").exists() and not (pi.root / "var/lib/kiosk").exists()
    assert "kiosk:" not in (pi.root / "etc/passwd").read_text()


def test_uninstall_is_only_for_the_pi_install() -> None:
    result = subprocess.run([str(SETUP), "--uninstall", "--dev"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "--uninstall removes the Raspberry Pi install" in result.stderr


def test_second_dev_run_changes_nothing() -> None:
    """CI runs ./setup.sh before the tests; running it again must find everything in place."""
    stamp = REPO / ".venv/.setup-stamp"
    current = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != current:
        pytest.skip("the development venv is not ./setup.sh's for this pyproject.toml (run it once; CI does)")
    result = subprocess.run([str(SETUP), "--dev"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "unchanged: .venv" in result.stdout
    assert "==> nothing changed: everything was already in place" in result.stdout
