"""Helpers shared by the LangChain integration: routing text, child model names, metadata, message checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBinding

from routellm_core.decisions import METADATA_KEY, ServedDecision
from routellm_core.errors import InvalidInputError
from routellm_core.routing.engine import RouteOn
from routellm_core.routing.text import Turn, join_text, role_of
from routellm_core.routing.text import routing_text as core_routing_text

#: ``route_on`` values: the core's canonical names and their aliases (``"last_human"`` = ``"last_user"``).

#: LangChain message classes (chunks subclass them) -> role names of the core's role table.
_ROLES: tuple[tuple[type[BaseMessage], str], ...] = (
    (HumanMessage, "user"),
    (AIMessage, "assistant"),
    (SystemMessage, "system"),
)
#: Block types whose ``text`` counts as routing text.
_TEXT_BLOCK_TYPES = frozenset({"text", "input_text"})
#: Dict keys tried, in order, when a Runnable's input is a dict and no routing text selector is given.
DEFAULT_TEXT_KEYS = ("input", "question", "query", "text", "prompt", "messages")


# ---- routing text ----------------------------------------------------------------------------------------
def message_text(message: BaseMessage) -> str:
    """Text of a message: string content, or the text parts of list (multimodal) content joined by newlines.

    Images, audio, files, tool-use blocks and other non-text parts are ignored.
    """
    content = message.content
    if isinstance(content, str):
        return content.strip()
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") in _TEXT_BLOCK_TYPES:
            text = block.get("text")
            if isinstance(text, str):
                parts.append(text)
    return join_text(parts)


def _turn(message: BaseMessage) -> Turn:
    """The neutral turn of a LangChain message (roles through the core's one role table)."""
    if isinstance(message, ChatMessage):
        role = role_of(message.role)
    else:
        role = role_of(next((r for cls, r in _ROLES if isinstance(message, cls)), "tool"))
    return Turn(role, message_text(message), non_text=_has_non_text(message))


def _has_non_text(message: BaseMessage) -> bool:
    """Whether a message holds parts routing skips (images, audio, files, tool-use blocks...)."""
    content = message.content
    return not isinstance(content, str) and any(
        not isinstance(block, str) and not (isinstance(block, dict) and block.get("type") in _TEXT_BLOCK_TYPES)
        for block in content
    )


def routing_text(messages: Sequence[BaseMessage], route_on: RouteOn = "last_user") -> str:
    """The text the router scores for a conversation: :func:`routellm_core.routing.text.routing_text` over the
    messages' text parts (images, audio, files and tool-use blocks are ignored).

    Args:
        messages: The conversation, oldest first.
        route_on: ``"last_user"`` (alias ``"last_human"``), ``"conversation"`` or ``"rag_query"``.

    Raises:
        InvalidInputError: No messages, no human message, or no human text at all (e.g. only images).
    """
    if isinstance(messages, (str, bytes)) or not all(isinstance(m, BaseMessage) for m in messages):
        raise InvalidInputError("expected a sequence of LangChain messages")
    return core_routing_text([_turn(m) for m in messages], route_on)


def to_messages(value: Any) -> list[BaseMessage] | None:
    """Messages from a chat-model style input (PromptValue, message, list of messages), else ``None``."""
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(m, BaseMessage) for m in value):
        return list(value)
    return None


# ---- tool-result steps -----------------------------------------------------------------------------------
def tool_step_record(messages: Sequence[BaseMessage]) -> ServedDecision | None:
    """For a step whose last message is a tool result, the record of the answer that issued the tool call.

    Reads the ``response_metadata["routellm"]`` this integration attached to the AI message whose tool calls the
    trailing tool messages answer. ``None`` when the last message is not a tool result or that AI message carries
    no (valid) record.
    """
    if not messages or not isinstance(messages[-1], ToolMessage):
        return None
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            continue
        if not isinstance(message, AIMessage):
            return None
        meta = message.response_metadata.get(METADATA_KEY)
        return ServedDecision.from_dict(meta) if isinstance(meta, dict) else None
    return None


# ---- child models ----------------------------------------------------------------------------------------
def unwrap_model(child: Any) -> Any:
    """The chat model under any ``RunnableBinding`` layers (``bind_tools``, ``bind``, ``with_config``)."""
    while isinstance(child, RunnableBinding):
        child = child.bound
    return child


def model_name(child: Any) -> str:
    """A display name for a child: its ``model`` / ``model_name`` / ``model_id`` field, else its type name.

    Never reads anything but those name fields, so no credential can leak into a name.
    """
    model = unwrap_model(child)
    for attr in ("model_name", "model", "model_id", "deployment_name", "repo_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    if isinstance(model, BaseChatModel):
        try:
            return f"{type(model).__name__}({model._llm_type})"
        except Exception:  # _llm_type may be abstract or raise on partial models
            return type(model).__name__
    if isinstance(model, Runnable):
        return model.get_name()
    return type(model).__name__


def model_provider(child: Any) -> str | None:
    """The child's ``ls_provider`` as it reports it to LangSmith, if it is a chat model."""
    model = unwrap_model(child)
    if isinstance(model, BaseChatModel):
        try:
            provider = model._get_ls_params().get("ls_provider")
        except Exception:
            return None
        return provider if isinstance(provider, str) else None
    return None


def child_callbacks(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun,
) -> CallbackManager | AsyncCallbackManager:
    """A callback manager for runs nested under a chat-model run (what ``get_child()`` does for chains).

    Inheritable handlers, tags and metadata are passed down; ``parent_run_id`` is the chat-model run.
    """
    cls = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) else CallbackManager
    manager = cls(handlers=[], parent_run_id=run_manager.run_id)
    manager.set_handlers(run_manager.inheritable_handlers)
    manager.add_tags(run_manager.inheritable_tags)
    manager.add_metadata(run_manager.inheritable_metadata)
    return manager


# ---- outputs ---------------------------------------------------------------------------------------------
def has_tool_call(message: BaseMessage) -> bool:
    """Whether an AI message (or chunk) carries a tool call in any form."""
    if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
        return True
    if isinstance(message, AIMessageChunk) and message.tool_call_chunks:
        return True
    return bool(message.additional_kwargs.get("tool_calls") or message.additional_kwargs.get("function_call"))


def is_empty_output(value: Any) -> bool:
    """Whether a child's answer is empty: a message with no text (whitespace only counts as none) and no tool
    call, or a blank string / ``None`` (the same rule as LlamaIndex's and the server's)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, BaseMessage):
        return not chunk_text(value).strip() and not has_tool_call(value)
    return False


def chunk_text(chunk: Any) -> str:
    """The text a streamed chunk carries: a string, or a message chunk's text content (else empty)."""
    if isinstance(chunk, str):
        return chunk
    content = getattr(chunk, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text", "")) if isinstance(part, dict) else ""
            for part in content
        )
    return ""


def with_metadata(value: Any, record: ServedDecision) -> Any:
    """Attach ``meta`` under ``response_metadata["routellm"]`` to a message (copied, never mutated).

    Also handles ``with_structured_output(..., include_raw=True)`` results (``{"raw": message, ...}``).
    Any other value is returned unchanged.
    """
    if isinstance(value, BaseMessage):
        meta = record.as_dict()
        return value.model_copy(update={"response_metadata": {**value.response_metadata, METADATA_KEY: meta}})
    if isinstance(value, dict) and isinstance(value.get("raw"), BaseMessage):
        return {**value, "raw": with_metadata(value["raw"], record)}
    return value


def as_chunk(message: BaseMessage) -> BaseMessageChunk:
    """A message chunk for a streamed value: chunks pass through; a whole ``AIMessage`` (a child that does
    not stream) becomes one final ``AIMessageChunk``."""
    if isinstance(message, BaseMessageChunk):
        return message
    if isinstance(message, AIMessage):
        return AIMessageChunk(
            content=message.content,
            additional_kwargs=message.additional_kwargs,
            response_metadata=message.response_metadata,
            usage_metadata=message.usage_metadata,
            id=message.id,
            name=message.name,
            tool_call_chunks=[
                {
                    "type": "tool_call_chunk",
                    "name": call["name"],
                    "args": json.dumps(call["args"], ensure_ascii=False),
                    "id": call["id"],
                    "index": index,
                }
                for index, call in enumerate(message.tool_calls)
            ],
            chunk_position="last",
        )
    raise TypeError(f"cannot stream a {type(message).__name__} as a chat model chunk")
