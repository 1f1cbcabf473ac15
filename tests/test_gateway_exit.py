"""`limbwatch ingest` ends, before any BLE, with one line and the status of its error's kind:
2 bad configuration, 3 unavailable now (a full disk), 4 damaged store, 5 another gateway's spool.
Real files throughout; the full disk is a file-size limit on a real child process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.gateway import main
from ingest.lockfile import exclusive
from limbwatch.config import SensorEntry, gateway_toml
from limbwatch.store.sqlite import SqliteSampleStore


def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(store="store.db", spool="spool.db",
                                 sensors=[SensorEntry("kid", "left", "LW0001L", "LW0001L")]))
    return path


def test_bad_configuration_is_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[store]\npath = "store.db"\n[spool]\npath = "spool.db"\n')
    assert main(["--config", str(path)]) == 2
    assert "no [[sensor]] entries" in capsys.readouterr().err


def test_damaged_store_is_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path)
    SqliteSampleStore(tmp_path / "store.db").close()
    with (tmp_path / "store.db").open("r+b") as f:  # the schema page, past the file header
        f.seek(100)
        f.write(b"\xff" * 8)
    assert main(["--config", str(path)]) == 4
    err = capsys.readouterr().err
    assert "damaged; restore it from a backup" in err and err.count("\n") == 1


def test_spool_of_another_gateway_is_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path)
    with exclusive(tmp_path / "spool.db"):
        assert main(["--config", str(path)]) == 5
    assert f"in use by another gateway (pid {os.getpid()}" in capsys.readouterr().err


def test_full_disk_is_3(tmp_path: Path) -> None:
    path = config(tmp_path)
    root = str(Path(__file__).parent.parent)

    def small_disk() -> None:  # in the child: files may not grow past 16 KiB
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, resource.RLIM_INFINITY))

    child = subprocess.run([sys.executable, "-m", "app.cli", "ingest", "--config", str(path)],
                           cwd=root, env={**os.environ, "PYTHONPATH": root},
                           preexec_fn=small_disk, capture_output=True, text=True, timeout=60,
                           check=False)
    assert child.returncode == 3, child.stderr
    (line,) = [x for x in child.stderr.splitlines() if x.startswith("limbwatch ingest:")]
    assert "cannot open the store" in line and "SQLITE_" in line
