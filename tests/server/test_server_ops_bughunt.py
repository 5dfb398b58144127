"""Bugs an operator met serving the router (auth, a PostgreSQL feedback store, the /ui page), each fixed here.

The real server (``ServerThread``, the shipped ``fast`` router) in front of the mock upstream, with a real
PostgreSQL server (``pgserver``) where a store is one:

- After PostgreSQL closed the store's pooled connections (a restart), the next requests' decisions were lost, one
  per pooled connection, and ``POST /v1/feedback`` for them said 404.
- The Learn view's retrain commands printed ``--feedback`` as given: a PostgreSQL URL with its password, to
  every page user, and unquoted (the URL's ``?`` and ``&`` break the pasted command).
- The Learn view cached the report by the number of labels, so a verdict replacing another (``strong`` ->
  ``weak``) left the old figures on the page; and it named the served router by its type (``mf``).
- An error quoting a 200,000-character model name answered all of it.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from routellm_core.server import ServerThread
from routellm_core.server.errors import MAX_MESSAGE_CHARS

PASSWORD = "s3cr3t-Pw-9d1f"


def _chat(server: ServerThread, text: str, model: str = "router-fast") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)


def _verdict(server: ServerThread, decision_id: str, verdict: str) -> httpx.Response:
    body = {"decision_id": decision_id, "verdict": verdict}
    return httpx.post(f"{server.url}/v1/feedback", json=body, timeout=30)


def _learn(server: ServerThread) -> dict:
    response = httpx.get(f"{server.url}/ui/api/learn", params={"router": "fast"}, timeout=60)
    response.raise_for_status()
    return response.json()


def _stored_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT decision_id FROM decisions").fetchall()}


def _end_connections(url: str) -> int:
    """What a PostgreSQL restart does to the server's pooled connections: each one is ended by the server."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_no_decision_is_lost_after_postgres_closed_the_servers_connections(
    serve: Callable[..., ServerThread], postgres_url: str
) -> None:
    server = serve(feedback=postgres_url)
    before = [_chat(server, f"warm-up question {i}") for i in range(6)]
    assert _end_connections(postgres_url) >= 1
    after = [_chat(server, f"question after the restart {i}") for i in range(8)]
    ids = [r.headers["x-routellm-decision-id"] for r in before + after]
    assert [r.status_code for r in before + after] == [200] * 14
    assert _stored_ids(postgres_url) == set(ids)  # each decision was recorded before its answer came back
    for decision_id in ids[6:]:
        assert _verdict(server, decision_id, "bad").status_code == 200


def test_a_nul_in_a_decision_id_is_a_404_on_postgres(serve: Callable[..., ServerThread], postgres_url: str) -> None:
    server = serve(feedback=postgres_url)
    answer = _verdict(server, "9f1c\x00", "bad")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "decision_not_found"


def test_the_learn_view_never_shows_the_store_password_and_quotes_the_url(
    serve: Callable[..., ServerThread], postgres_url: str
) -> None:
    # the tests' PostgreSQL trusts local connections, so any password is accepted: the URL carries one anyway
    assert "postgres:@" in postgres_url
    url = postgres_url.replace("postgres:@", f"postgres:{PASSWORD}@")
    server = serve(feedback=url)
    learn = _learn(server)
    commands = learn["retrain"]
    assert len(commands) == 3 and all(PASSWORD not in c for c in commands)
    # the password left out, not masked: a pasted command takes it from PGPASSWORD or ~/.pgpass (a "***" in the URL
    # would be sent as the password)
    shown = url.replace(f"postgres:{PASSWORD}@", "postgres@")
    argv = [shlex.split(c) for c in commands]  # what a shell runs when the command is pasted
    assert argv[1] == ["routellm", "train", "--feedback", shown, "--init", "fast", "--out", "my_router"]
    assert argv[0][:4] == ["routellm", "report", "--feedback", shown]
    assert PASSWORD not in httpx.get(f"{server.url}/ui/api/info", timeout=30).text


def test_a_sqlite_store_is_named_as_given(serve: Callable[..., ServerThread], tmp_path: Path) -> None:
    path = tmp_path / "my store" / "feedback.db"
    server = serve(feedback=str(path))
    argv = shlex.split(_learn(server)["retrain"][1])
    assert argv[:4] == ["routellm", "train", "--feedback", str(path)]


def test_the_learn_view_follows_a_verdict_that_replaces_another(
    serve: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = serve(feedback=str(tmp_path / "feedback.db"))
    ids = [
        _chat(server, f"{uuid.uuid4().hex} question number {i}").headers["x-routellm-decision-id"] for i in range(12)
    ]
    for decision_id in ids:
        assert _verdict(server, decision_id, "strong").status_code == 200
    first = _learn(server)
    assert first["labels"] == 12 and first["report"]["q_strong"] == pytest.approx(1.0)
    assert first["report"]["router"] == "fast" and first["report"]["rows"][0]["name"] == "fast (as is)"
    for decision_id in ids[:6]:  # the same decisions, judged again: still 12 labels
        assert _verdict(server, decision_id, "weak").status_code == 200
    second = _learn(server)
    assert second["labels"] == 12
    assert second["report"]["q_strong"] == pytest.approx(0.5)
    assert second["report"]["verdict"].startswith("No:")  # the weak model is preferred as often as the strong one


def test_an_error_never_echoes_a_whole_request_back(serve: Callable[..., ServerThread]) -> None:
    server = serve()
    model = "router-" + "x" * 200_000
    answer = _chat(server, "hi", model=model)
    assert answer.status_code == 404
    message = answer.json()["error"]["message"]
    assert len(message) <= MAX_MESSAGE_CHARS
    assert message.startswith("model 'router-xxx")
    cut = re.search(r"\.\.\. \[cut from (\d+) characters\]$", message)
    assert cut is not None and int(cut[1]) > 200_000
    short = _chat(server, "hi", model="router-nope")  # a short message is answered whole
    assert short.json()["error"]["message"].startswith("model 'router-nope' names no router this server serves")
    assert "cut from" not in short.json()["error"]["message"]
