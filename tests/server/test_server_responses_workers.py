"""``POST /v1/responses`` continuations across server workers that share a feedback store, end to end.

Each worker is its own app (``create_app``, its own in-memory memory of the responses it relayed) routing with the
shipped ``fast`` router to the mock upstream's Responses echo; the workers share one feedback store, an SQLite file
or a real PostgreSQL database (``pgserver``). The real ``openai`` client talks to each over a real 127.0.0.1 socket.
Like OpenAI, the mock stores each response and answers a ``previous_response_id`` that another model wrote with a
404, so a continuation sent to the wrong upstream fails. Threshold 0.0 always routes strong, 1.0 always weak: a
response created strong and continued under ``router-fast-1.0`` shows whether the continuation stayed where it was
stored. Last, ``routellm serve --workers 2`` runs as a subprocess and chains continuations across its two workers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from served_process import free_port, serving

from routellm_core import load_router
from routellm_core.decisions import ServedDecision
from routellm_core.errors import FeedbackStoreError, InvalidInputError
from routellm_core.learning.feedback import DecisionRecord, FeedbackStore
from routellm_core.learning.feedback_sql import META_TABLE, SCHEMA_VERSION
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import OpenAIUpstream, ServerSettings, ServerThread

STRONG, WEAK = "mock-strong", "mock-weak"
DEADLINE_S = 30


@pytest.fixture(scope="module")
def fast_router() -> Any:
    """The shipped ``fast`` router, loaded once for the module (each worker gets its own policy on it)."""
    return load_router("fast")


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The feedback store the workers share: an SQLite file, or a fresh database on a real PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "feedback.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture()
def worker(serve: Callable[..., ServerThread], mock: ServerThread, fast_router: Any) -> Callable[..., ServerThread]:
    """``worker(**settings)``: one more routing server (a worker) in front of the mock, stopped after the test."""

    def start(**options: Any) -> ServerThread:
        return serve(
            strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key="k", timeout=DEADLINE_S),
            weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key="k", timeout=DEADLINE_S),
            **{"policies": {"fast": RoutingPolicy(fast_router)}, "api_keys_env": None, **options},
        )

    return start


def client(server: ServerThread | str) -> openai.OpenAI:
    url = server if isinstance(server, str) else server.url
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=DEADLINE_S)


def prompt(words: str) -> str:
    """A prompt with a unique token (the mock echoes it back)."""
    return f"{words} tok-{uuid.uuid4().hex}"


def record_of(answer: Any) -> dict[str, Any]:
    return answer.model_extra["routellm"]


def received(mock: ServerThread, text: str) -> list[dict[str, Any]]:
    """The Responses bodies the mock received whose input holds ``text``."""
    return [b for b in mock.app.state.received if "input" in b and text in json.dumps(b["input"])]


def decisions_counted(server: ServerThread) -> float:
    """``routellm_decisions_total`` of the ``fast`` router on one worker (both choices), read with Prometheus' own
    parser."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "routellm_decisions_total" and sample.labels.get("router") == "fast"
    )


def memory(server: ServerThread) -> Any:
    """The worker's in-memory level of who answered which response."""
    return server.app.state.routellm.answered


# ---- two workers, one store --------------------------------------------------------------------------------------
def test_a_response_created_on_one_worker_continues_on_another(worker, mock, location: str) -> None:
    a, b = worker(feedback=location), worker(feedback=location)
    first = client(a).responses.create(model="router-fast-0.0", input=prompt("Remember the word 'otter'"))
    assert record_of(first)["served"] == "strong"
    decision = record_of(first)["decision_id"]
    assert memory(b).get(first.id) is None  # worker B never saw it: only the store can tell
    counted = decisions_counted(b)

    # threshold 1.0 alone would route weak (whose upstream holds no such response): it stays strong
    text = prompt("Which word did I ask you to remember?")
    second = client(b).responses.create(model="router-fast-1.0", input=text, previous_response_id=first.id)
    assert second.output_text == f"[{STRONG}] {text}"
    record = record_of(second)
    assert (record["served"], record["continued"], record["decision_id"], record["fallback"]) == (
        "strong", True, decision, False
    )  # fmt: skip
    (sent,) = received(mock, text)
    assert (sent["model"], sent["previous_response_id"]) == (STRONG, first.id)
    assert decisions_counted(b) == counted  # the same decision, not scored again

    # and back to worker A, streamed, continuing B's response (which A never relayed)
    assert memory(a).get(second.id) is None
    events = list(
        client(a).responses.create(
            model="router-fast-1.0", input=prompt("And?"), previous_response_id=second.id, stream=True
        )
    )
    final = events[-1].response.model_extra["routellm"]
    assert (final["served"], final["continued"], final["decision_id"]) == ("strong", True, decision)

    # the continuations' calls joined the decision's row in the shared store
    with FeedbackStore(location) as store:
        row = store.decision(decision)
        assert row is not None and [a.model for a in row.record.attempts] == [STRONG, STRONG, STRONG]
        assert {r.decision_id for r in store.decisions()} == {decision}


@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_sent_whole_continues_on_the_worker_that_did_not_write_it(
    worker, mock, tmp_path: Path, stream: bool
) -> None:
    """The Agents SDK's default: the earlier output items (with their ids) sent back, no previous_response_id."""
    location = str(tmp_path / "feedback.db")
    a, b = worker(feedback=location), worker(feedback=location)
    opening = prompt("Remember the word 'lynx'")
    if stream:
        first = list(client(a).responses.create(model="router-fast-0.0", input=opening, stream=True))[-1].response
    else:
        first = client(a).responses.create(model="router-fast-0.0", input=opening)
    assert first.output and all(item.id for item in first.output)
    text = prompt("Which word was it?")
    items = [{"role": "user", "content": opening}, *(i.model_dump() for i in first.output)]
    second = client(b).responses.create(model="router-fast-1.0", input=[*items, {"role": "user", "content": text}])
    record = record_of(second)
    assert (record["served"], record["continued"]) == ("strong", True)
    assert record["decision_id"] == first.model_extra["routellm"]["decision_id"]
    assert [sent["model"] for sent in received(mock, text)] == [STRONG]
    fresh = client(b).responses.create(model="router-fast-1.0", input=[{"role": "user", "content": text, "id": "m_x"}])
    assert record_of(fresh)["served"] == "weak"  # ids no worker relayed route as usual


def test_the_previous_response_id_wins_over_items_this_worker_knows(worker, mock, tmp_path: Path) -> None:
    """Worker B relayed a weak answer whose item the client resends, and names A's strong response as the one it
    continues: the named response decides (from the store), as on one worker, not B's own item."""
    location = str(tmp_path / "feedback.db")
    a, b = worker(feedback=location), worker(feedback=location)
    named = client(a).responses.create(model="router-fast-0.0", input=prompt("Remember 'heron'"))
    mine = client(b).responses.create(model="router-fast-1.0", input=prompt("Say hello"))
    assert (record_of(named)["served"], record_of(mine)["served"]) == ("strong", "weak")
    text = prompt("Which word?")
    resent = [*(i.model_dump() for i in mine.output), {"role": "user", "content": text}]
    second = client(b).responses.create(model="router-fast-1.0", input=resent, previous_response_id=named.id)
    assert (record_of(second)["served"], record_of(second)["decision_id"]) == (
        "strong", record_of(named)["decision_id"]
    )  # fmt: skip


def test_without_a_store_a_second_worker_routes_anew(worker) -> None:
    """What the store fixes: without one, worker B does not know A's response, routes the follow-up weak, and the
    weak upstream, which never stored it, answers 404."""
    a, b = worker(), worker()
    first = client(a).responses.create(model="router-fast-0.0", input=prompt("Remember 'heron'"))
    with pytest.raises(openai.NotFoundError) as caught:
        client(b).responses.create(model="router-fast-1.0", input=prompt("Which?"), previous_response_id=first.id)
    assert first.id in caught.value.message and caught.value.response.headers["x-routellm-choice"] == "weak"


def test_an_unknown_id_is_routed_or_refused_as_on_one_worker(worker, location: str) -> None:
    server = worker(feedback=location)
    with pytest.raises(openai.NotFoundError) as caught:
        client(server).responses.create(model="router-fast-1.0", input=prompt("Go on"), previous_response_id="resp_x1")
    assert "resp_x1" in caught.value.message and caught.value.response.headers["x-routellm-choice"] == "weak"
    tool_output = [{"type": "function_call_output", "call_id": "call_1", "output": "42"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client(server).responses.create(model="router-fast-1.0", input=tool_output, previous_response_id="resp_x2")
    message = refused.value.message
    assert "no user message" in message and "'resp_x2' is not a response this server (or its feedback store)" in message
    assert refused.value.body["param"] == "input"


def test_a_store_that_cannot_be_read_is_a_503_naming_the_id_not_a_silent_reroute(worker, mock, tmp_path) -> None:
    location = str(tmp_path / "feedback.db")
    a, b = worker(feedback=location), worker(feedback=location)
    first = client(a).responses.create(model="router-fast-0.0", input=prompt("Remember 'wren'"))
    b.app.state.routellm.store.close()  # worker B's store fails every call from now on
    text = prompt("Which word?")
    with pytest.raises(openai.InternalServerError) as caught:
        client(b).responses.create(model="router-fast-1.0", input=text, previous_response_id=first.id)
    assert caught.value.status_code == 503
    assert (
        caught.value.body["code"] == "response_lookup_failed" and caught.value.body["param"] == "previous_response_id"
    )
    assert first.id in caught.value.message and "feedback store" in caught.value.message
    assert received(mock, text) == []  # no upstream was called


def test_a_model_name_no_longer_served_is_a_400_naming_the_id(worker, fast_router, tmp_path: Path) -> None:
    location = str(tmp_path / "feedback.db")
    a = worker(feedback=location)
    first = client(a).responses.create(model="router-fast-0.0", input=prompt("Remember 'ibis'"))
    b = worker(feedback=location, policies={"other": RoutingPolicy(fast_router)}, routers=("other",))
    with pytest.raises(openai.BadRequestError) as caught:
        client(b).responses.create(model="router-other-1.0", input=prompt("Which?"), previous_response_id=first.id)
    assert first.id in caught.value.message and "'router-fast-0.0'" in caught.value.message
    assert caught.value.body["param"] == "previous_response_id"


def test_a_router_auto_response_continues_on_another_worker_on_the_model_that_answered(worker, mock, tmp_path) -> None:
    """``router-auto`` with an objective in the ``routellm`` field: worker B rebuilds that engine from the stored model
    name and field, and the continuation reaches the named model that answered, whatever B's request names."""
    named = {
        "models": tuple(f"{name}=openai:{name},base_url={mock.url}/v1" for name in ("tiny", "big")),
        "prices": {"tiny": (0.1, 0.1), "big": (10.0, 10.0)},
        "priors": {"tiny": "like:chatglm-6b", "big": "like:o1-preview-2024-09-12"},
        "feedback": str(tmp_path / "feedback.db"),
    }
    a, b = worker(**named), worker(**named)
    first = client(a).responses.create(
        model="router-auto",
        input=prompt("Prove that sqrt(2) is irrational"),
        extra_body={"routellm": {"objective": "max_cost=1"}},
    )
    chosen = record_of(first)["model"]
    assert chosen in ("tiny", "big") and first.output_text.startswith(f"[{chosen}] ")
    text = prompt("Shorter")
    second = client(b).responses.create(model="router-fast-1.0", input=text, previous_response_id=first.id)
    record = record_of(second)
    assert (record["model"], record["continued"], record["decision_id"]) == (
        chosen,
        True,
        record_of(first)["decision_id"],
    )
    assert record["ladder"] == record_of(first)["ladder"]  # the same choice among the named models
    assert [sent["model"] for sent in received(mock, text)] == [chosen]


# ---- the store's table ---------------------------------------------------------------------------------------------
def _served(decision_id: str = "dec-1") -> ServedDecision:
    return ServedDecision(
        id=decision_id, router="fast", win_rate=0.7, threshold=0.5, choice="strong", served="weak", model=WEAK,
        fallback_from=STRONG, fallback_error="TimeoutError",
    )  # fmt: skip


def test_the_store_remembers_responses_and_their_items_and_prunes_old_ones(location: str) -> None:
    with FeedbackStore(location) as store:
        store.record_response("resp_1", _served(), "router-fast-0.5", items=["msg_1", "rs_1"])
        store.record_response("resp_2", _served("dec-2"), "router-auto", options={"objective": "budget=1.5"})
        found = store.responses(["msg_1", "resp_2", "nope"])
        assert set(found) == {"msg_1", "resp_2"}
        assert (found["msg_1"].response_id, found["msg_1"].decision_id, found["msg_1"].model) == (
            "resp_1", "dec-1", "router-fast-0.5"
        )  # fmt: skip
        assert found["msg_1"].record == _served()  # fallback and all: a continuation stays on the side that served
        assert found["resp_2"].options == {"objective": "budget=1.5"} and found["resp_2"].record.id == "dec-2"
        assert store.prune_responses(time.time() - 60) == 0
        assert store.prune_responses(time.time() + 60) == 4  # resp_1, msg_1, rs_1, resp_2
        assert store.responses(["resp_1", "msg_1"]) == {}
        with pytest.raises(InvalidInputError, match="response_id must be a non-empty string"):
            store.record_response(" ", _served(), "router-fast-0.5")


def test_a_malformed_stored_record_is_an_error_naming_the_id(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as store:
        store.record_response("resp_bad", _served(), "router-fast-0.5")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE responses SET record = '{\"router\": 1}'")
    conn.close()
    with FeedbackStore(path) as store, pytest.raises(FeedbackStoreError, match="'resp_bad' is malformed"):
        store.responses(["resp_bad"])


def test_the_server_prunes_responses_older_than_its_retention(worker, tmp_path: Path) -> None:
    location = str(tmp_path / "feedback.db")
    a = worker(feedback=location, response_days=2.0)
    old = client(a).responses.create(model="router-fast-0.0", input=prompt("Remember 'kite'"))
    with sqlite3.connect(location) as conn:  # three days ago
        conn.execute("UPDATE responses SET created_at = created_at - 3 * 86400 WHERE response_id = ?", (old.id,))
    conn.close()
    b = worker(feedback=location, response_days=2.0)  # a fresh worker prunes on its first write
    recent = client(b).responses.create(model="router-fast-0.0", input=prompt("Remember 'moth'"))
    with FeedbackStore(location) as store:
        assert set(store.responses([old.id, recent.id])) == {recent.id}
    c = worker(feedback=location)
    with pytest.raises(openai.NotFoundError):  # forgotten: routed on its own input, weak, which never stored it
        client(c).responses.create(model="router-fast-1.0", input=prompt("Which?"), previous_response_id=old.id)


def test_settings_refuse_a_retention_that_is_not_positive() -> None:
    with pytest.raises(InvalidInputError, match="response_days"):
        ServerSettings.build(strong="openai:a", weak="openai:b", response_days=0)


# ---- an existing store migrates ------------------------------------------------------------------------------------
def _make_version_3(location: str) -> None:
    """Turn a fresh store into a store of schema version 3 (before the ``responses`` table), with one decision."""
    with FeedbackStore(location) as store:
        store.record_decision(DecisionRecord.from_decision(_served("old-1"), strong_model=STRONG, weak_model=WEAK), "p")
    if location.startswith("postgresql"):
        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("DROP TABLE responses")
            conn.execute(f"UPDATE {META_TABLE} SET schema_version = 3")
        return
    with sqlite3.connect(location) as conn:
        conn.execute("DROP TABLE responses")
        conn.execute("PRAGMA user_version = 3")
    conn.close()


def _version(location: str) -> tuple[int, bool]:
    """The store's schema version and whether it has the ``responses`` table."""
    if location.startswith("postgresql"):
        with psycopg.connect(location) as conn:
            version = conn.execute(f"SELECT schema_version FROM {META_TABLE}").fetchone()[0]
            table = conn.execute("SELECT to_regclass('responses') IS NOT NULL").fetchone()[0]
        return version, table
    with sqlite3.connect(location) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        table = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'responses'").fetchone()[0] == 1
    conn.close()
    return version, table


def test_a_version_3_store_is_migrated_and_then_shared_by_the_workers(worker, location: str) -> None:
    _make_version_3(location)
    assert _version(location) == (3, False)
    a, b = worker(feedback=location), worker(feedback=location)
    assert _version(location) == (SCHEMA_VERSION, True) == (4, True)
    first = client(a).responses.create(model="router-fast-0.0", input=prompt("Remember 'vole'"))
    second = client(b).responses.create(model="router-fast-1.0", input=prompt("Which?"), previous_response_id=first.id)
    assert (record_of(second)["served"], record_of(second)["continued"]) == ("strong", True)
    with FeedbackStore(location) as store:
        assert store.decision("old-1") is not None  # the old rows are kept


# ---- routellm serve --workers 2 ----------------------------------------------------------------------------------
def _serve_command(mock: ServerThread, port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "routellm_core.cli", "serve",
        "--strong", "openai:mock-strong", "--strong-base-url", f"{mock.url}/v1",
        "--weak", "openai:mock-weak", "--weak-base-url", f"{mock.url}/v1",
        "--strong-api-key-env", "ROUTELLM_TEST_NO_KEY", "--weak-api-key-env", "ROUTELLM_TEST_NO_KEY",
        "--router", "fast", "--workers", "2", "--port", str(port), "--log-level", "warning", "--no-auth", *extra,
    ]  # fmt: skip


def _one_client_per_worker(url: str) -> dict[str, httpx.Client]:
    """A kept-alive connection to each of the two workers (told apart by ``/health``'s worker pid)."""
    clients: dict[str, httpx.Client] = {}
    for _ in range(60):  # bounded: until both workers accepted a connection
        http = httpx.Client(base_url=url, timeout=DEADLINE_S, limits=httpx.Limits(max_connections=1))
        pid = http.get("/health").headers["x-routellm-worker"]
        if pid in clients:
            http.close()
        else:
            clients[pid] = http
        if len(clients) == 2:
            return clients
    raise AssertionError(f"only worker(s) {list(clients)} accepted connections")


def test_serve_with_two_workers_and_a_store_continues_every_response_across_them(mock, tmp_path: Path) -> None:
    port = free_port()
    command = _serve_command(mock, port, "--feedback", str(tmp_path / "feedback.db"))
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    clients: dict[str, httpx.Client] = {}
    with serving(command, env, port) as served:
        try:
            clients = _one_client_per_worker(served.url)
            pids = list(clients)
            sdks = {pid: openai.OpenAI(base_url=f"{served.url}/v1", api_key="u", max_retries=0, http_client=http)
                    for pid, http in clients.items()}  # fmt: skip
            raw = sdks[pids[0]].responses.with_raw_response.create(model="router-fast-0.0", input=prompt("Remember 7"))
            previous, writer = raw.parse(), raw.headers["x-routellm-worker"]
            decision = record_of(previous)["decision_id"]
            crossed = 0
            for turn in range(6):  # each continuation on the other worker than the one that answered the last
                pid = pids[(turn + 1) % 2]
                text = prompt(f"Step {turn}")
                raw = sdks[pid].responses.with_raw_response.create(
                    model="router-fast-1.0", input=text, previous_response_id=previous.id
                )
                answer, answered_by = raw.parse(), raw.headers["x-routellm-worker"]
                record = record_of(answer)
                assert answer.output_text == f"[{STRONG}] {text}", f"turn {turn} landed wrong: {answer.output_text}"
                assert (record["served"], record["continued"], record["decision_id"]) == ("strong", True, decision)
                crossed += answered_by != writer
                previous, writer = answer, answered_by
            assert crossed >= 3, f"only {crossed} of 6 continuations reached the worker that had not answered the last"
        finally:
            for http in clients.values():
                http.close()
    assert "no feedback store" not in served.output


def test_serve_with_two_workers_and_no_store_warns_at_startup(mock, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with serving(_serve_command(mock, port), env, port) as served:  # started: every worker logged what it would
        pass
    assert served.output.count("2 workers and no feedback store") == 1, served.output[-2000:]
    assert "--feedback" in served.output and "session affinity" in served.output
    assert ServerSettings.build(strong="openai:a", weak="openai:b").workers_warning(1) is None
