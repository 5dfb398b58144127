"""The feedback store: schema checks, safety of foreign files, redaction, verdicts, export, and concurrency.

Every test that takes ``location`` runs twice: on a SQLite file and on a fresh database of a real PostgreSQL server
(``postgres_url``, started by the tests with ``pgserver``), so the two backends are shown to behave alike. The
PostgreSQL-only guarantees (shared by processes, its own guards) are in ``test_feedback_postgres.py``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import replace
from pathlib import Path

import pytest
from postgres_server import dump

from routellm_core.data.records import Battle
from routellm_core.decisions import Attempt, LadderChoice, RoutingDecision, ServedDecision
from routellm_core.errors import FeedbackStoreError, InvalidInputError, RouteLLMError, UnknownDecisionError
from routellm_core.learning.feedback import APPLICATION_ID, SCHEMA_VERSION, DecisionRecord, FeedbackStore

try:  # the data loaders are moving from routellm_core.datasets to routellm_core.data
    from routellm_core.data import load_battles
except ImportError:  # pragma: no cover - older layout
    from routellm_core.datasets import load_battles

STRONG, WEAK = "big-model", "small-model"


def _record(choice: str = "weak", served: str | None = None, decision_id: str | None = None) -> DecisionRecord:
    decision = RoutingDecision(router="mf", win_rate=0.7 if choice == "strong" else 0.2, threshold=0.5, choice=choice)
    return DecisionRecord.from_decision(
        decision, strong_model=STRONG, weak_model=WEAK, served=served, decision_id=decision_id
    )


def _raw_bytes(location: str | Path) -> bytes:
    """What the database holds: the SQLite file and its WAL as they lie on disk, or PostgreSQL's rows as text."""
    if str(location).startswith("postgresql://"):
        return dump(str(location)).encode("utf-8")
    path = Path(location)
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store's location: a SQLite file path, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "fb.db")
    return request.getfixturevalue("postgres_url")


# ---- writing and reading -----------------------------------------------------------------------------------
def test_add_labels_and_read_them_back_as_battles(location: str) -> None:
    with FeedbackStore(location) as store:
        ids = [
            store.add("Prove Fermat's little theorem.", STRONG, WEAK, "model_a", judge="gpt-judge"),
            store.add("hi", STRONG, WEAK, WEAK, source="user"),  # a model name as winner
            store.add("What is 2 + 2?", STRONG, WEAK, "tie", source="golden"),
            store.add("Write a haiku about rain.", STRONG, WEAK, "tie (bothbad)"),
        ]
        assert ids == sorted(ids) and len(set(ids)) == 4
        rows = store.labels()
        assert [r.winner for r in rows] == ["model_a", "model_b", "tie", "tie (bothbad)"]
        assert [r.source for r in rows] == ["judge", "user", "golden", "judge"]
        assert rows[0].judge == "gpt-judge" and rows[1].judge is None
        assert store.battles() == [
            Battle(prompt="Prove Fermat's little theorem.", model_a=STRONG, model_b=WEAK, winner="model_a",
                   source="feedback:judge"),
            Battle(prompt="hi", model_a=STRONG, model_b=WEAK, winner="model_b", source="feedback:user"),
            Battle(prompt="What is 2 + 2?", model_a=STRONG, model_b=WEAK, winner="tie", source="feedback:golden"),
            Battle(prompt="Write a haiku about rain.", model_a=STRONG, model_b=WEAK, winner="tie",
                   source="feedback:judge"),
        ]  # fmt: skip
        assert [b.prompt for b in store.battles(sources=["user", "golden"])] == ["hi", "What is 2 + 2?"]
        stats = store.stats()
        assert stats.labels == 4 and stats.decisions == 0
        assert stats.by_source == {"golden": 1, "judge": 2, "user": 1}
        assert stats.by_winner == {"model_a": 1, "model_b": 1, "tie": 1, "tie (bothbad)": 1}
        assert stats.by_choice == {"none": 4}


def test_bad_values_raise_clear_errors(location: str) -> None:
    with FeedbackStore(location) as store:
        with pytest.raises(InvalidInputError, match="unknown winner"):
            store.add("q", STRONG, WEAK, "draw")
        with pytest.raises(InvalidInputError, match="label source"):
            store.add("q", STRONG, WEAK, "tie", source="crowd")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="prompt"):
            store.add("   ", STRONG, WEAK, "tie")
        with pytest.raises(InvalidInputError, match="two models"):
            store.add("q", STRONG, STRONG, "tie")
        with pytest.raises(InvalidInputError, match="threshold"):
            DecisionRecord("id", STRONG, WEAK, "weak", threshold=float("nan"))
        with pytest.raises(InvalidInputError, match="served"):
            DecisionRecord.from_decision({"router": "mf"}, strong_model=STRONG, weak_model=WEAK)
        assert store.labels() == []
    with pytest.raises(FeedbackStoreError, match="closed"):
        store.add("q", STRONG, WEAK, "tie")


def test_decision_record_from_routing_decision_and_metadata() -> None:
    rec = _record("weak", decision_id="d1")
    assert (rec.served, rec.served_model, rec.other_model, rec.choice) == ("weak", WEAK, STRONG, "weak")
    # the integrations' metadata dict: its decision id and the side that answered (a fallback here) are used
    meta = {"decision_id": "d2", "router": "mf", "win_rate": 0.8, "threshold": 0.5, "choice": "strong",
            "served": "weak", "model": WEAK, "fallback": True}  # fmt: skip
    rec2 = DecisionRecord.from_decision(meta, strong_model=STRONG, weak_model=WEAK)
    assert (rec2.decision_id, rec2.choice, rec2.served, rec2.served_model) == ("d2", "strong", "weak", WEAK)
    fresh = {_record().decision_id for _ in range(3)}
    assert len(fresh) == 3  # a new id per call when none is given


def _escalated() -> ServedDecision:
    """A served decision with every attempt kind: two cheap answers that disagreed, then the strong model."""
    return ServedDecision(
        id="esc-1", router="mf", win_rate=0.31, threshold=0.5, choice="weak", served="strong", model=STRONG,
        attempts=(
            Attempt(WEAK, "weak", "answer", signals={"agreement": 0.2}, confidence=0.2, input_tokens=12,
                    output_tokens=40, cost=0.0001),
            Attempt(WEAK, "weak", "check", signals={"agreement": 0.2}, input_tokens=12, output_tokens=38, cost=0.0001),
            Attempt(STRONG, "strong", "escalation", kept=True, input_tokens=12, output_tokens=90, cost=0.0125),
        ),
        escalated=True,
    )  # fmt: skip


def _laddered() -> ServedDecision:
    """A call among three priced models: mid chosen by a budget, on the pair (mid, big)."""
    ladder = LadderChoice(
        models=("tiny", "mid", "big"), predictions=(0.41, 0.62, 0.8), expected_costs=(1e-5, 1e-4, 1e-3),
        chosen="mid", objective="budget", value=120.0, strong="big", weak="mid", budget=1.5, spend=1.42,
    )  # fmt: skip
    return ServedDecision(
        id="lad-1", router="difficulty", win_rate=0.6, threshold=1.0, choice="weak", served="weak", model="mid",
        attempts=(Attempt("mid", "weak", "answer", kept=True, input_tokens=12, output_tokens=40, cost=0.00005),),
        ladder=ladder,
    )  # fmt: skip


def test_the_ladder_entry_of_a_call_among_n_models_is_stored(tmp_path: Path) -> None:
    served = _laddered()
    with FeedbackStore(tmp_path / "fb.db") as store:
        store.record_decision(DecisionRecord.from_decision(served, strong_model="big", weak_model="mid"), "a prompt")
        back = store.decision("lad-1").record
        assert back.ladder == served.ladder and back.decision == served
        assert back.as_dict()["ladder"]["expected_costs"] == {"tiny": 1e-5, "mid": 1e-4, "big": 1e-3}
    with pytest.raises(InvalidInputError, match="ladder is not a ladder entry"):
        DecisionRecord("x", "big", "mid", "weak", "difficulty", 0.6, 1.0, "weak", ladder={"models": ["a"]})
    with pytest.raises(InvalidInputError, match="give its router"):
        DecisionRecord("x", "big", "mid", "weak", ladder=served.ladder)


def test_a_record_is_a_view_of_the_served_decision_not_a_copy() -> None:
    served = _escalated()
    record = DecisionRecord.from_decision(served, strong_model=STRONG, weak_model=WEAK)
    assert record.decision is served  # the engine's record itself
    assert (record.decision_id, record.served, record.choice, record.escalated) == ("esc-1", "strong", "weak", True)
    assert record.attempts is served.attempts and record.cost == pytest.approx(0.0127)
    with pytest.raises(AttributeError, match="read-only"):
        record.strong_model = "other"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(record)) == record  # e.g. handed to another process
    # the same call from its metadata dict (what an integration's response carries) is an equal record
    assert DecisionRecord.from_decision(served.as_dict(), strong_model=STRONG, weak_model=WEAK) == record
    # a hand-built record without a routing decision holds no served decision
    bare = DecisionRecord(decision_id="b", strong_model=STRONG, weak_model=WEAK, served="weak")
    assert bare.decision is None and bare.router is None and bare.attempts == () and bare.cost is None
    with pytest.raises(InvalidInputError, match="router, win_rate, threshold"):
        DecisionRecord("b", STRONG, WEAK, "weak", escalated=True)


def test_a_served_decision_is_stored_whole_and_read_back(location: str) -> None:
    served = _escalated()
    fallback = ServedDecision(
        id="fb-1", router="mf", win_rate=0.8, threshold=0.5, choice="strong", served="weak", model=WEAK,
        fallback_from=STRONG, fallback_error="TimeoutError",
        attempts=(Attempt(STRONG, "strong", error="TimeoutError"), Attempt(WEAK, "weak", "fallback", kept=True)),
    )  # fmt: skip
    with FeedbackStore(location, store_answers=True) as store:
        for decision, prompt in ((served, "Prove it."), (fallback, "Sum 2 and 2.")):
            record = DecisionRecord.from_decision(decision, strong_model=STRONG, weak_model=WEAK)
            store.record_decision(record, prompt, answer=f"answer to {prompt}")
        store.record_decision(DecisionRecord("bare", STRONG, WEAK, "weak"), "hi")
        store.add_verdict("esc-1", "good")
        rows = store.decisions()
        assert [r.decision_id for r in rows] == ["esc-1", "fb-1", "bare"]
        assert rows[0].record.decision == served and rows[1].record.decision == fallback  # attempts and all
        assert rows[0].record.cost == pytest.approx(0.0127) and rows[1].record.cost is None  # a price unknown
        assert (rows[0].prompt, rows[0].answer, rows[0].verdict) == ("Prove it.", "answer to Prove it.", "good")
        assert rows[2].record.decision is None and rows[2].verdict is None
        assert store.decision("fb-1") == rows[1] and store.decision("never") is None
        assert rows[0].to_json()["attempts"][2] == {**served.attempts[2].as_dict()}


# ---- verdicts on recorded decisions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("served", "verdict", "winner"),
    [
        ("weak", "bad", "model_a"),  # the weak answer was bad: the call should have gone to strong
        ("weak", "good", "tie"),  # the weak answer was good enough
        ("strong", "bad", "tie (bothbad)"),  # strong failed: assume weak would have too
        ("strong", "good", None),  # says nothing about the weak model: no label
        ("strong", "weak", "model_b"),
        ("weak", "strong", "model_a"),
        ("weak", WEAK, "model_b"),
        ("strong", "tie", "tie"),
    ],
)
def test_verdict_mapping(location: str, served: str, verdict: str, winner: str | None) -> None:
    with FeedbackStore(location) as store:
        rec = _record(served, decision_id="call-1")
        assert store.record_decision(rec, "Summarise this contract.") == "call-1"
        row_id = store.add_verdict("call-1", verdict)
        rows = store.labels()
        if winner is None:
            assert row_id is None and rows == []
        else:
            assert [(r.id, r.winner, r.model_a, r.model_b, r.source) for r in rows] == [
                (row_id, winner, STRONG, WEAK, "user")
            ]
            assert rows[0].decision_id == "call-1" and rows[0].served == (
                "model_a" if served == "strong" else "model_b"
            )
            assert (rows[0].router, rows[0].win_rate, rows[0].threshold, rows[0].choice) == (
                "mf",
                rec.win_rate,
                0.5,
                served,
            )
        assert store.stats().verdicts == {("weak" if verdict == WEAK else verdict): 1}


def test_later_verdict_replaces_earlier_and_sources_are_separate(location: str) -> None:
    with FeedbackStore(location) as store:
        rec = _record("strong", decision_id="c")
        store.record_decision(rec, "Explain quantum tunnelling.")
        store.record_decision(_record("weak", decision_id="c"), "another text")  # same id again: first one kept
        first = store.add_verdict("c", "bad")
        assert store.add_verdict("c", "strong") == first  # same row, new winner
        judge_row = store.add("Explain quantum tunnelling.", STRONG, WEAK, "tie", judge="j", record=rec)
        assert judge_row != first
        assert [(r.source, r.winner) for r in store.labels()] == [("user", "model_a"), ("judge", "tie")]
        assert store.add_verdict("c", "good") is None  # thumbs up on strong: the user label is withdrawn
        assert [(r.source, r.winner) for r in store.labels()] == [("judge", "tie")]
        assert store.prompts() == ["Explain quantum tunnelling."]
        with pytest.raises(UnknownDecisionError, match="record_decision") as unknown:
            store.add_verdict("never-recorded", "bad")
        assert isinstance(unknown.value, FeedbackStoreError)  # callers catching the store's error still do
        with pytest.raises(InvalidInputError, match="unknown verdict"):
            store.add_verdict("c", "meh")


# ---- export ------------------------------------------------------------------------------------------------
def test_export_round_trips_through_load_battles(location: str, tmp_path: Path) -> None:
    with FeedbackStore(location, store_answers=True) as store:
        rec = _record("weak", decision_id="x1")
        store.record_decision(rec, "Translate 'bonjour' to English.", answer="Goodbye.")
        store.add_verdict("x1", "bad")
        store.add("Sort [3, 1, 2].", STRONG, WEAK, "model_b", judge="j", answer_a="[1,2,3]", answer_b="[1, 2, 3]")
        store.add('A prompt with "quotes", emoji 🙂 and\nnewlines', STRONG, WEAK, "tie (bothbad)", source="golden")
        out = tmp_path / "feedback.jsonl"
        assert store.export_jsonl(out) == 3
        assert load_battles(out) == store.battles()
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert lines[0]["decision_id"] == "x1" and lines[0]["answer_b"] == "Goodbye." and lines[0]["answer_a"] is None
        assert lines[2]["winner"] == "tie (bothbad)" and lines[2]["label_source"] == "golden"
        assert store.export_jsonl(tmp_path / "judge.jsonl", sources=["judge"]) == 1
        with pytest.raises(InvalidInputError, match=r"\.jsonl"):
            store.export_jsonl(tmp_path / "feedback.csv")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "fb.db") == ["feedback.jsonl", "judge.jsonl"]


# ---- privacy -----------------------------------------------------------------------------------------------
def test_redact_runs_before_anything_is_written(location: str, tmp_path: Path) -> None:
    path = location

    def redact(text: str) -> str:
        return text.replace("jane@example.com", "<EMAIL>")

    store = FeedbackStore(path, store_answers=True, redact=redact)
    rec = _record("weak", decision_id="r1")
    store.record_decision(rec, "Email jane@example.com the report", answer="Sent to jane@example.com.")
    store.add_verdict("r1", "bad")
    store.add("Who is jane@example.com?", STRONG, WEAK, "model_a", answer_a="jane@example.com is Jane", answer_b="?")
    assert b"jane@example.com" not in _raw_bytes(path)  # while open: database + WAL
    assert {r.prompt for r in store.labels()} == {"Email <EMAIL> the report", "Who is <EMAIL>?"}
    store.close()
    raw = _raw_bytes(path)
    assert b"jane@example.com" not in raw and b"<EMAIL>" in raw and b"Sent to <EMAIL>." in raw

    bad = FeedbackStore(tmp_path / "bad.db", redact=lambda t: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidInputError, match="redact"):
        bad.add("q", STRONG, WEAK, "tie")
    bad.close()


def test_answers_are_not_kept_by_default(location: str) -> None:
    path = location
    with FeedbackStore(path) as store:
        store.record_decision(_record("weak", decision_id="a1"), "Name a prime.", answer="SERVED-ANSWER-7")
        store.add_verdict("a1", "good")
        store.add("Name a prime.", STRONG, WEAK, "tie", answer_a="STRONG-ANSWER-2", answer_b="WEAK-ANSWER-3")
        assert all(r.answer_a is None and r.answer_b is None for r in store.labels())
    raw = _raw_bytes(path)
    assert b"Name a prime." in raw
    assert not any(s in raw for s in (b"SERVED-ANSWER-7", b"STRONG-ANSWER-2", b"WEAK-ANSWER-3"))


# ---- the file: schema, foreign files, read-only ------------------------------------------------------------
def test_schema_version_and_application_id_are_stored_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "fb.db"
    FeedbackStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(FeedbackStoreError, match="newer version") as err:
        FeedbackStore(path)
    assert isinstance(err.value, RouteLLMError) and "not modified" in str(err.value)
    assert path.read_bytes() == before


#: The schema of version 1 stores (before the decision's attempts, escalation, cost and fallback error were kept).
V1_SCHEMA = """
CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, created_at REAL NOT NULL, prompt TEXT NOT NULL,
    strong_model TEXT NOT NULL, weak_model TEXT NOT NULL, served TEXT NOT NULL CHECK (served IN ('strong', 'weak')),
    router TEXT, win_rate REAL, threshold REAL, choice TEXT CHECK (choice IN ('strong', 'weak')), answer TEXT,
    verdict TEXT, verdict_at REAL);
CREATE TABLE labels (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, prompt TEXT NOT NULL,
    model_a TEXT NOT NULL, model_b TEXT NOT NULL,
    winner TEXT NOT NULL CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
    source TEXT NOT NULL CHECK (source IN ('judge', 'user', 'golden')), judge TEXT, decision_id TEXT, router TEXT,
    win_rate REAL, threshold REAL, choice TEXT CHECK (choice IN ('strong', 'weak')),
    served TEXT CHECK (served IN ('model_a', 'model_b')), answer_a TEXT, answer_b TEXT);
CREATE UNIQUE INDEX labels_decision_source ON labels (decision_id, source) WHERE decision_id IS NOT NULL;
INSERT INTO decisions VALUES ('old-1', 1700000000.0, 'an old prompt', 'big-model', 'small-model', 'weak', 'mf',
    0.2, 0.5, 'weak', NULL, 'bad', 1700000001.0);
INSERT INTO labels VALUES (7, 1700000001.0, 'an old prompt', 'big-model', 'small-model', 'model_a', 'user', NULL,
    'old-1', 'mf', 0.2, 0.5, 'weak', 'model_b', NULL, NULL);
"""


def test_a_version_1_store_is_migrated_in_place_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    with FeedbackStore(path) as store:
        (old,) = store.decisions()
        assert (old.decision_id, old.prompt, old.verdict, old.record.attempts, old.record.escalated) == (
            "old-1", "an old prompt", "bad", (), False
        )  # fmt: skip
        assert [(r.id, r.winner, r.decision_id) for r in store.labels()] == [(7, "model_a", "old-1")]
        store.record_decision(DecisionRecord.from_decision(_escalated(), strong_model=STRONG, weak_model=WEAK), "new")
        assert store.decision("esc-1").record.decision == _escalated()
        assert store.add_verdict("old-1", "strong") == 7  # the old label, replaced in place
    fresh = tmp_path / "fresh.db"
    FeedbackStore(fresh).close()
    with sqlite3.connect(path) as migrated, sqlite3.connect(fresh) as new:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        for table in ("decisions", "labels"):  # the migrated tables are the new tables
            assert migrated.execute(f"PRAGMA table_info({table})").fetchall() == (
                new.execute(f"PRAGMA table_info({table})").fetchall()
            )
    migrated.close()
    new.close()


@pytest.mark.parametrize(
    "content",
    [
        b"prompt,model_a,model_b,winner\nhi,a,b,tie\n",  # a CSV given by mistake
        b"\x00" * 4096,
        b"SQLite format 3\x00" + b"\xff" * 200,  # the magic, then garbage
    ],
    ids=["csv", "zeros", "corrupt-sqlite"],
)
def test_a_file_that_is_not_a_store_is_refused_and_left_byte_identical(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.db"
    path.write_bytes(content)
    with pytest.raises(FeedbackStoreError, match=r"not a (usable )?SQLite database") as err:
        FeedbackStore(path)
    assert "not modified" in str(err.value)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.db"]  # no -wal / -shm / journal created


def test_a_foreign_sqlite_database_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    tables = tmp_path / "app.db"
    with sqlite3.connect(tables) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO users (email) VALUES ('a@b.c')")
    conn.close()
    tagged = tmp_path / "tagged.db"  # another app's id, no tables yet
    with sqlite3.connect(tagged) as conn:
        conn.execute("PRAGMA application_id = 1234")
    conn.close()
    wal = tmp_path / "wal.db"  # another app's database in WAL mode, still open by that app
    other = sqlite3.connect(wal)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    for path, expect in ((tables, "users"), (tagged, "0x4d2"), (wal, r"\['t'\]")):
        before = path.read_bytes()
        with pytest.raises(FeedbackStoreError, match=expect):
            FeedbackStore(path)
        assert path.read_bytes() == before
    other.close()


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "fb.db"
    path.touch()
    with FeedbackStore(path) as store:
        store.add("q", STRONG, WEAK, "tie")
    with FeedbackStore(path) as store:
        assert len(store.labels()) == 1


def test_a_path_that_cannot_be_created_gives_a_clear_error() -> None:
    with pytest.raises(FeedbackStoreError, match="folder"):
        FeedbackStore("/proc/routellm-no-such-dir/fb.db")
    with pytest.raises(FeedbackStoreError, match="read-only"):
        FeedbackStore("/proc/routellm-feedback.db")  # /proc takes no new files, even for root


def _open_unprivileged(path: str, out: mp.Queue) -> None:  # runs in a spawned child
    try:
        if os.geteuid() == 0:  # root writes anywhere: drop to 'nobody' so permissions apply
            os.setgid(65534)
            os.setuid(65534)
        FeedbackStore(path)
        out.put("opened")
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")


def test_a_read_only_store_gives_a_clear_error_and_is_not_changed() -> None:
    folder = Path(tempfile.mkdtemp(prefix="routellm-ro-", dir="/tmp"))
    try:
        path = folder / "fb.db"
        with FeedbackStore(path) as store:
            store.add("q", STRONG, WEAK, "tie")
        before = path.read_bytes()
        path.chmod(0o444)
        folder.chmod(0o555)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        child = ctx.Process(target=_open_unprivileged, args=(str(path), out))
        child.start()
        message = out.get(timeout=120)
        child.join(timeout=60)
        assert message.startswith("FeedbackStoreError") and "read-only" in message, message
        assert path.read_bytes() == before
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


# ---- concurrency -------------------------------------------------------------------------------------------
N_PER_PROCESS = 40


def _append_from_process(path: str, worker: int, barrier: object, errors: mp.Queue) -> None:  # spawned child
    try:
        barrier.wait(timeout=120)  # type: ignore[attr-defined]  # all four open a not-yet-existing file at once
        with FeedbackStore(path) as store:
            for i in range(N_PER_PROCESS):
                if i % 2:
                    store.add(f"p{worker}-{i}", STRONG, WEAK, "model_a", judge=f"w{worker}")
                else:
                    rec = _record("weak", decision_id=f"d{worker}-{i}")
                    store.record_decision(rec, f"p{worker}-{i}")
                    store.add_verdict(rec.decision_id, "bad")
    except BaseException:
        errors.put(traceback.format_exc())
        raise


@pytest.mark.slow
def test_four_processes_append_concurrently_without_losing_a_row(location: str) -> None:
    path = location.replace("fb.db", "shared/fb.db")  # SQLite: a folder that does not exist yet
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(4)
    errors = ctx.Queue()
    procs = [ctx.Process(target=_append_from_process, args=(str(path), w, barrier, errors)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert errors.empty(), errors.get()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with FeedbackStore(path) as store:
        rows = store.labels()
        expected = {f"p{w}-{i}" for w in range(4) for i in range(N_PER_PROCESS)}
        assert len(rows) == 4 * N_PER_PROCESS and {r.prompt for r in rows} == expected
        stats = store.stats()
        assert stats.decisions == 2 * N_PER_PROCESS and stats.by_source == {"judge": 80, "user": 80}


def test_threads_and_asyncio_tasks_append_at_once(location: str) -> None:
    store = FeedbackStore(location)
    errors: list[BaseException] = []

    def thread_writer(t: int) -> None:
        try:
            for i in range(25):
                store.add(f"t{t}-{i}", STRONG, WEAK, "tie")
        except BaseException as exc:
            errors.append(exc)

    async def async_writers() -> None:
        async def one(i: int) -> None:
            if i % 2:
                await store.aadd(f"a{i}", STRONG, WEAK, "model_b")
            else:
                rec = _record("weak", decision_id=f"ad{i}")
                await store.arecord_decision(rec, f"a{i}")
                await store.aadd_verdict(rec.decision_id, "good")

        await asyncio.gather(*(one(i) for i in range(50)))

    threads = [threading.Thread(target=thread_writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    asyncio.run(async_writers())
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    prompts = {r.prompt for r in store.labels()}
    assert len(store.labels()) == 150
    assert prompts == {f"t{t}-{i}" for t in range(4) for i in range(25)} | {f"a{i}" for i in range(50)}
    store.close()


def test_a_forked_child_reopens_the_file(location: str) -> None:
    store = FeedbackStore(location)
    store.add("before fork", STRONG, WEAK, "tie")
    ctx = mp.get_context("fork")
    child = ctx.Process(target=store.add, args=("from child", STRONG, WEAK, "model_a"))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert [r.prompt for r in store.labels()] == ["before fork", "from child"]
    store.close()


#: A writer that prints each id only after the store acknowledged it (the call returned), until it is killed.
KILLED_WRITER = """
import sys
from routellm_core.decisions import RoutingDecision
from routellm_core.learning.feedback import DecisionRecord, FeedbackStore

store = FeedbackStore(sys.argv[1])
decision = RoutingDecision(router="mf", win_rate=0.2, threshold=0.5, choice="weak")
for i in range(1_000_000):
    record = DecisionRecord.from_decision(decision, strong_model="big", weak_model="small", decision_id=f"k{i}")
    store.record_decision(record, f"prompt {i}")
    print("decision", record.decision_id, flush=True)
    print("label", store.add_verdict(record.decision_id, "bad"), flush=True)
"""


def test_a_writer_killed_with_sigkill_loses_nothing_it_acknowledged(location: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, location], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    printed: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:  # kill it mid-way, while it writes as fast as it can
            printed.append(line)
            if len(printed) >= 200:
                child.send_signal(signal.SIGKILL)
                break
        printed += child.stdout.readlines()  # what it printed before the signal landed
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    whole = [line for line in printed if line.endswith("\n")]  # the signal may cut the last line mid-print
    decisions = [line.split()[1] for line in whole if line.startswith("decision ")]
    labels = [int(line.split()[1]) for line in whole if line.startswith("label ")]
    assert len(decisions) >= 100 and len(labels) >= 99
    with FeedbackStore(location) as store:
        stored = {row.decision_id: row for row in store.decisions()}
        assert set(decisions) <= set(stored)  # every acknowledged decision is there...
        assert all(stored[d].verdict == "bad" for d in decisions[: len(labels)])  # ...with its verdict
        assert set(labels) <= {row.id for row in store.labels(["user"])}  # and every acknowledged label


def test_a_later_steps_attempts_join_the_recorded_decision_and_its_cost(location: str) -> None:
    first = Attempt(WEAK, "weak", "answer", kept=True, input_tokens=10, output_tokens=5, cost=0.001)
    served = ServedDecision(
        id="d" * 32, router="mf", win_rate=0.2, threshold=0.5, choice="weak", served="weak", model=WEAK,
        attempts=(first,),
    )  # fmt: skip
    step = Attempt(WEAK, "weak", "answer", kept=True, input_tokens=30, output_tokens=7, cost=0.002)
    with FeedbackStore(location) as store:
        store.record_decision(DecisionRecord.from_decision(served, strong_model=STRONG, weak_model=WEAK), "q")
        store.add_attempts("d" * 32, (step,))
        asyncio.run(store.aadd_attempts("d" * 32, ()))  # nothing to add: nothing changes
        (row,) = store.decisions()
        assert [a.input_tokens for a in row.record.attempts] == [10, 30]
        assert row.record.cost == pytest.approx(0.003)
        store.add_attempts("d" * 32, (replace(step, cost=None),))  # an unpriced step: the total is unknown
        assert store.decisions()[0].record.cost is None
        with pytest.raises(UnknownDecisionError, match="no decision with id"):
            store.add_attempts("e" * 32, (step,))
        with pytest.raises(InvalidInputError, match="Attempt objects"):
            store.add_attempts("d" * 32, ({"model": WEAK},))  # type: ignore[arg-type]
