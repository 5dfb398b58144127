"""One routing-text contract for every integration.

An adapter turns its framework's messages into neutral :class:`Turn` s (role + text); this module turns the turns
into the text the router scores. The same conversation therefore gives the same routing text, and so the same win
rate, in LangChain, LlamaIndex and the server.

``route_on`` (canonical names; ``"last_human"`` is accepted as an alias of ``"last_user"``):

- ``"last_user"``: the text of the latest user turn that has text. Turns after it (assistant turns, tool calls, tool
  results) are ignored, so every step of one agent request routes on the same request. A ReAct agent's tool result
  (a user turn ``"Observation: ..."`` right after an assistant turn naming an ``Action:``) is a tool result too.
- ``"conversation"``: every user and assistant turn with text, oldest first, each as ``"<role>: <text>"``, joined by
  a blank line. System and tool turns never count: tool outputs are data, not the task.
- ``"rag_query"``: like ``"last_user"``, but when that text is one of LlamaIndex's question-answering prompts
  (``...Query: {query_str}\\nAnswer:``), only the query inside it; the retrieved context would otherwise dominate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from routellm_core.errors import InvalidInputError

Role = Literal["user", "assistant", "system", "tool"]
#: A canonical ``route_on`` value.
CanonicalRouteOn = Literal["last_user", "conversation", "rag_query"]
#: Every ``route_on`` spelling the front ends accept (``"last_human"``: alias of ``"last_user"``).
RouteOn = Literal["last_user", "last_human", "conversation", "rag_query"]

#: Canonical ``route_on`` values.
ROUTE_ON: tuple[CanonicalRouteOn, ...] = ("last_user", "conversation", "rag_query")
#: Other spellings accepted for a canonical ``route_on`` value.
ROUTE_ON_ALIASES: dict[str, CanonicalRouteOn] = {"last_human": "last_user"}

#: (start marker, end markers) around ``{query_str}`` in LlamaIndex's default QA / summarize / refine prompts.
_RAG_QUERY_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("\nQuery: ", ("\nAnswer:", "\nOriginal Answer:")),
    ("The original query is as follows: ", ("\nWe have provided an existing answer:",)),
)
#: A ReAct agent sends each tool result back as a *user* message starting with this (LlamaIndex's ReActAgent)...
_REACT_OBSERVATION = re.compile(r"^\s*Observation:", re.IGNORECASE)
#: ... right after an assistant turn that named an action.
_REACT_ACTION = re.compile(r"^\s*Action\s*:", re.IGNORECASE | re.MULTILINE)

#: Message roles of every framework (lower case) -> the turn's role; anything else is a tool/function result.
ROLES: dict[str, Role] = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "chatbot": "assistant",
    "system": "system",
    "developer": "system",
}


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, reduced to what routing reads.

    Attributes:
        role: ``"user"``, ``"assistant"``, ``"system"`` or ``"tool"`` (tool results and ReAct observations).
        text: The message's text parts, joined by newlines (may be empty).
        non_text: The message also holds parts that are not text (images, audio, files...), which routing skips;
            it only words the error for a user message with no text.
    """

    role: Role
    text: str
    non_text: bool = False


def role_of(name: str) -> Role:
    """The turn role of a framework's message role name (``"human"`` -> ``"user"``, ``"model"`` -> ``"assistant"``,
    ``"developer"`` -> ``"system"``; tool and function results -> ``"tool"``)."""
    return ROLES.get(name.lower(), "tool")


def join_text(parts: Sequence[str]) -> str:
    """The text of a message made of parts: each part stripped, empty parts dropped, joined by newlines."""
    return "\n".join(p.strip() for p in parts if p.strip())


def canonical_route_on(route_on: str) -> CanonicalRouteOn:
    """The canonical name of a ``route_on`` value.

    Raises:
        InvalidInputError: An unknown value.
    """
    value = ROUTE_ON_ALIASES.get(route_on, route_on)
    if value not in ROUTE_ON:
        accepted = [*ROUTE_ON, *ROUTE_ON_ALIASES]
        raise InvalidInputError(f"route_on must be one of {accepted} or a callable, got {route_on!r}")
    return value  # type: ignore[return-value]


def names_react_action(text: str) -> bool:
    """Whether an assistant turn's text names a ReAct ``Action:`` (its tool result comes back as an observation)."""
    return bool(_REACT_ACTION.search(text))


def is_react_observation(previous: Turn | None, turn: Turn) -> bool:
    """Whether ``turn`` is a ReAct agent's tool output: a user turn ``"Observation: ..."`` right after an assistant
    turn (``previous``) that named an ``Action:``."""
    return (
        turn.role == "user"
        and bool(_REACT_OBSERVATION.match(turn.text))
        and previous is not None
        and previous.role == "assistant"
        and names_react_action(previous.text)
    )


def _react_observations(turns: Sequence[Turn]) -> list[Turn]:
    """The turns with ReAct observations as tool results (:func:`is_react_observation`), not new requests."""
    out: list[Turn] = []
    for turn in turns:
        if is_react_observation(out[-1] if out else None, turn):
            turn = Turn("tool", turn.text)
        out.append(turn)
    return out


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


def _no_user_text(users: Sequence[Turn]) -> str:
    """Why user turns without text cannot be routed: blank text, or only non-text parts."""
    if any(t.non_text for t in users):
        return (
            "the user messages hold no text (only images or other non-text content); the router needs text to route on"
        )
    return "the user messages hold no text: they are empty or whitespace only; there is nothing to route on"


def routing_text(turns: Sequence[Turn], route_on: str = "last_user") -> str:
    """The text the router scores for a conversation.

    Args:
        turns: The conversation, oldest first.
        route_on: ``"last_user"`` (alias ``"last_human"``), ``"conversation"`` or ``"rag_query"``.

    Raises:
        InvalidInputError: No turns, no user turn, or no user text at all: empty or whitespace only, or only
            images and other non-text parts (the message says which).
    """
    mode = canonical_route_on(route_on)
    if not turns:
        raise InvalidInputError("no messages to route: the conversation is empty")
    turns = _react_observations(turns)
    users = [t for t in turns if t.role == "user"]
    if not users:
        roles = sorted({t.role for t in turns})
        raise InvalidInputError(
            f"no user message to route on: the conversation holds only {roles} messages "
            "(tool results and system prompts are not routed)"
        )
    last = next((t.text.strip() for t in reversed(users) if t.text.strip()), "")
    if not last:
        raise InvalidInputError(_no_user_text(users))
    if mode == "last_user":
        return last
    if mode == "rag_query":
        return rag_query(last)
    said = [t for t in turns if t.role in ("user", "assistant") and t.text.strip()]
    return "\n\n".join(f"{t.role}: {t.text.strip()}" for t in said)


def prompt_routing_text(prompt: object) -> str:
    """Routing text of a completion prompt (the prompt itself).

    Raises:
        InvalidInputError: The prompt is not a string or is blank.
    """
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt is {type(prompt).__name__}, not str; only text can be routed")
    if not prompt.strip():
        raise InvalidInputError("the prompt is empty or whitespace only; there is nothing to route on")
    return prompt.strip()
