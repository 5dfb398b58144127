"""The OpenAI-compatible routing server, end to end: the real ``openai`` client over a real 127.0.0.1 socket, against
the real server (uvicorn in a thread), routing with the shipped ``fast`` router to a local mock upstream.

The mock echoes ``"[<model>] <last user text>"``, so every answer names the upstream that wrote it and carries the
request's unique token back; directives in the prompt make it fail (``[status:500@mock-strong]``, ``[empty]``,
``[sleep:3]``, ``[break:2]``, ``[drip:0.2]``, ``[tool]``). Routing choices are known in advance: threshold 0.0
always routes strong, 1.0 always weak (a win rate below 1), and so do the shares 100% / 0%.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

import httpx
import openai
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from routellm_core import InvalidInputError, MissingDependencyError, ScoringError, load_router
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import ChatModelUpstream, OpenAIUpstream, ServerSettings, ServerThread, create_app
from routellm_core.server.upstreams import build_upstream

STRONG, WEAK = "mock-strong", "mock-weak"
UPSTREAM_KEY = "sk-upstream-d0-not-leak-7f3a9c"
DEADLINE_S = 30


@pytest.fixture(scope="module")
def fast_router():
    """The shipped ``fast`` router, loaded once for the module (each app gets its own policy around it)."""
    return load_router("fast")


@pytest.fixture()
def serve(serve: Callable[..., ServerThread], mock: ServerThread, fast_router) -> Callable[..., ServerThread]:
    """conftest's ``serve`` with upstreams that hold this module's key and timeout, and the module's loaded ``fast``
    router; ``serve(**settings)`` returns the running server."""

    def start(*, policies: dict[str, RoutingPolicy] | None = None, **options: Any) -> ServerThread:
        if policies is None and options.get("routers", ("fast",)) == ("fast",):
            policies = {"fast": RoutingPolicy(fast_router)}  # named "fast" by the server, as clients name it
        timeout = options.get("upstream_timeout", 120.0)  # given as Upstream objects, they carry their own
        return serve(
            strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key=UPSTREAM_KEY, timeout=timeout),
            weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key=UPSTREAM_KEY, timeout=timeout),
            policies=policies,
            **options,
        )

    return start


def client(server: ServerThread, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=DEADLINE_S)


def aclient(server: ServerThread, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=DEADLINE_S)


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def token() -> str:
    return f"tok-{uuid.uuid4().hex}"


# ---- routing and the decision ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "side", "upstream"),
    [
        ("router-fast-0.0", "strong", STRONG),
        ("router-fast-1.0", "weak", WEAK),
        ("router-fast-100%", "strong", STRONG),
        ("router-fast-0%", "weak", WEAK),
    ],
)
def test_model_name_routes_to_the_side_known_in_advance(serve, model: str, side: str, upstream: str) -> None:
    server = serve()
    tok = token()
    raw = client(server).chat.completions.with_raw_response.create(model=model, messages=ask(f"Explain {tok}"))
    answer = raw.parse()
    assert answer.choices[0].message.content == f"[{upstream}] Explain {tok}"
    assert answer.model == upstream
    assert raw.headers["x-routellm-model"] == upstream
    assert raw.headers["x-routellm-choice"] == side
    assert raw.headers["x-routellm-served"] == side
    assert raw.headers["x-routellm-fallback"] == "false"
    record = answer.model_extra["routellm"]
    assert record["choice"] == record["served"] == side
    assert record["model"] == upstream
    assert record["fallback"] is False and record["continued"] is False
    assert record["router"] == "fast" == raw.headers["x-routellm-router"]
    assert record["decision_id"] == raw.headers["x-routellm-decision-id"]
    assert float(raw.headers["x-routellm-win-rate"]) == record["win_rate"]
    assert float(raw.headers["x-routellm-threshold"]) == record["threshold"]
    assert 0.0 <= record["win_rate"] < 1.0
    # the mock's usage is passed through unchanged: 2 prompt words, 3 answer words
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (2, 3, 5)


def test_thresholds_from_model_names(serve, fast_router) -> None:
    server = serve(routers=("fast", "random"), policies=None)
    c = client(server)
    shares = {
        "router-fast": fast_router.threshold_for(0.5),  # the policy default: the calibrated 50% point
        "router-fast-30%": fast_router.threshold_for(0.3),
        "router-fast-0.76": 0.76,
        "router-random-0.25": 0.25,
        "router-fast-1e-4": 1e-4,  # a number with a '-' in it: the router is the name before the threshold
    }
    for model, threshold in shares.items():
        raw = c.chat.completions.with_raw_response.create(model=model, messages=ask("hello"))
        record = raw.parse().model_extra["routellm"]
        assert record["threshold"] == pytest.approx(threshold)
        assert record["choice"] == ("strong" if record["win_rate"] >= threshold else "weak")
    ids = [m.id for m in c.models.list().data]
    assert ids[:2] == ["router-fast", "router-fast-10%"]
    assert "router-fast-90%" in ids and "router-random" in ids
    assert "router-random-10%" not in ids  # no calibration


@pytest.mark.parametrize(
    ("model", "status", "needle"),
    [
        ("gpt-4o", 404, "is not served here"),
        ("router-nope-0.5", 404, "names no router this server serves"),
        ("router-fast-abc", 400, "must be a number in [0, 1]"),
        ("router-fast-1.5", 400, "must be a number in [0, 1]"),
        ("router-fast-1e-400x", 400, "must be a number in [0, 1]"),
        ("router-fast-nan", 400, "must be a number in [0, 1]"),
        ("router-fast-130%", 400, "percentage in [0, 100]"),
        ("router-random-30%", 400, "has no shipped calibration"),
    ],
)
def test_bad_model_names_are_refused_with_the_problem_named(serve, model: str, status: int, needle: str) -> None:
    server = serve(routers=("fast", "random"), policies=None)
    with pytest.raises(openai.APIStatusError) as info:
        client(server).chat.completions.create(model=model, messages=ask("hi"))
    assert info.value.status_code == status
    assert needle in info.value.body["message"]
    assert info.value.body["param"] == "model"


# ---- streaming ---------------------------------------------------------------------------------------------
def test_stream_relays_chunks_record_usage_and_done(serve) -> None:
    server = serve()
    tok = token()
    stream = client(server).chat.completions.create(
        model="router-fast-1.0",
        messages=ask(f"stream {tok} please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"[{WEAK}] stream {tok} please"
    record = chunks[0].model_extra["routellm"]
    assert (record["choice"], record["served"], record["model"]) == ("weak", "weak", WEAK)
    assert all("routellm" not in c.model_extra for c in chunks[1:])
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 3 + 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    # the wire format: SSE events, the last one [DONE]; the decision also in the headers
    body = {"model": "router-fast-0.0", "messages": ask(f"raw {tok}"), "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=DEADLINE_S) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-routellm-model"] == STRONG
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    assert json.loads(events[0][6:])["routellm"]["served"] == "strong"


def test_stream_failure_after_chunks_ends_with_an_error_event(serve) -> None:
    server = serve(fallback=True)
    stream = client(server).chat.completions.create(
        model="router-fast-0.0", messages=ask("[break:2] one two three four"), stream=True
    )
    got: list[str] = []
    with pytest.raises(openai.APIError, match="mock stream broke"):
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == f"[{STRONG}] [break:2] "  # two chunks delivered, then the error; never a silent cut


# ---- pass-through: tools, tool calls, response_format ------------------------------------------------------
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up.",
            "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]},
        },
    }
]


def test_request_fields_reach_the_upstream_unchanged(serve, mock: ServerThread) -> None:
    server = serve()
    tok = token()
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}
    messages = [
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": [{"type": "text", "text": f"first {tok}"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "user", "content": f"again {tok}"},
    ]
    client(server).chat.completions.create(
        model="router-fast-0.0",
        messages=messages,
        tools=TOOLS,
        tool_choice="auto",
        response_format=schema,
        temperature=0.25,
        max_tokens=7,
        seed=3,
        extra_body={"vendor_field": {"nested": [1, 2]}},
    )
    received = next(b for b in reversed(mock.app.state.received) if tok in json.dumps(b))
    assert received == {
        "model": STRONG,
        "messages": messages,
        "tools": TOOLS,
        "tool_choice": "auto",
        "response_format": schema,
        "temperature": 0.25,
        "max_tokens": 7,
        "seed": 3,
        "vendor_field": {"nested": [1, 2]},
    }


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_come_back(serve, stream: bool) -> None:
    server = serve()
    tok = token()
    kwargs: dict[str, Any] = {"model": "router-fast-1.0", "messages": ask(f"[tool] {tok}"), "tools": TOOLS}
    if not stream:
        message = client(server).chat.completions.create(**kwargs).choices[0].message
        name, arguments = message.tool_calls[0].function.name, message.tool_calls[0].function.arguments
    else:
        chunks = list(client(server).chat.completions.create(**kwargs, stream=True))
        calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
        name = calls[0].function.name
        arguments = "".join(tc.function.arguments or "" for tc in calls)
        assert chunks[0].model_extra["routellm"]["served"] == "weak"
    assert name == "lookup"
    assert json.loads(arguments) == {"echo": f"[tool] {tok}"}


# ---- bad requests ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}], "no text"),
        ([{"role": "system", "content": "only a system prompt"}], "no user message"),
        ([{"role": "wizard", "content": "hi"}], "role must be one of"),
        ([{"role": "user", "content": 42}], "content must be a string"),
        ([{"role": "user", "content": [{"type": "text", "text": None}]}], "text must be a string"),
        (["hi"], "must be an object"),
        ([], "non-empty list"),
    ],
)
def test_unroutable_messages_are_400(serve, messages: list[Any], needle: str) -> None:
    server = serve()
    with pytest.raises(openai.BadRequestError) as info:
        client(server).chat.completions.create(model="router-fast-0.5", messages=messages)
    assert needle in info.value.body["message"]


def test_image_beside_text_routes_on_the_text(serve) -> None:
    server = serve()
    tok = token()
    parts = [{"type": "image_url", "image_url": {"url": "data:,"}}, {"type": "text", "text": f"what is {tok}"}]
    answer = client(server).chat.completions.create(
        model="router-fast-1.0", messages=[{"role": "user", "content": parts}]
    )
    assert answer.choices[0].message.content == f"[{WEAK}] what is {tok}"


def test_limits_on_body_messages_and_json(serve) -> None:
    server = serve(max_body_bytes=2048, max_messages=3)
    c = client(server)
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="router-fast-0.5", messages=ask("x" * 4096))
    assert info.value.status_code == 413 and "2048 bytes" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="too many messages: 4"):
        c.chat.completions.create(model="router-fast-0.5", messages=ask("a") + ask("b"))
    url = f"{server.url}/v1/chat/completions"
    # a body without Content-Length (chunked) is cut at the limit too
    chunked = httpx.post(url, content=iter([b"{" + b" " * 3000 + b"}"]), timeout=DEADLINE_S)
    assert chunked.status_code == 413
    assert httpx.post(url, content=b"{not json", timeout=DEADLINE_S).json()["error"]["code"] == "invalid_json"
    bad_stream = httpx.post(url, json={"model": "router-fast", "messages": ask("a"), "stream": "yes"})
    assert bad_stream.status_code == 400 and bad_stream.json()["error"]["param"] == "stream"
    unknown = httpx.get(f"{server.url}/v2/nothing")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


# ---- auth --------------------------------------------------------------------------------------------------
def test_bearer_token_auth(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTELLM_TEST_TOKENS", "tok-env-1, tok-env-2")
    server = serve(api_keys=("tok-direct",), api_keys_env="ROUTELLM_TEST_TOKENS")
    for key in ("tok-direct", "tok-env-1", "tok-env-2"):
        answer = client(server, key).chat.completions.create(model="router-fast-0.0", messages=ask("hi"))
        assert answer.model == STRONG
    for key in ("wrong", "tok-direct-but-longer", "tok-env"):
        with pytest.raises(openai.AuthenticationError) as info:
            client(server, key).chat.completions.create(model="router-fast-0.0", messages=ask("hi"))
        assert info.value.body["code"] == "invalid_api_key"
        assert "tok-direct" not in json.dumps(info.value.body)
        with pytest.raises(openai.AuthenticationError):
            client(server, key).models.list()
    assert httpx.get(f"{server.url}/health").status_code == 200  # load balancers probe without a token
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    headers = {"Authorization": "Bearer tok-env-2"}
    assert httpx.get(f"{server.url}/metrics", headers=headers).status_code == 200
    no_scheme = httpx.post(f"{server.url}/v1/chat/completions", headers={"Authorization": "tok-direct"}, json={})
    assert no_scheme.status_code == 401 and no_scheme.headers["www-authenticate"] == "Bearer"


# ---- concurrency -------------------------------------------------------------------------------------------
def _in_flight(server: ServerThread) -> int:
    return httpx.get(f"{server.url}/health").json()["in_flight"]


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.mark.slow
async def test_full_server_answers_429_at_once_and_frees_slots(serve) -> None:
    server = serve(max_concurrency=2)
    c = aclient(server)
    slow = [
        asyncio.create_task(c.chat.completions.create(model="router-fast-0.0", messages=ask("[sleep:1.5] slow"))),
        asyncio.create_task(
            _drain(
                await c.chat.completions.create(model="router-fast-0.0", messages=ask("[drip:0.3] a b c"), stream=True)
            )
        ),
    ]
    await asyncio.to_thread(_wait_for, lambda: _in_flight(server) == 2)
    start = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        await c.chat.completions.create(model="router-fast-0.0", messages=ask("third"))
    assert time.monotonic() - start < 1.0, "a full server must refuse at once, not queue"
    assert info.value.body["code"] == "too_many_concurrent_requests"
    assert info.value.response.headers["retry-after"] == "1"
    first, streamed = await asyncio.wait_for(asyncio.gather(*slow), DEADLINE_S)
    assert first.choices[0].message.content == f"[{STRONG}] [sleep:1.5] slow"
    assert streamed == f"[{STRONG}] [drip:0.3] a b c"
    assert _in_flight(server) == 0
    answer = await c.chat.completions.create(model="router-fast-0.0", messages=ask("after"))
    assert answer.choices[0].message.content == f"[{STRONG}] after"


def test_stalled_body_gets_408_and_holds_no_slot(mock: ServerThread, fast_router) -> None:
    """A client that sends its headers and part of its body, then stalls, is answered 408 after ``body_timeout``
    and never holds one of the ``max_concurrency`` slots: another request is served meanwhile."""
    app = create_app(
        strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key=UPSTREAM_KEY),
        weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key=UPSTREAM_KEY),
        policies={"fast": RoutingPolicy(fast_router)},
        api_keys_env=None,
        max_concurrency=1,
        body_timeout=1.0,
    )
    partial_received = threading.Event()

    async def watched(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """The app, noting when a chunk of a request body reached it (so the handler is reading the body)."""

        async def watch() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                partial_received.set()
            return message

        await app(scope, watch if scope["type"] == "http" else receive, send)

    body = json.dumps({"model": "router-fast-0.0", "messages": ask("stalled")}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with ServerThread(watched) as server, socket.create_connection(("127.0.0.1", server.port), DEADLINE_S) as sock:
        sock.sendall(head + body[:10])  # then nothing more: the client stalls
        assert partial_received.wait(DEADLINE_S), "the partial body never reached the app"
        assert _in_flight(server) == 0
        answer = client(server).chat.completions.create(model="router-fast-0.0", messages=ask("meanwhile"))
        assert answer.choices[0].message.content == f"[{STRONG}] meanwhile"
        response = http.client.HTTPResponse(sock)  # the socket's timeout bounds the wait if no answer comes
        response.begin()
        assert response.status == 408
        error = json.loads(response.read())["error"]
        assert error["code"] == "request_timeout" and error["type"] == "invalid_request_error"
        assert "did not arrive within 1 s" in error["message"]
        assert _in_flight(server) == 0
        metrics = httpx.get(f"{server.url}/metrics").text
        assert _sample(metrics, "routellm_errors_total", status="408", code="request_timeout") == 1
        after = client(server).chat.completions.create(model="router-fast-0.0", messages=ask("after"))
        assert after.choices[0].message.content == f"[{STRONG}] after"


async def _drain(stream: Any) -> str:
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


def test_client_leaving_a_stream_closes_the_upstream_and_frees_the_slot(serve) -> None:
    server = serve()
    body = {"model": "router-fast-0.0", "messages": ask("[drip:0.5] " + "word " * 40), "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=DEADLINE_S) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    _wait_for(lambda: _in_flight(server) == 0)
    _wait_for(
        lambda: _sample(httpx.get(f"{server.url}/metrics").text, "routellm_upstream_calls_total", side="strong",
                        outcome="cancelled") == 1
    )  # fmt: skip


async def test_concurrent_requests_share_one_scoring_batch(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests that arrive while a batch is scored are scored together in the next one (the micro-batcher)."""
    batches: list[int] = []
    router = load_router("fast")
    predict = router.predict_win_rate

    def slow_predict(texts: list[str]) -> Any:
        batches.append(len(texts))
        time.sleep(0.3)  # scoring takes a while: requests arriving meanwhile pile up for the next batch
        return predict(texts)

    monkeypatch.setattr(router, "predict_win_rate", slow_predict)
    server = serve(policies={"fast": RoutingPolicy(router)})
    c = aclient(server)
    tokens = [token() for _ in range(24)]
    answers = await asyncio.wait_for(
        asyncio.gather(*(c.chat.completions.create(model="router-fast-1.0", messages=ask(f"q {t}")) for t in tokens)),
        DEADLINE_S,
    )
    assert [a.choices[0].message.content for a in answers] == [f"[{WEAK}] q {t}" for t in tokens]
    assert sum(batches) == len(tokens)
    assert max(batches) > 1 and len(batches) < len(tokens)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RuntimeError("boom with a secret prompt"), "internal_error"),  # a bug: its text is not shown
        (ScoringError("router 'mf' failed to score 1 text(s)"), "routing_failed"),
    ],
)
def test_router_failure_is_a_500_and_the_server_keeps_serving(
    serve, monkeypatch: pytest.MonkeyPatch, error: Exception, code: str
) -> None:
    router = load_router("fast")
    predict = router.predict_win_rate
    failing = True

    def flaky(texts: list[str]) -> Any:
        if failing:
            raise error
        return predict(texts)

    monkeypatch.setattr(router, "predict_win_rate", flaky)
    server = serve(policies={"fast": RoutingPolicy(router)}, max_concurrency=1)
    c = client(server)
    with pytest.raises(openai.InternalServerError) as info:
        c.chat.completions.create(model="router-fast-0.0", messages=ask("hi"))
    assert info.value.status_code == 500 and info.value.body["code"] == code
    assert "secret prompt" not in info.value.body["message"]
    failing = False
    assert _in_flight(server) == 0
    assert c.chat.completions.create(model="router-fast-0.0", messages=ask("again")).model == STRONG


# ---- upstream failures, timeouts, fallback -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("prompt", "status", "code"),
    [
        ("[status:500@mock-strong] x", 502, "upstream_error"),
        ("[status:503] x", 502, "upstream_error"),
        ("[status:400] x", 400, "upstream_rejected_request"),
        ("[status:422] x", 422, "upstream_rejected_request"),
        ("[status:429] x", 429, "upstream_rate_limited"),
        ("[status:401] x", 502, "upstream_auth_failed"),
        ("[empty] x", 502, "upstream_empty_response"),
        ("[sleep:3] x", 504, "upstream_timeout"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_map_to_openai_errors(serve, prompt: str, status: int, code: str, stream: bool) -> None:
    server = serve(upstream_timeout=0.5)
    with pytest.raises(openai.APIStatusError) as info:
        answer = client(server).chat.completions.create(model="router-fast-0.0", messages=ask(prompt), stream=stream)
        list(answer) if stream else None
    assert info.value.status_code == status
    assert info.value.body["code"] == code
    assert f"the strong upstream '{STRONG}' failed" in info.value.body["message"]
    assert info.value.response.headers["x-routellm-choice"] == "strong"
    assert UPSTREAM_KEY not in json.dumps(info.value.body)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("failure", ["[status:500@mock-strong]", "[empty@mock-strong]", "[sleep:3@mock-strong]"])
def test_fallback_answers_from_the_other_side(serve, failure: str, stream: bool) -> None:
    server = serve(fallback=True, upstream_timeout=0.5)
    tok = token()
    c = client(server)
    prompt = f"{failure} {tok}"
    if stream:
        chunks = list(c.chat.completions.create(model="router-fast-0.0", messages=ask(prompt), stream=True))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        record = chunks[0].model_extra["routellm"]
    else:
        answer = c.chat.completions.create(model="router-fast-0.0", messages=ask(prompt))
        text, record = answer.choices[0].message.content, answer.model_extra["routellm"]
    assert text == f"[{WEAK}] {prompt}"
    assert (record["choice"], record["served"], record["model"]) == ("strong", "weak", WEAK)
    assert record["fallback"] is True and record["fallback_from"] == STRONG
    expected_error = {"[status:500": "InternalServerError", "[empty": "EmptyResponseError", "[sleep:3": "Timeout"}
    assert expected_error[failure.split("@")[0]] in record["fallback_error"]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert _sample(metrics, "routellm_fallbacks_total", from_side="strong", error=record["fallback_error"]) == 1


def test_fallback_failing_too_names_both_models(serve) -> None:
    server = serve(fallback=True)
    with pytest.raises(openai.InternalServerError) as info:
        client(server).chat.completions.create(model="router-fast-1.0", messages=ask("[status:500] x"))
    message = info.value.body["message"]
    assert f"the strong upstream '{STRONG}' failed" in message
    assert f"after the chosen weak upstream '{WEAK}' failed" in message


# ---- secrets and logs --------------------------------------------------------------------------------------
def test_no_key_or_prompt_in_answers_or_logs(serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(fallback=True, api_keys=("server-token-9d8e",))
    tok = token()
    caplog.set_level(logging.DEBUG)
    c = client(server, "server-token-9d8e")
    # the mock echoes the Authorization header it got in its 401 message: the upstream key must not come back
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="router-fast-0.0", messages=ask(f"[status:401] secret prompt {tok}"))
    assert info.value.status_code == 502
    answer = c.chat.completions.create(model="router-fast-0.0", messages=ask(f"[status:500@mock-strong] {tok}"))
    assert answer.model_extra["routellm"]["fallback"] is True
    list(c.chat.completions.create(model="router-fast-1.0", messages=ask(f"streamed {tok}"), stream=True))
    # ours at every level; the libraries' (openai, httpx) from INFO up: their DEBUG logs dump request bodies
    records = [r for r in caplog.records if r.name.startswith("routellm_core") or r.levelno >= logging.INFO]
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
    assert "falling back" in logs  # the dispatcher's warning names models and error types only
    for secret in (UPSTREAM_KEY, "server-token-9d8e", tok, "secret prompt"):
        assert secret not in logs
        assert secret not in json.dumps(info.value.body)
    assert "server-token-9d8e" not in httpx.get(f"{server.url}/health").text


def test_log_prompts_logs_the_routing_text_when_asked(serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(log_prompts=True)
    tok = token()
    caplog.set_level(logging.INFO, logger="routellm_core.server")
    client(server).chat.completions.create(model="router-fast-0.0", messages=ask(f"log me {tok}"))
    assert any(tok in r.getMessage() for r in caplog.records)


# ---- metrics -----------------------------------------------------------------------------------------------
def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` in a Prometheus text exposition (labels in any order; 0 if absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or "") if match else []
        if match and match.group(1) == name and dict(pairs) == labels:
            return float(match.group(3))
    return 0.0


def test_the_shipped_router_and_a_trained_one_of_its_type_are_told_apart(serve, tmp_path) -> None:
    """Records, headers and ``/metrics`` name a router as clients do (``default``, the checkpoint path), not by its
    type, which the shipped ``default`` and a router trained from it share."""
    from routellm_core.routers.training import train_router

    mine = tmp_path / "my-router-模型"  # a path that is not latin-1: its header is percent-encoded
    train_router(None, [], init="default").save(mine)
    assert load_router(mine).name == load_router("default").name == "difficulty"
    server = serve(routers=("default", str(mine)), policies=None)
    c = client(server)
    for name in ("default", str(mine)):
        raw = c.chat.completions.with_raw_response.create(model=f"router-{name}-0.0", messages=ask("hi"))
        assert raw.parse().model_extra["routellm"]["router"] == name == unquote(raw.headers["x-routellm-router"])
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("default", str(mine)):
        assert _sample(text, "routellm_decisions_total", router=name, choice="strong") == 1
    assert _sample(text, "routellm_decisions_total", router="difficulty", choice="strong") == 0


def test_metrics_count_sides_errors_and_latencies(serve) -> None:
    server = serve(fallback=True)
    c = client(server)
    for _ in range(3):
        c.chat.completions.create(model="router-fast-0.0", messages=ask("a"))
    for _ in range(2):
        list(c.chat.completions.create(model="router-fast-1.0", messages=ask("b"), stream=True))
    c.chat.completions.create(model="router-fast-0.0", messages=ask("[status:500@mock-strong] c"))
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="gpt-4o", messages=ask("d"))
    response = httpx.get(f"{server.url}/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    assert _sample(text, "routellm_upstream_calls_total", side="strong", outcome="ok") == 3
    assert _sample(text, "routellm_upstream_calls_total", side="strong", outcome="error") == 1
    assert _sample(text, "routellm_upstream_calls_total", side="weak", outcome="ok") == 3
    assert _sample(text, "routellm_fallbacks_total", from_side="strong", error="InternalServerError") == 1
    assert _sample(text, "routellm_decisions_total", router="fast", choice="strong") == 4
    assert _sample(text, "routellm_decisions_total", router="fast", choice="weak") == 2
    assert _sample(text, "routellm_requests_total", status="200") == 6
    assert _sample(text, "routellm_requests_total", status="404") == 1
    assert _sample(text, "routellm_errors_total", status="404", code="model_not_found") == 1
    assert _sample(text, "routellm_routing_latency_seconds_count") == 6
    assert _sample(text, "routellm_routing_latency_seconds_bucket", le="+Inf") == 6
    assert _sample(text, "routellm_upstream_latency_seconds_count", side="strong") == 4
    assert _sample(text, "routellm_upstream_latency_seconds_count", side="weak") == 3
    assert _sample(text, "routellm_in_flight_requests") == 0
    for line in text.splitlines():  # every sample line is `name{labels} number`
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+-]+|.*\+Inf\"\} [0-9.]+", line)


# ---- running it ----------------------------------------------------------------------------------------------
def test_mounted_in_another_asgi_app(mock: ServerThread, fast_router) -> None:
    router_app = create_app(
        strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key="k"),
        weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key="k"),
        policies={"fast": RoutingPolicy(fast_router)},
        api_keys_env=None,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await router_app.state.routellm.aclose()  # a mounted app's own lifespan does not run

    outer = FastAPI(lifespan=lifespan)
    outer.mount("/llm", router_app)

    @outer.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    with ServerThread(outer) as server:
        c = openai.OpenAI(base_url=f"{server.url}/llm/v1", api_key="unused", max_retries=0)
        answer = c.chat.completions.create(model="router-fast-1.0", messages=ask("mounted"))
        assert answer.choices[0].message.content == f"[{WEAK}] mounted"
        assert httpx.get(f"{server.url}/hello").json() == {"hello": "world"}
        assert httpx.get(f"{server.url}/llm/health").json()["status"] == "ok"


def test_init_chat_model_upstream(mock: ServerThread, fast_router) -> None:
    """A LangChain upstream (``init_chat_model``, here langchain-openai against the mock) speaks OpenAI JSON."""
    from langchain.chat_models import init_chat_model

    weak = ChatModelUpstream(
        init_chat_model(f"openai:{WEAK}", base_url=f"{mock.url}/v1", api_key="k", max_retries=0, stream_usage=True),
        name="lc-weak",
    )
    app = create_app(
        strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key="k"),
        weak=weak,
        policies={"fast": RoutingPolicy(fast_router)},
        api_keys_env=None,
    )
    tok = token()
    with ServerThread(app) as server:
        c = client(server)
        raw = c.chat.completions.with_raw_response.create(model="router-fast-1.0", messages=ask(f"lc {tok}"))
        answer = raw.parse()
        assert raw.headers["x-routellm-model"] == "lc-weak"
        assert answer.choices[0].message.content == f"[{WEAK}] lc {tok}"
        assert answer.usage.total_tokens == 2 + 3
        chunks = list(
            c.chat.completions.create(
                model="router-fast-1.0", messages=ask(f"lc {tok}"), stream=True, stream_options={"include_usage": True}
            )
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == f"[{WEAK}] lc {tok}"
        assert chunks[0].model_extra["routellm"]["model"] == "lc-weak"
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 2 + 3
        message = (
            c.chat.completions.create(model="router-fast-1.0", messages=ask(f"[tool] {tok}"), tools=TOOLS)
            .choices[0]
            .message
        )
        assert message.tool_calls[0].function.name == "lookup"
        assert json.loads(message.tool_calls[0].function.arguments) == {"echo": f"[tool] {tok}"}
        assert answer.choices[0].finish_reason == "stop" and message.content is None
        chunks = list(
            c.chat.completions.create(model="router-fast-1.0", messages=ask(f"[tool] {tok}"), tools=TOOLS, stream=True)
        )
        calls = [tc for ch in chunks if ch.choices for tc in ch.choices[0].delta.tool_calls or ()]
        assert calls[0].function.name == "lookup" and calls[0].id
        assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"echo": f"[tool] {tok}"}
        assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"


def test_upstream_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    local = build_upstream(
        "openai:llama3:8b", side="weak", base_url="http://127.0.0.1:9/v1", api_key_env="NO_SUCH_KEY_VAR"
    )
    assert isinstance(local, OpenAIUpstream) and (local.model, local.name) == ("llama3:8b", "llama3:8b")
    assert local.secrets == ()
    monkeypatch.setenv("MY_KEY", "sk-mine")
    bare = build_upstream("gpt-4o-mini", side="weak", api_key_env="MY_KEY")
    assert isinstance(bare, OpenAIUpstream) and bare.secrets == ("sk-mine",) and "sk-mine" not in repr(bare)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-only")
    assert OpenAIUpstream("gpt-4o").secrets == ("sk-openai-only",)
    assert OpenAIUpstream("llama3", base_url="http://127.0.0.1:9/v1").secrets == ()  # never sent elsewhere
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(InvalidInputError, match="needs an API key"):
        OpenAIUpstream("gpt-4o")
    with pytest.raises(InvalidInputError, match=r"needs an API key: set \$NO_SUCH_KEY_VAR"):
        build_upstream("openai:gpt-4o", side="strong", api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(InvalidInputError, match="cannot build the strong upstream"):
        build_upstream("nosuchprovider:model-x", side="strong")
    with pytest.raises(InvalidInputError, match="not '<provider>:<model>'"):
        build_upstream("openai:", side="strong")


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="max_concurrency"):
        ServerSettings.build(max_concurrency=0)
    with pytest.raises(InvalidInputError, match="rag_query"):
        ServerSettings.build(route_on="rag_query")
    with pytest.raises(InvalidInputError, match="route_on must be one of"):
        ServerSettings.build(route_on="everything")
    with pytest.raises(InvalidInputError, match="routers"):
        ServerSettings.build(routers=())
    settings = ServerSettings.build(strong="openai:a", weak="openai:b", api_keys=("hidden-token",), routers=("fast",))
    assert "hidden-token" not in settings.to_env() and "hidden-token" not in repr(settings)
    assert ServerSettings.model_validate_json(settings.to_env()).routers == ("fast",)
    with pytest.raises(InvalidInputError, match="body_timeout"):
        ServerSettings.build(body_timeout=0)
    with pytest.raises(InvalidInputError, match="cannot contain ','") as info:
        ServerSettings.build(api_keys=("hidden,token",))
    assert "hidden" not in str(info.value)
    with pytest.raises(ValidationError, match="cannot contain ','") as info:
        ServerSettings(api_keys=("hidden,token",))
    assert "hidden" not in str(info.value)


def test_worker_environment_carries_every_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``run(..., workers=N)`` hands its workers: the tokens this process accepts, in ``api_keys_env``."""
    monkeypatch.setenv("ROUTELLM_TEST_TOKENS", "tok-env-1, tok-env-2")
    monkeypatch.delenv("ROUTELLM_SERVER_API_KEYS", raising=False)
    settings = ServerSettings.build(api_keys=("tok-direct",), api_keys_env="ROUTELLM_TEST_TOKENS")
    accepted = settings.bearer_tokens()
    assert accepted == [b"tok-direct", b"tok-env-1", b"tok-env-2"]
    env = settings.worker_environment()
    assert set(env) == {"ROUTELLM_SERVER_SETTINGS", "ROUTELLM_TEST_TOKENS"}
    assert "tok-" not in env["ROUTELLM_SERVER_SETTINGS"]
    for name, value in env.items():  # as a worker sees it
        monkeypatch.setenv(name, value)
    worker = ServerSettings.from_env()
    assert worker.api_keys == ()
    assert worker.bearer_tokens() == accepted
    # api_keys_env=None: the tokens go in the default variable, which the worker then reads
    env = ServerSettings.build(api_keys=("tok-direct",), api_keys_env=None).worker_environment()
    assert env["ROUTELLM_SERVER_API_KEYS"] == "tok-direct"
    assert json.loads(env["ROUTELLM_SERVER_SETTINGS"])["api_keys_env"] == "ROUTELLM_SERVER_API_KEYS"
    # no token at all: the workers read none either, whatever their environment holds
    env = ServerSettings.build(api_keys_env="ROUTELLM_TEST_UNSET_TOKENS").worker_environment()
    assert set(env) == {"ROUTELLM_SERVER_SETTINGS"}
    assert json.loads(env["ROUTELLM_SERVER_SETTINGS"])["api_keys_env"] is None


def test_missing_server_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import routellm_core.server as server_package

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "routellm_core.server.app")
    with pytest.raises(MissingDependencyError) as info:
        server_package.create_app  # noqa: B018
    assert info.value.extra == "server"
    assert "pip install 'routellm-integrations[server]'" in str(info.value)
