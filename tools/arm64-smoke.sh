#!/usr/bin/env bash
# Smoke-test the kiosk on Raspberry Pi OS Bookworm's arm64 software stack, emulated on this machine.
#
#   sudo tools/arm64-smoke.sh           build (or reuse) the arm64 root, then run the checks in it
#   sudo tools/arm64-smoke.sh --fresh   throw the cached root away and build it again
#   tools/arm64-smoke.sh --help
#
# What it builds, in ARM64_ROOT (default .cache/arm64-root, git-ignored):
#   - a Debian bookworm arm64 root: debootstrap --foreign, second stage through qemu-user-static;
#   - from apt inside it: python3, python3-pygame, python3-numpy, python3-pil, python3-venv,
#     fonts-wqy-microhei, libzbar0 (the versions Raspberry Pi OS Bookworm ships);
#   - a venv with --system-site-packages in /opt/kiosk/venv, as setup.sh makes on the Pi;
#   - the project's wheel, built here from the working tree, and its dependencies as arm64 wheels
#     from PyPI, with pygame, numpy and pillow pinned to the apt versions (a constraints file
#     written by the root's own python3), so pip never replaces them.
# Then, inside the root: `kiosk demo --headless --visitors 3` (its JSON line must say every
# visitor was handled as expected) and `kiosk scan` on a QR code rendered with segno, with both
# decoders (zxing-cpp and pyzbar/libzbar0).
#
# A second run reuses the root, the apt packages and the venv, and reinstalls only the project.
# Needs root, a Linux kernel with binfmt_misc, network to a Debian mirror and to PyPI. Installs
# debootstrap and qemu-user-static with apt-get when they are missing.
#
# Environment:
#   ARM64_ROOT        where the root lives (default: <project>/.cache/arm64-root)
#   DEBIAN_MIRROR     Debian mirror (default: the one this machine's apt uses, else deb.debian.org)
#   DEBIAN_SECURITY   security mirror (default: likewise)
#   SMOKE_TIMEOUT     seconds allowed for each command run in the root (default: 900)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${ARM64_ROOT:-$here/.cache/arm64-root}"
suite=bookworm
venv=/opt/kiosk/venv
work=/opt/kiosk-smoke          # inside the root: wheels, constraints, outputs
timeout_s="${SMOKE_TIMEOUT:-900}"
apt_packages=(python3 python3-pygame python3-numpy python3-pil python3-venv
              fonts-wqy-microhei libzbar0 ca-certificates)
pinned=(pygame numpy Pillow)   # apt's copies; pip must keep them
qr_text="KIOSK-ARM64-SMOKE 检查站"
fresh=0

for arg in "$@"; do
    case "$arg" in
        --fresh) fresh=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "arm64-smoke: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

die() { printf 'arm64-smoke: %s\n' "$*" >&2; exit 1; }
log() { printf '    %s\n' "$*"; }

started=$SECONDS
current_step=""
step() {
    # step "title" function [args...]: run one step, print its duration.
    local title="$1" t0=$SECONDS
    shift
    current_step="$title"
    printf '==> %s\n' "$title"
    "$@"
    printf '    %s: %ds\n' "$title" $((SECONDS - t0))
    current_step=""
}

tmp="$(mktemp -d)"
# Unmount everything mounted under the root, deepest first.
unmount_root() {
    local mnt
    [ -d "$root" ] || return 0
    while read -r mnt; do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
    done < <(awk -v r="$root/" 'index($2 "/", r) == 1 { print $2 }' /proc/mounts | sort -r)
}
finish() {
    local rc=$?
    unmount_root
    rm -rf "$tmp"
    if [ "$rc" -ne 0 ]; then
        printf 'arm64-smoke: FAILED%s after %ds\n' "${current_step:+ in step \"$current_step\"}" \
            $((SECONDS - started)) >&2
    fi
    exit "$rc"
}
trap finish EXIT

remove_root() {
    unmount_root
    if awk -v r="$root/" 'index($2 "/", r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        die "something is still mounted under $root; not removing it"
    fi
    rm -rf --one-file-system "$root"
}

# Run a command inside the root with a clean environment (nothing of the host's pip or proxy
# settings leaks in), the venv first on PATH.
in_root() {
    local rc=0
    timeout "$timeout_s" chroot "$root" /usr/bin/env -i \
        PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" HOME=/root LANG=C.UTF-8 \
        PIP_CERT="$work/host-ca.crt" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        PYGAME_HIDE_SUPPORT_PROMPT=1 "$@" || rc=$?
    if [ "$rc" = 124 ]; then
        printf 'arm64-smoke: timed out after %ss (SMOKE_TIMEOUT): %s\n' "$timeout_s" "$*" >&2
    fi
    return "$rc"
}

# The first URI of this machine's apt sources whose path ends in /$1.
host_apt_uri() {
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    cat "${files[@]}" 2>/dev/null | grep -v '^[[:space:]]*#' \
        | grep -oE "https?://[^[:space:]]+/$1/?([[:space:]]|$)" | head -n 1 | tr -d '[:space:]' || true
}
mirror="${DEBIAN_MIRROR:-$(host_apt_uri debian)}"
mirror="${mirror:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY:-$(host_apt_uri debian-security)}"
security="${security:-http://deb.debian.org/debian-security}"

check_host() {
    [ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and binfmt_misc need it)"
    [ "$(uname -s)" = Linux ] || die "needs Linux (binfmt_misc)"
    command -v python3 >/dev/null || die "needs python3 on this machine (to build the project's wheel)"
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    if [ "${#missing[@]}" -gt 0 ]; then
        command -v apt-get >/dev/null || die "install ${missing[*]} first"
        log "installing ${missing[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    log "mirror $mirror, security $security"
    log "root $root"
}

# binfmt_misc must run aarch64 ELF files through qemu. With the F flag the kernel opens the
# interpreter once, at registration, so it works inside the chroot without a copy there.
binfmt=/proc/sys/fs/binfmt_misc
interpreter=""
check_binfmt() {
    if [ ! -e "$binfmt/register" ]; then
        mount -t binfmt_misc binfmt_misc "$binfmt" \
            || die "binfmt_misc is not mounted and cannot be mounted at $binfmt"
    fi
    if [ ! -e "$binfmt/qemu-aarch64" ]; then
        if command -v update-binfmts >/dev/null; then
            update-binfmts --enable qemu-aarch64 2>/dev/null || true
        fi
    fi
    if [ ! -e "$binfmt/qemu-aarch64" ]; then
        # The same magic and mask as Debian's qemu-user-static, with the F flag.
        printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:FP' \
            > "$binfmt/register" || die "cannot register qemu-aarch64 with binfmt_misc"
    fi
    grep -qx enabled "$binfmt/qemu-aarch64" || die "binfmt_misc entry qemu-aarch64 is disabled"
    interpreter="$(awk '$1 == "interpreter" { print $2 }' "$binfmt/qemu-aarch64")"
    local flags
    flags="$(awk '$1 == "flags:" { print $2 }' "$binfmt/qemu-aarch64")"
    log "qemu-aarch64: $interpreter, flags $flags"
    case "$flags" in
        *F*) interpreter="" ;;     # nothing to copy into the root
        *) log "no F flag: the interpreter is copied into the root" ;;
    esac
}

copy_interpreter() {
    if [ -n "$interpreter" ]; then
        mkdir -p "$root$(dirname "$interpreter")"
        cp -L "$interpreter" "$root$interpreter"
    fi
}

marker() { printf '%s/.arm64-smoke/%s' "$root" "$1"; }

stage1() {
    if [ "$fresh" = 1 ] && [ -e "$root" ]; then
        log "--fresh: removing the old root"
        remove_root
    fi
    if [ -e "$(marker stage1)" ]; then
        log "reused"
        return
    fi
    if [ -e "$root" ]; then
        log "an unfinished root is there: starting over"
        remove_root
    fi
    mkdir -p "$root"
    debootstrap --arch=arm64 --foreign --variant=minbase "$suite" "$root" "$mirror" \
        > "$tmp/debootstrap1.log" 2>&1 || { tail -n 20 "$tmp/debootstrap1.log" >&2; return 1; }
    mkdir -p "$root/.arm64-smoke"
    touch "$(marker stage1)"
}

stage2() {
    copy_interpreter
    if [ -e "$(marker stage2)" ]; then
        log "reused"
    else
        chroot "$root" /debootstrap/debootstrap --second-stage > "$tmp/debootstrap2.log" 2>&1 \
            || { tail -n 20 "$tmp/debootstrap2.log" >&2; return 1; }
        touch "$(marker stage2)"
    fi
    local arch
    arch="$(chroot "$root" /usr/bin/uname -m)"
    [ "$arch" = aarch64 ] || die "the root runs as $arch, not aarch64"
    log "$(chroot "$root" /usr/bin/dpkg --print-architecture), Debian $(cat "$root/etc/debian_version")"
}

mount_root() {
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mkdir -p "$root/dev/shm"
    mountpoint -q "$root/dev/shm" || mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root$work"
    # pip inside the root trusts the CAs this machine trusts (a TLS-inspecting proxy, say).
    cp -L "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$root$work/host-ca.crt"
}

apt_install() {
    local want="${apt_packages[*]} | $mirror | $security"
    if [ -e "$(marker apt)" ] && [ "$(cat "$(marker apt)")" = "$want" ]; then
        log "reused"
    else
        printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
            "$mirror" "$suite" "$mirror" "$suite" "$security" "$suite" > "$root/etc/apt/sources.list"
        in_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "$@"' apt "${apt_packages[@]}" \
            > "$tmp/apt.log" 2>&1 || { tail -n 20 "$tmp/apt.log" >&2; return 1; }
        in_root apt-get clean
        printf '%s\n' "$want" > "$(marker apt)"
    fi
    # shellcheck disable=SC2016  # dpkg-query's own format fields
    log "$(in_root dpkg-query -W -f '${Package} ${Version}  ' python3 python3-pygame python3-numpy python3-pil)"
}

make_venv() {
    if [ -x "$root$venv/bin/python" ]; then
        log "reused"
    else
        in_root /usr/bin/python3 -m venv --system-site-packages "$venv"
    fi
    log "$(in_root python --version), $(in_root pip --version | cut -d' ' -f1-2)"
}

build_wheel() {
    local f
    rm -rf "$root$work/wheels"
    mkdir -p "$tmp/src" "$root$work/wheels"
    for f in pyproject.toml setup.cfg setup.py MANIFEST.in README.md LICENSE kiosk; do
        [ -e "$here/$f" ] && cp -r "$here/$f" "$tmp/src/"
    done
    find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
    python3 -m pip wheel -q --no-deps -w "$root$work/wheels" "$tmp/src" > "$tmp/wheel.log" 2>&1 \
        || { tail -n 20 "$tmp/wheel.log" >&2; return 1; }
    log "$(cd "$root$work/wheels" && ls)"
}

pip_install() {
    # The pins come from the root's own python3, so they follow whatever apt installed.
    in_root /usr/bin/python3 -c '
import sys
from importlib.metadata import version
for name in sys.argv[1:]:
    print(f"{name}=={version(name)}")' "${pinned[@]}" > "$root$work/constraints.txt"
    log "constraints: $(tr '\n' ' ' < "$root$work/constraints.txt")"
    local wheel
    wheel="$(cd "$root$work/wheels" && ls kiosk-*.whl)"
    # Uninstall first: the version number does not change when the code does.
    in_root pip uninstall -q -y kiosk > /dev/null 2>&1 || true
    in_root pip install --only-binary=:all: -c "$work/constraints.txt" "$work/wheels/$wheel" \
        > "$tmp/pip.log" 2>&1 || { tail -n 20 "$tmp/pip.log" >&2; return 1; }
    # apt's pygame, numpy and Pillow must still be the ones imported.
    in_root python -c '
import sys, numpy, PIL, pygame
for m in (numpy, PIL, pygame):
    where = m.__file__
    print(f"    {m.__name__} {m.__version__} from {where}")
    if not where.startswith("/usr/lib/python3/dist-packages/"):
        sys.exit(f"{m.__name__} does not come from apt")'
}

run_demo() {
    in_root sh -c 'cd /tmp && kiosk demo --headless --visitors 3' \
        > "$tmp/demo.out" 2> "$tmp/demo.err" \
        || { tail -n 30 "$tmp/demo.err" >&2; return 1; }
    local line
    line="$(tail -n 1 "$tmp/demo.out")"
    printf '%s\n' "$line" > "$root$work/demo.json"
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
ok = d["visitors"] == 3 and d["as_expected"] == 3 and d["events_received"] == 3
sys.exit(0 if ok else "the demo did not handle every visitor as expected")' "$line"
    log "$line"
}

run_scan() {
    in_root python -c '
import segno, sys
segno.make(sys.argv[1], error="m").save(sys.argv[2], scale=8, border=4)' \
        "$qr_text" "$work/qr.png"
    local decoder line
    for decoder in zxing pyzbar; do
        line="$(in_root kiosk scan --decoder "$decoder" "$work/qr.png")"
        python3 -c '
import json, sys
d = json.loads(sys.argv[1].splitlines()[-1])
sys.exit(0 if sys.argv[2] in d["codes"] else "the code was not read")' "$line" "$qr_text"
        log "$decoder: $line"
    done
}

step "host tools" check_host
step "binfmt_misc (qemu-aarch64)" check_binfmt
step "debootstrap $suite arm64, first stage" stage1
step "debootstrap, second stage (emulated)" stage2
mount_root
step "apt packages in the root" apt_install
step "venv with --system-site-packages" make_venv
step "project wheel" build_wheel
step "pip install (arm64 wheels, apt versions pinned)" pip_install
step "kiosk demo --headless --visitors 3" run_demo
step "kiosk scan" run_scan
printf '==> arm64 smoke passed in %ds\n' $((SECONDS - started))
