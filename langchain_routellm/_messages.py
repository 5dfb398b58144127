"""LangChain messages: the routing text of a conversation, chat-model inputs as messages, and the record
an agent's tool step continues."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import ChatPromptValue, PromptValue

from routellm_core.decisions import METADATA_KEY, ServedDecision
from routellm_core.errors import InvalidInputError
from routellm_core.routing.text import RouteOn, Turn, join_text, role_of
from routellm_core.routing.text import routing_text as core_routing_text

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


def child_messages(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The conversation as a child model gets it: earlier routed replies without this router's record
    (``response_metadata["routellm"]``, which holds a fresh decision id each run), so a child's cache (LangChain's
    ``set_llm_cache``, keyed by the serialized messages) still hits from an agent's second step on. Only the
    messages that carry the record are copied; the caller's are never changed."""
    return [
        m.model_copy(update={"response_metadata": {k: v for k, v in m.response_metadata.items() if k != METADATA_KEY}})
        if isinstance(m, AIMessage) and METADATA_KEY in m.response_metadata
        else m
        for m in messages
    ]


def child_input(value: Any) -> Any:
    """A Runnable child's input: a list of messages or a chat prompt value with :func:`child_messages` applied;
    any other input (a dict for a prompt template, a string) as it is."""
    if isinstance(value, ChatPromptValue):
        return ChatPromptValue(messages=child_messages(value.messages))
    if isinstance(value, (list, tuple)) and value and all(isinstance(m, BaseMessage) for m in value):
        return child_messages(value)
    return value


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
