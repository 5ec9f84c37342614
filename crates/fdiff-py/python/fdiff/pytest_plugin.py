"""pytest plugin: ``pytest --fd-leaks[=warn|fail]`` names the test that leaks file descriptors.

Before each test (setup included) and after it (teardown included) the plugin snapshots the
test process with fdiff, and with ``--fd-leaks-children`` the processes it started. An fd open
after the test that was not open before it (by identity: number, target and inode, so a
number closed and reopened onto something else is a close plus an open) is a leftover. After
``gc.collect()`` and a short settle (sockets closed by the GC or by another thread) the
leftovers that remain are reported, grouped by fdiff's keys::

    test_upload.py::test_pdf leaked 3 fds: 2 × file /tmp/upload-*.pdf, 1 × tcp -> 127.0.0.1:5432 ESTABLISHED

What a clean test may leave behind is never blamed on it:

* fds 0, 1 and 2 (pytest's capture moves them around);
* fds opened while a fixture of a wider scope than ``function`` was set up (they are the
  fixture's, and it closes them when its scope ends);
* fds held by process-wide singletons: logging handlers, the default asyncio event loop, the
  multiprocessing resource tracker, and files under the Python installation (lazy imports);
* warm-up: the files, dirs and devices the first test of each process (each xdist worker)
  leaves open *read-only* (lazy imports, data files and caches read on first use,
  ``/dev/urandom``) are listed in the summary as warm-up, not blamed. Everything else a first
  test leaves (sockets, pipes, eventfds, files opened for writing) is blamed like in any other
  test, so a leaky first test is still caught. The ini option ``fd_leaks_warmup`` sets how
  many first tests have a warm-up (default 1; 0: none).

``@pytest.mark.fd_leaks(allow=["pipe", "tcp", "/tmp/*.pdf"])`` allows leftovers of a kind
(file, socket, pipe, anon_inode, memfd, ...), a socket protocol (tcp, udp, unix, ...), an
anon_inode subtype (eventfd, eventpoll, timerfd, ...), or a glob on the key or the target.
``@pytest.mark.fd_leaks(check=False)`` leaves a test unchecked.
"""

from __future__ import annotations

import fnmatch
import gc
import logging
import os
import sys
import time
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import pytest

import fdiff

_MODES = ("off", "warn", "fail")
_PROPERTY = "fdiff_fd_leaks"
Identity = Tuple[int, str, Optional[int]]


def pytest_addoption(parser: "pytest.Parser") -> None:
    group = parser.getgroup("fd-leaks", "file-descriptor leaks (fdiff)")
    group.addoption(
        "--fd-leaks", dest="fd_leaks", nargs="?", const="warn", default=None,
        metavar="warn|fail",
        help="report fds a test leaves open (warn, the default) or fail the test (fail)",
    )
    group.addoption(
        "--fd-leaks-children", dest="fd_leaks_children", action="store_true", default=None,
        help="with --fd-leaks, also check the processes each test started",
    )
    parser.addini("fd_leaks", "off, warn or fail: what --fd-leaks does by default", default="off")
    parser.addini("fd_leaks_children", "check the processes tests start (bool)", type="bool",
                  default=False)
    parser.addini("fd_leaks_settle", "seconds to wait for asynchronous closes (default 0.5)",
                  default="0.5")
    parser.addini("fd_leaks_warmup", "first tests of each process whose leftovers are "
                  "warm-up, not leaks (default 1)", default="1")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: "pytest.Config", parser: Any,
                                  args: List[str]) -> None:
    # `--fd-leaks` takes an optional value, so argparse would swallow a path after it
    # (`pytest --fd-leaks tests/`): give it its value explicitly and hand the path back.
    for i, a in enumerate(args):
        if a == "--":
            break
        if a == "--fd-leaks" and i + 1 < len(args) and args[i + 1] not in _MODES \
                and not args[i + 1].startswith("-"):
            args[i] = "--fd-leaks=warn"
            ns = early_config.known_args_namespace
            if getattr(ns, "fd_leaks", None) == args[i + 1]:
                ns.fd_leaks = "warn"
                ns.file_or_dir = list(getattr(ns, "file_or_dir", None) or []) + [args[i + 1]]
            break


def pytest_configure(config: "pytest.Config") -> None:
    config.addinivalue_line(
        "markers",
        "fd_leaks(allow=[...], check=True): fds a test may leave open (kinds, protocols, "
        "subtypes or globs on the key), or check=False to skip the fd-leak check",
    )
    mode = config.getoption("fd_leaks")
    if mode is None:
        mode = str(config.getini("fd_leaks")).strip() or "off"
    if mode not in _MODES:
        raise pytest.UsageError(
            f"fdiff: --fd-leaks {mode!r}: not a mode; give --fd-leaks=warn or --fd-leaks=fail")
    children = config.getoption("fd_leaks_children")
    if children is None:
        children = bool(config.getini("fd_leaks_children"))
    settle = _number(config, "fd_leaks_settle", float)
    warmup = _number(config, "fd_leaks_warmup", int)
    config.pluginmanager.register(
        FdLeakPlugin(mode, children, settle, warmup), "fdiff-fd-leaks")


def _number(config: "pytest.Config", name: str, conv: Any) -> Any:
    raw = str(config.getini(name)).strip()
    try:
        v = conv(raw)
    except ValueError:
        v = -1
    if v < 0:
        raise pytest.UsageError(f"fdiff: {name} {raw!r}: give a number of at least 0")
    return v


def _descendants(root: int) -> Dict[int, int]:
    """Every descendant of ``root`` now, as pid -> start time."""
    parent: Dict[int, Tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The name is in parentheses and may hold anything: fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 19:
            parent[int(name)] = (int(fields[1]), int(fields[19]))
    out: Dict[int, int] = {}
    todo = [root]
    while todo:
        p = todo.pop()
        for c, (pp, st) in parent.items():
            if pp == p and c not in out:
                out[c] = st
                todo.append(c)
    return out


def _singleton_fds() -> Set[int]:
    """Fds held by process-wide singletons a clean test may set up on first use."""
    fds: Set[int] = set()

    def add(obj: Any) -> None:
        try:
            if obj is not None:
                fds.add(int(obj.fileno()))
        except (AttributeError, OSError, ValueError, TypeError):
            pass

    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for lg in loggers:
        for h in list(getattr(lg, "handlers", ())):
            add(getattr(h, "stream", None))
            add(getattr(h, "socket", None))
            add(getattr(h, "sock", None))
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            loop = asyncio.get_event_loop_policy()._local._loop  # type: ignore[attr-defined]
        except AttributeError:
            loop = None
        if loop is not None and not loop.is_closed():
            add(getattr(loop, "_selector", None))
            add(getattr(loop, "_ssock", None))
            add(getattr(loop, "_csock", None))
    rt = sys.modules.get("multiprocessing.resource_tracker")
    if rt is not None:
        fd = getattr(getattr(rt, "_resource_tracker", None), "_fd", None)
        if isinstance(fd, int):
            fds.add(fd)
    return fds


def _install_prefixes() -> Tuple[str, ...]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs if d)


def _label(fd: fdiff.Fd) -> str:
    key = fd.key or fd.target
    # Socket keys start with their protocol already ("tcp -> 127.0.0.1:5432 ESTABLISHED").
    if fd.kind in ("socket", "anon_inode", "pipe") or key.startswith(fd.kind):
        return key
    return f"{fd.kind} {key}"


def _allowed(fd: fdiff.Fd, allow: Iterable[str]) -> bool:
    names = {fd.kind, fd.proto, fd.subtype}
    for a in allow:
        if a in names or a == _label(fd):
            return True
        if any(ch in a for ch in "*?[") and (
                fnmatch.fnmatchcase(_label(fd), a) or fnmatch.fnmatchcase(fd.key or "", a)
                or fnmatch.fnmatchcase(fd.target, a) or fnmatch.fnmatchcase(fd.path or "", a)):
            return True
    return False


def _summary(fds: List[fdiff.Fd]) -> str:
    counts: Dict[str, int] = {}
    for fd in fds:
        counts[_label(fd)] = counts.get(_label(fd), 0) + 1
    parts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} × {label}" for label, n in parts)


class FdLeakPlugin:
    """The per-process state of the check: the snapshot before the current test, the fds of
    wider-scoped fixtures, how many tests ran."""

    def __init__(self, mode: str, children: bool, settle: float, warmup: int) -> None:
        self.mode = mode
        self.children = children
        self.settle = settle
        self.warmup = warmup
        self.pid = os.getpid()
        self.tests = 0
        self.fixture_fds: Set[Identity] = set()
        self.before: Optional[Set[Identity]] = None
        self.before_children: Dict[int, Tuple[int, Set[Identity]]] = {}
        self.prefixes = _install_prefixes()
        # Lines for the terminal summary, gathered from every report (xdist workers' too).
        self.leaks: List[str] = []
        self.warmups: List[str] = []

    # -- taking the snapshots ------------------------------------------------------------

    def _snap_ids(self, pid: Optional[int] = None) -> Tuple[fdiff.Snapshot, Set[Identity]]:
        s = fdiff.snapshot(pid)
        return s, {f.identity() for f in s.fds}

    def _active(self, item: "pytest.Item") -> bool:
        if self.mode == "off":
            return False
        m = item.get_closest_marker("fd_leaks")
        return not (m is not None and m.kwargs.get("check", True) is False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: "pytest.Item", nextitem: Any) -> Any:
        if self._active(item) and os.getpid() == self.pid:
            gc.collect()
            _, self.before = self._snap_ids()
            self.before_children = {}
            if self.children:
                for pid, st in _descendants(self.pid).items():
                    try:
                        self.before_children[pid] = (st, self._snap_ids(pid)[1])
                    except (ProcessLookupError, PermissionError):
                        pass
        else:
            self.before = None
        yield
        self.before = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Any:
        # What a wider-scoped fixture opens is the fixture's, closed when its scope ends.
        wide = self.mode != "off" and getattr(fixturedef, "scope", "function") != "function"
        before = self._snap_ids()[1] if wide else None
        yield
        if before is not None:
            self.fixture_fds |= self._snap_ids()[1] - before

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: "pytest.Item", call: Any) -> Any:
        outcome = yield
        if call.when != "teardown" or self.before is None:
            return
        rep = outcome.get_result()
        self.tests += 1
        left = self._leftovers(item)
        if not left:
            return
        if self.tests <= self.warmup:
            # Warm-up: what a first test reads and keeps (imports, data files, caches of
            # /dev/urandom and the like) is not its leak; a socket, a pipe or a file opened
            # for writing still is.
            warm = [x for x in left if isinstance(x, fdiff.Fd) and _read_only(x)]
            if warm:
                rep.user_properties.append((_PROPERTY, ("warmup", _line(item, warm))))
            left = [x for x in left if not any(x is w for w in warm)]
            if not left:
                return
        line = _line(item, left)
        rep.user_properties.append((_PROPERTY, ("leak", line)))
        if self.mode == "fail" and rep.outcome != "failed":
            rep.outcome = "failed"
            rep.longrepr = f"fdiff: {line}"

    def _leftovers(self, item: "pytest.Item") -> List[Any]:
        m = item.get_closest_marker("fd_leaks")
        allow = list(m.kwargs.get("allow", ())) if m is not None else []
        if m is not None and isinstance(allow, str):
            allow = [allow]
        deadline = time.monotonic() + self.settle
        while True:
            gc.collect()
            left: List[Any] = self._own_leftovers(allow)
            if self.children:
                left += self._child_leftovers(allow)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.02)

    def _own_leftovers(self, allow: List[str]) -> List[fdiff.Fd]:
        snap = fdiff.snapshot()
        assert self.before is not None
        singletons = _singleton_fds()
        out = []
        for fd in snap.fds:
            ident = fd.identity()
            if fd.fd <= 2 or ident in self.before or ident in self.fixture_fds:
                continue
            if fd.fd in singletons:
                continue
            if fd.kind == "file" and fd.path and fd.path.startswith(self.prefixes):
                continue
            if _allowed(fd, allow):
                continue
            out.append(fd)
        return out

    def _child_leftovers(self, allow: List[str]) -> List[Any]:
        out: List[Any] = []
        for pid, st in _descendants(self.pid).items():
            try:
                snap = fdiff.snapshot(pid)
            except (ProcessLookupError, PermissionError):
                continue
            known = self.before_children.get(pid)
            if known is not None and known[0] == st:
                out += [f for f in snap.fds
                        if f.identity() not in known[1] and not _allowed(f, allow)]
            elif not _allowed_process(allow):
                out.append(_ChildProcess(snap))
        return out

    # -- reporting (in the process that reports: the xdist controller, or this one) -------

    def pytest_runtest_logreport(self, report: Any) -> None:
        for name, value in getattr(report, "user_properties", ()):
            if name == _PROPERTY:
                kind, line = value
                (self.warmups if kind == "warmup" else self.leaks).append(line)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.mode == "off":
            return
        tr = terminalreporter
        if self.leaks or self.warmups:
            tr.write_sep("=", "fd leaks (fdiff)")
        for line in self.leaks:
            tr.write_line(line)
        for line in self.warmups:
            tr.write_line(f"{line} (warm-up: read-only opens of a first test, not blamed)")


class _ChildProcess:
    """A process the test started that is still running after it."""

    def __init__(self, snap: fdiff.Snapshot) -> None:
        self.label = f"process pid {snap.pid} ({snap.comm}) still running with {len(snap.fds)} fds"


def _line(item: "pytest.Item", left: List[Any]) -> str:
    n = sum(1 for x in left if isinstance(x, fdiff.Fd))
    what = [f"{n} fd{'s' if n != 1 else ''}"] if n else []
    if len(left) > n:
        k = len(left) - n
        what.append(f"{k} process{'es' if k != 1 else ''}")
    return f"{item.nodeid} leaked {' and '.join(what)}: {_summary_all(left)}"


def _read_only(fd: fdiff.Fd) -> bool:
    """A file, dir or device of this process opened read-only (from /proc/self/fdinfo)."""
    if fd.kind not in ("file", "dir", "device"):
        return False
    try:
        with open(f"/proc/self/fdinfo/{fd.fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE == os.O_RDONLY
    except (OSError, ValueError, IndexError):
        pass
    return False


def _allowed_process(allow: List[str]) -> bool:
    return "process" in allow


def _summary_all(left: List[Any]) -> str:
    fds = [x for x in left if isinstance(x, fdiff.Fd)]
    procs = [x.label for x in left if isinstance(x, _ChildProcess)]
    parts = [p for p in [_summary(fds)] if p] + [f"1 × {p}" for p in procs]
    return ", ".join(parts)
