"""The feedback store's shared backend: a PostgreSQL database that several servers (or machines) write at once.

Same schema as the SQLite file (:mod:`~routellm_core.learning.feedback_sql`), in the first schema of the
connection's ``search_path`` (``public`` unless the URL sets ``options=-csearch_path=...``). A table
``routellm_feedback_meta`` holds the application id and schema version that SQLite keeps in its header, and the
same guards apply: a database whose ``decisions`` / ``labels`` tables are not a feedback store's, or a store of a
newer schema, raises :class:`~routellm_core.errors.FeedbackStoreError` and is left as it was (the checks and the
creation of the tables run in one transaction, under an advisory lock, so servers starting at once create them once).

Concurrency and durability: a small pool of connections per process (``pool_size``), shared by threads and asyncio
worker threads; each write is one transaction, with ``synchronous_commit = on`` (a write the store acknowledged is
on the server's disk) and ``lock_timeout`` = the store's ``timeout``. A process that forks opens new connections;
a pooled connection the server closed while idle (a restart, a failover) is replaced before any statement ran.
Needs the ``postgres`` extra (``psycopg``), imported only when a PostgreSQL store is opened.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from routellm_core._optional import requires_extra
from routellm_core.errors import FeedbackStoreError, InvalidInputError
from routellm_core.learning.feedback_sql import (
    APPLICATION_ID,
    META_TABLE,
    POSTGRES,
    SCHEMA_VERSION,
    TABLES,
    Dialect,
    migratable,
    migrations,
    schema,
)

if TYPE_CHECKING:
    import psycopg

#: URL schemes of a PostgreSQL store.
SCHEMES: tuple[str, ...] = ("postgresql", "postgres")
_PASSWORD_IN_NETLOC = re.compile(r"^([a-z][a-z0-9+.\-]*://[^:/@?#]*:)[^@/?#]+@", re.IGNORECASE)
_PASSWORD_IN_QUERY = re.compile(r"([?&](?:ssl)?password=)[^&#]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part, a ``password=`` or ``sslpassword=`` parameter) replaced by
    ``***``; an empty one stays empty (``user:@host``), so the URL shown still works as it is."""
    return _PASSWORD_IN_QUERY.sub(r"\1***", _PASSWORD_IN_NETLOC.sub(r"\1***@", url))


def without_password(url: str) -> str:
    """``url`` with its password left out (the user part's, ``password=`` and ``sslpassword=`` parameters): a
    location to show in a command someone pastes, which then takes the password from ``PGPASSWORD`` or
    ``~/.pgpass`` (a ``***`` in its place would be sent as the password)."""
    bare = _PASSWORD_IN_NETLOC.sub(lambda m: m.group(1)[:-1] + "@", url)
    bare = re.sub(r"([?&])(?:ssl)?password=[^&#]*&?", r"\1", bare, flags=re.IGNORECASE)
    return re.sub(r"[?&]+(#|$)", r"\1", bare)


def _no_nul(params: Sequence[Any]) -> tuple[Any, ...]:
    """``params`` with NUL characters in strings replaced by U+FFFD, as the store cleans the texts it writes:
    PostgreSQL text cannot hold NUL, so a value with one (a decision id a client sent) would fail as a database
    error instead of matching nothing."""
    return tuple(p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p for p in params)


class _Tx:
    """A write transaction on one pooled connection."""

    def __init__(self, cursor: psycopg.Cursor[Any], dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._dialect.sql(sql), _no_nul(params))
        return self._cursor.fetchall() if self._cursor.description is not None else []


class PostgresBackend:
    """A feedback store in a PostgreSQL database (its tables created when missing).

    Args:
        url: ``postgresql://user[:password]@host[:port]/database[?...]`` (libpq's URL form, e.g. ``?host=/socket/dir``).
        timeout: Seconds to connect, to wait for a row lock, or for a free pooled connection, before failing.
        pool_size: Most connections this process opens to the database.

    Raises:
        MissingDependencyError: ``psycopg`` is not installed (the ``postgres`` extra).
        InvalidInputError: The URL cannot be parsed.
        FeedbackStoreError: The server cannot be reached, the tables are not a feedback store's or of a newer schema
            (left untouched), or the user may not create them.
    """

    dialect: Dialect = POSTGRES

    def __init__(self, url: str, *, timeout: float, pool_size: int = 4) -> None:
        with requires_extra("postgres", "a PostgreSQL feedback store"):
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        self._psycopg = psycopg
        self.location = redact_url(url)
        self.timeout = timeout
        try:
            self._params: dict[str, Any] = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise InvalidInputError(f"not a usable PostgreSQL URL {self.location!r}: {exc}") from None
        self._params.setdefault("connect_timeout", max(1, round(timeout)))
        self._pool_size = pool_size
        self._cond = threading.Condition(threading.Lock())
        self._idle: list[psycopg.Connection[Any]] = []
        self._count = 0
        self._pid = os.getpid()
        self._closed = False
        try:
            with self.transaction("setting up the store") as tx:
                self._setup(tx)
        except BaseException:
            self.close()
            raise

    # ---- connections -------------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = self._psycopg.connect(autocommit=True, **self._params)
        except self._psycopg.Error as exc:
            raise FeedbackStoreError(f"cannot connect to the PostgreSQL feedback store {self.location}: {exc}") from exc
        try:
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false), set_config('synchronous_commit', 'on', false)",
                (f"{round(self.timeout * 1000)}ms",),
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _acquire(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection of the pool, and whether it was idle in the pool (then the server may have closed it)."""
        with self._cond:
            if self._pid != os.getpid():  # forked: the parent's connections stay the parent's (never closed here)
                self._pid, self._idle, self._count = os.getpid(), [], 0
            if not self._cond.wait_for(lambda: self._closed or self._idle or self._count < self._pool_size,
                                       timeout=self.timeout):  # fmt: skip
                raise FeedbackStoreError(
                    f"feedback store {self.location}: all {self._pool_size} connections stayed busy for "
                    f"{self.timeout:g} s"
                )
            if self._closed:
                raise FeedbackStoreError(f"the feedback store {self.location} is closed")
            if self._idle:
                return self._idle.pop(), True
            self._count += 1
        try:
            return self._connect(), False
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        with self._cond:
            if self._pid != os.getpid():
                return
            if self._closed or conn.closed or conn.broken:
                self._count -= 1
                conn.close()
            else:
                self._idle.append(conn)
            self._cond.notify()

    def _stale(self, conn: psycopg.Connection[Any], reused: bool, exc: BaseException) -> bool:
        """Whether ``exc`` says a pooled connection was closed by the server while idle (a restart, a failover, an
        idle timeout): then the pool drops it and the operation runs again on another, and nothing is lost."""
        return reused and isinstance(exc, self._psycopg.OperationalError) and (conn.broken or conn.closed)

    @contextmanager
    def transaction(self, what: str) -> Iterator[_Tx]:
        """One write transaction; database errors become :class:`FeedbackStoreError`.

        A pooled connection that the server closed while it sat idle fails at ``BEGIN``, before any statement ran,
        and is replaced (as many times as the pool held such connections); a failure after ``BEGIN`` is raised.
        """
        try:
            with ExitStack() as stack:
                while True:
                    conn, reused = self._acquire()
                    try:
                        began = conn.transaction()
                        began.__enter__()  # BEGIN
                    except BaseException as exc:
                        self._release(conn)
                        if self._stale(conn, reused, exc):
                            continue
                        raise
                    stack.callback(self._release, conn)
                    stack.push(began)  # COMMIT, or ROLLBACK when the body raised
                    break
                with conn.cursor() as cursor:
                    yield _Tx(cursor, self.dialect)
        except self._psycopg.Error as exc:
            raise FeedbackStoreError(f"feedback store {self.location}: {what} failed: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read (run again on another connection when a pooled one turns out closed)."""
        try:
            while True:
                conn, reused = self._acquire()
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(self.dialect.sql(sql), _no_nul(params))
                        return cursor.fetchall()
                except BaseException as exc:
                    if self._stale(conn, reused, exc):
                        continue
                    raise
                finally:
                    self._release(conn)
        except self._psycopg.Error as exc:
            raise FeedbackStoreError(f"feedback store {self.location}: reading failed: {exc}") from exc

    def close(self) -> None:
        """Close the pooled connections (idempotent; one in use closes when released)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
            if self._pid == os.getpid():
                self._count -= len(idle)
                for conn in idle:
                    conn.close()
            self._cond.notify_all()

    # ---- the schema --------------------------------------------------------------------------------------
    def _setup(self, tx: _Tx) -> None:
        """Check the database is a store of ours (or has none of its tables), then create or migrate it."""
        tx.execute(f"SELECT pg_advisory_xact_lock({APPLICATION_ID})")  # servers starting at once: one at a time
        names = (META_TABLE, *TABLES)
        found = tx.execute(f"SELECT {', '.join('to_regclass(?) IS NOT NULL' for _ in names)}", names)[0]
        has_meta, present = found[0], [t for t, there in zip(TABLES, found[1:]) if there]
        untouched = "The database was not modified."
        if not has_meta:
            if present:
                raise FeedbackStoreError(
                    f"the PostgreSQL database {self.location} already holds tables {present} that are not a routellm "
                    f"feedback store's (no {META_TABLE} table); refusing to use them. {untouched} Give another "
                    "database, or another schema with ?options=-csearch_path=NAME."
                )
            for statement in schema(self.dialect):
                tx.execute(statement)
            tx.execute(f"CREATE TABLE {META_TABLE} (application_id BIGINT NOT NULL, schema_version INTEGER NOT NULL)")
            tx.execute(f"INSERT INTO {META_TABLE} VALUES (?, ?)", (APPLICATION_ID, SCHEMA_VERSION))
            return
        rows = tx.execute(f"SELECT application_id, schema_version FROM {META_TABLE}")
        if len(rows) != 1 or rows[0][0] != APPLICATION_ID or len(present) != len(TABLES):
            raise FeedbackStoreError(
                f"the table {META_TABLE} in {self.location} does not describe a routellm feedback store "
                f"({rows[:2]}, tables {present}); refusing to use it. {untouched}"
            )
        version = int(rows[0][1])
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION or not migratable(version):
            newer = " (written by a newer version of routellm-integrations)" if version > SCHEMA_VERSION else ""
            raise FeedbackStoreError(
                f"{self.location} is a feedback store of schema version {version}{newer}; this code reads version "
                f"{SCHEMA_VERSION}. {untouched}"
            )
        for statement in migrations(self.dialect, version):
            tx.execute(statement)
        tx.execute(f"UPDATE {META_TABLE} SET schema_version = ?", (SCHEMA_VERSION,))


__all__ = ["SCHEMES", "PostgresBackend", "redact_url"]
