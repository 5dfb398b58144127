"""What the escalation check and the cost accounting read of a LangChain answer: its comparable value, its token
usage, and a whole answer from held stream chunks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import reduce
from operator import add
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from pydantic import BaseModel

from langchain_routellm._outputs import ParsedAnswer, cache_hit, chunk_text


def answer_value(value: Any) -> Any:
    """What the escalation check compares: a message's tool calls (name and arguments) when it makes any, else its
    text; structured output (a pydantic model or a dict) as a dict; anything else as given."""
    if isinstance(value, ParsedAnswer):  # the caller asked for the parsed value: compare that, as before
        value = value.parsed
    elif isinstance(value, Mapping) and isinstance(value.get("raw"), BaseMessage):  # include_raw=True
        value = value.get("parsed") if value.get("parsed") is not None else value["raw"]
    if isinstance(value, AIMessageChunk):
        value = message_chunk_to_message(value)
    if isinstance(value, AIMessage) and value.tool_calls:
        return [{"name": call["name"], "arguments": call["args"]} for call in value.tool_calls]
    if isinstance(value, BaseMessage):
        return chunk_text(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def answer_usage(value: Any) -> tuple[int | None, int | None]:
    """The ``(input_tokens, output_tokens)`` a message reports in ``usage_metadata`` (None when it reports none);
    ``(0, 0)`` for an answer LangChain's cache served (the tokens were spent by the call that filled the cache)."""
    if isinstance(value, Mapping) and isinstance(value.get("raw"), BaseMessage):
        value = value["raw"]
    if cache_hit(value):
        return 0, 0
    usage = getattr(value, "usage_metadata", None)
    if not usage:
        return None, None
    return usage.get("input_tokens"), usage.get("output_tokens")


def join_chunks(chunks: list[Any]) -> Any:
    """A whole answer from held stream chunks: message chunks and strings added up, else the last chunk."""
    if not chunks:
        return None
    if all(isinstance(c, (AIMessageChunk, str)) for c in chunks) and len({type(c) for c in chunks}) == 1:
        return reduce(add, chunks)
    if all(isinstance(c, Mapping) for c in chunks):
        return reduce(lambda a, b: {**a, **b}, chunks)
    return chunks[-1]


def answer_logprobs(value: Any) -> list[float] | None:
    """The token log-probabilities a message carries (OpenAI's ``response_metadata["logprobs"]["content"]``, as
    ``ChatOpenAI(logprobs=True)`` returns them), else None."""
    if isinstance(value, Mapping) and isinstance(value.get("raw"), BaseMessage):
        value = value["raw"]
    meta = getattr(value, "response_metadata", None) or {}
    logprobs = meta.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not content:
        return None
    return [float(t["logprob"]) for t in content if isinstance(t, Mapping) and t.get("logprob") is not None]


def verification_messages(messages: list[BaseMessage], answer: Any) -> list[BaseMessage]:
    """The conversation, the cheap model's answer (as plain text: tool calls written out) and the
    self-verification question."""
    from langchain_core.messages import HumanMessage

    from routellm_core.escalation.checks import VERIFY_QUESTION

    value = answer_value(answer)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return [*messages, AIMessage(content=text), HumanMessage(content=VERIFY_QUESTION)]
