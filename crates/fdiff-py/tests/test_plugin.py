"""The pytest plugin, run for real (a pytest subprocess) over tests/sample: every leaky test
is named with what it leaked, and no clean test is blamed; with xdist workers too."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

SAMPLE = pathlib.Path(__file__).parent / "sample"

LEAKS = {
    "test_leak_file": r"2 × file .*/upload-\*\.pdf",
    "test_leak_tcp": r"tcp .*ESTABLISHED.*tcp .*LISTEN|tcp .*LISTEN.*ESTABLISHED",
    "test_leak_udp": r"1 × udp ",
    "test_leak_unix": r"2 × unix",
    "test_leak_pipe": r"2 × pipe",
    "test_leak_eventfd_epoll_timerfd": r"eventfd.*|eventpoll",
    "test_leak_memfd": r"1 × memfd",
    "test_leak_reused_fd_number": r"1 × file .*reused\.dat",
}


def run(*args, timeout=300):
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(SAMPLE), *args],
        capture_output=True, text=True, timeout=timeout, cwd=SAMPLE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return p.returncode, p.stdout + p.stderr


def leak_lines(out):
    return [line for line in out.splitlines() if re.search(r"::\S+ leaked \d+ (fds?|process)", line)
            and "warm-up" not in line]


def blamed(out):
    return {re.search(r"::(\S+) leaked", line).group(1) for line in leak_lines(out)}


def check(out, children=False):
    names = blamed(out)
    expect = set(LEAKS) | ({"test_leak_child_process_fds"} if children else set())
    assert names == expect, out
    for name, pattern in LEAKS.items():
        line = next(line for line in leak_lines(out) if f"::{name} leaked" in line)
        assert re.search(pattern, line), line


def test_warn_reports_every_leak_and_blames_no_clean_test():
    rc, out = run("--fd-leaks")
    assert rc == 0, out
    check(out)
    assert "test_sample.py::test_leak_file leaked 2 fds: 2 × file " in out
    # The first test's read-only cache is warm-up, listed but not blamed.
    assert re.search(r"test_a_warmup_first_test leaked 2 fds: .*warm-up", out), out


def test_fail_turns_leaks_into_failures():
    rc, out = run("--fd-leaks=fail")
    assert rc == 1, out
    errors = set(re.findall(r"ERROR (?:test_sample\.py)::(\S+)", out))
    assert errors == set(LEAKS), out
    check(out)


def test_the_ini_option_and_the_children_option(tmp_path):
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\nfd_leaks = fail\nfd_leaks_children = true\n")
    rc, out = run("-c", str(ini), "--rootdir", str(SAMPLE))
    assert rc == 1, out
    check(out, children=True)
    assert re.search(r"test_leak_child_process_fds leaked 1 process: 1 × process pid \d+ \(python", out), out


def test_a_path_after_the_bare_option_is_still_a_path():
    rc, out = run("--fd-leaks", str(SAMPLE / "test_sample.py"), "-k", "leak_pipe or clean_file")
    assert rc == 0, out
    assert blamed(out) == {"test_leak_pipe"}, out


def test_bad_mode_is_a_usage_error():
    rc, out = run("--fd-leaks=loud")
    assert rc == 4, out
    assert "fdiff: --fd-leaks 'loud': not a mode" in out


def test_off_by_default():
    rc, out = run()
    assert rc == 0 and not leak_lines(out), out


def test_under_xdist_workers():
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    rc, out = run("--fd-leaks=fail", "-n", "2")
    assert rc == 1, out
    check(out)
