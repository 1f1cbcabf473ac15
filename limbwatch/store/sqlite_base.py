"""SQLite plumbing shared by the store and the gateway's spool: opening our files, one-line
error messages, and a guarded connection for use from the event loop and worker threads."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Literal, Self

from limbwatch.errors import BadInput, Damaged

Synchronous = Literal["NORMAL", "FULL"]

# (prefix of SQLite's error name, what it means and what to do)
_ADVICE = (
    ("SQLITE_BUSY", "the database is locked by another process; retry later"),
    ("SQLITE_LOCKED", "the database is locked by another connection; retry later"),
    ("SQLITE_READONLY", "the file or its directory is read-only; make both writable"),
    ("SQLITE_FULL", "the disk is full; free some space"),
    ("SQLITE_IOERR", "disk I/O error; check the disk and that the file still exists"),
    ("SQLITE_CANTOPEN", "cannot open the file; check that it and its directory exist"),
    ("SQLITE_CORRUPT", "the file is damaged; restore it from a backup"),
    ("SQLITE_NOTADB", "the file is not (or no longer) an SQLite database; restore it from a "
                      "backup"),
)
_DAMAGE = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # the file itself is damaged: retrying cannot help
_SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


class NotAStore(BadInput):
    """The path holds something other than a limbwatch store (or one of a newer schema)."""


class DamagedFile(Damaged):
    """SQLite found one of our files damaged (SQLITE_CORRUPT; SQLITE_NOTADB for a file that
    starts as an SQLite database does): restore it from a backup."""


def explain_sqlite_error(exc: sqlite3.Error) -> str:
    """One line: what an SQLite error means and what to do about it."""
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    for prefix, advice in _ADVICE:
        if name.startswith(prefix):
            return f"{advice} ({name}: {exc})"
    return f"{exc} ({name})"


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None if there is none: tells a replaced file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def open_sqlite(
    path: Path,
    *,
    application_id: int,
    schema_version: int,
    schema: Sequence[str],
    what: str,
    create: bool,
    timeout_s: float,
    synchronous: Synchronous,
    upgrades: Mapping[int, Sequence[str]] | None = None,
) -> sqlite3.Connection:
    """Open (and, when new and `create`, initialise) an SQLite file in WAL mode for one of ours.

    `what` names the kind of file in messages ("limbwatch store"). Raises NotAStore for a
    directory, another application's database or a newer schema; FileNotFoundError when the file
    is missing and not `create`; sqlite3.Error for everything SQLite reports.
    """
    if path.is_dir():
        raise NotAStore(f"{path}: is a directory, not a {what} file")
    if not create and not path.exists():
        raise FileNotFoundError(f"{path}: no such {what} (file not found)")
    db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    try:
        _check_or_create(db, path, application_id, schema_version, schema, what, create,
                         upgrades or {})
        db.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        db.close()
        raise
    return db


def _check_or_create(
    db: sqlite3.Connection,
    path: Path,
    application_id: int,
    schema_version: int,
    schema: Sequence[str],
    what: str,
    create: bool,
    upgrades: Mapping[int, Sequence[str]],
) -> None:
    """NotAStore unless `db` is ours (or empty and `create`: then give it WAL and the schema).
    A file of an older schema version v is upgraded in one transaction by `upgrades[v]`,
    `upgrades[v + 1]`... when every step is known, else refused."""
    try:
        app_id, version, n_tables = _identity(db)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB" and not _starts_as_sqlite(path):
            raise NotAStore(f"{path}: is not a {what} (not even an SQLite database)") from None
        raise  # an SQLite file that is damaged
    if app_id == 0 and n_tables == 0 and create:
        db.execute("PRAGMA journal_mode = WAL")
        with _immediate(db):
            if _identity(db)[0] == 0:  # not initialised meanwhile by another process
                for statement in schema:
                    db.execute(statement)
                db.execute(f"PRAGMA application_id = {application_id}")
                db.execute(f"PRAGMA user_version = {schema_version}")
        return
    if app_id != application_id:
        kind = "an empty SQLite database" if n_tables == 0 else "another application's database"
        raise NotAStore(f"{path}: is {kind}, not a {what}")
    if oldest_readable(schema_version, upgrades) <= version < schema_version:
        _upgrade(db, schema_version, upgrades)
    elif version != schema_version:
        raise NotAStore(
            f"{path}: is a {what} of schema {version}; this limbwatch reads schema "
            f"{schema_version} (upgrade limbwatch)"
        )
    db.execute("PRAGMA journal_mode = WAL")


def oldest_readable(schema_version: int, upgrades: Mapping[int, Sequence[str]]) -> int:
    """The oldest schema version that `upgrades` takes, step by step, to `schema_version`."""
    version = schema_version
    while version - 1 in upgrades:
        version -= 1
    return version


def _upgrade(db: sqlite3.Connection, schema_version: int,
             upgrades: Mapping[int, Sequence[str]]) -> None:
    """Run the upgrade steps from the file's version (read again under the write lock: another
    process may have upgraded it meanwhile) to `schema_version`, all or none."""
    with _immediate(db):
        for version in range(_identity(db)[1], schema_version):
            for statement in upgrades[version]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (BEGIN IMMEDIATE), committed, or rolled back if the
    block raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _starts_as_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def _identity(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(application_id, user_version, number of tables) of an open database."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    n_tables = db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()[0]
    return int(app_id), int(version), int(n_tables)


class GuardedSqlite:
    """One SQLite file used from the event loop and from worker threads: calls are serialised by
    a lock, SQLite errors become `unavailable` errors saying what failed and what to do (or
    `DamagedFile` when SQLite says the file itself is damaged), and a
    file deleted or replaced while open is refused (SQLite would go on writing to the deleted
    file, and the data would vanish with it). Subclasses set `path`, `_lock`, `_db` and
    `_identity` when they open the file."""

    label: ClassVar[str]  # "store", "spool": for messages
    unavailable: ClassVar[type[Exception]]
    path: Path
    _lock: threading.Lock
    _db: sqlite3.Connection
    _identity: tuple[int, int] | None
    _writes: int  # transactions begun on this connection (see `_transaction`)

    def _open(self, path: Path | str, *, application_id: int, schema_version: int,
              schema: Sequence[str], what: str, create: bool, timeout_s: float,
              synchronous: Synchronous,
              upgrades: Mapping[int, Sequence[str]] | None = None) -> None:
        """Open the file (see `open_sqlite`); SQLite errors become `unavailable`."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._writes = 0
        with self._errors(f"open the {self.label}"):
            self._db = open_sqlite(
                self.path, application_id=application_id, schema_version=schema_version,
                schema=schema, what=what, create=create, timeout_s=timeout_s,
                synchronous=synchronous, upgrades=upgrades,
            )
        self._identity = file_identity(self.path)

    def close(self) -> None:
        with self._lock, self._errors(f"close the {self.label}"):
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            name = getattr(exc, "sqlite_errorname", None) or ""
            kind = DamagedFile if name.startswith(_DAMAGE) else self.unavailable
            raise kind(f"{self.label} {self.path}: cannot {action}: "
                       f"{explain_sqlite_error(exc)}") from exc

    def _check_file(self, action: str) -> None:
        if file_identity(self.path) != self._identity:
            raise self.unavailable(
                f"{self.label} {self.path}: cannot {action}: the file was deleted or replaced "
                f"while open; restore it, or open the {self.label} again"
            )

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(action):
            self._check_file(action)
            yield self._db

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (taking the write lock first), rolled back on any error."""
        with self._lock, self._errors(action):
            self._check_file(action)
            db = self._db
            self._writes += 1  # SQLite's data_version does not count a connection's own writes
            with _immediate(db):
                yield db


