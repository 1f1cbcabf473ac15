"""`limbwatch backup` and `limbwatch restore` in real processes: a round trip of a store with
subjects, nights, reports, tokens, shares and samples; a backup while another process writes;
and what restore refuses (a store in use, an existing store without --force, a damaged or
foreign backup)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from api_world import World, build_world

from limbwatch.store import schema
from limbwatch.store.backup import in_use, store_file
from limbwatch.store.records import Subject
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

# a process that keeps the store open and adds a journal note every few ms until killed,
# printing "open" once it has the store
WRITER = """
import sys, time
from limbwatch.store.sqlite_records import SqliteRecordStore
records = SqliteRecordStore(sys.argv[1], create=False)
print("open", flush=True)
i = 0
while True:
    if sys.argv[2] == "write":
        records.add_note("kid", 1e9 + i, "note", f"note {i}")
        i += 1
    time.sleep(0.002)
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def holding(path: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
    return proc


def dump(path: Path) -> list[str]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(db.iterdump())
    finally:
        db.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("backup") / "limbwatch.db")


def test_round_trip_keeps_every_row(world: World, tmp_path: Path) -> None:
    copy = tmp_path / "backup.db"
    done = run("backup", "--store", f"sqlite:{world.path}", "-o", str(copy))
    assert done.returncode == 0, done.stderr
    assert "2 subjects" in done.stdout and "tokens" in done.stdout
    restored = tmp_path / "new" / "restored.db"
    done = run("restore", "--store", f"sqlite:{restored}", str(copy))
    assert done.returncode == 0, done.stderr
    assert dump(restored) == dump(world.path)  # every table, every row
    assert not Path(f"{copy}-wal").exists()  # the backup is one self-contained file
    with SqliteRecordStore(restored, create=False) as records, \
            SqliteSampleStore(restored, create=False) as samples, \
            SqliteRecordStore(world.path, create=False) as source:
        assert records.subjects() == source.subjects()
        assert records.nights("kid") == source.nights("kid")
        assert records.report(world.night) == source.report(world.night) is not None
        assert records.tokens() == source.tokens()
        assert records.shared_subjects("clinician_shared") == {"kid"}
        night = records.night(world.night)
        assert night is not None
        left = samples.read_samples("kid", "left", night.start, night.end)
        assert len(left.time) > 0 and left.damaged == 0


def test_backup_while_another_process_writes_is_consistent(world: World,
                                                           tmp_path: Path) -> None:
    store = tmp_path / "busy.db"
    store.write_bytes(world.path.read_bytes())
    writer = holding(store, "write")
    try:
        time.sleep(0.3)
        copies = []
        for i in range(3):
            copy = tmp_path / f"copy{i}.db"
            done = run("backup", "--store", str(store), "-o", str(copy))
            assert done.returncode == 0, done.stderr
            copies.append(copy)
    finally:
        writer.kill()
        writer.wait()
    counts = []
    for copy in copies:
        db = sqlite3.connect(copy)
        texts = [t for (t,) in db.execute("SELECT text FROM journal WHERE text LIKE 'note %'")]
        db.close()
        # a consistent copy holds the notes 0..n-1 of one moment, none missing in between
        assert sorted(texts, key=lambda t: int(t.split()[1])) == [f"note {i}"
                                                                   for i in range(len(texts))]
        counts.append(len(texts))
    assert counts == sorted(counts) and counts[-1] > 0  # taken while the writer went on


def test_restore_refuses_a_store_in_use_and_an_existing_one_without_force(
        world: World, tmp_path: Path) -> None:
    copy = tmp_path / "backup.db"
    assert run("backup", "--store", str(world.path), "-o", str(copy)).returncode == 0
    assert run("backup", "--store", str(world.path), "-o", str(copy)).returncode == 5
    target = tmp_path / "live.db"
    with SqliteRecordStore(target) as records:  # an existing store, with other contents
        records.put_subject(Subject("someone-else", "Someone", None, "UTC"))
    before = dump(target)

    done = run("restore", "--store", str(target), str(copy))
    assert done.returncode == 5 and "--force" in done.stderr
    server = holding(target, "idle")  # the API, worker or gateway has it open
    try:
        assert in_use(target)
        done = run("restore", "--store", str(target), str(copy), "--force")
        assert done.returncode == 5 and "in use" in done.stderr, done.stderr
        assert dump(target) == before
    finally:
        server.kill()
        server.wait()
    assert not in_use(target)
    Path(f"{target}-wal").write_bytes(b"left behind by a crash")
    done = run("restore", "--store", str(target), str(copy), "--force")
    assert done.returncode == 0, done.stderr
    assert not Path(f"{target}-wal").exists()
    assert dump(target) == dump(world.path)


def test_restore_checks_the_backup(world: World, tmp_path: Path) -> None:
    target = tmp_path / "target.db"
    damaged = tmp_path / "damaged.db"
    db = sqlite3.connect(world.path)
    page = db.execute("PRAGMA page_size").fetchone()[0]
    (root,) = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'nights'").fetchone()
    db.close()
    data = bytearray(world.path.read_bytes())
    at = (root - 1) * page
    data[at: at + 200] = b"\x0d" + b"\xff" * 199  # the nights table's page header overwritten
    damaged.write_bytes(bytes(data))
    done = run("restore", "--store", str(target), str(damaged))
    assert done.returncode == 4, done.stderr  # Damaged
    assert "Traceback" not in done.stderr and not target.exists()

    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    done = run("restore", "--store", str(target), str(foreign))
    assert done.returncode == 2 and "not a limbwatch store" in done.stderr
    assert not target.exists()


def test_a_backup_of_an_older_schema_is_restored_and_upgraded_a_newer_one_refused(
        world: World, tmp_path: Path) -> None:
    """A backup made before the last schema change (5: no live-status index by time) still
    restores, and the store upgrades on opening; one of a newer limbwatch is refused."""
    older = tmp_path / "v5.db"
    assert run("backup", "--store", str(world.path), "-o", str(older)).returncode == 0
    with closing(sqlite3.connect(older, isolation_level=None)) as db:
        db.execute("DROP INDEX sensor_status_by_time")
        db.execute("PRAGMA user_version = 5")
    restored = tmp_path / "restored.db"
    done = run("restore", "--store", str(restored), str(older))
    assert done.returncode == 0, done.stderr
    with SqliteRecordStore(restored, create=False) as records:
        assert records.report(world.night) is not None
    with closing(sqlite3.connect(restored)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'sensor_status_by_time'"
                          ).fetchone() == (1,)

    newer = tmp_path / "newer.db"
    newer.write_bytes(older.read_bytes())
    with closing(sqlite3.connect(newer, isolation_level=None)) as db:
        db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    done = run("restore", "--store", str(tmp_path / "other.db"), str(newer))
    assert done.returncode == 2, done.stderr
    assert f"of schema {schema.SCHEMA_VERSION + 1}" in done.stderr
    assert "upgrade limbwatch" in done.stderr and "Traceback" not in done.stderr


def test_store_file_of_each_url() -> None:
    assert store_file("sqlite:/data/x.db") == (Path("/data/x.db"), True)
    assert store_file("x.db") == (Path("x.db"), True)
    url = "influxdb://influxdb:8086/limbwatch?api=v2&org=o&records=/data/records.db"
    assert store_file(url) == (Path("/data/records.db"), False)
