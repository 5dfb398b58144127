"""The feedback store's embedded backend: one SQLite file, opened safely, shared by threads and processes.

Safety: before anything is written, an existing file is checked through a read-only connection: a file that is not
SQLite, or a SQLite file of another application or of a newer schema, raises
:class:`~routellm_core.errors.FeedbackStoreError` and is left byte-identical. A store of an older schema is migrated
in place (its rows kept) under the write lock.

Concurrency: the file is in WAL mode; every write is one short ``BEGIN IMMEDIATE`` transaction, and SQLite's busy
timeout makes writers in other processes wait their turn. Within a process one connection is shared under a lock;
a process that forks reopens the file on first use. ``synchronous = NORMAL`` in WAL mode: a committed write
survives the writer's crash (even ``SIGKILL``), not a power loss.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from routellm_core.errors import FeedbackStoreError
from routellm_core.learning.feedback_sql import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    SQLITE,
    Dialect,
    migratable,
    migrations,
    schema,
)

_SQLITE_MAGIC = b"SQLite format 3\x00"
State = Literal["new", "ours", "old"]


def _read_meta(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return int(app_id), int(version), tables


def _check_meta(path: Path, app_id: int, version: int, tables: list[str]) -> State:
    """Whether the database is ours (``"old"``: of an older schema to migrate) or empty; raise for anything else."""
    if app_id == APPLICATION_ID:
        if version == SCHEMA_VERSION:
            return "ours"
        if version < SCHEMA_VERSION and migratable(version):
            return "old"
        newer = " (written by a newer version of routellm-integrations)" if version > SCHEMA_VERSION else ""
        raise FeedbackStoreError(
            f"{path} is a feedback store of schema version {version}{newer}; this code reads version "
            f"{SCHEMA_VERSION}. The file was not modified."
        )
    if app_id == 0 and not tables:
        return "new"
    raise FeedbackStoreError(
        f"{path} is a SQLite database of another application (application_id {app_id:#x}, tables "
        f"{tables[:8]}), not a routellm feedback store; refusing to use it. The file was not modified."
    )


def _inspect(path: Path) -> State:
    """Classify ``path`` without writing to it: a new store, or one of ours; raise for anything else."""
    if not path.exists():
        return "new"
    if not path.is_file():
        raise FeedbackStoreError(f"{path} is not a regular file; give the path of a feedback store file")
    try:
        with path.open("rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise FeedbackStoreError(f"cannot read the feedback store {path}: {exc}") from exc
    wal = Path(f"{path}-wal")
    if not header and not wal.exists():
        return "new"  # an empty file is an empty SQLite database
    if header and not header.startswith(_SQLITE_MAGIC):
        raise FeedbackStoreError(
            f"{path} is not a SQLite database (it does not start with the SQLite header); refusing to use it as a "
            "feedback store. The file was not modified."
        )
    _check_writable(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            meta = _read_meta(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if "readonly" in str(exc):
            raise FeedbackStoreError(
                f"cannot open the feedback store {path}: {exc} (is the file or its folder read-only?)"
            ) from exc
        raise FeedbackStoreError(
            f"{path} is not a usable SQLite database ({exc}); refusing to use it as a feedback store. "
            "The file was not modified."
        ) from exc
    return _check_meta(path, *meta)


def _check_writable(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeedbackStoreError(f"cannot create the folder {folder} for the feedback store: {exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FeedbackStoreError(
            f"the folder {folder} is read-only; a feedback store needs to write its file and SQLite's -wal/-shm "
            "files there"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise FeedbackStoreError(f"the feedback store {path} is read-only (or unreadable); it must be writable")


class _Tx:
    """A write transaction on a SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()


class SQLiteBackend:
    """A feedback store's SQLite file (created with its folder when missing).

    Args:
        path: The file.
        timeout: Seconds a write waits for another process's write lock before failing.

    Raises:
        FeedbackStoreError: The file is not SQLite, is another application's database or of a newer schema (left
            untouched in all three cases), or the file or its folder is read-only.
    """

    dialect: Dialect = SQLITE

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self.location = str(path)
        self.timeout = timeout
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        state = _inspect(self.path)
        if state == "new":
            _check_writable(self.path)
        try:
            conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise FeedbackStoreError(
                f"cannot open the feedback store {self.path}: {exc} (is the file or its folder read-only?)"
            ) from exc
        try:
            if state != "ours":
                self._initialise(conn)
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise FeedbackStoreError(
                    f"cannot set up the feedback store {self.path}: {exc} (is the file or its folder read-only?)"
                ) from exc
            raise
        return conn

    def _initialise(self, conn: sqlite3.Connection) -> None:
        """Create the schema in an empty database, or migrate an older one, unless another process did it first."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id, version, tables = _read_meta(conn)
            state = _check_meta(self.path, app_id, version, tables)
            if state != "ours":  # else another process set it up first
                if state == "new":
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for statement in schema(self.dialect) if state == "new" else migrations(self.dialect, version):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL mode, waiting while other processes hold locks (the switch needs a moment alone)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() == "wal":
                    return
                problem = f"journal mode stayed {mode!r}"
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                problem = str(exc)
            if time.monotonic() > deadline:
                raise FeedbackStoreError(f"cannot switch the feedback store {self.path} to WAL mode: {problem}")
            time.sleep(0.02)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise FeedbackStoreError(f"the feedback store {self.path} is closed")
        if self._pid != os.getpid():  # forked: SQLite connections must not cross fork()
            self._pid = os.getpid()
            self._conn = self._open()
        assert self._conn is not None
        return self._conn

    @contextmanager
    def transaction(self, what: str) -> Iterator[_Tx]:
        """One short write transaction; SQLite errors become :class:`FeedbackStoreError`."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Tx(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise FeedbackStoreError(f"feedback store {self.path}: {what} failed: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read."""
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise FeedbackStoreError(f"feedback store {self.path}: reading failed: {exc}") from exc

    def close(self) -> None:
        """Close the file (idempotent); later calls raise :class:`FeedbackStoreError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


__all__ = ["SQLiteBackend"]
