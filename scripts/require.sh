#!/usr/bin/env bash
# require.sh PACKAGE... — make sure the packages a target needs are installed, installing the missing ones.
# The one place in the repository that installs packages: every make target and script that needs one calls
# this first (the Makefile through $(call require,...)).
#
# A plain PACKAGE is a Debian package. It counts as present when its probe passes (below: the tool or
# pkg-config module it provides, so a machine that has it from elsewhere is not forced through apt), or else
# when dpkg lists it as installed. Missing packages are installed in one `apt-get update` + `apt-get install`,
# as root or through sudo, after a line saying what is installed.
#
# pip:NAME is a PyPI package, installed with pip into the bench's Python environment, bench/.venv (a venv,
# created when missing; REQUIRE_VENV names another). It counts as present when that environment's pip lists
# it. Creating the venv needs python3 with its venv module, which the script first requires from Debian
# (python3, python3-venv) like any other package.
#
# If an install fails, or there is no apt-get, the script prints one line naming the package, why, and the
# command to install it by hand, and exits 1.
#
# REQUIRE_DRY_RUN=1 lists what would be installed and exits 1 when something is missing (no changes).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${REQUIRE_VENV:-$root/bench/.venv}

probe() {
    case "$1" in
        pkg-config) command -v pkg-config ;;
        liburing-dev) command -v pkg-config && pkg-config --exists liburing ;;
        libuv1-dev) command -v pkg-config && pkg-config --exists libuv ;;
        spin) command -v spin ;;
        python3) command -v python3 ;;
        python3-pip) command -v python3 && python3 -m pip --version ;;
        python3-venv) command -v python3 && python3 -c 'import venv, ensurepip' ;;
        linux-perf) command -v perf ;;
        strace) command -v strace ;;
        pip:*) "$venv/bin/python" -m pip show "${1#pip:}" ;;
        *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' ;;
    esac
}

apt_missing=()
pip_missing=()
for p in "$@"; do
    probe "$p" >/dev/null 2>&1 && continue
    case "$p" in
        pip:*) pip_missing+=("${p#pip:}") ;;
        *) apt_missing+=("$p") ;;
    esac
done
if [ ${#pip_missing[@]} -gt 0 ] && [ ! -x "$venv/bin/python" ]; then
    for p in python3 python3-venv; do
        probe "$p" >/dev/null 2>&1 || [[ " ${apt_missing[*]-} " == *" $p "* ]] || apt_missing+=("$p")
    done
fi
[ ${#apt_missing[@]} -eq 0 ] && [ ${#pip_missing[@]} -eq 0 ] && exit 0

apt_hint="sudo apt-get install -y ${apt_missing[*]-}"
pip_hint="python3 -m venv $venv && $venv/bin/python -m pip install ${pip_missing[*]-}"
if [ "${REQUIRE_DRY_RUN:-0}" = 1 ]; then
    [ ${#apt_missing[@]} -gt 0 ] && echo "require: missing ${apt_missing[*]} (install with: $apt_hint)"
    [ ${#pip_missing[@]} -gt 0 ] && echo "require: missing ${pip_missing[*]} from PyPI (install with: $pip_hint)"
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# fail WHAT REASON HINT: the one line, then exit 1.
fail() {
    echo "require: cannot install $1: $2; install it by hand: $3" >&2
    exit 1
}

# The first line of the log that reads as an error (apt's "E: ..." or pip's "ERROR: ...").
reason() {
    sed -n 's/^E: //p; s/^ERROR: //p' "$log" | head -1
}

if [ ${#apt_missing[@]} -gt 0 ]; then
    what="${apt_missing[*]}"
    command -v apt-get >/dev/null 2>&1 || fail "$what" "apt-get not found" "$apt_hint"
    if [ "$(id -u)" = 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        fail "$what" "not root and no sudo" "$apt_hint"
    fi
    echo "require: installing $what (apt-get)" >&2
    if ! "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1; then
        r=$(reason); fail "$what" "apt-get update failed${r:+ ($r)}" "$apt_hint"
    fi
    if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${apt_missing[@]}" >"$log" 2>&1; then
        r=$(reason); fail "$what" "apt-get install failed${r:+ ($r)}" "$apt_hint"
    fi
    for p in "${apt_missing[@]}"; do
        probe "$p" >/dev/null 2>&1 || fail "$p" "still missing after apt-get install" "$apt_hint"
    done
fi

if [ ${#pip_missing[@]} -gt 0 ]; then
    what="${pip_missing[*]}"
    echo "require: installing $what into ${venv#"$root"/} (pip, from PyPI)" >&2
    if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >"$log" 2>&1; then
        r=$(tail -1 "$log"); fail "$what" "python3 -m venv failed${r:+ ($r)}" "$pip_hint"
    fi
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pip_missing[@]}" >"$log" 2>&1; then
        r=$(reason); fail "$what" "pip install failed${r:+ ($r)}" "$pip_hint"
    fi
    for p in "${pip_missing[@]}"; do
        probe "pip:$p" >/dev/null 2>&1 || fail "$p" "still missing after pip install" "$pip_hint"
    done
fi
exit 0
