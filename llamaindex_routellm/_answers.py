"""What the escalation check and the cost accounting read of a LlamaIndex response: its comparable value, its token
usage, and a whole response from held stream chunks; and the LLM giving the second cheap answer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatResponse, CompletionResponse, ToolCallBlock
from llama_index.core.llms import LLM, ChatMessage, MessageRole

from routellm_core.escalation.checks import VERIFY_QUESTION
from routellm_core.routing.cascade import SAMPLE_TEMPERATURE


def _call_dict(call: Any) -> dict[str, Any] | None:
    """``{"name", "arguments"}`` of one tool call: an OpenAI-style dict or object, or a ``ToolCallBlock``."""
    if isinstance(call, ToolCallBlock):
        return {"name": call.tool_name, "arguments": call.tool_kwargs}
    if not isinstance(call, Mapping):
        call = json.loads(json.dumps(call, default=lambda o: getattr(o, "__dict__", str(o))))
    if isinstance(call, Mapping):
        function = call.get("function", call)
        if isinstance(function, Mapping) and function.get("name"):
            return {"name": function["name"], "arguments": function.get("arguments", {})}
    return None


def answer_value(response: ChatResponse | CompletionResponse) -> Any:
    """What the escalation check compares: the tool calls (name and arguments) a chat response makes, else its
    text."""
    if isinstance(response, CompletionResponse):
        return response.text or ""
    message = response.message
    calls = [b for b in message.blocks if isinstance(b, ToolCallBlock)] or list(
        message.additional_kwargs.get("tool_calls") or ()
    )
    parsed = [c for c in map(_call_dict, calls) if c is not None]
    return parsed if parsed else (message.content or "")


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def answer_usage(response: ChatResponse | CompletionResponse) -> tuple[int | None, int | None]:
    """``(input_tokens, output_tokens)``: LlamaIndex's ``additional_kwargs`` token counts, else the raw response's
    ``usage`` (OpenAI's or Anthropic's field names)."""
    sources = [response.additional_kwargs or {}]
    if isinstance(response, ChatResponse):  # a chat response derived from a completion keeps them on the message
        sources.append(response.message.additional_kwargs or {})
    for extra in sources:
        if extra.get("prompt_tokens") is not None or extra.get("completion_tokens") is not None:
            return extra.get("prompt_tokens"), extra.get("completion_tokens")
    usage = _get(response.raw, "usage") if response.raw is not None else None
    if usage is None:
        return None, None
    tokens_in = (
        _get(usage, "prompt_tokens") if _get(usage, "prompt_tokens") is not None else _get(usage, "input_tokens")
    )
    out = _get(usage, "completion_tokens")
    return tokens_in, out if out is not None else _get(usage, "output_tokens")


def answer_logprobs(response: ChatResponse | CompletionResponse) -> list[float] | None:
    """The sampled tokens' log-probabilities (``response.logprobs``: per token, its top candidates, the sampled one
    first, as LlamaIndex's OpenAI LLMs return them with ``logprobs=True``), else None."""
    rows = getattr(response, "logprobs", None)
    if not rows:
        return None
    return [float(row[0].logprob) for row in rows if row]


def join_chunks(chunks: list[Any]) -> Any:
    """A whole response from held chunks: LlamaIndex's last chunk carries the accumulated text."""
    return chunks[-1] if chunks else None


def resampled(llm: LLM) -> LLM:
    """The weak LLM asked again for the escalation check: a copy at :data:`SAMPLE_TEMPERATURE` when it has a
    temperature, else the LLM itself (its own sampling)."""
    if "temperature" in type(llm).model_fields:
        return llm.model_copy(update={"temperature": SAMPLE_TEMPERATURE})
    return llm


def _answer_text(answer: ChatResponse | CompletionResponse) -> str:
    value = answer_value(answer)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def verification_chat(messages: Sequence[ChatMessage], answer: ChatResponse | CompletionResponse) -> list[ChatMessage]:
    """The conversation, the cheap model's answer (tool calls written out) and the self-verification question."""
    return [
        *messages,
        ChatMessage(role=MessageRole.ASSISTANT, content=_answer_text(answer)),
        ChatMessage(role=MessageRole.USER, content=VERIFY_QUESTION),
    ]


def verification_prompt(prompt: str, answer: ChatResponse | CompletionResponse) -> str:
    """A completion prompt asking the self-verification question about ``answer`` to ``prompt``."""
    return f"{prompt}\n\nAnswer: {_answer_text(answer)}\n\n{VERIFY_QUESTION}\n"
