"""Offline stand-ins for a strong and a weak LLM, labelled so the examples show which one answered.

They are LlamaIndex's mock LLMs (``MockLLM``, ``MockFunctionCallingLLM``) with a label and a model name; swap
them for real models (``OpenAI(model="gpt-4o")``, ``Ollama(model="llama3.1")``...) in your own code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM

from llamaindex_routellm import RoutingDecisionEvent, rag_query


class DemoLLM(MockLLM):
    """A ``MockLLM`` that answers ``[label] ...`` with the question and the start of the retrieved context."""

    label: str = "demo"

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label

    @classmethod
    def class_name(cls) -> str:
        return "DemoLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"demo-{self.label}-llm", context_window=8192, num_output=256)

    def _answer(self, prompt: str) -> str:
        question = rag_query(prompt).strip()
        context = prompt.split("---------------------\n")
        source = context[1].strip().splitlines()[-1][:70] if len(context) > 2 else ""
        cited = f' Source: "{source}..."' if source else ""
        return f"[{self.label}] You asked: {question!r}.{cited}"

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._answer(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        answer = self._answer(prompt)

        def gen() -> CompletionResponseGen:
            text = ""
            for word in answer.split(" "):
                delta = word if not text else f" {word}"
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return gen()


class DemoAgentLLM(MockFunctionCallingLLM):
    """A ``MockFunctionCallingLLM`` that calls the first tool with the two numbers in the user's question, then
    answers ``[label] The answer is <tool output>.``"""

    label: str = "demo"

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(response_generator=self._respond, **kwargs)
        self.label = label

    @classmethod
    def class_name(cls) -> str:
        return "DemoAgentLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"demo-{self.label}-llm", is_function_calling_model=True, num_output=256)

    def _respond(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if messages and messages[-1].role == MessageRole.TOOL:
            return ChatMessage(
                role=MessageRole.ASSISTANT, content=f"[{self.label}] The answer is {messages[-1].content}."
            )
        question = next((m.content or "" for m in reversed(messages) if m.role == MessageRole.USER), "")
        tools = kwargs.get("tools") or []
        numbers = [int(n) for n in re.findall(r"-?\d+", question)][:2]
        if not tools or len(numbers) < 2:
            return ChatMessage(role=MessageRole.ASSISTANT, content=f"[{self.label}] I can only multiply two numbers.")
        call = ToolCallBlock(
            tool_call_id=f"call-{self.label}-{numbers[0]}-{numbers[1]}",
            tool_name=tools[0].metadata.name,
            tool_kwargs={"a": numbers[0], "b": numbers[1]},
        )
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])


class DecisionLog(BaseEventHandler):
    """Collects the router's decisions from LlamaIndex instrumentation."""

    decisions: list[RoutingDecisionEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "DecisionLog"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, RoutingDecisionEvent):
            self.decisions.append(event)
