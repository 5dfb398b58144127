"""RouteLLM as a LlamaIndex LLM: routing, the eight call forms, metadata, tools, errors, instrumentation.

The router is real (the shipped default); only the strong / weak children are LlamaIndex mock LLMs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import AsyncGenerator, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fitted_router import HARD, TRIVIA, expected_side
from hypothesis import given, settings
from hypothesis import strategies as st
from li_fakes import Recorder, user
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    ImageBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM, MockFunctionCallingLLMWithChatMemoryOfLastCall
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import (
    RouteLLM,
    RoutingDecisionEvent,
    RoutingFallbackEvent,
    StreamInterruptedError,
    rag_query,
    routing_text,
)
from routellm_core import (
    CheckpointError,
    InvalidInputError,
    InvalidThresholdError,
    ModelCallError,
    UnknownRouterError,
    load_router,
)
from routellm_core.routing.policy import RoutingPolicy

ROUTER = "default"  # the shipped router; "random" only where a test needs a router without calibration

ALWAYS_STRONG = 0.0
ALWAYS_WEAK = 1.0


# ---- children: LlamaIndex mock LLMs with a label, a call count and scripted failures ---------------------
class ScriptedLLM(MockLLM):
    """A completion-style ``MockLLM`` answering ``[label] answer``, optionally failing or answering empty."""

    label: str = "mock"
    error: Exception | None = None
    empty: bool = False
    stream_fail_after: int | None = None
    calls: int = 0

    def __init__(self, label: str, **fields: Any) -> None:
        super().__init__()
        self.label = label
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"{self.label}-model", is_chat_model=self.is_chat_model)

    def _answer(self) -> str:
        return "" if self.empty else f"[{self.label}] answer"

    def _pieces(self) -> list[str]:
        return [] if self.empty else [f"[{self.label}] ", "ans", "wer"]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return CompletionResponse(text=self._answer())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self.calls += 1

        def gen() -> CompletionResponseGen:
            text = ""
            for i, piece in enumerate(self._pieces() or [""]):  # an empty answer: one chunk without text
                if self.error is not None and i == (self.stream_fail_after or 0):
                    raise self.error
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return gen()


class ScriptedChatLLM(ScriptedLLM):
    """A chat model: answers through ``chat`` only; its ``complete`` must never be called by the router."""

    def __init__(self, label: str, **fields: Any) -> None:
        super().__init__(label, **fields)
        self.is_chat_model = True

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise AssertionError("completion must be derived from the chat model's chat")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self._answer()))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        self.calls += 1

        def gen() -> ChatResponseGen:
            text = ""
            for i, piece in enumerate(self._pieces()):
                if self.error is not None and i == (self.stream_fail_after or 0):
                    raise self.error
                text += piece
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=piece)

        return gen()


def multiply(a: int = 6, b: int = 7) -> int:
    """Multiply two integers."""
    return a * b


QUESTION = "Prove that the square root of two is irrational."


# ---- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def router_model() -> Any:
    return load_router(ROUTER)


@pytest.fixture
def make(router_model: Any) -> Any:
    def build(strong: Any = None, weak: Any = None, **kwargs: Any) -> RouteLLM:
        return RouteLLM(
            strong=strong if strong is not None else ScriptedLLM("strong"),
            weak=weak if weak is not None else ScriptedLLM("weak"),
            router=kwargs.pop("router", router_model),
            **kwargs,
        )

    return build


@pytest.fixture
def spans() -> Generator[SimpleSpanHandler, None, None]:
    handler = SimpleSpanHandler(open_spans={}, completed_spans=[], dropped_spans=[], current_span_ids={})
    root = get_dispatcher()
    root.add_span_handler(handler)
    yield handler
    root.span_handlers.remove(handler)


# ---- construction and metadata ---------------------------------------------------------------------------
def test_minimal_constructor_names(router_model: Any) -> None:
    strong, weak = ScriptedLLM("strong"), ScriptedLLM("weak")
    llm = RouteLLM(strong=strong, weak=weak, router=router_model, threshold=0.5)
    assert llm.strong is strong and llm.weak is weak
    assert llm.threshold == 0.5 and llm.strong_fraction is None
    assert llm.router_name == router_model.name
    assert RouteLLM.class_name() == "RouteLLM"
    assert llm.to_dict()["router"] == router_model.name
    assert "embedder" not in llm.to_dict()


def test_default_threshold_routes_half_the_calibration_traffic(make: Any, router_model: Any) -> None:
    assert make().threshold == pytest.approx(router_model.threshold_for(0.5)) == make().routing_policy.threshold
    assert make().threshold > 0.55, "the shipped router scores nearly everything above 0.5"


def test_default_router_is_the_constructor_default() -> None:
    llm = RouteLLM(strong=ScriptedLLM("strong"), weak=ScriptedLLM("weak"))
    assert llm.router == "default"
    assert llm.metadata.model_name == f"routellm:{llm.router_name}"


def test_strong_fraction_uses_calibration(router_model: Any) -> None:
    llm = RouteLLM(strong=ScriptedLLM("s"), weak=ScriptedLLM("w"), router=router_model, strong_fraction=0.3)
    assert llm.strong_fraction == 0.3 and llm.threshold is None
    # the calibrated threshold for 30% strong calls, not the fraction itself (the shipped scores sit above 0.5)
    assert llm.routing_policy.threshold == pytest.approx(router_model.threshold_for(0.3))
    assert llm.routing_policy.threshold > 0.5
    assert llm.to_payload()["threshold"] == llm.routing_policy.threshold


def test_strong_fraction_with_a_known_router(known_router: Any) -> None:
    """With a router fitted in the test (see ``fitted_router``), ``strong_fraction=0.5`` sends held-out proofs to
    strong and trivia to weak, and ``decide`` says so without calling either model."""
    strong, weak = ScriptedLLM("strong"), ScriptedLLM("weak")
    llm = RouteLLM(strong=strong, weak=weak, router=known_router, strong_fraction=0.5)
    assert [llm.decide(p).choice for p in HARD + TRIVIA] == [expected_side(p) for p in HARD + TRIVIA]
    assert strong.calls == weak.calls == 0
    for prompt in HARD[:3] + TRIVIA[:3]:
        assert llm.complete(prompt).text.startswith(f"[{expected_side(prompt)}]")
    assert strong.calls == weak.calls == 3


def test_strong_fraction_without_calibration_raises() -> None:
    with pytest.raises(CheckpointError):
        RouteLLM(strong=ScriptedLLM("s"), weak=ScriptedLLM("w"), router="random", strong_fraction=0.3)


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold": 1.5}, {"threshold": -0.1}, {"threshold": float("nan")}, {"threshold": 0.5, "strong_fraction": 0.2}],
)
def test_bad_thresholds(make: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidThresholdError):
        make(**kwargs)


def test_unknown_router() -> None:
    with pytest.raises(UnknownRouterError):
        RouteLLM(strong=ScriptedLLM("s"), weak=ScriptedLLM("w"), router="no-such-router")


@pytest.mark.parametrize("ladder", [False, True])
def test_misspelt_option_is_an_error_naming_the_nearest(router_model: Any, ladder: bool) -> None:
    kids = {"strong": ScriptedLLM("s"), "weak": ScriptedLLM("w")}
    members = {"models": list(kids.values())} if ladder else kids
    with pytest.raises(InvalidInputError, match=r"RouteLLM: unknown option 'treshold' \(did you mean 'threshold'\?\)$"):
        RouteLLM(**members, router=router_model, treshold=0.0)
    with pytest.raises(
        InvalidInputError,
        match=r"unknown options 'objectve' \(did you mean 'objective'\?\), 'escalte' \(did you mean 'escalate'\?\)$",
    ):
        RouteLLM(**members, router=router_model, objectve="budget=0.01", escalte=True)
    with pytest.raises(ValueError, match=r"unknown option 'fallbak' \(did you mean 'fallback'\?\)"):
        RouteLLM.model_validate({**kids, "router": router_model, "fallbak": True})


def test_llamaindex_fields_still_construct_and_copies_check_their_update(router_model: Any) -> None:
    from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
    from llama_index.core.types import PydanticProgramMode

    debug = LlamaDebugHandler()
    llm = RouteLLM(
        ScriptedLLM("strong"),
        ScriptedLLM("weak"),
        router_model,
        ALWAYS_WEAK,
        callback_manager=CallbackManager([debug]),
        system_prompt="Answer briefly.",
        messages_to_prompt=lambda messages: "\n".join(str(m.content) for m in messages),
        completion_to_prompt=lambda completion: f"Q: {completion}",
        output_parser=None,
        pydantic_program_mode=PydanticProgramMode.DEFAULT,
    )
    assert llm.system_prompt == "Answer briefly." and llm.completion_to_prompt("x") == "Q: x"
    assert llm.complete("What is 2+2?").text.startswith("[weak]")
    assert debug.get_event_pairs(CBEventType.LLM), "the callback manager saw the routed call"
    with pytest.raises(InvalidInputError, match=r"RouteLLM.model_copy: unknown option 'treshold' \(did you mean"):
        llm.model_copy(update={"treshold": ALWAYS_STRONG})
    assert llm.model_copy(update={"threshold": ALWAYS_STRONG}).complete("What is 2+2?").text.startswith("[strong]")


def test_shared_routing_policy(router_model: Any) -> None:
    policy = RoutingPolicy(router_model, threshold=0.3)
    llm = RouteLLM(strong=ScriptedLLM("s"), weak=ScriptedLLM("w"), router=policy)
    assert llm.routing_policy is policy and llm.threshold == 0.3
    # A shared policy carries its own threshold: adding one is refused, as in LangChain, not silently rebuilt.
    with pytest.raises(InvalidThresholdError, match="carries its own threshold"):
        RouteLLM(strong=ScriptedLLM("s"), weak=ScriptedLLM("w"), router=policy, threshold=0.7)


class SizedLLM(ScriptedLLM):
    context_window: int = 4096
    num_output: int = 256
    function_calling: bool = False

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.num_output,
            model_name=f"{self.label}-model",
            is_function_calling_model=self.function_calling,
        )


def test_metadata_is_what_both_children_honour(make: Any) -> None:
    llm = make(SizedLLM("s", context_window=128_000, num_output=4096), SizedLLM("w", context_window=8192))
    meta = llm.metadata
    assert (meta.context_window, meta.num_output) == (8192, 256)
    assert meta.is_chat_model is True
    assert meta.is_function_calling_model is False
    assert meta.model_name == f"routellm:{llm.router_name}"


def test_metadata_ignores_unknown_sizes(make: Any) -> None:
    llm = make(SizedLLM("s", num_output=-1), SizedLLM("w", num_output=1024))
    assert llm.metadata.num_output == 1024
    assert make(MockLLM(), MockLLM()).metadata.num_output > 0


def test_function_calling_needs_both_children(make: Any) -> None:
    assert make(MockFunctionCallingLLM(), MockFunctionCallingLLM()).metadata.is_function_calling_model
    assert not make(MockFunctionCallingLLM(), MockLLM()).metadata.is_function_calling_model
    assert not make(MockLLM(), MockFunctionCallingLLM()).metadata.is_function_calling_model


# ---- routing texts ----------------------------------------------------------------------------------------
def test_routing_text_latest_user_message() -> None:
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content="You are terse."),
        user("first question"),
        ChatMessage(role=MessageRole.ASSISTANT, content="first answer"),
        user("second question"),
    ]
    assert routing_text(messages) == "second question"
    assert routing_text(messages, "conversation") == (
        "user: first question\n\nassistant: first answer\n\nuser: second question"
    )


def test_tool_result_is_never_the_routing_text() -> None:
    messages = [
        user(QUESTION),
        ChatMessage(
            role=MessageRole.ASSISTANT,
            blocks=[ToolCallBlock(tool_call_id="1", tool_name="multiply", tool_kwargs={"a": 6})],
        ),
        ChatMessage(role=MessageRole.TOOL, content="42", additional_kwargs={"tool_call_id": "1"}),
    ]
    assert routing_text(messages) == QUESTION
    assert routing_text(messages, "conversation") == f"user: {QUESTION}"
    with pytest.raises(InvalidInputError, match="no user message"):
        routing_text(messages[1:])


def test_routing_text_callable() -> None:
    assert routing_text([user("Context: x\nQuery: what?")], lambda ms: ms[-1].content.split("Query:")[-1]) == (" what?")
    with pytest.raises(InvalidInputError, match="callable"):
        routing_text([user("hi")], lambda ms: "  ")


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty"),
        ([ChatMessage(role=MessageRole.SYSTEM, content="be nice")], "no user message"),
        ([user("   ")], "no text"),
        ([ChatMessage(role=MessageRole.USER, blocks=[])], "no text"),
        ([ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="http://x/y.png")])], "no text"),
        (["just a string"], "not a LlamaIndex ChatMessage"),
    ],
)
def test_unroutable_messages(messages: list[Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        routing_text(messages)


def test_non_text_blocks_are_skipped_as_in_langchain() -> None:
    blocks = [
        TextBlock(text=" what is this? "),
        ImageBlock(url="http://x/y.png"),
        TextBlock(text="  "),
        TextBlock(text="a cat"),
    ]
    assert routing_text([ChatMessage(role=MessageRole.USER, blocks=blocks)]) == "what is this?\na cat"


def test_rag_query_extracts_the_question_from_llamaindex_prompts() -> None:
    from llama_index.core.prompts.chat_prompts import CHAT_REFINE_PROMPT, CHAT_TEXT_QA_PROMPT
    from llama_index.core.prompts.default_prompts import DEFAULT_REFINE_PROMPT, DEFAULT_TEXT_QA_PROMPT

    context = "Query: a decoy line inside the retrieved context\nmore context"
    question = "How tall is the Eiffel Tower?"
    qa = CHAT_TEXT_QA_PROMPT.format_messages(context_str=context, query_str=question)
    assert routing_text(qa, "rag_query") == question
    assert routing_text(qa, "last_user").startswith("Context information is below.")
    refine = CHAT_REFINE_PROMPT.format_messages(context_msg=context, query_str=question, existing_answer="330 m")
    assert routing_text(refine, "rag_query") == question
    assert rag_query(DEFAULT_TEXT_QA_PROMPT.format(context_str=context, query_str=question)) == question
    assert rag_query(DEFAULT_REFINE_PROMPT.format(context_msg=context, query_str=question, existing_answer="x")) == (
        question
    )
    assert rag_query("no template here") == "no template here"
    assert routing_text([user("plain question")], "rag_query") == "plain question"


def test_completion_prompts_follow_route_on(make: Any) -> None:
    from llama_index.core.prompts.default_prompts import DEFAULT_TEXT_QA_PROMPT

    prompt = DEFAULT_TEXT_QA_PROMPT.format(context_str="The tower is 330 m tall.", query_str=QUESTION)
    llm = make(route_on="rag_query")
    assert llm.complete(prompt).additional_kwargs["routellm"]["win_rate"] == pytest.approx(
        llm.decide(QUESTION).win_rate
    )
    custom = make(route_on=lambda messages: messages[-1].content.upper())
    assert custom.decide("hello").win_rate == pytest.approx(custom.decide("HELLO").win_rate)
    assert custom.to_dict()["route_on"] == "test_completion_prompts_follow_route_on.<locals>.<lambda>"


_roles = st.sampled_from([MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL, MessageRole.SYSTEM])
_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_roles, _texts), min_size=1, max_size=8))
def test_routing_text_property(turns: list[tuple[MessageRole, str]]) -> None:
    messages = [ChatMessage(role=role, content=text) for role, text in turns]
    users = [text for role, text in turns if role == MessageRole.USER]
    if not users:
        with pytest.raises(InvalidInputError):
            routing_text(messages)
        return
    said = [text.strip() for text in users if text.strip()]
    if not said:
        with pytest.raises(InvalidInputError):
            routing_text(messages)
        return
    assert routing_text(messages) == said[-1]
    conversation = routing_text(messages, "conversation")
    assert all(f"user: {text}" in conversation for text in said)
    assert not any(f"tool: {text}" in conversation for role, text in turns if role == MessageRole.TOOL)


# ---- the eight call forms ---------------------------------------------------------------------------------
def _check_record(record: dict[str, Any], llm: RouteLLM, text: str, choice: str) -> None:
    expected = llm.decide(text)
    assert record["router"] == llm.router_name
    assert record["win_rate"] == pytest.approx(expected.win_rate)
    assert record["threshold"] == llm.routing_policy.threshold
    assert record["choice"] == choice == record["served"]
    assert record["model"] == f"{choice}-model"
    assert record["fallback"] is False and record["fallback_from"] is None and record["fallback_error"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", record["decision_id"])


@pytest.mark.parametrize("child", [ScriptedLLM, ScriptedChatLLM])
@pytest.mark.parametrize(("threshold", "choice"), [(ALWAYS_STRONG, "strong"), (ALWAYS_WEAK, "weak")])
async def test_every_call_form_routes_and_records(make: Any, child: type, threshold: float, choice: str) -> None:
    strong, weak = child("strong"), child("weak")
    llm = make(strong, weak, threshold=threshold)
    messages = [ChatMessage(role=MessageRole.SYSTEM, content="Be brief."), user(QUESTION)]
    answer = f"[{choice}]"

    responses: list[Any] = [
        llm.chat(messages),
        await llm.achat(messages),
        llm.complete(QUESTION),
        await llm.acomplete(QUESTION),
    ]
    for response in responses:
        assert str(response.message.content if isinstance(response, ChatResponse) else response.text).startswith(answer)
        _check_record(response.additional_kwargs["routellm"], llm, QUESTION, choice)

    streams: list[list[Any]] = [
        list(llm.stream_chat(messages)),
        [c async for c in await llm.astream_chat(messages)],
        list(llm.stream_complete(QUESTION)),
        [c async for c in await llm.astream_complete(QUESTION)],
    ]
    for chunks in streams:
        assert "".join(c.delta for c in chunks).startswith(answer)
        for chunk in chunks:
            _check_record(chunk.additional_kwargs["routellm"], llm, QUESTION, choice)

    chosen, other = (strong, weak) if choice == "strong" else (weak, strong)
    assert chosen.calls == 8 and other.calls == 0


def test_decisions_follow_the_router(make: Any, router_model: Any) -> None:
    llm = make(threshold=0.5)
    prompts = [QUESTION, "hi", "Write a haiku about autumn.", "What is 2 + 2?", "Explain quantum entanglement."]
    for prompt in prompts:
        record = llm.complete(prompt).additional_kwargs["routellm"]
        win_rate = float(router_model.predict_win_rate([prompt])[0])
        assert record["win_rate"] == pytest.approx(win_rate)
        assert record["choice"] == ("strong" if win_rate >= 0.5 else "weak")


def test_route_on_conversation_changes_the_routing_text(make: Any) -> None:
    messages = [user("hello"), ChatMessage(role=MessageRole.ASSISTANT, content="hi!"), user(QUESTION)]
    last = make().chat(messages).additional_kwargs["routellm"]["win_rate"]
    whole = make(route_on="conversation").chat(messages).additional_kwargs["routellm"]["win_rate"]
    assert last == pytest.approx(make().decide(QUESTION).win_rate)
    assert whole == pytest.approx(make().decide(routing_text(messages, "conversation")).win_rate)


def test_completion_derived_from_chat_for_chat_children(make: Any) -> None:
    strong = ScriptedChatLLM("strong")
    llm = make(strong, ScriptedLLM("weak"), threshold=ALWAYS_STRONG)
    assert llm.complete(QUESTION).text == "[strong] answer"  # ScriptedChatLLM.complete would raise
    assert "".join(c.delta for c in llm.stream_complete(QUESTION)) == "[strong] answer"


def test_concurrent_threads_and_tasks(make: Any) -> None:
    llm = make()
    prompts = [f"question number {i}: what is {i} squared?" for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        records = list(pool.map(lambda p: llm.complete(p).additional_kwargs["routellm"], prompts))

    async def run_all() -> list[Any]:
        return await asyncio.gather(*(llm.acomplete(p) for p in prompts))

    async_records = [r.additional_kwargs["routellm"] for r in asyncio.run(run_all())]
    for prompt, record, async_record in zip(prompts, records, async_records):
        assert record["win_rate"] == pytest.approx(llm.decide(prompt).win_rate)
        assert async_record["win_rate"] == pytest.approx(record["win_rate"])


# ---- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "messages",
    [
        [],
        [ChatMessage(role=MessageRole.SYSTEM, content="only a system prompt")],
        [ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="http://x/y.png")])],
    ],
)
async def test_bad_messages_raise_before_any_call(make: Any, messages: list[ChatMessage]) -> None:
    strong, weak = ScriptedLLM("strong"), ScriptedLLM("weak")
    llm = make(strong, weak)
    with pytest.raises(InvalidInputError):
        llm.chat(messages)
    with pytest.raises(InvalidInputError):
        await llm.achat(messages)
    with pytest.raises(InvalidInputError):
        llm.stream_chat(messages)
    with pytest.raises(InvalidInputError):
        await llm.astream_chat(messages)
    assert strong.calls == weak.calls == 0


@pytest.mark.parametrize("prompt", ["", "   \n"])
async def test_blank_prompt_raises(make: Any, prompt: str) -> None:
    llm = make()
    with pytest.raises(InvalidInputError):
        llm.complete(prompt)
    with pytest.raises(InvalidInputError):
        await llm.acomplete(prompt)
    with pytest.raises(InvalidInputError):
        llm.stream_complete(prompt)


# ---- failing children -------------------------------------------------------------------------------------
FAILURES = [
    pytest.param({"error": RuntimeError("provider exploded")}, "RuntimeError", id="raises"),
    pytest.param({"error": TimeoutError("read timed out")}, "TimeoutError", id="timeout"),
    pytest.param({"empty": True}, "empty message", id="empty"),
]


@pytest.mark.parametrize(("failure", "match"), FAILURES)
@pytest.mark.parametrize("child", [ScriptedLLM, ScriptedChatLLM])
async def test_child_failure_names_the_chosen_model(make: Any, child: type, failure: dict, match: str) -> None:
    strong, weak = child("strong", **failure), child("weak")
    llm = make(strong, weak, threshold=ALWAYS_STRONG)
    calls: list[Any] = [
        lambda: llm.chat([user(QUESTION)]),
        lambda: llm.complete(QUESTION),
        lambda: list(llm.stream_chat([user(QUESTION)])),
        lambda: list(llm.stream_complete(QUESTION)),
    ]
    for call in calls:
        with pytest.raises(ModelCallError, match=match) as info:
            call()
        assert info.value.model == "strong-model"
        assert "strong model 'strong-model'" in str(info.value)
        assert info.value.decision.choice == "strong"
        if "error" in failure:
            assert info.value.__cause__ is failure["error"]
    for acall in (llm.achat([user(QUESTION)]), llm.acomplete(QUESTION)):
        with pytest.raises(ModelCallError, match=match):
            await acall
    with pytest.raises(ModelCallError, match=match):
        [c async for c in await llm.astream_chat([user(QUESTION)])]
    assert weak.calls == 0, "no fallback unless configured"


@pytest.mark.parametrize(("failure", "match"), FAILURES)
async def test_fallback_answers_and_is_recorded(make: Any, events: Recorder, failure: dict, match: str) -> None:
    strong, weak = ScriptedChatLLM("strong", **failure), ScriptedChatLLM("weak")
    llm = make(strong, weak, threshold=ALWAYS_STRONG, fallback=True)
    results = [
        llm.chat([user(QUESTION)]),
        await llm.achat([user(QUESTION)]),
        llm.complete(QUESTION),
        await llm.acomplete(QUESTION),
        list(llm.stream_chat([user(QUESTION)]))[-1],
        [c async for c in await llm.astream_chat([user(QUESTION)])][-1],
    ]
    for result in results:
        record = result.additional_kwargs["routellm"]
        assert record["choice"] == "strong"
        assert record["served"] == "weak" and record["model"] == "weak-model"
        assert record["fallback"] is True
        assert record["fallback_from"] == "strong-model"
        assert record["fallback_error"] == ("EmptyResponseError" if "empty" in failure else match)
    fallbacks = events.of(RoutingFallbackEvent)
    assert len(fallbacks) == len(results)
    assert fallbacks[0].failed_model == "strong-model" and fallbacks[0].fallback_model == "weak-model"
    assert strong.calls == weak.calls == len(results), "each child is called once per request: no retries"


async def test_fallback_failing_too_names_both(make: Any) -> None:
    strong = ScriptedLLM("strong", error=TimeoutError("slow"))
    weak = ScriptedLLM("weak", error=ConnectionError("down"))
    llm = make(strong, weak, threshold=ALWAYS_WEAK, fallback=True)
    with pytest.raises(ModelCallError) as info:
        llm.complete(QUESTION)
    message = str(info.value)
    assert info.value.model == "weak-model"
    assert "the chosen weak model 'weak-model' failed (ConnectionError)" in message
    assert "then the fallback strong model 'strong-model' failed: TimeoutError" in message
    assert isinstance(info.value.__cause__, TimeoutError), "the failure raised last is the cause"
    with pytest.raises(ModelCallError, match="then the fallback"):
        await llm.acomplete(QUESTION)


async def test_stream_failing_midway_reports_delivered_chunks(make: Any) -> None:
    strong = ScriptedChatLLM("strong", error=ConnectionError("reset by peer"), stream_fail_after=2)
    llm = make(strong, ScriptedChatLLM("weak"), threshold=ALWAYS_STRONG, fallback=True)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in llm.stream_chat([user(QUESTION)]):
            received.append(chunk.delta)
    assert received == ["[strong] ", "ans"]
    error = info.value
    assert isinstance(error, ModelCallError) and error.model == "strong-model"
    assert error.chunks_delivered == 2 and error.partial_text == "[strong] ans"
    assert "2 streamed chunk(s) had already been delivered" in str(error)
    assert isinstance(error.__cause__, ConnectionError)

    received = []
    with pytest.raises(StreamInterruptedError) as ainfo:
        async for chunk in await llm.astream_complete(QUESTION):
            received.append(chunk.delta)
    assert received == ["[strong] ", "ans"] and ainfo.value.chunks_delivered == 2


def test_stream_failing_before_first_chunk_falls_back(make: Any) -> None:
    strong = ScriptedChatLLM("strong", error=ConnectionError("refused"), stream_fail_after=0)
    llm = make(strong, ScriptedChatLLM("weak"), threshold=ALWAYS_STRONG, fallback=True)
    chunks = list(llm.stream_chat([user(QUESTION)]))
    assert "".join(c.delta for c in chunks) == "[weak] answer"
    assert chunks[-1].additional_kwargs["routellm"]["fallback_from"] == "strong-model"


def test_children_that_fail_once_are_not_retried_by_the_router(make: Any) -> None:
    strong = ScriptedLLM("strong", error=TimeoutError("once"))
    llm = make(strong, ScriptedLLM("weak"), threshold=ALWAYS_STRONG)
    with pytest.raises(ModelCallError):
        llm.complete(QUESTION)
    assert strong.calls == 1


# ---- tool calling -----------------------------------------------------------------------------------------
async def test_tool_calling_passes_through(make: Any) -> None:
    strong, weak = MockFunctionCallingLLMWithChatMemoryOfLastCall(), MockFunctionCallingLLM()
    llm = make(strong, weak, threshold=ALWAYS_STRONG)
    tool = FunctionTool.from_defaults(multiply)

    response = llm.chat_with_tools([tool], user_msg="What is 6 times 7?")
    selections = llm.get_tool_calls_from_response(response)
    assert [s.tool_name for s in selections] == ["multiply"]
    assert response.additional_kwargs["routellm"]["served"] == "strong"
    assert strong.last_called_chat_function == ["chat"]
    assert strong.last_chat_messages[-1].content == "What is 6 times 7?"

    response = await llm.achat_with_tools([tool], chat_history=[user("What is 6 times 7?")])
    assert llm.get_tool_calls_from_response(response)[0].tool_name == "multiply"
    chunks = [c async for c in await llm.astream_chat_with_tools([tool], user_msg="6 times 7?")]
    assert llm.get_tool_calls_from_response(chunks[-1])[0].tool_name == "multiply"
    assert list(llm.stream_chat_with_tools([tool], user_msg="6 times 7?"))[-1].message.blocks

    assert llm.predict_and_call([tool], user_msg="What is 6 times 7?").response == "42"
    assert (await llm.apredict_and_call([tool], user_msg="What is 6 times 7?")).response == "42"


def test_tool_arguments_reach_the_chosen_child(make: Any) -> None:
    seen: dict[str, Any] = {}

    class Spy(MockFunctionCallingLLM):
        def _prepare_chat_with_tools(self, tools: Any, **kwargs: Any) -> dict:  # type: ignore[override]
            seen.update(kwargs)
            return super()._prepare_chat_with_tools(tools, **kwargs)

    llm = make(MockFunctionCallingLLM(), Spy(), threshold=ALWAYS_WEAK)
    tool = FunctionTool.from_defaults(multiply)
    llm.chat_with_tools([tool], user_msg="6 x 7", allow_parallel_tool_calls=True, tool_choice="multiply")
    assert seen["allow_parallel_tool_calls"] is True and seen["tool_choice"] == "multiply"
    assert seen["chat_history"][-1].content == "6 x 7"


def test_tool_calls_parsed_by_the_child_that_answered(make: Any) -> None:
    parsed: list[str] = []

    class Parser(MockFunctionCallingLLM):
        label: str = "?"

        def get_tool_calls_from_response(self, response: Any, error_on_no_tool_call: bool = False, **kw: Any) -> Any:
            parsed.append(self.label)
            return super().get_tool_calls_from_response(response, error_on_no_tool_call, **kw)

    def boom(messages: Any, **kwargs: Any) -> ChatMessage:
        raise TimeoutError("strong timed out")

    strong = Parser(response_generator=boom)
    strong.label = "strong"
    weak = Parser()
    weak.label = "weak"
    llm = make(strong, weak, threshold=ALWAYS_STRONG, fallback=True)
    response = llm.chat_with_tools([FunctionTool.from_defaults(multiply)], user_msg="6 x 7")
    assert llm.get_tool_calls_from_response(response)[0].tool_name == "multiply"
    assert parsed == ["weak"]


def test_tools_need_function_calling_children(make: Any) -> None:
    llm = make(MockLLM(), MockFunctionCallingLLM())
    with pytest.raises(InvalidInputError, match="FunctionCallingLLM"):
        llm.chat_with_tools([FunctionTool.from_defaults(multiply)], user_msg="6 x 7")


# ---- instrumentation and logging --------------------------------------------------------------------------
def _span(spans: SimpleSpanHandler, prefix: str) -> Any:
    found = [s for s in spans.completed_spans + spans.dropped_spans if s.id_.startswith(prefix)]
    assert found, f"no span {prefix!r} among {[s.id_ for s in spans.completed_spans]}"
    return found[-1]


@pytest.mark.parametrize("form", ["chat", "achat", "stream_chat", "astream_chat", "complete", "acomplete"])
async def test_child_span_nests_under_the_router_span(
    make: Any, events: Recorder, spans: SimpleSpanHandler, form: str
) -> None:
    llm = make(ScriptedChatLLM("strong"), ScriptedChatLLM("weak"), threshold=ALWAYS_STRONG)
    arg: Any = QUESTION if "complete" in form else [user(QUESTION)]
    result = getattr(llm, form)(arg)
    if inspect.iscoroutine(result):
        result = await result
    if isinstance(result, Generator):
        list(result)
    elif isinstance(result, AsyncGenerator):
        [c async for c in result]

    router_span = _span(spans, f"RouteLLM.{form}-")
    child_form = {"complete": "chat", "acomplete": "achat"}.get(form, form)
    child_span = _span(spans, f"ScriptedChatLLM.{child_form}-")
    assert child_span.parent_id == router_span.id_

    (decision,) = events.of(RoutingDecisionEvent)
    assert decision.span_id == router_span.id_
    assert decision.choice == "strong" and decision.model == "strong-model"
    assert decision.router == llm.router_name and decision.threshold == ALWAYS_STRONG
    assert decision.win_rate == pytest.approx(llm.decide(QUESTION).win_rate)
    assert decision.class_name() == "RoutingDecisionEvent"


async def test_tool_calls_pass_no_private_values_through_chat_kwargs(make: Any, events: Recorder) -> None:
    strong, weak = MockFunctionCallingLLMWithChatMemoryOfLastCall(), MockFunctionCallingLLM()
    llm = make(strong, weak, threshold=ALWAYS_STRONG)
    tool = FunctionTool.from_defaults(multiply)
    llm.chat_with_tools([tool], user_msg="What is 6 times 7?", allow_parallel_tool_calls=True)
    await llm.achat_with_tools([tool], user_msg="What is 6 times 7?")
    starts = [e for e in events.of(LLMChatStartEvent) if e.model_dict.get("router")]
    assert len(starts) == 2
    for event in starts:
        assert set(event.additional_kwargs) <= {"tools"}, event.additional_kwargs


def test_chat_end_event_carries_the_decision(make: Any, events: Recorder) -> None:
    llm = make(threshold=ALWAYS_WEAK)
    llm.chat([user(QUESTION)])
    router_ends = [e for e in events.of(LLMChatEndEvent) if "routellm" in e.response.additional_kwargs]
    assert router_ends and router_ends[-1].response.additional_kwargs["routellm"]["choice"] == "weak"


def test_prompts_are_not_logged(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    secret = "SECRET-PROMPT-7f3a what is the capital of France?"
    caplog.set_level(logging.DEBUG)
    llm = make(ScriptedLLM("strong", error=TimeoutError("slow")), ScriptedLLM("weak"), fallback=True, threshold=0)
    llm.chat([user(secret)])
    llm.complete(secret)
    ours = [r for r in caplog.records if r.name.startswith(("llamaindex_routellm", "routellm_core"))]
    assert any(r.levelno == logging.WARNING and "falling back" in r.getMessage() for r in ours)
    assert any(r.levelno == logging.DEBUG and "win rate" in r.getMessage() for r in ours)
    for record in ours:
        assert "SECRET-PROMPT" not in record.getMessage()
    for record in caplog.records:
        if record.levelno >= logging.INFO:
            assert "SECRET-PROMPT" not in record.getMessage()


def test_model_copy_with_new_routing_fields_routes_by_them(make: Any) -> None:
    llm = make(threshold=ALWAYS_STRONG)
    assert llm.complete(QUESTION).additional_kwargs["routellm"]["choice"] == "strong"
    weak_only = llm.model_copy(update={"threshold": ALWAYS_WEAK})
    assert weak_only.complete(QUESTION).additional_kwargs["routellm"]["choice"] == "weak"
    assert llm.complete(QUESTION).additional_kwargs["routellm"]["choice"] == "strong"
    renamed = llm.model_copy(update={"weak_name": "small"})
    assert (
        renamed.model_copy(update={"threshold": ALWAYS_WEAK}).complete(QUESTION).additional_kwargs["routellm"]["model"]
        == "small"
    )
