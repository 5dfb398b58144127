"""A child's answer: the empty-answer rule, the text a chunk carries, the decision attached to a message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
)

from routellm_core.decisions import METADATA_KEY, ServedDecision


# ---- outputs ---------------------------------------------------------------------------------------------
def has_tool_call(message: BaseMessage) -> bool:
    """Whether an AI message (or chunk) carries a tool call in any form."""
    if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
        return True
    if isinstance(message, AIMessageChunk) and message.tool_call_chunks:
        return True
    return bool(message.additional_kwargs.get("tool_calls") or message.additional_kwargs.get("function_call"))


class ParsedAnswer(dict):  # type: ignore[type-arg]
    """A structured answer whose caller asked for the parsed value only (``with_structured_output`` without
    ``include_raw``), still holding the raw message so the record reads its token usage and log-probabilities:
    ``{"raw": message, "parsed": value, "parsing_error": None}``. It is empty when nothing was parsed (as the parsed
    value ``None`` is), and the caller gets ``answer["parsed"]``."""

    @property
    def parsed(self) -> Any:
        """The parsed value the caller gets."""
        return self["parsed"]


def is_empty_output(value: Any) -> bool:
    """Whether a child's answer is empty: a message with no text (whitespace only counts as none) and no tool
    call, or a blank string / ``None`` (the same rule as LlamaIndex's and the server's); a :class:`ParsedAnswer` by
    its parsed value."""
    if isinstance(value, ParsedAnswer):
        value = value.parsed
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


def cache_hit(value: Any) -> bool:
    """Whether an answer (a message, or an ``include_raw=True`` result's ``raw``) came from LangChain's LLM cache:
    ``BaseChatModel`` marks a cached answer with ``total_cost: 0`` in its ``usage_metadata`` (no provider writes
    that key)."""
    if isinstance(value, Mapping) and isinstance(value.get("raw"), BaseMessage):
        value = value["raw"]
    usage = getattr(value, "usage_metadata", None)
    return isinstance(usage, Mapping) and "total_cost" in usage and usage["total_cost"] == 0


def record_of(value: Any, record: ServedDecision) -> dict[str, Any]:
    """The record attached to the answer ``value``: ``record.as_dict()``, with ``cached: True`` when the answer came
    from LangChain's cache (the record's attempts then report the tokens it spent: none)."""
    meta = record.as_dict()
    if cache_hit(value):
        meta["cached"] = True
    return meta


def replayed_record(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The record of an answer LangChain's cache replayed from an earlier call (``meta``, that call's record): no
    decision of its own (``decision_id`` None, so feedback cannot label the first decision twice), ``cached: True``,
    and nothing spent (each attempt's tokens 0, its cost and the total 0 where they were priced)."""
    attempts = [
        {**attempt, "input_tokens": 0, "output_tokens": 0, "cost": None if attempt.get("cost") is None else 0.0}
        for attempt in meta.get("attempts") or ()
    ]
    cost = None if meta.get("cost") is None else 0.0
    return {**meta, "decision_id": None, "attempts": attempts, "cost": cost, "cached": True}


def with_metadata(value: Any, record: ServedDecision) -> Any:
    """Attach the record (:func:`record_of`) under ``response_metadata["routellm"]`` to a message (copied, never
    mutated).

    Also handles ``with_structured_output(..., include_raw=True)`` results (``{"raw": message, ...}``).
    Any other value is returned unchanged.
    """
    if isinstance(value, BaseMessage):
        meta = record_of(value, record)
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
