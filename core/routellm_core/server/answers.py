"""What the routing engine, the escalation check and the cost accounting read of an upstream's answer (a JSON dict):
a chat completion (or chunk) or a Responses object (or stream event), told apart by shape: emptiness, text,
comparable value, token usage and log-probabilities, and a whole answer from held stream chunks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from routellm_core.server.errors import ErrorResponse
from routellm_core.server.protocol import chunk_text, completion_text, first_choice, is_empty_answer
from routellm_core.server.responses import (
    event_text,
    is_response,
    is_response_event,
    join_events,
    response_is_empty,
    response_text,
    response_usage,
    response_value,
)

#: ``router-<router>[-<pre-route>]-cascade[-<escalation>]``: escalation on. The pre-route part is a plain name's
#: (a threshold or a strong-call percentage); the escalation part an escalation threshold or a share of escalations.
#: ``router-auto[-<objective>]-climb[-<escalation>]`` is read the same way (``suffix="climb"``).
_ESCALATION = {
    suffix: re.compile(rf"^(?P<head>.+?)-{suffix}(?:-(?P<escalation>[^-]+))?$") for suffix in ("cascade", "climb")
}


def split_cascade(model: str, suffix: str = "cascade") -> tuple[str, str | None]:
    """The plain model name (the pre-route) and the escalation part: None without ``-<suffix>``, ``""`` for the
    server's escalation settings (``router-default-20%-cascade-10%`` -> ``("router-default-20%", "10%")``)."""
    match = _ESCALATION[suffix].match(model)
    if match is None:
        return model, None
    return match.group("head"), match.group("escalation") or ""


def escalation_setting(part: str, model: str, suffix: str = "cascade") -> tuple[str, float]:
    """``("share", s)`` for a whole percentage ``<p>%`` (escalate about ``p``% of the checked calls), or
    ``("threshold", t)`` for a number in [0, 1] with at most two decimals (escalate below ``t``).

    Raises:
        ErrorResponse: 400 for anything else (both forms are bounded: one engine is kept per setting).
    """
    percent = part.endswith("%")
    text = part[:-1] if percent else part
    if percent and text.isdigit() and 0 <= int(text) <= 100:
        return "share", int(text) / 100.0
    if not percent and re.fullmatch(r"(0(\.\d{1,2})?|1(\.0{1,2})?|\.\d{1,2})", text):
        return "threshold", float(text)
    raise ErrorResponse(
        400,
        f"model {model!r}: after -{suffix} give an escalation share as a whole percentage (-{suffix}-10%) or an "
        f"escalation threshold in [0, 1] with at most two decimals (-{suffix}-0.5), got {part!r}",
        code="invalid_model",
        param="model",
    )


def _message(answer: Any) -> Mapping[str, Any]:
    choice = first_choice(answer)
    if choice is None:
        return {}
    message = choice.get("message") or choice.get("delta") or {}
    return message if isinstance(message, Mapping) else {}


def _responses(answer: Any) -> bool:
    return is_response(answer) or is_response_event(answer)


def answer_empty(answer: Any) -> bool:
    """Whether an answer (or a streamed chunk or event) carries nothing: no text, tool call or refusal."""
    return response_is_empty(answer) if _responses(answer) else is_empty_answer(answer)


def answer_text(answer: Any) -> str:
    """The text of a whole answer: the first choice's message content, or a response's output text."""
    return response_text(answer) if is_response(answer) else completion_text(answer)


def answer_chunk_text(chunk: Any) -> str:
    """The text a streamed chunk (or Responses event) delivers."""
    return event_text(chunk) if is_response_event(chunk) else chunk_text(chunk)


def answer_value(answer: Any) -> Any:
    """The first choice's tool calls (name and arguments) when it makes any, else the completion's text (a
    response's function calls, else its text)."""
    if is_response(answer):
        return response_value(answer)
    calls = _message(answer).get("tool_calls")
    if calls:
        return [dict(c.get("function") or {}) for c in calls if isinstance(c, Mapping)]
    return completion_text(answer)


def answer_usage(answer: Any) -> tuple[int | None, int | None]:
    """``(prompt_tokens, completion_tokens)`` from the completion's ``usage`` (a response's input and output
    tokens)."""
    if is_response(answer):
        return response_usage(answer)
    usage = answer.get("usage") if isinstance(answer, Mapping) else None
    if not isinstance(usage, Mapping):
        return None, None
    return usage.get("prompt_tokens"), usage.get("completion_tokens")


def answer_logprobs(answer: Any) -> list[float] | None:
    """The first choice's token log-probabilities (``choices[0].logprobs.content[].logprob``), else None."""
    choice = first_choice(answer)
    if choice is None:
        return None
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not content:
        return None
    return [float(t["logprob"]) for t in content if isinstance(t, Mapping) and t.get("logprob") is not None]


def join_chunks(chunks: list[Any]) -> dict[str, Any] | None:
    """A whole completion from streamed chunks: the first choice's text, tool calls (by index, arguments
    concatenated), log-probabilities and the last usage (the other choices' chunks of ``n > 1`` are left out); for
    Responses events, the response object of the terminal event."""
    if not chunks:
        return None
    if is_response_event(chunks[0]):
        return join_events(chunks)
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    logprobs: list[Any] = []
    usage = None
    for chunk in chunks:
        if not isinstance(chunk, Mapping):
            continue
        usage = chunk.get("usage") or usage
        choice = first_choice(chunk)
        if choice is None:
            continue
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            text.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            entry = calls.setdefault(int(call.get("index", len(calls))), {"name": "", "arguments": ""})
            function = call.get("function") or {}
            entry["name"] += function.get("name") or ""
            entry["arguments"] += function.get("arguments") or ""
        content = (choice.get("logprobs") or {}).get("content")
        if content:
            logprobs.extend(content)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if calls:
        message["tool_calls"] = [{"type": "function", "function": calls[i]} for i in sorted(calls)]
    choice: dict[str, Any] = {"index": 0, "message": message}
    if logprobs:
        choice["logprobs"] = {"content": logprobs}
    return {"choices": [choice], "usage": usage}
