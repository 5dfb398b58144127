"""Load: thousands of concurrent async and threaded calls with instant fake children.

Every request carries a unique id (in a system message, which is never routing text) that the fake child echoes
back: each id must come back exactly once, from the child the sequential decision picks, with the same win
rate. Nothing may deadlock (every wait is bounded), and nothing piles up per call over repeated rounds. Failing
children and failing streams under load are resolved exactly once too: an answer (possibly by the fallback
child, recorded in the metadata) or an error naming the chosen model.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from lc_fakes import shared_router
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from langchain_routellm import ChatRouteLLM
from llamaindex_routellm import RouteLLM, StreamInterruptedError
from routellm_core import ModelCallError, RoutingDecision, ScoringError
from routellm_core.routing.batching import MicroBatcher
from routellm_core.routing.policy import RoutingPolicy

#: Upper bound for any single batch of concurrent calls: a deadlock fails the test instead of hanging it.
DEADLINE_S = 180

PROMPTS = [
    *(f"Prove that there are infinitely many primes of the form {k}n+1 and explain each step." for k in range(2, 14)),
    *(f"thanks, see you {day}!" for day in ("monday", "tuesday", "friday", "soon", "later", "tomorrow")),
    *(
        f"Write a {lang} function that merges overlapping intervals; analyse its complexity."
        for lang in ["C", "Go", "Rust"]
    ),
    *(f"What is the capital of {c}?" for c in ("France", "Peru", "Japan", "Kenya", "Chile", "Norway")),
    *(f"Translate '{w}' into German." for w in ("good morning", "cheese", "I am lost", "where is the station")),
    *(f"Summarise the causes of the {war} in three sentences." for war in ("Thirty Years' War", "Crimean War")),
    "hi",
    "Derive the Black-Scholes equation from first principles.",
    "Explain quantum entanglement to a ten-year-old, then to a physics PhD.",
    "List five fruits.",
]


# ---- instant fake children that echo the request id ---------------------------------------------------------
class EchoChat(BaseChatModel):
    """LangChain child: answers ``"<label>|<request id>"``; fails for ids divisible by ``fail_every``."""

    label: str = "echo"
    fail_every: int = 0
    stream_fail_after: int | None = None

    @property
    def model(self) -> str:
        return f"{self.label}-model"

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _answer(self, messages: list[BaseMessage]) -> str:
        request = str(messages[0].content)
        if self.fail_every and int(request.split("-")[1]) % self.fail_every == 0:
            raise ConnectionError(f"{self.label} is overloaded")
        return f"{self.label}|{request}"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._answer(messages)))])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        return self._generate(messages)

    def _pieces(self, messages: list[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        text = f"{self.label}|{messages[0].content}"
        for i, piece in enumerate((text[:3], text[3:6], text[6:])):
            if self.stream_fail_after is not None and i == self.stream_fail_after:
                raise ConnectionError("stream reset")
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        yield from self._pieces(messages)

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._pieces(messages):
            await asyncio.sleep(0)
            yield chunk


class EchoLLM(CustomLLM):
    """LlamaIndex child: answers ``"<label>|<request id>"``; fails for ids divisible by ``fail_every``."""

    label: str = "echo"
    fail_every: int = 0
    stream_fail_after: int | None = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"{self.label}-model", is_chat_model=True)

    def _answer(self, messages: Sequence[ChatMessage]) -> str:
        request = str(messages[0].content)
        if self.fail_every and int(request.split("-")[1]) % self.fail_every == 0:
            raise ConnectionError(f"{self.label} is overloaded")
        return f"{self.label}|{request}"

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise AssertionError("chat children are called through chat")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        raise AssertionError("chat children are called through chat")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self._answer(messages)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self.chat(messages)

    def _pieces(self, messages: Sequence[ChatMessage]) -> Iterator[ChatResponse]:
        text, sent = f"{self.label}|{messages[0].content}", ""
        for i, piece in enumerate((text[:3], text[3:6], text[6:])):
            if self.stream_fail_after is not None and i == self.stream_fail_after:
                raise ConnectionError("stream reset")
            sent += piece
            yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=sent), delta=piece)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._pieces(messages)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        async def gen() -> ChatResponseAsyncGen:
            for chunk in self._pieces(messages):
                await asyncio.sleep(0)
                yield chunk

        return gen()


# ---- fixtures -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def policy() -> RoutingPolicy:
    """A policy whose threshold splits PROMPTS between the children (whatever the shipped router's scores)."""
    router = shared_router()
    rates = sorted(float(p) for p in router.predict_win_rate(PROMPTS))
    mid = len(rates) // 2
    return RoutingPolicy(router, threshold=(rates[mid - 1] + rates[mid]) / 2)


@pytest.fixture(scope="module")
def expected(policy: RoutingPolicy) -> list[RoutingDecision]:
    """The sequential, one-batch decisions every concurrent call must reproduce."""
    decisions = policy.decide_batch(PROMPTS)
    assert {d.choice for d in decisions} == {"strong", "weak"}
    return decisions


def lc_router(policy: RoutingPolicy, **kwargs: Any) -> ChatRouteLLM:
    fallback = kwargs.pop("fallback", False)
    return ChatRouteLLM(
        strong=EchoChat(label="strong", **kwargs), weak=EchoChat(label="weak"), router=policy, fallback=fallback
    )


def li_router(policy: RoutingPolicy, **kwargs: Any) -> RouteLLM:
    fallback = kwargs.pop("fallback", False)
    return RouteLLM(
        strong=EchoLLM(label="strong", **kwargs), weak=EchoLLM(label="weak"), router=policy, fallback=fallback
    )


def lc_request(i: int) -> list[BaseMessage]:
    return [SystemMessage(f"req-{i}"), HumanMessage(PROMPTS[i % len(PROMPTS)])]


def li_request(i: int) -> list[ChatMessage]:
    return [
        ChatMessage(role=MessageRole.SYSTEM, content=f"req-{i}"),
        ChatMessage(role="user", content=PROMPTS[i % len(PROMPTS)]),
    ]


def check_answers(answers: dict[int, tuple[str, dict[str, Any]]], n: int, expected: list[RoutingDecision]) -> None:
    """Every id answered exactly once, by the child the sequential decision picks, with its win rate."""
    assert sorted(answers) == list(range(n))
    for i, (text, meta) in answers.items():
        label, _, echoed = text.partition("|")
        want = expected[i % len(PROMPTS)]
        assert echoed == f"req-{i}", (i, text)
        assert label == meta["choice"] == want.choice, (i, text, meta, want)
        assert meta["win_rate"] == pytest.approx(want.win_rate, abs=1e-6)


def collect(results: Sequence[tuple[int, str, dict[str, Any]]]) -> dict[int, tuple[str, dict[str, Any]]]:
    counts = Counter(i for i, _, _ in results)
    assert not [i for i, c in counts.items() if c != 1], "a request was answered more than once"
    return {i: (text, meta) for i, text, meta in results}


async def lc_round(llm: ChatRouteLLM, ids: range) -> list[tuple[int, str, dict[str, Any]]]:
    async def one(i: int) -> tuple[int, str, dict[str, Any]]:
        message = await llm.ainvoke(lc_request(i))
        return i, message.text, message.response_metadata["routellm"]

    return await asyncio.wait_for(asyncio.gather(*(one(i) for i in ids)), DEADLINE_S)


async def li_round(llm: RouteLLM, ids: range) -> list[tuple[int, str, dict[str, Any]]]:
    async def one(i: int) -> tuple[int, str, dict[str, Any]]:
        response = await llm.achat(li_request(i))
        return i, str(response.message.content), response.additional_kwargs["routellm"]

    return await asyncio.wait_for(asyncio.gather(*(one(i) for i in ids)), DEADLINE_S)


def thread_round(lc: ChatRouteLLM, li: RouteLLM, ids: range, workers: int = 32) -> list[tuple[int, str, dict]]:
    def one(i: int) -> tuple[int, str, dict[str, Any]]:
        if i % 2:
            message = lc.invoke(lc_request(i))
            return i, message.text, message.response_metadata["routellm"]
        response = li.chat(li_request(i))
        return i, str(response.message.content), response.additional_kwargs["routellm"]

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, i) for i in ids]
        return [f.result(timeout=DEADLINE_S) for f in futures]


# ---- every request answered exactly once, decisions as sequential ------------------------------------------
@pytest.mark.slow
async def test_thousands_of_concurrent_langchain_calls(policy: RoutingPolicy, expected: list) -> None:
    n = 2000
    results = await lc_round(lc_router(policy), range(n))
    check_answers(collect(results), n, expected)


async def test_thousands_of_concurrent_llamaindex_calls(policy: RoutingPolicy, expected: list) -> None:
    n = 2000
    results = await li_round(li_router(policy), range(n))
    check_answers(collect(results), n, expected)


def test_thousands_of_threaded_calls(policy: RoutingPolicy, expected: list) -> None:
    n = 2000
    results = thread_round(lc_router(policy), li_router(policy), range(n))
    check_answers(collect(results), n, expected)


def test_threaded_policy_decisions_equal_sequential_ones(policy: RoutingPolicy, expected: list) -> None:
    """Micro-batches form differently under contention; the decisions never change."""
    texts = [PROMPTS[i % len(PROMPTS)] for i in range(3000)]
    with ThreadPoolExecutor(48) as pool:
        futures = [pool.submit(policy.decide, t) for t in texts]
        decisions = [f.result(timeout=DEADLINE_S) for f in futures]
    for i, d in enumerate(decisions):
        want = expected[i % len(PROMPTS)]
        assert d.choice == want.choice and d.win_rate == pytest.approx(want.win_rate, abs=1e-6)


@pytest.mark.slow
async def test_async_and_threaded_load_at_once(policy: RoutingPolicy, expected: list) -> None:
    """Event-loop batching and thread batching share one policy without interfering."""
    lc, li = lc_router(policy), li_router(policy)
    threaded = asyncio.get_running_loop().run_in_executor(None, thread_round, lc, li, range(1000, 1600), 16)
    async_lc = lc_round(lc, range(0, 500))
    async_li = li_round(li, range(500, 1000))
    parts = await asyncio.wait_for(asyncio.gather(async_lc, async_li, threaded), DEADLINE_S)
    check_answers(collect([r for part in parts for r in part]), 1600, expected)


# ---- failing children under load ----------------------------------------------------------------------------
@pytest.mark.slow
async def test_failing_children_under_load_with_fallback(policy: RoutingPolicy, expected: list) -> None:
    n, k = 700, 7
    lc = lc_router(policy, fail_every=k, fallback=True)
    li = li_router(policy, fail_every=k, fallback=True)
    for results in await asyncio.gather(lc_round(lc, range(n)), li_round(li, range(n))):
        answers = collect(results)
        assert sorted(answers) == list(range(n))
        for i, (text, meta) in answers.items():
            want = expected[i % len(PROMPTS)]
            assert meta["choice"] == want.choice
            fell_back = want.choice == "strong" and i % k == 0
            assert text == f"{'weak' if fell_back else want.choice}|req-{i}"
            recorded = meta["fallback"]
            assert bool(recorded) == fell_back, (i, meta)


@pytest.mark.slow
async def test_failing_children_under_load_without_fallback(policy: RoutingPolicy, expected: list) -> None:
    n, k = 700, 5
    lc, li = lc_router(policy, fail_every=k), li_router(policy, fail_every=k)

    async def settle(call: Any) -> Any:
        try:
            return await call
        except ModelCallError as exc:
            return exc

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(settle(lc.ainvoke(lc_request(i))) for i in range(n)),
            *(settle(li.achat(li_request(i))) for i in range(n)),
        ),
        DEADLINE_S,
    )
    assert len(outcomes) == 2 * n
    for j, outcome in enumerate(outcomes):
        i = j % n
        want = expected[i % len(PROMPTS)]
        if want.choice == "strong" and i % k == 0:
            assert isinstance(outcome, ModelCallError), (i, outcome)
            assert "strong" in outcome.model and "strong" in str(outcome) and "ConnectionError" in str(outcome)
            assert outcome.decision.choice == "strong"
        else:
            text = outcome.text if j < n else str(outcome.message.content)
            assert text == f"{want.choice}|req-{i}"


async def test_streams_failing_midway_under_load(policy: RoutingPolicy, expected: list) -> None:
    """Hundreds of concurrent streams whose strong child drops after 2 chunks: each consumer gets exactly the
    chunks it was sent, then an error that counts them; weak streams complete."""
    n = 300
    lc = lc_router(policy, stream_fail_after=2, fallback=True)
    li = li_router(policy, stream_fail_after=2, fallback=True)

    async def lc_stream(i: int) -> tuple[str, Any]:
        received: list[str] = []
        try:
            async for chunk in lc.astream(lc_request(i)):
                received.append(chunk.text)
        except ModelCallError as exc:
            return "".join(received), exc
        return "".join(received), None

    async def li_stream(i: int) -> tuple[str, Any]:
        received: list[str] = []
        try:
            async for chunk in await li.astream_chat(li_request(i)):
                received.append(chunk.delta or "")
        except ModelCallError as exc:
            return "".join(received), exc
        return "".join(received), None

    outcomes = await asyncio.wait_for(
        asyncio.gather(*(lc_stream(i) for i in range(n)), *(li_stream(i) for i in range(n))), DEADLINE_S
    )
    for j, (text, error) in enumerate(outcomes):
        i = j % n
        full = f"{expected[i % len(PROMPTS)].choice}|req-{i}"
        if expected[i % len(PROMPTS)].choice == "weak":
            assert error is None and text == full
            continue
        assert isinstance(error, ModelCallError) and error.chunks_delivered == 2, (i, text, error)
        assert text == full[:6] and "strong" in error.model
        if j >= n:
            assert isinstance(error, StreamInterruptedError) and error.partial_text == text


# ---- no deadlock when the batch leader is interrupted -----------------------------------------------------------
class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt / SystemExit inside the batch function."""


def test_interrupted_batch_leader_releases_waiting_threads() -> None:
    started, release = threading.Event(), threading.Event()

    def fn(items: list[str]) -> list[str]:
        if "boom" in items:
            started.set()
            release.wait(10)
            raise Interrupt
        return [s.upper() for s in items]

    batcher: MicroBatcher[str, str] = MicroBatcher(fn)
    outcomes: dict[str, Any] = {}

    def call(item: str) -> None:
        try:
            outcomes[item] = batcher.submit(item)
        except BaseException as exc:
            outcomes[item] = exc

    leader = threading.Thread(target=call, args=("boom",))
    leader.start()
    assert started.wait(10)
    waiters = [threading.Thread(target=call, args=(f"w{i}",)) for i in range(5)]
    for t in waiters:
        t.start()
    time.sleep(0.2)  # the waiters queue up behind the leader's batch
    release.set()
    for t in [leader, *waiters]:
        t.join(10)
        assert not t.is_alive(), "a thread is stuck behind the interrupted batch"
    assert isinstance(outcomes["boom"], Interrupt)
    for i in range(5):
        outcome = outcomes[f"w{i}"]
        assert outcome == f"W{i}" or isinstance(outcome, ScoringError), outcome
    # the batcher works again afterwards
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(batcher.submit, ["a", "b", "c"], timeout=10)) == ["A", "B", "C"]


# ---- nothing piles up per call ---------------------------------------------------------------------------------
#: Memory blocks the interpreter may gain over the soak's two measured rounds (2,000 calls). Keeping anything per
#: call (a string, a future, a message) adds at least 2,000; event loops and thread pools made per round leave about
#: a hundred per round.
KEPT_BLOCKS_LIMIT = 1000


@pytest.mark.slow
def test_nothing_is_kept_per_call_across_repeated_rounds(policy: RoutingPolicy, expected: list) -> None:
    """A bounded soak: the same 1,000-call load five times. After two warm-up rounds, two more rounds must not leave
    an allocation per call behind (``sys.getallocatedblocks``: every live Python allocation, speed and allocator
    independent). Resident memory is measured against a limit by ``python -m bench.limits``."""
    lc, li = lc_router(policy), li_router(policy)

    def one_round(r: int) -> None:
        base = r * 10_000
        results = asyncio.run(lc_round(lc, range(base, base + 400)))
        results += asyncio.run(li_round(li, range(base + 400, base + 800)))
        results += thread_round(lc, li, range(base + 800, base + 1000), workers=16)
        answers = collect(results)
        assert len(answers) == 1000
        for i, (text, meta) in answers.items():
            assert text == f"{expected[i % len(PROMPTS)].choice}|req-{i}" and meta["choice"] in text

    one_round(0)  # warm-up: caches, thread pools, lazy imports
    one_round(1)
    gc.collect()
    before = sys.getallocatedblocks()
    one_round(2)
    one_round(3)
    gc.collect()
    kept = sys.getallocatedblocks() - before
    assert kept < KEPT_BLOCKS_LIMIT, f"{kept} memory blocks kept over 2,000 calls (tracemalloc shows where)"
    assert not policy._batcher._pending
