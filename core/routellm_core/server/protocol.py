"""The OpenAI chat-completions protocol as the server reads it: request checks, model names, turns, empty answers.

Model names choose the router and the cost, the way RouteLLM's server does:

- ``router-<router>-<threshold>``: strong when the win rate is at least the threshold (``router-default-0.76``);
- ``router-<router>-<percent>%``: the threshold sending about that share of calls to strong, from the router's
  shipped calibration (``router-fast-30%``);
- ``router-<router>``: the server's default threshold for that router.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from routellm_core.decisions import check_threshold
from routellm_core.errors import CheckpointError, InvalidInputError
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.routing.text import Role, Turn
from routellm_core.server.errors import ErrorResponse

#: Prefix of every model name the server serves.
MODEL_PREFIX = "router-"
#: OpenAI roles and the routing role each one plays.
ROLES: dict[str, Role] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
#: Content part types whose ``text`` is routing text.
TEXT_PARTS = frozenset({"text", "input_text"})
#: Request fields the server consumes; every other field goes to the upstream unchanged. ``routellm`` holds the
#: server's own options (``{"objective": "budget=1.5"}`` for ``router-auto``).
CONSUMED = frozenset({"model", "stream", "routellm"})


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat-completions request.

    Attributes:
        model: The model name the client asked for.
        messages: The messages, as sent.
        stream: Whether the client asked for a stream.
        forward: The body for the upstream: everything but ``model``, ``stream`` and ``routellm``, unchanged.
        options: The ``routellm`` field as sent (the server's own options), or None.
    """

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    forward: dict[str, Any]
    options: Any = None


def _bad(message: str, *, code: str, param: str | None = None) -> ErrorResponse:
    return ErrorResponse(400, message, code=code, param=param)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def load_json(raw: bytes) -> Any:
    """A request body's JSON.

    Raises:
        ErrorResponse: 400 for a body that is not JSON (``NaN``, ``Infinity`` and numbers beyond a float included),
            or whose strings hold an unpaired UTF-16 surrogate (``"\\ud800"``: JSON's grammar allows it, but it is
            no text; an upstream or the feedback store could not encode it).
    """
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
        if _SURROGATE_ESCAPE.search(raw):  # only then can a string hold a lone surrogate: check what was decoded
            json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(
            "the request body is not valid JSON text: a string holds an unpaired UTF-16 surrogate escape (\\ud800)",
            code="invalid_json",
        ) from None
    except _NonStandardNumber as exc:
        raise _bad(
            f"the request body is not valid JSON: {exc} is no JSON number (an upstream could not read it)",
            code="invalid_json",
        ) from None
    except (ValueError, RecursionError):
        raise _bad("the request body is not valid JSON", code="invalid_json") from None
    return body


class _NonStandardNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's JSON reader takes them, JSON (and the upstreams) do not."""


def _no_constant(name: str) -> Any:
    raise _NonStandardNumber(name)


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a float (``1e999``) would be read as infinity."""
    value = float(text)
    if math.isinf(value):
        raise _NonStandardNumber(f"{text[:40]} (too large for a float)")
    return value


def parse_request(raw: bytes, max_messages: int) -> ChatRequest:
    """Check a chat-completions body.

    Raises:
        ErrorResponse: Not JSON, not an object, no model, messages that are not a non-empty list of message
            objects (or more than ``max_messages``), a bad role or content, a non-boolean ``stream``.
    """
    body = load_json(raw)
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, got {type(body).__name__}", code="invalid_body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("'model' must be a model name such as 'router-default-0.5'", code="invalid_model", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list of messages", code="invalid_messages", param="messages")
    if len(messages) > max_messages:
        raise _bad(
            f"too many messages: {len(messages)}, this server accepts at most {max_messages}",
            code="too_many_messages",
            param="messages",
        )
    for i, message in enumerate(messages):
        _check_message(message, i)
    stream = stream_flag(body)
    forward = {k: v for k, v in body.items() if k not in CONSUMED}
    return ChatRequest(model=model, messages=messages, stream=stream, forward=forward, options=body.get("routellm"))


def stream_flag(body: dict[str, Any]) -> bool:
    """A request's ``stream`` field (absent or null: ``False``).

    Raises:
        ErrorResponse: 400 when it is not a boolean.
    """
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise _bad("'stream' must be true or false", code="invalid_stream", param="stream")
    return stream


def _check_message(message: object, i: int) -> None:
    param = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _bad(f"{param} must be an object, got {type(message).__name__}", code="invalid_messages", param=param)
    role = message.get("role")
    if role not in ROLES:
        raise _bad(f"{param}.role must be one of {sorted(ROLES)}, got {role!r}", code="invalid_messages", param=param)
    content = message.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(
            f"{param}.content must be a string, a list of content parts or null, got {type(content).__name__}",
            code="invalid_messages",
            param=param,
        )
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(
                f"{param}.content[{j}] must be a content part object with a 'type'",
                code="invalid_messages",
                param=param,
            )
        if part["type"] in TEXT_PARTS and not isinstance(part.get("text"), str):
            raise _bad(f"{param}.content[{j}].text must be a string", code="invalid_messages", param=param)


def message_text(message: Mapping[str, Any]) -> str:
    """A checked message's text: string content, or its text parts joined by newlines (other parts ignored)."""
    content = message.get("content")
    if isinstance(content, str):
        return content.strip()
    if not content:
        return ""
    texts = (part["text"].strip() for part in content if part["type"] in TEXT_PARTS)
    return "\n".join(t for t in texts if t)


def turns(messages: Sequence[Mapping[str, Any]]) -> list[Turn]:
    """The routing turns of checked messages (developer = system, function = tool)."""
    return [
        Turn(
            ROLES[m["role"]],
            message_text(m),
            non_text=isinstance(m.get("content"), list) and any(p["type"] not in TEXT_PARTS for p in m["content"]),
        )
        for m in messages
    ]


def resolve_model(model: str, policies: Mapping[str, RoutingPolicy]) -> tuple[str, float]:
    """The router (its name among ``policies``) and the threshold a model name asks for.

    Raises:
        ErrorResponse: 404 for a name that is not ``router-<router>...`` with a router this server serves; 400 for
            a threshold that is not a number in [0, 1], a percentage outside [0, 100], or a percentage on a router
            without calibration.
    """
    served = ", ".join(sorted(policies))
    forms = "router-<router>, router-<router>-<threshold> or router-<router>-<percent>%"
    if not model.startswith(MODEL_PREFIX):
        raise ErrorResponse(
            404,
            f"model {model!r} is not served here: ask for {forms}, with a router among: {served}",
            code="model_not_found",
            param="model",
        )
    rest = model[len(MODEL_PREFIX) :]
    if rest in policies:
        return rest, policies[rest].threshold
    # the longest router name the rest starts with, then its threshold or share (a threshold may hold a '-': 1e-4)
    name = max((p for p in policies if rest.startswith(f"{p}-")), key=len, default=None)
    if name is None:
        raise ErrorResponse(
            404,
            f"model {model!r} names no router this server serves ({served}); ask for {forms}",
            code="model_not_found",
            param="model",
        )
    return name, _threshold(policies[name], rest[len(name) + 1 :], model)


def _threshold(policy: RoutingPolicy, cost: str, model: str) -> float:
    percent = cost.endswith("%")
    try:
        value = float(cost[:-1] if percent else cost)
    except ValueError:
        value = math.nan
    if percent:
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise _bad(
                f"model {model!r}: the strong-call share must be a percentage in [0, 100], got {cost!r}",
                code="invalid_model",
                param="model",
            )
        try:
            return policy.router.threshold_for(value / 100.0)
        except CheckpointError:
            raise _bad(
                f"model {model!r}: router {policy.router_name!r} has no shipped calibration, so a strong-call "
                "share cannot be turned into a threshold; ask for a threshold instead (router-<router>-0.5)",
                code="router_not_calibrated",
                param="model",
            ) from None
    try:
        return check_threshold(value)
    except InvalidInputError:
        raise _bad(
            f"model {model!r}: the threshold must be a number in [0, 1] or a percentage such as 30%, got {cost!r}",
            code="invalid_model",
            param="model",
        ) from None


def model_ids(policies: Mapping[str, RoutingPolicy]) -> list[str]:
    """The model names ``GET /v1/models`` lists: each router bare and at each calibrated share, then with escalation
    on: bare (the server's escalation settings) and at the same percentages as escalation shares
    (``router-<router>-cascade-<share>%``)."""
    ids: list[str] = []
    for name, policy in policies.items():
        ids.append(f"{MODEL_PREFIX}{name}")
        shares = sorted(float(k) for k in policy.router.calibrated_thresholds)
        ids += [f"{MODEL_PREFIX}{name}-{round(share * 100):d}%" for share in shares]
    for name, policy in policies.items():
        ids.append(f"{MODEL_PREFIX}{name}-cascade")
        shares = sorted(float(k) for k in policy.router.calibrated_thresholds)
        ids += [f"{MODEL_PREFIX}{name}-cascade-{round(share * 100):d}%" for share in shares]
    return ids


# ---- feedback ------------------------------------------------------------------------------------------
#: Longest decision id ``POST /v1/feedback`` accepts (the server's own are 32 hex characters).
MAX_DECISION_ID = 256


@dataclass(frozen=True)
class FeedbackRequest:
    """A checked ``POST /v1/feedback`` body: a verdict on the decision a response carried."""

    decision_id: str
    verdict: str


def parse_feedback(raw: bytes) -> FeedbackRequest:
    """Check a feedback body ``{"decision_id": "...", "verdict": "..."}`` (other fields are ignored).

    Which verdicts are accepted is the feedback store's to say (``good``, ``bad``, ``strong``, ``weak``, a winner
    or a model name; see ``FeedbackStore.add_verdict``).

    Raises:
        ErrorResponse: 400 for a body that is not a JSON object, or a missing or non-string field.
    """
    body = load_json(raw)
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, got {type(body).__name__}", code="invalid_body")
    decision_id, verdict = body.get("decision_id"), body.get("verdict")
    if not isinstance(decision_id, str) or not decision_id.strip() or len(decision_id) > MAX_DECISION_ID:
        raise _bad(
            "'decision_id' must be the decision id a response carried (its 'routellm' field or the "
            "x-routellm-decision-id header)",
            code="invalid_decision_id",
            param="decision_id",
        )
    if not isinstance(verdict, str) or not verdict.strip():
        raise _bad(
            "'verdict' must be a string such as 'good', 'bad', 'strong' or 'weak'",
            code="invalid_verdict",
            param="verdict",
        )
    return FeedbackRequest(decision_id.strip(), verdict.strip())


# ---- answers ---------------------------------------------------------------------------------------------
def _has_content(message: Mapping[str, Any]) -> bool:
    return bool(
        message.get("content")
        or message.get("tool_calls")
        or message.get("function_call")
        or message.get("refusal")
        or message.get("audio")
    )


def is_empty_answer(answer: Any) -> bool:
    """Whether a completion (or a streamed chunk) carries nothing: no choice with text, a tool call or a refusal."""
    if not isinstance(answer, Mapping):
        return True
    for choice in answer.get("choices") or ():
        if isinstance(choice, Mapping):
            message = choice.get("message") or choice.get("delta")
            if isinstance(message, Mapping) and _has_content(message):
                return False
    return True


def first_choice(body: Any) -> Mapping[str, Any] | None:
    """``body``'s first choice (``index`` 0), the answer the server reads: with ``n > 1`` the others are
    alternatives, passed on to the client but never glued to it; a streamed chunk of another choice has none."""
    choices = body.get("choices") if isinstance(body, Mapping) else None
    for choice in choices or ():
        if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
            return choice
    return None


def _choice_text(body: Any, part: str) -> str:
    """The text content of ``body``'s first choice's ``part`` (``"message"`` or ``"delta"``)."""
    message = (first_choice(body) or {}).get(part)
    if isinstance(message, Mapping) and isinstance(message.get("content"), str):
        return message["content"]
    return ""


def completion_text(answer: Any) -> str:
    """The text of a whole completion: its first choice's message content (tool calls carry none)."""
    return _choice_text(answer, "message")


def chunk_text(chunk: Any) -> str:
    """The text a streamed chunk delivers to the first choice."""
    return _choice_text(chunk, "delta")
