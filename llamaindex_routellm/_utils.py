"""Routing text from LlamaIndex chat messages, and small helpers shared by the LLM.

The rules live once in :mod:`routellm_core.routing.text` (the same conversation gives the same routing text in
LangChain); this module maps LlamaIndex messages onto its neutral turns. A ReAct agent's ``"Observation: ..."``
user message counts as a tool result, so every step of one ReAct request routes on the same request.

Routing policy for chat messages (``route_on``):

- ``"last_user"`` (default; alias ``"last_human"``): the text of the latest **user** message with text.
  Messages after it (assistant turns, tool calls, tool results) are ignored, so in an agent step whose last
  message is a tool result the router still routes on the user's request; every step of one user turn therefore
  gets the same decision.
- ``"conversation"``: every user and assistant turn, oldest first, each prefixed by its role. System, tool and
  function messages are left out: tool outputs are data, not the task, and are never routing text.
- ``"rag_query"``: like ``"last_user"``, but when that message is one of LlamaIndex's question-answering prompts
  (text QA, tree summarize, refine: ``...Query: {query_str}\nAnswer:``), only the query inside it. A query
  engine's prompt starts with the retrieved context, which would otherwise dominate the routing text (long texts
  are truncated from the end before embedding). Any other message routes on its whole text.
- a callable ``(messages) -> str``: your own extraction.

Only text blocks are read (images, audio, documents, tool calls, thinking blocks are skipped, as in LangChain); an
empty message list, no user message, or no user text at all (e.g. only images) raise
:class:`~routellm_core.errors.InvalidInputError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms import LLM

from routellm_core.decisions import METADATA_KEY, ServedDecision
from routellm_core.errors import InvalidInputError
from routellm_core.learning.judging import Judge, PairwiseJudge
from routellm_core.routing.engine import RouteOn
from routellm_core.routing.text import Turn, join_text, role_of
from routellm_core.routing.text import routing_text as core_routing_text

R = TypeVar("R", ChatResponse, CompletionResponse)

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


def tag_response(response: R, record: ServedDecision) -> R:
    """Attach the decision record to a response's ``additional_kwargs["routellm"]`` (a fresh dict)."""
    response.additional_kwargs = {**(response.additional_kwargs or {}), METADATA_KEY: record.as_dict()}
    return response


def answer_text(response: ChatResponse | CompletionResponse) -> str:
    """The text of a (final) response: the message content of a chat response, the text of a completion."""
    if isinstance(response, CompletionResponse):
        return response.text or ""
    return response.message.content or ""


def as_judge(judge: object) -> Judge | None:
    """A core judge from a LlamaIndex LLM (asked MT-Bench's pairwise question with ``achat``) or a callable."""
    if judge is None or isinstance(judge, PairwiseJudge):
        return judge
    if isinstance(judge, LLM):
        llm = judge

        def generate(messages: list[dict[str, str]]) -> str:  # sync: see the LangChain adapter's as_judge
            chat = [ChatMessage(role=MessageRole(m["role"]), content=m["content"]) for m in messages]
            return llm.chat(chat).message.content or ""

        return PairwiseJudge(generate, name=model_label(llm))
    if callable(judge):
        return judge  # type: ignore[return-value]
    raise InvalidInputError(
        "judge must be a LlamaIndex LLM, a PairwiseJudge or a callable (prompt, answer_a, answer_b) -> winner, "
        f"got {type(judge).__name__}"
    )
