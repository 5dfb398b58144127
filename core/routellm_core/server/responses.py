"""OpenAI's Responses API (``POST /v1/responses``) as the server reads and relays it.

The route shares the chat-completions path's engine, routing, fallback, records, metrics, auth and errors; this module
holds what differs: the request check (``input`` as a string or items, ``instructions``, ``previous_response_id``)
and its routing turns, what an answer or a streamed event carries (text, emptiness, usage), how a stream goes out
(``event: <type>`` SSE, the decision record on the response objects), and which upstream answered each response id
(in memory, and in the feedback store the workers share), so that a continuation (``previous_response_id``) reaches
the upstream that stored it whichever worker it lands on.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from routellm_core.decisions import METADATA_KEY, ServedDecision
from routellm_core.errors import RouteLLMError
from routellm_core.server.errors import ErrorResponse
from routellm_core.server.protocol import CONSUMED, load_json, stream_flag

logger = logging.getLogger("routellm_core.server")

#: The API a request came in on: chat completions or Responses (which upstream endpoint it calls).
Api = Literal["chat", "responses"]
#: Roles a Responses message item may have.
ROLES = frozenset({"user", "assistant", "system", "developer"})
#: Content part types whose ``text`` is routing text (an assistant's earlier output included).
TEXT_PARTS = frozenset({"input_text", "output_text"})
#: Stream events that end a response (held back so the final, priced record rides on their response object).
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
#: Stream events whose non-empty ``delta`` is part of the answer.
CONTENT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
    }
)
#: Request fields the router refuses, with why: state only one upstream holds, which routing could send elsewhere.
UNSUPPORTED = {
    "background": "a background response is polled later from the upstream that queued it, and this server has "
    "no route to poll it (call the upstream directly)",
    "conversation": "a conversation's state lives on one upstream; continue with previous_response_id, which the "
    "server keeps on the upstream that answered",
}
#: Response ids each worker remembers the answering upstream of (the oldest is dropped first).
RECENT_RESPONSES = 10_000
#: Days a feedback store remembers who answered a response (OpenAI keeps a stored response 30 days).
KEEP_DAYS = 30.0
#: Seconds between two prunings of the store's old responses by one worker.
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class ResponsesRequest:
    """A checked Responses request.

    Attributes:
        model: The model name the client asked for.
        messages: ``instructions`` and ``input`` as chat-style messages, for the routing text only.
        stream: Whether the client asked for a stream.
        forward: The body for the upstream: everything but ``model``, ``stream`` and ``routellm``, unchanged.
        options: The ``routellm`` field as sent (the server's own options), or None.
        previous_response_id: The response this one continues, or None.
        item_ids: The ``id`` s of the input's items (a conversation sent whole: the model's earlier output items,
            reasoning among them, keep the ids their upstream gave them).
    """

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    forward: dict[str, Any]
    options: Any = None
    previous_response_id: str | None = None
    item_ids: tuple[str, ...] = ()


def _bad(message: str, *, code: str = "invalid_input", param: str | None = "input") -> ErrorResponse:
    return ErrorResponse(400, message, code=code, param=param)


def parse_responses_request(raw: bytes, max_items: int) -> ResponsesRequest:
    """Check a Responses body.

    Raises:
        ErrorResponse: Not JSON, not an object, no model; ``input`` neither a string nor a non-empty list of items
            (at most ``max_items``); an item that is not an object with a ``type`` or a ``role``, a message with a
            bad role or content; ``instructions`` or ``previous_response_id`` not a string; a non-boolean ``stream``.
    """
    body = load_json(raw)
    if not isinstance(body, dict):
        raise _bad(
            f"the request body must be a JSON object, got {type(body).__name__}", code="invalid_body", param=None
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("'model' must be a model name such as 'router-default-0.5'", code="invalid_model", param="model")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _bad("'instructions' must be a string or null", code="invalid_instructions", param="instructions")
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list) and given:
        if len(given) > max_items:
            raise _bad(
                f"too many input items: {len(given)}, this server accepts at most {max_items}", code="too_many_items"
            )
        messages += [_message_of(item, i) for i, item in enumerate(given)]
    else:
        raise _bad("'input' must be a string or a non-empty list of input items")
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous.strip()):
        raise _bad(
            "'previous_response_id' must be the id of an earlier response or null",
            code="invalid_previous_response_id",
            param="previous_response_id",
        )
    for field, why in UNSUPPORTED.items():
        if body.get(field) not in (None, False):
            message = f"'{field}' is not supported through the router: {why}"
            raise _bad(message, code="responses_unsupported", param=field)
    stream = stream_flag(body)
    forward = {k: v for k, v in body.items() if k not in CONSUMED}
    items = given if isinstance(given, list) else []
    ids = tuple(item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str))
    return ResponsesRequest(model, messages, stream, forward, body.get("routellm"), previous, ids)


def _message_of(item: object, i: int) -> dict[str, Any]:
    """The chat-style message an input item routes as: a message item with its text and non-text parts, a tool's
    output as a tool turn, any other item (the model's own calls, reasoning, references) as an assistant turn."""
    param = f"input[{i}]"
    if not isinstance(item, dict):
        raise _bad(f"{param} must be an input item object, got {type(item).__name__}", param=param)
    kind = item.get("type", "message" if "role" in item else None)
    if not isinstance(kind, str):
        raise _bad(f"{param} must have a 'type' (or a 'role' for a message)", param=param)
    if kind == "message":
        return _message_item(item, param)
    if kind.endswith("_output"):  # function_call_output, computer_call_output...: a tool's result
        output = item.get("output")
        return {"role": "tool", "content": output if isinstance(output, str) else None}
    return {"role": "assistant", "content": None}


def _message_item(item: Mapping[str, Any], param: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ROLES:
        raise _bad(f"{param}.role must be one of {sorted(ROLES)}, got {role!r:.80}", param=param)
    content = item.get("content")
    if content is None or isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _bad(
            f"{param}.content must be a string or a list of content parts, got {type(content).__name__}", param=param
        )
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(f"{param}.content[{j}] must be a content part object with a 'type'", param=param)
        if part["type"] in TEXT_PARTS:
            if not isinstance(part.get("text"), str):
                raise _bad(f"{param}.content[{j}].text must be a string", param=param)
            parts.append({"type": "text", "text": part["text"]})
        else:  # input_image, input_file, input_audio, refusal...: passed on, not routed on
            parts.append({"type": part["type"]})
    return {"role": role, "content": parts}


def refuse_escalation(asked: str, escalation: str | None, climb: str | None) -> None:
    """Refuse an escalating model name (``-cascade``, ``-climb``) on ``/v1/responses``.

    Raises:
        ErrorResponse: 400 naming the chat-completions route that escalates.
    """
    if escalation is None and climb is None:
        return
    part = "-cascade" if escalation is not None else "-climb"
    raise _bad(
        f"model {asked!r:.120}: {part} is not supported on /v1/responses yet (the escalation check would hold and "
        "compare whole Responses answers); ask for the name without it, or send chat completions "
        "(POST /v1/chat/completions) to escalate",
        code="invalid_model",
        param="model",
    )


# ---- answers and stream events -----------------------------------------------------------------------------------
def is_response(value: Any) -> bool:
    """Whether ``value`` is a Responses response object."""
    return isinstance(value, Mapping) and value.get("object") == "response"


def is_response_event(value: Any) -> bool:
    """Whether ``value`` is a Responses stream event (``{"type": "response.output_text.delta", ...}``)."""
    kind = value.get("type") if isinstance(value, Mapping) else None
    return isinstance(kind, str) and (kind.startswith("response.") or kind == "error") and "choices" not in value


def _item_has_content(item: Any) -> bool:
    """An output item with something in it: a message with text or a refusal, or a call (reasoning alone is none)."""
    if not isinstance(item, Mapping) or item.get("type") == "reasoning":
        return False
    if item.get("type") != "message":
        return True
    return any(
        isinstance(part, Mapping) and bool(part.get("text") or part.get("refusal"))
        for part in item.get("content") or ()
    )


def response_is_empty(value: Any) -> bool:
    """Whether a response object (or a stream event) carries nothing: no text, refusal or call."""
    if is_response(value):
        return not any(_item_has_content(item) for item in value.get("output") or ())
    if not is_response_event(value):
        return True
    kind = value["type"]
    if kind in CONTENT_DELTAS:
        return not value.get("delta")
    if kind == "response.output_item.added":
        item = value.get("item")
        return not (isinstance(item, Mapping) and item.get("type") != "message" and _item_has_content(item))
    if kind in TERMINAL_EVENTS:
        return response_is_empty(value.get("response"))
    return True


def response_text(value: Any) -> str:
    """The text of a response object: its messages' ``output_text`` parts, joined."""
    if not is_response(value):
        return ""
    texts = [
        part["text"]
        for item in value.get("output") or ()
        if isinstance(item, Mapping) and item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, Mapping) and part.get("type") == "output_text" and isinstance(part.get("text"), str)
    ]
    return "".join(texts)


def event_text(event: Any) -> str:
    """The text a stream event delivers (``response.output_text.delta``)."""
    if is_response_event(event) and event["type"] == "response.output_text.delta":
        delta = event.get("delta")
        return delta if isinstance(delta, str) else ""
    return ""


def response_value(value: Any) -> Any:
    """The response's function calls (name and arguments) when it makes any, else its text."""
    calls = [
        {"name": item.get("name"), "arguments": item.get("arguments")}
        for item in (value.get("output") or () if is_response(value) else ())
        if isinstance(item, Mapping) and item.get("type") == "function_call"
    ]
    return calls or response_text(value)


def response_usage(value: Any) -> tuple[int | None, int | None]:
    """``(input_tokens, output_tokens)`` from a response object's ``usage``."""
    usage = value.get("usage") if isinstance(value, Mapping) else None
    if not isinstance(usage, Mapping):
        return None, None
    return usage.get("input_tokens"), usage.get("output_tokens")


def response_of(event: Any) -> Any:
    """The response object a stream event carries (``response.created``, ``response.completed``...), else None."""
    response = event.get("response") if isinstance(event, Mapping) else None
    return response if isinstance(response, Mapping) else None


def join_events(events: Sequence[Any]) -> dict[str, Any] | None:
    """A whole response from its stream: the terminal event's response object, else one message of the text."""
    if not events:
        return None
    for event in reversed(events):
        if isinstance(event, Mapping) and event.get("type") in TERMINAL_EVENTS and response_of(event) is not None:
            return dict(event["response"])
    text = "".join(event_text(e) for e in events)
    message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
    return {"object": "response", "output": [message], "usage": None}


def _with_record(event: Mapping[str, Any], record: ServedDecision) -> dict[str, Any]:
    """``event`` with the decision record on its response object (on the event itself when it carries none)."""
    response = response_of(event)
    if response is None:
        return {**event, METADATA_KEY: record.as_dict()}
    return {**event, "response": {**response, METADATA_KEY: record.as_dict()}}


def _frame(event: Mapping[str, Any]) -> bytes:
    kind = str(event.get("type", "message")).replace("\n", " ").replace("\r", " ")
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


class EventFrames:
    """How a Responses stream goes out: each upstream event as ``event: <type>`` / ``data: <json>``. The decision
    record rides on the first event relayed (``response.created``'s response object); the terminal event
    (``response.completed``...) is held until the stream ended, and goes out last with the final record, priced from
    its usage. There is no ``[DONE]``."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        #: The ids of the response's output items, from the last response object an event carried.
        self.output_ids: tuple[str, ...] = ()
        self._held: Mapping[str, Any] | None = None
        self._sequence = -1

    def _note(self, event: Mapping[str, Any]) -> None:
        response = response_of(event)
        if response is not None and isinstance(response.get("id"), str):
            self.response_id = response["id"]
            self.output_ids = output_ids(response) or self.output_ids
        number = event.get("sequence_number")
        if isinstance(number, int) and not isinstance(number, bool):
            self._sequence = max(self._sequence, number)

    def first(self, event: Any, record: ServedDecision) -> bytes:
        """The first event, with the record the stream started under."""
        return self.chunk(_with_record(event, record))

    def chunk(self, event: Any) -> bytes:
        """One event (nothing now for a terminal event: :meth:`end` sends it)."""
        if not isinstance(event, Mapping):
            return b""
        self._note(event)
        if event.get("type") in TERMINAL_EVENTS:
            self._held = event
            return b""
        return _frame(event)

    def error(self, body: Mapping[str, Any]) -> bytes:
        """A failure after events were sent, as a Responses ``error`` event that also carries OpenAI's ``error``
        object (the ``openai`` SDK raises ``APIError`` on it, as on chat completions)."""
        detail = body.get("error") or {}
        self._sequence += 1
        event = {
            "type": "error",
            "code": detail.get("code"),
            "message": detail.get("message"),
            "param": detail.get("param"),
            "sequence_number": self._sequence,
            "error": detail,
        }
        return _frame(event)

    def end(self, record: ServedDecision) -> bytes:
        """The held terminal event, with the final record (nothing when the upstream sent none)."""
        if self._held is None:
            return b""
        return _frame(_with_record(self._held, record))


def output_ids(response: Mapping[str, Any]) -> tuple[str, ...]:
    """The ids of a response object's output items (messages, reasoning, tool calls)."""
    output = response.get("output")
    if not isinstance(output, list):
        return ()
    return tuple(item["id"] for item in output if isinstance(item, Mapping) and isinstance(item.get("id"), str))


# ---- which upstream answered a response ------------------------------------------------------------------------
@dataclass(frozen=True)
class Origin:
    """What serves a chain of responses: the model name the client first asked for and its ``routellm`` field, from
    which any worker builds the same engine again."""

    model: str
    options: Any = None


@dataclass(frozen=True)
class Answered:
    """A response this server relayed: the engine that routed it, the record of who answered and where the engine
    comes from (without an origin, only this worker remembers it)."""

    engine: Any
    record: ServedDecision
    origin: Origin | None = None


#: Builds the engine of a model name and ``routellm`` field (the server's ``engine_of``; raises ``ErrorResponse``).
EngineOf = Callable[[str, Any], tuple[Any, Any]]


class AnsweredResponses:
    """Who answered each response id this server relayed (and wrote each of its output items), so a request
    continuing one (``previous_response_id``, or a conversation sent whole) goes to the upstream that stored it.

    Two levels: this worker's last ``size`` ids in memory (the oldest dropped first), then, with a feedback
    ``store`` (a SQLite file or a PostgreSQL database the workers and replicas share), the store, where every
    worker writes what it relayed before the answer goes out and reads what another relayed; rows older than
    ``keep_days`` are pruned (at most once per :data:`PRUNE_EVERY_S` per worker).
    """

    def __init__(self, size: int = RECENT_RESPONSES, store: Any = None, keep_days: float = KEEP_DAYS) -> None:
        self.size = size
        self.store = store
        self.keep_days = keep_days
        self._items: OrderedDict[str, Answered] = OrderedDict()
        self._pruned = -math.inf

    def add(self, response_id: Any, answered: Answered, items: Sequence[str] = ()) -> None:
        """Remember in memory who answered ``response_id`` and wrote its output ``items`` (ids that are not
        strings are ignored)."""
        for key in (response_id, *items):
            if isinstance(key, str) and key:
                self._items[key] = answered
                self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    async def aremember(self, response_id: Any, answered: Answered, items: Sequence[str] = ()) -> None:
        """:meth:`add`, and write it to the store (when there is one) before the answer goes out, so that another
        worker continues it. A failed write is logged, not raised: the answer was served and paid for."""
        self.add(response_id, answered, items)
        origin = answered.origin
        if self.store is None or origin is None or not isinstance(response_id, str) or not response_id:
            return
        try:
            await self.store.arecord_response(
                response_id, answered.record, origin.model, options=origin.options, items=items
            )
        except RouteLLMError as exc:
            logger.warning(
                "routellm server: response %r was not written to the feedback store (%s: %s); another worker "
                "will route a continuation of it anew",
                response_id[:80],
                type(exc).__name__,
                exc,
            )
            return
        if time.monotonic() - self._pruned >= PRUNE_EVERY_S:
            self._pruned = time.monotonic()
            try:
                await self.store.aprune_responses(time.time() - self.keep_days * 86_400)
            except RouteLLMError as exc:  # tried again in PRUNE_EVERY_S
                logger.warning(
                    "routellm server: could not forget the responses older than %g days (%s: %s)",
                    self.keep_days,
                    type(exc).__name__,
                    exc,
                )

    def get(self, response_id: str | None) -> Answered | None:
        """Who answered ``response_id`` by this worker's memory, or None for an id it did not relay (or forgot)."""
        return self._items.get(response_id) if response_id else None

    def of_items(self, item_ids: Sequence[str]) -> Answered | None:
        """Who wrote the latest of ``item_ids`` by this worker's memory (a conversation sent whole carries the
        model's earlier output items, which only the upstream that wrote them may know), or None."""
        for item_id in reversed(item_ids):
            if (answered := self._items.get(item_id)) is not None:
                return answered
        return None

    async def afind(
        self, previous_response_id: str | None, item_ids: Sequence[str], engine_of: EngineOf
    ) -> Answered | None:
        """Who answered ``previous_response_id`` (else wrote the latest of ``item_ids``): this worker's memory
        first, then the store, whose answer's engine ``engine_of`` builds again from its model name; None when
        neither knows the ids.

        Raises:
            ErrorResponse: 503 naming the id when the store cannot be read (a continuation is never routed anew
                because the store failed); 400 naming it when its model name is no longer served here.
        """
        if previous_response_id:  # the id the client names wins over the items it resends, wherever it is known
            found = self.get(previous_response_id)
            if found is None and self.store is not None:
                found = await self._stored([previous_response_id], engine_of, previous=True)
            if found is not None:
                return found
        found = self.of_items(item_ids)
        if found is None and self.store is not None and item_ids:
            found = await self._stored(list(item_ids), engine_of, previous=False)
        return found

    async def _stored(self, wanted: list[str], engine_of: EngineOf, *, previous: bool) -> Answered | None:
        """Who answered the latest of ``wanted`` (a ``previous_response_id``, or the input's item ids), from the
        store; remembered here from then on.

        Raises:
            ErrorResponse: As :meth:`afind`.
        """
        assert self.store is not None
        param = "previous_response_id" if previous else "input"
        what = f"previous_response_id {wanted[0]!r:.80}" if previous else "the input's items"
        try:
            rows = await self.store.aresponses(wanted)
        except RouteLLMError as exc:
            logger.error("routellm server: reading %s from the feedback store failed: %s", what, exc)
            raise ErrorResponse(
                503,
                f"cannot tell which upstream stored {what}: the feedback store that remembers it could not be read "
                f"({type(exc).__name__}); try again (the request was not routed, so that it does not reach an "
                "upstream that never saw the conversation)",
                code="response_lookup_failed",
                param=param,
                type="server_error",
            ) from None
        row = next((rows[key] for key in reversed(wanted) if key in rows), None)
        if row is None:
            return None
        try:
            engine, _ = engine_of(row.model, row.options)
        except ErrorResponse as exc:
            raise ErrorResponse(
                400,
                f"{what} was answered under model {row.model!r:.120}, which this server cannot serve now "
                f"({exc.message}); start a new conversation",
                code="invalid_previous_response_id" if previous else "invalid_input",
                param=param,
            ) from None
        answered = Answered(engine, row.record, Origin(row.model, row.options))
        self.add(row.id, answered)
        return answered

    def __len__(self) -> int:
        return len(self._items)


__all__ = [
    "Answered",
    "AnsweredResponses",
    "Api",
    "EventFrames",
    "Origin",
    "ResponsesRequest",
    "event_text",
    "is_response",
    "is_response_event",
    "join_events",
    "output_ids",
    "parse_responses_request",
    "refuse_escalation",
    "response_is_empty",
    "response_of",
    "response_text",
    "response_usage",
    "response_value",
]
