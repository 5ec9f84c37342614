#!/usr/bin/env bash
# issue 12's cost harness (never a test): the open+close loop of examples/openclose pinned to
# one core, alone and under `fdiff run --stacks=now`, `strace -f -k` and
# `valgrind --track-fds=yes`, in one run; prints ns per open+close and the ratio to alone.
# Then the same for a CPython open+close loop five Python calls deep (bench/pyopenclose.py):
# alone, armed with Python frames, armed without them (FDIFF_PYFRAMES=0), ratios to its alone.
# Usage: crates/fdiff-stacks/bench/cost.sh [ITERS [PY_ITERS]]   (from the workspace root)
set -euo pipefail
iters=${1:-100000}
py_iters=${2:-20000}
cargo build -q --release -p fdiff --bin fdiff --example openclose
bin=target/release
oc="$bin/examples/openclose --hold 100 --iters $iters"
pin="taskset -c 0"
command -v taskset >/dev/null || pin=""
ns() { grep -o '"ns_per_op": *[0-9.]*' | tail -1 | cut -d: -f2 | tr -d ' '; }
alone=$($pin $oc | ns)
printf '%-26s %12s %8s\n' what ns/op ratio
printf '%-26s %12.0f %8.2f\n' alone "$alone" 1
row() {
    local name=$1; shift
    local v
    v=$("$@" | ns) || v=""
    if [ -n "$v" ]; then
        printf '%-26s %12.0f %8.2f\n' "$name" "$v" "$(echo "$v / $alone" | bc -l)"
    else
        printf '%-26s %12s\n' "$name" "n/a"
    fi
}
row "fdiff --stacks=now" $pin $bin/fdiff run --stacks=now -q -o /dev/null -- $oc
row "fdiff --stacks (unarmed)" $pin $bin/fdiff run --stacks -q -o /dev/null -- $oc
row "fdiff run (no stacks)" $pin $bin/fdiff run -q -o /dev/null -- $oc
# The eBPF probe on a running process (`fdiff --pid P --stacks=now`, root only): openclose
# waits at its gate until fdiff has armed it, then loops under the probe.
bpf_row() {
    local name="fdiff --pid --stacks=now"
    if [ "$(id -u)" != 0 ]; then printf '%-22s %12s\n' "$name" "n/a (not root)"; return; fi
    local fifo; fifo=$(mktemp -u); mkfifo "$fifo"
    exec 7<>"$fifo"; rm -f "$fifo"
    local out; out=$(mktemp)
    $pin $bin/examples/openclose --hold 100 --iters "$iters" --gate <&7 >"$out" &
    local ocpid=$!
    until grep -q ready "$out" 2>/dev/null; do sleep 0.05; done
    local fd_err; fd_err=$(mktemp)
    $bin/fdiff --pid "$ocpid" --stacks=now -i 200ms -d 600s -q -f json >/dev/null 2>"$fd_err" &
    local fpid=$!
    sleep 1
    echo go >&7
    wait "$ocpid" || true
    kill -INT "$fpid" 2>/dev/null || true
    wait "$fpid" 2>/dev/null || true
    exec 7>&-
    local v; v=$(ns <"$out") || v=""
    if [ -n "$v" ] && ! grep -q "without stacks" "$fd_err"; then
        printf '%-22s %12.0f %8.2f\n' "$name" "$v" "$(echo "$v / $alone" | bc -l)"
    else
        printf '%-22s %12s %s\n' "$name" "n/a" "$(head -c 200 "$fd_err")"
    fi
    rm -f "$out" "$fd_err"
}
bpf_row
if command -v strace >/dev/null; then
    row "strace -f -k" $pin strace -f -k -o /dev/null $oc
else
    echo "strace -f -k: not installed (apt-get install strace)"
fi
if command -v valgrind >/dev/null; then
    row "valgrind --track-fds" $pin valgrind -q --track-fds=yes --log-file=/dev/null $oc
else
    echo "valgrind: not installed"
fi
# The machine may be shared: the loop alone once more, so a disturbed baseline shows.
row "alone (again)" $pin $oc

# Python frames: the interpreter behind python3 (past pyenv's shims), if it is CPython.
py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
if [ -n "$py" ]; then
    data=$(mktemp)
    pyoc="$py crates/fdiff-stacks/bench/pyopenclose.py $data $py_iters"
    alone=$($pin $pyoc | ns)
    echo
    printf '%-26s %12s %8s\n' "python ($($py -V 2>&1))" ns/op ratio
    printf '%-26s %12.0f %8.2f\n' alone "$alone" 1
    row "--stacks=now, py frames" $pin $bin/fdiff run --stacks=now -q -o /dev/null -- $pyoc
    row "--stacks=now, native only" env FDIFF_PYFRAMES=0 $pin $bin/fdiff run --stacks=now -q -o /dev/null -- $pyoc
    row "--stacks (unarmed)" $pin $bin/fdiff run --stacks -q -o /dev/null -- $pyoc
    row "alone (again)" $pin $pyoc
    rm -f "$data"
fi
