"""Bugs an operator met running the learning loop on PostgreSQL, and the traffic report's name for a served router.

Against the real PostgreSQL server the tests start (``pgserver``; ``postgres_url``: a fresh database per test):

- PostgreSQL closes a store's idle pooled connections (a restart, a failover, ``idle_session_timeout``, an
  administrator's ``pg_terminate_backend``): the next write on each such connection failed, so a server lost one
  decision per pooled connection (8 of 40 requests after a restart under ``--workers 2``). Now the pool replaces a
  connection that fails at ``BEGIN`` and the write goes through; a database that refuses new connections still
  fails with ``FeedbackStoreError`` at once.
- A decision id holding a NUL character (``POST /v1/feedback`` takes any JSON string) was a PostgreSQL
  ``DataError``, answered 500; now it matches no decision (404), as on SQLite.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from routellm_core import load_router
from routellm_core.data.records import Battle
from routellm_core.decisions import RoutingDecision
from routellm_core.errors import FeedbackStoreError, InvalidInputError, UnknownDecisionError
from routellm_core.learning.feedback import DecisionRecord, FeedbackStore
from routellm_core.learning.feedback_postgres import redact_url
from routellm_core.learning.report import traffic_report

STRONG, WEAK = "big-model", "small-model"


def _record(decision_id: str | None = None) -> DecisionRecord:
    decision = RoutingDecision(router="mf", win_rate=0.2, threshold=0.5, choice="weak")
    return DecisionRecord.from_decision(
        decision, strong_model=STRONG, weak_model=WEAK, served="weak", decision_id=decision_id or uuid.uuid4().hex
    )


def _database(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT current_database()").fetchone()[0]


def _close_store_connections(url: str, name: str | None = None) -> int:
    """What a PostgreSQL restart does to a client's idle connections: the server ends each one (of the database
    ``name``, default the URL's)."""
    name = name or _database(url)
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return sum(1 for (ended,) in rows if ended)


def _fill_pool(store: FeedbackStore, n: int) -> list[str]:
    """Write from ``n`` threads at once, so that the pool holds several idle connections afterwards."""
    ids = [uuid.uuid4().hex for _ in range(n)]
    barrier = threading.Barrier(n)

    def write(decision_id: str) -> None:
        barrier.wait()
        store.record_decision(_record(decision_id), f"prompt {decision_id}")

    threads = [threading.Thread(target=write, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ids


def _stored_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT decision_id FROM decisions").fetchall()}


def test_writes_go_through_after_postgres_closed_every_pooled_connection(postgres_url: str) -> None:
    with FeedbackStore(postgres_url, pool_size=4) as store:
        written = _fill_pool(store, 4)
        assert _close_store_connections(postgres_url) >= 2  # the pool held several idle connections
        # one write per closed connection, and one more: each used to fail with "terminating connection"
        after = [store.record_decision(_record(), f"after {i}") for i in range(5)]
        assert store.add_verdict(after[0], "bad") is not None
    assert _stored_ids(postgres_url) == set(written) | set(after)


def test_reads_go_through_after_postgres_closed_the_pooled_connections(postgres_url: str) -> None:
    with FeedbackStore(postgres_url, pool_size=4) as store:
        written = _fill_pool(store, 3)
        assert _close_store_connections(postgres_url) >= 2
        assert {row.decision_id for row in store.decisions()} == set(written)
        assert store.stats().decisions == 3


def test_a_database_that_refuses_connections_still_fails_at_once_and_recovers(postgres_url: str) -> None:
    name = _database(postgres_url)
    maintenance = postgres_url.replace(f"/{name}?", "/postgres?")
    assert maintenance != postgres_url
    with FeedbackStore(postgres_url, pool_size=2, timeout=5) as store:
        _fill_pool(store, 2)
        with psycopg.connect(maintenance, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            _close_store_connections(maintenance, name)
            with pytest.raises(FeedbackStoreError, match=f"(?s)cannot connect.*{name}"):
                store.record_decision(_record(), "lost while the database is down")
        finally:
            with psycopg.connect(maintenance, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        back = store.record_decision(_record(), "written once it is back")
    assert back in _stored_ids(postgres_url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_decision_id_with_a_nul_character_is_unknown_not_a_database_error(
    backend: str, postgres_url: str, tmp_path: Path
) -> None:
    location = postgres_url if backend == "postgresql" else str(tmp_path / "feedback.db")
    with FeedbackStore(location) as store:
        kept = store.record_decision(_record(), "a prompt")
        with pytest.raises(UnknownDecisionError, match="no decision with id"):
            store.add_verdict("bad\x00id", "bad")
        with pytest.raises(UnknownDecisionError):
            store.add_verdict(kept + "\x00", "bad")
        assert store.decision("\x00") is None
        assert store.decisions(["\x00", kept])[0].decision_id == kept
        assert store.add_verdict(kept, "bad") is not None  # the store still works


# ---- the traffic report's name for a router given as an object ----------------------------------------------
def _battles() -> list[Battle]:
    hard = [f"Prove that the sum of the first {n} odd numbers is {n} squared, step by step." for n in range(3, 11)]
    easy = [f"Hi, I am number {n}" for n in range(8)]
    return [Battle(prompt=p, model_a=STRONG, model_b=WEAK, winner="model_a") for p in hard] + [
        Battle(prompt=p, model_a=STRONG, model_b=WEAK, winner="tie") for p in easy
    ]


def test_the_report_calls_a_served_router_by_the_name_it_is_served_under() -> None:
    router = load_router("default")  # what a server holds: the object, whose type is "difficulty"
    kwargs = {"strong_model": STRONG, "weak_model": WEAK, "folds": 0, "n_bootstrap": 100}
    named = traffic_report(router, _battles(), name="default", **kwargs)
    assert named.router == named.base == "default"
    assert named.rows[0].name == "default (as is)" and "default (as is)" in named.to_markdown()
    assert "difficulty" not in named.to_markdown()
    unnamed = traffic_report(router, _battles(), **kwargs)
    assert unnamed.rows[0].name == f"{router.name} (as is)"
    assert [r.apgr for r in named.rows] == [r.apgr for r in unnamed.rows]  # the name changes nothing else
    with pytest.raises(InvalidInputError, match="name must be a non-empty string"):
        traffic_report(router, _battles(), name=" ", **kwargs)


def test_an_empty_password_is_shown_as_it_is_not_as_stars(postgres_url: str) -> None:
    """``user:@`` (pgserver's own URLs) showed as ``user:***@``: pasted into ``routellm train --feedback`` that sends
    the password ``***``. A real password is still hidden."""
    assert "postgres:@" in postgres_url
    with FeedbackStore(postgres_url) as store:
        assert store.location == postgres_url and "***" not in repr(store)
    assert (
        redact_url("postgresql://me:@db/fb?password=&sslmode=require")
        == "postgresql://me:@db/fb?password=&sslmode=require"
    )
    assert redact_url("postgresql://me:pw@db/fb?password=pw2") == "postgresql://me:***@db/fb?password=***"
