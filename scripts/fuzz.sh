#!/usr/bin/env bash
# scripts/fuzz.sh — builds the libFuzzer harnesses in fuzz/ and runs each for FUZZ_SECONDS (default 60).
#
#   FUZZ_SECONDS=10 bash scripts/fuzz.sh      every harness, 10 s each (what CI runs, through make fuzz)
#   FUZZ_ONLY=ring bash scripts/fuzz.sh       one harness
#
# C harnesses (fuzz/<name>.c) link every Sources/CLoopCore/*.c, built with the toolchain's clang under
# -fsanitize=fuzzer,address,undefined; the Swift harness (fuzz/timerheap.swift) is compiled with the real
# Sources/LoopKit/Timers.swift under swiftc -sanitize=fuzzer,address. Everything goes to .build-fuzz/:
#   bin/<name>       the harness binaries           corpus/<name>/   the scratch corpus (new units land here)
#   obj/             the C core's objects           crashes/         crash, leak and timeout inputs
#   logs/<name>.log  the fuzzer's output            summary.txt      one line per harness, as printed
# Each run reads the scratch corpus first and the committed seeds (fuzz/corpus/<name>/) second, so libFuzzer
# only ever writes to the scratch one; the script checks that the committed seeds are unchanged afterwards.
# Exit status: non-zero when any harness crashed (its log tail and crash file are printed) or failed to build.
set -euo pipefail

cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_ONLY=${FUZZ_ONLY:-}
HARNESSES=(mpsc chunkq ring ingress_pp timerheap)
OUT=.build-fuzz

if ! [[ $FUZZ_SECONDS =~ ^[0-9]+$ ]] || ((FUZZ_SECONDS < 1)); then
    echo "fuzz.sh: FUZZ_SECONDS must be a positive number of seconds, not '$FUZZ_SECONDS'" >&2
    exit 2
fi
if [[ -n $FUZZ_ONLY ]]; then
    if ! [[ " ${HARNESSES[*]} " == *" $FUZZ_ONLY "* ]]; then
        echo "fuzz.sh: FUZZ_ONLY='$FUZZ_ONLY' is not one of: ${HARNESSES[*]}" >&2
        exit 2
    fi
    HARNESSES=("$FUZZ_ONLY")
fi

# ---- Toolchain: the clang that ships with swiftc (it has the libFuzzer runtime), and lld when present.
SWIFTC=${SWIFTC:-$(command -v swiftc || true)}
if [[ -z $SWIFTC ]]; then
    echo "fuzz.sh: swiftc not found (a Swift toolchain is required)" >&2
    exit 2
fi
toolchain_bin=$(dirname "$(readlink -f "$SWIFTC")")
CLANG=${FUZZ_CLANG:-$toolchain_bin/clang}
[[ -x $CLANG ]] || CLANG=$(command -v clang)
# ld.gold prints a "Cannot export local symbol" warning per sanitizer symbol; lld links the same silently.
if [[ -x $toolchain_bin/ld.lld ]] || command -v ld.lld >/dev/null 2>&1; then
    C_LINKER=(-fuse-ld=lld)
    SWIFT_LINKER=(-use-ld=lld)
else
    C_LINKER=()
    SWIFT_LINKER=()
fi

CFLAGS=(-I Sources/CLoopCore/include -I Sources/CLoopCore -I fuzz -D_GNU_SOURCE -DLK_DEBUG -std=c11 -g -O1 -pthread
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
read -r -a URING_LIBS <<<"$(pkg-config --libs liburing 2>/dev/null || echo -luring)"
SWIFTFLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g -module-name TimerHeapFuzz)

mkdir -p "$OUT/bin" "$OUT/obj" "$OUT/crashes" "$OUT/logs"

# True when target $1 is missing or older than any of the other arguments.
stale() {
    local target=$1 dep
    shift
    [[ -e $target ]] || return 0
    for dep in "$@"; do [[ $dep -nt $target ]] && return 0; done
    return 1
}

# Objects are rebuilt when their flags change (recorded in a stamp), their source changes or any header does.
flags_stamp=$OUT/obj/flags
flags_now="$CLANG ${CFLAGS[*]}"
if [[ ! -e $flags_stamp || $(cat "$flags_stamp") != "$flags_now" ]]; then
    rm -f "$OUT"/obj/*.o
    printf '%s\n' "$flags_now" >"$flags_stamp"
fi
headers=(Sources/CLoopCore/include/*.h Sources/CLoopCore/*.h fuzz/*.h)

core_objects=()
build_core() {
    local src obj
    for src in Sources/CLoopCore/*.c; do
        obj=$OUT/obj/$(basename "$src" .c).o
        if stale "$obj" "$src" "${headers[@]}"; then
            echo "fuzz.sh: cc $src"
            "$CLANG" "${CFLAGS[@]}" -c "$src" -o "$obj"
        fi
        core_objects+=("$obj")
    done
}

build_harness() {
    local name=$1 bin=$OUT/bin/$1
    if [[ $name == timerheap ]]; then
        local sources=(Sources/LoopKit/Timers.swift fuzz/timerheap.swift)
        if stale "$bin" "${sources[@]}"; then
            echo "fuzz.sh: swiftc $name"
            "$SWIFTC" "${SWIFTFLAGS[@]}" "${SWIFT_LINKER[@]}" "${sources[@]}" -o "$bin"
        fi
    else
        if stale "$bin" "fuzz/$name.c" "${core_objects[@]}" "${headers[@]}"; then
            echo "fuzz.sh: cc fuzz/$name.c"
            "$CLANG" "${CFLAGS[@]}" "${C_LINKER[@]}" "fuzz/$name.c" "${core_objects[@]}" "${URING_LIBS[@]}" -o "$bin"
        fi
    fi
}

corpus_digest() { find fuzz/corpus -type f -print0 | sort -z | xargs -0 sha1sum | sha1sum; }

# Field $2 of libFuzzer's stats in log $1 ("stat::$2: value"), or "?" when absent (a crashed run).
final_stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1 | grep . || echo "?"; }
# Value after "$2: " on the fuzzer's last status line ("#N DONE cov: .. ft: .. corp: n/sizeb ...").
status_field() { grep -E '^#[0-9]+' "$1" | tail -1 | sed -n "s/.* $2: \([^ ]*\).*/\1/p" | grep . || echo "?"; }

need_core=false
for name in "${HARNESSES[@]}"; do [[ $name != timerheap ]] && need_core=true; done
$need_core && build_core
for name in "${HARNESSES[@]}"; do build_harness "$name"; done

seeds_before=$(corpus_digest)
summary=$OUT/summary.txt
: >"$summary"
failed=()
for name in "${HARNESSES[@]}"; do
    mkdir -p "$OUT/corpus/$name"
    log=$OUT/logs/$name.log
    echo "fuzz.sh: $name for ${FUZZ_SECONDS}s (log: $log)"
    started=$(date +%s)
    status=0
    "$OUT/bin/$name" "$OUT/corpus/$name" "fuzz/corpus/$name" \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
        -artifact_prefix="$OUT/crashes/$name-" >"$log" 2>&1 || status=$?
    seconds=$(($(date +%s) - started))
    corp=$(status_field "$log" corp)
    line=$(printf '%-10s %4ss  executions %10s  exec/s %7s  cov %5s  ft %6s  corpus %5s units (%s)' \
        "$name" "$seconds" "$(final_stat "$log" number_of_executed_units)" \
        "$(final_stat "$log" average_exec_per_sec)" "$(status_field "$log" cov)" "$(status_field "$log" ft)" \
        "${corp%%/*}" "${corp#*/}")
    if ((status != 0)); then
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        line="$line  FAILED (exit $status${artifact:+, input $artifact})"
        failed+=("$name")
        echo "---- $name: last lines of $log" >&2
        tail -n 40 "$log" >&2
        echo "---- $name: what failed" >&2
        grep -m 3 -E 'check failed|runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" >&2 || true
        echo "---- reproduce: $OUT/bin/$name ${artifact:-<input>}" >&2
    fi
    echo "$line" | tee -a "$summary"
done

if [[ $(corpus_digest) != "$seeds_before" ]]; then
    echo "fuzz.sh: the committed seed corpus fuzz/corpus/ changed during the run" >&2
    failed+=(seed-corpus)
fi
if ((${#failed[@]} > 0)); then
    echo "fuzz.sh: FAILED: ${failed[*]} (summary in $summary)" >&2
    exit 1
fi
echo "fuzz.sh: all passed (summary in $summary)"
