"""Failing models beyond the basics (those are in test_langchain_chat_model.py and test_llamaindex_llm.py):
retries are the child's own, real timeouts name the model and can fall back, and a caller that gives up on a hung
child leaves the router fully usable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from lc_fakes import shared_router
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, LLMMetadata, MessageRole
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from langchain_routellm import ChatRouteLLM
from llamaindex_routellm import RouteLLM
from routellm_core import ModelCallError
from routellm_core.routing.policy import RoutingPolicy

PROMPT = "Prove that the square root of two is irrational."
ALWAYS_STRONG = 0.0


class FlakyChat(BaseChatModel):
    """A LangChain child with its *own* retry and timeout settings, as provider chat models have.

    The first ``failures`` attempts fail; each call retries up to ``max_retries`` times. ``delay`` simulates a
    slow provider; a call slower than ``timeout`` raises ``TimeoutError`` (the client's own timeout).
    """

    label: str = "child"
    failures: int = 0
    max_retries: int = 0
    delay: float = 0.0
    timeout: float | None = None
    attempts: int = 0

    @property
    def model(self) -> str:
        return f"{self.label}-model"

    @property
    def _llm_type(self) -> str:
        return "flaky"

    def _attempt(self) -> AIMessage:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError(f"attempt {self.attempts} failed")
        return AIMessage(content=f"[{self.label}] ok after {self.attempts} attempt(s)")

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        for retry in range(self.max_retries + 1):
            if self.timeout is not None and self.delay > self.timeout:
                time.sleep(self.timeout)
                raise TimeoutError(f"request timed out after {self.timeout}s")
            try:
                return ChatResult(generations=[ChatGeneration(message=self._attempt())])
            except ConnectionError:
                if retry == self.max_retries:
                    raise
        raise AssertionError("unreachable")

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        if self.timeout is None and self.delay:
            await asyncio.sleep(self.delay)  # a hung provider without a timeout of its own
        return self._generate(messages)


class FlakyLLM(CustomLLM):
    """The LlamaIndex counterpart of :class:`FlakyChat`."""

    label: str = "child"
    failures: int = 0
    max_retries: int = 0
    delay: float = 0.0
    timeout: float | None = None
    attempts: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"{self.label}-model", is_chat_model=True)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise AssertionError("called through chat")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        raise AssertionError("called through chat")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        for retry in range(self.max_retries + 1):
            if self.timeout is not None and self.delay > self.timeout:
                time.sleep(self.timeout)
                raise TimeoutError(f"request timed out after {self.timeout}s")
            self.attempts += 1
            if self.attempts > self.failures:
                content = f"[{self.label}] ok after {self.attempts} attempt(s)"
                return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=content))
            if retry == self.max_retries:
                raise ConnectionError(f"attempt {self.attempts} failed")
        raise AssertionError("unreachable")

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        if self.timeout is None and self.delay:
            await asyncio.sleep(self.delay)
        return self.chat(messages)


@pytest.fixture(scope="module")
def router() -> Any:
    return shared_router()


def user(text: str = PROMPT) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


# ---- retries are the child's own --------------------------------------------------------------------------------
def test_child_retries_are_its_own_langchain(router: Any) -> None:
    strong = FlakyChat(label="strong", failures=2, max_retries=2)
    llm = ChatRouteLLM(strong=strong, weak=FlakyChat(label="weak"), router=router, threshold=ALWAYS_STRONG)
    assert llm.invoke(PROMPT).text == "[strong] ok after 3 attempt(s)"
    assert strong.attempts == 3  # exactly the child's own 1 + 2 retries: the router adds none

    stingy = FlakyChat(label="strong", failures=2, max_retries=1)
    llm = ChatRouteLLM(strong=stingy, weak=FlakyChat(label="weak"), router=router, threshold=ALWAYS_STRONG)
    with pytest.raises(ModelCallError, match=r"strong-model.*ConnectionError: attempt 2 failed"):
        llm.invoke(PROMPT)
    assert stingy.attempts == 2  # and removes none


def test_child_retries_are_its_own_llamaindex(router: Any) -> None:
    strong = FlakyLLM(label="strong", failures=2, max_retries=2)
    llm = RouteLLM(strong=strong, weak=FlakyLLM(label="weak"), router=router, threshold=ALWAYS_STRONG)
    assert llm.chat(user()).message.content == "[strong] ok after 3 attempt(s)"
    assert strong.attempts == 3

    stingy = FlakyLLM(label="strong", failures=2, max_retries=1)
    llm = RouteLLM(strong=stingy, weak=FlakyLLM(label="weak"), router=router, threshold=ALWAYS_STRONG)
    with pytest.raises(ModelCallError, match=r"strong-model.*ConnectionError"):
        llm.chat(user())
    assert stingy.attempts == 2


# ---- real timeouts --------------------------------------------------------------------------------------------
def test_child_timeouts_name_the_model_and_can_fall_back(router: Any) -> None:
    slow = {"delay": 5.0, "timeout": 0.05}
    lc = ChatRouteLLM(
        strong=FlakyChat(label="strong", **slow), weak=FlakyChat(label="weak"), router=router, threshold=ALWAYS_STRONG
    )
    with pytest.raises(ModelCallError, match=r"strong model 'strong-model' failed: TimeoutError") as info:
        lc.invoke(PROMPT)
    assert isinstance(info.value.__cause__, TimeoutError) and info.value.decision.choice == "strong"
    answer = lc.model_copy(update={"fallback": True}).invoke(PROMPT)
    meta = answer.response_metadata["routellm"]
    assert answer.text.startswith("[weak]") and meta["fallback"] and meta["fallback_error"] == "TimeoutError"

    li = RouteLLM(
        strong=FlakyLLM(label="strong", **slow), weak=FlakyLLM(label="weak"), router=router, threshold=ALWAYS_STRONG
    )
    with pytest.raises(ModelCallError, match=r"strong model 'strong-model' failed: TimeoutError"):
        li.chat(user())
    li_fallback = RouteLLM(
        strong=FlakyLLM(label="strong", **slow),
        weak=FlakyLLM(label="weak"),
        router=router,
        threshold=ALWAYS_STRONG,
        fallback=True,
    )
    record = li_fallback.chat(user()).additional_kwargs["routellm"]
    assert record["served"] == "weak" and record["fallback_error"] == "TimeoutError"


# ---- a caller giving up on a hung child ----------------------------------------------------------------------------
async def test_cancelled_calls_on_a_hung_child_leave_the_router_usable(router: Any) -> None:
    """Callers time out on a child that hangs (no timeout of its own); the shared policy and its micro-batching
    stay healthy, and the next calls through it are answered."""
    policy = RoutingPolicy(router, threshold=ALWAYS_STRONG)
    hung = {"delay": 3600.0}
    lc = ChatRouteLLM(strong=FlakyChat(label="strong", **hung), weak=FlakyChat(label="weak"), router=policy)
    li = RouteLLM(strong=FlakyLLM(label="strong", **hung), weak=FlakyLLM(label="weak"), router=policy)
    calls = [lc.ainvoke(f"{PROMPT} #{i}") for i in range(50)] + [li.achat(user(f"{PROMPT} #{i}")) for i in range(50)]
    outcomes = await asyncio.gather(*(asyncio.wait_for(c, 0.5) for c in calls), return_exceptions=True)
    assert all(isinstance(o, (TimeoutError, asyncio.TimeoutError)) for o in outcomes), outcomes[:3]

    healthy_lc = ChatRouteLLM(strong=FlakyChat(label="strong"), weak=FlakyChat(label="weak"), router=policy)
    healthy_li = RouteLLM(strong=FlakyLLM(label="strong"), weak=FlakyLLM(label="weak"), router=policy)
    answers = await asyncio.wait_for(
        asyncio.gather(
            *(healthy_lc.ainvoke(f"hello {i}") for i in range(20)),
            *(healthy_li.achat(user(f"hello {i}")) for i in range(20)),
        ),
        60,
    )
    texts = [a.text for a in answers[:20]] + [str(a.message.content) for a in answers[20:]]
    assert all(t.startswith("[strong] ok") for t in texts)
    decisions = await asyncio.wait_for(asyncio.gather(*(li.adecide(user(f"q {i}")) for i in range(20))), 60)
    assert all(d.choice == "strong" for d in decisions)


def test_langchain_mid_stream_failure_reports_the_partial_text() -> None:
    """The chunks already delivered are accounted for: count and text, and nothing is retried."""
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    from langchain_routellm import ChatRouteLLM
    from routellm_core import StreamInterruptedError

    calls: list[str] = []

    class Breaks(GenericFakeChatModel):
        def _stream(self, *args, **kwargs):
            calls.append("stream")
            yield ChatGenerationChunk(message=AIMessageChunk(content="Hel"))
            yield ChatGenerationChunk(message=AIMessageChunk(content="lo"))
            raise RuntimeError("connection reset")

    llm = ChatRouteLLM(
        strong=Breaks(messages=iter([])),
        weak=Breaks(messages=iter([])),
        router="random",
        fallback=True,
        strong_name="S",
        weak_name="W",
    )
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in llm.stream("a prompt to stream"):
            received.append(chunk.content)
    assert info.value.chunks_delivered == 2 == len(received)
    assert info.value.partial_text == "".join(received) == "Hello"
    assert info.value.model in {"S", "W"} and calls == ["stream"]  # no retry on the other model mid-stream
