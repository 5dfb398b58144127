"""The feedback store on PostgreSQL: chosen by URL, the same schema and guards as SQLite, and shared by processes.

Every test runs against a real PostgreSQL server the tests start themselves (``pgserver``, the ``dev`` extra; the
``postgres_url`` fixture gives each test a fresh database). The behaviour both backends share is tested on both in
``test_feedback.py``; here: URLs, the guards on foreign or newer tables, several OS processes writing one store at
once (verdicts racing on the same decisions included), and two ``routellm serve`` processes sharing one store.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sqlite3
import sys
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from served_process import free_port, serving

from routellm_core.decisions import LadderChoice, RoutingDecision, ServedDecision
from routellm_core.errors import FeedbackStoreError, InvalidInputError, MissingDependencyError
from routellm_core.learning.feedback import APPLICATION_ID, SCHEMA_VERSION, DecisionRecord, FeedbackStore, store_backend
from routellm_core.learning.feedback_sql import META_TABLE
from routellm_core.server import ServerThread
from routellm_core.server.mock_upstream import create_mock_upstream

STRONG, WEAK = "big-model", "small-model"


def _record(decision_id: str, served: str = "weak") -> DecisionRecord:
    decision = RoutingDecision(router="mf", win_rate=0.2, threshold=0.5, choice="weak")
    return DecisionRecord.from_decision(decision, strong_model=STRONG, weak_model=WEAK, served=served,
                                        decision_id=decision_id)  # fmt: skip


def _tables(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table of the database's public schema with its rows (to show a refused database was not touched)."""
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


# ---- choosing the backend by URL ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "location",
    ["mysql://user@db:3306/feedback", "http://example.com/fb.db", "sqlite+foo:///fb.db", "file:///tmp/fb.db",
     "postgresql+psycopg://user@db/feedback", "Postgresql:feedback", Path("mysql://user@db/feedback"),
     Path("postgresql://user@db/feedback")],
)  # fmt: skip
def test_a_url_of_another_scheme_is_refused_and_creates_nothing(
    location: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        InvalidInputError, match=r"(unsupported feedback store URL scheme|malformed PostgreSQL URL)"
    ) as err:
        FeedbackStore(location)
    assert "postgresql://user[:password]@host" in str(err.value) and "SQLite file path" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_postgres_url_is_never_taken_for_a_file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It once created a folder ``postgresql:`` holding a SQLite file; now it connects (here: to a closed port)."""
    monkeypatch.chdir(tmp_path)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    url = f"postgresql://routellm:s3cr3t-pw@127.0.0.1:{closed.getsockname()[1]}/feedback"
    try:
        assert store_backend(url) == "postgresql" and store_backend("postgres://h/db") == "postgresql"
        assert store_backend("feedback.db") == store_backend(tmp_path / "fb.db") == "sqlite"
        with pytest.raises(FeedbackStoreError, match="cannot connect to the PostgreSQL feedback store") as err:
            FeedbackStore(url, timeout=2)
    finally:
        closed.close()
    assert "s3cr3t-pw" not in str(err.value) and "routellm:***@127.0.0.1" in str(err.value)  # password hidden
    assert list(tmp_path.iterdir()) == []


def test_the_server_refuses_an_unsupported_store_url_before_starting(postgres_url: str) -> None:
    from routellm_core.server import ServerSettings

    with pytest.raises(InvalidInputError, match=r"feedback: .*unsupported feedback store URL scheme 'mysql'"):
        ServerSettings.build(strong="openai:a", weak="openai:b", feedback="mysql://user@db/feedback")
    assert ServerSettings.build(strong="openai:a", weak="openai:b", feedback=postgres_url).feedback == postgres_url


def test_without_psycopg_the_error_names_the_extra(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the postgres extra were not installed
    with pytest.raises(MissingDependencyError, match=r"routellm-integrations\[postgres\]") as err:
        FeedbackStore(postgres_url)
    assert err.value.extra == "postgres"


def test_a_front_end_feedback_url_records_into_postgres(postgres_url: str) -> None:
    """``feedback=`` of the front ends goes through the same constructor: a URL is a PostgreSQL store, and the
    decision record each response carries is the one stored (attempts and all)."""
    from lc_fakes import ToolEchoChatModel

    from langchain_routellm import ChatRouteLLM

    llm = ChatRouteLLM(
        strong=ToolEchoChatModel(label="strong", model="fake-strong-1"),
        weak=ToolEchoChatModel(label="weak", model="fake-weak-1"),
        router="fast",
        threshold=0.5,
        feedback=postgres_url,
    )
    store = llm.feedback_store
    assert store is not None and store.backend == "postgresql"
    records = [llm.invoke(p).response_metadata["routellm"] for p in ("What is 2 + 2?", "Prove Fermat's last theorem.")]
    for meta in records:
        row = store.decision(meta["decision_id"])
        assert row is not None and row.record.decision == ServedDecision.from_dict(meta)
        assert (row.record.strong_model, row.record.weak_model) == ("fake-strong-1", "fake-weak-1")
    assert store.add_verdict(records[0]["decision_id"], "bad") is not None


# ---- one schema, the same guards ---------------------------------------------------------------------------
def test_the_schema_is_the_sqlite_schema(postgres_url: str, tmp_path: Path) -> None:
    FeedbackStore(postgres_url).close()
    FeedbackStore(tmp_path / "fb.db").close()
    with sqlite3.connect(tmp_path / "fb.db") as lite:
        sqlite_columns = {
            t: [(r[1], bool(r[3])) for r in lite.execute(f"PRAGMA table_info({t})")] for t in ("decisions", "labels")
        }
        sqlite_indexes = {r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    lite.close()
    with psycopg.connect(postgres_url) as conn:
        pg_columns = {
            t: [(name, nullable == "NO") for name, nullable in conn.execute(
                "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position", (t,))]
            for t in ("decisions", "labels")
        }  # fmt: skip
        pg_indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        meta = conn.execute(f"SELECT application_id, schema_version FROM {META_TABLE}").fetchall()
        float_types = {r[0] for r in conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE column_name IN ('win_rate', 'created_at', 'cost')"
        )}  # fmt: skip
    # PRAGMA marks INTEGER PRIMARY KEY nullable and TEXT PRIMARY KEY too; PostgreSQL says NOT NULL for both keys
    assert [c for c, _ in pg_columns["decisions"]] == [c for c, _ in sqlite_columns["decisions"]]
    assert (
        pg_columns["labels"][1:] == sqlite_columns["labels"][1:]
        and pg_columns["decisions"][1:] == (sqlite_columns["decisions"][1:])
    )
    assert "labels_decision_source" in pg_indexes and "labels_decision_source" in sqlite_indexes
    assert meta == [(APPLICATION_ID, SCHEMA_VERSION)]
    assert float_types == {"double precision"}  # 8-byte floats, as SQLite's REAL


def test_tables_of_another_application_are_refused_and_left_as_they_were(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE decisions (id SERIAL PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO decisions (title) VALUES ('hire Ada')")
    before = _tables(postgres_url)
    with pytest.raises(FeedbackStoreError, match=r"already holds tables \['decisions'\]") as err:
        FeedbackStore(postgres_url)
    assert "was not modified" in str(err.value)
    assert _tables(postgres_url) == before  # no labels table, no meta table, the row intact

    with psycopg.connect(postgres_url, autocommit=True) as conn:  # a meta table naming another application
        conn.execute("DROP TABLE decisions")
        conn.execute(f"CREATE TABLE {META_TABLE} (application_id BIGINT, schema_version INTEGER)")
        conn.execute(f"INSERT INTO {META_TABLE} VALUES (1234, 1)")
    before = _tables(postgres_url)
    with pytest.raises(FeedbackStoreError, match="does not describe a routellm feedback store"):
        FeedbackStore(postgres_url)
    assert _tables(postgres_url) == before


def test_a_store_of_a_newer_schema_is_refused_and_left_as_it_was(postgres_url: str) -> None:
    with FeedbackStore(postgres_url) as store:
        store.record_decision(_record("keep-me"), "a prompt")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {META_TABLE} SET schema_version = {SCHEMA_VERSION + 1}")
    before = _tables(postgres_url)
    with pytest.raises(FeedbackStoreError, match="newer version") as err:
        FeedbackStore(postgres_url)
    assert "was not modified" in str(err.value)
    assert _tables(postgres_url) == before


def test_a_version_2_store_is_migrated_in_place_and_keeps_ladder_entries(postgres_url: str) -> None:
    """A store written before the ladder column (schema 2): opened, it gains the column, keeps its rows, and a call
    among N models is stored with its ladder entry."""
    with FeedbackStore(postgres_url) as store:
        store.record_decision(_record("old-1"), "an old prompt")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE decisions DROP COLUMN ladder")
        conn.execute(f"UPDATE {META_TABLE} SET schema_version = 2")
    ladder = LadderChoice(
        models=("tiny", "big"), predictions=(0.4, 0.8), expected_costs=(1e-5, 1e-3), chosen="tiny",
        objective="margin", value=0.5, strong="big", weak="tiny",
    )  # fmt: skip
    served = ServedDecision(
        id="lad-1", router="difficulty", win_rate=0.6, threshold=1.0, choice="weak", served="weak", model="tiny",
        ladder=ladder,
    )  # fmt: skip
    with FeedbackStore(postgres_url) as store:
        assert store.decision("old-1").record.ladder is None
        store.record_decision(DecisionRecord.from_decision(served, strong_model="big", weak_model="tiny"), "new")
        assert store.decision("lad-1").record.ladder == ladder
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute(f"SELECT schema_version FROM {META_TABLE}").fetchall() == [(SCHEMA_VERSION,)]


def test_servers_starting_at_once_create_the_tables_once(postgres_url: str) -> None:
    ctx = mp.get_context("spawn")
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_write, args=(postgres_url, w, 5, barrier, errors)) for w in range(4)]
    _run_all(procs, errors)
    with FeedbackStore(postgres_url) as store:
        assert store.stats().decisions == 4 * 5 + 5  # each worker's own five, plus the five shared ones


# ---- several processes, one store --------------------------------------------------------------------------
SHARED = [f"shared-{i}" for i in range(5)]


def _write(url: str, worker: int, n: int, barrier: object, errors: mp.Queue) -> None:  # spawned child
    """Record ``n`` decisions of its own with a verdict and a judge label each; then race the other workers on the
    same five shared decisions: record them, thumb them (``bad`` then ``strong``), and label them as the judge."""
    try:
        barrier.wait(timeout=120)  # type: ignore[attr-defined]
        with FeedbackStore(url) as store:
            for i in range(n):
                rec = _record(f"w{worker}-{i}", served="weak" if i % 2 else "strong")
                store.record_decision(rec, f"prompt {worker}-{i}")
                store.add_verdict(rec.decision_id, "bad")
                store.add(f"prompt {worker}-{i}", STRONG, WEAK, "tie", judge=f"j{worker}", record=rec)
            for decision_id in SHARED:
                rec = _record(decision_id)
                store.record_decision(rec, f"shared prompt {decision_id}")
                store.add_verdict(decision_id, "bad")
                store.add(f"shared prompt {decision_id}", STRONG, WEAK, "model_b", judge=f"j{worker}", record=rec)
                store.add_verdict(decision_id, "strong")
    except BaseException:
        errors.put(traceback.format_exc())
        raise


def _run_all(procs: list[mp.Process], errors: mp.Queue) -> None:
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert errors.empty(), errors.get()
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_processes_writing_at_once_lose_no_decision_label_or_verdict(postgres_url: str) -> None:
    n, workers = 30, 3
    FeedbackStore(postgres_url).close()
    ctx = mp.get_context("spawn")
    barrier, errors = ctx.Barrier(workers), ctx.Queue()
    _run_all([ctx.Process(target=_write, args=(postgres_url, w, n, barrier, errors)) for w in range(workers)], errors)
    with FeedbackStore(postgres_url) as store:
        decisions = {row.decision_id: row for row in store.decisions()}
        assert set(decisions) == {f"w{w}-{i}" for w in range(workers) for i in range(n)} | set(SHARED)
        labels = store.labels()
        per_key = Counter((r.decision_id, r.source) for r in labels)
        assert set(per_key.values()) == {1}  # the unique (decision, source) guard held under the races
        assert len(labels) == 2 * len(decisions)  # one user and one judge label per decision, none lost
        own = {r.decision_id: r for r in labels if r.source == "user" and not r.decision_id.startswith("shared")}
        for decision_id, row in own.items():  # "bad": served weak -> strong wins; served strong -> both bad
            assert row.winner == ("model_a" if decisions[decision_id].record.served == "weak" else "tie (bothbad)")
            assert decisions[decision_id].verdict == "bad"
        shared_user = [r for r in labels if r.source == "user" and r.decision_id in SHARED]
        assert {r.winner for r in shared_user} == {"model_a"}
        assert {decisions[d].verdict for d in SHARED} <= {"bad", "strong"}


# ---- two servers, one store --------------------------------------------------------------------------------
TOKEN = "pg-share-token-7c2d"


@contextmanager
def _server(mock_url: str, feedback: str) -> Iterator[str]:
    """``routellm serve --feedback URL`` in its own process on a free port, until it answers ``/health``."""
    port = free_port()
    env = {**os.environ, "ROUTELLM_TEST_PG_TOKENS": TOKEN}
    command = [
        sys.executable, "-m", "routellm_core.cli", "serve",
        "--strong", "openai:mock-strong", "--strong-base-url", f"{mock_url}/v1",
        "--weak", "openai:mock-weak", "--weak-base-url", f"{mock_url}/v1",
        "--strong-api-key-env", "ROUTELLM_TEST_NO_KEY", "--weak-api-key-env", "ROUTELLM_TEST_NO_KEY",
        "--router", "fast", "--port", str(port), "--log-level", "warning",
        "--api-keys-env", "ROUTELLM_TEST_PG_TOKENS", "--feedback", feedback,
    ]  # fmt: skip
    with serving(command, env, port) as served:
        yield served.url


@pytest.mark.slow
def test_two_server_processes_share_one_postgres_store(postgres_url: str) -> None:
    """Requests spread over two servers on different ports; each verdict sent to the server that did *not* route the
    request: every decision, verdict and label is in the one store."""
    import asyncio

    per_server = 40
    with ServerThread(create_mock_upstream(keep=256)) as mock, _server(mock.url, postgres_url) as one, _server(
        mock.url, postgres_url
    ) as two:  # fmt: skip

        async def traffic() -> list[tuple[str, dict[str, Any]]]:
            headers = {"authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(headers=headers, timeout=60) as client:

                async def ask(base: str, i: int) -> tuple[str, dict[str, Any]]:
                    body = {"model": "router-fast-30%",
                            "messages": [{"role": "user", "content": f"Question {i}: {uuid.uuid4().hex}"}]}  # fmt: skip
                    reply = await client.post(f"{base}/v1/chat/completions", json=body)
                    assert reply.status_code == 200, reply.text
                    return base, reply.json()["routellm"]

                routed = await asyncio.gather(*(ask(base, i) for base in (one, two) for i in range(per_server)))

                async def thumb(base: str, decision_id: str) -> None:
                    other = two if base == one else one
                    reply = await client.post(f"{other}/v1/feedback", json={"decision_id": decision_id,
                                                                           "verdict": "bad"})  # fmt: skip
                    assert reply.status_code == 200, reply.text
                    assert reply.json()["label_id"] is not None

                await asyncio.gather(*(thumb(base, record["decision_id"]) for base, record in routed))
                return routed

        routed = asyncio.run(traffic())
    served = {record["decision_id"]: ServedDecision.from_dict(record) for _, record in routed}
    assert len(served) == 2 * per_server
    with FeedbackStore(postgres_url) as store:
        rows = {r.decision_id: r for r in store.decisions()}
        assert set(rows) == set(served) and {r.verdict for r in rows.values()} == {"bad"}
        assert {r.decision_id for r in store.labels(["user"])} == set(served)
        for decision_id, row in rows.items():  # the record each response carried, stored whole
            assert row.record.decision == served[decision_id]
