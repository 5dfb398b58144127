"""A real PostgreSQL server for the tests: the ``pgserver`` package's binaries (the ``dev`` extra), one server per
test session, one fresh database per test.

``pgserver`` runs ``initdb`` and ``pg_ctl`` from the wheel (as the system user ``pgserver`` when the tests run as
root, since PostgreSQL refuses to run as root) and listens on a Unix socket inside its data folder only.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def postgres_server() -> Iterator[Any]:
    """Start a PostgreSQL server in a new folder under /tmp (short, for the socket path); stop and delete it after."""
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set, falling back to /tmp/runtime-0"
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver

    folder = Path(tempfile.mkdtemp(prefix="routellm-pg-"))
    server = pgserver.get_server(folder / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_database(server: Any) -> Iterator[str]:
    """A new, empty database on ``server``; yields its URL and drops it after (closing any connection left open)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.get_uri(database=name)
    finally:
        with psycopg.connect(server.get_uri(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dump(url: str) -> str:
    """Every row of the store's tables as text, as the database holds them (to check what was written)."""
    import psycopg

    with psycopg.connect(url) as conn:
        return "\n".join(
            str(row[0])
            for table in ("decisions", "labels")
            for row in conn.execute(f"SELECT t::text FROM {table} t").fetchall()
        )
