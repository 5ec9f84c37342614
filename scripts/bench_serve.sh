#!/usr/bin/env bash
# Issue 13 cost figures for `fdiff serve`, as ratios against baselines measured in the same run:
#   1. the cheap host pass (examples/hostpass of fdiff-core) vs a bare C loop doing the same
#      calls (stat /proc/PID/fd + read /proc/PID/stat per process), interleaved rounds;
#   2. a full `fdiff serve --all` tick with a few deep processes (mean of
#      fdiff_scan_duration_seconds), its peak RSS, and a scrape's latency while ticks run;
#   3. lsof over the whole host, once.
# Usage: scripts/bench_serve.sh [PROCS=1000] [FDS_EACH=100] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-1000}
N=${2:-100}
ROUNDS=5
REPS=11
if [ "${3:-}" = --quick ]; then ROUNDS=1; REPS=3; fi
T=${CARGO_TARGET_DIR:-target}
tmp=$(mktemp -d)
cc -O2 -o "$tmp/bench_serve" scripts/bench_serve.c
cargo build --release -q -p fdiff-core --example hostpass
cargo build --release -q -p fdiff
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq "$P"); do "$tmp/bench_serve" hold "$N" & pids+=($!); done
sleep 3
echo "host: $(ls -d /proc/[0-9]* | wc -l) processes; $P holders of $N fds"
cs=(); rs=()
for r in $(seq "$ROUNDS"); do
  c=$("$tmp/bench_serve" loop "$REPS"); cs+=("${c%% *}")
  h=$("$T"/release/examples/hostpass "$REPS"); rs+=("${h%% *}")
  echo "round $r: C loop $c | host pass $h   (median ms, processes, fds)"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(med "${cs[@]}"); mr=$(med "${rs[@]}")
echo "cheap counting: host pass $mr ms vs C loop $mc ms: $(awk -v a="$mr" -v b="$mc" 'BEGIN{printf "%.2fx", a/b}')"

port=$((20000 + RANDOM % 20000))
deep=("${pids[0]}" "${pids[1]}" "${pids[2]}")
/usr/bin/time -f "%M" -o "$tmp/rss" "$T"/release/fdiff serve --all --quiet --listen "127.0.0.1:$port" \
  --interval 1s --duration 25s --pid "${deep[0]}" --pid "${deep[1]}" --pid "${deep[2]}" &
serve=$!
sleep 3
lat=()
for _ in $(seq 40); do
  lat+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/metrics")")
  sleep 0.25
done
curl -s "http://127.0.0.1:$port/metrics" >"$tmp/metrics"
wait "$serve" || true
sum=$(awk '/^fdiff_scan_duration_seconds_sum/ {print $2}' "$tmp/metrics")
cnt=$(awk '/^fdiff_scan_duration_seconds_count/ {print $2}' "$tmp/metrics")
tick=$(awk -v s="$sum" -v c="$cnt" 'BEGIN{printf "%.1f", 1000*s/c}')
echo "full --all tick (3 deep): $tick ms mean over $cnt ticks: $(awk -v a="$tick" -v b="$mc" 'BEGIN{printf "%.2fx", a/b}') the C loop"
echo "series exposed: $(grep -vc '^#' "$tmp/metrics"); scrape bytes: $(wc -c <"$tmp/metrics")"
echo "peak RSS of fdiff serve: $(awk '{printf "%.1f MiB", $1/1024}' "$tmp/rss")"
echo "scrape latency during ticks: median $(med "${lat[@]}") s, max $(printf '%s\n' "${lat[@]}" | sort -g | tail -1) s"
t0=$(date +%s.%N); lsof -n -w >/dev/null 2>&1 || true; t1=$(date +%s.%N)
echo "lsof -n over the whole host: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f ms", 1000*(b-a)}'): $(awk -v a="$t0" -v b="$t1" -v t="$tick" 'BEGIN{printf "%.1fx", 1000*(b-a)/t}') a full fdiff tick"
