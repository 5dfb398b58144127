"""LlamaIndex front-end gaps: the priced decision record on a stream's last chunk (two models, ``models=[...]``,
escalation, query engines), and bugs found by a bug hunt of agents, tools, structured output and instrumentation.

The router is real (the shipped ``default``, or the one fitted in the tests where a choice must be known in
advance); only the strong / weak children are stand-ins, which report token usage as LlamaIndex integrations do.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pytest
from fitted_router import TRIVIA
from li_fakes import Recorder, user
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler, TokenCountingHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.query_engine import RetrieverQueryEngine

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding, StreamInterruptedError
from llamaindex_routellm._outputs import answer_text
from routellm_core import load_router
from routellm_core.escalation import Escalation
from routellm_core.routers.profiles import ModelPrior

QUESTION = "Prove that the square root of two is irrational."
#: USD per million input / output tokens, given to every router below.
PRICES = {"big": (10.0, 30.0), "small": (0.5, 1.5), "other-small": (0.2, 0.4)}
PRIORS = {"small": ModelPrior(like="chatglm-6b"), "big": ModelPrior(like="o1-preview-2024-09-12")}
#: The token counts each stand-in reports for an answer.
USAGE = {"big": (120, 40), "small": (100, 30), "other-small": (90, 20)}


def usd(model: str) -> float:
    """The price of one answer of ``model``, from the test's own tables."""
    tokens_in, tokens_out = USAGE[model]
    price_in, price_out = PRICES[model]
    return (tokens_in * price_in + tokens_out * price_out) / 1e6


# ---- stand-ins: metered LlamaIndex LLMs ------------------------------------------------------------------
class Metered(MockLLM):
    """A completion-style ``MockLLM`` named ``name`` answering ``reply`` (default ``"<name> says hello"``), streamed
    word by word. Like LlamaIndex integrations, its answer reports token usage: ``additional_kwargs`` token counts
    on a whole answer and on a stream's last chunk only (a stream knows its usage once it ended)."""

    name: str = "metered"
    reply: str = ""

    def __init__(self, name: str, reply: str | None = None) -> None:
        super().__init__()
        self.name, self.reply = name, reply if reply is not None else f"{name} says hello"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name, is_chat_model=self.is_chat_model)

    def _usage(self) -> dict[str, int]:
        tokens_in, tokens_out = USAGE[self.name]
        return {"prompt_tokens": tokens_in, "completion_tokens": tokens_out}

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.reply, additional_kwargs=self._usage())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        words = self.reply.split(" ")

        def gen() -> CompletionResponseGen:
            text = ""
            for i, word in enumerate(words):
                delta = word if i == 0 else f" {word}"
                text += delta
                extra = self._usage() if i == len(words) - 1 else {}
                yield CompletionResponse(text=text, delta=delta, additional_kwargs=extra)

        return gen()


class MeteredChat(Metered):
    """A chat model reporting usage as OpenAI's LlamaIndex LLM does: ``raw["usage"]`` on the stream's last chunk."""

    def __init__(self, name: str, reply: str | None = None) -> None:
        super().__init__(name, reply)
        self.is_chat_model = True

    def _chunks(self, messages: Sequence[ChatMessage]) -> list[ChatResponse]:
        words = self.reply.split(" ")
        chunks, text = [], ""
        for i, word in enumerate(words):
            delta = word if i == 0 else f" {word}"
            text += delta
            last = i == len(words) - 1
            raw = {"usage": self._usage()} if last else None
            chunks.append(ChatResponse(message=ChatMessage(role="assistant", content=text), delta=delta, raw=raw))
        return chunks

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        whole = self._chunks(messages)[-1]
        return ChatResponse(message=whole.message, raw=whole.raw)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        chunks = self._chunks(messages)

        def gen() -> ChatResponseGen:
            yield from chunks

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        chunks = self._chunks(messages)

        async def gen() -> ChatResponseAsyncGen:
            for chunk in chunks:
                yield chunk

        return gen()


@pytest.fixture(scope="module")
def router_model() -> Any:
    return load_router("default")


async def all_streams(llm: RouteLLM, text: str) -> list[list[Any]]:
    """The chunks of the four streamed call forms, each asked ``text``."""
    return [
        list(llm.stream_chat([user(text)])),
        [c async for c in await llm.astream_chat([user(text)])],
        list(llm.stream_complete(text)),
        [c async for c in await llm.astream_complete(text)],
    ]


def record_of(response: Any) -> dict[str, Any]:
    return response.additional_kwargs["routellm"]


# ---- 1. the priced record on a stream's last chunk ------------------------------------------------------
@pytest.mark.parametrize("child", [Metered, MeteredChat])
@pytest.mark.parametrize(("threshold", "served"), [(0.0, "big"), (1.0, "small")])
async def test_last_streamed_chunk_carries_the_priced_record(
    router_model: Any, child: type, threshold: float, served: str
) -> None:
    llm = RouteLLM(strong=child("big"), weak=child("small"), router=router_model, threshold=threshold, prices=PRICES)
    whole = record_of(llm.complete(QUESTION))
    assert whole["cost"] == pytest.approx(usd(served)), "precondition: a whole answer is priced"
    for chunks in await all_streams(llm, QUESTION):
        # relayed as they come, then a closing chunk with no text: the last one again, carrying the priced record
        assert len(chunks) == 4 and "".join(c.delta for c in chunks) == f"{served} says hello"
        assert chunks[-1].delta == "" and answer_text(chunks[-1]) == answer_text(chunks[-2]) == f"{served} says hello"
        assert chunks[-1].raw == chunks[-2].raw  # the provider's usage, where handlers (TokenCountingHandler) read it
        records = [record_of(c) for c in chunks]
        assert {r["decision_id"] for r in records} == {records[0]["decision_id"]}
        assert all(r["model"] == served for r in records)
        # earlier chunks carry the routing record, unpriced (the usage is not known yet)...
        assert all(r["cost"] is None and r["attempts"][-1]["output_tokens"] is None for r in records[:-1])
        # ...the last one the record priced from the whole stream's usage
        last = records[-1]
        assert (last["attempts"][-1]["input_tokens"], last["attempts"][-1]["output_tokens"]) == USAGE[served]
        assert last["cost"] == pytest.approx(usd(served)) == last["attempts"][-1]["cost"]


async def test_ladder_stream_ends_priced(router_model: Any) -> None:
    for objective, chosen in (("max_cost=0", "small"), ("margin=0.0", "big")):
        llm = RouteLLM(
            models={"small": MeteredChat("small"), "big": MeteredChat("big")},
            router=router_model,
            objective=objective,
            priors=PRIORS,
            prices=PRICES,
        )
        assert llm.choose_model(QUESTION).chosen == chosen, "precondition"
        for chunks in await all_streams(llm, QUESTION):
            last = record_of(chunks[-1])
            assert last["ladder"]["chosen"] == chosen and last["model"] == chosen
            assert last["cost"] == pytest.approx(usd(chosen))
            assert record_of(chunks[0])["cost"] is None


def escalating(known_router: Any, second_reply: str) -> RouteLLM:
    m = {
        "big": Metered("big", "Strong: 12"),
        "small": Metered("small", "It is 42."),
        "other-small": Metered("other-small", second_reply),
    }
    llm = RouteLLM(
        strong=m["big"],
        weak=m["small"],
        router=known_router,
        strong_fraction=0.5,
        escalate=Escalation(second=m["other-small"]),
        prices=PRICES,
    )
    return llm


async def test_escalated_stream_ends_with_every_attempt_priced(known_router: Any) -> None:
    llm = escalating(known_router, second_reply="41")  # the second cheap answer disagrees: escalate
    for chunks in await all_streams(llm, TRIVIA[2]):
        assert "".join(c.delta for c in chunks) == "Strong: 12"
        last = record_of(chunks[-1])
        assert last["escalated"] and last["model"] == "big"
        assert [(a["model"], a["role"], a["cost"]) for a in last["attempts"]] == [
            ("small", "answer", pytest.approx(usd("small"))),
            ("other-small", "check", pytest.approx(usd("other-small"))),
            ("big", "escalation", pytest.approx(usd("big"))),
        ]
        assert last["cost"] == pytest.approx(usd("small") + usd("other-small") + usd("big"))
        assert record_of(chunks[0])["attempts"][-1]["cost"] is None, "the strong stream's usage comes at its end"
    kept = escalating(known_router, second_reply="It is 42.")  # the check agrees: the weak answer is relayed
    for chunks in await all_streams(kept, TRIVIA[2]):
        assert "".join(c.delta for c in chunks) == "It is 42."
        assert record_of(chunks[-1])["cost"] == pytest.approx(usd("small") + usd("other-small"))


async def test_query_engine_stream_end_event_carries_the_priced_record(router_model: Any, events: Recorder) -> None:
    embed = RouteLLMEmbedding()
    index = VectorStoreIndex.from_documents([Document(text="The Eiffel Tower is 330 metres tall.")], embed_model=embed)
    llm = RouteLLM(strong=MeteredChat("big"), weak=MeteredChat("small"), router=router_model, threshold=0.0)
    llm = llm.model_copy(update={"prices": PRICES})
    streaming = index.as_query_engine(llm=llm, streaming=True).query("How tall is the Eiffel Tower?")
    assert "".join(streaming.response_gen) == "big says hello"
    (end,) = [e for e in events.of(LLMChatEndEvent) if e.span_id.startswith("RouteLLM.")]
    assert record_of(end.response)["cost"] == pytest.approx(usd("big"))


def test_stream_failing_midway_still_relays_every_chunk_before_the_error(router_model: Any) -> None:
    class Breaking(Metered):
        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
            def gen() -> CompletionResponseGen:
                yield CompletionResponse(text="one", delta="one")
                yield CompletionResponse(text="one two", delta=" two")
                raise ConnectionError("reset by peer")

            return gen()

    llm = RouteLLM(strong=Breaking("big"), weak=Metered("small"), router=router_model, threshold=0.0)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in llm.stream_complete(QUESTION):
            received.append(chunk.delta)
    assert received == ["one", " two"]  # every chunk reaches the caller before the error, and no closing chunk
    assert info.value.chunks_delivered == 2 and info.value.partial_text == "one two"


# ---- 2. bug hunt ----------------------------------------------------------------------------------------
@pytest.fixture
def global_callbacks() -> Generator[TokenCountingHandler, None, None]:
    """``Settings.callback_manager`` with a token counter, as LlamaIndex's docs set it up (reset afterwards)."""
    counter = TokenCountingHandler()
    Settings.callback_manager = CallbackManager([counter])
    try:
        yield counter
    finally:
        Settings._callback_manager = None  # the getter would build a new one


def trace_ids(llm: Any) -> int:
    return sum(len(ids) for ids in llm.callback_manager.trace_map.values())


async def test_children_under_global_callbacks_keep_no_trace_of_routed_calls(
    router_model: Any, global_callbacks: TokenCountingHandler
) -> None:
    """Once ``Settings.callback_manager`` has a handler, every LLM built afterwards shares its handlers. A child's
    legacy trace map, never reset while the child is only called beneath the router, grew by one id per routed
    call, forever (60 ids after 30 queries): the router cleared only maps without handlers."""
    strong, weak = Metered("big"), Metered("small")
    assert strong.callback_manager.handlers == [global_callbacks], "precondition: the child shares the handler"
    llm = RouteLLM(strong=strong, weak=weak, router=router_model, threshold=0.0)
    index = VectorStoreIndex.from_documents(
        [Document(text="The Eiffel Tower is 330 metres tall.")], embed_model=RouteLLMEmbedding()
    )
    for i in range(5):
        llm.complete(f"question {i}")
        await llm.achat([user(f"question {i}")])
        list(llm.stream_chat([user(f"question {i}")]))
        [c async for c in await llm.astream_complete(f"question {i}")]
        index.as_query_engine(llm=llm).query(f"How tall is the Eiffel Tower? {i}")  # inside the engine's trace
    assert trace_ids(strong) == 0 and trace_ids(weak) == 0
    # the handler still sees the child's call (and the router's own: LlamaIndex's counter counts both)
    before = len(global_callbacks.llm_token_counts)
    llm.complete("once more")
    assert len(global_callbacks.llm_token_counts) - before == 2 and trace_ids(strong) == 0


def test_a_manager_shared_with_the_query_engine_keeps_the_childrens_events_for_its_trace(router_model: Any) -> None:
    """The legacy setup: one ``CallbackManager([LlamaDebugHandler()])`` given to the children and to the query
    engine. The engine's trace is that manager's, and its handler reads the manager's map when the trace ends: the
    children's LLM events must still be in it then (forgetting them is only for maps nobody reads)."""
    debug = LlamaDebugHandler()
    shared = CallbackManager([debug])
    strong, weak = Metered("big"), Metered("small")
    strong.callback_manager = weak.callback_manager = shared
    llm = RouteLLM(strong=strong, weak=weak, router=router_model, threshold=0.0)
    index = VectorStoreIndex.from_documents(
        [Document(text="The Eiffel Tower is 330 metres tall.")], embed_model=RouteLLMEmbedding()
    )
    engine = RetrieverQueryEngine.from_args(index.as_retriever(), llm=llm, callback_manager=shared)
    for i in range(3):
        engine.query(f"How tall is the Eiffel Tower? {i}")
        llm_events = {e.id_ for e in debug.get_events(CBEventType.LLM)}
        traced = {i for ids in debug._trace_map.values() for i in ids}
        assert llm_events and llm_events & traced, "the child's LLM event is missing from the engine's trace"
        debug.flush_event_logs()
    assert trace_ids(strong) < 20  # reset by the engine's next trace: bounded
