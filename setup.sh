#!/usr/bin/env bash
# Install the checkpoint kiosk.
#
#   ./setup.sh            on a Raspberry Pi: the system install (run as root);
#                         anywhere else: a development/simulator venv in .venv
#   ./setup.sh --pi       take the Raspberry Pi path on any machine
#   ./setup.sh --dev      take the development path, even on a Pi
#   ./setup.sh --dry-run  print every action without doing it
#
# Safe to run again: every step checks before it changes anything.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=""
dry_run=0

for arg in "$@"; do
    case "$arg" in
        --pi) mode=pi ;;
        --dev) mode=dev ;;
        --dry-run) dry_run=1 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "$mode" ]; then
    if grep -qs "Raspberry Pi" /proc/device-tree/model; then mode=pi; else mode=dev; fi
fi

say() { printf '==> %s\n' "$*"; }
run() {
    if [ "$dry_run" = 1 ]; then printf '    would run: %s\n' "$*"; else "$@"; fi
}

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup.sh: missing system packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        return 0
    fi
    say "installing system packages: ${missing[*]}"
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

dev_install() {
    # libzbar0: the pyzbar decoder; fonts-wqy-microhei: Chinese on the screen.
    if command -v apt-get >/dev/null; then
        apt_install libzbar0 fonts-wqy-microhei
    fi
    local python=python3
    python_ok "$python" || { echo "setup.sh: Python 3.11 or newer is needed" >&2; exit 1; }
    if [ ! -x "$here/.venv/bin/python" ]; then
        say "creating the development venv in .venv"
        run "$python" -m venv "$here/.venv"
    fi
    say "installing the kiosk and its test tools into .venv"
    run "$here/.venv/bin/pip" install --quiet --disable-pip-version-check -e "${here}[test]"
    say "ready: .venv/bin/kiosk demo   |   .venv/bin/python -m pytest"
}

pi_install() {
    if [ "$dry_run" = 0 ] && [ "$(id -u)" -ne 0 ]; then
        echo "setup.sh: the Raspberry Pi install must run as root (sudo ./setup.sh)" >&2
        exit 1
    fi
    local venv=/opt/kiosk/venv
    # picamera2 and pygame come from apt: the pip builds lack the camera bindings and the KMS/DRM driver.
    apt_install python3-venv python3-picamera2 python3-pygame fonts-wqy-microhei libzbar0 i2c-tools
    if command -v raspi-config >/dev/null; then
        say "enabling I2C"
        run raspi-config nonint do_i2c 0
    fi
    if ! id kiosk >/dev/null 2>&1; then
        say "creating the kiosk system user"
        run useradd --system --home-dir /var/lib/kiosk --shell /usr/sbin/nologin kiosk
    fi
    for group in gpio i2c video; do
        if getent group "$group" >/dev/null && ! id -nG kiosk 2>/dev/null | grep -qw "$group"; then
            run usermod -aG "$group" kiosk
        fi
    done
    if [ ! -x "$venv/bin/python" ]; then
        say "creating $venv (with the system's picamera2 and pygame)"
        run install -d /opt/kiosk
        run python3 -m venv --system-site-packages "$venv"
    fi
    say "installing the kiosk into $venv"
    run "$venv/bin/pip" install --quiet --disable-pip-version-check "$here"
    run install -d -o kiosk -g kiosk -m 0750 /var/lib/kiosk
    run install -d -m 0755 /etc/kiosk
    if [ ! -e /etc/kiosk/config.toml ]; then
        say "installing /etc/kiosk/config.toml"
        run install -o root -g kiosk -m 0640 "$here/config.toml" /etc/kiosk/config.toml
    else
        say "keeping the existing /etc/kiosk/config.toml"
    fi
    if ! cmp -s "$here/systemd/kiosk.service" /etc/systemd/system/kiosk.service; then
        say "installing the kiosk service"
        run install -m 0644 "$here/systemd/kiosk.service" /etc/systemd/system/kiosk.service
        run systemctl daemon-reload
    fi
    run systemctl enable kiosk.service
    run "$venv/bin/kiosk" check-config /etc/kiosk/config.toml
    say "installed; start it with: systemctl restart kiosk   (logs: journalctl -u kiosk -f)"
}

case "$mode" in
    pi) pi_install ;;
    dev) dev_install ;;
esac
