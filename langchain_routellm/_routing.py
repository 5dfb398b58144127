"""The routing engine shared by ChatRouteLLM, RouteLLMRunnable and RouteLLMMiddleware.

It turns a routing text into a :class:`Route`, calls the chosen child (and, only when fallback is configured,
the other child once), checks for empty answers, wraps failures in ``ModelCallError`` naming the model, and
builds the ``routellm`` metadata and tags. It never retries a child itself: retries and timeouts are the
children's own settings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs

from langchain_routellm._utils import (
    METADATA_KEY,
    RouteOn,
    Tier,
    ToolStep,
    chunk_text,
    is_empty_output,
    other_tier,
    routing_text,
    tool_step_decision,
    with_metadata,
)
from routellm_core.embedders import Embedder
from routellm_core.errors import InvalidThresholdError, ModelCallError, StreamInterruptedError
from routellm_core.policy import RoutingPolicy
from routellm_core.routers.base import RoutingDecision, WinRateModel

try:  # LangGraph control-flow signals (interrupts, parent commands) must pass through untouched.
    from langgraph.errors import GraphBubbleUp as _GraphBubbleUp
except ImportError:  # pragma: no cover - langgraph ships with langchain 1.x

    class _GraphBubbleUp(Exception):  # type: ignore[no-redef]
        pass


logger = logging.getLogger("langchain_routellm")

T = TypeVar("T")
RouterSpec = str | os.PathLike[str] | WinRateModel | RoutingPolicy


class EmptyResponseError(RuntimeError):
    """A child answered with an empty message (no content and no tool call); chained under ModelCallError."""


def build_policy(
    router: RouterSpec,
    threshold: float | None,
    strong_fraction: float | None,
    embedder: Embedder | None,
) -> RoutingPolicy:
    """A RoutingPolicy from the integrations' router arguments; a ready policy is used as is (shared)."""
    if isinstance(router, RoutingPolicy):
        if threshold is not None or strong_fraction is not None or embedder is not None:
            raise InvalidThresholdError(
                "a RoutingPolicy carries its own threshold and embedder; "
                "do not also pass threshold, strong_fraction or embedder"
            )
        return router
    return RoutingPolicy(router, threshold=threshold, strong_fraction=strong_fraction, embedder=embedder)


@dataclass(frozen=True)
class Route:
    """The decision for one call.

    Attributes:
        decision: Router name, win rate, threshold and the chosen child.
        continued: The decision was not scored anew but continued from the AI message that issued the tool
            calls whose results end the conversation (``tool_step="continue"``).
    """

    decision: RoutingDecision
    continued: bool = False

    @property
    def choice(self) -> Tier:
        """The chosen child."""
        return self.decision.choice


def _log(route: Route) -> Route:
    d = route.decision
    # Never log the routing text (it is the user's prompt); DEBUG only.
    logger.debug(
        "routellm decision: router=%s win_rate=%.4f threshold=%.4f choice=%s continued=%s",
        d.router,
        d.win_rate,
        d.threshold,
        d.choice,
        route.continued,
    )
    return route


def route_messages(
    policy: RoutingPolicy, messages: Sequence[BaseMessage], route_on: RouteOn, tool_step: ToolStep
) -> Route:
    """Route a conversation (sync; micro-batched with concurrent threads)."""
    if tool_step == "continue" and (previous := tool_step_decision(messages)) is not None:
        return _log(Route(previous, continued=True))
    return _log(Route(policy.decide(routing_text(messages, route_on))))


async def aroute_messages(
    policy: RoutingPolicy, messages: Sequence[BaseMessage], route_on: RouteOn, tool_step: ToolStep
) -> Route:
    """Route a conversation (async; micro-batched with the event loop's concurrent calls)."""
    if tool_step == "continue" and (previous := tool_step_decision(messages)) is not None:
        return _log(Route(previous, continued=True))
    return _log(Route(await policy.adecide(routing_text(messages, route_on))))


def route_text(policy: RoutingPolicy, text: str) -> Route:
    """Route one routing text (sync)."""
    return _log(Route(policy.decide(text)))


async def aroute_text(policy: RoutingPolicy, text: str) -> Route:
    """Route one routing text (async)."""
    return _log(Route(await policy.adecide(text)))


def _passthrough(exc: BaseException) -> bool:
    """Exceptions that are control flow, not child failures: never wrapped, never a reason to fall back."""
    return isinstance(exc, _GraphBubbleUp)


class RouteEngine:
    """Calls the chosen child with fallback, empty-answer checks and error wrapping.

    Args:
        names: Display name of each child (used in metadata and errors; never holds credentials).
        fallback: Call the other child once when the chosen one fails before producing output.
        owner: Name of the integration, for error messages.
        is_empty: Predicate for an empty answer.
    """

    def __init__(
        self,
        names: dict[Tier, str],
        *,
        fallback: bool,
        owner: str,
        is_empty: Callable[[Any], bool] = is_empty_output,
    ) -> None:
        self.names = names
        self.fallback = fallback
        self.owner = owner
        self.is_empty = is_empty

    # ---- metadata --------------------------------------------------------------------------------------
    def metadata(self, route: Route, served: Tier, error: BaseException | None = None) -> dict[str, Any]:
        """The ``routellm`` metadata for an answer served by ``served``."""
        d = route.decision
        meta: dict[str, Any] = {
            "router": d.router,
            "win_rate": d.win_rate,
            "threshold": d.threshold,
            "choice": d.choice,
            "model": self.names[served],
            "fallback": served != d.choice,
            "continued": route.continued,
        }
        if served != d.choice:
            meta["fallback_from"] = self.names[d.choice]
            meta["fallback_error"] = type(error).__name__ if error is not None else "unknown"
        return meta

    def run_config(
        self, config: RunnableConfig, route: Route, extra_metadata: dict[str, Any] | None = None
    ) -> RunnableConfig:
        """The config for the router's own run: the decision in its metadata and a ``routellm:<choice>`` tag."""
        meta = {**(extra_metadata or {}), METADATA_KEY: self.metadata(route, route.choice)}
        return merge_configs(config, {"metadata": meta, "tags": [f"routellm:{route.choice}"]})

    def child_config(
        self, config: RunnableConfig, route: Route, served: Tier, error: BaseException | None = None
    ) -> RunnableConfig:
        """The config for a child call (callbacks already point at the router's run)."""
        if served == route.choice:
            return config
        return merge_configs(
            config,
            {
                "metadata": {METADATA_KEY: self.metadata(route, served, error)},
                "tags": [f"routellm:{served}", "routellm:fallback"],
            },
        )

    # ---- errors ----------------------------------------------------------------------------------------
    def error(
        self,
        route: Route,
        served: Tier,
        exc: BaseException,
        *,
        first_error: BaseException | None = None,
        chunks_delivered: int | None = None,
        partial_text: str = "",
    ) -> ModelCallError:
        """A ``ModelCallError`` naming the failed model (and the chosen one, after a failed fallback).

        The error carries ``model`` (the chosen model's name), ``decision``, ``tier`` (the child whose
        failure is raised), ``fallback_model`` (the other child's name when it was tried) and
        ``chunks_delivered`` (streaming only: chunks already yielded to the caller, else ``None``).
        """
        chosen = route.choice
        if isinstance(exc, EmptyResponseError):
            what = "returned an empty message (no content and no tool call)"
        else:
            what = f"failed: {type(exc).__name__}: {exc}"
        if served == chosen:
            message = f"{self.owner}: the chosen {served} model {self.names[served]!r} {what}"
        else:
            message = (
                f"{self.owner}: the chosen {chosen} model {self.names[chosen]!r} failed "
                f"({type(first_error).__name__}), then the fallback {served} model "
                f"{self.names[served]!r} {what}"
            )
        if chunks_delivered:
            message += f"; {chunks_delivered} streamed chunk(s) had already been delivered to the caller"
        fallback_model = self.names[served] if served != chosen else None
        if chunks_delivered:
            return StreamInterruptedError(
                message,
                model=self.names[chosen],
                decision=route.decision,
                tier=served,
                fallback_model=fallback_model,
                chunks_delivered=chunks_delivered,
                partial_text=partial_text,
            )
        return ModelCallError(
            message,
            model=self.names[chosen],
            decision=route.decision,
            tier=served,
            fallback_model=fallback_model,
            chunks_delivered=chunks_delivered,
        )

    def _log_fallback(self, route: Route, exc: BaseException) -> None:
        logger.warning(
            "%s: the chosen %s model %r failed (%s); falling back to the %s model %r",
            self.owner,
            route.choice,
            self.names[route.choice],
            type(exc).__name__,
            other_tier(route.choice),
            self.names[other_tier(route.choice)],
        )

    def _tiers(self, route: Route) -> list[Tier]:
        return [route.choice, other_tier(route.choice)] if self.fallback else [route.choice]

    # ---- calls -----------------------------------------------------------------------------------------
    def call(self, route: Route, attempt: Callable[[Tier, BaseException | None], T]) -> tuple[T, dict[str, Any]]:
        """Run ``attempt(tier, previous_error)`` for the chosen child, falling back once if configured.

        Returns:
            The child's answer and the metadata describing who served it.
        """
        error: BaseException | None = None
        tiers = self._tiers(route)
        for i, tier in enumerate(tiers):
            try:
                value = attempt(tier, error)
                if self.is_empty(value):
                    raise EmptyResponseError(f"{self.names[tier]} returned an empty message")
                return value, self.metadata(route, tier, error)
            except Exception as exc:
                if _passthrough(exc):
                    raise
                if i == len(tiers) - 1:
                    raise self.error(route, tier, exc, first_error=error) from exc
                self._log_fallback(route, exc)
                error = exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(
        self, route: Route, attempt: Callable[[Tier, BaseException | None], Awaitable[T]]
    ) -> tuple[T, dict[str, Any]]:
        """Async :meth:`call`."""
        error: BaseException | None = None
        tiers = self._tiers(route)
        for i, tier in enumerate(tiers):
            try:
                value = await attempt(tier, error)
                if self.is_empty(value):
                    raise EmptyResponseError(f"{self.names[tier]} returned an empty message")
                return value, self.metadata(route, tier, error)
            except Exception as exc:
                if _passthrough(exc):
                    raise
                if i == len(tiers) - 1:
                    raise self.error(route, tier, exc, first_error=error) from exc
                self._log_fallback(route, exc)
                error = exc
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(
        self, route: Route, open_stream: Callable[[Tier, BaseException | None], Iterator[Any]]
    ) -> Iterator[tuple[Any, dict[str, Any] | None]]:
        """Stream the chosen child's chunks as ``(chunk, meta)``; ``meta`` is set on the first chunk only.

        Leading empty chunks are held back until the first chunk with content, so that a child that fails
        or answers nothing before any content can still fall back (when configured). Once a chunk has been
        delivered, a failure raises ``ModelCallError`` with ``chunks_delivered`` set: nothing is retried,
        since the caller already holds part of the answer.
        """
        error: BaseException | None = None
        tiers = self._tiers(route)
        for i, tier in enumerate(tiers):
            delivered = 0
            texts: list[str] = []
            held: list[Any] = []
            try:
                for chunk in open_stream(tier, error):
                    if delivered == 0:
                        held.append(chunk)
                        if self.is_empty(chunk):
                            continue
                        meta = self.metadata(route, tier, error)
                        for j, pending in enumerate(held):
                            if j == 0:
                                yield with_metadata(pending, meta), meta
                            else:
                                yield pending, None
                            delivered += 1
                            texts.append(chunk_text(pending))
                        held = []
                    else:
                        yield chunk, None
                        delivered += 1
                        texts.append(chunk_text(chunk))
                if delivered == 0:
                    raise EmptyResponseError(f"{self.names[tier]} streamed no content")
                return
            except Exception as exc:
                if _passthrough(exc):
                    raise
                if delivered or i == len(tiers) - 1:
                    raise self.error(
                        route, tier, exc, first_error=error, chunks_delivered=delivered, partial_text="".join(texts)
                    ) from exc
                self._log_fallback(route, exc)
                error = exc

    async def astream(
        self, route: Route, open_stream: Callable[[Tier, BaseException | None], AsyncIterator[Any]]
    ) -> AsyncIterator[tuple[Any, dict[str, Any] | None]]:
        """Async :meth:`stream`."""
        error: BaseException | None = None
        tiers = self._tiers(route)
        for i, tier in enumerate(tiers):
            delivered = 0
            texts: list[str] = []
            held: list[Any] = []
            try:
                async for chunk in open_stream(tier, error):
                    if delivered == 0:
                        held.append(chunk)
                        if self.is_empty(chunk):
                            continue
                        meta = self.metadata(route, tier, error)
                        for j, pending in enumerate(held):
                            if j == 0:
                                yield with_metadata(pending, meta), meta
                            else:
                                yield pending, None
                            delivered += 1
                            texts.append(chunk_text(pending))
                        held = []
                    else:
                        yield chunk, None
                        delivered += 1
                        texts.append(chunk_text(chunk))
                if delivered == 0:
                    raise EmptyResponseError(f"{self.names[tier]} streamed no content")
                return
            except Exception as exc:
                if _passthrough(exc):
                    raise
                if delivered or i == len(tiers) - 1:
                    raise self.error(
                        route, tier, exc, first_error=error, chunks_delivered=delivered, partial_text="".join(texts)
                    ) from exc
                self._log_fallback(route, exc)
                error = exc
