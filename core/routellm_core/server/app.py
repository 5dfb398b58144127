"""The routing server's ASGI app: ``create_app(...)`` returns a FastAPI app speaking OpenAI's chat-completions API.

Per request: check auth and limits, read the routing text from the messages (``routellm_core.routing.text``), score
it through the shared micro-batcher (``RoutingPolicy.adecide``), apply the threshold the model name asks for, and
let the core :class:`~routellm_core.routing.dispatch.Dispatcher` call the chosen upstream (fallback, empty-answer rule,
stream closing). The decision goes out in ``x-routellm-*`` headers and in the body's ``"routellm"`` field, the
decision record of both integrations. The app keeps no state between requests, so it runs as many workers or
replicas as needed behind any load balancer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from routellm_core.decisions import METADATA_KEY, Route, RoutingDecision, ServedDecision, Side
from routellm_core.errors import InvalidInputError, ModelCallError, RouteLLMError
from routellm_core.routing.dispatch import Dispatcher, log_route
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.routing.text import routing_text
from routellm_core.server.errors import ErrorResponse, model_call_error
from routellm_core.server.metrics import CONTENT_TYPE, ServerMetrics
from routellm_core.server.protocol import (
    chunk_text,
    is_empty_answer,
    model_ids,
    parse_request,
    resolve_model,
    turns,
)
from routellm_core.server.settings import ServerSettings
from routellm_core.server.upstreams import Upstream, build_upstream

logger = logging.getLogger("routellm_core.server")

_OWNER = "routellm server"
_DONE = b"data: [DONE]\n\n"


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_json_bytes(value), status_code=status, headers=dict(headers or {}), media_type="application/json")


def _sse(value: Any) -> bytes:
    return b"data: " + _json_bytes(value) + b"\n\n"


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def at_threshold(decision: RoutingDecision, threshold: float) -> RoutingDecision:
    """The decision for the same win rate at another threshold (the one the model name asks for)."""
    choice: Side = "strong" if decision.win_rate >= threshold else "weak"
    return RoutingDecision(decision.router, decision.win_rate, threshold, choice)


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
    """An SSE response that releases the request's slot and closes the relay however it ends."""

    def __init__(self, events: AsyncIterator[bytes], relay: Any, slot: _Slot, headers: Mapping[str, str]) -> None:
        super().__init__(events, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})
        self._relay = relay
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # a client that left cancels the task; closing must still run
                await self._relay.aclose()
            self._slot.release()


class ServerState:
    """What a server process holds: settings, policies, upstreams, the dispatcher and the metrics.

    Args:
        settings: The settings.
        upstreams: The strong and the weak upstream.
        policies: Router name (as clients write it in the model field) to its policy.
    """

    def __init__(
        self, settings: ServerSettings, upstreams: Mapping[Side, Upstream], policies: Mapping[str, RoutingPolicy]
    ) -> None:
        self.settings = settings
        self.upstreams = dict(upstreams)
        self.policies = dict(policies)
        self.metrics = ServerMetrics()
        self.worker = str(os.getpid())
        self.in_flight = 0
        self._tokens = [_digest(t) for t in settings.bearer_tokens()]
        self.secrets = tuple(s for u in self.upstreams.values() for s in u.secrets) + tuple(
            t.decode() for t in settings.bearer_tokens()
        )
        self.dispatcher = Dispatcher(
            {side: up.name for side, up in self.upstreams.items()},
            fallback=settings.fallback,
            owner=_OWNER,
            is_empty=is_empty_answer,
            chunk_text=chunk_text,
            on_fallback=self._on_fallback,
        )

    @property
    def auth(self) -> bool:
        """Whether requests need a bearer token."""
        return bool(self._tokens)

    # ---- admission ------------------------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Check the bearer token (constant-time compare of SHA-256 digests against every accepted token).

        Raises:
            ErrorResponse: 401 when auth is on and the token is missing or wrong.
        """
        if not self._tokens:
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
    async def route(self, policy: RoutingPolicy, threshold: float, messages: list[dict[str, Any]]) -> Route:
        """Score the routing text through the policy's micro-batcher and decide at ``threshold``.

        Raises:
            ErrorResponse: 400 for messages without routable text, 500 when the router fails.
        """
        try:
            text = routing_text(turns(messages), self.settings.route_on)
        except InvalidInputError as exc:
            raise ErrorResponse(400, str(exc), code="invalid_messages", param="messages") from None
        start = time.perf_counter()
        try:
            scored = await policy.adecide(text)
        except InvalidInputError as exc:
            raise ErrorResponse(400, str(exc), code="invalid_messages", param="messages") from None
        except RouteLLMError as exc:
            logger.error("routing failed: %s", type(exc).__name__)
            raise ErrorResponse(
                500, f"routing failed: {type(exc).__name__}: {exc}", code="routing_failed", type="server_error"
            ) from None
        finally:
            self.metrics.routing_latency.observe(time.perf_counter() - start)
        decision = at_threshold(scored, threshold)
        self.metrics.decisions.inc(router=decision.router, choice=decision.choice)
        route = log_route(Route(decision))
        if self.settings.log_prompts:
            logger.info("routellm decision %s: %s for routing text %r", route.id, decision.choice, text)
        return route

    def headers(self, route: Route, record: ServedDecision | None = None) -> dict[str, str]:
        """The ``x-routellm-*`` headers of a decision (and of the answer, once a side answered)."""
        d = route.decision
        headers = {
            "x-routellm-decision-id": route.id,
            "x-routellm-router": d.router,
            "x-routellm-win-rate": repr(d.win_rate),
            "x-routellm-threshold": repr(d.threshold),
            "x-routellm-choice": d.choice,
            "x-routellm-worker": self.worker,
        }
        if record is not None:
            headers["x-routellm-model"] = record.model
            headers["x-routellm-served"] = record.served
            headers["x-routellm-fallback"] = "true" if record.fallback else "false"
        return headers

    # ---- upstream calls -------------------------------------------------------------------------------
    def _on_fallback(self, record: ServedDecision, exc: BaseException) -> None:
        self.metrics.fallbacks.inc(from_side=record.choice, error=type(exc).__name__)

    def _count(self, side: Side, start: float, outcome: str) -> None:
        self.metrics.upstream_latency.observe(time.perf_counter() - start, side=side)
        self.metrics.upstream_calls.inc(side=side, outcome=outcome)

    async def complete(self, route: Route, body: dict[str, Any]) -> Response:
        """Call the chosen upstream (with fallback when configured) and answer its JSON plus the decision."""

        async def attempt(side: Side, record: ServedDecision) -> dict[str, Any]:
            start = time.perf_counter()
            try:
                answer = await self.upstreams[side].complete(body)
            except BaseException as exc:
                self._count(side, start, "error" if isinstance(exc, Exception) else "cancelled")
                raise
            self._count(side, start, "ok")
            return answer

        try:
            answer, record = await self.dispatcher.acall(route, attempt)
        except ModelCallError as exc:
            raise self._upstream_failed(exc, route) from None
        return _json({**answer, METADATA_KEY: record.as_dict()}, headers=self.headers(route, record))

    async def stream(self, route: Route, body: dict[str, Any], slot: _Slot) -> Response:
        """Relay the chosen upstream's stream as SSE; errors before the first chunk are answered with their status.

        The decision record rides on the first chunk (``"routellm"``); a failure after chunks were sent ends the
        stream with an OpenAI error event (the ``openai`` SDK raises it), never with a silent cut.
        """

        async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[dict[str, Any]]:
            start, outcome = time.perf_counter(), "cancelled"
            chunks = self.upstreams[side].stream(body)
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

        relay = self.dispatcher.astream(route, open_stream)
        try:
            first, record = await relay.__anext__()
        except ModelCallError as exc:
            await relay.aclose()
            raise self._upstream_failed(exc, route) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await relay.aclose()
            raise

        async def events() -> AsyncIterator[bytes]:
            yield _sse({**first, METADATA_KEY: record.as_dict()})
            try:
                async for chunk, _ in relay:
                    yield _sse(chunk)
            except ModelCallError as exc:
                error = self._upstream_failed(exc, route)
                self.metrics.errors.inc(status=str(error.status), code=error.code)
                yield _sse(error.body())
                return
            yield _DONE

        return _EventStream(events(), relay, slot, self.headers(route, record))

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

    # ---- answers --------------------------------------------------------------------------------------
    def error_response(self, error: ErrorResponse) -> Response:
        """The JSON answer of an error, counted in the metrics."""
        self.metrics.errors.inc(status=str(error.status), code=error.code)
        return _json(error.body(), error.status, error.headers)

    async def aclose(self) -> None:
        """Close the upstreams' connections."""
        for upstream in self.upstreams.values():
            await upstream.aclose()


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


def _upstream(value: Upstream | str | None, side: Side, settings: ServerSettings) -> Upstream:
    if isinstance(value, Upstream):
        return value
    if value is None:
        raise InvalidInputError(f"no {side} upstream: give {side}='openai:<model>' (or an Upstream)")
    return build_upstream(
        value,
        side=side,
        base_url=settings.strong_base_url if side == "strong" else settings.weak_base_url,
        api_key_env=settings.strong_api_key_env if side == "strong" else settings.weak_api_key_env,
        timeout=settings.upstream_timeout,
        max_retries=settings.upstream_retries,
    )


def create_app(
    settings: ServerSettings | None = None,
    *,
    strong: Upstream | str | None = None,
    weak: Upstream | str | None = None,
    policies: Mapping[str, RoutingPolicy] | None = None,
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
        **options: ``ServerSettings`` fields, when ``settings`` is not given.

    Raises:
        InvalidInputError: Bad settings, a missing upstream, or no API key for api.openai.com.
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
    state = ServerState(settings, upstreams, policies if policies is not None else _policies(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = FastAPI(
        title="routellm",
        summary="OpenAI-compatible routing server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.routellm = state

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

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        slot: _Slot | None = None
        streaming = False
        try:
            state.authorize(request)
            body = await state.read_body(request)  # before the slot: a slow client holds no slot, at most its deadline
            slot = state.acquire()
            chat = parse_request(body, state.settings.max_messages)
            policy, threshold = resolve_model(chat.model, state.policies)
            route = await state.route(policy, threshold, chat.messages)
            if chat.stream:
                response = await state.stream(route, chat.forward, slot)
                streaming = True
            else:
                response = await state.complete(route, chat.forward)
        except ErrorResponse as exc:
            response = state.error_response(exc)
        finally:
            if slot is not None and not streaming:
                slot.release()
        state.metrics.requests.inc(status=str(response.status_code))
        return response

    @app.get("/v1/models")
    async def list_models(request: Request) -> Response:
        state.authorize(request)
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "routellm"} for i in model_ids(state.policies)]
        return _json({"object": "list", "data": data})

    @app.get("/health")
    async def health() -> Response:
        return _json(
            {
                "status": "ok",
                "worker": state.worker,
                "routers": list(state.policies),
                "strong": state.upstreams["strong"].name,
                "weak": state.upstreams["weak"].name,
                "in_flight": state.in_flight,
            },
            headers={"x-routellm-worker": state.worker},
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        state.authorize(request)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    logger.info(
        "%s: routers %s, strong %r, weak %r, fallback %s, auth %s",
        _OWNER,
        ", ".join(state.policies),
        upstreams["strong"].name,
        upstreams["weak"].name,
        "on" if settings.fallback else "off",
        "on" if state.auth else "off",
    )
    return app


__all__ = ["ServerState", "at_threshold", "create_app"]
