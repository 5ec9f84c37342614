#!/usr/bin/env bash
# Rebuild the eBPF probe of `--stacks` on a running process (issue 12) from its C source. The
# object is committed beside the source so that `cargo build` needs no clang; CI runs this
# with --check to make sure the committed object is what the source compiles to.
#   scripts/build-bpf.sh          rebuild crates/fdiff-stacks/bpf/fdstacks.bpf.o
#   scripts/build-bpf.sh --check  build to a temporary file, fail if it differs
set -euo pipefail
cd "$(dirname "$0")/../crates/fdiff-stacks/bpf"
CLANG=${CLANG:-clang}
# No -g: no BTF or DWARF (the loader needs neither), and no build paths in the object.
flags=(-target bpf -O2 -Wall -Werror -c fdstacks.bpf.c)
if [ "${1:-}" = --check ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  "$CLANG" "${flags[@]}" -o "$tmp"
  if cmp -s "$tmp" fdstacks.bpf.o; then
    echo "fdstacks.bpf.o matches fdstacks.bpf.c"
    exit 0
  fi
  # Another clang may lay the file out differently: the instructions must still agree.
  OBJDUMP=${OBJDUMP:-llvm-objdump}
  if diff <("$OBJDUMP" -d -r "$tmp" | tail -n +3) <("$OBJDUMP" -d -r fdstacks.bpf.o | tail -n +3); then
    echo "fdstacks.bpf.o matches fdstacks.bpf.c (same instructions, other layout)"
    exit 0
  fi
  echo "fdstacks.bpf.o is not what fdstacks.bpf.c compiles to: run scripts/build-bpf.sh" >&2
  exit 1
fi
"$CLANG" "${flags[@]}" -o fdstacks.bpf.o
echo "built crates/fdiff-stacks/bpf/fdstacks.bpf.o"
