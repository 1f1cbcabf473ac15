"""One gateway per spool: the lock refuses a second holder by name and dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.lockfile import exclusive, lock_path
from limbwatch.errors import Refused

_HOLDER = """
import sys, time
from pathlib import Path
from ingest.lockfile import exclusive
with exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    with exclusive(spool):
        assert lock_path(spool).read_text() == f"{os.getpid()}\n"
        holder = rf"in use by another gateway \(pid {os.getpid()}"
        with pytest.raises(Refused, match=holder), exclusive(spool):
            pass
    with exclusive(spool):  # released: free again
        pass


def test_the_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    root = str(Path(__file__).parent.parent)
    child = subprocess.Popen([sys.executable, "-c", _HOLDER, str(spool)], cwd=root,
                             env={**os.environ, "PYTHONPATH": root}, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        with pytest.raises(Refused, match=f"pid {child.pid}"), exclusive(spool):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    with exclusive(spool):  # no stale lock after a SIGKILL
        pass
