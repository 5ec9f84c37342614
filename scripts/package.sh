#!/usr/bin/env bash
# Build the Debian package of fdiff: target/debian/fdiff_VERSION-1_ARCH.deb (its path is the last
# line printed). Installs what it needs when missing: cargo-deb (from crates.io, pinned) and, as
# root, dpkg-dev (dpkg-shlibdeps computes Depends) and lintian (for scripts/check-deb.sh).
#
#   scripts/package.sh            build the .deb
#   scripts/check-deb.sh          then check it as a distribution would (lintian, install, remove)
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-deb 3.8.0 builds with rustc 1.85 and newer (1.95 here); --locked takes its own lock file.
CARGO_DEB_VERSION=3.8.0

if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then
  echo "package.sh: warning: the tree has uncommitted changes; fdiff --version will say dirty" >&2
fi

if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
  echo "== cargo install cargo-deb $CARGO_DEB_VERSION"
  cargo install --locked "cargo-deb@$CARGO_DEB_VERSION"
fi

need=()
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== apt-get install ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "package.sh: ${need[*]} missing (install as root: apt-get install ${need[*]})" >&2
    command -v dpkg-shlibdeps >/dev/null 2>&1 || exit 1
  fi
fi

target="${CARGO_TARGET_DIR:-target}"
echo "== cargo build --release"
cargo build --release --locked -p fdiff

# Man pages and completion scripts come from the binary's own command-line definitions; the
# asset paths in crates/fdiff/Cargo.toml ([package.metadata.deb]) name this directory.
assets=debian/generated
rm -rf "$assets"
"$target/release/fdiff" __generate "$assets"
# Documentation over 4 kB goes compressed (Debian policy 12.3); -n: no name or time inside.
gzip -9n <README.md >"$assets/README.md.gz"

echo "== cargo deb"
rm -rf "$target/debian"
cargo deb -p fdiff --no-build --locked
ls "$target"/debian/fdiff_*.deb
