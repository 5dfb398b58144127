"""Offline stand-ins for a strong and a weak chat model, shared by the LangChain examples.

They are not part of the package: they only let the examples run without network or API keys. Each answer is
labelled with the model that produced it ("[strong model] ..." / "[weak model] ...") so the routing is visible.
The router the examples use is real: the shipped default router.

Swap them for real models in your code, e.g. ``ChatRouteLLM(strong="openai:gpt-4o", weak="openai:gpt-4o-mini")``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

_QUOTED = re.compile(r"['\"](.+?)['\"]")
_NUMBERS = re.compile(r"-?\d+(?:\.\d+)?")


class DemoChatModel(BaseChatModel):
    """A deterministic local chat model: labelled answers, word-by-word streaming, simple tool calls."""

    label: str
    """Shown in front of every answer, e.g. ``"strong model"``."""

    model: str
    """Model name reported in response metadata."""

    style: str = "brief"
    """``"thorough"`` or ``"brief"``: how the canned answer is phrased."""

    @property
    def _llm_type(self) -> str:
        return "demo-chat"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _answer(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
        human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        question = human.text if human is not None else ""
        usage = {"input_tokens": sum(len(m.text.split()) for m in messages), "output_tokens": 0, "total_tokens": 0}
        meta = {"model_name": self.model}
        last = messages[-1]
        if tools and not isinstance(last, ToolMessage):
            for tool in tools:
                name = tool["function"]["name"]
                if any(word in question.lower() for word in name.split("_") if len(word) > 3):
                    params = list(tool["function"]["parameters"].get("properties", {}))
                    values = _QUOTED.findall(question) or _NUMBERS.findall(question) or [question]
                    args = dict(zip(params, values, strict=False))
                    return AIMessage(
                        content="",
                        tool_calls=[{"name": name, "args": args, "id": f"call_{name}", "type": "tool_call"}],
                        usage_metadata={**usage, "output_tokens": 8, "total_tokens": usage["input_tokens"] + 8},
                        response_metadata=meta,
                    )
        if isinstance(last, ToolMessage):
            text = f"[{self.label}] The {last.name or 'tool'} tool says: {last.text}"
        elif self.style == "thorough":
            text = f"[{self.label}] Let me work through this step by step: {question!r} ... (a careful answer)"
        else:
            text = f"[{self.label}] Quick answer to {question!r}."
        n = len(text.split())
        return AIMessage(
            content=text,
            usage_metadata={**usage, "output_tokens": n, "total_tokens": usage["input_tokens"] + n},
            response_metadata=meta,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages, kwargs.get("tools") or []))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._answer(messages, kwargs.get("tools") or [])
        for token in re.findall(r"\S+\s*", message.text):
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        for i, call in enumerate(message.tool_calls):
            chunk = {"name": call["name"], "args": json.dumps(call["args"]), "id": call["id"], "index": i}
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[chunk]))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )


def demo_children() -> dict[str, DemoChatModel]:
    """``strong=`` and ``weak=`` keyword arguments for the router."""
    return {
        "strong": DemoChatModel(label="strong model", model="demo-strong-xl", style="thorough"),
        "weak": DemoChatModel(label="weak model", model="demo-weak-mini"),
    }


def describe(meta: dict[str, Any]) -> str:
    """One line for a ``response_metadata["routellm"]`` decision."""
    line = (
        f"router={meta['router']} win_rate={meta['win_rate']:.3f} threshold={meta['threshold']:.3f} "
        f"-> {meta['choice']} ({meta['model']})"
    )
    if meta.get("fallback"):
        line += f" [fallback from {meta['fallback_from']}: {meta['fallback_error']}]"
    if meta.get("continued"):
        line += " [continued: tool result goes back to the model that called the tool]"
    return line
