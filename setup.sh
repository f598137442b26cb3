#!/usr/bin/env bash
# Install the checkpoint kiosk.
#
#   ./setup.sh                on a Raspberry Pi: the system install (run as root);
#                             anywhere else: the development/simulator venv in .venv
#   ./setup.sh --pi           take the Raspberry Pi path on any machine
#   ./setup.sh --dev          take the development path, even on a Pi
#   ./setup.sh --pi-stack     the tests on Raspberry Pi OS's own Python stack, in .venv-pi: the system
#                             python 3.11 with apt's pygame, numpy and Pillow (then: .venv-pi/bin/python -m pytest)
#   ./setup.sh --dry-run      print every action without doing it (no root needed)
#   ./setup.sh --desktop      Pi path: draw in the desktop session (found by itself when the
#   ./setup.sh --lite         Pi boots to a desktop), or full screen through KMS/DRM (Lite)
#   ./setup.sh --uninstall    remove the service and the program; keep config and data
#   ./setup.sh --uninstall --purge   ...and the config, the event log and the kiosk user
#
# Examples:  sudo ./setup.sh          ./setup.sh --dry-run --pi          sudo ./setup.sh --uninstall
#
# Safe to run again: every step checks first, and a second run changes nothing.
# SETUP_ROOT=DIR installs the Pi path under DIR instead of / (for the tests, which also put
# stand-ins for apt-get, useradd, systemctl ... first on PATH); SETUP_PYTHON=PATH is the system python
# the venvs are made from (/usr/bin/python3, whose pygame, numpy and Pillow are apt's).
# What each step does and why: docs/deploy.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=""
screen=""
dry_run=0
uninstall=0
purge=0

for arg in "$@"; do
    case "$arg" in
        --pi) mode=pi ;;
        --dev) mode=dev ;;
        --pi-stack) mode=pi-stack ;;
        --desktop) screen=desktop ;;
        --lite) screen=lite ;;
        --dry-run) dry_run=1 ;;
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$purge" = 1 ] && [ "$uninstall" = 0 ]; then
    echo "setup.sh: --purge goes with --uninstall" >&2
    exit 2
fi
if [ -z "$mode" ]; then
    if grep -qs "Raspberry Pi" /proc/device-tree/model; then mode=pi; else mode=dev; fi
fi

# Every system path of the Pi path, under SETUP_ROOT when the tests set it.
root="${SETUP_ROOT:-}"
root="${root%/}"
if [ -e "$root/boot/firmware/config.txt" ] || [ ! -e "$root/boot/config.txt" ]; then
    boot="$root/boot/firmware"   # Bookworm
else
    boot="$root/boot"            # older images
fi
opt="$root/opt/kiosk"
venv="$opt/venv"
data="$root/var/lib/kiosk"
etc="$root/etc/kiosk"
config="$etc/config.toml"
units="$root/etc/systemd/system"
dropins="$units/kiosk.service.d"
xhost_autostart="$root/etc/xdg/autostart/kiosk-xhost.desktop"
modules_conf="$root/etc/modules-load.d/kiosk-i2c.conf"
udev_rules="$root/etc/udev/rules.d/70-kiosk.rules"
# The devices kiosk.service waits for (Wants=, After=), each at most as long as its drop-in says.
device_dropins=("$units/dev-i2c\\x2d1.device.d/kiosk.conf" "$units/dev-video0.device.d/kiosk.conf")
groups=(gpio i2c video render input audio)

# Raspberry Pi OS's own Python builds, which a venv made with --system-site-packages must keep:
# pygame (its SDL has the KMS/DRM video driver), numpy and Pillow (what picamera2 and pygame were
# built against). pip is pinned to their versions, and a check after each install makes sure the
# venv imports them from apt's folder: as distribution (for pip) and module (for import) names.
system_python="${SETUP_PYTHON:-/usr/bin/python3}"
apt_site=/usr/lib/python3/dist-packages
apt_builds=(pygame:pygame numpy:numpy pillow:PIL)

changes=0
reboot_needed=0

say() { printf '==> %s\n' "$*"; }
unchanged() { printf '    unchanged: %s\n' "$*"; }
warn() { printf 'setup.sh: warning: %s\n' "$*" >&2; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }
# Announce a change; the commands that make it go through run.
change() { changes=$((changes + 1)); say "$*"; }
run() {
    if [ "$dry_run" = 0 ]; then "$@"; return; fi
    local arg words=()
    for arg in "$@"; do
        # Quote only what a shell would split, so the line can be pasted.
        if [[ "$arg" =~ [[:space:]\'\"\$\`\\] ]]; then words+=("'${arg//\'/\'\\\'\'}'"); else words+=("$arg"); fi
    done
    printf '    would run: %s\n' "${words[*]}"
}

# Numeric ids, empty when the user or group does not exist (yet).
user_id() { getent passwd "$1" | cut -d: -f3 || true; }
group_id() { getent group "$1" | cut -d: -f3 || true; }
in_group() { getent group "$2" | cut -d: -f4 | tr ',' '\n' | grep -qx "$1"; }

# Install SRC as DST with MODE unless DST already has that content; sets $changed.
ensure_file() {
    local src="$1" dst="$2" mode="$3"
    changed=0
    if cmp -s "$src" "$dst"; then
        unchanged "$dst"
        return
    fi
    changed=1
    change "installing $dst"
    run install -D -m "$mode" "$src" "$dst"
}

# Create directory PATH with MODE, OWNER and GROUP, or fix them.
ensure_dir() {
    local path="$1" mode="$2" owner="$3" group="$4" uid gid
    uid="$(user_id "$owner")"
    gid="$(group_id "$group")"
    if [ -d "$path" ] && [ -n "$uid" ] && [ "$(stat -c '%a %u %g' "$path")" = "${mode#0} $uid $gid" ]; then
        unchanged "$path ($owner:$group $mode)"
        return
    fi
    change "creating $path ($owner:$group, mode $mode)"
    run install -d -m "$mode" -o "${uid:-$owner}" -g "${gid:-$group}" "$path"
}

apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        unchanged "system packages: $*"
        return
    fi
    if [ "$dry_run" = 0 ] && [ "$(id -u)" -ne 0 ]; then
        echo "setup.sh: missing system packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        return
    fi
    change "installing system packages: ${missing[*]}"
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

# ---------------------------------------------------------------- apt's Python builds in a venv

# Pin pip to the system python's own pygame, numpy and Pillow in VENV/apt-constraints.txt (the
# versions are read from the system python, never written here by hand); sets $pins_changed.
# Installed with `pip install -c` that file, the kiosk's requirements can only be met by apt's
# builds: a requirement they do not meet makes pip fail, instead of adding PyPI's copy to the venv.
pin_apt_builds() {
    local venv_dir="$1" file="$1/apt-constraints.txt" pins build dists=()
    for build in "${apt_builds[@]}"; do dists+=("${build%%:*}"); done
    pins_changed=0
    if ! pins="$("$system_python" -I - "${dists[@]}" 2>/dev/null <<'PY'
import importlib.metadata as metadata
import sys

print("# The system python's own builds (apt): pip may add packages, never another of these.")
for name in sys.argv[1:]:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        sys.exit(1)
PY
    )"; then
        [ "$dry_run" = 1 ] || die "$system_python has no ${dists[*]} from apt (apt-get install python3-pygame python3-numpy python3-pil)"
        change "pinning pip to apt's ${dists[*]} in $file (their versions once apt has installed them)"
        pins_changed=1
        return
    fi
    if [ "$(cat "$file" 2>/dev/null)" = "$pins" ]; then
        unchanged "$file: pip pinned to apt's $(grep -v '^#' <<<"$pins" | paste -sd' ' -)"
        return
    fi
    change "pinning pip to apt's builds in $file: $(grep -v '^#' <<<"$pins" | paste -sd' ' -)"
    pins_changed=1
    if [ "$dry_run" = 1 ]; then
        printf '    would write: %s\n' "$file"
    else
        printf '%s\n' "$pins" >"$file"
    fi
}

# Fail (one line, exit 1) unless VENV's python imports pygame, numpy and PIL from apt's folder: a
# copy that pip put in the venv would shadow them (PyPI's pygame has no KMS/DRM video driver).
check_apt_builds() {
    local venv_dir="$1" modules=() build found
    for build in "${apt_builds[@]}"; do modules+=("${build##*:}"); done
    if [ "$dry_run" = 1 ]; then
        printf '    would check: %s imports %s from %s\n' "$venv_dir" "${modules[*]}" "$apt_site"
        return
    fi
    if found="$("$venv_dir/bin/python" -I - "$venv_dir" "$apt_site" "${apt_builds[@]}" <<'PY'
import importlib.util
import os
import sys

venv, apt = sys.argv[1], os.path.realpath(sys.argv[2])
wrong, remove = [], []
for build in sys.argv[3:]:
    dist, module = build.split(":")
    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec is not None else None
    if origin is None:
        wrong.append(f"{module} is missing")
    elif not os.path.realpath(origin).startswith(apt + os.sep):
        wrong.append(f"{module} is {origin}")
        remove.append(dist)
if wrong:
    fix = f"; remove the copies: {venv}/bin/pip uninstall -y {' '.join(remove)}" if remove else ""
    print(f"{', '.join(wrong)}, not apt's build from {apt}{fix}")
    sys.exit(1)
PY
    )"; then
        unchanged "$venv_dir imports ${modules[*]} from $apt_site (apt's builds)"
    else
        die "$venv_dir does not use Raspberry Pi OS's Python builds: $found"
    fi
}

# ---------------------------------------------------------------- the Pi's stack, for the tests

# The development venv's twin on Raspberry Pi OS's Python: built the way the Pi path builds the
# device's venv (the system python, --system-site-packages, apt's pygame, numpy and Pillow kept),
# with the kiosk installed editable with its test tools. Debian 12 has the same packages.
pi_stack_install() {
    if command -v apt-get >/dev/null; then
        # The Pi's Python stack, and the test-only packages of the development path.
        apt_install python3-venv python3-pygame python3-numpy python3-pil python3-libgpiod \
            libzbar0 fonts-wqy-microhei shellcheck systemd xvfb xauth espeak-ng
    fi
    local venv_dir="$here/.venv-pi" stamp_file="$here/.venv-pi/.setup-stamp" stamp
    python_ok "$system_python" || die "$system_python must be Python 3.11 or newer (Raspberry Pi OS Bookworm's)"
    if [ ! -x "$venv_dir/bin/python" ]; then
        change "creating .venv-pi ($system_python, --system-site-packages: apt's pygame, numpy and Pillow)"
        run "$system_python" -m venv --system-site-packages "$venv_dir"
    fi
    pin_apt_builds "$venv_dir"
    # The install is editable: a changed pyproject.toml or a new apt build needs pip again.
    stamp="$({ cat "$here/pyproject.toml"; cat "$venv_dir/apt-constraints.txt" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
    local installed=0
    if [ -x "$venv_dir/bin/kiosk" ] && [ "$pins_changed" = 0 ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
        unchanged ".venv-pi (the kiosk, editable, with its test tools)"
    else
        change "installing the kiosk and its test tools into .venv-pi, pip pinned to apt's builds"
        run "$venv_dir/bin/pip" install --quiet --disable-pip-version-check \
            -c "$venv_dir/apt-constraints.txt" -e "${here}[test]"
        installed=1
    fi
    check_apt_builds "$venv_dir"
    if [ "$installed" = 1 ] && [ "$dry_run" = 0 ]; then printf '%s\n' "$stamp" >"$stamp_file"; fi
    finish
    say "ready: .venv-pi/bin/python -m pytest (the tests on Raspberry Pi OS's Python stack)"
}

# ---------------------------------------------------------------- development path

dev_install() {
    # libzbar0: the pyzbar decoder; fonts-wqy-microhei: Chinese on the screen;
    # the tests check this script (with shellcheck) and the units (with systemd-analyze), and
    # open the demo's window on a virtual display (xvfb); espeak-ng: the spoken prompts (rendered
    # by the tests and by `kiosk demo --sound`).
    if command -v apt-get >/dev/null; then
        apt_install libzbar0 fonts-wqy-microhei shellcheck systemd xvfb xauth espeak-ng
    fi
    local python=python3 stamp_file="$here/.venv/.setup-stamp" stamp
    python_ok "$python" || die "Python 3.11 or newer is needed"
    if [ ! -x "$here/.venv/bin/python" ]; then
        change "creating the development venv in .venv"
        run "$python" -m venv "$here/.venv"
    fi
    # The install is editable, so only a changed pyproject.toml needs pip again.
    stamp="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
    if [ -x "$here/.venv/bin/kiosk" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
        unchanged ".venv (the kiosk, editable, with its test tools)"
    else
        change "installing the kiosk and its test tools into .venv"
        run "$here/.venv/bin/pip" install --quiet --disable-pip-version-check -e "${here}[test]"
        if [ "$dry_run" = 0 ]; then printf '%s\n' "$stamp" >"$stamp_file"; fi
    fi
    finish
    say "ready: .venv/bin/kiosk demo   |   .venv/bin/python -m pytest"
}

# ---------------------------------------------------------------- Raspberry Pi path

need_root() {
    if [ "$dry_run" = 0 ] && [ "$(id -u)" -ne 0 ]; then
        die "the Raspberry Pi $1 must run as root (sudo ./setup.sh ...)"
    fi
}

is_desktop() {
    case "$screen" in
        desktop) return 0 ;;
        lite) return 1 ;;
    esac
    # A Pi that boots to a desktop has a display manager (lightdm) enabled.
    [ -L "$units/display-manager.service" ] || [ -e "$units/display-manager.service" ]
}

# The kiosk's lines in config.txt, kept together between two markers so a later run can check them.
boot_config() {
    local file="$boot/config.txt" block current
    block="$(printf '%s\n' \
        "# >>> checkpoint kiosk (setup.sh) >>>" \
        "[all]" \
        "# I2C for the MLX90614 thermometer, at 100 kHz: it is an SMBus device." \
        "dtparam=i2c_arm=on" \
        "dtparam=i2c_arm_baudrate=100000" \
        "# The camera module, found by itself." \
        "camera_auto_detect=1" \
        "# <<< checkpoint kiosk <<<")"
    if [ ! -f "$file" ]; then
        [ "$dry_run" = 1 ] || die "$file not found: the Raspberry Pi path needs Raspberry Pi OS (Bookworm)"
        change "enabling I2C at 100 kHz and the camera in $file (not found on this machine)"
        printf '    would add to %s:\n%s\n' "$file" "$(printf '%s\n' "$block" | sed 's/^/        /')"
        return
    fi
    current="$(sed -n '/^# >>> checkpoint kiosk/,/^# <<< checkpoint kiosk/p' "$file")"
    if [ "$current" = "$block" ]; then
        unchanged "$file: I2C at 100 kHz, camera"
    else
        change "enabling I2C at 100 kHz and the camera in $file (after a reboot)"
        reboot_needed=1
        if [ "$dry_run" = 1 ]; then
            printf '    would add to %s:\n%s\n' "$file" "$(printf '%s\n' "$block" | sed 's/^/        /')"
        else
            # Write a copy and rename it over the original: a power cut leaves the old or the new file.
            { sed '/^# >>> checkpoint kiosk/,/^# <<< checkpoint kiosk/d' "$file"; printf '%s\n' "$block"; } >"$file.kiosk-new"
            mv "$file.kiosk-new" "$file"
        fi
    fi
    if ! grep -Eq '^[[:space:]]*dtoverlay=vc4-f?kms-v3d' "$file"; then
        warn "$file does not load the KMS display driver (dtoverlay=vc4-kms-v3d): the screen needs it"
    fi
}

# Set KEY=VALUE on the kernel command line (cmdline.txt is one line).
cmdline_param() {
    local key="$1" value="$2" file="$boot/cmdline.txt"
    if [ ! -f "$file" ]; then
        [ "$dry_run" = 1 ] || die "$file not found: the Raspberry Pi path needs Raspberry Pi OS (Bookworm)"
        change "setting $key=$value in $file (not found on this machine)"
        return
    fi
    if grep -Eq "(^|[[:space:]])$key=$value([[:space:]]|\$)" "$file"; then
        unchanged "$file: $key=$value"
        return
    fi
    change "setting $key=$value in $file (after a reboot)"
    reboot_needed=1
    if grep -Eq "(^|[[:space:]])$key=" "$file"; then
        run sed -i -E "1 s/(^|[[:space:]])$key=[^[:space:]]*/\\1$key=$value/" "$file"
    else
        run sed -i -E "1 s/[[:space:]]*\$/ $key=$value/" "$file"
    fi
}

ensure_user() {
    if getent passwd kiosk >/dev/null; then
        unchanged "user kiosk"
    else
        change "creating the kiosk system user"
        run useradd --system --user-group --home-dir /var/lib/kiosk --no-create-home \
            --shell /usr/sbin/nologin --comment "Checkpoint kiosk" kiosk
    fi
    local group missing=()
    for group in "${groups[@]}"; do
        in_group kiosk "$group" && continue
        if [ "$dry_run" = 0 ] && ! getent group "$group" >/dev/null; then
            warn "group $group does not exist (not Raspberry Pi OS?): the kiosk cannot use those devices"
            continue
        fi
        missing+=("$group")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        unchanged "kiosk's groups: ${groups[*]}"
    else
        change "adding kiosk to the groups ${missing[*]} (the devices it uses)"
        run usermod -aG "$(IFS=,; echo "${missing[*]}")" kiosk
    fi
}

# A fingerprint of the program's source, to tell whether the venv holds this version.
source_stamp() {
    (cd "$here" && find kiosk pyproject.toml -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

install_program() {
    if [ -x "$venv/bin/python" ]; then
        unchanged "$venv"
    else
        change "creating $venv (--system-site-packages: apt's picamera2, pygame, numpy and Pillow)"
        run install -d -m 0755 "$opt"
        run "$system_python" -m venv --system-site-packages "$venv"
    fi
    # pip may add what apt lacks, never its own pygame (no KMS/DRM driver), numpy or Pillow.
    pin_apt_builds "$venv"
    local stamp installed=0
    stamp="$({ source_stamp; cat "$venv/apt-constraints.txt" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
    if [ -x "$venv/bin/kiosk" ] && [ "$pins_changed" = 0 ] && [ "$(cat "$opt/installed-from" 2>/dev/null)" = "$stamp" ]; then
        unchanged "the kiosk program in $venv"
    else
        change "installing the kiosk program into $venv (pip pinned to apt's builds)"
        run "$venv/bin/pip" install --quiet --disable-pip-version-check -c "$venv/apt-constraints.txt" "$here"
        installed=1
    fi
    check_apt_builds "$venv"
    if [ "$installed" = 1 ]; then
        if [ "$dry_run" = 1 ]; then
            printf '    would write: %s\n' "$opt/installed-from"
        else
            printf '%s\n' "$stamp" >"$opt/installed-from"
        fi
    fi
    ensure_file "$here/docs/deploy.md" "$opt/deploy.md" 0644
}

# Settings the shipped config has and the installed one does not set (their defaults apply).
report_new_settings() {
    local python=python3
    [ -x "$venv/bin/python" ] && python="$venv/bin/python"
    [ -r "$config" ] || return 0
    "$python" - "$here/config.toml" "$config" <<'PY'
import sys
import tomllib


def keys(table, prefix=""):
    for key, value in table.items():
        if isinstance(value, dict):
            yield from keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


try:
    with open(sys.argv[1], "rb") as shipped, open(sys.argv[2], "rb") as installed:
        new = sorted(set(keys(tomllib.load(shipped))) - set(keys(tomllib.load(installed))))
except (OSError, tomllib.TOMLDecodeError) as exc:
    print(f"    cannot compare the settings: {exc}")
    sys.exit(0)
for key in new:
    print(f"    new setting, not in {sys.argv[2]} (its default applies): {key}")
PY
}

install_config() {
    ensure_dir "$etc" 0755 root root
    local gid
    gid="$(group_id kiosk)"
    if [ ! -e "$config" ]; then
        change "installing $config (root:kiosk, mode 0640)"
        run install -m 0640 -o 0 -g "${gid:-kiosk}" "$here/config.toml" "$config"
        return
    fi
    unchanged "$config (an existing config is never overwritten)"
    if [ "$(stat -c '%a %u %g' "$config")" != "640 0 $gid" ]; then
        change "setting $config to root:kiosk, mode 0640 (it holds tokens)"
        run chown "0:${gid:-kiosk}" "$config"
        run chmod 0640 "$config"
    fi
    report_new_settings
}

install_units() {
    local units_changed=0 dropin
    ensure_file "$here/systemd/kiosk.service" "$units/kiosk.service" 0644
    units_changed=$((units_changed + changed))
    # The thermometer's bus and the camera as systemd devices, which the kiosk starts after (a
    # missing one holds it back no longer than the drop-in's JobRunningTimeoutSec=).
    ensure_file "$here/systemd/70-kiosk.rules" "$udev_rules" 0644
    if [ "$changed" = 1 ] && command -v udevadm >/dev/null; then
        run udevadm control --reload
        run udevadm trigger --action=change --subsystem-match=i2c-dev --subsystem-match=video4linux
    fi
    for dropin in "${device_dropins[@]}"; do
        ensure_file "$here/systemd/device-wait.conf" "$dropin" 0644
        units_changed=$((units_changed + changed))
    done
    if is_desktop; then
        say "screen: the desktop session (Raspberry Pi OS with Desktop)"
        ensure_file "$here/systemd/desktop.conf" "$dropins/desktop.conf" 0644
        units_changed=$((units_changed + changed))
        ensure_file "$here/systemd/kiosk-xhost.desktop" "$xhost_autostart" 0644
        if command -v raspi-config >/dev/null; then
            if [ "$(raspi-config nonint get_blanking 2>/dev/null)" = 1 ]; then
                unchanged "desktop screen blanking is off"
            else
                change "turning the desktop's screen blanking off"
                run raspi-config nonint do_blanking 1
            fi
        else
            warn "raspi-config not found: turn the desktop's screen blanking off by hand"
        fi
    else
        say "screen: full screen through KMS/DRM (Raspberry Pi OS Lite)"
        local stale
        for stale in "$dropins/desktop.conf" "$xhost_autostart"; do
            if [ -e "$stale" ]; then
                change "removing $stale (not a desktop)"
                run rm -f "$stale"
                units_changed=1
            fi
        done
    fi
    if [ "$units_changed" -gt 0 ]; then
        run systemctl daemon-reload
    fi
    if systemctl is-enabled --quiet kiosk.service 2>/dev/null; then
        unchanged "kiosk.service enabled (starts at boot)"
    else
        change "enabling kiosk.service (starts at boot)"
        run systemctl enable kiosk.service
    fi
}

check_installed() {
    local kiosk="$venv/bin/kiosk" status=0
    say "checking $config"
    if [ "$dry_run" = 1 ]; then
        run "$kiosk" check-config "$config"
        selftest
        return 0
    fi
    "$kiosk" check-config "$config" || status=$?
    if [ "$status" -ne 0 ]; then
        check_failed=1
        printf 'setup.sh: %s has problems (above): fix them, then: sudo systemctl restart kiosk\n' "$config" >&2
    fi
    if ! "$kiosk" selftest --help >/dev/null 2>&1; then
        warn "this kiosk version has no selftest: skipped"
    elif systemctl is-active --quiet kiosk.service 2>/dev/null; then
        say "selftest skipped: the service is running and holds the parts (docs/deploy.md says how to run it)"
    elif ! selftest; then
        warn "selftest found problems (above): check the wiring, the camera cable, the config and the unit's devices"
    fi
}

# Which card the tones and prompts go to: ALSA's default, card 0. Only reported (a Pi 5 has no
# headphone jack; a kiosk without a card runs silently); docs/deploy.md says how to pick another.
sound_output() {
    local cards="$root/proc/asound/cards" first
    first="$(sed -n 's/^ *0 \[\([^] ]*\) *\]: *\(.*\)$/\1 (\2)/p' "$cards" 2>/dev/null || true)"
    if [ -z "$first" ]; then
        warn "no sound card found: the kiosk runs without tones and spoken prompts (docs/deploy.md, \"Voice and tones\")"
        return
    fi
    say "sound output: card 0, $first (another card: AUDIODEV in a drop-in, see docs/deploy.md)"
}

# The spoken prompts, rendered with espeak-ng into the data folder as the kiosk user (its files
# stay the kiosk's own); only what changed is rendered again.
render_clips() {
    local kiosk="$venv/bin/kiosk" status=0
    if [ "$dry_run" = 1 ]; then
        run runuser -u kiosk -- "$kiosk" sound render --config "$config"
        return
    fi
    (cd "$data" && runuser -u kiosk -- "$kiosk" sound render --check --config "$config" >/dev/null 2>&1) || status=$?
    case "$status" in
        0) unchanged "spoken prompts in $data/sound" ;;
        2) ;;  # the config has problems: the check below reports them
        *)
            change "rendering the spoken prompts into $data/sound (espeak-ng)"
            (cd "$data" && runuser -u kiosk -- "$kiosk" sound render --config "$config") \
                || warn "the spoken prompts were not all rendered (above): the kiosk plays tones for those"
            ;;
    esac
}

# systemd manages this machine (sd_booted(): the folder exists only when systemd is PID 1).
systemd_running() { [ -d "$root/run/systemd/system" ]; }

# The [Service] settings of kiosk.service and its drop-ins that make the service's sandbox, one
# "Key=value" a line, in the order systemd applies them: everything except how the service is
# started, supervised and stopped (Type=notify would wait for a READY=1 the selftest never sends).
# Read from the installed files (a dry run reads the ones it would install): the selftest's
# sandbox cannot drift from the service's, and an operator's `systemctl edit kiosk` counts too.
sandbox_properties() {
    local files=() file section line pending key value
    if [ "$dry_run" = 1 ] && [ ! -e "$units/kiosk.service" ]; then
        files=("$here/systemd/kiosk.service")
        if is_desktop; then files+=("$here/systemd/desktop.conf"); fi
    else
        files=("$units/kiosk.service")
        for file in "$dropins"/*.conf; do [ -e "$file" ] && files+=("$file"); done
    fi
    for file in "${files[@]}"; do
        section="" pending=""
        while IFS= read -r line || [ -n "$line" ]; do
            if [[ "$line" == *\\ ]]; then pending+="${line%\\} "; continue; fi
            line="$pending$line" pending=""
            line="${line#"${line%%[![:space:]]*}"}"
            case "$line" in
                ''|'#'*|';'*) continue ;;
                '['*) section="$line"; continue ;;
            esac
            if [ "$section" != "[Service]" ] || [[ "$line" != *=* ]]; then continue; fi
            key="${line%%=*}"
            key="${key%"${key##*[![:space:]]}"}"
            value="${line#*=}"
            value="${value#"${value%%[![:space:]]*}"}"
            case "$key" in
                Type|NotifyAccess|Watchdog*|Timeout*|Restart*|Exec*|RemainAfterExit|PIDFile|BusName) continue ;;
            esac
            printf '%s=%s\n' "$key" "$value"
        done <"$file"
    done
}

# The closing selftest, run inside the service's sandbox when systemd runs the machine: same user,
# devices, file system view and system calls as kiosk.service, so a device the unit does not allow
# shows up now and not on the first visitor.
selftest() {
    local kiosk="$venv/bin/kiosk" args=() property
    if ! systemd_running; then
        say "selftest as the kiosk user (systemd is not running here, so outside the service's sandbox)"
        # From the data directory: lgpio makes its notification pipes in the current directory.
        if [ "$dry_run" = 1 ]; then
            run runuser -u kiosk -- "$kiosk" selftest --config "$config"
            return 0
        fi
        (cd "$data" && runuser -u kiosk -- "$kiosk" selftest --config "$config")
        return
    fi
    say "selftest inside kiosk.service's sandbox (systemd-run with the unit's user, devices and protections)"
    while IFS= read -r property; do args+=(-p "$property"); done < <(sandbox_properties)
    run systemd-run --wait --pipe --collect --quiet --unit=kiosk-selftest "${args[@]}" \
        "$kiosk" selftest --config "$config"
}

pi_install() {
    need_root install
    # picamera2 and pygame come from apt: the pip builds lack the camera bindings and the KMS/DRM
    # driver; numpy and Pillow are the builds they were made against. SDL's KMS/DRM driver draws
    # through EGL and GLES with Mesa's GPU drivers, which Lite lacks. Blinka's `import board` drives
    # the pins with gpiod (libgpiod), lgpio or RPi.GPIO (rpi-lgpio: on every model, the Pi 5 too),
    # depending on its version. docs/deploy.md has the table.
    local packages=(python3-venv python3-picamera2 python3-pygame python3-numpy python3-pil
        python3-libgpiod python3-lgpio python3-rpi-lgpio libgbm1 libegl1 libgles2 libgl1-mesa-dri
        fonts-wqy-microhei libzbar0 i2c-tools espeak-ng alsa-utils)
    is_desktop && packages+=(x11-xserver-utils)
    apt_install "${packages[@]}"
    boot_config
    # No console blanking, and no blinking text cursor on the console under the kiosk's screen.
    cmdline_param consoleblank 0
    cmdline_param vt.global_cursor_default 0
    ensure_file "$here/systemd/i2c-dev.conf" "$modules_conf" 0644
    if [ "$changed" = 1 ] && [ -z "$root" ]; then run modprobe i2c-dev; fi
    ensure_user
    ensure_dir "$data" 0750 kiosk kiosk
    install_program
    install_config
    install_units
    sound_output
    render_clips
    if [ "$changes" -gt 0 ] && systemctl is-active --quiet kiosk.service 2>/dev/null; then
        say "restarting the running kiosk on the new install"
        run systemctl try-restart kiosk.service
    fi
    check_failed=0
    check_installed
    finish
    if [ "$reboot_needed" = 1 ]; then
        say "reboot to apply the I2C, camera and console settings: sudo reboot"
    fi
    if [ "$dry_run" = 0 ]; then
        say "installed. Logs: journalctl -u kiosk -f   Config: $config (then: sudo systemctl reload kiosk)"
    fi
    return "$check_failed"
}

pi_uninstall() {
    need_root uninstall
    if systemctl is-enabled --quiet kiosk.service 2>/dev/null || systemctl is-active --quiet kiosk.service 2>/dev/null; then
        change "stopping and disabling kiosk.service"
        run systemctl disable --now kiosk.service
    fi
    local path removed=0
    for path in "$units/kiosk.service" "$dropins" "${device_dropins[@]%/*}" "$udev_rules" "$xhost_autostart" \
        "$modules_conf" "$opt"; do
        if [ -e "$path" ]; then
            change "removing $path"
            run rm -rf "$path"
            removed=1
        else
            unchanged "$path is not there"
        fi
    done
    if [ "$removed" = 1 ]; then run systemctl daemon-reload; fi
    if [ "$purge" = 1 ]; then
        for path in "$etc" "$data"; do
            if [ -e "$path" ]; then
                change "removing $path"
                run rm -rf "$path"
            fi
        done
        if getent passwd kiosk >/dev/null; then
            change "removing the kiosk user"
            run userdel kiosk
        fi
    else
        say "kept $config and $data (the event log): --uninstall --purge removes them and the kiosk user"
    fi
    finish "the kiosk was not installed"
    say "left in place: the apt packages, and the I2C, camera and console lines in $boot/config.txt and cmdline.txt"
}

# One closing line: how many changes, or $1 when there were none.
finish() {
    if [ "$changes" -eq 0 ]; then
        say "nothing changed: ${1:-everything was already in place}"
    elif [ "$dry_run" = 1 ]; then
        say "dry run: $changes change(s) would be made"
    else
        say "$changes change(s) made"
    fi
}

if [ "$uninstall" = 1 ]; then
    [ "$mode" = pi ] || die "--uninstall removes the Raspberry Pi install (add --pi to do it on this machine)"
    pi_uninstall
    exit 0
fi
case "$mode" in
    pi) pi_install ;;
    dev) dev_install ;;
    pi-stack) pi_stack_install ;;
esac
