#!/usr/bin/env bash
# require.sh PACKAGE... — make sure the Debian packages a target needs are installed, installing the missing
# ones with apt-get. The one place in the repository that installs system packages: every make target and
# script that needs one calls this first (the Makefile through $(call require,...)).
#
# A package counts as present when its probe passes (below: the tool or pkg-config module it provides, so a
# machine that has it from elsewhere is not forced through apt), or else when dpkg lists it as installed.
# Missing packages are installed in one `apt-get update` + `apt-get install`, as root or through sudo, after a
# line saying what is installed. If that fails, or there is no apt-get, the script prints one line naming the
# package, why, and the command to install it by hand, and exits 1.
#
# REQUIRE_DRY_RUN=1 lists what would be installed and exits 1 when something is missing (no changes).
set -uo pipefail

probe() {
    case "$1" in
        pkg-config) command -v pkg-config ;;
        liburing-dev) command -v pkg-config && pkg-config --exists liburing ;;
        libuv1-dev) command -v pkg-config && pkg-config --exists libuv ;;
        spin) command -v spin ;;
        python3) command -v python3 ;;
        python3-pip) command -v python3 && python3 -m pip --version ;;
        linux-perf) command -v perf ;;
        strace) command -v strace ;;
        *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' ;;
    esac
}

missing=()
for p in "$@"; do
    probe "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

hint="apt-get install -y ${missing[*]}"
if [ "${REQUIRE_DRY_RUN:-0}" = 1 ]; then
    echo "require: missing ${missing[*]} (install with: sudo $hint)"
    exit 1
fi

fail() {
    echo "require: cannot install ${missing[*]}: $1; install it by hand: sudo $hint" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found"
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    fail "not root and no sudo"
fi

echo "require: installing ${missing[*]} (apt-get)" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1; then
    reason=$(sed -n 's/^E: //p' "$log" | head -1)
    fail "apt-get update failed${reason:+ ($reason)}"
fi
if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    reason=$(sed -n 's/^E: //p' "$log" | head -1)
    fail "apt-get install failed${reason:+ ($reason)}"
fi
for p in "${missing[@]}"; do
    probe "$p" >/dev/null 2>&1 || fail "$p is still missing after apt-get install"
done
