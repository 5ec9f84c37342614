#!/usr/bin/env bash
# issue 12's cost harness (never a test): the open+close loop of examples/openclose pinned to
# one core, alone and under `fdiff run --stacks=now`, `strace -f -k` and
# `valgrind --track-fds=yes`, in one run; prints ns per open+close and the ratio to alone.
# Usage: crates/fdiff-stacks/bench/cost.sh [ITERS]   (from the workspace root)
set -euo pipefail
iters=${1:-100000}
cargo build -q --release -p fdiff --bin fdiff --example openclose
bin=target/release
oc="$bin/examples/openclose --hold 100 --iters $iters"
pin="taskset -c 0"
command -v taskset >/dev/null || pin=""
ns() { grep -o '"ns_per_op":[0-9.]*' | tail -1 | cut -d: -f2; }
alone=$($pin $oc | ns)
printf '%-22s %12s %8s\n' what ns/op ratio
printf '%-22s %12.0f %8.2f\n' alone "$alone" 1
row() {
    local name=$1; shift
    local v
    v=$("$@" | ns) || v=""
    if [ -n "$v" ]; then
        printf '%-22s %12.0f %8.2f\n' "$name" "$v" "$(echo "$v / $alone" | bc -l)"
    else
        printf '%-22s %12s\n' "$name" "n/a"
    fi
}
row "fdiff --stacks=now" $pin $bin/fdiff run --stacks=now -q -o /dev/null -- $oc
row "fdiff --stacks (unarmed)" $pin $bin/fdiff run --stacks -q -o /dev/null -- $oc
row "fdiff run (no stacks)" $pin $bin/fdiff run -q -o /dev/null -- $oc
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
