"""Online backup and verified restore of a store's SQLite file (`limbwatch backup`, `limbwatch
restore`).

The file is the record store, and with a `sqlite:` store URL the samples too (they share it);
with an InfluxDB sample store the samples are InfluxDB's to back up (`influx backup`, README).

- **Backup** copies the file with SQLite's online backup API in one step: one read transaction
  on the source, so the copy is the store as of one commit while the gateway, the worker and
  the API go on writing (WAL: readers and writers do not block each other). The copy goes to a
  temporary file beside the output, is turned into a self-contained file (rollback journal, no
  `-wal`), checked (`PRAGMA integrity_check`, the store's application_id and a schema version
  this limbwatch reads: its own, or an older one that a store upgrades in place on opening),
  flushed to disk, and only then renamed to the output.
- **Restore** checks the backup the same way first, refuses a target that another process has
  open (every process with a store open holds a shared lock on the file's lock bytes, across
  containers too: the check takes the exclusive lock that SQLite itself would need, and holds it
  until done), refuses an existing non-empty target unless `force`, copies into a temporary file
  beside it, checks that, removes the old file's leftover `-wal` and `-shm` (they would be
  replayed into the restored file) and renames it into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from limbwatch.errors import BadInput, Damaged, Refused, Unavailable
from limbwatch.store import schema
from limbwatch.store.open import is_influx, records_path
from limbwatch.store.sqlite_base import NotAStore, explain_sqlite_error, oldest_readable

# SQLite's lock bytes (os_unix.c): every connection reading the file holds a shared lock on
# SHARED_FIRST .. SHARED_FIRST + SHARED_SIZE - 1 (in WAL mode for as long as it is open)
PENDING_BYTE = 0x40000000
SHARED_FIRST = PENDING_BYTE + 2
SHARED_SIZE = 510


@dataclass(frozen=True)
class Summary:
    """What a store file holds, for the commands' one-line reports."""

    subjects: int
    nights: int
    reports: int
    tokens: int
    chunks: int
    size_bytes: int

    def __str__(self) -> str:
        return (f"{self.subjects} subjects, {self.nights} nights, {self.reports} reports, "
                f"{self.tokens} tokens, {self.chunks} sample chunks, "
                f"{self.size_bytes / 2**20:.1f} MB")


def store_file(url: str) -> tuple[Path, bool]:
    """The SQLite file of a store URL and whether it holds the samples too: `sqlite:PATH` or a
    plain path (True), `influxdb://...?records=PATH` (False: the records only)."""
    return records_path(url), not is_influx(url)


def _copy(src: sqlite3.Connection, to: Path) -> None:
    """The whole database of `src` into the new file `to`, in one step (one read transaction:
    one consistent copy), self-contained (rollback journal, no -wal beside it)."""
    dst = sqlite3.connect(to, isolation_level=None)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")
    finally:
        dst.close()


def backup(url: str, output: Path, *, force: bool = False) -> Summary:
    """Copy the store's SQLite file to `output` while it is in use (see the module docstring);
    Refused if `output` exists and is not empty, unless `force`."""
    source, _ = store_file(url)
    if not source.is_file():
        raise BadInput(f"{source}: no such store (file not found)")
    _refuse_existing(output, force, "backup file")
    with _temporary_beside(output) as tmp:
        with _sqlite_errors(f"back up {source}"):
            src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True,
                                  timeout=30.0, isolation_level=None)
            try:
                _check_identity(src, source)
                _copy(src, tmp)
            finally:
                src.close()
        summary = verify(tmp)
        _fsync(tmp)
        os.replace(tmp, output)
    _fsync_dir(output.parent)
    return summary


def restore(url: str, backup_file: Path, *, force: bool = False) -> Summary:
    """Put a backup in place as the store's SQLite file (see the module docstring): Damaged if
    the backup fails its checks, NotAStore if it is not a store's, Refused if the target is in
    use or exists and is not empty (unless `force`)."""
    target, _ = store_file(url)
    if not backup_file.is_file():
        raise BadInput(f"{backup_file}: no such backup file")
    verify(backup_file)
    if target.resolve() == backup_file.resolve():
        raise BadInput(f"{target}: the backup is the store itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _unused(target):
        _refuse_existing(target, force, "store")
        with _temporary_beside(target) as tmp:
            with _sqlite_errors(f"restore {backup_file}"):
                src = sqlite3.connect(f"{backup_file.resolve().as_uri()}?mode=ro", uri=True)
                try:
                    _copy(src, tmp)
                finally:
                    src.close()
            summary = verify(tmp)
            _fsync(tmp)
            for leftover in ("-wal", "-shm", "-journal"):  # the old file's, not the backup's
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{target}{leftover}")
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    return summary


def verify(path: Path) -> Summary:
    """The summary of a store file that passes `PRAGMA integrity_check` and is a limbwatch
    store of a schema this limbwatch reads (an older one is upgraded when the store is next
    opened); Damaged or NotAStore otherwise."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BadInput(f"{path}: cannot open: {explain_sqlite_error(exc)}") from None
    try:
        try:
            _check_identity(db, path)
            problems = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "") or ""
            if name.startswith("SQLITE_NOTADB"):
                raise NotAStore(f"{path}: is not a limbwatch store (not an SQLite database)"
                                ) from None
            raise Damaged(f"{path}: damaged: {explain_sqlite_error(exc)}") from None
        if problems != ["ok"]:
            raise Damaged(f"{path}: fails the integrity check: {'; '.join(problems[:3])}")
        counts = [db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("subjects", "nights", "reports", "tokens", "chunks")]
    finally:
        db.close()
    subjects, nights, reports, tokens, chunks = (int(n) for n in counts)
    return Summary(subjects, nights, reports, tokens, chunks, path.stat().st_size)


def in_use(path: Path) -> bool:
    """Whether another process has the SQLite file open (it holds a shared lock on SQLite's
    lock bytes: in WAL mode for as long as it is open). False for a missing file."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, SHARED_SIZE, SHARED_FIRST)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _unused(target: Path) -> Iterator[None]:
    """Hold the exclusive lock SQLite would need on `target` (if it exists) while restoring:
    Refused if another process has it open; a process that opens it meanwhile gets SQLITE_BUSY.
    (POSIX locks belong to the process: this process must not have the file open otherwise.)"""
    try:
        fd = os.open(target, os.O_RDWR)
    except FileNotFoundError:
        yield
        return
    try:
        if not _try_lock(fd):
            raise Refused(f"{target}: the store is in use by another process (the API, worker "
                          "or gateway): stop them first")
        yield
    finally:
        os.close(fd)  # releases the lock


def _check_identity(db: sqlite3.Connection, path: Path) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app_id != schema.APPLICATION_ID:
        raise NotAStore(f"{path}: is not a limbwatch store (application_id {app_id:#x})")
    oldest = oldest_readable(schema.SCHEMA_VERSION, schema.UPGRADES)
    if not oldest <= version <= schema.SCHEMA_VERSION:
        raise NotAStore(f"{path}: is a limbwatch store of schema {version}; this limbwatch "
                        f"reads schemas {oldest}-{schema.SCHEMA_VERSION}"
                        + (" (upgrade limbwatch)" if version > schema.SCHEMA_VERSION else ""))


def _refuse_existing(path: Path, force: bool, what: str) -> None:
    if path.is_dir():
        raise BadInput(f"{path}: is a directory")
    if not force and path.exists() and path.stat().st_size > 0:
        raise Refused(f"{path}: the {what} exists and is not empty (--force overwrites it)")


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A fresh temporary file name in `path`'s directory (same file system: the rename is
    atomic), removed with its journal if still there at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    for stale in (tmp, Path(f"{tmp}-journal")):
        stale.unlink(missing_ok=True)
    try:
        yield tmp
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _sqlite_errors(action: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        kind = Damaged if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) else Unavailable
        raise kind(f"cannot {action}: {explain_sqlite_error(exc)}") from exc
    except OSError as exc:
        raise Unavailable(f"cannot {action}: {exc}") from exc


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be synced
        _fsync(path)
