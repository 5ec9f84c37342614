#!/usr/bin/env bash
# Fuzz fdiff's readers of outside input for a bounded time each: the recording reader, the
# snapshot-file reader and the fdinfo parser (targets in crates/fdiff-core/fuzz/, checks in
# crates/fdiff-core/src/inputcheck.rs).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# cargo-fuzz drives libFuzzer, which needs unstable compiler flags (sanitizers, coverage passes).
# With no nightly toolchain the stable one is used with RUSTC_BOOTSTRAP=1, which enables them.
# New inputs that reach new code go to crates/fdiff-core/fuzz/corpus/TARGET/ (ignored by git, except seed-*);
# a crash is saved under crates/fdiff-core/fuzz/artifacts/TARGET/ and ends the run with a failure:
# copy it into crates/fdiff-core/fuzz/corpus/TARGET/seed-NAME so `cargo test issue9_fuzz` replays it from then on.
set -euo pipefail

secs="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(recording snapshot_file fdinfo)
fi

cd "$(dirname "$0")/../crates/fdiff-core/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly' && cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "fuzz.sh: $t for ${secs}s" >&2
    # -timeout: one input may take at most 10 s (a hang is a finding, like a crash);
    # -rss_limit_mb: memory a single input may cost, far above any bounded reader's need.
    if ! cargo "${toolchain[@]}" fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
        -print_final_stats=1; then
        echo "fuzz.sh: $t found a failure: see crates/fdiff-core/fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit "$status"
