#!/usr/bin/env bash
# Install the checkpoint kiosk.
#
#   ./setup.sh                on a Raspberry Pi: the system install (run as root);
#                             anywhere else: the development/simulator venv in .venv
#   ./setup.sh --pi           take the Raspberry Pi path on any machine
#   ./setup.sh --dev          take the development path, even on a Pi
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
# stand-ins for apt-get, useradd, systemctl ... first on PATH).
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
groups=(gpio i2c video render input)

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

# ---------------------------------------------------------------- development path

dev_install() {
    # libzbar0: the pyzbar decoder; fonts-wqy-microhei: Chinese on the screen;
    # the tests check this script (with shellcheck) and the units (with systemd-analyze), and
    # open the demo's window on a virtual display (xvfb).
    if command -v apt-get >/dev/null; then
        apt_install libzbar0 fonts-wqy-microhei shellcheck systemd xvfb xauth
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
        change "creating $venv (--system-site-packages: the apt builds of picamera2 and pygame)"
        run install -d -m 0755 "$opt"
        run python3 -m venv --system-site-packages "$venv"
    fi
    local stamp
    stamp="$(source_stamp)"
    if [ -x "$venv/bin/kiosk" ] && [ "$(cat "$opt/installed-from" 2>/dev/null)" = "$stamp" ]; then
        unchanged "the kiosk program in $venv"
    else
        change "installing the kiosk program into $venv"
        run "$venv/bin/pip" install --quiet --disable-pip-version-check "$here"
        if [ "$dry_run" = 1 ]; then
            printf '    would write: %s\n' "$opt/installed-from"
        else
            printf '%s\n' "$stamp" >"$opt/installed-from"
            # pip may have put a PyPI pygame in the venv, which lacks the KMS/DRM video driver.
            if ! "$venv/bin/python" -c 'import pygame, sys; sys.exit(not pygame.__file__.startswith("/usr/"))' 2>/dev/null; then
                warn "$venv has its own pygame, not Raspberry Pi OS's python3-pygame: full screen on Lite needs the apt build (KMS/DRM)"
            fi
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
    local units_changed=0
    ensure_file "$here/systemd/kiosk.service" "$units/kiosk.service" 0644
    units_changed=$((units_changed + changed))
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
        run runuser -u kiosk -- "$kiosk" selftest --config "$config"
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
    else
        say "selftest (as the kiosk user: its groups and devices)"
        # From the data directory: lgpio makes its notification pipes in the current directory.
        if ! (cd "$data" && runuser -u kiosk -- "$kiosk" selftest --config "$config"); then
            warn "selftest found problems (above): check the wiring, the camera cable and the config"
        fi
    fi
}

pi_install() {
    need_root install
    local packages=(python3-venv python3-picamera2 python3-pygame python3-numpy python3-libgpiod
        python3-lgpio fonts-wqy-microhei libzbar0 i2c-tools)
    is_desktop && packages+=(x11-xserver-utils)
    # picamera2 and pygame come from apt: the pip builds lack the camera bindings and the KMS/DRM driver.
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
    for path in "$units/kiosk.service" "$dropins" "$xhost_autostart" "$modules_conf" "$opt"; do
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
esac
