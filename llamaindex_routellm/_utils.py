"""Routing text from LlamaIndex chat messages, and small helpers shared by the LLM.

Routing policy for chat messages (``route_on``):

- ``"last_user"`` (default): the text of the latest **user** message. Messages after it (assistant turns, tool
  calls, tool results) are ignored, so in an agent step whose last message is a tool result the router still
  routes on the user's request; every step of one user turn therefore gets the same decision.
- ``"conversation"``: every user and assistant turn, oldest first, each prefixed by its role. System, tool and
  function messages are left out: tool outputs are data, not the task, and are never routing text.
- ``"rag_query"``: like ``"last_user"``, but when that message is one of LlamaIndex's question-answering prompts
  (text QA, tree summarize, refine: ``...Query: {query_str}\nAnswer:``), only the query inside it. A query
  engine's prompt starts with the retrieved context, which would otherwise dominate the routing text (long texts
  are truncated from the end before embedding). Any other message routes on its whole text.
- a callable ``(messages) -> str``: your own extraction.

Validation (both built-in modes): an empty message list, no user message, a latest user message without text,
or a user / system message holding anything but text (image, audio, video, document blocks) raise
:class:`~routellm_core.errors.InvalidInputError`. Assistant and tool messages may hold tool calls, thinking and
citation blocks (an agent's own history), which are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms import LLM

from routellm_core.errors import InvalidInputError

RouteOn = Literal["last_user", "conversation", "rag_query"]
RoutingTextFn = Callable[[Sequence[ChatMessage]], str]

#: Roles whose messages are written by the user or the application: text only.
_INPUT_ROLES = frozenset({MessageRole.USER, MessageRole.SYSTEM, MessageRole.DEVELOPER})
#: Roles of model turns included in ``"conversation"`` routing text.
_ASSISTANT_ROLES = frozenset({MessageRole.ASSISTANT, MessageRole.CHATBOT, MessageRole.MODEL})


#: (start marker, end markers) around ``{query_str}`` in LlamaIndex's default QA / summarize / refine prompts.
_RAG_QUERY_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("\nQuery: ", ("\nAnswer:", "\nOriginal Answer:")),
    ("The original query is as follows: ", ("\nWe have provided an existing answer:",)),
)


def rag_query(text: str) -> str:
    """The query inside one of LlamaIndex's question-answering prompts, or ``text`` itself if it is none."""
    for marker, ends in _RAG_QUERY_MARKERS:
        start = text.rfind(marker)
        if start < 0:
            continue
        rest = text[start + len(marker) :]
        for end in ends:
            stop = rest.find(end)
            if stop >= 0 and rest[:stop].strip():
                return rest[:stop].strip()
    return text


def _message_text(message: ChatMessage, index: int) -> str:
    """Text of one message; raises for non-text content in user / system messages."""
    parts: list[str] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append(block.text)
        elif isinstance(block, CachePoint):
            continue
        elif message.role in _INPUT_ROLES:
            raise InvalidInputError(
                f"message {index} ({message.role.value}) holds a {type(block).__name__}; "
                "only text content can be routed"
            )
    return "\n".join(parts)


def _check_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    if isinstance(messages, (str, bytes, bytearray)) or not isinstance(messages, Iterable):
        raise InvalidInputError(f"expected a sequence of ChatMessage, got {type(messages).__name__}")
    items = list(messages)
    if not items:
        raise InvalidInputError("no messages to route: the message list is empty")
    for i, message in enumerate(items):
        if not isinstance(message, ChatMessage):
            raise InvalidInputError(f"message {i} is {type(message).__name__}, not a LlamaIndex ChatMessage")
        if message.role in _INPUT_ROLES:
            _message_text(message, i)  # validates the blocks
    return items


def routing_text(messages: Sequence[ChatMessage], route_on: RouteOn | RoutingTextFn = "last_user") -> str:
    """The text the router scores for a chat call.

    Args:
        messages: The call's messages, oldest first.
        route_on: ``"last_user"``, ``"conversation"``, ``"rag_query"`` or a callable (see the module docstring).

    Raises:
        InvalidInputError: Empty list, no user message, a blank latest user message, non-text content in a user
            or system message, or a callable that returns no text.
    """
    if callable(route_on):
        items = _check_messages(messages)
        text = route_on(items)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("the route_on callable returned no text to route on")
        return text
    if route_on not in ("last_user", "conversation", "rag_query"):
        raise InvalidInputError(
            f"route_on must be 'last_user', 'conversation', 'rag_query' or a callable, got {route_on!r}"
        )
    items = _check_messages(messages)
    user_indices = [i for i, m in enumerate(items) if m.role == MessageRole.USER]
    if not user_indices:
        raise InvalidInputError("no user message to route on (tool results and system prompts are not routed)")
    last = user_indices[-1]
    last_text = _message_text(items[last], last)
    if not last_text.strip():
        raise InvalidInputError(f"the latest user message (message {last}) has no text to route on")
    if route_on == "last_user":
        return last_text
    if route_on == "rag_query":
        return rag_query(last_text)
    turns = []
    for i, message in enumerate(items):
        if message.role == MessageRole.USER or message.role in _ASSISTANT_ROLES:
            text = _message_text(message, i)
            if text.strip():
                turns.append(f"{message.role.value}: {text}")
    return "\n\n".join(turns)


def prompt_routing_text(prompt: str) -> str:
    """Routing text of a completion prompt (the prompt itself).

    Raises:
        InvalidInputError: The prompt is not a string or is blank.
    """
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt is {type(prompt).__name__}, not str; only text can be routed")
    if not prompt.strip():
        raise InvalidInputError("the prompt is empty or whitespace only; there is nothing to route on")
    return prompt


def model_label(llm: LLM) -> str:
    """A readable name for a child model: its metadata model name, else its ``model`` field, else its class."""
    try:
        name = llm.metadata.model_name
    except Exception:  # a child whose metadata fails should still be nameable in errors
        name = None
    if name and name != "unknown":
        return str(name)
    for attr in ("model", "model_name"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return llm.class_name()


def has_content(response: ChatResponse | CompletionResponse) -> bool:
    """Whether a (final) response carries text or tool calls, i.e. is not an empty message."""
    if isinstance(response, CompletionResponse):
        return bool(response.text and response.text.strip())
    message = response.message
    if message.content and message.content.strip():
        return True
    if any(isinstance(block, ToolCallBlock) for block in message.blocks):
        return True
    return bool(message.additional_kwargs.get("tool_calls"))


def chunk_text(chunk: ChatResponse | CompletionResponse) -> str:
    """The new text a streamed chunk delivers."""
    return chunk.delta or ""


def tag_response(response: Any, info: dict[str, Any]) -> Any:
    """Attach the routing record to a response's ``additional_kwargs["routellm"]`` (a fresh dict)."""
    response.additional_kwargs = {**(response.additional_kwargs or {}), "routellm": dict(info)}
    return response
