"""The Python API: snapshots, diffs, watches, recordings and errors, on real processes."""

import json
import os
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import fdiff

CHILD = textwrap.dedent("""
    import os, sys, time
    files = []
    for i in range(int(sys.argv[2])):
        files.append(open(os.path.join(sys.argv[1], f"upload-{i}.pdf"), "w"))
        time.sleep(float(sys.argv[3]))
    print("done", flush=True)
    time.sleep(60)
""")


def start_leaker(tmp_path, n, pause):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(n), str(pause)],
                            stdout=subprocess.PIPE)


def by_fd(snap, n):
    return next(f for f in snap.fds if f.fd == n)


def test_snapshot_of_this_process_decodes_every_kind(tmp_path):
    f = open(tmp_path / "a.txt", "w")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    cli = socket.create_connection(srv.getsockname())
    r, w = os.pipe()
    u1, u2 = socket.socketpair()
    ep = select.epoll()
    mfd = os.memfd_create("fdpy-buffer")
    try:
        s = fdiff.snapshot()
        assert s.pid == os.getpid() and s.comm and s.fd_limit and s.fd_limit > 0
        assert by_fd(s, f.fileno()).kind == "file"
        assert by_fd(s, f.fileno()).path == str(tmp_path / "a.txt")
        c = by_fd(s, cli.fileno())
        assert (c.kind, c.proto, c.state) == ("socket", "tcp", "ESTABLISHED")
        assert c.remote == "127.0.0.1:%d" % srv.getsockname()[1]
        assert by_fd(s, srv.fileno()).state == "LISTEN"
        assert by_fd(s, r).kind == "pipe" and by_fd(s, r).inode == by_fd(s, w).inode
        assert by_fd(s, u1.fileno()).proto == "unix"
        assert by_fd(s, u1.fileno()).peer == by_fd(s, u2.fileno()).inode
        assert by_fd(s, ep.fileno()).subtype == "eventpoll"
        assert by_fd(s, mfd).kind == "memfd" and by_fd(s, mfd).path == "fdpy-buffer"
        assert by_fd(s, f.fileno()).remote is None
        assert by_fd(s, f.fileno()).key.endswith("a.txt")
        # The reader's own handles on /proc are not in the snapshot of this process.
        assert not any(x.target.startswith(f"/proc/{os.getpid()}") for x in s.fds)
        assert json.loads(s.to_json()) == s.to_dict()
    finally:
        for x in (f, srv, cli, u1, u2, ep):
            x.close()
        for x in (r, w, mfd):
            os.close(x)


def test_snapshot_equals_the_cli_json(fdiff_bin, tmp_path):
    p = start_leaker(tmp_path, 3, 0)
    try:
        assert p.stdout.readline().strip() == b"done"
        ours = fdiff.snapshot(p.pid).to_dict()
        cli = json.loads(subprocess.run([fdiff_bin, "snapshot", "--pid", str(p.pid), "--format",
                                         "json"], capture_output=True, check=True).stdout)
        ours.pop("taken_at"), cli.pop("taken_at")
        assert ours == cli
    finally:
        p.kill()
        p.wait()


def test_diff_sees_a_reused_fd_number_as_close_plus_open(tmp_path):
    f = open(tmp_path / "one.log", "w")
    n = f.fileno()
    a = fdiff.snapshot()
    f.close()
    g = open(tmp_path / "two.log", "w")
    assert g.fileno() == n
    b = fdiff.snapshot()
    d = a.diff(b)
    g.close()
    assert [(r.old.path, r.new.path) for r in d.replaced] == [
        (str(tmp_path / "one.log"), str(tmp_path / "two.log"))]
    assert not d.opened and not d.closed
    assert d.to_dict()["schema"] == "fdiff/diff/v1"


def test_diff_groups_count_what_accumulated(tmp_path):
    a = fdiff.snapshot()
    keep = [open(tmp_path / f"upload-{i}.pdf", "w") for i in range(3)]
    d = a.diff(fdiff.snapshot())
    for k in keep:
        k.close()
    g = [g for g in d.groups if g.key.endswith("upload-*.pdf")]
    assert len(g) == 1 and (g[0].kind, g[0].change) == ("file", 3)
    assert len(d.opened) == 3


def test_watch_iterates_ticks_and_judges_the_leak(tmp_path):
    # Leaks for 4 s, past the 2.5 s watch (see test_recordings_of_the_cli).
    p = start_leaker(tmp_path, 80, 0.05)
    try:
        w = fdiff.watch(pid=p.pid, interval=0.1, duration=2.5)
        ticks = list(w)
        assert len(ticks) >= 5
        opened = [f.path for t in ticks for f in t.opened]
        assert any(x and x.endswith(".pdf") for x in opened)
        r = w.report()
        g = next(g for g in r.groups if g.key.endswith("upload-*.pdf"))
        assert g.leaking and r.leaking and g.rate_per_sec > 0 and g.kind == "file"
        assert g.examples and g.timeline
        assert r.to_dict()["schema"] == "fdiff/report/v1"
    finally:
        p.kill()
        p.wait()


def test_watch_as_a_context_manager_from_a_thread(tmp_path):
    p = start_leaker(tmp_path, 30, 0.05)
    out = {}
    beats = []

    def run():
        with fdiff.watch(pid=p.pid, interval=0.05) as w:
            time.sleep(1.6)
        out["report"] = w.report()

    t = threading.Thread(target=run)
    t.start()
    # The main thread keeps running while the watch reads /proc (the GIL is released).
    while t.is_alive():
        beats.append(time.monotonic())
        time.sleep(0.01)
    t.join()
    p.kill()
    p.wait()
    assert len(beats) > 20
    r = out["report"]
    assert r.ticks >= 3
    assert any(g.key.endswith("upload-*.pdf") and g.end >= 10 for g in r.groups)


def test_watch_by_name_with_children(tmp_path, unique):
    script = f"import subprocess,sys,time; c=subprocess.Popen([sys.executable,'-c','import time; time.sleep(30)']); time.sleep(30)"
    p = subprocess.Popen([sys.executable, "-c", script, unique])
    try:
        time.sleep(0.5)
        w = fdiff.watch(name=unique, full=True, children=True, interval=0.1, duration=0.5)
        seen = {tp.pid for t in w for tp in t.processes}
        assert p.pid in seen and len(seen) >= 2
    finally:
        p.kill()
        p.wait()


def test_errors_are_the_exceptions_a_user_expects(tmp_path):
    p = subprocess.Popen(["true"])
    p.wait()
    with pytest.raises(ProcessLookupError, match=f"no process with pid '{p.pid}'"):
        fdiff.snapshot(p.pid)
    for bad in (-1, 0, "12", 1.5, True):
        with pytest.raises(ValueError):
            fdiff.snapshot(bad)
    with pytest.raises(ValueError, match="interval"):
        fdiff.watch(pid=os.getppid(), interval=0)
    with pytest.raises(ValueError, match="nothing to watch"):
        fdiff.watch()
    with pytest.raises(ValueError, match="regular expression"):
        fdiff.watch(name="(")
    with pytest.raises(ValueError, match="itself"):
        next(iter(fdiff.watch(pid=os.getpid())))
    with pytest.raises(FileNotFoundError):
        fdiff.report(tmp_path / "missing.jsonl")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every process")
def test_permission_error_has_the_cli_text():
    with pytest.raises(PermissionError, match="run fdiff as the same user, as root, or with CAP_SYS_PTRACE"):
        fdiff.snapshot(1)


def test_recording_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n")
    with pytest.raises(fdiff.RecordingError) as e:
        fdiff.report(bad)
    assert isinstance(e.value, ValueError)
    assert e.value.file == str(bad) and e.value.line == 1


def test_recordings_of_the_cli(fdiff_bin, tmp_path):
    # Leaks for 4 s, longer than the 2 s watch: a leak that stopped before the watch's last
    # quarter is rightly judged a filled pool, not a leak.
    p = start_leaker(tmp_path, 80, 0.05)
    rec = tmp_path / "rec.jsonl"
    try:
        subprocess.run([fdiff_bin, "--pid", str(p.pid), "--interval", "100ms", "--duration",
                        "2s", "--quiet", "--record", str(rec)], check=True, capture_output=True)
    finally:
        p.kill()
        p.wait()
    r = fdiff.report(rec)
    cli = json.loads(subprocess.run([fdiff_bin, "report", str(rec), "--format", "json"],
                                    capture_output=True, check=True).stdout)
    assert r.to_dict() == cli
    assert r.leaking
    recording = fdiff.load_recording(rec)
    ticks = list(recording)
    assert len(ticks) == r.ticks
    last = recording.snapshots(-1)
    assert len(last) == 1 and last[0].pid == p.pid
    assert sum(1 for f in last[0].fds if (f.path or "").endswith(".pdf")) >= 10
