"""The routing server's ASGI app: ``create_app(...)`` returns a FastAPI app speaking OpenAI's chat-completions API.

Per request: check auth and limits, read the routing text from the messages (``routellm_core.routing.text``), and
hand it to the router's :class:`~routellm_core.routing.engine.RoutingEngine` (one per router served): it scores the
win rate through the shared micro-batcher and decides once, at the threshold the model name asks for; then it calls
the chosen upstream (fallback, empty-answer rule, stream closing), records the decision in the feedback store
(``feedback``) and, for a sampled share (``label_fraction``), asks the other upstream in the background and stores the
judge's verdict, exactly as the LangChain and LlamaIndex integrations do. The decision goes out in ``x-routellm-*``
headers and in the body's ``"routellm"`` field, the decision record of both integrations; ``POST /v1/feedback``
attaches a verdict to it later. Model names ``router-<router>[-<pre-route>]-cascade[-<share>%|-<threshold>]``
escalate on the cheap answer (see :mod:`routellm_core.routing.cascade`). The app keeps no state between requests (the
feedback store is an SQLite file shared by the workers, or a PostgreSQL database shared by replicas, and holds who
answered each ``/v1/responses`` response as well; under an escalation share each worker holds the share on the
recent confidences of its own traffic), so it runs as many workers or replicas as needed behind any load balancer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from routellm_core.data.prices import price_of, unpriced_hint
from routellm_core.decisions import METADATA_KEY, Route, ServedDecision, Side
from routellm_core.errors import (
    FeedbackStoreError,
    InvalidInputError,
    ModelCallError,
    RouteLLMError,
    UnknownDecisionError,
)
from routellm_core.escalation.checks import VERIFY_QUESTION
from routellm_core.escalation.config import Escalation
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.learning.judging import PairwiseJudge
from routellm_core.learning.labelling import traffic_labelling
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.cascade import SAMPLE_TEMPERATURE
from routellm_core.routing.engine import RoutingEngine, RoutingOptions, price_table
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.objective import Objective
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.routing.text import routing_text
from routellm_core.server.answers import (
    answer_chunk_text,
    answer_empty,
    answer_logprobs,
    answer_text,
    answer_usage,
    answer_value,
    escalation_setting,
    join_chunks,
    split_cascade,
)
from routellm_core.server.auto import (
    AUTO_MODEL,
    AutoEngine,
    AutoRouting,
    Setting,
    engine_label,
    is_auto,
    objective_in_body,
    split_climb,
)
from routellm_core.server.errors import ErrorResponse, model_call_error, short_secret_warning
from routellm_core.server.metrics import CHECK_SIDE, CONTENT_TYPE, JUDGE_SIDE, LABEL_SIDE, ServerMetrics
from routellm_core.server.models import build_models, check_price_names, upstream_name
from routellm_core.server.openapi import install_openapi
from routellm_core.server.origin import browser_refusal
from routellm_core.server.protocol import (
    completion_text,
    model_ids,
    parse_feedback,
    parse_request,
    resolve_model,
    turns,
)
from routellm_core.server.responses import (
    Answered,
    AnsweredResponses,
    Api,
    EventFrames,
    Origin,
    ResponsesRequest,
    output_ids,
    parse_responses_request,
    refuse_escalation,
    response_of,
)
from routellm_core.server.settings import ServerSettings
from routellm_core.server.telemetry import RequestSpan, Telemetry
from routellm_core.server.ui import ui_router
from routellm_core.server.upstreams import Upstream, build_upstream

logger = logging.getLogger("routellm_core.server")

_OWNER = "routellm server"
#: ``owned_by`` of the model objects ``GET /v1/models`` lists.
_OWNER_ID = "routellm"
_DONE = b"data: [DONE]\n\n"
#: Request fields left out of the other upstream's (non-streamed) call when a request is labelled.
_STREAM_ONLY = frozenset({"stream", "stream_options"})
#: Decisions kept for the web page's Watch view (``GET /ui/api/recent``), per worker.
RECENT_DECISIONS = 50
#: Seconds the server waits at shutdown for labels still being judged.
LABEL_DRAIN_S = 30.0


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_json_bytes(value), status_code=status, headers=dict(headers or {}), media_type="application/json")


def _model_card(model: str) -> dict[str, Any]:
    """OpenAI's model object of a model name this server serves."""
    return {"id": model, "object": "model", "created": 0, "owned_by": _OWNER_ID}


def _pinned(route: Route, api: Api) -> bool | None:
    """``False`` (no fallback) for a Responses continuation: only the upstream that stored ``previous_response_id``
    can answer it, so another upstream would only fail with a 404 hiding the real error; else the engine's."""
    return False if api == "responses" and route.continued else None


def _sse(value: Any) -> bytes:
    return b"data: " + _json_bytes(value) + b"\n\n"


class _ChatFrames:
    """How a chat-completions stream goes out: ``data: <chunk>`` with the record on the first chunk, an OpenAI
    error object after a failure, ``data: [DONE]`` at the end (:class:`EventFrames` for the Responses API)."""

    def first(self, chunk: Any, record: ServedDecision) -> bytes:
        return _sse({**chunk, METADATA_KEY: record.as_dict()})

    def chunk(self, chunk: Any) -> bytes:
        return _sse(chunk)

    def error(self, body: Mapping[str, Any]) -> bytes:
        return _sse(body)

    def end(self, record: ServedDecision) -> bytes:
        return _DONE


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class _Slot:
    """One request's place among ``max_concurrency``; released exactly once."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._state.in_flight -= 1
            self._state.metrics.in_flight.add(-1)


class _EventStream(StreamingResponse):
    """An SSE response that releases the request's slot and closes the relay however it ends; ``on_close`` runs
    once the relay is closed (it counts a stream the client left before its end)."""

    def __init__(
        self,
        events: AsyncIterator[bytes],
        relay: Any,
        slot: _Slot,
        headers: Mapping[str, str],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(events, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})
        self._relay = relay
        self._slot = slot
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                with anyio.CancelScope(shield=True):  # a client that left cancels the task; closing must still run
                    await self._relay.aclose()
                if self._on_close is not None:
                    self._on_close()
            finally:
                self._slot.release()


class ServerState:
    """What a server process holds: settings, upstreams, one routing engine per router, the feedback store and
    the metrics.

    Args:
        settings: The settings.
        upstreams: The strong and the weak upstream.
        policies: Router name (as clients write it in the model field) to its policy.
        judge: The upstream asked as the pairwise judge of sampled requests (``settings.label_fraction``).
        second: The upstream giving the escalation check's second cheap answer (``settings.escalate_second``).
        models: The named models ``router-auto`` routes among, by name (``settings.models``).

    Raises:
        InvalidInputError: Both upstreams named alike while a feedback store is kept.
        FeedbackStoreError: The feedback store cannot be opened.
    """

    def __init__(
        self,
        settings: ServerSettings,
        upstreams: Mapping[Side, Upstream],
        policies: Mapping[str, RoutingPolicy],
        judge: Upstream | None = None,
        second: Upstream | None = None,
        models: Mapping[str, Upstream] | None = None,
    ) -> None:
        self.settings = settings
        self.second = second
        self.upstreams = dict(upstreams)
        #: Each policy named as clients name it (a policy built on a router instance is named by its type).
        self.policies = {key: p if p.router_name == key else p.renamed(key) for key, p in policies.items()}
        self.judge = judge
        self.metrics = ServerMetrics()
        self.telemetry = Telemetry(upstreams=[*self.upstreams.values(), *(models or {}).values()])
        self.worker = str(os.getpid())
        self.in_flight = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_DECISIONS)
        self._tokens = [_digest(t) for t in settings.bearer_tokens()]
        every = [*self.upstreams.values(), *([judge] if judge is not None else []), *(models or {}).values()]
        self.secrets = tuple(s for u in every for s in u.secrets) + tuple(t.decode() for t in settings.bearer_tokens())
        warning = short_secret_warning(self.secrets)
        if warning is not None:
            logger.warning("%s: %s", _OWNER, warning)
        names = {side: up.name for side, up in self.upstreams.items()}
        self.store = FeedbackStore(settings.feedback) if settings.feedback else None
        #: Who answered each ``/v1/responses`` response (a ``previous_response_id`` continues there): this worker's
        #: recent ones in memory, then the feedback store every worker shares.
        self.answered = AnsweredResponses(store=self.store, keep_days=settings.response_days)
        pairwise = PairwiseJudge(self._judge_reply, name=judge.name) if judge is not None else None
        share = settings.escalate_share
        escalation = Escalation(
            check=settings.escalate_check,
            threshold=settings.escalate_threshold if share is None else None,
            share=share,
        )
        label_fraction = settings.label_fraction if pairwise is not None else 0.0
        #: One labelling (store, judge, sampling) for every engine: each call passes its own pair's names.
        self.labelling = traffic_labelling(
            self.store, pairwise, label_fraction, names=names, concurrency=settings.label_concurrency
        )

        #: ``--prices``: USD per million input and output tokens by model name (over the shipped table).
        self.prices = {name: (float(p[0]), float(p[1])) for name, p in settings.prices.items()}

        def engine(policy: RoutingPolicy, escalate: Escalation | None) -> RoutingEngine:
            options = RoutingOptions(
                router=policy,
                fallback=settings.fallback,
                feedback=self.store,
                label_fraction=label_fraction,
                escalate=escalate,
                prices=self.prices or None,
            )
            return RoutingEngine(
                options,
                names,
                owner=_OWNER,
                is_empty=answer_empty,
                chunk_text=answer_chunk_text,
                answer_text=answer_text,
                judge=pairwise,
                on_fallback=self._on_fallback,
                second_name=second.name if second is not None else None,
                answer_value=answer_value,
                usage=answer_usage,
                join_chunks=join_chunks,
                logprobs=answer_logprobs,
                labelling=self.labelling,
            )

        #: Builds an engine (the escalation variants of ``router-<router>-cascade-<setting>`` on first use).
        self._engine = engine
        self.escalation = escalation
        #: ``(router, "share" | "threshold", value)`` -> its engine (whole percentages and two-decimal thresholds
        #: only, so at most 202 per router); each share engine holds its own recent confidences.
        self.escalation_engines: dict[tuple[str, str, float], RoutingEngine] = {}

        try:
            self.engines = {name: engine(policy, None) for name, policy in self.policies.items()}
            #: The same routers with escalation on (``router-<router>-cascade...``).
            self.cascades = {name: engine(policy, escalation) for name, policy in self.policies.items()}
            #: ``router-auto``: the named models and their engines per objective (None without ``models``).
            self.auto = self._auto_routing(models, pairwise) if models else None
        except BaseException:
            if self.store is not None:
                self.store.close()
            raise

    @property
    def auth(self) -> bool:
        """Whether requests need a bearer token."""
        return bool(self._tokens)

    def _auto_routing(self, models: Mapping[str, Upstream], pairwise: PairwiseJudge | None) -> AutoRouting:
        """The ``router-auto`` engines: one :class:`LadderEngine` per objective and escalation setting, sharing
        the auto router's policy and one labelling."""
        settings = self.settings
        policy = self.policies.get(settings.auto_router) or RoutingPolicy(
            settings.auto_router, max_batch_size=settings.max_batch_size
        )
        priors = {name: ModelPrior.parse(text, name) for name, text in settings.priors.items()}
        #: Prices the always-costliest baseline of ``router-auto`` answers (``account``).
        self.auto_prices = price_table(self.prices)

        def build(objective: Objective, setting: Setting | None) -> AutoEngine:
            escalate = None
            if setting is not None:
                kind, value, climb = setting
                escalate = replace(self.escalation, climb=climb)
                if kind == "share":
                    escalate = replace(escalate, share=value, threshold=None)
                elif kind == "threshold":
                    escalate = replace(escalate, threshold=value, share=None)
            options = RoutingOptions(
                router=policy,
                fallback=settings.fallback,
                feedback=self.store,
                label_fraction=settings.label_fraction if pairwise is not None else 0.0,
                escalate=escalate,
                objective=objective,
                priors=priors or None,
                prices=self.prices or None,
            )
            built = AutoEngine(
                engine_label(objective, setting),
                options,
                list(models),
                owner=_OWNER,
                policy=policy,
                is_empty=answer_empty,
                chunk_text=answer_chunk_text,
                answer_text=answer_text,
                judge=pairwise,
                on_fallback=self._on_fallback,
                answer_value=answer_value,
                usage=answer_usage,
                join_chunks=join_chunks,
                logprobs=answer_logprobs,
                labelling=self.labelling,
            )
            return built

        auto = AutoRouting(models, Objective.parse(settings.objective), build)
        auto.on_evict = self._forget_engine
        return auto

    def _forget_engine(self, dropped: AutoEngine) -> None:
        """Drop the gauges of a ``router-auto`` engine no longer kept (its budget's, its share caps')."""
        self.metrics.forget_budget(dropped.label)
        if dropped.shares is not None:
            self.metrics.forget_shares(dropped.label, list(dropped.objective.cap_of))

    # ---- admission ------------------------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Check the bearer token (constant-time compare of SHA-256 digests against every accepted token); without
        auth, refuse another site's browser requests and DNS rebinding (:func:`browser_refusal`).

        Raises:
            ErrorResponse: 401 when auth is on and the token is missing or wrong; 403 when auth is off and a browser
                sent the request from another site's page, or asked for the server under a rebindable name.
        """
        if not self._tokens:
            refused = browser_refusal(request.headers, self.settings.allowed_hosts)
            if refused is not None:
                raise ErrorResponse(403, refused[1], code=refused[0], type="permission_error")
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        supplied = _digest(token.strip().encode() if scheme.lower() == "bearer" else b"")
        accepted = False
        for digest in self._tokens:
            accepted |= hmac.compare_digest(supplied, digest)
        if not accepted:
            raise ErrorResponse(
                401,
                "missing or invalid bearer token: send 'Authorization: Bearer <key>' (the openai SDK's api_key)",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def acquire(self) -> _Slot:
        """A place among the requests in flight.

        Raises:
            ErrorResponse: 429 at once when ``max_concurrency`` requests are in flight in this worker.
        """
        limit = self.settings.max_concurrency
        if self.in_flight >= limit:
            raise ErrorResponse(
                429,
                f"the server is at its limit of {limit} concurrent requests per worker; retry shortly",
                code="too_many_concurrent_requests",
                type="rate_limit_error",
                headers={"Retry-After": "1"},
            )
        self.in_flight += 1
        self.metrics.in_flight.add(1)
        return _Slot(self)

    async def read_body(self, request: Request) -> bytes:
        """The request body, at most ``max_body_bytes``, received within ``body_timeout`` seconds.

        Raises:
            ErrorResponse: 413 for a larger body (refused from ``Content-Length`` before reading, when sent); 408
                when the body has not fully arrived after ``body_timeout`` seconds.
        """
        limit, timeout = self.settings.max_body_bytes, self.settings.body_timeout
        too_large = ErrorResponse(
            413, f"the request body exceeds this server's limit of {limit} bytes", code="request_too_large"
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        parts: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(timeout):
                async for part in request.stream():
                    size += len(part)
                    if size > limit:
                        raise too_large
                    parts.append(part)
        except TimeoutError:
            raise ErrorResponse(
                408, f"the request body did not arrive within {timeout:g} s", code="request_timeout"
            ) from None
        return b"".join(parts)

    # ---- routing --------------------------------------------------------------------------------------
    def engine_for(self, name: str, escalation: str | None, model: str) -> RoutingEngine:
        """The engine of router ``name`` for a model name's escalation part (:func:`split_cascade`): none, the
        server's settings (``""``), or ``<p>%`` / ``<t>`` (an escalation share or threshold over the server's check).

        Raises:
            ErrorResponse: 400 for an escalation part that is neither.
        """
        if escalation is None:
            return self.engines[name]
        if not escalation:
            return self.cascades[name]
        kind, value = escalation_setting(escalation, model)
        key = (name, kind, value)
        found = self.escalation_engines.get(key)
        if found is None:  # built on the event loop's thread: no other request runs between the get and the set
            setting = {"share": value, "threshold": None} if kind == "share" else {"threshold": value, "share": None}
            found = self._engine(self.policies[name], replace(self.escalation, **setting))
            self.escalation_engines[key] = found
        return found

    def engine_of(self, asked: str, options: Any = None) -> tuple[RoutingEngine | LadderEngine, float | None]:
        """The engine a model name (and the request's ``routellm`` field) asks for, and the threshold of a
        ``router-<router>...`` name (None for ``router-auto``): the one reading of model names, for chat
        completions and (without building an engine, :meth:`check_model`) ``GET /v1/models/{model}``.

        Raises:
            ErrorResponse: 404 for a name naming nothing this server serves; 400 for a bad threshold, share,
                objective or escalation part.
        """
        model, escalation = split_cascade(asked)
        if is_auto(model):
            return self.auto_engine_for(model, escalation, asked, options), None
        name, threshold = self._router_name(model, asked, options)
        return self.engine_for(name, escalation, asked), threshold

    def _router_name(self, model: str, asked: str, options: Any) -> tuple[str, float | None]:
        """The router and threshold a ``router-<router>[-<threshold>|-<share>%]`` name (its ``-cascade`` part split
        off) asks for.

        Raises:
            ErrorResponse: As :meth:`engine_of`.
        """
        if objective_in_body(options) is not None:
            raise ErrorResponse(
                400,
                f"'routellm.objective' picks among the named models: ask for {AUTO_MODEL}, not {asked!r:.120}",
                code="invalid_request",
                param="routellm.objective",
            )
        if split_climb(model)[1] is not None:
            raise ErrorResponse(
                400,
                f"model {asked!r:.120}: -climb climbs the server's named models (--model): ask for "
                f"{AUTO_MODEL}-climb; a strong/weak router escalates with -cascade",
                code="invalid_model",
                param="model",
            )
        return resolve_model(model, self.policies)

    def auto_engine_for(self, model: str, escalation: str | None, asked: str, options: Any) -> AutoEngine:
        """The ``router-auto`` engine a model name and the request's ``routellm`` field ask for.

        Raises:
            ErrorResponse: 404 when the server has no named models; 400 for a bad objective or escalation part.
        """
        return self._auto(asked).engine_for(model, escalation, asked, options)

    def check_model(self, asked: str) -> None:
        """Raise what chat completions would for the model name ``asked`` (``GET /v1/models/{model}``), building no
        engine (a new ``router-auto`` one would evict another, and with it a budget's spend).

        Raises:
            ErrorResponse: As :meth:`engine_of`.
        """
        model, escalation = split_cascade(asked)
        if is_auto(model):
            self._auto(asked).setting_of(model, escalation, asked, None)
            return
        self._router_name(model, asked, None)
        if escalation:
            escalation_setting(escalation, asked)

    def _auto(self, asked: str) -> AutoRouting:
        if self.auto is None:
            raise ErrorResponse(
                404,
                f"model {asked!r:.120}: {AUTO_MODEL} routes among named models, and this server has none: start it "
                "with --model NAME=SPEC (at least two)",
                code="model_not_found",
                param="model",
            )
        return self.auto

    async def route(
        self,
        engine: RoutingEngine | LadderEngine,
        threshold: float | None,
        messages: list[dict[str, Any]],
        param: str = "messages",
    ) -> Route:
        """Score the routing text through the engine's micro-batcher and decide once, at ``threshold``.

        Raises:
            ErrorResponse: 400 for messages without routable text (naming the request field ``param``), 500 when
                the router fails.
        """
        code = f"invalid_{param}"
        try:
            text = routing_text(turns(messages), self.settings.route_on)
        except InvalidInputError as exc:
            raise ErrorResponse(400, str(exc), code=code, param=param) from None
        start = time.perf_counter()
        try:
            route = await engine.aroute(text, threshold)
        except InvalidInputError as exc:
            raise ErrorResponse(400, str(exc), code=code, param=param) from None
        except RouteLLMError as exc:
            logger.error("routing failed: %s", type(exc).__name__)
            raise ErrorResponse(
                500, f"routing failed: {type(exc).__name__}: {exc}", code="routing_failed", type="server_error"
            ) from None
        finally:
            self.metrics.routing_latency.observe(time.perf_counter() - start)
        self.metrics.decisions.inc(router=route.decision.router, choice=route.choice)
        ladder = route.ladder
        if isinstance(engine, AutoEngine) and not engine.retired and ladder is not None and ladder.budget is not None:
            self.metrics.budget(engine.label, ladder.budget, ladder.spend or 0.0, ladder.value)
        if isinstance(engine, AutoEngine) and not engine.retired and ladder is not None and ladder.caps is not None:
            self.metrics.shares(engine.label, dict(ladder.caps), dict(ladder.shares or ()))
        self.remember(route, text)
        if self.settings.log_prompts:
            logger.info("routellm decision %s: %s for routing text %r", route.id, route.choice, text)
        return route

    def responses_engine(self, asked: ResponsesRequest) -> tuple[RoutingEngine | LadderEngine, float | None]:
        """The engine and threshold a ``/v1/responses`` request's model name asks for, as chat completions read it.

        Raises:
            ErrorResponse: As :meth:`engine_of`; 400 for an escalating name (``-cascade``, ``-climb``), or when an
                upstream the engine may call does not speak the Responses API (a LangChain chat model).
        """
        self.check_model(asked.model)
        model, escalation = split_cascade(asked.model)
        refuse_escalation(asked.model, escalation, split_climb(model)[1] if is_auto(model) else None)
        engine, threshold = self.engine_of(asked.model, asked.options)
        named = self.auto.upstreams if isinstance(engine, LadderEngine) and self.auto is not None else self.upstreams
        for upstream in named.values():
            if not upstream.speaks_responses:
                raise ErrorResponse(
                    400,
                    f"/v1/responses relays OpenAI's Responses API to OpenAI-compatible upstreams, and the upstream "
                    f"{upstream.name!r} ({type(upstream).__name__}) does not speak it; send this model chat "
                    "completions (POST /v1/chat/completions)",
                    code="responses_unsupported",
                    param="model",
                )
        return engine, threshold

    async def responses_route(
        self, engine: RoutingEngine | LadderEngine, threshold: float | None, asked: ResponsesRequest
    ) -> tuple[RoutingEngine | LadderEngine, Route, Origin]:
        """The engine, route and origin of a ``/v1/responses`` request: a ``previous_response_id`` this server
        relayed (this worker, or another one on the same feedback store) continues on the upstream that answered it
        (the decision of that response, not scored anew, under the engine of the model name that started it); any
        other request is routed on ``instructions`` and ``input``.

        Raises:
            ErrorResponse: As :meth:`route` (the message says when ``previous_response_id`` was not one this server
                relayed); as :meth:`AnsweredResponses.afind` when the feedback store cannot say.
        """
        answered = await self.answered.afind(asked.previous_response_id, asked.item_ids, self.engine_of)
        if answered is not None:
            return answered.engine, answered.record.continuation(), answered.origin
        origin = Origin(asked.model, asked.options)
        try:
            return engine, await self.route(engine, threshold, asked.messages, param="input"), origin
        except ErrorResponse as exc:
            if asked.previous_response_id is None or exc.status != 400:
                raise
            where = "this worker" if self.store is None else "this server (or its feedback store)"
            note = (
                f" (previous_response_id {asked.previous_response_id!r:.80} is not a response {where} relayed "
                "recently, so the request is routed on its own input)"
            )
            raise ErrorResponse(400, exc.message + note, code=exc.code, param=exc.param) from None

    def remember(self, route: Route, text: str) -> None:
        """Keep the decision for the web page's Watch view (for ``router-auto`` the chosen model too); the routing
        text only under ``log_prompts``. :meth:`account` adds who answered."""
        item = {"time": time.time(), "decision_id": route.id, **route.decision.as_dict()}
        if route.ladder is not None:
            item["model"] = route.ladder.chosen
        if self.settings.log_prompts:
            item["text"] = text[:500]
        self.recent.append(item)

    def remember_answer(self, record: ServedDecision) -> None:
        """Add an answered call's outcome to its decision in the Watch view: the model that served, whether it
        escalated or fell back, and the request's cost."""
        for item in reversed(self.recent):
            if item["decision_id"] == record.id and "served_model" not in item:
                item.update(
                    served_model=record.model, escalated=record.escalated, fallback=record.fallback, cost=record.cost
                )
                return

    def headers(
        self, route: Route, record: ServedDecision | None = None, engine: RoutingEngine | LadderEngine | None = None
    ) -> dict[str, str]:
        """The ``x-routellm-*`` headers of a decision (and of the answer, once a side answered); ``engine`` names a
        budget's window in ``x-routellm-objective``."""
        d = route.decision
        headers = {
            "x-routellm-decision-id": route.id,
            "x-routellm-router": quote(d.router, safe="/:._-~@+="),  # a checkpoint path may not be latin-1
            "x-routellm-win-rate": repr(d.win_rate),
            "x-routellm-threshold": repr(d.threshold),
            "x-routellm-choice": d.choice,
            "x-routellm-worker": self.worker,
        }
        ladder = route.ladder
        if ladder is not None:
            objective = ladder.objective
            headers["x-routellm-objective"] = (
                str(engine.objective)
                if isinstance(engine, LadderEngine) and (ladder.budget is not None or ladder.caps is not None)
                else f"budget={ladder.budget:g}"
                if ladder.budget is not None
                else f"{objective}={ladder.value:g}"
            )
            if not headers["x-routellm-objective"].isascii():  # a capped model's name: headers are latin-1
                headers["x-routellm-objective"] = quote(headers["x-routellm-objective"], safe="=:;,%._-~@+/")
            headers["x-routellm-chosen"] = ladder.chosen
            headers["x-routellm-expected-cost-usd"] = repr(ladder.expected_cost)
        if record is not None:
            headers["x-routellm-model"] = record.model
            headers["x-routellm-served"] = record.served
            headers["x-routellm-fallback"] = "true" if record.fallback else "false"
            headers["x-routellm-escalated"] = "true" if record.escalated else "false"
            headers["x-routellm-attempts"] = ",".join(f"{a.model}:{a.role}" for a in record.attempts)
            if record.cost is not None:
                headers["x-routellm-cost-usd"] = repr(record.cost)
        return headers

    def account(self, engine: RoutingEngine | LadderEngine, record: ServedDecision) -> None:
        """Count an answered call in the metrics: whether a cascade escalated it, each attempt's price, and the
        price the served answer's tokens would have had on the strong model (the always-strong baseline; for
        ``router-auto`` the costliest named model); for ``router-auto`` also who answered and the expected and
        billed costs."""
        self.remember_answer(record)
        router = record.router
        if record.escalated or any(a.role == "check" or a.signals for a in record.attempts):
            self.metrics.escalation(router, record.escalated)
        for attempt in record.attempts:
            if attempt.cost is not None:
                self.metrics.cost(router, attempt.billed_model, attempt.cost)
        kept = next((a for a in record.attempts if a.kept), None)
        if kept is not None:
            if isinstance(engine, AutoEngine):
                costliest = engine.names[int(engine.ladder.prices.sum(axis=1).argmax())]
                strong = self.auto_prices(costliest, kept.input_tokens, kept.output_tokens)
            else:
                strong = engine.pricing.cost_of(engine.names["strong"], kept.input_tokens, kept.output_tokens)
            if strong is not None:
                self.metrics.strong_cost(router, strong)
        if isinstance(engine, AutoEngine) and record.ladder is not None:
            self.metrics.ladder_answer(engine.label, record.model, record.ladder.expected_cost, record.cost)
            # the spend with this call's cost in it (the routing set it before the call: one call behind)
            # (not for an engine evicted while the call ran: its series are gone and stay gone)
            realised = None if engine.retired or engine.controller is None else engine.controller.realised
            if realised is not None:
                self.metrics.budget_spent(engine.label, 1000.0 * realised)
            if not engine.retired and engine.shares is not None:  # the shares with this call's model in them
                capped = [engine.names[m] for m in engine.shares.capped]
                self.metrics.shares(engine.label, {}, dict(zip(capped, engine.shares.shares.tolist(), strict=True)))

    def _account_paid(self, engine: RoutingEngine | LadderEngine, paid: list[ServedDecision]) -> None:
        """Count what a call that failed or was left had paid (the engine's record of it, when it paid anything)."""
        if paid:
            self.account(engine, paid[-1])

    def upstream_of(self, engine: RoutingEngine | LadderEngine, route: Route, side: Side) -> Upstream:
        """The upstream standing for ``side`` in ``route``: the strong or weak one, or for ``router-auto`` the
        named model of that side of the route's pair."""
        if isinstance(engine, LadderEngine):
            assert self.auto is not None
            return self.auto.upstreams[engine.name_of(route, side)]
        return self.upstreams[side]

    def upstream_called(self, engine: RoutingEngine | LadderEngine, side: Side, record: ServedDecision) -> Upstream:
        """The upstream an engine's attempt ``(side, record)`` calls: for ``router-auto`` the named model the record
        names (a climb calls models beyond the route's pair), else the side's."""
        if isinstance(engine, LadderEngine):
            assert self.auto is not None
            return self.auto.upstreams[record.model]
        return self.upstreams[side]

    # ---- upstream calls -------------------------------------------------------------------------------
    def _on_fallback(self, record: ServedDecision, exc: BaseException) -> None:
        self.metrics.fallbacks.inc(from_side=record.failed_side or record.choice, error=type(exc).__name__)

    def _count(self, side: str, start: float, outcome: str) -> None:
        self.metrics.upstream_latency.observe(time.perf_counter() - start, side=side)
        self.metrics.upstream_calls.inc(side=side, outcome=outcome)

    async def _call(
        self, upstream: Upstream, request: Mapping[str, Any], side: str, api: Api = "chat"
    ) -> dict[str, Any]:
        """One non-streamed upstream call (chat completions, or the Responses API), counted in
        ``routellm_upstream_calls_total`` and ``routellm_upstream_latency_seconds`` under ``side`` (``strong``,
        ``weak``, :data:`CHECK_SIDE` or :data:`LABEL_SIDE`)."""
        start = time.perf_counter()
        try:
            answer = await (upstream.respond(request) if api == "responses" else upstream.complete(request))
        except BaseException as exc:
            self._count(side, start, "error" if isinstance(exc, Exception) else "cancelled")
            raise
        self._count(side, start, "ok")
        return answer

    def _other_answer(
        self, body: Mapping[str, Any], engine: RoutingEngine | LadderEngine, route: Route, api: Api = "chat"
    ) -> Any:
        """The labeller's call of the side that did not answer: the same request, not streamed, as text (counted
        under ``side="label"``)."""
        request = {k: v for k, v in body.items() if k not in _STREAM_ONLY}

        async def other_answer(side: Side) -> str:
            upstream = self.upstream_of(engine, route, side)
            return answer_text(await self._call(upstream, request, LABEL_SIDE, api))

        return other_answer

    def _cheap_upstream(self, record: ServedDecision) -> Upstream:
        """The model whose answer the escalation check reads: the weak upstream, or ``router-auto``'s chosen one."""
        if record.ladder is not None and self.auto is not None:
            return self.auto.upstreams[record.model]
        return self.upstreams["weak"]

    def _second_answer(self, body: Mapping[str, Any]) -> Any:
        """The escalation check's second cheap answer: the ``escalate_second`` upstream, else the cheap one asked
        again warmer (``router-auto``: always the chosen model again); not streamed, counted under ``side="check"``."""
        request = {k: v for k, v in body.items() if k not in _STREAM_ONLY}

        async def second(record: ServedDecision) -> dict[str, Any]:
            if self.second is not None and record.ladder is None:
                return await self._call(self.second, request, CHECK_SIDE)
            warmer = {**request, "temperature": SAMPLE_TEMPERATURE}
            return await self._call(self._cheap_upstream(record), warmer, CHECK_SIDE)

        return second

    def _verify_answer(self, body: Mapping[str, Any]) -> Any:
        """The self-verification call: the cheap upstream asked whether its answer to this request is right
        (counted under ``side="check"``)."""
        request = {k: v for k, v in body.items() if k not in (*_STREAM_ONLY, "tools", "tool_choice")}

        async def verify(record: ServedDecision, answer: Any) -> dict[str, Any]:
            value = answer_value(answer)
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            messages = [
                *body.get("messages", ()),
                {"role": "assistant", "content": text},
                {"role": "user", "content": VERIFY_QUESTION},
            ]
            return await self._call(self._cheap_upstream(record), {**request, "messages": messages}, CHECK_SIDE)

        return verify

    async def _judge_reply(self, messages: list[dict[str, str]]) -> str:
        """The judge upstream's reply to the pairwise judge's messages (counted under ``side="judge"``)."""
        assert self.judge is not None
        return completion_text(await self._call(self.judge, {"messages": messages}, JUDGE_SIDE))

    async def complete(
        self,
        engine: RoutingEngine | LadderEngine,
        route: Route,
        body: dict[str, Any],
        span: RequestSpan | None = None,
        api: Api = "chat",
        origin: Origin | None = None,
    ) -> Response:
        """Call the chosen upstream (with fallback when configured) and answer its JSON plus the decision; the
        engine records the decision (and labels a sampled share) before the answer goes out. Under
        ``api="responses"`` the upstream's Responses API answers, and who did is remembered by response id (with
        the ``origin`` of its engine) before the answer goes out."""

        async def attempt(side: Side, record: ServedDecision) -> dict[str, Any]:
            return await self._call(self.upstream_called(engine, side, record), body, side, api)

        paid: list[ServedDecision] = []  # the call's priced record, or what it paid before it failed or was left
        try:
            answer, record = await engine.acall(
                route,
                attempt,
                other_answer=self._other_answer(body, engine, route, api),
                second=self._second_answer(body),
                verify=self._verify_answer(body),
                on_final=paid.append,
                fallback=_pinned(route, api),
            )
        except ModelCallError as exc:
            self._account_paid(engine, paid)
            if span is not None:
                span.fail(route, exc)
            raise self._upstream_failed(exc, route) from None
        except BaseException:
            self._account_paid(engine, paid)
            raise
        self.account(engine, record)
        if api == "responses":
            answered = Answered(engine, record, origin)
            await self.answered.aremember(answer.get("id"), answered, output_ids(answer))
        if span is not None:
            span.observe(answer)
            span.finish(record)
        return _json({**answer, METADATA_KEY: record.as_dict()}, headers=self.headers(route, record, engine))

    async def stream(
        self,
        engine: RoutingEngine | LadderEngine,
        route: Route,
        body: dict[str, Any],
        slot: _Slot,
        span: RequestSpan | None = None,
        api: Api = "chat",
        origin: Origin | None = None,
    ) -> Response:
        """Relay the chosen upstream's stream as SSE; errors before the first chunk are answered with their status.

        The decision record rides on the first chunk (``"routellm"``); a failure after chunks were sent ends the
        stream with an OpenAI error event (the ``openai`` SDK raises it), never with a silent cut. The engine records
        the decision once the stream ended, before ``[DONE]``. Under ``api="responses"`` the upstream's Responses
        events are relayed as :class:`~routellm_core.server.responses.EventFrames` says (the final record on the
        terminal event), and who answered is remembered by response id (with the ``origin`` of its engine) before
        the terminal event goes out.
        """
        frames: _ChatFrames | EventFrames = EventFrames() if api == "responses" else _ChatFrames()

        def observe(chunk: Any) -> None:
            if span is not None:
                span.observe(response_of(chunk) if api == "responses" else chunk)

        async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[dict[str, Any]]:
            start, outcome = time.perf_counter(), "cancelled"
            upstream = self.upstream_called(engine, side, record)
            chunks = upstream.respond_stream(body) if api == "responses" else upstream.stream(body)
            try:
                async for chunk in chunks:
                    yield chunk
                outcome = "ok"
            except Exception:
                outcome = "error"
                raise
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
                self._count(side, start, outcome)

        priced: list[ServedDecision] = []  # the stream's record priced from its usage, once it ended
        relay = engine.astream(
            route,
            open_stream,
            other_answer=self._other_answer(body, engine, route, api),
            second=self._second_answer(body),
            verify=self._verify_answer(body),
            on_final=priced.append,
            fallback=_pinned(route, api),
        )
        try:
            first, record = await relay.__anext__()
        except ModelCallError as exc:
            if span is not None:
                span.fail(route, exc)
            await relay.aclose()
            self._account_paid(engine, priced)
            raise self._upstream_failed(exc, route) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await relay.aclose()
            self._account_paid(engine, priced)  # left before the first chunk (the engine priced it on close)
            raise

        ended = False  # the stream was accounted (finished, or ended by an upstream failure)

        async def events() -> AsyncIterator[bytes]:
            nonlocal ended
            if framed := frames.first(first, record):
                yield framed
            final = record
            observe(first)
            try:
                async for chunk, current in relay:
                    final = current
                    observe(chunk)
                    if framed := frames.chunk(chunk):
                        yield framed
            except ModelCallError as exc:
                ended = True
                self._account_paid(engine, priced)
                if span is not None:
                    span.finish(final, error=type(exc.__cause__ or exc).__name__)
                error = self._upstream_failed(exc, route)
                self.metrics.errors.inc(status=str(error.status), code=error.code)
                yield frames.error(error.body())
                return
            ended = True
            final = priced[-1] if priced else final
            self.account(engine, final)
            if isinstance(frames, EventFrames):
                answered = Answered(engine, final, origin)
                await self.answered.aremember(frames.response_id, answered, frames.output_ids)
            if span is not None:
                span.finish(final)
            if framed := frames.end(final):
                yield framed

        def left() -> None:
            """A stream the client left before its end was still served: count it as far as it went (its record,
            priced by the engine once the relay closed), as a finished one is."""
            if ended or not priced:
                return
            self.account(engine, priced[-1])
            if span is not None:
                span.finish(priced[-1])

        return _EventStream(events(), relay, slot, self.headers(route, record, engine), on_close=left)

    def _upstream_failed(self, exc: ModelCallError, route: Route) -> ErrorResponse:
        error = model_call_error(exc, self.secrets)
        error.headers.update(self.headers(route))
        logger.warning(
            "%s: the %s upstream %r failed: %s (answered %d %s)",
            _OWNER,
            exc.side,
            exc.fallback_model or exc.model,
            type(exc.__cause__).__name__,
            error.status,
            error.code,
        )
        return error

    # ---- feedback -------------------------------------------------------------------------------------
    def check_feedback(self) -> FeedbackStore:
        """The feedback store.

        Raises:
            ErrorResponse: 409 when the server runs without one (``--feedback``).
        """
        if self.store is None:
            raise ErrorResponse(
                409,
                "this server keeps no feedback store: start it with --feedback PATH to accept verdicts",
                code="feedback_disabled",
            )
        return self.store

    async def add_verdict(self, decision_id: str, verdict: str) -> int | None:
        """Attach a user's verdict to a decision this server (or another worker on the same store) recorded.

        Raises:
            ErrorResponse: 409 without a feedback store; 400 for a verdict the store does not accept; 404 for a
                decision id it never recorded; 500 when the store cannot be written.
        """
        store = self.check_feedback()
        try:
            return await store.aadd_verdict(decision_id, verdict)
        except InvalidInputError as exc:
            raise ErrorResponse(400, str(exc), code="invalid_verdict", param="verdict") from None
        except UnknownDecisionError:
            raise ErrorResponse(
                404, f"no decision with id {decision_id!r:.80} was recorded here", code="decision_not_found"
            ) from None
        except FeedbackStoreError as exc:
            logger.error("%s: writing a verdict failed: %s", _OWNER, type(exc.__cause__ or exc).__name__)
            raise ErrorResponse(
                500, "the feedback store could not be written", code="feedback_store_error", type="server_error"
            ) from None

    @property
    def labellers(self) -> list[Any]:
        """The judge's labeller every engine shares (none without a judge)."""
        return [self.labelling.labeller] if self.labelling is not None and self.labelling.labeller else []

    async def aflush_labels(self, timeout: float | None = None) -> bool:
        """Wait until the labels being judged on this event loop are stored; ``False`` on timeout."""
        done = True
        for labeller in self.labellers:
            done = await labeller.aflush(timeout) and done
        return done

    # ---- answers --------------------------------------------------------------------------------------
    def error_response(self, error: ErrorResponse) -> Response:
        """The JSON answer of an error, counted in the metrics."""
        self.metrics.errors.inc(status=str(error.status), code=error.code)
        return _json(error.body(), error.status, error.headers)

    async def aclose(self) -> None:
        """Let pending labels finish (at most :data:`LABEL_DRAIN_S`), then close the store and the upstreams."""
        for labeller in self.labellers:
            await labeller.aclose(LABEL_DRAIN_S)
        if self.store is not None:
            self.store.close()
        named = list(self.auto.upstreams.values()) if self.auto is not None else []
        for upstream in [*self.upstreams.values(), *([self.judge] if self.judge is not None else []), *named]:
            await upstream.aclose()
        self.metrics.close()


def _policies(settings: ServerSettings) -> dict[str, RoutingPolicy]:
    return {
        name: RoutingPolicy(
            name,
            threshold=settings.threshold,
            strong_fraction=settings.strong_fraction,
            max_batch_size=settings.max_batch_size,
        )
        for name in settings.routers
    }


def _upstream(value: Upstream | str | None, side: str, settings: ServerSettings) -> Upstream:
    if isinstance(value, Upstream):
        return value
    if value is None:
        unpriced = [m.name for m in settings.models if price_of(m.name, settings.prices) is None]
        if unpriced:  # the named models would have given the pair
            raise InvalidInputError(
                f"no price for {unpriced}{unpriced_hint(unpriced, settings.prices)}: the shipped price table does "
                "not know them; give --prices NAME=IN,OUT (USD per million input and output tokens) for each"
            )
        raise InvalidInputError(f"no {side} upstream: give {side}='openai:<model>' (or an Upstream)")
    base_urls = {"strong": settings.strong_base_url, "weak": settings.weak_base_url, "judge": settings.judge_base_url}
    key_envs = {
        "strong": settings.strong_api_key_env,
        "weak": settings.weak_api_key_env,
        "judge": settings.judge_api_key_env,
    }
    return build_upstream(
        value,
        side=side,
        base_url=base_urls[side],
        api_key_env=key_envs[side],
        timeout=settings.upstream_timeout,
        max_retries=settings.upstream_retries,
    )


def _name_as_model(upstream: Upstream, side: str, settings: ServerSettings) -> None:
    """Name ``upstream`` (built from ``settings``' ``side`` fields) as the named model with the same endpoint, so the
    two-model names' records, prices and labels use the name ``router-auto``'s do."""
    spec, base_url, key_env = (
        (settings.strong, settings.strong_base_url, settings.strong_api_key_env)
        if side == "strong"
        else (settings.weak, settings.weak_base_url, settings.weak_api_key_env)
    )
    for model in settings.models:
        if (model.spec, model.base_url, model.api_key_env) == (spec, base_url, key_env):
            upstream.name = model.name
            return


def create_app(
    settings: ServerSettings | None = None,
    *,
    strong: Upstream | str | None = None,
    weak: Upstream | str | None = None,
    policies: Mapping[str, RoutingPolicy] | None = None,
    judge: Upstream | str | None = None,
    **options: Any,
) -> FastAPI:
    """The routing server as a FastAPI app (run it with uvicorn, or mount it in another ASGI app).

    Args:
        settings: Server settings; or give their fields as keyword ``options`` (``routers=("fast",)``...).
        strong: The strong upstream (an :class:`Upstream` or a spec such as ``"openai:gpt-4o"``); default
            ``settings.strong``.
        weak: The weak upstream; default ``settings.weak``.
        policies: Ready routing policies by the router name clients use (default: one per ``settings.routers``,
            loaded now, so a bad router fails at startup rather than on the first request).
        judge: The pairwise judge's upstream (an :class:`Upstream` or a spec); default ``settings.judge``. It needs
            ``settings.feedback`` and ``settings.label_fraction > 0``.
        **options: ``ServerSettings`` fields, when ``settings`` is not given.

    Raises:
        InvalidInputError: Bad settings, a missing upstream, no API key for api.openai.com, a judge without a
            feedback store and a label fraction, or both upstreams named alike under a feedback store.
        FeedbackStoreError: The feedback store cannot be opened.
        UnknownRouterError, CheckpointError, InvalidThresholdError: A router that cannot be loaded at its threshold.
    """
    if settings is None:
        settings = ServerSettings.build(**options)
    elif options:
        raise InvalidInputError("give either settings or settings fields as keyword arguments, not both")
    upstreams: dict[Side, Upstream] = {
        "strong": _upstream(strong if strong is not None else settings.strong, "strong", settings),
        "weak": _upstream(weak if weak is not None else settings.weak, "weak", settings),
    }
    for side, given in (("strong", strong), ("weak", weak)):
        if not isinstance(given, Upstream):  # a side that is one of the named models goes by that model's name
            _name_as_model(upstreams[side], side, settings)
    judge_spec = judge if judge is not None else settings.judge
    if judge_spec is not None and (settings.feedback is None or settings.label_fraction == 0):
        raise InvalidInputError(
            "a judge labels a share of requests into the feedback store: give feedback (--feedback PATH) and "
            "label_fraction (--label-fraction F, > 0) too"
        )
    if judge_spec is None and settings.label_fraction > 0:
        raise InvalidInputError(
            f"label_fraction={settings.label_fraction:g} needs a judge (--judge MODEL) to compare the two answers"
        )
    judge_upstream = _upstream(judge_spec, "judge", settings) if judge_spec is not None else None
    second = _upstream(settings.escalate_second, "weak", settings) if settings.escalate_second else None
    called = [m.name for m in settings.models] + [u.name for u in (*upstreams.values(), second) if u is not None]
    specs = (settings.strong, settings.weak, settings.escalate_second)  # the names the settings' own check took
    called += [upstream_name(spec) for spec in specs if spec is not None]
    check_price_names(settings.prices, called)  # --prices prices the pair and the second upstream by name too
    models = build_models(settings.models, timeout=settings.upstream_timeout, max_retries=settings.upstream_retries)
    state = ServerState(
        settings,
        upstreams,
        policies if policies is not None else _policies(settings),
        judge=judge_upstream,
        second=second,
        models=models,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = FastAPI(
        title="routellm",
        summary="OpenAI-compatible routing server",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.routellm = state
    install_openapi(app, auth=state.auth, max_messages=settings.max_messages)

    @app.exception_handler(ErrorResponse)
    async def _error(_: Request, exc: ErrorResponse) -> Response:
        return state.error_response(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> Response:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return state.error_response(ErrorResponse(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> Response:
        # A bug, not a request's fault: OpenAI-style 500 without the exception's text (uvicorn logs the traceback).
        error = ErrorResponse(
            500, f"internal server error ({type(exc).__name__})", code="internal_error", type="server_error"
        )
        return state.error_response(error)

    async def routed(request: Request, api: Api) -> Response:
        """A chat completion or a Responses request: authorized, read, given a slot, routed and answered."""
        slot: _Slot | None = None
        streaming = False
        try:
            state.authorize(request)
            body = await state.read_body(request)  # before the slot: a slow client holds no slot, at most its deadline
            slot = state.acquire()
            if api == "responses":
                asked = parse_responses_request(body, state.settings.max_messages)
                span = state.telemetry.begin(asked.model)  # recorded once the answer or the stream ended
                engine, threshold = state.responses_engine(asked)
                engine, route, origin = await state.responses_route(engine, threshold, asked)
                forward, stream = asked.forward, asked.stream
            else:
                origin = None
                chat = parse_request(body, state.settings.max_messages)
                span = state.telemetry.begin(chat.model)
                engine, threshold = state.engine_of(chat.model, chat.options)
                route = await state.route(engine, threshold, chat.messages)
                forward, stream = chat.forward, chat.stream
            if stream:
                response = await state.stream(engine, route, forward, slot, span, api=api, origin=origin)
                streaming = True
            else:
                response = await state.complete(engine, route, forward, span, api=api, origin=origin)
        except ErrorResponse as exc:
            response = state.error_response(exc)
        finally:
            if slot is not None and not streaming:
                slot.release()
        state.metrics.requests.inc(status=str(response.status_code))
        return response

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await routed(request, "chat")

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        """OpenAI's Responses API, routed like chat completions (see :mod:`routellm_core.server.responses`)."""
        return await routed(request, "responses")

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Response:
        """A verdict on a decision a response carried: ``{"decision_id": "...", "verdict": "good" | "bad" | ...}``."""
        state.authorize(request)
        state.check_feedback()
        given = parse_feedback(await state.read_body(request))
        label = await state.add_verdict(given.decision_id, given.verdict)
        answer = {"object": "routellm.feedback", "decision_id": given.decision_id, "verdict": given.verdict}
        return _json({**answer, "label_id": label})

    @app.get("/v1/models")
    async def list_models(request: Request) -> Response:
        state.authorize(request)
        ids = model_ids(state.policies) + (state.auto.model_ids() if state.auto is not None else [])
        return _json({"object": "list", "data": [_model_card(i) for i in ids]})

    @app.get("/v1/models/{model:path}")
    async def retrieve_model(model: str, request: Request) -> Response:
        """The model object of a name chat completions accepts (listed or not); a 404 ``model_not_found`` naming
        the problem for one it refuses, as OpenAI answers."""
        state.authorize(request)
        try:
            state.check_model(model)
        except ErrorResponse as exc:
            raise ErrorResponse(404, exc.message, code="model_not_found", param="model") from None
        return _json(_model_card(model))

    @app.get("/health")
    async def health() -> Response:
        return _json(
            {
                "status": "ok",
                "worker": state.worker,
                "routers": list(state.policies),
                "strong": state.upstreams["strong"].name,
                "weak": state.upstreams["weak"].name,
                "models": state.auto.names if state.auto is not None else [],
                "in_flight": state.in_flight,
            },
            headers={"x-routellm-worker": state.worker},
        )

    app.include_router(ui_router(state))  # the web page at /ui and its API (the same bearer token)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        state.authorize(request)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE, headers={"x-routellm-worker": state.worker})

    logger.info(
        "%s: auth %s, routers %s, strong %r, weak %r, fallback %s, feedback %s, judge %s",
        _OWNER,
        "on" if state.auth else "off",
        ", ".join(state.policies),
        upstreams["strong"].name,
        upstreams["weak"].name,
        "on" if settings.fallback else "off",
        "on" if state.store is not None else "off",
        f"{judge_upstream.name!r} on {settings.label_fraction:g} of requests" if judge_upstream else "off",
    )
    return app


__all__ = ["ServerState", "create_app"]
