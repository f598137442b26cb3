"""setup.sh: shellcheck, the Raspberry Pi path's actions, idempotence, uninstall, the dev path, and
the Pi's Python stack (``--pi-stack``).

The Pi path runs for real into a temporary folder (``SETUP_ROOT``) that holds what Raspberry Pi OS
would: /boot/firmware/config.txt and cmdline.txt, /etc/passwd and /etc/group with the Pi's device
groups. The commands that would change this machine (apt-get, dpkg-query, getent, useradd,
usermod, userdel, systemctl, systemd-run, udevadm, runuser, the venv's pip) are small stand-ins
first on PATH that act on that folder and log each call. The system python (``SETUP_PYTHON``) is a
stand-in that runs /usr/bin/python3, and makes real venvs with it (``--without-pip``: the stand-in
pip only logs the install). Everything else is real: the script's checks, its edits of config.txt
and cmdline.txt, install/chown/chmod, the comparison of config keys, the pins of apt's pygame,
numpy and Pillow and the check that the venv imports them from apt's folder, the unit's sandbox
settings handed to systemd-run, and ``kiosk check-config`` (the real one, from this checkout).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "setup.sh"
KIOSK = Path(sys.executable).with_name("kiosk")
GROUPS = ["gpio", "i2c", "video", "render", "input", "audio"]
APT_PACKAGES = ["python3-picamera2", "python3-pygame", "python3-numpy", "python3-pil", "python3-libgpiod",
                "python3-lgpio", "python3-rpi-lgpio", "libgbm1", "libegl1", "libgles2", "libgl1-mesa-dri",
                "fonts-wqy-microhei", "libzbar0", "i2c-tools"]
PI_STACK_PACKAGES = ["python3-venv", "python3-pygame", "python3-numpy", "python3-pil", "python3-libgpiod",
                     "libzbar0", "fonts-wqy-microhei", "shellcheck", "systemd", "xvfb", "xauth"]
# Commands that change something; a second run must call none of them.
MUTATING = ("apt-get", "useradd", "usermod", "userdel", "pip ", "systemctl enable", "systemctl disable",
            "systemctl daemon-reload", "systemctl try-restart", "modprobe", "python3 -m venv", "udevadm")
# Raspberry Pi OS's (and Debian's) system python, and the folder of its apt-installed packages.
SYSTEM_PYTHON = "/usr/bin/python3"
APT_SITE = "/usr/lib/python3/dist-packages"
APT_BUILDS = {"pygame": "pygame", "numpy": "numpy", "pillow": "PIL"}  # distribution: module


def apt_versions() -> dict[str, str] | None:
    """The versions of apt's pygame, numpy and Pillow that the system python has, or None."""
    probe = ("import importlib.metadata as m, importlib.util as u, sys\n"
             "for dist, module in zip(sys.argv[1::2], sys.argv[2::2]):\n"
             "    spec = u.find_spec(module)\n"
             f"    assert spec and spec.origin.startswith({APT_SITE!r})\n"
             "    print(dist, m.version(dist))\n")
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-I", "-c", probe, *[x for pair in APT_BUILDS.items() for x in pair]],
                                capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return dict(line.split() for line in result.stdout.splitlines())


APT_VERSIONS = apt_versions()
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="setting file owners (root:kiosk) needs root; CI runs as root")
needs_apt_python = pytest.mark.skipif(
    APT_VERSIONS is None,
    reason=f"{SYSTEM_PYTHON} has no pygame, numpy and Pillow from apt (./setup.sh --pi-stack installs them as root)",
)

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
    # Keeps its arguments, one a line, then runs the command as it is: the sandbox is systemd's.
    "systemd-run": r"""
printf '%s\n' "$@" >"$STUB_STATE/systemd-run.argv"
while [ $# -gt 0 ]; do
    case "$1" in
        -p) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
exec "$@"
""",
    "udevadm": "",
    "runuser": r"""
while [ "$1" != -- ]; do shift; done
shift
exec "$@"
""",
    # The system python. Its venvs are real ones (with the arguments setup.sh gave), without pip:
    # the stand-in pip logs the install and writes a stand-in kiosk; with STUB_PIP_SHADOWS="pygame"
    # it also leaves its own copy of that package in the venv, as a pip that ignored the pins would.
    "python3": r"""
if [ "${1:-} ${2:-}" != "-m venv" ]; then exec "$SYSTEM_PYTHON" "$@"; fi
for venv; do :; done
shift 2
"$SYSTEM_PYTHON" -m venv --without-pip "$@"
cat >"$venv/bin/pip" <<'PIP'
#!/bin/bash
echo "pip $*" >>"$STUB_LOG"
bin="$(dirname "$0")"
cat >"$bin/kiosk" <<'KIOSK'
#!/bin/bash
echo "kiosk $*" >>"$STUB_LOG"
case "$1" in
    check-config) exec "$REAL_KIOSK" "$@" ;;
    selftest) [ "${2:-}" = --help ] || echo "selftest: every part passed" ;;
esac
KIOSK
chmod +x "$bin/kiosk"
for package in ${STUB_PIP_SHADOWS:-}; do
    site="$("$bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
    mkdir -p "$site/$package"
    echo "__version__ = '99.0'" >"$site/$package/__init__.py"
done
PIP
chmod +x "$venv/bin/pip"
""",
}


class FakePi:
    """A Raspberry Pi OS file tree in a temporary folder, and stand-ins for its system commands.
    With ``systemd=True`` the tree says systemd runs the machine (/run/systemd/system)."""

    def __init__(self, base: Path, desktop: bool = False, systemd: bool = False):
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
        if systemd:
            (self.root / "run/systemd/system").mkdir(parents=True)
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
            "SETUP_PYTHON": str(self.stubs / "python3"),
            "SYSTEM_PYTHON": SYSTEM_PYTHON,
            "REAL_KIOSK": str(KIOSK),
        }
        self.venv = self.root / "opt/kiosk/venv"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        return subprocess.run([str(SETUP), "--pi", *args], env=self.env, capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def changes(self) -> list[str]:
        return [call for call in self.calls() if call.startswith(MUTATING)]

    def snapshot(self) -> dict[str, tuple]:
        """Every file and folder under the root: content, mode, owner and modification time."""
        return snapshot(self.root)

    def mode_owner(self, relative: str) -> tuple[str, int, int]:
        info = (self.root / relative).stat()
        return oct(stat.S_IMODE(info.st_mode)), info.st_uid, info.st_gid


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root: content, mode, owner and modification time."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        seen[str(path.relative_to(root))] = (content, info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns)
    return seen


@pytest.fixture
def pi(tmp_path: Path) -> FakePi:
    return FakePi(tmp_path)


def pinned(constraints: Path) -> dict[str, str]:
    """The pins of a constraints file, {distribution: version}."""
    lines = [line for line in constraints.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("==") for line in lines)


def assert_venv_of_the_system_python(venv: Path) -> None:
    """A venv made by the system python, seeing its apt-installed packages."""
    config = dict(line.split(" = ", 1) for line in (venv / "pyvenv.cfg").read_text().splitlines() if " = " in line)
    assert config["home"] == str(Path(SYSTEM_PYTHON).parent)
    assert config["include-system-site-packages"] == "true"


# How kiosk.service is started, watched and stopped: not the sandbox, and not for a selftest that
# runs once and ends (Type=notify would wait for a READY=1 it never sends).
LIFECYCLE = {"Type", "NotifyAccess", "WatchdogSec", "TimeoutStartSec", "TimeoutStopSec", "Restart", "RestartSec",
             "ExecStartPre", "ExecStart", "ExecReload"}


def service_settings(*texts: str) -> list[str]:
    """The [Service] settings of unit files, as "Key=value", in order."""
    found = []
    for text in texts:
        section = ""
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]":
                key, value = line.split("=", 1)
                found.append(f"{key.strip()}={value.strip()}")
    return found


def systemd_run_call(pi: FakePi) -> tuple[list[str], list[str], list[str]]:
    """What setup.sh handed systemd-run: its options, the -p properties, and the command."""
    argv = (pi.state / "systemd-run.argv").read_text().splitlines()
    options, properties = [], []
    while argv and argv[0].startswith("-"):
        arg = argv.pop(0)
        if arg == "-p":
            properties.append(argv.pop(0))
        else:
            options.append(arg)
    return options, properties, argv


def test_setup_and_ci_script_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (./setup.sh installs it when run as root)")
    result = subprocess.run(["shellcheck", str(SETUP), str(REPO / ".ci/run")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_help_lists_the_options() -> None:
    result = subprocess.run([str(SETUP), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--pi", "--dev", "--pi-stack", "--dry-run", "--desktop", "--uninstall", "--purge"):
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
    assert "would run: usermod -aG gpio,i2c,video,render,input,audio kiosk" in out
    assert f"would run: {pi.stubs}/python3 -m venv --system-site-packages {pi.venv}" in out
    # pip is pinned to apt's pygame, numpy and Pillow, and the venv is checked to import them from apt.
    pins = pi.venv / "apt-constraints.txt"
    assert f"would run: {pi.venv}/bin/pip install --quiet --disable-pip-version-check -c {pins} {REPO}" in out
    if APT_VERSIONS:
        assert f"pinning pip to apt's builds in {pins}: " + " ".join(f"{d}=={v}" for d, v in APT_VERSIONS.items()) in out
    assert f"would check: {pi.venv} imports pygame numpy PIL from {APT_SITE}" in out
    assert f"{pi.root}/etc/udev/rules.d/70-kiosk.rules" in out
    assert f"{pi.root}/etc/systemd/system/dev-i2c\\x2d1.device.d/kiosk.conf" in out
    assert f"would run: install -d -m 0750 -o kiosk -g kiosk {pi.root}/var/lib/kiosk" in out
    assert f"would run: install -m 0640 -o 0 -g kiosk {REPO}/config.toml {pi.root}/etc/kiosk/config.toml" in out
    assert f"{pi.root}/etc/systemd/system/kiosk.service" in out
    assert "would run: systemctl enable kiosk.service" in out
    assert "kiosk check-config" in out
    assert f"would run: runuser -u kiosk -- {pi.venv}/bin/kiosk selftest --config {pi.root}/etc/kiosk/config.toml" in out
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
@needs_apt_python
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
    assert f"python3 -m venv --system-site-packages {pi.venv}" in pi.calls()
    assert_venv_of_the_system_python(pi.venv)
    # pip held to apt's builds by pins read from the system python; the venv really imports them.
    pins = pi.venv / "apt-constraints.txt"
    assert pinned(pins) == APT_VERSIONS
    assert f"pip install --quiet --disable-pip-version-check -c {pins} {REPO}" in pi.calls()
    assert f"unchanged: {pi.venv} imports pygame numpy PIL from {APT_SITE} (apt's builds)" in first.stdout
    assert (pi.root / "etc/kiosk/config.toml").read_bytes() == (REPO / "config.toml").read_bytes()
    assert pi.mode_owner("etc/kiosk/config.toml") == ("0o640", 0, 990)
    unit = pi.root / "etc/systemd/system/kiosk.service"
    assert unit.read_bytes() == (REPO / "systemd/kiosk.service").read_bytes()
    assert not (pi.root / "etc/systemd/system/kiosk.service.d").exists()
    # The devices the unit waits for: tagged for systemd by a udev rule, each with its time limit.
    assert (pi.root / "etc/udev/rules.d/70-kiosk.rules").read_bytes() == (REPO / "systemd/70-kiosk.rules").read_bytes()
    for device in ("dev-i2c\\x2d1.device", "dev-video0.device"):
        dropin = pi.root / "etc/systemd/system" / f"{device}.d/kiosk.conf"
        assert dropin.read_bytes() == (REPO / "systemd/device-wait.conf").read_bytes()
    assert "udevadm control --reload" in pi.calls()
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
@needs_apt_python
@pytest.mark.parametrize("package", ["pygame", "numpy"])
def test_the_install_fails_loudly_when_pip_shadows_apts_build(pi: FakePi, package: str) -> None:
    """Should pip ever leave its own pygame (no KMS/DRM driver) or numpy in the venv, the install
    stops there with one line that names the copy and how to remove it."""
    pi.env["STUB_PIP_SHADOWS"] = package
    result = pi.run()
    assert result.returncode == 1
    site = next(pi.venv.glob("lib/python3*/site-packages"))
    assert result.stderr.strip().splitlines() == [
        f"setup.sh: {pi.venv} does not use Raspberry Pi OS's Python builds: {package} is {site}/{package}/__init__.py, "
        f"not apt's build from {APT_SITE}; remove the copies: {pi.venv}/bin/pip uninstall -y {package}"
    ]
    # It stopped before the service was installed, and the next run installs the program again.
    assert not (pi.root / "opt/kiosk/installed-from").exists()
    assert not (pi.root / "etc/systemd/system/kiosk.service").exists()


@needs_root
@needs_apt_python
def test_the_closing_selftest_runs_inside_the_units_sandbox(tmp_path: Path) -> None:
    """Where systemd runs the machine, the selftest runs through systemd-run with every sandbox
    setting of the installed unit, read from it: a device the unit does not allow fails now."""
    pi = FakePi(tmp_path, systemd=True)
    result = pi.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selftest inside kiosk.service's sandbox" in result.stdout
    assert "selftest: every part passed" in result.stdout
    assert not any(call.startswith("runuser") and " selftest " in call for call in pi.calls())
    options, properties, command = systemd_run_call(pi)
    assert options == ["--wait", "--pipe", "--collect", "--quiet", "--unit=kiosk-selftest"]
    assert command == [f"{pi.venv}/bin/kiosk", "selftest", "--config", f"{pi.root}/etc/kiosk/config.toml"]
    unit = service_settings((pi.root / "etc/systemd/system/kiosk.service").read_text())
    # Every setting of the unit's [Service] but the lifecycle ones, in the unit's order.
    assert properties == [setting for setting in unit if setting.split("=")[0] not in LIFECYCLE]
    device_allow = [setting for setting in unit if setting.startswith("DeviceAllow=")]
    assert len(device_allow) >= 6
    for setting in ["User=kiosk", "Group=kiosk", "WorkingDirectory=/var/lib/kiosk", "DevicePolicy=closed",
                    *device_allow, "ProtectSystem=strict", "ReadWritePaths=/var/lib/kiosk", "PrivateTmp=yes",
                    "NoNewPrivileges=yes", "CapabilityBoundingSet=", "MemoryDenyWriteExecute=yes",
                    "SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources",
                    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", "Environment=SDL_VIDEODRIVER=kmsdrm"]:
        assert setting in properties, setting
    assert not [setting for setting in properties if setting.split("=")[0] in LIFECYCLE]


@needs_root
@needs_apt_python
def test_the_selftests_sandbox_includes_the_units_drop_ins(tmp_path: Path) -> None:
    """The desktop drop-in and an operator's `systemctl edit kiosk` shape the selftest too, after the unit."""
    pi = FakePi(tmp_path, desktop=True, systemd=True)
    override = pi.root / "etc/systemd/system/kiosk.service.d/override.conf"
    override.parent.mkdir(parents=True)
    override.write_text("[Service]\nMemoryDenyWriteExecute=no\n")
    result = pi.run()
    assert result.returncode == 0, result.stdout + result.stderr
    _, properties, _ = systemd_run_call(pi)
    assert "BindReadOnlyPaths=-/tmp/.X11-unix" in properties
    assert properties.index("Environment=SDL_VIDEODRIVER=x11") > properties.index("Environment=SDL_VIDEODRIVER=kmsdrm")
    assert properties[-1] == "MemoryDenyWriteExecute=no"


def transient_equivalent(pi: FakePi, folder: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on a unit made of what setup.sh handed systemd-run: the properties
    as [Service] settings, the command as ExecStart=."""
    _, properties, command = systemd_run_call(pi)
    unit = folder / "kiosk-selftest.service"
    unit.write_text("[Service]\nExecStart=" + " ".join(command) + "\n" + "".join(f"{p}\n" for p in properties))
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)


# A stand-in for systemd's manager on the socket where systemd-run --user looks for it
# ($XDG_RUNTIME_DIR/systemd/private, a direct D-Bus connection): it answers StartTransientUnit and
# writes down, one JSON line per call, the properties systemd-run sent.
MANAGER = """
import json, sys
import dbus, dbus.server, dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)


class Manager(dbus.service.Object):
    @dbus.service.method("org.freedesktop.systemd1.Manager", in_signature="ssa(sv)a(sa(sv))", out_signature="o")
    def StartTransientUnit(self, name, mode, properties, aux):
        with open(sys.argv[2], "a") as calls:
            print(json.dumps([str(key) for key, _ in properties]), file=calls)
        return dbus.ObjectPath("/org/freedesktop/systemd1/job/1")


class Server(dbus.server.Server):
    def connection_added(self, connection):
        Manager(connection, "/org/freedesktop/systemd1")


server = Server("unix:path=" + sys.argv[1])
print("ready", flush=True)
GLib.MainLoop().run()
"""


def manager_available() -> bool:
    if shutil.which("systemd-run") is None:
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dbus.server, dbus.mainloop.glib, gi.repository.GLib"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def manager(tmp_path: Path):
    """The stand-in manager; yields (XDG_RUNTIME_DIR for systemd-run --user, the file of its calls)."""
    runtime = tmp_path / "runtime"
    (runtime / "systemd").mkdir(parents=True)
    runtime.chmod(0o700)
    calls = tmp_path / "manager-calls.jsonl"
    process = subprocess.Popen([SYSTEM_PYTHON, "-c", MANAGER, str(runtime / "systemd/private"), str(calls)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield runtime, calls
    finally:
        process.terminate()
        process.wait(timeout=10)


def real_systemd_run(pi: FakePi, runtime: Path) -> subprocess.CompletedProcess[str]:
    """The real systemd-run with the properties and command setup.sh handed the stand-in, sent to
    the stand-in manager (--user --no-block: --wait and --pipe need a manager that runs it)."""
    _, properties, command = systemd_run_call(pi)
    argv = ["systemd-run", "--user", "--no-block", "--quiet", "--unit=kiosk-selftest"]
    argv += [arg for prop in properties for arg in ("-p", prop)] + command
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


@needs_root
@needs_apt_python
@pytest.mark.skipif(not manager_available(), reason=f"needs systemd-run, and python3-dbus and python3-gi for {SYSTEM_PYTHON}")
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing (./setup.sh installs systemd as root)")
def test_every_property_handed_to_systemd_run_is_one_systemd_accepts(tmp_path: Path, manager) -> None:
    """The real systemd-run parses every -p property setup.sh passes into the typed property it
    sends the manager (an unknown one it refuses before sending anything), and the same settings
    as a unit's [Service] section verify without a single warning. A misspelt setting in an
    operator's drop-in is caught both ways. (The manager here is a stand-in that records what it
    is sent; a real one running the sandbox is the selftest's own run on the Pi.)"""
    runtime, calls = manager
    pi = FakePi(tmp_path / "good", systemd=True)
    assert pi.run().returncode == 0
    _, properties, _ = systemd_run_call(pi)
    sent = real_systemd_run(pi, runtime)
    assert (sent.returncode, sent.stderr) == (0, "")
    received = json.loads(calls.read_text().splitlines()[-1])
    assert received == ["Description", *[prop.split("=")[0] for prop in properties], "ExecStart"]
    verified = transient_equivalent(pi, tmp_path / "good")
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")

    typo = FakePi(tmp_path / "typo", systemd=True)
    override = typo.root / "etc/systemd/system/kiosk.service.d/override.conf"
    override.parent.mkdir(parents=True)
    override.write_text("[Service]\nProtectSystm=full\n")
    assert typo.run().returncode == 0
    refused = real_systemd_run(typo, runtime)
    assert refused.returncode != 0 and "Unknown assignment: ProtectSystm=full" in refused.stderr
    assert len(calls.read_text().splitlines()) == 1
    assert "Unknown key 'ProtectSystm'" in transient_equivalent(typo, tmp_path / "typo").stderr


@needs_root
@needs_apt_python
def test_without_systemd_the_selftest_runs_as_the_kiosk_user_and_says_so(pi: FakePi) -> None:
    result = pi.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selftest as the kiosk user (systemd is not running here, so outside the service's sandbox)" in result.stdout
    assert f"runuser -u kiosk -- {pi.venv}/bin/kiosk selftest --config {pi.root}/etc/kiosk/config.toml" in pi.calls()
    assert not (pi.state / "systemd-run.argv").exists()


@needs_root
@needs_apt_python
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
@needs_apt_python
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
@needs_apt_python
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
@needs_apt_python
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
    assert not (pi.root / "etc/udev/rules.d/70-kiosk.rules").exists()
    assert not list((pi.root / "etc/systemd/system").glob("dev-*.device.d"))
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


# ---------------------------------------------------------------- the Pi's stack (--pi-stack)


class PiStack:
    """setup.sh and pyproject.toml copied into a temporary checkout, run with --pi-stack and the
    FakePi's stand-ins (apt-get and dpkg-query, the system python that makes real venvs, pip)."""

    def __init__(self, base: Path):
        self.fake = FakePi(base / "pi")
        self.checkout = base / "checkout"
        self.checkout.mkdir()
        shutil.copy2(SETUP, self.checkout / "setup.sh")
        shutil.copy2(REPO / "pyproject.toml", self.checkout / "pyproject.toml")
        self.venv = self.checkout / ".venv-pi"
        self.pins = self.venv / "apt-constraints.txt"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.fake.log.write_text("")
        return subprocess.run([str(self.checkout / "setup.sh"), "--pi-stack", *args], env=self.fake.env,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture
def stack(tmp_path: Path) -> PiStack:
    return PiStack(tmp_path)


def test_pi_stack_dry_run_lists_every_action_and_changes_nothing(stack: PiStack) -> None:
    before = snapshot(stack.checkout)
    result = stack.run("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    apt_line = next(line for line in out.splitlines() if "would run:" in line and "apt-get install" in line)
    assert set(PI_STACK_PACKAGES) <= set(apt_line.split())
    python = stack.fake.stubs / "python3"
    assert f"would run: {python} -m venv --system-site-packages {stack.venv}" in out
    if APT_VERSIONS:
        assert f"pinning pip to apt's builds in {stack.pins}: " + " ".join(f"{d}=={v}" for d, v in APT_VERSIONS.items()) in out
    assert (f"would run: {stack.venv}/bin/pip install --quiet --disable-pip-version-check -c {stack.pins} "
            f"-e {stack.checkout}[test]") in out
    assert f"would check: {stack.venv} imports pygame numpy PIL from {APT_SITE}" in out
    assert out.rstrip().splitlines()[-2].startswith("==> dry run:")
    assert snapshot(stack.checkout) == before
    assert stack.fake.changes() == []


@needs_apt_python
def test_pi_stack_install_then_a_second_run_changes_nothing(stack: PiStack) -> None:
    first = stack.run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert_venv_of_the_system_python(stack.venv)
    # Pins read from the system python, pip held to them, the result checked for real.
    assert pinned(stack.pins) == APT_VERSIONS
    assert (f"pip install --quiet --disable-pip-version-check -c {stack.pins} -e {stack.checkout}[test]"
            in stack.fake.calls())
    assert f"unchanged: {stack.venv} imports pygame numpy PIL from {APT_SITE} (apt's builds)" in first.stdout
    if os.geteuid() == 0:
        assert set(PI_STACK_PACKAGES) <= set((stack.fake.state / "dpkg").read_text().split())

    before = snapshot(stack.checkout)
    second = stack.run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert stack.fake.changes() == []
    assert snapshot(stack.checkout) == before
    assert "unchanged: .venv-pi (the kiosk, editable, with its test tools)" in second.stdout
    assert "==> nothing changed: everything was already in place" in second.stdout


@needs_apt_python
@pytest.mark.parametrize(("module", "dist"), [("pygame", "pygame"), ("numpy", "numpy"), ("PIL", "pillow")])
def test_pi_stack_fails_loudly_when_pip_shadows_apts_build(stack: PiStack, module: str, dist: str) -> None:
    stack.fake.env["STUB_PIP_SHADOWS"] = module
    result = stack.run()
    assert result.returncode == 1
    site = next(stack.venv.glob("lib/python3*/site-packages"))
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"setup.sh: {stack.venv} does not use Raspberry Pi OS's Python builds: "
                    f"{module} is {site}/{module}/__init__.py, not apt's build from {APT_SITE}; "
                    f"remove the copies: {stack.venv}/bin/pip uninstall -y {dist}")
    # Not marked as installed: the next run runs pip again.
    assert not (stack.venv / ".setup-stamp").exists()


def fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A wheel of a newer NAME, as PyPI would offer it (metadata and an empty module)."""
    folder.mkdir(exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@needs_apt_python
def test_the_pins_hold_real_pip_to_apts_builds(stack: PiStack, tmp_path: Path) -> None:
    """The pins file setup.sh wrote, with the real pip, on the venv setup.sh made (offline: a local
    folder offers newer pygame and numpy, as PyPI would)."""
    assert stack.run().returncode == 0
    wheels = tmp_path / "wheels"
    fake_wheel(wheels, "pygame", "2.6.1")
    fake_wheel(wheels, "numpy", "2.2.0")

    def pip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", "--python",
             str(stack.venv / "bin/python"), "install", "--dry-run", "--no-index", "--find-links", str(wheels), *args],
            capture_output=True, text=True, timeout=120,
        )

    # Without the pins, a requirement apt's build does not meet puts PyPI's copy over it...
    free = pip("pygame>=2.5")
    assert free.returncode == 0, free.stderr
    assert "Would install pygame-2.6.1" in free.stdout
    # ...with them, pip refuses instead of shadowing apt's build.
    held = pip("-c", str(stack.pins), "pygame>=2.5", "numpy")
    assert held.returncode != 0
    assert "The user requested (constraint) pygame==" in held.stdout + held.stderr, held.stdout + held.stderr
    # And even asked to upgrade, it keeps apt's builds.
    upgrade = pip("-c", str(stack.pins), "--upgrade", "pygame", "numpy", "pillow")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Would install" not in upgrade.stdout


def test_second_pi_stack_run_changes_nothing() -> None:
    """CI runs ./setup.sh --pi-stack before the tests on the Pi's stack; again, it finds everything in place."""
    stamp, pins = REPO / ".venv-pi/.setup-stamp", REPO / ".venv-pi/apt-constraints.txt"
    if not stamp.exists() or not pins.exists():
        pytest.skip("no .venv-pi from ./setup.sh --pi-stack (CI makes one)")
    current = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + pins.read_bytes()).hexdigest()
    if stamp.read_text().strip() != current:
        pytest.skip(".venv-pi is not ./setup.sh --pi-stack's for this pyproject.toml (run it once; CI does)")
    result = subprocess.run([str(SETUP), "--pi-stack"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "unchanged: .venv-pi (the kiosk, editable, with its test tools)" in result.stdout
    assert f"unchanged: {REPO}/.venv-pi imports pygame numpy PIL from {APT_SITE} (apt's builds)" in result.stdout
    assert "==> nothing changed: everything was already in place" in result.stdout
