"""The server's OpenAPI schema (``GET /openapi.json``): FastAPI's generated document, with the real wire models.

The handlers read their bodies themselves (size and time limits, OpenAI-style 400s naming the field), so FastAPI
sees no body model; :func:`install_openapi` adds them: the request and answer of each route as pydantic models
(the decision record's fields are those of :meth:`~routellm_core.decisions.ServedDecision.as_dict`), the error
answers each route gives, and, when the server has bearer tokens, the ``bearerAuth`` scheme on every route but
:data:`PUBLIC_ROUTES` (``/health``; ``/openapi.json`` itself is public too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from routellm_core.server.protocol import MAX_DECISION_ID

#: Name of the security scheme in ``components.securitySchemes``.
BEARER = "bearerAuth"
_REF = "#/components/schemas/{model}"


class _Open(BaseModel):
    """An OpenAI object: the fields listed are the ones the server reads or writes; others pass through."""

    model_config = ConfigDict(extra="allow")


# ---- requests -------------------------------------------------------------------------------------------------
class TextPart(_Open):
    """A text content part (routing text)."""

    type: Literal["text", "input_text"]
    text: str


class ImageUrl(_Open):
    """Where an image part's image is."""

    url: str


class ImagePart(_Open):
    """An image content part (passed to the upstream, not routed on)."""

    type: Literal["image_url"]
    image_url: ImageUrl


class ChatMessage(_Open):
    """One message of the conversation."""

    role: Literal["user", "assistant", "system", "developer", "tool", "function"]
    content: str | list[TextPart | ImagePart] | None = None


class StreamOptions(_Open):
    """Options of a streamed answer."""

    include_usage: bool | None = None


class RouteLLMOptions(BaseModel):
    """The server's own request options (never sent to an upstream)."""

    model_config = ConfigDict(extra="forbid")

    objective: str | None = Field(
        default=None,
        description="router-auto's objective, '<kind>=<value>': margin, budget (USD per 1,000 requests), max_cost "
        "(USD per request) or cost_weight; only with a bare router-auto[-cascade...] model name",
        examples=["budget=1.5", "margin=0.02"],
    )


class ChatCompletionRequest(_Open):
    """OpenAI's chat-completions request; every field but ``model``, ``stream`` and ``routellm`` goes to the
    upstream unchanged."""

    model: str = Field(
        min_length=1,
        description="router-<router> (the server's default threshold), router-<router>-<threshold in [0, 1]> or "
        "router-<router>-<percent>% (the threshold sending about that share to the strong model); with named models "
        "router-auto[-<kind>-<value>] (margin, budget, max, weight); GET /v1/models lists them",
        examples=["router-default", "router-default-0.5", "router-fast-30%", "router-auto-budget-1.5"],
    )
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    routellm: RouteLLMOptions | None = None


class InputItem(_Open):
    """An input item: a message (``role`` and string content or content parts such as ``input_text``), a
    tool's output (``function_call_output``) or another item the upstream understands."""

    type: str | None = None
    role: Literal["user", "assistant", "system", "developer"] | None = None


class ResponsesRequest(_Open):
    """OpenAI's Responses request; every field but ``model``, ``stream`` and ``routellm`` goes to the upstream
    unchanged. Routed on ``instructions`` and ``input`` like chat completions' messages."""

    model: str = Field(
        min_length=1,
        description="a model name as for chat completions, without -cascade or -climb (not supported here yet)",
        examples=["router-default", "router-default-0.5", "router-fast-30%", "router-auto-budget-1.5"],
    )
    input: str | list[InputItem] = Field(description="the input: a string, or a non-empty list of input items")
    instructions: str | None = None
    previous_response_id: str | None = Field(
        default=None,
        description="continue a response: one this worker relayed goes to the upstream that answered it (the same "
        "decision); another is routed on this request's input",
    )
    stream: bool | None = False
    routellm: RouteLLMOptions | None = None


class FeedbackRequest(_Open):
    """A verdict on a decision a response carried."""

    decision_id: str = Field(
        min_length=1,
        max_length=MAX_DECISION_ID,
        pattern=r"\S",
        description="the decision id of a response ('routellm' field or x-routellm-decision-id header)",
    )
    verdict: str = Field(
        min_length=1,
        pattern=r"\S",
        description="good, bad, strong, weak, model_a, model_b, tie, 'tie (bothbad)' or a model name",
    )


# ---- answers --------------------------------------------------------------------------------------------------
class AttemptRecord(BaseModel):
    """One model call inside a routed request."""

    model: str
    side: Literal["strong", "weak"]
    role: Literal["answer", "check", "escalation", "fallback"]
    kept: bool
    signals: dict[str, float]
    confidence: float | None
    error: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None


class LadderRecord(BaseModel):
    """How ``router-auto`` chose among the named models (the record's ``ladder``)."""

    models: list[str]
    predictions: dict[str, float]
    expected_costs: dict[str, float]
    chosen: str
    expected_cost: float
    objective: Literal["margin", "max_cost", "cost_weight", "budget"]
    value: float
    strong: str
    weak: str
    budget: float | None
    spend: float | None


class DecisionRecord(BaseModel):
    """The decision record (``"routellm"``), the same in LangChain, LlamaIndex and the server."""

    decision_id: str
    router: str
    win_rate: float
    threshold: float
    choice: Literal["strong", "weak"]
    served: Literal["strong", "weak"]
    model: str
    fallback: bool
    fallback_from: str | None
    fallback_error: str | None
    continued: bool
    escalated: bool
    attempts: list[AttemptRecord]
    cost: float | None
    ladder: LadderRecord | None = Field(description="router-auto's choice among the named models; null otherwise")
    cached: bool = Field(False, description="true only where a LangChain cache replayed the answer; false here")


class AnswerMessage(_Open):
    """The answer's message (tool calls and other fields as the upstream wrote them)."""

    role: str
    content: str | None = None


class Choice(_Open):
    """One choice of the answer."""

    index: int
    message: AnswerMessage
    finish_reason: str | None = None


class ChatCompletion(_Open):
    """The upstream's answer, unchanged, with the decision record added."""

    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    routellm: DecisionRecord


class ResponseObject(_Open):
    """The upstream's response object, unchanged, with the decision record added."""

    id: str
    object: Literal["response"]
    model: str
    output: list[dict[str, Any]]
    routellm: DecisionRecord


class FeedbackAnswer(BaseModel):
    """The stored verdict."""

    object: Literal["routellm.feedback"]
    decision_id: str
    verdict: str
    label_id: int | None = Field(description="the label written; null when the verdict makes none")


class ModelCard(BaseModel):
    """A model name clients may ask for."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"]
    data: list[ModelCard]


class Health(BaseModel):
    """``GET /health`` (no auth)."""

    status: Literal["ok"]
    worker: str
    routers: list[str]
    strong: str
    weak: str
    models: list[str]
    in_flight: int


class ErrorDetail(BaseModel):
    """What went wrong."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """An OpenAI-style error answer."""

    error: ErrorDetail


_REQUESTS: tuple[type[BaseModel], ...] = (ChatCompletionRequest, ResponsesRequest, FeedbackRequest)
_ANSWERS: tuple[type[BaseModel], ...] = (
    ChatCompletion,
    ResponseObject,
    FeedbackAnswer,
    ModelList,
    ModelCard,
    Health,
    ErrorBody,
)

_STATUS_TEXT = {
    400: "Bad request: invalid JSON, body or field (the message names it)",
    401: "Missing or invalid bearer token",
    404: "Unknown model name (code model_not_found), or an upstream's 404",
    408: "The request body did not arrive within the body timeout",
    409: "No feedback store, or an upstream's 409",
    413: "The request body exceeds the server's limit",
    422: "An upstream refused the request",
    429: "Too many concurrent requests, or an upstream's 429",
    500: "Server error (routing failed, the feedback store could not be written)",
    502: "The upstream failed or answered empty",
    504: "The upstream timed out",
}
_DECISION_HEADERS = {
    "x-routellm-decision-id": "the decision id (send it to POST /v1/feedback)",
    "x-routellm-router": "the router",
    "x-routellm-win-rate": "predicted probability that the strong model answers better",
    "x-routellm-threshold": "the threshold in force",
    "x-routellm-choice": "strong or weak: the router's choice",
    "x-routellm-served": "strong or weak: who answered",
    "x-routellm-model": "the model that answered",
    "x-routellm-fallback": "true when the other side answered because the chosen one failed",
    "x-routellm-worker": "pid of the worker that answered",
    "x-routellm-objective": "router-auto: the objective in force (budget=<USD per 1k requests>, margin=<d>...)",
    "x-routellm-chosen": "router-auto: the model the objective chose (x-routellm-model answered)",
    "x-routellm-expected-cost-usd": "router-auto: the chosen model's expected cost of the request in USD",
}


#: One server-sent event of a stream (``event``: a Responses event's type; ``data``: a JSON text, or ``[DONE]``).
_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": _REF.format(model=model.__name__)}


def _errors(statuses: Sequence[int]) -> dict[str, Any]:
    return {str(s): {"description": _STATUS_TEXT[s], "content": _json(_ref(ErrorBody))} for s in statuses}


def _operations(auth: bool) -> dict[tuple[str, str], dict[str, Any]]:
    """What each route takes and answers: path and method -> the operation's fields."""
    unauthorized = (401,) if auth else ()
    headers = {name: {"description": text, "schema": {"type": "string"}} for name, text in _DECISION_HEADERS.items()}
    return {
        ("/v1/chat/completions", "post"): {
            "summary": "Route a chat completion to the strong or the weak upstream",
            "requestBody": {"required": True, "content": _json(_ref(ChatCompletionRequest))},
            "responses": {
                "200": {
                    "description": "The upstream's answer and the decision record (an SSE stream when stream=true)",
                    "headers": headers,
                    "content": {
                        **_json(_ref(ChatCompletion)),
                        "text/event-stream": {"schema": _SSE_EVENT},
                    },
                },
                **_errors((400, *unauthorized, 404, 408, 409, 413, 422, 429, 500, 502, 504)),
            },
        },
        ("/v1/responses", "post"): {
            "summary": "Route a Responses API request to the strong or the weak upstream",
            "requestBody": {"required": True, "content": _json(_ref(ResponsesRequest))},
            "responses": {
                "200": {
                    "description": "The upstream's response object and the decision record (an SSE stream of "
                    "Responses events when stream=true)",
                    "headers": headers,
                    "content": {
                        **_json(_ref(ResponseObject)),
                        "text/event-stream": {"schema": _SSE_EVENT},
                    },
                },
                **_errors((400, *unauthorized, 404, 408, 409, 413, 422, 429, 500, 502, 504)),
            },
        },
        ("/v1/feedback", "post"): {
            "summary": "Attach a verdict to a decision",
            "requestBody": {"required": True, "content": _json(_ref(FeedbackRequest))},
            "responses": {
                "200": {"description": "The verdict, stored", "content": _json(_ref(FeedbackAnswer))},
                **_errors((400, *unauthorized, 404, 408, 409, 413, 500)),
            },
        },
        ("/v1/models", "get"): {
            "summary": "The model names this server serves",
            "responses": {
                "200": {"description": "The model names", "content": _json(_ref(ModelList))},
                **_errors(unauthorized),
            },
        },
        ("/v1/models/{model}", "get"): {
            "summary": "The model object of a model name chat completions accepts, listed or not",
            "parameters": [
                {
                    "name": "model",
                    "in": "path",
                    "required": True,
                    "description": "a model name: router-<router>[-<threshold>|-<percent>%][-cascade...], "
                    "router-auto...",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {"description": "The model object", "content": _json(_ref(ModelCard))},
                **_errors((*unauthorized, 404)),
            },
        },
        ("/health", "get"): {
            "summary": "Liveness, for load balancers (no auth)",
            "responses": {"200": {"description": "The worker is up", "content": _json(_ref(Health))}},
        },
        ("/metrics", "get"): {
            "summary": "Prometheus metrics (text format 0.0.4), every worker's totals",
            "responses": {
                "200": {"description": "The exposition", "content": {"text/plain": {"schema": {"type": "string"}}}},
                **_errors(unauthorized),
            },
        },
    }


#: The routes open to anyone; every other route in the schema needs the bearer token when the server has one.
PUBLIC_ROUTES = frozenset({("/health", "get")})


def enrich(schema: dict[str, Any], *, auth: bool, max_messages: int) -> dict[str, Any]:
    """FastAPI's generated ``schema`` with the wire models, error answers and security of each route."""
    _, requests = models_json_schema([(m, "validation") for m in _REQUESTS], ref_template=_REF)
    _, answers = models_json_schema([(m, "serialization") for m in _ANSWERS], ref_template=_REF)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update({**requests.get("$defs", {}), **answers.get("$defs", {})})
    chat = components["schemas"]["ChatCompletionRequest"]
    chat["properties"]["messages"]["maxItems"] = max_messages
    if auth:
        components.setdefault("securitySchemes", {})[BEARER] = {
            "type": "http",
            "scheme": "bearer",
            "description": "one of the tokens in $ROUTELLM_SERVER_API_KEYS (or the variable --api-keys-env names)",
        }
    for (path, method), fields in _operations(auth).items():
        operation = schema["paths"][path][method]
        operation.pop("parameters", None)  # the handlers' `request` argument is no query parameter
        operation.update(fields)
    if auth:  # fails closed: a route not listed as public is documented as needing the token
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                if (path, method) not in PUBLIC_ROUTES and isinstance(operation, dict):
                    operation["security"] = [{BEARER: []}]
                    operation.setdefault("responses", {}).setdefault("401", _errors((401,))["401"])
    return schema


def install_openapi(app: FastAPI, *, auth: bool, max_messages: int) -> None:
    """Make ``app.openapi()`` (served at ``app.openapi_url``) return the enriched schema, built once."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = enrich(generate(), auth=auth, max_messages=max_messages)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["BEARER", "PUBLIC_ROUTES", "enrich", "install_openapi"]
