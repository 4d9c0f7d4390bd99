#!/usr/bin/env bash
# verify.sh — `make verify`: model-checks spin/wake.pml (the sleep/wake handshake), spin/gate.pml (submit
# racing the final drain of a graceful shutdown) and spin/ingress.pml (the per-producer ingress's scheduling:
# announce, unschedule, reclaim, fast pushes and the heavy barrier) with spin, and their mutants.
#
# Every model is checked for two properties, each exhaustively (full state storage, no bitstate):
#   safety    pan built with -DSAFETY -DBFS: assertions and invalid end states; breadth-first, so a
#             counterexample is a shortest one.
#   liveness  the model's LTL property (spin -DLIVENESS), pan -a -f (acceptance cycles under weak fairness),
#             -A (assertions are the safety run's business).
# The real model must verify (0 errors). Every mutant (a fence, barrier or check removed, selected with a
# -D macro the model documents) must produce a counterexample for both properties; its replayed trail (the
# models' printf narrative) is printed: the safety one (shortest) from the start, the liveness one's end.
# Variants marked "pass" must verify: they remove something the protocol does not need, or add a part of it
# checked separately (ingress.pml's EXIT: thread exit and reclamation). Exits non-zero on
# any unexpected result.
#
# Work and outputs: .build-verify/ (one directory per run: model, pan.out, trail.txt), summary table in
# .build-verify/summary.txt. VERIFY_JOBS (default 2) runs that many checks at once.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=.build-verify
CC=${CC:-$(command -v cc || command -v clang || echo cc)}
PAN_CFLAGS="-O2 -w -DMEMLIM=1024"
TRAIL_LINES=45

# ---- one check (run in parallel through xargs): model config-name config-defs property variant expected
run_one() {
    local model=$1 cfg=$2 cfgdefs=$3 prop=$4 variant=$5 expected=$6
    local dir="$OUT/$model-$cfg-$variant-$prop"
    local defs="" d
    for d in ${cfgdefs//,/ }; do defs+=" -D$d"; done
    [ "$variant" != real ] && defs+=" -D$variant"
    local cflags pflags
    if [ "$prop" = safety ]; then
        cflags="-DSAFETY -DBFS"; pflags=""
    else
        defs+=" -DLIVENESS"; cflags="-DNFAIR=3"; pflags="-a -f -A -m100000"
    fi
    mkdir -p "$dir"
    cp "spin/$model.pml" "$dir/"
    local result="ERROR" errors="-" stored="-" trans="-" secs="-" why=""
    if ! (cd "$dir" && spin $defs -a "$model.pml" >spin.log 2>&1); then
        why="spin -a failed (see $dir/spin.log)"
    elif ! (cd "$dir" && $CC $PAN_CFLAGS $cflags -o pan pan.c >cc.log 2>&1); then
        why="cc failed (see $dir/cc.log)"
    else
        (cd "$dir" && ./pan $pflags >pan.out 2>&1) || true
        errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$dir/pan.out" | head -1)
        stored=$(awk '/states, stored/ {print $1; exit}' "$dir/pan.out")
        trans=$(awk '/transitions \(= / {print $1; exit}' "$dir/pan.out")
        secs=$(sed -n 's/^pan: elapsed time \([0-9.e+]*\).*/\1/p' "$dir/pan.out" | head -1)
        if [ -z "$errors" ] || [ -z "$stored" ]; then
            why="no result from pan (see $dir/pan.out)"; errors="-"
        elif [ "$errors" -ne 0 ]; then
            result="counterexample"                 # pan stops at the first error: "Search not completed"
        elif grep -qiE 'search depth too small|MEMLIM|out of memory|search not completed' "$dir/pan.out"; then
            why="search incomplete: a pass would prove nothing (see $dir/pan.out)"
        else
            result="pass"
        fi
        if [ "$result" = counterexample ]; then
            (cd "$dir" && spin $defs -T -t "$model.pml" >trail.txt 2>&1) || true
            grep -m1 '^pan:1:' "$dir/pan.out" | sed 's/^pan:1: //' >"$dir/error.txt" || true
        fi
    fi
    [ -n "$why" ] && echo "$why" >"$dir/why.txt"
    local ok=no
    [ "$result" = "$expected" ] && ok=yes
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$model" "$cfg" "$prop" "$variant" "$expected" "$result" \
        "$errors" "${stored:--}" "${trans:--}" "${secs:--}" >"$dir/row.tsv"
    echo "$ok" >"$dir/ok"
}

if [ "${1:-}" = --one ]; then
    shift
    run_one "$@"
    exit 0
fi

# ---- spin itself
bash scripts/require.sh spin
command -v "$CC" >/dev/null 2>&1 || { echo "verify: no C compiler ($CC)" >&2; exit 1; }

# ---- the checks: model config config-defs variant expected (each for both properties). config names the
# submissions of each producer thread.
# wake: 3 producers, 1 task each (all variants); 2 producers, 2 tasks each (a producer's second submission).
# gate: 3 threads, thread 0 submitting twice and the others once (all variants); 3 threads, 2 tasks each.
# ingress: 2 producers, 2 tasks each (all variants): a second push finds its record held, fast or being
# unscheduled.
checks=(
    "wake 1+1+1 NP=3,K=1 real pass"
    "wake 1+1+1 NP=3,K=1 NO_PRODUCER_FENCE counterexample"
    "wake 1+1+1 NP=3,K=1 NO_LOOP_FENCE counterexample"
    "wake 1+1+1 NP=3,K=1 NO_RECHECK counterexample"
    "wake 1+1+1 NP=3,K=1 RESET_IN_FINISH_PARK counterexample"
    "wake 1+1+1 NP=3,K=1 NO_PENDING_RESET counterexample"
    "wake 2+2 NP=2,K=2 real pass"
    "gate 2+1+1 NP=3,K0=2,K=1 real pass"
    "gate 2+1+1 NP=3,K0=2,K=1 DRAIN_IGNORES_BUSY pass"
    "gate 2+1+1 NP=3,K0=2,K=1 NO_BARRIER_S counterexample"
    "gate 2+1+1 NP=3,K0=2,K=1 NO_BARRIER_C counterexample"
    "gate 2+1+1 NP=3,K0=2,K=1 NO_CLOSER_WAIT counterexample"
    "gate 2+1+1 NP=3,K0=2,K=1 NO_SECOND_DRAIN counterexample"
    "gate 2+2+2 NP=3,K0=2,K=2 real pass"
    "ingress 2+2 NP=2,K=2 real pass"
    "ingress 2+2 NP=2,K=2 NO_PUSH_FENCE counterexample"
    "ingress 2+2 NP=2,K=2 NO_HEAVY_BARRIER counterexample"
    "ingress 2+2 NP=2,K=2 NO_RETIRE_FENCE counterexample"
    "ingress 2+2 NP=2,K=2 NO_RECHECK counterexample"
    "ingress 2+2 NP=2,K=2 NO_READY_RECHECK counterexample"
    "ingress 2+2 NP=2,K=2 RECLAIM_IGNORES_ANNOUNCE counterexample"
    "ingress 2+2 NP=2,K=2 EXIT pass"
    "ingress 2+2 NP=2,K=2 EXIT_WITHOUT_NOTIFY counterexample"
    "ingress 2+2 NP=2,K=2 UNSCHEDULE_IGNORES_GONE counterexample"
)

rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)
jobs=()
for c in "${checks[@]}"; do
    read -r model cfg defs variant expected <<<"$c"
    for prop in safety liveness; do
        jobs+=("$model $cfg $defs $prop $variant $expected")
    done
done
# Larger checks first, so that two workers finish together.
printf '%s\n' "${jobs[@]}" |
    awk '{ big = $2 == "2+2+2" || ($1 == "ingress" && ($5 == "real" || $5 == "EXIT"))
           print !big "\t" $0 }' |
    sort -s -k1,1n | cut -f2- |
    xargs -P "${VERIFY_JOBS:-2}" -L1 bash "$0" --one || true     # judged below, from each run's row.tsv

# ---- the table, in the order of `checks`
summary="$OUT/summary.txt"
fmt='%-7s %-12s %-9s %-24s %-15s %-15s %12s %13s %9s\n'
{
    printf "$fmt" model config property variant expected result states transitions time
    for j in "${jobs[@]}"; do
        read -r model cfg defs prop variant expected <<<"$j"
        row="$OUT/$model-$cfg-$variant-$prop/row.tsv"
        if [ -f "$row" ]; then
            IFS=$'\t' read -r m c p v e r _errors stored trans secs <"$row"
            printf "$fmt" "$m" "$c" "$p" "$v" "$e" "$r" "$stored" "$trans" "$secs"
        else
            printf "$fmt" "$model" "$cfg" "$prop" "$variant" "$expected" ERROR - - -
        fi
    done
} >"$summary"

echo "== spin $(spin -V 2>/dev/null | awk '{print $3}'): exhaustive searches (safety breadth-first;"
echo "   liveness nested depth-first under weak fairness). config: tasks per producer thread;"
echo "   states: states stored; time: pan's search, seconds"
cat "$summary"

# ---- the counterexamples
failed=0
for j in "${jobs[@]}"; do
    read -r model cfg defs prop variant expected <<<"$j"
    dir="$OUT/$model-$cfg-$variant-$prop"
    if [ "$(cat "$dir/ok" 2>/dev/null)" != yes ]; then
        failed=1
        echo
        got=$(cut -f6 "$dir/row.tsv" 2>/dev/null || echo ERROR)
        echo "!! $model $cfg $prop $variant: expected $expected, got $got"
        [ -f "$dir/why.txt" ] && cat "$dir/why.txt"
        if [ -f "$dir/error.txt" ]; then
            echo "   $(cat "$dir/error.txt")"
            sed -n '1,40p' "$dir/trail.txt" 2>/dev/null || true
        fi
        continue
    fi
    [ "$variant" = real ] || [ "$expected" != counterexample ] && continue
    echo
    echo "-- $model $variant ($prop): $(cat "$dir/error.txt"); trail in $dir/trail.txt"
    if [ "$prop" = liveness ]; then
        # Liveness trails are depth-first (not shortest): show their end, where the cycle starts.
        # (Its replay also reports the assertions that -A ignored: left out here.)
        grep -vE '^(spin: |#processes|[0-9]+ processes created|ltl |Never claim moves|[0-9]+:)|^[[:space:]]' \
            "$dir/trail.txt" | tail -n 12 | sed 's/^/   ... /'
    else
        grep -vE '^(spin: trail ends|#processes|[0-9]+ processes created)|^[[:space:]]' "$dir/trail.txt" |
            head -n "$TRAIL_LINES" | sed 's/^/   /'
    fi
    # The end state's scalar variables (arrays left out).
    end=$(sed -n '/^#processes/,$p' "$dir/trail.txt" | grep -E '^[[:space:]]+[a-z_]+ = ' |
        awk '{printf "%s=%s ", $1, $3}')
    [ -n "$end" ] && echo "   end state: $end"
    case "$(cat "$dir/error.txt")" in
        "invalid end state"*) echo "   => no process can move, yet a task is still queued: it never runs" ;;
        "acceptance cycle"*) echo "   => the run stays in this state forever, an accepted task not run" ;;
    esac
done

echo
echo "verify: $(( $(date +%s) - start )) s; table in $summary"
if [ "$failed" -ne 0 ]; then
    echo "verify: FAILED (a model does not verify, or a mutant is not caught)" >&2
    exit 1
fi
echo "verify: every model verifies and every mutant is caught"
