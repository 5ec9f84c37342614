"""Type stubs of the fdiff package (see fdiff/__init__.py for the documentation)."""

import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

class RecordingError(ValueError):
    """A malformed recording or snapshot file."""
    file: Optional[str]
    line: Optional[int]

class Fd:
    """One open fd and the decoded fields of its kind (None on fds of other kinds)."""
    key: Optional[str]
    @property
    def fd(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def path(self) -> Optional[str]: ...
    path_hex: Optional[str]
    deleted: Optional[bool]
    size: Optional[int]
    inode: Optional[int]
    dev: Optional[str]
    device_type: Optional[str]
    rdev: Optional[str]
    proto: Optional[str]
    local: Optional[str]
    remote: Optional[str]
    state: Optional[str]
    socket_type: Optional[str]
    peer: Optional[int]
    peer_path: Optional[str]
    netlink_family: Optional[str]
    subtype: Optional[str]
    eventfd_count: Optional[int]
    tfd: Optional[List[int]]
    clockid: Optional[str]
    interval_secs: Optional[float]
    value_secs: Optional[float]
    sigmask: Optional[List[str]]
    watches: Optional[int]
    target_pid: Optional[int]
    name: Optional[str]
    target_hex: Optional[str]
    def to_dict(self) -> Dict[str, Any]: ...
    def identity(self) -> Tuple[int, str, Optional[int]]: ...

class Snapshot:
    """Every open fd of one process at one instant."""
    fds: List[Fd]
    @property
    def pid(self) -> int: ...
    @property
    def comm(self) -> str: ...
    @property
    def cmdline(self) -> List[str]: ...
    @property
    def start_time(self) -> int: ...
    @property
    def taken_at(self) -> float: ...
    @property
    def fd_limit(self) -> Optional[int]: ...
    @property
    def fd_limit_hard(self) -> Optional[int]: ...
    @property
    def errors(self) -> List[Dict[str, Any]]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def diff(self, other: Snapshot) -> Diff: ...
    def __len__(self) -> int: ...

class Replaced:
    """Same fd number, another open file."""
    old: Fd
    new: Fd

class GroupChange:
    """A group's count before and after a diff."""
    kind: str
    key: str
    before: int
    after: int
    change: int

class Diff:
    """What changed between two snapshots, by identity."""
    opened: List[Fd]
    closed: List[Fd]
    replaced: List[Replaced]
    groups: List[GroupChange]
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __bool__(self) -> bool: ...

class GroupCount:
    """One group of one process at one tick."""
    kind: str
    key: str
    count: int
    change: int

class TickProcess:
    """What one tick saw of one process."""
    pid: int
    start_time: int
    event: str
    comm: Optional[str]
    fds: Optional[int]
    opened: List[Fd]
    closed: List[Fd]
    replaced: List[Replaced]
    groups: List[GroupCount]

class Tick:
    """One tick of a watch or a recording."""
    t: float
    processes: List[TickProcess]
    @property
    def opened(self) -> List[Fd]: ...
    @property
    def closed(self) -> List[Fd]: ...
    @property
    def groups(self) -> List[GroupCount]: ...

class Group:
    """One group of one process over a watch, with the verdict."""
    pid: int
    comm: str
    kind: str
    key: str
    rate_per_sec: float
    leaking: bool
    examples: List[str]
    timeline: List[float]
    start: int
    end: int
    peak: int
    opened: int
    closed: int
    survivors: int
    def to_dict(self) -> Dict[str, Any]: ...

class Process:
    """One watched process over a watch."""
    pid: int
    comm: str
    fds_start: int
    fds_end: int
    fds_peak: int
    exited: bool
    leak_rate_per_sec: float
    eta_to_limit_secs: Optional[float]

class Report:
    """The fdiff/report/v1 report as objects."""
    leaking: bool
    groups: List[Group]
    processes: List[Process]
    duration_secs: float
    ticks: int
    @property
    def rollup(self) -> List[Dict[str, Any]]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...

class Watch:
    """A live watch: an iterator of ticks and a context manager."""
    interval: float
    duration: Optional[float]
    warnings: List[str]
    def tick(self) -> Tick: ...
    def __iter__(self) -> Iterator[Tick]: ...
    def __enter__(self) -> Watch: ...
    def __exit__(self, *exc: Any) -> None: ...
    def stop(self) -> None: ...
    def report(self) -> Report: ...

class Recording:
    """A recording made by fdiff --record."""
    path: str
    interval_secs: float
    def __iter__(self) -> Iterator[Tick]: ...
    def snapshots(self, at: int = ...) -> List[Snapshot]: ...
    def report(self) -> Report: ...

def snapshot(pid: Optional[int] = ...) -> Snapshot: ...
def watch(
    pid: Union[int, Sequence[int], None] = ...,
    name: Optional[str] = ...,
    children: bool = ...,
    interval: float = ...,
    duration: Optional[float] = ...,
    full: bool = ...,
) -> Watch: ...
def load_recording(path: Union[str, os.PathLike[str]]) -> Recording: ...
def report(path: Union[str, os.PathLike[str]]) -> Report: ...
