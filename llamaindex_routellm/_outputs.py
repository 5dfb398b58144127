"""A child's response: the empty-answer rule, the text a chunk carries, the decision attached to it."""

from __future__ import annotations

from typing import TypeVar

from llama_index.core.base.llms.types import ChatResponse, CompletionResponse

from llamaindex_routellm._messages import makes_tool_calls
from routellm_core.decisions import METADATA_KEY, ServedDecision

R = TypeVar("R", ChatResponse, CompletionResponse)


def has_content(response: ChatResponse | CompletionResponse) -> bool:
    """Whether a (final) response carries text or tool calls, i.e. is not an empty message."""
    if isinstance(response, CompletionResponse):
        return bool(response.text and response.text.strip())
    message = response.message
    return bool(message.content and message.content.strip()) or makes_tool_calls(message)


def chunk_text(chunk: ChatResponse | CompletionResponse) -> str:
    """The new text a streamed chunk delivers."""
    return chunk.delta or ""


def tag_response(response: R, record: ServedDecision) -> R:
    """A copy of a child's response (or chunk) with the decision record in ``additional_kwargs["routellm"]``; the
    child's own response, which its instrumentation events and callbacks hold, stays as the child returned it."""
    extra = {**(response.additional_kwargs or {}), METADATA_KEY: record.as_dict()}
    return response.model_copy(update={"additional_kwargs": extra})


def answer_text(response: ChatResponse | CompletionResponse) -> str:
    """The text of a (final) response: the message content of a chat response, the text of a completion."""
    if isinstance(response, CompletionResponse):
        return response.text or ""
    return response.message.content or ""
