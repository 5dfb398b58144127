"""Helpers shared by the LangChain integration: routing text, child model names, metadata, message checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

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
    ToolMessage,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBinding
from pydantic import ValidationError

from routellm_core.errors import InvalidInputError, RouteLLMError
from routellm_core.routers.base import RoutingDecision, check_threshold

Tier = Literal["strong", "weak"]
RouteOn = Literal["last_human", "conversation"]
ToolStep = Literal["continue", "route"]

#: Key under which the decision appears in ``response_metadata`` and run metadata.
METADATA_KEY = "routellm"
#: Block types whose ``text`` counts as routing text.
_TEXT_BLOCK_TYPES = frozenset({"text", "input_text"})
#: Dict keys tried, in order, when a Runnable's input is a dict and no routing text selector is given.
DEFAULT_TEXT_KEYS = ("input", "question", "query", "text", "prompt", "messages")


def other_tier(tier: Tier) -> Tier:
    """The other child: ``"weak"`` for ``"strong"`` and vice versa."""
    return "weak" if tier == "strong" else "strong"


def reraise_routellm_error(exc: ValidationError) -> None:
    """Re-raise the project's own error when it is the only cause of a pydantic ``ValidationError``.

    Pydantic wraps every ``ValueError`` raised while validating a model; the router's errors
    (``UnknownRouterError``, ``InvalidThresholdError``, ``CheckpointError``...) are ``ValueError`` s, and callers
    should be able to catch them by type. Returns normally when the error is a plain validation error.
    """
    errors = exc.errors()
    if len(errors) == 1:
        original = (errors[0].get("ctx") or {}).get("error")
        if isinstance(original, RouteLLMError):
            raise original from None


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
    return "\n".join(p.strip() for p in parts if p.strip())


def is_human(message: BaseMessage) -> bool:
    """Whether a message comes from the user (``HumanMessage`` or a ``ChatMessage`` with role user/human)."""
    if isinstance(message, HumanMessage):
        return True
    return isinstance(message, ChatMessage) and message.role.lower() in {"user", "human"}


def routing_text(messages: Sequence[BaseMessage], route_on: RouteOn = "last_human") -> str:
    """The text the router scores for a conversation.

    Args:
        messages: The conversation, oldest first.
        route_on: ``"last_human"``: the text of the latest human message that has text (text parts of
            multimodal content included; a trailing image-only message falls back to the previous human
            text). ``"conversation"``: the text of every human and AI message, oldest first, one per line.
            System and tool messages never count: a tool result is never the routing text by itself.

    Raises:
        InvalidInputError: No messages, no human message, or no human/AI text at all (e.g. only images).
    """
    if not messages:
        raise InvalidInputError("no messages to route: the conversation is empty")
    humans = [m for m in messages if is_human(m)]
    if not humans:
        raise InvalidInputError(
            f"no human message to route on: the conversation holds only {sorted({m.type for m in messages})} messages"
        )
    if route_on == "conversation":
        texts = [message_text(m) for m in messages if is_human(m) or isinstance(m, AIMessage)]
        text = "\n".join(t for t in texts if t)
    elif route_on == "last_human":
        text = next((t for t in map(message_text, reversed(humans)) if t), "")
    else:
        raise InvalidInputError(f"route_on must be 'last_human' or 'conversation', got {route_on!r}")
    if not text:
        raise InvalidInputError(
            "the human messages hold no text (only images or other non-text content); the router needs text to route on"
        )
    return text


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
def tool_step_decision(messages: Sequence[BaseMessage]) -> RoutingDecision | None:
    """For a step whose last message is a tool result, the decision that served the tool call.

    Looks at the AI message that issued the tool calls answered by the trailing tool messages and reads the
    ``response_metadata["routellm"]`` this integration attached to it. Returns a decision whose ``choice``
    is the child that actually answered (the fallback child when fallback served that step), or ``None``
    when the last message is not a tool result or that AI message carries no (valid) routing metadata.
    """
    if not messages or not isinstance(messages[-1], ToolMessage):
        return None
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            continue
        if not isinstance(message, AIMessage):
            return None
        meta = message.response_metadata.get(METADATA_KEY)
        if not isinstance(meta, dict):
            return None
        try:
            choice = meta["choice"]
            if choice not in ("strong", "weak"):
                return None
            served: Tier = other_tier(choice) if meta.get("fallback") else choice
            return RoutingDecision(
                router=str(meta["router"]),
                win_rate=float(meta["win_rate"]),
                threshold=check_threshold(float(meta["threshold"])),
                choice=served,
            )
        except (KeyError, TypeError, ValueError):
            return None
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
    """Whether a child's answer is empty: a message with no content and no tool call, or ``""``/``None``."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value
    if isinstance(value, BaseMessage):
        return not value.content and not has_tool_call(value)
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


def with_metadata(value: Any, meta: dict[str, Any]) -> Any:
    """Attach ``meta`` under ``response_metadata["routellm"]`` to a message (copied, never mutated).

    Also handles ``with_structured_output(..., include_raw=True)`` results (``{"raw": message, ...}``).
    Any other value is returned unchanged.
    """
    if isinstance(value, BaseMessage):
        return value.model_copy(update={"response_metadata": {**value.response_metadata, METADATA_KEY: meta}})
    if isinstance(value, dict) and isinstance(value.get("raw"), BaseMessage):
        return {**value, "raw": with_metadata(value["raw"], meta)}
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
