#!/usr/bin/env bash
# Benchmarks fdiff: the library bench, whole-process peers (lsof, lsfd), RSS, and the cost a
# watch imposes on the watched process. Builds release first. `--quick` runs the library bench
# only, in quick mode. Nothing is installed; missing tools are skipped with a note.
set -euo pipefail

cd "$(dirname "$0")/.."
QUICK=0
[[ ${1:-} == --quick ]] && QUICK=1

RUNS=${RUNS:-15}          # repetitions per whole-process timing
NFDS=${NFDS:-10000}       # fds in the fixture and in the open/close target
ITERS=${ITERS:-1000000}   # open/close loop length (strace runs use ITERS/50)
REPS=${REPS:-3}           # repetitions per target-cost condition

have() { command -v "$1" >/dev/null 2>&1; }
note() { printf '  (%s)\n' "$*"; }

echo "== build (release)"
cargo build --release --bins --examples
FDIFF=$PWD/target/release/fdiff
OPENCLOSE=$PWD/target/release/examples/openclose
WATCHLOOP=$PWD/target/release/examples/watchloop

echo "== library bench"
bench_rc=0
if ((QUICK)); then
    cargo bench --bench snapshot -- --quick || bench_rc=$?
    exit "$bench_rc"
fi
cargo bench --bench snapshot || bench_rc=$?

TMP=$(mktemp -d)
BG_PIDS=()
cleanup() {
    # Only what this script started, by pid.
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    exec {FX_IN}>&- 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# median and min (ms, 2 decimals) of the nanosecond numbers on stdin
stats() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "median %.2f ms  min %.2f ms  (%d runs)\n", m / 1e6, v[1] / 1e6, NR }'
}

# time_cmd LABEL CMD...: whole-process wall time, RUNS times, output discarded
time_cmd() {
    local label=$1
    shift
    if have hyperfine; then
        hyperfine -N --warmup 2 --runs "$RUNS" --style basic "$*" 2>&1 | sed -n 's/^ *Time/  '"$label"': Time/p'
        return
    fi
    "$@" >/dev/null 2>&1 || true # warm-up
    local i t0 t1
    for ((i = 0; i < RUNS; i++)); do
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1 || true
        t1=$(date +%s%N)
        echo $((t1 - t0))
    done | stats | sed "s/^/  $(printf '%-28s' "$label") /"
}

# peak_rss LABEL CMD...: maximum resident set size of one run
peak_rss() {
    local label=$1
    shift
    if [[ -x /usr/bin/time ]]; then
        local kib
        kib=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1)
        printf '  %-28s peak RSS %s KiB\n' "$label" "$kib"
    else
        printf '  %-28s peak RSS not measured (/usr/bin/time missing)\n' "$label"
    fi
}

echo
echo "== whole process, $NFDS fds in the fixture"
coproc FX { exec "$FDIFF" __fixture; }
FX_IN=${FX[1]}
BG_PIDS+=("$FX_PID")
read -r ready <&"${FX[0]}"
FXPID=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"$ready")
echo "fill $NFDS" >&"$FX_IN"
read -r filled <&"${FX[0]}"
echo "  fixture pid $FXPID: $filled"

# The CLI is written on another branch: until it lands, `fdiff snapshot` prints nothing.
if out=$("$FDIFF" snapshot --pid "$FXPID" --format json 2>/dev/null) && [[ $out == '{'* ]]; then
    time_cmd "fdiff snapshot --format json" "$FDIFF" snapshot --pid "$FXPID" --format json
    peak_rss "fdiff snapshot" "$FDIFF" snapshot --pid "$FXPID" --format json
else
    note "fdiff snapshot: command not available in this build; skipped"
fi
for tool in lsof lsfd; do
    if have "$tool"; then
        time_cmd "$tool -p" "$tool" -p "$FXPID"
        peak_rss "$tool -p" "$tool" -p "$FXPID"
    else
        note "$tool not installed; skipped"
    fi
done

echo "  watch: fdiff --pid PID --interval 100ms --count 1000 --quiet --format json"
if [[ -x /usr/bin/time ]]; then
    tfmt='wall %e s, user %U s, sys %S s, peak RSS %M KiB, exit %x'
    wout=$( { /usr/bin/time -f "$tfmt" "$FDIFF" --pid "$FXPID" --interval 100ms --count 1000 \
        --quiet --format json >/dev/null 2>/dev/null; } 2>&1 | tail -1)
else
    t0=$(date +%s%N)
    "$FDIFF" --pid "$FXPID" --interval 100ms --count 1000 --quiet --format json >/dev/null 2>&1 || true
    wout="wall $(( ($(date +%s%N) - t0) / 1000000 )) ms, RSS not measured"
fi
# 1000 ticks at 100 ms cannot finish in under a second: anything faster did not watch.
if [[ $wout =~ wall\ ([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 1)); then
    echo "  fdiff watch: $wout"
else
    note "fdiff watch: command not available in this build ($wout); skipped"
fi
exec {FX_IN}>&-
wait "$FX_PID" 2>/dev/null || true

echo
echo "== target cost: open/close loop holding $NFDS fds, pinned to CPU 0"
PIN0=() PIN1=()
if have taskset; then
    PIN0=(taskset -c 0)
    PIN1=(taskset -c 1)
else
    note "taskset missing: nothing pinned, expect more noise"
fi

# Which watcher stands for `fdiff --pid PID --interval I`: the CLI when it exists, else the
# library loop in examples/watchloop.
watcher_works() {
    local pid=$1
    "$FDIFF" --pid "$pid" --interval 100ms --quiet >/dev/null 2>&1 &
    local w=$!
    sleep 0.5
    if kill -0 "$w" 2>/dev/null; then
        kill "$w" 2>/dev/null || true
        wait "$w" 2>/dev/null || true
        return 0
    fi
    wait "$w" 2>/dev/null || true
    return 1
}

# run_target MODE ITERS: prints ns/op for one loop run while MODE's helper runs on CPU 1
run_target() {
    local mode=$1 iters=$2 fifo=$TMP/go out=$TMP/target.out helper=
    rm -f "$fifo"
    mkfifo "$fifo"
    "${PIN0[@]}" "$OPENCLOSE" --hold "$NFDS" --iters "$iters" --gate <"$fifo" >"$out" &
    local tpid=$!
    exec {GO}>"$fifo"
    until grep -q ready "$out" 2>/dev/null; do sleep 0.05; done
    case $mode in
        alone) ;;
        busy) "${PIN1[@]}" bash -c 'while :; do :; done' & helper=$! ;;
        watch1s | watch100ms)
            local ms=1000
            [[ $mode == watch100ms ]] && ms=100
            if ((USE_CLI)); then
                "${PIN1[@]}" "$FDIFF" --pid "$tpid" --interval "${ms}ms" --quiet >/dev/null 2>&1 &
            else
                "${PIN1[@]}" "$WATCHLOOP" "$tpid" "$ms" 2> >(sed "s/^/$mode /" >>"$TMP/watchloop.log") &
            fi
            helper=$!
            ;;
        strace) "${PIN1[@]}" strace -f -e trace=desc -o /dev/null -p "$tpid" 2>/dev/null & helper=$! ;;
    esac
    [[ -n $helper ]] && BG_PIDS+=("$helper")
    # Past the watcher's first full snapshot and strace's attach: measure the steady state.
    [[ $mode != alone ]] && sleep 1.5
    echo go >&"$GO"
    exec {GO}>&-
    wait "$tpid"
    if [[ -n $helper ]]; then
        # A watcher notices the exit on its next tick and reports; give it that tick.
        if [[ $mode == watch* ]]; then
            local i
            for ((i = 0; i < 25; i++)); do
                kill -0 "$helper" 2>/dev/null || break
                sleep 0.1
            done
        fi
        kill "$helper" 2>/dev/null || true
        wait "$helper" 2>/dev/null || true
    fi
    sed -n 's/.*"ns_per_op":\([0-9.]*\).*/\1/p' "$out"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

USE_CLI=0
# A probe target that lives long enough to be watched.
sleep 5 &
probe=$!
if watcher_works "$probe"; then
    USE_CLI=1
    echo "  watcher: fdiff --pid PID --interval I --quiet"
else
    echo "  watcher: examples/watchloop (library tick loop; the fdiff watch CLI is not in this build)"
fi
kill "$probe" 2>/dev/null || true
wait "$probe" 2>/dev/null || true

modes=(alone busy watch1s watch100ms)
declare -A results
for ((r = 0; r < REPS; r++)); do
    for m in "${modes[@]}"; do
        results[$m]+="$(run_target "$m" "$ITERS") "
    done
done
if have strace; then
    modes+=(strace)
    for ((r = 0; r < REPS; r++)); do
        results[strace]+="$(run_target strace $((ITERS / 50))) "
    done
else
    note "strace not installed; skipped"
fi
alone=$(tr ' ' '\n' <<<"${results[alone]}" | grep . | median)
printf '  %-12s %10s %8s   %s\n' mode "ns/op" slowdown "runs (ns/op)"
for m in "${modes[@]}"; do
    med=$(tr ' ' '\n' <<<"${results[$m]}" | grep . | median)
    printf '  %-12s %10.1f %7.2fx   %s\n' "$m" "$med" "$(awk -v a="$med" -v b="$alone" 'BEGIN { print a / b }')" "${results[$m]}"
done
[[ -s $TMP/watchloop.log ]] && sed 's/^/  watchloop: /' "$TMP/watchloop.log"

echo
if ((bench_rc != 0)); then
    echo "library bench: some targets FAILED (exit $bench_rc); see its table above"
fi
exit "$bench_rc"
