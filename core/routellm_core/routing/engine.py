"""The routed call, written once: routing text -> policy -> dispatch -> fallback -> labelling -> record.

Every front end (LangChain's ``ChatRouteLLM``, ``RouteLLMRunnable`` and ``RouteLLMMiddleware``, LlamaIndex's
``RouteLLM``, the OpenAI-compatible server) declares its routing options by :class:`RoutingOptions` and holds one
:class:`RoutingEngine`. The engine decides (micro-batched), calls the side the decision names through a function the
front end hands it (so the framework's callbacks, events and types stay the front end's), falls back once when
configured, records the decision in the feedback store and, for a sampled share, asks the other side in the
background for a judged label. A front end keeps only what its framework's types, callbacks and events demand.

A call is a sequence of *attempts*: today the chosen side, then (with ``fallback``) the other one. The dispatcher
owns that sequence, so a later step (a check of the cheap answer, a further attempt up a price ladder) is added in
one place for every front end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from routellm_core.decisions import Route, ServedDecision, Side, check_threshold, other_side
from routellm_core.embedding.embedders import Embedder
from routellm_core.errors import InvalidInputError
from routellm_core.learning.judging import Judge
from routellm_core.learning.labelling import TrafficLabelling, traffic_labelling
from routellm_core.routers.base import WinRateModel
from routellm_core.routing.dispatch import Dispatcher, FallbackHook, log_route
from routellm_core.routing.policy import RoutingPolicy, build_policy, router_label
from routellm_core.routing.text import canonical_route_on

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Routing text of a conversation (``"last_human"``: alias of ``"last_user"``), see :mod:`routellm_core.routing.text`.
RouteOn = Literal["last_user", "last_human", "conversation", "rag_query"]
#: A call whose last message is a tool result: ``"continue"`` on the side that issued the tool call, or ``"route"``.
ToolStep = Literal["continue", "route"]


class RoutingOptions(BaseModel):
    """The routing options every front end takes, declared and validated once.

    LangChain's ``ChatRouteLLM`` / ``RouteLLMRunnable`` and LlamaIndex's ``RouteLLM`` inherit these fields;
    ``RouteLLMMiddleware`` and the server validate their keyword arguments with this model.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    router: str | Path | WinRateModel | RoutingPolicy = "default"
    """Router: ``"default"`` (shipped), a checkpoint path, a registry name, a router, or a RoutingPolicy."""

    threshold: float | None = None
    """Send to strong when P(strong wins) >= threshold; when neither this nor ``strong_fraction`` is set, the
    router's calibrated threshold for half of its calibration traffic (0.5 without calibration)."""

    strong_fraction: float | None = None
    """Instead of a threshold: the target fraction of strong calls, resolved through the router's calibration."""

    embedder: Embedder | None = Field(default=None, exclude=True)
    """Embedder to load the router with (must match the checkpoint's); the router's own when ``None``."""

    route_on: RouteOn = "last_user"
    """Routing text of messages: ``"last_user"`` (latest user message's text; alias ``"last_human"``),
    ``"conversation"`` (user and assistant turns, role-prefixed) or ``"rag_query"`` (the query inside a RAG prompt)."""

    tool_step: ToolStep = "continue"
    """A call whose last message is a tool result: ``"continue"`` with the side that issued the tool call (read
    from its ``routellm`` metadata), or ``"route"`` it like any other call."""

    fallback: bool = False
    """When the chosen side fails or answers empty before any output, call the other side once."""

    feedback: Any = Field(default=None, exclude=True)
    """A ``FeedbackStore`` or a path to one: every routed call's decision is recorded there, so the app can attach
    a verdict later by the response's ``decision_id`` (``llm.feedback_store.add_verdict(id, "bad")``)."""

    judge: Any = Field(default=None, exclude=True)
    """Judge for ``label_fraction``: a framework chat model (asked MT-Bench's pairwise question, twice with the
    answers swapped), a ``PairwiseJudge``, or a callable ``(prompt, answer_a, answer_b) -> "model_a" | "model_b" |
    "tie"``."""

    label_fraction: float = 0.0
    """Share of calls (seeded by decision id) on which the other side is also called, in the background, and the
    pair judged into ``feedback``; the caller's answer, latency and errors never change."""

    label_seed: int = 0
    """Seed of the ``label_fraction`` sampling."""

    strong_name: str | None = None
    """Name reported for the strong side in metadata, records and errors; derived from the model when ``None``."""

    weak_name: str | None = None
    """Name reported for the weak side in metadata, records and errors; derived from the model when ``None``."""

    @field_serializer("router")
    def _serialize_router(self, router: Any) -> str:
        return router_label(router)

    @field_validator("threshold", "strong_fraction", "label_fraction")
    @classmethod
    def _in_unit_interval(cls, value: float | None, info: Any) -> float | None:
        return None if value is None else check_threshold(value, info.field_name)

    @field_validator("route_on")
    @classmethod
    def _known_route_on(cls, value: Any) -> Any:
        if isinstance(value, str):
            canonical_route_on(value)
        return value


#: The option names: a copy of a front end that changes one of them rebuilds its engine.
ROUTING_FIELDS = frozenset(RoutingOptions.model_fields)


class RoutingEngine:
    """The one routed-call engine: decide, call the chosen side (fall back once if configured), record, label.

    Args:
        options: The front end's routing options.
        names: Display name of each side (records, metadata and errors; never holds credentials).
        owner: Name of the front end, for error messages.
        is_empty: Whether an answer (or a streamed chunk) is empty: no text and no tool call.
        chunk_text: The text a streamed chunk delivers.
        answer_text: The text of a whole answer (for the feedback store and the judge).
        judge: The judge, adapted from a framework model by the front end; ``None``: ``options.judge`` as given
            (a core judge: a ``PairwiseJudge`` or a callable).
        passthrough: Exception types that are the caller's control flow (LangGraph interrupts...): never wrapped,
            never a reason to fall back.
        on_fallback: Called before a fallback call (LlamaIndex emits its event there).
        policy: A ready policy to share (copies made by ``bind_tools``); built from ``options`` when ``None``.

    Raises:
        InvalidThresholdError: A bad threshold or strong fraction, or a ``RoutingPolicy`` plus a threshold.
        InvalidInputError: A judge or label fraction without a feedback store, or two sides with one name under
            a feedback store.
    """

    def __init__(
        self,
        options: RoutingOptions,
        names: Mapping[Side, str],
        *,
        owner: str,
        is_empty: Callable[[Any], bool],
        chunk_text: Callable[[Any], str],
        answer_text: Callable[[Any], str],
        judge: Judge | None = None,
        passthrough: tuple[type[BaseException], ...] = (),
        on_fallback: FallbackHook | None = None,
        policy: RoutingPolicy | None = None,
    ) -> None:
        self.options = options
        self.owner = owner
        self.names: dict[Side, str] = dict(names)
        self.policy = policy or build_policy(
            options.router, options.threshold, options.strong_fraction, options.embedder
        )
        self.dispatcher = Dispatcher(
            self.names,
            fallback=options.fallback,
            owner=owner,
            is_empty=is_empty,
            chunk_text=chunk_text,
            passthrough=passthrough,
            on_fallback=on_fallback,
        )
        self.answer_text = answer_text
        self.labelling: TrafficLabelling | None = traffic_labelling(
            options.feedback,
            judge if judge is not None else options.judge,
            options.label_fraction,
            options.label_seed,
            names=self.names,
        )

    # ---- routing ---------------------------------------------------------------------------------------
    def route(self, text: str, threshold: float | None = None) -> Route:
        """The route of one routing text at ``threshold`` (default: the policy's); sync, micro-batched with
        concurrent threads."""
        return log_route(Route(self.policy.decide(text, threshold), text=text))

    async def aroute(self, text: str, threshold: float | None = None) -> Route:
        """Async :meth:`route` (micro-batched with the event loop's concurrent calls, scored off the loop)."""
        return log_route(Route(await self.policy.adecide(text, threshold), text=text))

    def continued(self, record: ServedDecision | None) -> Route | None:
        """The route that continues an earlier step's record (an agent's tool step), under ``tool_step="continue"``;
        ``None`` when the call is to be routed anew."""
        if record is None or self.options.tool_step != "continue":
            return None
        return log_route(record.continuation())

    def planned(self, route: Route) -> ServedDecision:
        """The record a call under ``route`` carries before any side answered: the router's choice serving."""
        return self.dispatcher.served(route, route.choice)

    @property
    def feedback_store(self) -> Any:
        """The feedback store, or ``None`` without one."""
        return self.labelling.store if self.labelling is not None else None

    # ---- the routed call -------------------------------------------------------------------------------
    def call(
        self,
        route: Route,
        attempt: Callable[[Side, ServedDecision], T],
        *,
        other_answer: Callable[[Side], str] | None = None,
    ) -> tuple[T, ServedDecision]:
        """Call the chosen side through ``attempt(side, record)`` (falling back once if configured), record the
        decision and, when sampled, label it with ``other_answer(side)``: the other side's answer text.

        Raises:
            ModelCallError: The chosen side failed or answered empty (and the fallback too, when configured).
        """
        value, record = self.dispatcher.call(route, attempt)
        self._after(route, record, self.answer_text(value), other_answer)
        return value, record

    async def acall(
        self,
        route: Route,
        attempt: Callable[[Side, ServedDecision], Awaitable[T]],
        *,
        other_answer: Callable[[Side], Awaitable[str]] | None = None,
    ) -> tuple[T, ServedDecision]:
        """Async :meth:`call`."""
        value, record = await self.dispatcher.acall(route, attempt)
        await self._aafter(route, record, self.answer_text(value), other_answer)
        return value, record

    def stream(
        self,
        route: Route,
        open_stream: Callable[[Side, ServedDecision], Iterator[Any]],
        *,
        other_answer: Callable[[Side], str] | None = None,
    ) -> Iterator[tuple[Any, ServedDecision]]:
        """Relay the chosen side's chunks as ``(chunk, record)`` (see :meth:`Dispatcher.stream`); once the stream
        ended, record and label it like :meth:`call`."""
        texts: list[str] = []
        record: ServedDecision | None = None
        for chunk, record in self.dispatcher.stream(route, open_stream):
            texts.append(self.dispatcher.chunk_text(chunk))
            yield chunk, record
        if record is not None:
            self._after(route, record, "".join(texts), other_answer)

    async def astream(
        self,
        route: Route,
        open_stream: Callable[[Side, ServedDecision], AsyncIterator[Any]],
        *,
        other_answer: Callable[[Side], Awaitable[str]] | None = None,
    ) -> AsyncIterator[tuple[Any, ServedDecision]]:
        """Async :meth:`stream` (the side's stream is closed however the relay ends)."""
        texts: list[str] = []
        record: ServedDecision | None = None
        async with aclosing(self.dispatcher.astream(route, open_stream)) as relayed:
            async for chunk, record in relayed:
                texts.append(self.dispatcher.chunk_text(chunk))
                yield chunk, record
        if record is not None:
            await self._aafter(route, record, "".join(texts), other_answer)

    # ---- recording and labelling -----------------------------------------------------------------------
    def _after(
        self, route: Route, record: ServedDecision, answer: str, other_answer: Callable[[Side], str] | None
    ) -> None:
        if self.labelling is None or route.text is None:
            return
        other = other_side(record.served)

        def ask() -> str:
            if other_answer is None:
                raise self._cannot_ask()
            return other_answer(other)

        self.labelling.after_call(record, self.names, route.text, answer, ask)

    async def _aafter(
        self,
        route: Route,
        record: ServedDecision,
        answer: str,
        other_answer: Callable[[Side], Awaitable[str]] | None,
    ) -> None:
        if self.labelling is None or route.text is None:
            return
        other = other_side(record.served)

        async def ask() -> str:
            if other_answer is None:
                raise self._cannot_ask()
            return await other_answer(other)

        await self.labelling.aafter_call(record, self.names, route.text, answer, ask)

    def _cannot_ask(self) -> InvalidInputError:
        return InvalidInputError(f"{self.owner} cannot ask the other side of this call for a label")

    def __repr__(self) -> str:
        return (
            f"RoutingEngine(owner={self.owner!r}, names={self.names!r}, policy={self.policy!r}, "
            f"fallback={self.options.fallback}, labelling={self.labelling!r})"
        )


__all__ = ["ROUTING_FIELDS", "RouteOn", "RoutingEngine", "RoutingOptions", "ToolStep"]
