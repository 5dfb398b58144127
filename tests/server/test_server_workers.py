"""``routellm serve`` as a user runs it: the CLI in a subprocess with two uvicorn workers sharing one port, in front of
a mock upstream on 127.0.0.1; and the CLI's refusals of bad settings, before anything is served.

The server is stateless, so either worker may answer any request: both must answer (their pids differ in the
``x-routellm-worker`` header), each answer must carry its own request's token, and auth tokens reach the workers
through the environment, never through the settings handed to them. ``run(settings, workers=2)`` with tokens in
``api_keys`` must enforce them in every worker (they once reached none, leaving the server open).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from served_process import free_port, serving

from routellm_core.cli import main
from routellm_core.server import ServerThread

TOKEN = "worker-token-5b1e"
DIRECT_TOKEN = "direct-token-c03d"


@contextmanager
def _serving(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """:func:`served_process.serving`, checking afterwards that no token reached the server's output."""
    with serving(command, env, port) as served:
        yield served.url
    assert TOKEN not in served.output and DIRECT_TOKEN not in served.output


@pytest.fixture(scope="module")
def two_workers(mock: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``routellm serve --workers 2`` on a free port, tokens in ``$ROUTELLM_TEST_WORKER_TOKENS``; no
    ``$PROMETHEUS_MULTIPROC_DIR``, so the server makes its own metrics folder (in ``$TMPDIR``), removed at the end."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("server-tmp")
    env = {**os.environ, "ROUTELLM_TEST_WORKER_TOKENS": TOKEN, "TMPDIR": str(tmp)}
    env.pop("ROUTELLM_SERVER_API_KEYS", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable, "-m", "routellm_core.cli", "serve",
        "--strong", "openai:mock-strong", "--strong-base-url", f"{mock.url}/v1",
        "--weak", "openai:mock-weak", "--weak-base-url", f"{mock.url}/v1",
        "--strong-api-key-env", "ROUTELLM_TEST_NO_KEY", "--weak-api-key-env", "ROUTELLM_TEST_NO_KEY",
        "--router", "fast", "--workers", "2", "--port", str(port), "--log-level", "warning",
        "--api-keys-env", "ROUTELLM_TEST_WORKER_TOKENS",
    ]  # fmt: skip
    with _serving(command, env, port) as url:
        assert [p.name for p in tmp.glob("routellm-metrics-*")], "no private metrics folder while serving"
        yield url
    assert not list(tmp.glob("routellm-metrics-*")), "the private metrics folder was left behind"


#: ``run(settings, workers=2)`` with one token given in ``api_keys`` (read from the environment by the script, then
#: removed from it, so only the settings hold it) and ``api_keys_env`` as given in ``argv[3]`` ("": None).
RUN_SCRIPT = """
import os, sys
from routellm_core.server import ServerSettings, run
mock, port, keys_env = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
settings = ServerSettings.build(
    strong="openai:mock-strong", strong_base_url=mock, weak="openai:mock-weak", weak_base_url=mock,
    strong_api_key_env="ROUTELLM_TEST_NO_KEY", weak_api_key_env="ROUTELLM_TEST_NO_KEY", routers=("fast",),
    api_keys=(os.environ.pop("ROUTELLM_TEST_DIRECT_TOKEN"),), api_keys_env=keys_env,
)
run(settings, port=port, workers=2, log_level="warning")
"""


@pytest.fixture(scope="module", params=["ROUTELLM_TEST_WORKER_TOKENS", ""], ids=["keys+env", "keys-only"])
def two_workers_run(mock: ServerThread, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """:func:`routellm_core.server.run` with ``workers=2``, a token in ``api_keys`` and another in
    ``$ROUTELLM_TEST_WORKER_TOKENS``, which the server reads only when it is ``api_keys_env`` (the first param).

    Yields:
        The ``api_keys_env`` given ("" for None), and the port.
    """
    port = free_port()
    env = {**os.environ, "ROUTELLM_TEST_WORKER_TOKENS": TOKEN, "ROUTELLM_TEST_DIRECT_TOKEN": DIRECT_TOKEN}
    env.pop("ROUTELLM_SERVER_API_KEYS", None)
    command = [sys.executable, "-c", RUN_SCRIPT, f"{mock.url}/v1", str(port), request.param]
    with _serving(command, env, port):
        yield request.param, port


async def _round(url: str, n: int) -> list[tuple[str, str, str]]:
    """``n`` concurrent requests, each on a fresh connection: (token, answer text, worker pid)."""
    limits = httpx.Limits(max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as http:

        async def one() -> tuple[str, str, str]:
            tok = uuid.uuid4().hex
            body = {"model": "router-fast-0.0", "messages": [{"role": "user", "content": f"hello {tok}"}]}
            response = await http.post(f"{url}/v1/chat/completions", json=body)
            response.raise_for_status()
            return tok, response.json()["choices"][0]["message"]["content"], response.headers["x-routellm-worker"]

        return await asyncio.gather(*(one() for _ in range(n)))


@pytest.mark.slow
def test_two_workers_both_answer_and_never_mix_answers(two_workers: str) -> None:
    workers: set[str] = set()
    answered = 0
    for _ in range(30):  # bounded: stop as soon as both workers have answered
        for tok, text, worker in asyncio.run(_round(two_workers, 16)):
            assert text == f"[mock-strong] hello {tok}"
            workers.add(worker)
            answered += 1
        if len(workers) >= 2:
            break
    assert len(workers) == 2, f"only worker(s) {workers} answered {answered} requests"
    assert httpx.post(f"{two_workers}/v1/chat/completions", json={}).status_code == 401


def _scrape(url: str) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """One ``/metrics`` scrape on a fresh connection: the worker that answered and every sample."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    response.raise_for_status()
    values = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.headers["x-routellm-worker"], values


@pytest.mark.slow
def test_two_workers_answer_scrapes_with_the_same_totals(two_workers: str) -> None:
    _, before = _scrape(two_workers)
    ok = ("routellm_requests_total", frozenset({("status", "200")}))
    served: set[str] = set()
    sent = 0
    for _ in range(30):  # bounded: until both workers have answered requests
        results = asyncio.run(_round(two_workers, 16))
        sent += len(results)
        served |= {worker for _, _, worker in results}
        if len(served) >= 2:
            break
    assert len(served) == 2, f"only worker(s) {served} answered"
    scrapes: dict[str, list[dict]] = {}
    for _ in range(60):  # bounded: until both workers have answered scrapes
        worker, values = _scrape(two_workers)
        scrapes.setdefault(worker, []).append(values)
        if len(scrapes) >= 2 and sum(map(len, scrapes.values())) >= 6:
            break
    assert len(scrapes) == 2, f"only worker(s) {list(scrapes)} answered the scrapes"
    every = [values for answers in scrapes.values() for values in answers]
    for values in every:  # each worker shows every worker's requests, not its own share
        assert values[ok] == before.get(ok, 0.0) + sent
        assert values[("routellm_routing_latency_seconds_count", frozenset())] >= sent
        assert values[("routellm_in_flight_requests", frozenset())] == 0
    counters = [{k: v for k, v in values.items() if k[0].endswith(("_total", "_count", "_bucket"))} for values in every]
    assert all(c == counters[0] for c in counters), "two scrapes after the same traffic disagree"


def _auth_on_one_connection(conn: http.client.HTTPConnection) -> tuple[str, dict[str, int]]:
    """The worker behind one connection (its pid, from ``/health``) and the status of a chat request sent on that
    same connection (so to that same worker) with each token: both accepted ones, a wrong one, none."""
    conn.request("GET", "/health")
    health = conn.getresponse()
    health.read()
    worker, sock = health.getheader("x-routellm-worker"), conn.sock
    statuses: dict[str, int] = {}
    for name, key in (("direct", DIRECT_TOKEN), ("env", TOKEN), ("wrong", "wrong-token"), ("none", None)):
        tok = uuid.uuid4().hex
        body = {"model": "router-fast-0.0", "messages": [{"role": "user", "content": f"hello {tok}"}]}
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert conn.sock is sock, "the server closed the connection: the answer may come from another worker"
        statuses[name] = response.status
        if response.status == 200:
            assert answer["choices"][0]["message"]["content"] == f"[mock-strong] hello {tok}"
            assert response.getheader("x-routellm-worker") == worker
        else:
            assert answer["error"]["code"] == "invalid_api_key"
    return worker, statuses


@pytest.mark.slow
def test_run_with_api_keys_and_workers_enforces_them_in_every_worker(two_workers_run: tuple[str, int]) -> None:
    keys_env, port = two_workers_run
    expected = {"direct": 200, "env": 200 if keys_env else 401, "wrong": 401, "none": 401}
    workers: dict[str, dict[str, int]] = {}
    for _ in range(30):  # bounded: stop as soon as both workers have answered
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(16)]
        try:
            for conn in connections:  # all connected before any request, so both workers accept some
                conn.connect()
            for conn in connections:
                worker, statuses = _auth_on_one_connection(conn)
                assert statuses == expected, f"worker {worker} answered {statuses}"
                workers[worker] = statuses
        finally:
            for conn in connections:
                conn.close()
        if len(workers) >= 2:
            break
    assert len(workers) == 2, f"only worker(s) {list(workers)} answered"
    if sys.platform == "linux":  # the tokens reach the workers through the environment, never a command line
        for pid in workers:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                arguments = cmdline.read()
            assert TOKEN.encode() not in arguments and DIRECT_TOKEN.encode() not in arguments


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``runner.run`` configures logging (uvicorn's config) before it builds the app; undo it for later tests."""
    import logging

    names = ["routellm_core", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = {n: (lg.handlers[:], lg.level, lg.propagate, lg.disabled) for n in names for lg in [logging.getLogger(n)]}
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


def test_cli_refuses_bad_settings_before_serving(
    capsys: pytest.CaptureFixture[str], monkeypatch, restore_logging
) -> None:
    monkeypatch.delenv("ROUTELLM_TEST_NO_KEY", raising=False)
    base = ["serve", "--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini", "--port", "1"]
    keys = ["--strong-api-key-env", "ROUTELLM_TEST_NO_KEY", "--weak-api-key-env", "ROUTELLM_TEST_NO_KEY"]
    assert main([*base, *keys]) == 2
    assert "needs an API key: set $ROUTELLM_TEST_NO_KEY" in capsys.readouterr().err
    local = ["--strong-base-url", "http://127.0.0.1:9/v1", "--weak-base-url", "http://127.0.0.1:9/v1", *keys]
    assert main([*base, *local, "--router", "no-such-router"]) == 2
    assert "unknown router 'no-such-router'" in capsys.readouterr().err
    assert main([*base, *local, "--router", "fast", "--max-concurrency", "0"]) == 2
    assert "max_concurrency" in capsys.readouterr().err
