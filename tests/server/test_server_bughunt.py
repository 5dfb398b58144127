"""Bugs a demanding OpenAI-client user hit on the server, each pinned by a test that failed before its fix.

The real server (uvicorn in a thread) with the shipped ``fast`` router, the real ``openai`` client over 127.0.0.1,
and as upstreams the mock echo (``"[<model>] <text>"``, directives such as ``[drip:0.3@mock-strong]``) or small fake
models written here (a LangChain chat model that reports its usage the way Anthropic does, and an upstream that
answers ``n`` choices). Threshold 1.0 routes weak and 0.0 strong, so every outcome is known in advance.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from prometheus_client.parser import text_string_to_metric_families

from routellm_core.server import ChatModelUpstream, ServerThread, Upstream

STRONG, WEAK = "mock-strong", "mock-weak"
#: No number in it: the mock's answers of two models then disagree (the agreement check compares text).
PROMPT = "Name the capital of France in one word please"
DEADLINE_S = 30


def client(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=DEADLINE_S)


def sample(server: ServerThread, name: str, **labels: str) -> float:
    """One sample of the server's ``/metrics`` (0 when absent)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def leave_a_stream(server: ServerThread, model: str, text: str, chunks: int = 2) -> str:
    """Read ``chunks`` chunks of a stream, then close it (a user pressing stop); the decision id it carried."""
    stream = client(server).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True
    )
    received = [next(iter(stream)) for _ in range(chunks)]
    stream.close()
    return received[0].model_extra["routellm"]["decision_id"]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


# ---- a stream the client leaves ------------------------------------------------------------------------------
def test_a_stream_the_client_leaves_is_still_counted(serve: Callable[..., ServerThread]) -> None:
    """The client stops an escalated stream after two chunks: the escalation happened and the strong model was
    streaming, so the metrics count it and the Watch view says who answered (before the fix, neither did: only a
    stream read to its end was counted)."""
    server = serve()
    text = f"{PROMPT} [drip:0.3@{STRONG}]"  # only the strong model drips: the cheap answers come at once
    decision = leave_a_stream(server, "router-fast-1.0-cascade-100%", text)  # 100%: every checked call escalates

    def answered() -> list[dict[str, Any]]:
        items = httpx.get(f"{server.url}/ui/api/recent", timeout=10).json()["decisions"]
        return [i for i in items if i["decision_id"] == decision and "served_model" in i]

    wait_for(lambda: bool(answered()), "the left stream's answer in /ui/api/recent")
    item = answered()[0]
    assert (item["served_model"], item["escalated"], item["fallback"]) == (STRONG, True, False)
    assert sample(server, "routellm_escalations_total", router="fast", escalated="true") == 1.0
    assert sample(server, "routellm_upstream_calls_total", side="strong", outcome="cancelled") == 1.0


def test_a_stream_the_client_leaves_takes_feedback(serve: Callable[..., ServerThread], tmp_path: Path) -> None:
    """The docs: each routed request's decision is recorded under the decision id its response carries (streamed
    ones once the stream ended). A user who stops a bad answer and says so gets 200, not 404 (the engine records a
    relay its caller closed, too)."""
    server = serve(feedback=str(tmp_path / "feedback.db"))
    decision = leave_a_stream(server, "router-fast-0.0", f"{PROMPT} [drip:0.3]")
    answers: list[httpx.Response] = []

    def verdict_taken() -> bool:  # the server sees the client gone at its next chunk (0.3 s later)
        answers.append(httpx.post(f"{server.url}/v1/feedback", json={"decision_id": decision, "verdict": "bad"}))
        return answers[-1].status_code != 404

    wait_for(verdict_taken, "the left stream's decision in the feedback store")
    assert answers[-1].status_code == 200, answers[-1].text
    assert answers[-1].json()["label_id"] is not None


# ---- a failed escalation in a stream -------------------------------------------------------------------------
def test_a_stream_whose_escalation_fails_serves_the_held_weak_answer(
    serve: Callable[..., ServerThread], mock: ServerThread
) -> None:
    """``--fallback``: the strong model fails after an escalation. Unstreamed, the weak answer that was checked is
    served; streamed, it must be the same answer, not a third call of the weak model (paid again, and not the
    answer the check read)."""
    server = serve(fallback=True)
    model, text = "router-fast-1.0-cascade-100%", f"{PROMPT} [status:500@{STRONG}]"  # 100%: every check escalates
    weak_calls = lambda: sum(1 for b in mock.app.state.received if b.get("model") == WEAK)  # noqa: E731
    before = weak_calls()
    plain = client(server).chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    assert weak_calls() - before == 2  # the answer and the check's resample
    roles = [(a["model"], a["role"], a["kept"]) for a in plain.model_extra["routellm"]["attempts"]]
    assert roles == [(WEAK, "answer", True), (f"{WEAK} (resampled)", "check", False), (STRONG, "escalation", False)]

    before = weak_calls()
    chunks = list(
        client(server).chat.completions.create(model=model, messages=[{"role": "user", "content": text}], stream=True)
    )
    record = chunks[0].model_extra["routellm"]
    assert (record["served"], record["fallback"], record["fallback_from"]) == ("weak", True, STRONG)
    assert [(a["model"], a["role"], a["kept"]) for a in record["attempts"]] == roles
    assert weak_calls() - before == 2


# ---- a LangChain upstream's streamed usage -------------------------------------------------------------------
class SplitUsageModel(BaseChatModel):
    """Answers "hello there", and streams its usage as Anthropic does: the input tokens on the first chunk, the
    output tokens on the last."""

    @property
    def _llm_type(self) -> str:
        return "split-usage"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        usage = {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
        return ChatResult(generations=[ChatGeneration(message=AIMessage("hello there", usage_metadata=usage))])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(
            message=AIMessageChunk("", usage_metadata={"input_tokens": 10, "output_tokens": 1, "total_tokens": 11})
        )
        yield ChatGenerationChunk(message=AIMessageChunk("hello "))
        yield ChatGenerationChunk(message=AIMessageChunk("there"))
        yield ChatGenerationChunk(
            message=AIMessageChunk("", usage_metadata={"input_tokens": 0, "output_tokens": 2, "total_tokens": 2})
        )


def test_a_langchain_upstreams_streamed_usage_is_summed(serve: Callable[..., ServerThread]) -> None:
    """An ``anthropic:...`` upstream streamed with ``include_usage``: the usage chunk says what the answer
    cost, as the same call unstreamed does (before the fix it kept the last chunk's: 0 input tokens)."""
    server = serve(
        strong=ChatModelUpstream(SplitUsageModel(), name="gpt-4o"),
        weak=ChatModelUpstream(SplitUsageModel(), name="gpt-4o-mini"),
    )
    messages = [{"role": "user", "content": PROMPT}]
    plain = client(server).chat.completions.create(model="router-fast-0.0", messages=messages)
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (10, 3)
    chunks = list(
        client(server).chat.completions.create(
            model="router-fast-0.0", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello there"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 3, 13)
    # both calls priced alike: gpt-4o at 2.5 / 10 USD per million input / output tokens
    cost = sample(server, "routellm_cost_usd_total", router="fast", model="gpt-4o")
    assert cost == pytest.approx(2 * (10 * 2.5 + 3 * 10.0) / 1e6)


# ---- n > 1 -----------------------------------------------------------------------------------------------------
class ChoicesUpstream(Upstream):
    """Answers ``n`` choices: the first always "Paris", the others another city each call (as sampling does)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def _texts(self, body: Mapping[str, Any]) -> list[str]:
        self.calls += 1
        n = int(body.get("n") or 1)
        return ["Paris", *(f"city {self.calls}-{i}" for i in range(1, n))]

    async def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(self._texts(body))
        ]
        return {"id": "chatcmpl-n", "object": "chat.completion", "model": self.name, "choices": choices}

    async def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        head = {"id": "chatcmpl-n", "object": "chat.completion.chunk", "model": self.name}
        texts = self._texts(body)
        for i, t in enumerate(texts):  # as OpenAI streams n choices: one choice per chunk, by index
            yield {**head, "choices": [{"index": i, "delta": {"role": "assistant", "content": t}}]}
        for i in range(len(texts)):
            yield {**head, "choices": [{"index": i, "delta": {}, "finish_reason": "stop"}]}


@pytest.mark.parametrize("stream", [False, True])
def test_with_n_choices_the_check_reads_the_first_choice(serve: Callable[..., ServerThread], stream: bool) -> None:
    """``n=2`` through an escalation check: both cheap calls' first choices say "Paris", so they agree and the weak
    answer is kept (before the fix the check read every choice glued together, "Pariscity 1-1" against "Pariscity
    2-1", and escalated); the client still gets both choices."""
    weak = ChoicesUpstream("n-weak")
    server = serve(strong=ChoicesUpstream("n-strong"), weak=weak)
    create = client(server).chat.completions.create
    messages = [{"role": "user", "content": PROMPT}]
    if stream:
        chunks = list(create(model="router-fast-1.0-cascade", messages=messages, n=2, stream=True))
        record = chunks[0].model_extra["routellm"]
        texts = {c.choices[0].index: c.choices[0].delta.content for c in chunks if c.choices[0].delta.content}
    else:
        answer = create(model="router-fast-1.0-cascade", messages=messages, n=2)
        record = answer.model_extra["routellm"]
        texts = {c.index: c.message.content for c in answer.choices}
    assert (record["served"], record["escalated"]) == ("weak", False)
    assert record["attempts"][0]["confidence"] == 1.0
    assert texts == {0: "Paris", 1: "city 1-1"}  # the answer the weak model gave first, every choice of it
    assert weak.calls == 2  # the answer and the check's resample
