"""LlamaIndex messages: checked, and the routing text of a conversation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    TextBlock,
    ToolCallBlock,
)

from routellm_core.errors import InvalidInputError
from routellm_core.routing.text import RouteOn, Turn, is_react_observation, join_text, names_react_action, role_of
from routellm_core.routing.text import routing_text as core_routing_text

#: ``route_on`` of one's own: the routing text of the messages.
RoutingTextFn = Callable[[Sequence[ChatMessage]], str]


def _message_text(message: ChatMessage) -> str:
    """Text of one message: its text blocks, stripped and joined by newlines; images, audio, documents, tool
    calls and other blocks are skipped (as in LangChain)."""
    return join_text([block.text for block in message.blocks if isinstance(block, TextBlock)])


def _check_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    if isinstance(messages, (str, bytes, bytearray)) or not isinstance(messages, Iterable):
        raise InvalidInputError(f"expected a sequence of ChatMessage, got {type(messages).__name__}")
    items = list(messages)
    if not items:
        raise InvalidInputError("no messages to route: the message list is empty")
    for i, message in enumerate(items):
        if not isinstance(message, ChatMessage):
            raise InvalidInputError(f"message {i} is {type(message).__name__}, not a LlamaIndex ChatMessage")
    return items


def _turns(items: Sequence[ChatMessage]) -> list[Turn]:
    """The neutral turns of LlamaIndex messages (roles through the core's one role table)."""
    return [
        Turn(
            role_of(message.role.value),
            _message_text(message),
            non_text=any(not isinstance(block, TextBlock) for block in message.blocks),
        )
        for message in items
    ]


def routing_text(messages: Sequence[ChatMessage], route_on: RouteOn | RoutingTextFn = "last_user") -> str:
    """The text the router scores for a chat call (:func:`routellm_core.routing.text.routing_text`).

    Args:
        messages: The call's messages, oldest first.
        route_on: ``"last_user"`` (alias ``"last_human"``), ``"conversation"``, ``"rag_query"`` or a callable.

    Raises:
        InvalidInputError: Empty list, no user message, no user text, non-text content in a user or system
            message, or a callable that returns no text.
    """
    items = _check_messages(messages)
    if callable(route_on):
        text = route_on(items)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("the route_on callable returned no text to route on")
        return text
    return core_routing_text(_turns(items), route_on)


def issued_keys(message: ChatMessage) -> list[str]:
    """The ids of the tool calls an answer makes (``ToolCallBlock`` s, or OpenAI-style ``tool_calls``)."""
    keys = [b.tool_call_id for b in message.blocks if isinstance(b, ToolCallBlock) and b.tool_call_id]
    for call in message.additional_kwargs.get("tool_calls") or ():
        call_id = call.get("id") if isinstance(call, dict) else getattr(call, "id", None)
        if isinstance(call_id, str) and call_id:
            keys.append(call_id)
    return keys


def makes_tool_calls(message: ChatMessage) -> bool:
    """Whether an answer calls tools (``ToolCallBlock`` s or OpenAI-style ``tool_calls``), ids or not."""
    return any(isinstance(b, ToolCallBlock) for b in message.blocks) or bool(
        message.additional_kwargs.get("tool_calls")
    )


def names_action(message: ChatMessage) -> bool:
    """Whether an answer is a ReAct step naming an ``Action:`` (its tool output comes back as an observation)."""
    return names_react_action(_message_text(message))


def tool_result_ids(messages: Sequence[ChatMessage]) -> list[str]:
    """The ``tool_call_id`` s of the trailing tool messages (as ``FunctionAgent`` writes them); empty when the
    last message is not a tool result."""
    keys = []
    for message in reversed(messages):
        if role_of(message.role.value) != "tool":
            break
        call_id = message.additional_kwargs.get("tool_call_id")
        if isinstance(call_id, str) and call_id:
            keys.append(call_id)
    return keys


def ends_with_observation(messages: Sequence[ChatMessage]) -> bool:
    """Whether the last message is a ReAct observation (a user ``"Observation: ..."`` after an action)."""
    if len(messages) < 2:
        return False
    previous, turn = _turns(messages[-2:])
    return is_react_observation(previous, turn)


def conversation_key(messages: Sequence[ChatMessage]) -> str:
    """A digest of the messages' roles and texts: a ReAct step's input, found again as the history before its
    action and observation (ReAct rewrites the action it stores, so the action itself cannot be the key)."""
    digest = hashlib.sha256()
    for message in messages:
        digest.update(f"{message.role.value}\x1f{_message_text(message)}\x1e".encode())
    return digest.hexdigest()
