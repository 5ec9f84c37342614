"""fdiff: find file-descriptor leaks, from Python.

Snapshots of every open fd of a process (files, sockets, pipes, eventfd/epoll/timerfd,
memfd, ...), decoded and grouped by fdiff's keys; diffs by identity (an fd number reused for
something else is a close plus an open); live watches with fdiff's leak verdict; reports of
recordings made by ``fdiff --record``. Everything is read by the fdiff core library in-process
(no subprocess), with the GIL released while it reads /proc.

    >>> import fdiff
    >>> snap = fdiff.snapshot()            # this process
    >>> [fd.kind for fd in snap.fds][:3]
    ['device', 'device', 'device']

The pytest plugin (``pytest --fd-leaks``) lives in :mod:`fdiff.pytest_plugin`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _native
from ._native import RecordingError

__all__ = [
    "Diff",
    "Fd",
    "Group",
    "GroupChange",
    "GroupCount",
    "Process",
    "Recording",
    "RecordingError",
    "Replaced",
    "Report",
    "Snapshot",
    "Tick",
    "TickProcess",
    "Watch",
    "load_recording",
    "report",
    "snapshot",
    "watch",
]

# Decoded fields an Fd of some kind has; on an Fd of another kind they read as None, so code
# can ask `fd.remote` of any fd.
_FIELDS = (
    "path", "path_hex", "deleted", "size", "inode", "dev", "device_type", "rdev", "proto",
    "local", "remote", "state", "socket_type", "peer", "peer_path", "netlink_family",
    "subtype", "eventfd_count", "tfd", "clockid", "interval_secs", "value_secs", "sigmask",
    "watches", "target_pid", "name", "target_hex",
)


def _dumps(doc: Any) -> str:
    # The CLI writes serde_json's pretty form: two-space indent, UTF-8 as is.
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _check_pid(pid: Any, what: str = "pid") -> int:
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise ValueError(f"{what} {pid!r}: not a process id; give a positive integer")
    if pid <= 0 or pid > 2**31 - 1:
        raise ValueError(f"{what} '{pid}': not a process id; give a positive integer")
    return pid


def _check_secs(value: Any, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} {value!r}: not a number of seconds")
    v = float(value)
    if not (lo <= v <= hi):  # also rejects NaN
        raise ValueError(f"{what} '{value}': out of range; give seconds from {lo:g} to {hi:g}")
    return v


class Fd:
    """One open fd: ``.fd``, ``.kind``, ``.target`` and the decoded fields of its kind.

    ``.kind`` is one of file, dir, device, socket, pipe, anon_inode, memfd, unknown. Fields of
    other kinds (``.remote`` of a file, say) are None. ``.key`` is fdiff's group key
    (``/tmp/upload-*.pdf``, ``tcp -> 127.0.0.1:5432 ESTABLISHED``) when the fd came from a
    snapshot.
    """

    __slots__ = ("_d", "key")

    def __init__(self, d: Dict[str, Any], key: Optional[str] = None) -> None:
        self._d = d
        self.key = key

    @property
    def fd(self) -> int:
        """The fd number."""
        return self._d["fd"]

    @property
    def kind(self) -> str:
        """The class of the fd (file, socket, pipe, anon_inode, memfd, ...)."""
        return self._d["kind"]

    @property
    def target(self) -> str:
        """The exact readlink text of /proc/PID/fd/N."""
        return self._d["target"]

    @property
    def path(self) -> Optional[str]:
        """The path of a file, dir, device, FIFO or bound unix socket; a memfd's name."""
        d = self._d
        if "path" in d:
            return d["path"]
        if d.get("kind") == "memfd":
            return d.get("name")
        return None

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS:
            return self._d.get(name)
        raise AttributeError(f"Fd has no attribute {name!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The fd as the snapshot schema writes it."""
        return dict(self._d)

    def identity(self) -> Tuple[int, str, Optional[int]]:
        """What makes an fd the same open file: number, target and inode."""
        return (self.fd, self.target, self._d.get("inode"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fd) and self._d == other._d

    def __hash__(self) -> int:
        return hash(self.identity())

    def __repr__(self) -> str:
        return f"<Fd {self.fd} {self.kind} {self.target!r}>"


class Snapshot:
    """Every open fd of one process at one instant (the ``fdiff/snapshot/v1`` schema)."""

    def __init__(self, doc: Dict[str, Any], keys: Optional[Sequence[Sequence[Any]]] = None):
        self._doc = doc
        key_of = {k[0]: k[2] for k in keys} if keys is not None else {}
        self.fds: List[Fd] = [Fd(e, key_of.get(e["fd"])) for e in doc["fds"]]
        """The open fds, in fd order."""

    @classmethod
    def _from_json(cls, text: str) -> "Snapshot":
        return cls(json.loads(text), json.loads(_native.keys_json(text)))

    @property
    def pid(self) -> int:
        """The process id."""
        return self._doc["pid"]

    @property
    def comm(self) -> str:
        """The command name (/proc/PID/comm)."""
        return self._doc["comm"]

    @property
    def cmdline(self) -> List[str]:
        """The command line, one argument per element."""
        return list(self._doc["cmdline"])

    @property
    def start_time(self) -> int:
        """When the process started (clock ticks after boot): with the pid it names it."""
        return self._doc["start_time"]

    @property
    def taken_at(self) -> float:
        """Unix time of the snapshot."""
        return self._doc["taken_at"]

    @property
    def fd_limit(self) -> Optional[int]:
        """The soft RLIMIT_NOFILE (None when unlimited or unreadable)."""
        return self._doc["fd_limit"].get("soft")

    @property
    def fd_limit_hard(self) -> Optional[int]:
        """The hard RLIMIT_NOFILE."""
        return self._doc["fd_limit"].get("hard")

    @property
    def errors(self) -> List[Dict[str, Any]]:
        """Fds that exist but could not be read: ``{"fd": N, "error": "..."}``."""
        return [dict(e) for e in self._doc["errors"]]

    def to_dict(self) -> Dict[str, Any]:
        """The snapshot as ``fdiff snapshot --format json`` prints it, parsed."""
        return json.loads(json.dumps(self._doc))

    def to_json(self) -> str:
        """The text of ``fdiff snapshot --format json`` (without its final newline)."""
        return _dumps(self._doc)

    def diff(self, other: "Snapshot") -> "Diff":
        """What changed from this snapshot to ``other`` (a later one of the same process)."""
        if not isinstance(other, Snapshot):
            raise ValueError(f"diff: {other!r} is not a Snapshot")
        doc = json.loads(_native.diff_json(json.dumps(self._doc), json.dumps(other._doc)))
        return Diff(doc)

    def __len__(self) -> int:
        return len(self.fds)

    def __repr__(self) -> str:
        return f"<Snapshot pid {self.pid} ({self.comm}): {len(self.fds)} fds>"


class Replaced:
    """An fd number that points at something else now: a close of ``.old``, an open of ``.new``."""

    __slots__ = ("old", "new")

    def __init__(self, old: Fd, new: Fd) -> None:
        self.old = old
        self.new = new

    def __repr__(self) -> str:
        return f"<Replaced {self.old!r} -> {self.new!r}>"


class GroupChange:
    """The count of one group before and after: ``.kind``, ``.key``, ``.before``, ``.after``,
    ``.change``."""

    __slots__ = ("kind", "key", "before", "after", "change")

    def __init__(self, d: Dict[str, Any]) -> None:
        self.kind: str = d["kind"]
        self.key: str = d["key"]
        self.before: int = d["before"]
        self.after: int = d["after"]
        self.change: int = d["change"]

    def __repr__(self) -> str:
        return f"<GroupChange {self.change:+d} {self.kind} {self.key!r}>"


class Diff:
    """What changed between two snapshots, by identity (the ``fdiff/diff/v1`` schema)."""

    def __init__(self, doc: Dict[str, Any]) -> None:
        self._doc = doc
        p = doc["processes"][0]
        self.opened: List[Fd] = [Fd(e) for e in p["opened"]]
        """Fds only in the later snapshot."""
        self.closed: List[Fd] = [Fd(e) for e in p["closed"]]
        """Fds only in the earlier snapshot."""
        self.replaced: List[Replaced] = [Replaced(Fd(r["old"]), Fd(r["new"])) for r in p["replaced"]]
        """Same fd number, another open file."""
        self.groups: List[GroupChange] = [GroupChange(g) for g in p["groups"]]
        """Groups whose count changed, the largest growth first."""

    def to_dict(self) -> Dict[str, Any]:
        """The diff as ``fdiff diff --format json`` prints it, parsed."""
        return json.loads(json.dumps(self._doc))

    def to_json(self) -> str:
        """The text of ``fdiff diff --format json``."""
        return _dumps(self._doc)

    def __bool__(self) -> bool:
        return bool(self.opened or self.closed or self.replaced)

    def __repr__(self) -> str:
        return (f"<Diff +{len(self.opened)} -{len(self.closed)} "
                f"~{len(self.replaced)}>")


def snapshot(pid: Optional[int] = None) -> Snapshot:
    """Snapshot every open fd of process ``pid`` (default: the calling process).

    Raises ProcessLookupError when there is no such process, PermissionError when its fds
    cannot be read (same user, root or CAP_SYS_PTRACE), ValueError for a pid that is not one.
    """
    p = os.getpid() if pid is None else _check_pid(pid)
    return Snapshot._from_json(_native.snapshot_json(p))


class GroupCount:
    """One group of one process at one tick: ``.kind``, ``.key``, ``.count``, ``.change``."""

    __slots__ = ("kind", "key", "count", "change")

    def __init__(self, d: Dict[str, Any]) -> None:
        self.kind: str = d["kind"]
        self.key: str = d["key"]
        self.count: int = d["count"]
        self.change: int = d["change"]

    def __repr__(self) -> str:
        return f"<GroupCount {self.count} ({self.change:+d}) {self.kind} {self.key!r}>"


class TickProcess:
    """What one tick saw of one process: ``.event`` is first, update or exited."""

    def __init__(self, d: Dict[str, Any]) -> None:
        self.pid: int = d["pid"]
        self.start_time: int = d["start_time"]
        self.event: str = d["event"]
        self.comm: Optional[str] = d.get("comm")
        self.fds: Optional[int] = d.get("fds")
        """Open fds now (None for an exit)."""
        self.opened: List[Fd] = [Fd(e) for e in d.get("opened", [])]
        self.closed: List[Fd] = [Fd(e) for e in d.get("closed", [])]
        self.replaced: List[Replaced] = [
            Replaced(Fd(r["old"]), Fd(r["new"])) for r in d.get("replaced", [])
        ]
        self.groups: List[GroupCount] = [GroupCount(g) for g in d.get("groups", [])]

    def __repr__(self) -> str:
        return f"<TickProcess pid {self.pid} {self.event} fds={self.fds}>"


class Tick:
    """One tick of a watch or a recording: ``.t`` (unix time) and ``.processes``."""

    def __init__(self, doc: Dict[str, Any]) -> None:
        self.t: float = doc["t"]
        self.processes: List[TickProcess] = [TickProcess(p) for p in doc["processes"]]

    @property
    def opened(self) -> List[Fd]:
        """Fds opened since the last tick, over every process (replacing ones included)."""
        return [f for p in self.processes for f in p.opened + [r.new for r in p.replaced]]

    @property
    def closed(self) -> List[Fd]:
        """Fds closed since the last tick, over every process (replaced ones included)."""
        return [f for p in self.processes for f in p.closed + [r.old for r in p.replaced]]

    @property
    def groups(self) -> List[GroupCount]:
        """Every group of every process at this tick."""
        return [g for p in self.processes for g in p.groups]

    def __repr__(self) -> str:
        return f"<Tick t={self.t:.3f} +{len(self.opened)} -{len(self.closed)}>"


class Group:
    """One group of one process over a watch, with fdiff's verdict."""

    def __init__(self, d: Dict[str, Any]) -> None:
        self._d = d
        self.pid: int = d["pid"]
        self.comm: str = d["comm"]
        self.kind: str = d["kind"]
        self.key: str = d["key"]
        self.rate_per_sec: float = d["rate_per_sec"]
        """The growth the verdict measured, in fds per second."""
        self.leaking: bool = d["leaking"]
        self.examples: List[str] = list(d["examples"])
        """Up to three targets of the group, those opened during the watch first."""
        self.timeline: List[float] = list(d["series"])
        """The count over time (at most 32 points)."""
        self.start: int = d["start"]
        self.end: int = d["end"]
        self.peak: int = d["peak"]
        self.opened: int = d["opened"]
        self.closed: int = d["closed"]
        self.survivors: int = d["survivors"]

    def to_dict(self) -> Dict[str, Any]:
        """The group as the report schema writes it."""
        return dict(self._d)

    def __repr__(self) -> str:
        v = "LEAK " if self.leaking else ""
        return f"<Group {v}pid {self.pid} {self.kind} {self.key!r} {self.rate_per_sec:+.2f}/s>"


class Process:
    """One watched process over a watch."""

    def __init__(self, d: Dict[str, Any]) -> None:
        self._d = d
        self.pid: int = d["pid"]
        self.comm: str = d["comm"]
        self.fds_start: int = d["fds_start"]
        self.fds_end: int = d["fds_end"]
        self.fds_peak: int = d["fds_peak"]
        self.exited: bool = d["exited"]
        self.leak_rate_per_sec: float = d["leak_rate_per_sec"]
        self.eta_to_limit_secs: Optional[float] = d["eta_to_limit_secs"]
        """Seconds until the soft fd limit at the leak rate, when it leaks."""

    def __repr__(self) -> str:
        return f"<Process pid {self.pid} ({self.comm}) {self.fds_start}->{self.fds_end} fds>"


class Report:
    """What a watch found (the ``fdiff/report/v1`` schema) as objects."""

    def __init__(self, doc: Dict[str, Any]) -> None:
        self._doc = doc
        self.leaking: bool = doc["leaking"]
        """Any group or roll-up leaks."""
        self.groups: List[Group] = [Group(g) for g in doc["groups"]]
        """Per process, leaking first, then by growth."""
        self.processes: List[Process] = [Process(p) for p in doc["processes"]]
        self.duration_secs: float = doc["duration_secs"]
        self.ticks: int = doc["ticks"]

    @property
    def rollup(self) -> List[Dict[str, Any]]:
        """Keys summed over the processes of one command, as the schema writes them."""
        return json.loads(json.dumps(self._doc["rollup"]))

    def to_dict(self) -> Dict[str, Any]:
        """The report as ``fdiff --format json`` prints it, parsed."""
        return json.loads(json.dumps(self._doc))

    def to_json(self) -> str:
        """The text of the JSON report."""
        return _dumps(self._doc)

    def __repr__(self) -> str:
        n = sum(g.leaking for g in self.groups)
        return f"<Report {self.ticks} ticks, {len(self.groups)} groups, {n} leaking>"


class Watch:
    """A live watch; see :func:`watch`. Iterate it for ticks, or use it as a context manager
    (ticks are then taken by a background thread until the block ends); ``.report()`` at any
    time."""

    def __init__(self, pids: List[int], name: Optional[str], full: bool, children: bool,
                 interval: float, duration: Optional[float]) -> None:
        self._native = _native.Watcher(pids, name, full, children, interval)
        self._dynamic = name is not None or children
        self.interval = interval
        self.duration = duration
        self.warnings: List[str] = []
        """Warnings of the watch (processes that could not be read, ...)."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._started: Optional[float] = None
        self._ticks = 0

    def tick(self) -> Tick:
        """Take one tick now."""
        with self._lock:
            doc, warnings = self._native.tick()
        self.warnings.extend(warnings)
        self._ticks += 1
        if self._started is None:
            self._started = time.monotonic()
        return Tick(json.loads(doc))

    def _over(self) -> bool:
        if self._started is not None and self.duration is not None:
            if time.monotonic() - self._started >= self.duration:
                return True
        # Without a duration, a watch ends when everything it watched has exited; a watch by
        # name or of children with a duration keeps looking for new matches until it ends.
        if self._ticks > 0 and self._native.live() == 0:
            return not (self._dynamic and self.duration is not None)
        return False

    def __iter__(self) -> Iterator[Tick]:
        nxt = time.monotonic()
        while not self._stop.is_set():
            yield self.tick()
            if self._over():
                return
            nxt += self.interval
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def _run(self) -> None:
        try:
            for _ in self:
                pass
        except BaseException as e:  # handed to the thread that leaves the block
            self._error = e

    def __enter__(self) -> "Watch":
        self.tick()
        self._thread = threading.Thread(target=self._run, name="fdiff-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        """End a background watch: one last tick, so what the block did is seen."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._error is None and self._native.live() > 0:
                try:
                    self.tick()
                except ProcessLookupError:
                    pass
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    def report(self) -> Report:
        """The report of everything watched so far, with fdiff's verdict per group."""
        with self._lock:
            return Report(json.loads(self._native.report()))


def watch(pid: Union[int, Sequence[int], None] = None, name: Optional[str] = None,
          children: bool = False, interval: float = 1.0, duration: Optional[float] = None,
          full: bool = False) -> Watch:
    """Watch processes: by ``pid`` (one or a list), by ``name`` (a regex on the command name,
    or with ``full=True`` on the whole command line), with ``children`` their descendants.

    Ticks come every ``interval`` seconds (0.01 to 86400); ``duration`` bounds the watch. The
    calling process itself cannot be watched (fdiff never watches itself): take
    :func:`snapshot` s of it instead. Raises ValueError for bad arguments, and at the first
    tick ProcessLookupError / PermissionError for a pid that cannot be read.
    """
    if pid is None:
        pids: List[int] = []
    elif isinstance(pid, (list, tuple)):
        pids = [_check_pid(p) for p in pid]
    else:
        pids = [_check_pid(pid)]
    if name is not None and not isinstance(name, str):
        raise ValueError(f"name {name!r}: give a regular expression as a string")
    if not pids and name is None:
        raise ValueError("nothing to watch: give pid=PID or name=REGEX")
    iv = _check_secs(interval, "interval", 0.01, 86400.0)
    dur = None if duration is None else _check_secs(duration, "duration", 0.001, 100 * 365.25 * 86400)
    return Watch(pids, name, bool(full), bool(children), iv, dur)


class Recording:
    """A recording made by ``fdiff --record FILE.jsonl``: iterate it for its ticks."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._reader = _native.RecordingReader(path)  # fails early on a bad header
        self.interval_secs: float = self._reader.interval_secs()
        """The interval the recording was made at."""

    def __iter__(self) -> Iterator[Tick]:
        reader = _native.RecordingReader(self.path)
        while True:
            doc = reader.next_tick()
            if doc is None:
                return
            yield Tick(json.loads(doc))

    def snapshots(self, at: int = -1) -> List[Snapshot]:
        """The snapshots of tick ``at`` (0 is the first, -1 the last)."""
        if isinstance(at, bool) or not isinstance(at, int):
            raise ValueError(f"at {at!r}: give a tick number")
        text, _ = _native.load_snapshots_json(f"{self.path}@{at}")
        return [Snapshot(d, json.loads(_native.keys_json(json.dumps(d)))) for d in json.loads(text)]

    def report(self) -> Report:
        """The same report ``fdiff report FILE`` prints."""
        return report(self.path)

    def __repr__(self) -> str:
        return f"<Recording {self.path!r}>"


def _path(path: Any) -> str:
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if isinstance(path, (str, os.PathLike)):
        return os.fspath(path)
    raise ValueError(f"path {path!r}: give a file name")


def load_recording(path: Union[str, "os.PathLike[str]"]) -> Recording:
    """Open a recording made by ``fdiff --record``. Raises FileNotFoundError (an OSError) when
    it cannot be opened, RecordingError when it is not a recording."""
    return Recording(_path(path))


def report(path: Union[str, "os.PathLike[str]"]) -> Report:
    """Re-analyse a recording: the report ``fdiff report FILE --format json`` prints."""
    doc, _ = _native.report_json(_path(path))
    return Report(json.loads(doc))
