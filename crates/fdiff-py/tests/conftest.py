"""Shared helpers of the package's tests: the fdiff binary (for comparing with the CLI) and
unique names for the processes the tests start."""

import os
import pathlib
import shutil
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
# The sample suite is run by test_plugin.py in a pytest of its own, never collected here.
collect_ignore = ["sample"]


@pytest.fixture
def fdiff_bin():
    """The CLI built by cargo (CI builds it before this suite), or skip with a message."""
    for p in (os.environ.get("FDIFF_BIN"), ROOT / "target/release/fdiff", ROOT / "target/debug/fdiff",
              shutil.which("fdiff")):
        if p and os.path.exists(p):
            return str(p)
    pytest.skip("the fdiff binary is not built (cargo build): CLI comparisons skipped")


@pytest.fixture
def unique():
    """A name no other engineer's concurrent test run uses."""
    return f"fdpy-{uuid.uuid4().hex[:8]}"
