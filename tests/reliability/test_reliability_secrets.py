"""Secrets and privacy: API keys never show in repr, serialization, metadata, events, errors or logs, and prompts
are never logged at INFO or above.

Keys are held as ``SecretStr`` (the router's own ``api_key``, ``OpenAIEmbedder``'s key, and children's keys);
the children here are fakes holding ``SecretStr`` keys, as provider chat models / LLMs do.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import traceback
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.messages import HumanMessage
from lc_fakes import ToolEchoChatModel, shared_router
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, LLMMetadata, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import Field, SecretStr

from langchain_routellm import ChatRouteLLM
from llamaindex_routellm import RouteLLM
from routellm_core import EmbeddingError, ModelCallError
from routellm_core.embedding.cache import CachedEmbedder
from routellm_core.embedding.embedders import OpenAIEmbedder
from routellm_core.routing.policy import RoutingPolicy

CHILD_KEY = "sk-child-DO-NOT-LEAK-4f9a"
ROUTER_KEY = "sk-router-DO-NOT-LEAK-77c1"
OPENAI_KEY = "sk-openai-DO-NOT-LEAK-0b3e"
SECRETS = (CHILD_KEY, ROUTER_KEY, OPENAI_KEY)
PROMPT = "my private question about the insulin dose for my daughter"
PRIVATE_WORD = "insulin"


def assert_no_secret(*texts: Any) -> None:
    for text in texts:
        rendered = text if isinstance(text, str) else json.dumps(text, default=repr)
        for secret in SECRETS:
            assert secret not in rendered, f"secret leaked into: {rendered[:300]}"


def error_text(exc: BaseException) -> str:
    """Everything a traceback would print, chained causes included."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


# ---- OpenAIEmbedder ---------------------------------------------------------------------------------------------
class _FakeEmbeddings:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def create(self, model: str, input: list[str]) -> Any:
        if self.error is not None:
            raise self.error
        data = [type("Item", (), {"index": i, "embedding": [1.0, float(len(t))]})() for i, t in enumerate(input)]
        return type("Response", (), {"data": data})()


class _FakeOpenAI:
    """Stands in for ``openai.OpenAI`` (no network): keeps the key in plain text, as the real client does."""

    error: Exception | None = None

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self.api_key = api_key
        self.embeddings = _FakeEmbeddings(type(self).error)


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> type[_FakeOpenAI]:
    openai = pytest.importorskip("openai")
    monkeypatch.setattr(openai, "OpenAI", _FakeOpenAI)
    _FakeOpenAI.error = None
    return _FakeOpenAI


def test_openai_embedder_holds_the_key_as_a_secret(fake_openai: type, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        embedder = OpenAIEmbedder(api_key=OPENAI_KEY)
        cached = CachedEmbedder(embedder)
        assert isinstance(embedder.api_key, SecretStr)
        assert cached.embed(["hello there"]).shape == (1, 2)  # the client is built and used
    assert_no_secret(
        repr(embedder),
        str(embedder),
        repr(cached),
        str(vars(embedder)),
        json.dumps(vars(embedder), default=str),
        repr(copy.copy(vars(embedder))),
        embedder.name,
    )
    assert_no_secret(*(r.getMessage() for r in caplog.records))


def test_openai_embedder_key_from_the_environment_stays_secret(
    fake_openai: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    embedder = OpenAIEmbedder()
    embedder.embed(["hi"])
    assert_no_secret(repr(embedder), str(vars(embedder)))


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(PermissionError("401 Incorrect API key provided: sk-open***************0b3e"), id="masked-401"),
        pytest.param(
            ConnectionError(f"proxy refused request with header 'Authorization: Bearer {OPENAI_KEY}'"), id="echoed"
        ),
        pytest.param(TimeoutError("timed out"), id="timeout"),
    ],
)
def test_openai_embedder_errors_never_carry_the_key(fake_openai: type, error: Exception) -> None:
    fake_openai.error = error
    with pytest.raises(EmbeddingError, match="failed") as info:
        OpenAIEmbedder(api_key=OPENAI_KEY).embed(["hello"])
    assert_no_secret(error_text(info.value))
    assert type(error).__name__ in str(info.value)


def test_openai_embedder_without_a_key_says_so(fake_openai: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmbeddingError, match="needs an API key"):
        OpenAIEmbedder().embed(["hello"])


# ---- LangChain ----------------------------------------------------------------------------------------------------
class EverythingRecorder(BaseCallbackHandler):
    """Keeps every argument of every callback, to search them for secrets and prompts."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def _keep(self, *args: Any, **kwargs: Any) -> None:
        self.seen.append((args, kwargs))

    on_chat_model_start = on_llm_start = on_llm_end = on_llm_error = on_llm_new_token = _keep
    on_chain_start = on_chain_end = on_chain_error = _keep


@pytest.fixture(scope="module")
def router() -> Any:
    return shared_router()


def lc_children(**kwargs: Any) -> dict[str, ToolEchoChatModel]:
    return {
        "strong": ToolEchoChatModel(label="strong", model="strong-1", api_key=SecretStr(CHILD_KEY), **kwargs),
        "weak": ToolEchoChatModel(label="weak", model="weak-1", api_key=SecretStr(CHILD_KEY)),
    }


def test_chat_route_llm_never_shows_keys(router: Any) -> None:
    llm = ChatRouteLLM(**lc_children(), router=router, api_key=SecretStr(ROUTER_KEY), threshold=0.5)
    recorder = EverythingRecorder()
    answer = llm.invoke(PROMPT, config={"callbacks": [recorder]})
    chunks = list(llm.stream(PROMPT, config={"callbacks": [recorder]}))
    batch = llm.batch([PROMPT, "hello"], config={"callbacks": [recorder]})
    assert_no_secret(
        repr(llm),
        str(llm),
        llm.model_dump(),
        dumps(llm),
        dumpd(llm),
        llm.to_json(),
        llm._identifying_params,
        llm._get_ls_params(),
        answer.response_metadata,
        answer.model_dump(),
        [c.model_dump() for c in chunks],
        [m.model_dump() for m in batch],
        repr(llm.bind_tools([{"type": "function", "function": {"name": "f", "parameters": {}}}])),
        recorder.seen,
    )


@pytest.mark.parametrize("spec", ["instance", "policy", "name"])
def test_chat_route_llm_json_serialization_works_and_hides_keys(router: Any, spec: str) -> None:
    """``model_dump_json()`` / ``model_dump(mode="json")`` work whatever the router was given as."""
    given = {"instance": router, "policy": RoutingPolicy(router, threshold=0.5), "name": "default"}[spec]
    llm = ChatRouteLLM(**lc_children(), router=given, api_key=SecretStr(ROUTER_KEY))
    dumped = llm.model_dump_json()
    assert_no_secret(dumped, llm.model_dump(mode="json"))
    assert json.loads(dumped)["router"] == ("default" if spec == "name" else router.name)


@pytest.mark.parametrize("fallback", [False, True])
def test_chat_route_llm_errors_never_show_keys(router: Any, fallback: bool) -> None:
    kids = lc_children(error=RuntimeError("upstream 500"))
    kids["weak"].error = TimeoutError("read timed out")
    llm = ChatRouteLLM(**kids, router=router, api_key=SecretStr(ROUTER_KEY), threshold=0.0, fallback=fallback)
    for call in (
        lambda: llm.invoke(PROMPT),
        lambda: list(llm.stream(PROMPT)),
        lambda: asyncio.run(llm.ainvoke(PROMPT)),
    ):
        with pytest.raises(ModelCallError) as info:
            call()
        assert "strong-1" in str(info.value)
        assert_no_secret(error_text(info.value), repr(info.value.decision))


# ---- LlamaIndex ------------------------------------------------------------------------------------------------
class SecretLLM(CustomLLM):
    """A LlamaIndex child with a secret key (as provider LLMs have), answering or failing on demand."""

    label: str = "child"
    api_key: SecretStr = Field(default=SecretStr(CHILD_KEY))
    error: Exception | None = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"{self.label}-model", is_chat_model=True)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=f"[{self.label}] ok")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield CompletionResponse(text=f"[{self.label}] ok", delta=f"[{self.label}] ok")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        if self.error is not None:
            raise self.error
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=f"[{self.label}] ok"))


class EventRecorder(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventRecorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def events() -> Any:
    recorder = EventRecorder()
    root = get_dispatcher()
    root.add_event_handler(recorder)
    yield recorder
    root.event_handlers.remove(recorder)


def test_llamaindex_router_never_shows_keys(router: Any, events: EventRecorder) -> None:
    llm = RouteLLM(strong=SecretLLM(label="strong"), weak=SecretLLM(label="weak"), router=router, threshold=0.5)
    answer = llm.chat([ChatMessage(role=MessageRole.USER, content=PROMPT)])
    completion = llm.complete(PROMPT)
    assert_no_secret(
        repr(llm),
        str(llm),
        llm.model_dump(),
        llm.model_dump_json(),
        llm.to_dict(),
        llm.to_json(),
        llm.to_payload(),
        repr(llm.metadata),
        answer.additional_kwargs,
        completion.additional_kwargs,
        [e.model_dump() for e in events.events],
    )


@pytest.mark.parametrize("fallback", [False, True])
def test_llamaindex_errors_never_show_keys(router: Any, fallback: bool, events: EventRecorder) -> None:
    strong = SecretLLM(label="strong", error=RuntimeError("upstream 500"))
    weak = SecretLLM(label="weak", error=TimeoutError("slow"))
    llm = RouteLLM(strong=strong, weak=weak, router=router, threshold=0.0, fallback=fallback)
    with pytest.raises(ModelCallError) as info:
        llm.chat([ChatMessage(role=MessageRole.USER, content=PROMPT)])
    assert "strong-model" in str(info.value)
    assert_no_secret(error_text(info.value), [e.model_dump() for e in events.events])


# ---- logs: no prompt at INFO or above, no secret at any level -------------------------------------------------------
def test_prompts_and_keys_are_never_logged(router: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Every path (routing, success, fallback, failure, streaming) with all loggers at DEBUG."""
    policy = RoutingPolicy(router, threshold=0.5)
    ok = ChatRouteLLM(**lc_children(), router=policy, api_key=SecretStr(ROUTER_KEY))
    failing = lc_children(error=ConnectionError("reset"))
    fallback = ChatRouteLLM(**failing, router=router, threshold=0.0, fallback=True)
    broken = ChatRouteLLM(**lc_children(error=ConnectionError("reset")), router=router, threshold=0.0)
    li_ok = RouteLLM(strong=SecretLLM(label="strong"), weak=SecretLLM(label="weak"), router=policy)
    li_fallback = RouteLLM(
        strong=SecretLLM(label="strong", error=ConnectionError("reset")),
        weak=SecretLLM(label="weak"),
        router=router,
        threshold=0.0,
        fallback=True,
    )
    messages = [ChatMessage(role=MessageRole.USER, content=PROMPT)]
    with caplog.at_level(logging.DEBUG):
        router.predict_win_rate([PROMPT])
        policy.decide(PROMPT)
        ok.invoke([HumanMessage(PROMPT)])
        list(ok.stream(PROMPT))
        asyncio.run(ok.ainvoke(PROMPT))
        fallback.invoke(PROMPT)
        with pytest.raises(ModelCallError):
            broken.invoke(PROMPT)
        li_ok.chat(messages)
        li_ok.complete(PROMPT)
        li_fallback.chat(messages)
        asyncio.run(li_fallback.achat(messages))
    assert any(r.levelno >= logging.WARNING and "falling back" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        rendered = record.getMessage() + (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        )
        assert_no_secret(rendered)
        if record.levelno >= logging.INFO:
            assert PRIVATE_WORD not in rendered, f"{record.name} logged the prompt at {record.levelname}: {rendered}"
        if record.name.startswith(("routellm_core", "langchain_routellm", "llamaindex_routellm")):
            assert PRIVATE_WORD not in rendered, f"{record.name} logged the prompt: {rendered}"
