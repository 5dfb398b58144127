"""The feedback store: schema checks, safety of foreign files, redaction, verdicts, export, and concurrency."""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import tempfile
import threading
import traceback
from pathlib import Path

import pytest

from routellm_core.data.records import Battle
from routellm_core.decisions import RoutingDecision
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


def _raw_bytes(path: Path) -> bytes:
    """The database file and its WAL, as they lie on disk."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


# ---- writing and reading -----------------------------------------------------------------------------------
def test_add_labels_and_read_them_back_as_battles(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.db") as store:
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


def test_bad_values_raise_clear_errors(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.db") as store:
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
def test_verdict_mapping(tmp_path: Path, served: str, verdict: str, winner: str | None) -> None:
    with FeedbackStore(tmp_path / "fb.db") as store:
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


def test_later_verdict_replaces_earlier_and_sources_are_separate(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.db") as store:
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
def test_export_round_trips_through_load_battles(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.db", store_answers=True) as store:
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fb.db", "feedback.jsonl", "judge.jsonl"]


# ---- privacy -----------------------------------------------------------------------------------------------
def test_redact_runs_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "fb.db"

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


def test_answers_are_not_kept_by_default(tmp_path: Path) -> None:
    path = tmp_path / "fb.db"
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
def test_four_processes_append_concurrently_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "fb.db"
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


def test_threads_and_asyncio_tasks_append_at_once(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
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


def test_a_forked_child_reopens_the_file(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    store.add("before fork", STRONG, WEAK, "tie")
    ctx = mp.get_context("fork")
    child = ctx.Process(target=store.add, args=("from child", STRONG, WEAK, "model_a"))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert [r.prompt for r in store.labels()] == ["before fork", "from child"]
    store.close()
