"""A sample suite for the plugin's own tests: clean tests (some that leave behind what a clean
test legitimately may) next to tests that leak one kind of fd each. The names say which:
test_leak_* leak, the others must never be blamed. Run only through test_plugin.py."""

import asyncio
import ctypes
import gc
import logging
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

KEEP = []  # what the leaky tests leak: referenced, so the GC cannot close it
CACHE = {}
# Open before any test (at import): the fd-reuse test points its number somewhere else.
PRE = open(__file__, "rb")


def test_a_warmup_first_test(tmp_path):
    # A first test that sets up lazily what the rest of the suite shares: a log file,
    # imports, an asyncio loop.
    logging.getLogger("sample").addHandler(logging.FileHandler(tmp_path / "sample.log"))
    import json, decimal, email.parser  # noqa: F401,E401
    # A cache filled on first use and kept for the session: read-only, so warm-up.
    CACHE.setdefault("random", open("/dev/urandom", "rb"))
    CACHE.setdefault("data", open(__file__, "rb"))


def test_clean_file_closed(tmp_path):
    with open(tmp_path / "x.txt", "w") as f:
        f.write("x")


def test_clean_dropped_file_closed_by_refcount(tmp_path):
    open(tmp_path / "y.txt", "w").write("y")


def test_clean_cycle_closed_by_gc(tmp_path):
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    a.f = open(tmp_path / "z.txt", "w")
    del a, b


def test_clean_socket_closed_by_another_thread():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()

    def later():
        time.sleep(0.05)
        conn.close()

    threading.Thread(target=later).start()
    cli.close()
    srv.close()


def test_clean_subprocess_and_pipes():
    out = subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, check=True)
    assert out.stdout.strip() == b"1"


def test_clean_asyncio_run():
    async def main():
        r, w = await asyncio.open_connection(*SERVER)
        w.close()
        await w.wait_closed()

    asyncio.run(main())


def test_clean_capfd(capfd):
    os.write(1, b"hello\n")
    assert capfd.readouterr().out == "hello\n"


def test_clean_tempfiles():
    with tempfile.TemporaryFile() as f:
        f.write(b"x")
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"y")


def test_clean_logging_to_a_file_of_its_own(tmp_path):
    lg = logging.getLogger("sample.lazy")
    lg.addHandler(logging.FileHandler(tmp_path / "lazy.log"))
    lg.warning("configured on first use, kept for the session")


@pytest.fixture(scope="module")
def db_socket():
    a, b = socket.socketpair()
    yield a
    a.close()
    b.close()


def test_clean_uses_module_fixture(db_socket):
    assert db_socket.fileno() > 2


def test_leak_file(tmp_path):
    KEEP.append(open(tmp_path / "upload-1.pdf", "w"))
    KEEP.append(open(tmp_path / "upload-2.pdf", "w"))


def test_leak_tcp():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    KEEP.append(srv)
    KEEP.append(socket.create_connection(srv.getsockname()))
    KEEP.append(srv.accept()[0])


def test_leak_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    KEEP.append(s)


def test_leak_unix():
    KEEP.extend(socket.socketpair())


def test_leak_pipe():
    KEEP.extend(os.pipe())


def test_leak_eventfd_epoll_timerfd():
    libc = ctypes.CDLL(None, use_errno=True)
    KEEP.append(libc.eventfd(0, 0o2000000))
    KEEP.append(select.epoll())
    KEEP.append(libc.timerfd_create(1, 0o2000000))


def test_leak_memfd():
    KEEP.append(os.memfd_create("sample-buffer"))


def test_leak_reused_fd_number(tmp_path):
    # An fd open before the test now points at another file under the same number: that is
    # a close plus an open, so the new file is a leftover even though the number is old.
    new = os.open(tmp_path / "reused.dat", os.O_WRONLY | os.O_CREAT)
    os.dup2(new, PRE.fileno())
    os.close(new)


@pytest.mark.fd_leaks(allow=["pipe"])
def test_allowed_pipe_leak():
    KEEP.extend(os.pipe())


def test_leak_child_process_fds():  # not the last test: teardown_module ends the child
    # Only with --fd-leaks-children: a child started by the test that is still running.
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    KEEP.append(p)


def test_clean_last_test_of_the_module():
    # The module's teardown (closing what the leaky tests kept) runs in this test's teardown:
    # closes are never leaks.
    assert KEEP


SERVER = None


def setup_module():
    global SERVER
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    SERVER = srv.getsockname()
    KEEP_SERVER.append(srv)

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.close()

    threading.Thread(target=accept, daemon=True).start()


KEEP_SERVER = []


def teardown_module():
    for p in KEEP:
        if isinstance(p, subprocess.Popen):
            p.kill()
            p.wait()
    gc.collect()
