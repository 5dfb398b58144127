"""``routellm serve`` as a user runs it: the CLI in a subprocess with two uvicorn workers sharing one port, in front of
a mock upstream on 127.0.0.1; and the CLI's refusals of bad settings, before anything is served.

The server is stateless, so either worker may answer any request: both must answer (their pids differ in the
``x-routellm-worker`` header), each answer must carry its own request's token, and auth tokens reach the workers
through the environment, never through the settings handed to them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from routellm_core.cli import main
from routellm_core.server import ServerThread
from routellm_core.server.mock_upstream import create_mock_upstream

STARTUP_S = 90
TOKEN = "worker-token-5b1e"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mock() -> Iterator[ServerThread]:
    with ServerThread(create_mock_upstream()) as server:
        yield server


@pytest.fixture(scope="module")
def two_workers(mock: ServerThread) -> Iterator[str]:
    """``routellm serve --workers 2`` on a free port; stopped (SIGINT, then SIGKILL of its group) afterwards."""
    port = _free_port()
    env = {**os.environ, "ROUTELLM_TEST_WORKER_TOKENS": TOKEN}
    env.pop("ROUTELLM_SERVER_API_KEYS", None)
    command = [
        sys.executable, "-m", "routellm_core.cli", "serve",
        "--strong", "openai:mock-strong", "--strong-base-url", f"{mock.url}/v1",
        "--weak", "openai:mock-weak", "--weak-base-url", f"{mock.url}/v1",
        "--strong-api-key-env", "ROUTELLM_TEST_NO_KEY", "--weak-api-key-env", "ROUTELLM_TEST_NO_KEY",
        "--router", "fast", "--workers", "2", "--port", str(port), "--log-level", "warning",
        "--api-keys-env", "ROUTELLM_TEST_WORKER_TOKENS",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, f"the server exited: {process.stdout.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the server did not start in time"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        output = process.stdout.read().decode()
        assert TOKEN not in output


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


def test_cli_refuses_bad_settings_before_serving(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
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
