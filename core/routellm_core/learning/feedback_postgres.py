"""The feedback store's shared backend: a PostgreSQL database that several servers (or machines) write at once.

Same schema as the SQLite file (:mod:`~routellm_core.learning.feedback_sql`), in the first schema of the
connection's ``search_path`` (``public`` unless the URL sets ``options=-csearch_path=...``). A table
``routellm_feedback_meta`` holds the application id and schema version that SQLite keeps in its header, and the
same guards apply: a database whose ``decisions`` / ``labels`` tables are not a feedback store's, or a store of a
newer schema, raises :class:`~routellm_core.errors.FeedbackStoreError` and is left as it was (the checks and the
creation or migration of the tables run in one transaction, under an advisory lock, so servers starting at once create
them once).

Concurrency and durability: a small pool of connections per process (``pool_size``), shared by threads and asyncio
worker threads; each write is one transaction, with ``synchronous_commit = on`` (a write the store acknowledged is
on the server's disk) and ``lock_timeout`` = the store's ``timeout``. A process that forks opens new connections;
a pooled connection the server closed while idle (a restart, a failover) is replaced before any statement ran.

A server that stops answering (a host that drops packets, a stalled proxy or disk) never holds a caller longer than the
store's ``timeout`` and a second (plus a connect and a wait for a free pooled connection, each bounded alike):
connecting has libpq's ``connect_timeout``; TCP keepalives and ``tcp_user_timeout`` end a connection whose packets go
unanswered; a write not finished ``timeout`` + :data:`WRITE_GRACE_S` seconds after it began (a read:
:data:`READ_TIMEOUT_FACTOR` times ``timeout``) has its connection shut down by a watchdog;
``idle_in_transaction_session_timeout`` lets the server release the row locks of a client that vanished. After such a
wait (not after a refusal, which costs none) the store is *down* for ``timeout`` seconds: its calls fail at once, then
one call probes the server again (the others keep failing at once until it answers). Options the URL sets win over these
defaults.
Needs the ``postgres`` extra (``psycopg``), imported only when a PostgreSQL store is opened.
"""

from __future__ import annotations

import heapq
import itertools
import os
import re
import socket
import threading
import time
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
    TABLE_SINCE,
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
#: Seconds past the store's timeout a write may run before its connection is shut down: a wait for a row lock
#: (``lock_timeout`` = the timeout) ends first, cleanly, and does not count as a silent server.
WRITE_GRACE_S = 1.0
#: A read (which may stream many rows) is abandoned after this many times the store's timeout.
READ_TIMEOUT_FACTOR = 6


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


def _shut_down(conn: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down, so that a thread blocked reading from it gets an error at once."""
    try:
        fd = conn.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # already closed: nothing is blocked on it
        pass


class _Watchdog:
    """One daemon thread that shuts down the connection of an operation still running at its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, psycopg.Connection[Any]] = {}
        self._fired: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, conn: psycopg.Connection[Any], seconds: float) -> int:
        """Watch ``conn`` for ``seconds``; returns the token :meth:`disarm` takes."""
        with self._cond:
            token = next(self._tokens)
            self._armed[token] = conn
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="routellm-pg-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching; whether the deadline had passed (the connection was shut down)."""
        with self._cond:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed in time
                if not self._heap:
                    if not self._cond.wait(timeout=60) and not self._heap:  # idle a minute: end the thread
                        self._thread = None
                        return
                    continue
                deadline, token = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(timeout=left)
                    continue
                heapq.heappop(self._heap)
                conn = self._armed.pop(token)
                self._fired.add(token)
                _shut_down(conn)


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # a child starts with no watchdog thread (and no lock a parent's thread held)
    os.register_at_fork(after_in_child=lambda: _WATCHDOG.__init__())  # type: ignore[misc]


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
        timeout: Seconds to connect, to wait for a row lock or for a free pooled connection, for a write to finish
            (a read: :data:`READ_TIMEOUT_FACTOR` times that), and that the store stays down after the server stopped
            answering.
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
        seconds = max(1, round(timeout))
        for key, value in {
            "connect_timeout": seconds,
            # TCP: probe an idle connection after `timeout` s, give it up after 3 unanswered probes; give up a
            # connection whose sent data stays unacknowledged for `timeout` s (a host that drops packets).
            "keepalives": 1,
            "keepalives_idle": seconds,
            "keepalives_interval": max(1, round(timeout / 3)),
            "keepalives_count": 3,
            "tcp_user_timeout": round(timeout * 1000),
        }.items():
            self._params.setdefault(key, value)
        self._pool_size = pool_size
        self._cond = threading.Condition(threading.Lock())
        self._idle: list[psycopg.Connection[Any]] = []
        self._count = 0
        self._pid = os.getpid()
        self._closed = False
        self._down_until: float | None = None  # monotonic time the store is down until (None: up)
        self._down_reason = ""
        self._probing = False
        try:
            with self.transaction("setting up the store") as tx:
                self._setup(tx)
        except BaseException:
            self.close()
            raise

    # ---- connections -------------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        start = time.monotonic()
        try:
            conn = self._psycopg.connect(autocommit=True, **self._params)
        except self._psycopg.Error as exc:
            if time.monotonic() - start >= self.timeout / 2:  # it timed out: the host is silent, not refusing
                self._went_down(f"cannot connect: {exc}")
            raise FeedbackStoreError(f"cannot connect to the PostgreSQL feedback store {self.location}: {exc}") from exc
        try:
            with self._watch(conn, self.timeout):
                ms = f"{round(self.timeout * 1000)}ms"
                conn.execute(
                    "SELECT set_config('lock_timeout', %s, false), set_config('synchronous_commit', 'on', false), "
                    "set_config('idle_in_transaction_session_timeout', %s, false)",
                    (ms, ms),
                )
        except BaseException:
            conn.close()
            raise
        return conn

    # ---- an unanswering server: fail at once while it is down, one call probes it ---------------------------
    def _gate(self) -> bool:
        """Raise while the store is down; whether this call is the one that probes the server again."""
        with self._cond:
            if self._down_until is None:
                return False
            left = self._down_until - time.monotonic()
            if left <= 0 and not self._probing:
                self._probing = True
                return True
            wait = f"tried again in {left:.1f} s" if left > 0 else "another call is trying it again"
            raise FeedbackStoreError(
                f"feedback store {self.location} is not answering ({self._down_reason}); not waited for: {wait}"
            )

    def _went_down(self, reason: str) -> None:
        with self._cond:
            self._down_until = time.monotonic() + self.timeout
            self._down_reason = reason[:200]
            self._probing = False

    def _probed(self) -> None:
        """A probe ended: the store is up again unless the probe found it down (which set a new deadline)."""
        with self._cond:
            self._probing = False
            if self._down_until is not None and self._down_until <= time.monotonic():
                self._down_until = None

    @contextmanager
    def _watch(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
        """Run the body with ``conn`` shut down if it is still running after ``seconds``."""
        token = _WATCHDOG.arm(conn, seconds)
        try:
            yield
        except self._psycopg.Error as exc:
            if _WATCHDOG.disarm(token):
                self._went_down(f"no answer within {seconds:g} s")
                raise FeedbackStoreError(
                    f"feedback store {self.location}: the server did not answer within {seconds:g} s; the connection "
                    "was dropped"
                ) from exc
            raise
        finally:
            _WATCHDOG.disarm(token)

    def _acquire(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection of the pool, and whether it was idle in the pool (then the server may have closed it)."""
        with self._cond:
            if self._pid != os.getpid():  # forked: the parent's connections stay the parent's (never closed here)
                self._pid, self._idle, self._count = os.getpid(), [], 0
                self._down_until, self._probing = None, False
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
        probe = self._gate()
        try:
            with ExitStack() as stack:
                while True:
                    conn, reused = self._acquire()
                    watch = self._watch(conn, self.timeout + WRITE_GRACE_S)
                    try:
                        watch.__enter__()
                        began = conn.transaction()
                        began.__enter__()  # BEGIN
                    except BaseException as exc:
                        try:
                            watch.__exit__(type(exc), exc, exc.__traceback__)
                        finally:
                            self._release(conn)
                        if self._stale(conn, reused, exc):
                            continue
                        raise
                    stack.callback(self._release, conn)
                    stack.push(watch)  # exited after COMMIT: a COMMIT the server never answers is shut down too
                    stack.push(began)  # COMMIT, or ROLLBACK when the body raised
                    break
                with conn.cursor() as cursor:
                    yield _Tx(cursor, self.dialect)
        except self._psycopg.Error as exc:
            raise FeedbackStoreError(f"feedback store {self.location}: {what} failed: {exc}") from exc
        finally:
            if probe:
                self._probed()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read (run again on another connection when a pooled one turns out closed)."""
        probe = self._gate()
        try:
            while True:
                conn, reused = self._acquire()
                try:
                    with self._watch(conn, self.timeout * READ_TIMEOUT_FACTOR), conn.cursor() as cursor:
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
        finally:
            if probe:
                self._probed()

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
        version = int(rows[0][1]) if len(rows) == 1 and isinstance(rows[0][1], int) else 0
        expected = [t for t in TABLES if TABLE_SINCE[t] <= version]  # an older store lacks the later tables
        if len(rows) != 1 or rows[0][0] != APPLICATION_ID or not set(expected) <= set(present):
            raise FeedbackStoreError(
                f"the table {META_TABLE} in {self.location} does not describe a routellm feedback store "
                f"({rows[:2]}, tables {present}); refusing to use it. {untouched}"
            )
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


__all__ = ["READ_TIMEOUT_FACTOR", "SCHEMES", "WRITE_GRACE_S", "PostgresBackend", "redact_url"]
