#!/usr/bin/env bash
# The soak (`make soak`, not in CI): builds the release loopkit-soak (Tools/soak) and runs it, passing the
# environment (SOAK_TASKS, SOAK_PRODUCERS, SOAK_EPOCH_TASKS, SOAK_BACKEND, SOAK_TIMEOUT_S, SOAK_FAULTS, ...;
# see `loopkit-soak --help`) and any arguments through. The output goes to the terminal and to
# .build-soak/soak-<UTC time>.log; the exit status is the soak's (0 only on PASS, 3 when its watchdog fired).
#
#   scripts/soak.sh [soak flags...]        build (.build-soak) and run here
#   scripts/soak.sh --static [--run] [...] build .build-soak-static/loopkit-soak for another x86-64/arm64 Linux
#                                          machine without a Swift toolchain: Swift runtime and liburing linked
#                                          in statically (libc and friends stay shared); --run also runs it here
#   SOAK_SELFTEST=drop scripts/soak.sh     prove the checks work: a task dropped on purpose must make it FAIL
#   SOAK_FAULTS=on scripts/soak.sh         arm the core's fault-injection points (lk_fault.h) at random, at low
#                                          rates, for the whole run (`make soak SOAK_FAULTS=on` or
#                                          `SOAK_FAULTS=on make soak` too): wake eventfd EINTR/EAGAIN/EIO, poll
#                                          wait EINTR, allocation failures; every refusal must be typed
#                                          (.outOfMemory, retried), nothing lost; the report lists, per point,
#                                          the faults injected
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}

static=0
run=1
args=()
for a in "$@"; do
  case "$a" in
    --static) static=1; run=0 ;;
    --run) run=1 ;;
    *) args+=("$a") ;;
  esac
done

build_started=$(date +%s)
if [ "$static" = 1 ]; then
  scratch=.build-soak-static
  # Our own liburing.pc puts a directory holding only liburing.a first on the library path, so the
  # CLiburing module map's -luring links the static archive (as `make bench-binary` does).
  libs="$PWD/$scratch/static-libs"
  mkdir -p "$libs/pkgconfig"
  ln -sfn "$(pkg-config --variable=libdir liburing)/liburing.a" "$libs/liburing.a"
  printf 'Name: liburing\nDescription: static\nVersion: %s\nCflags: %s\nLibs: -L%s -luring\n' \
    "$(pkg-config --modversion liburing)" "$(pkg-config --cflags liburing)" "$libs" > "$libs/pkgconfig/liburing.pc"
  PKG_CONFIG_PATH="$libs/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
    "$SWIFT" build -c release --product loopkit-soak --static-swift-stdlib --scratch-path "$scratch"
  cp "$scratch/release/loopkit-soak" "$scratch/loopkit-soak"
  bin="$scratch/loopkit-soak"
  echo "soak.sh: built $bin in $(( $(date +%s) - build_started )) s; shared libraries it needs:"
  ldd "$bin" || true
  if ldd "$bin" 2>/dev/null | grep -Eq 'liburing|libswift|libdispatch|libFoundation'; then
    echo "soak.sh: $bin still needs liburing or the Swift runtime as shared libraries" >&2
    exit 1
  fi
  echo "soak.sh: copy $bin to the other machine and run it there (SOAK_* variables as here)."
else
  scratch=.build-soak
  "$SWIFT" build -c release --product loopkit-soak --scratch-path "$scratch"
  bin="$scratch/release/loopkit-soak"
  echo "soak.sh: built $bin in $(( $(date +%s) - build_started )) s"
fi
[ "$run" = 1 ] || exit 0

mkdir -p "$scratch"
log="$scratch/soak-$(date -u +%Y%m%dT%H%M%SZ).log"
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)"
  echo "# $("$SWIFT" --version 2>&1 | head -1)"
  echo "# env: $(env | grep -E '^(SOAK_|LOOPKIT_)' | sort | tr '\n' ' ')"
} > "$log"
set +e
"$bin" ${args[@]+"${args[@]}"} 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
echo "soak.sh: exit status $status; log: $log"
exit "$status"
