"""Bad input, property-based: whatever the messages, the router routes or raises a documented error.

Hypothesis generates message lists (empty, ``None`` content, only system / tool messages, megabyte prompts,
emoji, mixed scripts, control characters, lone surrogates, image-only and nested content parts) for the core,
``ChatRouteLLM`` and the LlamaIndex ``RouteLLM``. The children never fail, so every call must either answer with
the routing decision in its metadata, or raise :class:`~routellm_core.errors.InvalidInputError` (a
``RouteLLMError``) with a clear message, never an exception from deep inside torch, numpy or a tokenizer.
Building a message the framework itself rejects (pydantic ``ValidationError`` from the message class) is the
framework's business and is allowed. The router is the shipped default, whatever its scores.
Each property test also counts its outcomes: explicit examples make sure a plain prompt is routed and an
unusable one refused in every run, so a router that refuses (or routes) everything fails.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from lc_fakes import shared_router
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    CitableBlock,
    CompletionResponse,
    DocumentBlock,
    ImageBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.base.llms.types import ChatMessage as LIMessage
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import ValidationError

from langchain_routellm import ChatRouteLLM
from langchain_routellm import routing_text as lc_routing_text
from llamaindex_routellm import RouteLLM
from llamaindex_routellm import routing_text as li_routing_text
from routellm_core import InvalidInputError, RouteLLMError, RoutingDecision
from routellm_core.embedding.embedders import TransformerEmbedder
from routellm_core.routing.policy import RoutingPolicy

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# ---- text -------------------------------------------------------------------------------------------------------
MB = 1_000_000
ENGLISH = "The quick brown fox jumps over the lazy dog while we prove that primes never run out. "
#: Megabyte prompts (built once, so their embeddings are cached after the first use).
HUGE = (
    (ENGLISH * (MB // len(ENGLISH) + 1))[:MB],
    ("é😀中 " * (MB // 4 + 1))[:MB],
    "x" * MB,
    ("مرحبا بالعالم Привет мир こんにちは세계 " * (MB // 34 + 1))[:MB],
)
SPECIAL = (
    "👩‍👩‍👧‍👦🏳️‍🌈🇫🇷",
    "שלום עולם — hello — مرحبا",
    "Z̷̢̛a̸͎͐l̴̰̈g̵̣̾o̶͇͝ text",
    "\u200b\u200d\ufeff",  # zero-width characters: not whitespace, routed
    "\x00\x01\x02\x1b[31mred\x1b[0m\x7f",
    "\ud800 lone high surrogate",
    "lone low surrogate \udfff",
    "\ud83d\ude00 surrogate pair written as two code points",
    " \t\n\r\x0b\x0c\u3000\u2028\x1c\x85",  # whitespace only
    "",
    "SELECT * FROM users; -- {{template}} ${env} %s %(x)s",
)
CHARS = st.one_of(
    st.characters(),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    st.characters(max_codepoint=0x9F, categories=["Cc"]),  # control characters
    st.sampled_from("😀🚀👍🏽中文字日本語한국어ÄÖÜßçñالعربيةעבריתहिन्दी\u0301\u200d"),
)
#: Arbitrary short texts, the special ones, and now and then a megabyte prompt (drawn by index: short reprs).
TEXTS = st.one_of(
    st.text(CHARS, max_size=40), st.sampled_from(SPECIAL), st.sampled_from(range(len(HUGE))).map(HUGE.__getitem__)
)
NON_TEXT = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=8),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)


def nested(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """JSON-like nested values (lists and dicts) around ``leaf``."""
    return st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    )


@pytest.fixture(scope="module")
def router() -> Any:
    return shared_router()


@pytest.fixture(scope="module")
def policy(router: Any) -> RoutingPolicy:
    return RoutingPolicy(router, threshold=0.5)


def assert_clear(exc: BaseException) -> None:
    """A documented error with a message that says something."""
    assert isinstance(exc, RouteLLMError), f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert len(str(exc).strip()) > 10, repr(exc)


# ---- the core -------------------------------------------------------------------------------------------------
def test_core_routes_any_text_or_raises_invalid_input(router: Any) -> None:
    outcomes: Counter[str] = Counter()

    @SETTINGS
    @given(texts=st.lists(st.one_of(TEXTS, NON_TEXT), max_size=3) | NON_TEXT | TEXTS)
    @example(texts=["Prove that there are infinitely many primes."])
    @example(texts=[])
    def check(texts: Any) -> None:
        try:
            rates = router.predict_win_rate(texts)
        except InvalidInputError as exc:
            outcomes["refused"] += 1
            assert_clear(exc)
            valid = isinstance(texts, list) and texts and all(isinstance(t, str) and t.strip() for t in texts)
            assert not valid, f"valid texts were refused: {exc}"
            return
        outcomes["routed"] += 1
        assert isinstance(texts, (list, tuple)) and texts
        assert all(isinstance(t, str) and t.strip() for t in texts)
        assert rates.shape == (len(texts),) and rates.dtype == np.float64
        assert np.isfinite(rates).all() and ((rates >= 0) & (rates <= 1)).all()

    check()
    assert outcomes["routed"] and outcomes["refused"], outcomes


def test_policy_decides_any_text_or_raises_invalid_input(policy: RoutingPolicy) -> None:
    outcomes: Counter[str] = Counter()

    @SETTINGS
    @given(text=st.one_of(TEXTS, NON_TEXT))
    @example(text="Prove that there are infinitely many primes.")
    @example(text=" \n ")
    def check(text: Any) -> None:
        try:
            decision = policy.decide(text)
        except InvalidInputError as exc:
            outcomes["refused"] += 1
            assert_clear(exc)
            assert not (isinstance(text, str) and text.strip()), f"valid text was refused: {exc}"
            return
        outcomes["routed"] += 1
        assert isinstance(text, str) and text.strip()
        assert isinstance(decision, RoutingDecision) and decision.choice in ("strong", "weak")
        assert decision == policy.decide_batch([text])[0]

    check()
    assert outcomes["routed"] and outcomes["refused"], outcomes


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), float("inf"), "0.5", None, True, [0.5]])
def test_bad_thresholds_are_invalid_input(router: Any, threshold: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        router.decide(["hello"], threshold)
    assert_clear(info.value)


def test_megabyte_prompt_is_truncated_deterministically(router: Any) -> None:
    """A 1 MB prompt routes like its first few KB: the embedder keeps the start (256 tokens). How long it takes is
    measured by ``python -m bench.limits``."""
    limit = router.get_embedder().inner.max_tokens * TransformerEmbedder.CHARS_PER_TOKEN_CAP
    for huge in HUGE:
        full = router.predict_win_rate([huge])
        assert router.predict_win_rate([huge])[0] == full[0]  # deterministic
        np.testing.assert_allclose(router.predict_win_rate([huge[:limit]]), full, atol=1e-6)
    # far fewer than the cap: the first 3,000 characters of English already hold more than 256 tokens
    english = HUGE[0]
    np.testing.assert_allclose(router.predict_win_rate([english[:3000]]), router.predict_win_rate([english]), atol=1e-6)
    # the end of a megabyte prompt never matters
    tail_changed = english[: MB - 100] + "Prove the Riemann hypothesis in full detail, please." * 2
    np.testing.assert_allclose(router.predict_win_rate([tail_changed]), router.predict_win_rate([english]), atol=1e-6)


# ---- LangChain ----------------------------------------------------------------------------------------------------
class AlwaysOK(BaseChatModel):
    """A child that always answers, whatever the messages: any failure in these tests is the router's."""

    label: str = "ok"

    @property
    def _llm_type(self) -> str:
        return "always-ok"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=f"[{self.label}] ok"))])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        return self._generate(messages)


IMAGE_BLOCKS = (
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
    {"type": "image", "source_type": "url", "url": "https://example.com/cat.png"},
    {"type": "image", "url": "https://example.com/cat.png"},
    {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"},
    {"type": "audio", "base64": "UklGRg==", "mime_type": "audio/wav"},
)
LC_BLOCKS = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, TEXTS),
    st.builds(lambda t: {"type": "input_text", "text": t}, TEXTS),
    TEXTS,  # a bare string part
    st.sampled_from(IMAGE_BLOCKS),
    st.sampled_from([{"type": "text", "text": None}, {"type": "text"}, {"type": "text", "text": 42}, {}]),
    st.builds(lambda v: {"type": "text", "text": v}, nested(TEXTS)),  # nested structure where text belongs
    st.builds(lambda v: {"type": "tool_result", "content": v}, nested(TEXTS)),
    st.dictionaries(st.text(max_size=6), nested(TEXTS), max_size=3),
)
LC_CONTENT = st.one_of(
    TEXTS,
    st.lists(LC_BLOCKS, max_size=4),
    st.one_of(
        st.lists(st.lists(LC_BLOCKS, max_size=2), min_size=1, max_size=2),  # nested lists: refused by the class
        st.none(),  # refused by the class
    ),
)
LC_KINDS = ("human", "system", "ai", "ai_tool_call", "tool", "chat:user", "chat:assistant", "chat:wizard")
#: Arbitrary conversations, half of them ending with a human turn of arbitrary text (so many are routable).
LC_MESSAGES = st.tuples(
    st.lists(st.tuples(st.sampled_from(LC_KINDS), LC_CONTENT), max_size=4),
    st.lists(st.tuples(st.just("human"), TEXTS), max_size=1),
).map(lambda parts: parts[0] + parts[1])


def lc_message(kind: str, content: Any) -> BaseMessage:
    if kind == "human":
        return HumanMessage(content=content)
    if kind == "system":
        return SystemMessage(content=content)
    if kind == "ai":
        return AIMessage(content=content)
    if kind == "ai_tool_call":
        return AIMessage(content=content, tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "call_1"}])
    if kind == "tool":
        return ToolMessage(content=content, tool_call_id="call_1")
    return ChatMessage(role=kind.split(":", 1)[1], content=content)


def lc_messages(spec: Sequence[tuple[str, Any]]) -> list[BaseMessage] | None:
    """The messages, or ``None`` when the message classes themselves reject the content (the framework's call)."""
    try:
        return [lc_message(kind, content) for kind, content in spec]
    except ValidationError:
        return None


@pytest.fixture(scope="module")
def chat(router: Any) -> ChatRouteLLM:
    return ChatRouteLLM(strong=AlwaysOK(label="strong"), weak=AlwaysOK(label="weak"), router=router, threshold=0.5)


def check_lc_answer(chat: ChatRouteLLM, messages: list[BaseMessage], answer: BaseMessage) -> None:
    meta = answer.response_metadata["routellm"]
    assert meta["choice"] in ("strong", "weak")
    assert answer.text.startswith(f"[{meta['choice']}]")
    expected = chat.policy.decide(lc_routing_text(messages))
    assert (meta["choice"], meta["win_rate"]) == (expected.choice, expected.win_rate)


def test_chat_route_llm_routes_any_messages_or_raises_invalid_input(chat: ChatRouteLLM) -> None:
    outcomes: Counter[str] = Counter()

    @SETTINGS
    @given(spec=LC_MESSAGES, mode=st.sampled_from(["invoke", "ainvoke", "stream"]))
    @example(spec=[("system", "Be brief."), ("human", "Prove that there are infinitely many primes.")], mode="invoke")
    @example(spec=[("system", "Be brief.")], mode="ainvoke")
    def check(spec: list, mode: str) -> None:
        messages = lc_messages(spec)
        if messages is None:
            event("rejected by the message class")
            return
        try:
            if mode == "invoke":
                answer = chat.invoke(messages)
            elif mode == "ainvoke":
                answer = asyncio.run(chat.ainvoke(messages))
            else:
                chunks = list(chat.stream(messages))
                assert chunks[-1].chunk_position == "last"
                answer = chunks[0]
                assert "".join(c.text for c in chunks).startswith("[")
        except InvalidInputError as exc:
            event("refused")
            outcomes["refused"] += 1
            assert_clear(exc)
            with pytest.raises(InvalidInputError):  # the routing text itself is unusable
                chat.policy.decide(lc_routing_text(messages))
            return
        event("routed")
        outcomes["routed"] += 1
        check_lc_answer(chat, messages, answer)

    check()
    assert outcomes["routed"] and outcomes["refused"], outcomes


#: The two "no user text" messages, as the CLI words the first: blank text is not "only images".
BLANK = "empty or whitespace only"
NON_TEXT_ONLY = "only images or other non-text content"


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        pytest.param([], "empty", id="empty"),
        pytest.param([SystemMessage("You are helpful.")], "no user message", id="only-system"),
        pytest.param(
            [ToolMessage("42", tool_call_id="c1"), ToolMessage("43", tool_call_id="c2")], "no user", id="only-tool"
        ),
        pytest.param([AIMessage("Hi, how can I help?")], "no user message", id="only-ai"),
        pytest.param([HumanMessage([IMAGE_BLOCKS[0], IMAGE_BLOCKS[1]])], NON_TEXT_ONLY, id="images-only"),
        pytest.param([HumanMessage([IMAGE_BLOCKS[0], {"type": "text", "text": " "}])], NON_TEXT_ONLY, id="image+blank"),
        pytest.param([HumanMessage("")], BLANK, id="empty-string"),
        pytest.param([HumanMessage(" \n\t\u3000")], BLANK, id="whitespace"),
        pytest.param([HumanMessage([{"type": "text", "text": None}])], BLANK, id="text-none"),
        pytest.param("", BLANK, id="empty-prompt-string"),
    ],
)
def test_chat_route_llm_unroutable_inputs(chat: ChatRouteLLM, messages: Any, needle: str) -> None:
    """Refused before any model call, with a message that says why (``ChatRouteLLM.invoke("")``: blank text, not
    "only images")."""
    for call in (chat.invoke, lambda m: list(chat.stream(m)), lambda m: asyncio.run(chat.ainvoke(m))):
        with pytest.raises(InvalidInputError) as info:
            call(messages)
        assert_clear(info.value)
        assert needle in str(info.value)
        assert not (BLANK in str(info.value) and NON_TEXT_ONLY in str(info.value))


def test_chat_route_llm_megabyte_prompt(chat: ChatRouteLLM, router: Any) -> None:
    for huge in HUGE[:2]:
        answer = chat.invoke([SystemMessage("Be brief."), HumanMessage(huge)])
        meta = answer.response_metadata["routellm"]
        expected = router.decide([huge[:3000] if huge is HUGE[0] else huge], 0.5)[0]
        assert meta["choice"] == expected.choice
        assert meta["win_rate"] == pytest.approx(expected.win_rate, abs=1e-6)


# ---- LlamaIndex ---------------------------------------------------------------------------------------------------
class AlwaysOKLLM(CustomLLM):
    """A LlamaIndex child that always answers (completion-style; chat is derived by LlamaIndex)."""

    label: str = "ok"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"{self.label}-model")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=f"[{self.label}] ok")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        def gen():
            yield CompletionResponse(text=f"[{self.label}]", delta=f"[{self.label}]")
            yield CompletionResponse(text=f"[{self.label}] ok", delta=" ok")

        return gen()


def _block(kind: str, text: str) -> Any:
    if kind == "text":
        return TextBlock(text=text)
    if kind == "image_url":
        return ImageBlock(url="https://example.com/cat.png")
    if kind == "image_bytes":
        return ImageBlock(image=b"\x89PNG\r\n\x1a\n", image_mimetype="image/png")
    if kind == "audio":
        return AudioBlock(url="https://example.com/a.wav", format="wav")
    if kind == "document":
        return DocumentBlock(url="https://example.com/a.pdf", document_mimetype="application/pdf")
    if kind == "cache":
        return CachePoint(cache_control=CacheControl(type="ephemeral"))
    if kind == "thinking":
        return ThinkingBlock(content=text)
    if kind == "tool_call":
        return ToolCallBlock(tool_call_id="c1", tool_name="lookup", tool_kwargs={"q": text})
    return CitableBlock(title="doc", source="https://example.com", content=[TextBlock(text=text)])  # nested parts


LI_BLOCK_KINDS = ("text", "text", "image_url", "image_bytes", "audio", "document", "cache", "thinking", "tool_call")
LI_BLOCKS = st.tuples(st.sampled_from((*LI_BLOCK_KINDS, "citable")), TEXTS)
LI_CONTENT = st.one_of(TEXTS, st.none(), st.lists(LI_BLOCKS, max_size=4))
#: Arbitrary conversations, half of them ending with a user turn of arbitrary text (so many are routable).
LI_MESSAGES = st.tuples(
    st.lists(st.tuples(st.sampled_from(list(MessageRole)), LI_CONTENT), max_size=4),
    st.lists(st.tuples(st.just(MessageRole.USER), TEXTS), max_size=1),
).map(lambda parts: parts[0] + parts[1])
ROUTE_ON = st.sampled_from(["last_user", "conversation", "rag_query"])


def li_messages(spec: Sequence[tuple[MessageRole, Any]]) -> list[LIMessage] | None:
    try:
        out = []
        for role, content in spec:
            if isinstance(content, list):
                out.append(LIMessage(role=role, blocks=[_block(kind, text) for kind, text in content]))
            else:
                out.append(LIMessage(role=role, content=content))
        return out
    except ValidationError:
        return None


class _ByRouteOn(dict):
    def __repr__(self) -> str:  # keep Hypothesis' failure reports readable
        return f"<RouteLLM for route_on in {sorted(self)}>"


@pytest.fixture(scope="module")
def li_llms(router: Any) -> dict[str, RouteLLM]:
    policy = RoutingPolicy(router, threshold=0.5)
    return _ByRouteOn(
        (
            route_on,
            RouteLLM(
                strong=AlwaysOKLLM(label="strong"), weak=AlwaysOKLLM(label="weak"), router=policy, route_on=route_on
            ),
        )
        for route_on in ("last_user", "conversation", "rag_query")
    )


def check_li_answer(llm: RouteLLM, text: str, answer: Any) -> None:
    record = answer.additional_kwargs["routellm"]
    assert record["choice"] in ("strong", "weak") and record["served"] == record["choice"]
    expected = llm.routing_policy.decide(text)
    assert (record["choice"], record["win_rate"]) == (expected.choice, expected.win_rate)


def test_llamaindex_routes_any_messages_or_raises_invalid_input(li_llms: dict[str, RouteLLM]) -> None:
    outcomes: Counter[str] = Counter()
    plain = [(MessageRole.SYSTEM, "Be brief."), (MessageRole.USER, "Prove that there are infinitely many primes.")]

    @SETTINGS
    @given(spec=LI_MESSAGES, route_on=ROUTE_ON, mode=st.sampled_from(["chat", "achat", "stream_chat"]))
    @example(spec=plain, route_on="last_user", mode="chat")
    @example(spec=[(MessageRole.SYSTEM, "Be brief.")], route_on="last_user", mode="achat")
    def check(spec: list, route_on: str, mode: str) -> None:
        messages = li_messages(spec)
        if messages is None:
            event("rejected by the message class")
            return
        llm = li_llms[route_on]
        try:
            if mode == "chat":
                answer = llm.chat(messages)
            elif mode == "achat":
                answer = asyncio.run(llm.achat(messages))
            else:
                chunks = list(llm.stream_chat(messages))
                answer = chunks[-1]
                assert answer.message.content.startswith("[")
        except InvalidInputError as exc:
            event("refused")
            outcomes["refused"] += 1
            assert_clear(exc)
            with pytest.raises(InvalidInputError):
                llm.routing_policy.decide(li_routing_text(messages, route_on))  # type: ignore[arg-type]
            return
        event("routed")
        outcomes["routed"] += 1
        check_li_answer(llm, li_routing_text(messages, route_on), answer)  # type: ignore[arg-type]

    check()
    assert outcomes["routed"] and outcomes["refused"], outcomes


def test_llamaindex_completes_any_prompt_or_raises_invalid_input(li_llms: dict[str, RouteLLM]) -> None:
    outcomes: Counter[str] = Counter()

    @SETTINGS
    @given(prompt=st.one_of(TEXTS, NON_TEXT), route_on=ROUTE_ON, mode=st.sampled_from(["complete", "acomplete"]))
    @example(prompt="Prove that there are infinitely many primes.", route_on="last_user", mode="complete")
    @example(prompt=None, route_on="last_user", mode="acomplete")
    def check(prompt: Any, route_on: str, mode: str) -> None:
        llm = li_llms[route_on]
        try:
            answer = llm.complete(prompt) if mode == "complete" else asyncio.run(llm.acomplete(prompt))
        except InvalidInputError as exc:
            outcomes["refused"] += 1
            assert_clear(exc)
            assert not (isinstance(prompt, str) and prompt.strip()), f"a valid prompt was refused: {exc}"
            return
        outcomes["routed"] += 1
        assert isinstance(prompt, str)
        record = answer.additional_kwargs["routellm"]
        # a completion routes like a conversation of one user message holding the prompt
        expected = llm.routing_policy.decide(
            li_routing_text([LIMessage(role=MessageRole.USER, content=prompt)], route_on)
        )
        assert (record["choice"], record["win_rate"]) == (expected.choice, expected.win_rate)
        assert record["served"] == record["choice"] and answer.text.startswith(f"[{record['choice']}]")

    check()
    assert outcomes["routed"] and outcomes["refused"], outcomes


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        pytest.param([], "empty", id="empty"),
        pytest.param([LIMessage(role=MessageRole.SYSTEM, content="Be helpful.")], "no user message", id="only-system"),
        pytest.param([LIMessage(role=MessageRole.TOOL, content="42")], "no user message", id="only-tool"),
        pytest.param([LIMessage(role=MessageRole.USER, content=None)], BLANK, id="none-content"),
        pytest.param([LIMessage(role=MessageRole.USER, content="")], BLANK, id="empty-string"),
        pytest.param(
            [LIMessage(role=MessageRole.USER, blocks=[_block("image_url", "")])], NON_TEXT_ONLY, id="images-only"
        ),
        pytest.param([LIMessage(role=MessageRole.USER, content=" \n")], BLANK, id="whitespace"),
    ],
)
def test_llamaindex_unroutable_inputs(li_llms: dict[str, RouteLLM], messages: list[LIMessage], needle: str) -> None:
    llm = li_llms["last_user"]
    for call in (llm.chat, lambda m: list(llm.stream_chat(m)), lambda m: asyncio.run(llm.achat(m))):
        with pytest.raises(InvalidInputError) as info:
            call(messages)
        assert_clear(info.value)
        assert needle in str(info.value)


def test_llamaindex_megabyte_prompt(li_llms: dict[str, RouteLLM], router: Any) -> None:
    llm = li_llms["last_user"]
    english = HUGE[0]
    answer = llm.chat([LIMessage(role=MessageRole.USER, content=english)])
    completion = llm.complete(english)
    expected = router.decide([english[:3000]], 0.5)[0]
    for record in (answer.additional_kwargs["routellm"], completion.additional_kwargs["routellm"]):
        assert record["choice"] == expected.choice
        assert record["win_rate"] == pytest.approx(expected.win_rate, abs=1e-6)


# ---- the server ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param("", BLANK, id="empty-string"),
        pytest.param(" \n\t", BLANK, id="whitespace"),
        pytest.param([{"type": "text", "text": "  "}], BLANK, id="blank-text-part"),
        pytest.param([{"type": "image_url", "image_url": {"url": "data:,"}}], NON_TEXT_ONLY, id="image-only"),
    ],
)
def test_server_says_why_a_message_without_text_is_refused(server_url: str, content: Any, needle: str) -> None:
    """``"content": ""`` is a 400 saying the text is empty or whitespace only (as the CLI and both frameworks say),
    not that the message holds only images; an image-only message says that."""
    import openai

    client = openai.OpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0, timeout=30)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="router-fast-0.5", messages=[{"role": "user", "content": content}])
    message = info.value.body["message"]
    assert needle in message
    assert (BLANK in message) != (NON_TEXT_ONLY in message)


@pytest.fixture(scope="module")
def server_url(router: Any) -> Any:
    """A real routing server (``create_app``) in front of the mock upstream, on free 127.0.0.1 ports."""
    from routellm_core import load_router
    from routellm_core.server import OpenAIUpstream, ServerThread, create_app
    from routellm_core.server.mock_upstream import create_mock_upstream

    with ServerThread(create_mock_upstream()) as mock:
        app = create_app(
            strong=OpenAIUpstream("mock-strong", base_url=f"{mock.url}/v1", api_key="unused"),
            weak=OpenAIUpstream("mock-weak", base_url=f"{mock.url}/v1", api_key="unused"),
            policies={"fast": RoutingPolicy(load_router("fast"))},
            routers=("fast",),
            api_keys_env=None,
        )
        with ServerThread(app) as server:
            yield server.url
