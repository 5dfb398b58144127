"""LlamaIndex stand-ins for the strong and weak children in tests (imported as ``from li_fakes import ...``, like
``lc_fakes``). The router under test is always real; these only say which side answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from routellm_core.routing.text import rag_query


class LabelledLLM(MockLLM):
    """``MockLLM`` answering ``[label] <the query>`` (the question of a RAG prompt), recording the prompts it got;
    it streams its answer in two chunks."""

    label: str = "mock"
    prompts: list[str] = Field(default_factory=list)

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    @property
    def calls(self) -> int:
        """Completions asked of this model (chat calls included, which LlamaIndex derives from them)."""
        return len(self.prompts)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"{self.label}-model")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=f"[{self.label}] {rag_query(prompt).strip()}")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        answer = self.complete(prompt).text

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=answer[:3], delta=answer[:3])
            yield CompletionResponse(text=answer, delta=answer[3:])

        return gen()


class ToolCallingLLM(FunctionCallingLLM):
    """A function-calling child for agent tests: on a user step it calls the first tool with ``args`` (a fixed
    answer, so two such models agree exactly when their ``args`` do); on a tool result it answers
    ``done`` (default ``"<name>: done"``). Records ``(name, "user" | "tool")`` per call in ``log``."""

    name: str = "tool-caller"
    args: dict[str, Any] = Field(default_factory=dict)
    done: str = ""
    ids: bool = True
    log: list[tuple[str, str]] = Field(default_factory=list)

    def __init__(self, name: str, args: dict[str, Any], done: str | None = None, ids: bool = True) -> None:
        super().__init__()
        self.name, self.args, self.log, self.ids = name, args, [], ids
        self.done = f"{name}: done" if done is None else done

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name, is_chat_model=True, is_function_calling_model=True)

    def _answer(self, messages: Sequence[ChatMessage], tools: Sequence[Any] | None) -> ChatResponse:
        step = "tool" if messages and messages[-1].role == MessageRole.TOOL else "user"
        self.log.append((self.name, step))
        if step == "tool" or not tools:
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self.done))
        call_id = f"call-{self.name}" if self.ids else None  # without: the parser names calls by their tool
        call = ToolCallBlock(tool_call_id=call_id, tool_name=tools[0].metadata.name, tool_kwargs=self.args)
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, blocks=[call]))

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = list(chat_history or [])
        if user_msg:
            messages.append(
                ChatMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str) else user_msg
            )
        return {"messages": messages, "tools": tools, **kwargs}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
        if not calls and error_on_no_tool_call:
            raise ValueError("no tool call in the response")
        return [
            ToolSelection(tool_id=c.tool_call_id or c.tool_name, tool_name=c.tool_name, tool_kwargs=c.tool_kwargs)
            for c in calls
        ]

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._answer(messages, kwargs.get("tools"))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._answer(messages, kwargs.get("tools"))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        response = self._answer(messages, kwargs.get("tools"))

        def gen() -> ChatResponseGen:
            yield ChatResponse(message=response.message, delta=response.message.content or "")

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        response = self._answer(messages, kwargs.get("tools"))

        async def gen() -> ChatResponseAsyncGen:
            yield ChatResponse(message=response.message, delta=response.message.content or "")

        return gen()

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        raise NotImplementedError

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        raise NotImplementedError


class DownLLM(ToolCallingLLM):
    """A function-calling child whose provider is down."""

    def _answer(self, messages: Any, tools: Any) -> Any:
        raise ConnectionError("upstream down")


def multiply(a: int = 6, b: int = 7) -> int:
    """Multiply two integers."""
    return a * b


def down_strong_pair(router: Any) -> Any:
    """A ``RouteLLM`` over gpt-4o (down) and gpt-4o-mini (calls ``multiply(6, 7)``) sending every call to the strong
    model (threshold 0), with fallback: the weak one answers instead."""
    from llamaindex_routellm import RouteLLM

    return RouteLLM(
        strong=DownLLM("s", {}),
        weak=ToolCallingLLM("w", {"a": 6, "b": 7}),
        router=router,
        threshold=0.0,
        fallback=True,
        strong_name="gpt-4o",
        weak_name="gpt-4o-mini",
    )


class Recorder(BaseEventHandler):
    """Every instrumentation event LlamaIndex dispatches while it is attached (the ``events`` fixture)."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type[BaseEvent]) -> list[Any]:
        """The recorded events of type ``kind``."""
        return [e for e in self.events if isinstance(e, kind)]


def user(text: str) -> ChatMessage:
    """A user message."""
    return ChatMessage(role=MessageRole.USER, content=text)


class WindowedLLM(LabelledLLM):
    """A :class:`LabelledLLM` with a context window that, like a provider's API, refuses a prompt that leaves less
    room than its ``num_output`` (its ``max_tokens``) for the answer; prompts are counted with LlamaIndex's
    tokenizer, as its prompt helper counts them."""

    context_window: int = 4096
    num_output: int = 256

    def __init__(self, label: str, context_window: int, num_output: int) -> None:
        super().__init__(label)
        self.context_window, self.num_output = context_window, num_output

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            model_name=f"{self.label}-model", context_window=self.context_window, num_output=self.num_output
        )

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        from llama_index.core.utils import get_tokenizer

        tokens = len(get_tokenizer()(prompt))
        if tokens + self.num_output > self.context_window:
            raise ValueError(
                f"{self.label}: {tokens} prompt tokens + {self.num_output} for the answer exceed the context window "
                f"of {self.context_window}"
            )
        return super().complete(prompt, formatted=formatted, **kwargs)
