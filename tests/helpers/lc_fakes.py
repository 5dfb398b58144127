"""Deterministic offline chat models used as the *children* of the router in the LangChain tests.

``ToolEchoChatModel`` supports what the standard suites exercise when the features are claimed: tool calling
(with ``tool_choice``), structured output (through tool calling), usage metadata, streaming token by token with
the last chunk marked, and stop sequences. It also injects failures (raise, mid-stream failure, empty answer)
for the reliability tests. The router under test is always real.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr, SecretStr

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r"['\"‘“「](.+?)['\"’”」]")


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return " ".join(
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in message.content
        if isinstance(b, str) or b.get("type") == "text"
    )


def _words(messages: Sequence[BaseMessage]) -> int:
    return sum(len(_text(m).split()) for m in messages) or 1


def _schema_type(spec: dict[str, Any]) -> str:
    if "type" in spec:
        t = spec["type"]
        return t[0] if isinstance(t, list) else t
    for option in spec.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return option["type"]
    return "string"


def _convert(value: str, kind: str) -> Any:
    value = value.strip().strip("'\"")
    if kind == "integer":
        return int(float(value))
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return value.lower() in {"true", "1", "yes"}
    return value


def _tool_args(tool: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments for a tool call read from the prompt: ``name(a, b)``, else numbers / quoted strings in order."""
    function = tool["function"]
    properties: dict[str, Any] = function.get("parameters", {}).get("properties", {})
    if not properties:
        return {}
    call = re.search(re.escape(function["name"]) + r"\(([^)]*)\)", text)
    if call is not None and call.group(1).strip():
        values = [v for v in call.group(1).split(",") if v.strip()]
        return {
            name: _convert(value, _schema_type(spec))
            for (name, spec), value in zip(properties.items(), values, strict=False)
        }
    numbers = iter(_NUMBER.findall(text))
    quoted = iter(_QUOTED.findall(text))
    args: dict[str, Any] = {}
    for name, spec in properties.items():
        kind = _schema_type(spec)
        if kind in ("integer", "number"):
            args[name] = _convert(next(numbers, "0"), kind)
        elif kind == "boolean":
            args[name] = False
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
        else:
            args[name] = next(quoted, None) or f"{name}: {text.strip()}"
    return args


class ToolEchoChatModel(BaseChatModel):
    """A local chat model that answers ``"[label] ..."`` and calls bound tools when asked."""

    label: str = "fake"
    """Prefix of every answer, so tests and examples see which child answered."""

    model: str = "fake-model"
    """Model name reported in ``response_metadata["model_name"]``."""

    answer: str | None = None
    """Fixed answer text; by default an echo of the latest human message."""

    error: Any = None
    """Exception (instance or class) to raise on every call."""

    fail_after_chunks: int | None = None
    """When streaming, raise after this many chunks were yielded."""

    empty: bool = False
    """Answer with an empty message (no content, no tool call)."""

    api_key: SecretStr | None = None
    """A credential, to check that it never leaks into the router's repr or metadata."""

    calls: list[str] = Field(default_factory=list, exclude=True, repr=False)
    """Log of the calls this model received (shared with its bindings)."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "tool-echo"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "label": self.label}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    # ---- answering -------------------------------------------------------------------------------------
    def _pick_tool(self, tools: list[dict[str, Any]], tool_choice: Any, text: str) -> dict[str, Any] | None:
        by_name = {t["function"]["name"]: t for t in tools}
        if isinstance(tool_choice, dict):
            tool_choice = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
        if isinstance(tool_choice, str) and tool_choice in by_name:
            return by_name[tool_choice]
        if tool_choice == "none":
            return None
        lowered = text.lower()
        for name, tool in by_name.items():
            if name.lower() in lowered:
                return tool
        for name, tool in by_name.items():
            words = [w for w in name.lower().split("_") if len(w) > 3 and w not in {"get", "tool"}]
            if words and any(w in lowered for w in words):
                return tool
        if tool_choice in ("any", "required", True):
            return tools[0]
        return None

    def _reply(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> AIMessage:
        with self._lock:
            self.calls.append(type(messages[-1]).__name__ if messages else "")
            call_id = len(self.calls)
        if self.error is not None:
            raise self.error
        usage = {"input_tokens": _words(messages), "output_tokens": 0, "total_tokens": 0}
        # a per-call ``model`` kwarg overrides the model, as provider chat models allow
        meta = {"model_name": kwargs.get("model") or self.model, "finish_reason": "stop"}
        if self.empty:
            usage["total_tokens"] = usage["input_tokens"]
            return AIMessage(content="", usage_metadata=usage, response_metadata=meta)
        last = messages[-1]
        human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        human_text = _text(human) if human is not None else ""
        tools = kwargs.get("tools") or []
        if tools and not isinstance(last, ToolMessage):
            tool = self._pick_tool(tools, kwargs.get("tool_choice"), human_text)
            if tool is not None:
                args = _tool_args(tool, human_text)
                usage["output_tokens"] = len(json.dumps(args).split())
                usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
                return AIMessage(
                    content="",
                    tool_calls=[
                        {"name": tool["function"]["name"], "args": args, "id": f"call_{call_id}", "type": "tool_call"}
                    ],
                    usage_metadata=usage,
                    response_metadata={**meta, "finish_reason": "tool_calls"},
                )
        if self.answer is not None:
            body = self.answer
        elif isinstance(last, ToolMessage):
            body = f"The tool said: {_text(last)}"
        else:
            body = f"You said: {human_text or _text(last)}"
        text = f"[{self.label}] {body}"
        for token in stop or []:
            if token and token in text:
                text = text[: text.index(token)]
        usage["output_tokens"] = len(text.split())
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        return AIMessage(content=text or ".", usage_metadata=usage, response_metadata=meta)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages, stop, **kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._reply(messages, stop, **kwargs)
        pieces: list[AIMessageChunk] = [AIMessageChunk(content="")]  # a role-only opening chunk, as APIs send
        if isinstance(message.content, str) and message.content:
            pieces += [AIMessageChunk(content=tok) for tok in re.findall(r"\S+\s*", message.content)]
        for index, call in enumerate(message.tool_calls):
            pieces.append(
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "type": "tool_call_chunk",
                            "name": call["name"],
                            "args": json.dumps(call["args"], ensure_ascii=False),
                            "id": call["id"],
                            "index": index,
                        }
                    ],
                )
            )
        pieces.append(
            AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )
        for i, piece in enumerate(pieces):
            if self.fail_after_chunks is not None and i >= self.fail_after_chunks:
                raise ConnectionError(f"{self.model} stream dropped after {i} chunks")
            yield ChatGenerationChunk(message=piece)


# ---- the shared real router -------------------------------------------------------------------------------
_ROUTER_LOCK = threading.Lock()
_ROUTER: list[Any] = []


def shared_router() -> Any:
    """The real router the LangChain tests route with: the shipped ``default`` router, loaded once."""
    from routellm_core.routers.registry import load_router

    with _ROUTER_LOCK:
        if not _ROUTER:
            _ROUTER.append(load_router("default"))
        return _ROUTER[0]


def split_threshold(texts: Sequence[str]) -> float:
    """A threshold that sends about half of ``texts`` to each child under the shared router.

    Tests compute expected choices from the router itself, so they hold for any trained router; this
    threshold only makes sure both children are exercised whatever the router's score range.
    """
    rates = sorted(float(p) for p in shared_router().predict_win_rate(list(texts)))
    mid = len(rates) // 2
    return (rates[mid - 1] + rates[mid]) / 2


def children(**kwargs: Any) -> dict[str, ToolEchoChatModel]:
    """A labelled strong / weak pair of fake children (keyword arguments apply to both)."""
    return {
        "strong": ToolEchoChatModel(label="strong", model="fake-strong-1", **kwargs),
        "weak": ToolEchoChatModel(label="weak", model="fake-weak-1", **kwargs),
    }
