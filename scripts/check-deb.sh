#!/usr/bin/env bash
# Check the .deb scripts/package.sh built, as a distribution would: lintian (no error, every
# warning overridden with its reason in debian/fdiff.lintian-overrides), then, as root, install
# it, run the installed fdiff, render its man page, load its bash completion and ask it for a
# pid, verify the systemd unit, remove it and check that nothing is left behind.
#
#   scripts/check-deb.sh [target/debian/fdiff_….deb]
set -euo pipefail
cd "$(dirname "$0")/.."

deb="${1:-$(ls -t "${CARGO_TARGET_DIR:-target}"/debian/fdiff_*.deb 2>/dev/null | head -n 1)}"
if [ -z "$deb" ] || ! [ -f "$deb" ]; then
  echo "check-deb.sh: no .deb found: run scripts/package.sh first" >&2
  exit 1
fi
echo "== $deb"
fail() { echo "check-deb.sh: $*" >&2; exit 1; }

echo "== lintian"
lintian --fail-on error,warning --display-info "$deb" \
  || fail "lintian: errors, or warnings without an override in debian/fdiff.lintian-overrides"

if [ "$(id -u)" != 0 ]; then
  echo "(not root: skipping dpkg -i, the installed checks and dpkg -r)"
  exit 0
fi

version=$(dpkg-deb -f "$deb" Version)
echo "== dpkg -i ($version)"
dpkg -i "$deb" >/dev/null
files=$(dpkg -L fdiff)

echo "== fdiff --version"
v=$(/usr/bin/fdiff --version)
echo "$v"
case "$v" in "fdiff ${version%-*} (commit "*) ;; *) fail "unexpected version line: $v" ;; esac

echo "== man -l /usr/share/man/man1/fdiff.1.gz"
page=$(MANWIDTH=80 man -l -P cat /usr/share/man/man1/fdiff.1.gz 2>&1)
for want in "EXIT STATUS" "PERMISSIONS" "NO_COLOR" "fdiff/report/v1" "--fail-on-leak"; do
  grep -qF -- "$want" <<<"$page" || fail "the installed fdiff(1) lacks '$want'"
done
for p in snapshot diff report run demo completions; do
  MANWIDTH=80 man -l -P cat "/usr/share/man/man1/fdiff-$p.1.gz" >/dev/null 2>&1 || fail "fdiff-$p(1) does not render"
done
echo "fdiff(1) and 6 command pages render"

echo "== bash completion"
bash -c 'source /usr/share/bash-completion/completions/fdiff; complete -p fdiff'
# Tab after `fdiff --pid <its first digits>` offers the pid of a running process.
sleep 30 & spid=$!
reply=$(bash -c "source /usr/share/bash-completion/completions/fdiff
  COMP_WORDS=(fdiff --pid $spid) COMP_CWORD=2 COMP_TYPE=9
  _clap_complete_fdiff fdiff $spid --pid; printf '%s\n' \"\${COMPREPLY[@]}\"")
kill "$spid" 2>/dev/null || true
grep -qx "$spid" <<<"$reply" || fail "completing --pid $spid offered: $reply"
echo "--pid $spid completes to itself"

echo "== systemd-analyze verify"
unit=/lib/systemd/system/fdiff-serve.service
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify "$unit"
  echo "$unit verified"
else
  echo "(systemd-analyze absent: skipping the unit check)"
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  state=$(systemctl is-enabled fdiff-serve.service 2>/dev/null || true)
  [ "$state" != enabled ] || fail "the package enabled fdiff-serve.service"
fi

echo "== dpkg -r"
dpkg -r fdiff >/dev/null
status=$(dpkg-query -W -f='${db:Status-Abbrev}' fdiff 2>/dev/null || true)
case "$status" in ii*|rc*|iU*|iF*) fail "fdiff still registered after dpkg -r: '$status'" ;; esac
left=0
while IFS= read -r f; do
  # Directories stay when other packages share them (/usr/bin, and /lib, a symlink here).
  [ -d "$f" ] && continue
  if [ -e "$f" ] || [ -L "$f" ]; then echo "left behind: $f" >&2; left=1; fi
done <<<"$files"
[ "$left" = 0 ] || fail "dpkg -r left files behind"
echo "removed: no file of the package is left"
echo "deb checks passed"
