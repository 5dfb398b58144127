"""Request fields a LangChain upstream reads as its own run options: OpenAI's ``metadata`` (key-value tags of a
request, which the Agents SDK and others send) made every call to a LangChain upstream fail (502: binding it to the
model collided with LangChain's own ``metadata`` argument). It is now the LangChain run's metadata (what tracing
shows); LangChain's other run options (``tags``, ``run_name``...) are no chat-completions fields and are refused with
a 400 naming them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from routellm_core.server import ChatModelUpstream, ServerThread

WEAK_CHAT = {"model": "router-fast-1.0", "messages": [{"role": "user", "content": "Name a colour."}]}


class RunRecorder(BaseChatModel):
    """Answers "blue" and keeps each call's arguments (``seen``) and, through a callback as tracing sees it, each run's
    metadata (``runs``)."""

    seen: list[dict[str, Any]] = Field(default_factory=list)
    runs: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "run-recorder"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen.append(kwargs)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("blue"))])

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        self.seen.append(kwargs)
        yield ChatGenerationChunk(message=AIMessageChunk("blue"))


class MetadataSeen(BaseCallbackHandler):
    """A tracer's view: the metadata each chat model run starts with."""

    def __init__(self, into: list[dict[str, Any]]) -> None:
        self.into = into

    def on_chat_model_start(self, serialized: Any, messages: Any, *, metadata: Any = None, **kwargs: Any) -> None:
        self.into.append(dict(metadata or {}))


@pytest.fixture()
def recorder(serve: Callable[..., ServerThread]) -> tuple[ServerThread, RunRecorder]:
    model = RunRecorder()
    model.callbacks = [MetadataSeen(model.runs)]
    return serve(weak=ChatModelUpstream(model, name="lc-weak")), model


@pytest.mark.parametrize("stream", [False, True])
def test_openai_metadata_becomes_the_langchain_runs_metadata(
    recorder: tuple[ServerThread, RunRecorder], stream: bool
) -> None:
    server, model = recorder
    body = {**WEAK_CHAT, "stream": stream, "metadata": {"team": "search", "ticket": "T-42"}, "user": "u1"}
    answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert "blue" in answer.text
    assert model.runs[-1]["team"] == "search" and model.runs[-1]["ticket"] == "T-42"
    assert "metadata" not in model.seen[-1] and model.seen[-1].get("user") == "u1"  # other fields reach the model


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"tags": ["a"]}, "tags"),
        ({"run_name": "x", "callbacks": None}, "callbacks, run_name"),
        ({"metadata": ["not", "an", "object"]}, "metadata must be an object"),
        # a review's cases: more of LangChain's call arguments (a TypeError, a 502) and its own tracing keys
        ({"input": "x"}, "input"),
        ({"run_manager": None}, "run_manager"),
        ({"metadata": {"ls_model_name": "spoofed"}}, "LangChain's own"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "at most 16"),
        ({"metadata": {"team": 3}}, "values are strings"),
    ],
)
def test_langchains_run_options_are_refused_by_name(
    recorder: tuple[ServerThread, RunRecorder], fields: dict[str, Any], named: str
) -> None:
    server, model = recorder
    answer = httpx.post(f"{server.url}/v1/chat/completions", json={**WEAK_CHAT, **fields}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]["message"]
    assert model.seen == []  # refused before the model was called
