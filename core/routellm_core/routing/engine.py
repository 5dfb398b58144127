"""The routed call, written once: routing text -> policy -> dispatch -> fallback -> labelling -> record.

Every front end (LangChain's ``ChatRouteLLM``, ``RouteLLMRunnable`` and ``RouteLLMMiddleware``, LlamaIndex's
``RouteLLM``, the OpenAI-compatible server) declares its routing options by :class:`RoutingOptions` and holds one
:class:`RoutingEngine`. The engine decides (micro-batched), calls the side the decision names through a function the
front end hands it (so the framework's callbacks, events and types stay the front end's), falls back once when
configured, records the decision in the feedback store and, for a sampled share, asks the other side in the
background for a judged label. A front end keeps only what its framework's types, callbacks and events demand.

A call is a sequence of *attempts*: the chosen side, then (with ``fallback``) the other one; under ``escalate`` a
call routed to the weak side is a cascade (:mod:`routellm_core.routing.cascade`): the weak answer and a second cheap
answer, the check, then the strong model when the check is not confident. Every attempt is listed in the record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from routellm_core.data.prices import call_cost
from routellm_core.decisions import (
    RESAMPLED_SUFFIX,
    Attempt,
    Route,
    ServedDecision,
    Side,
    check_threshold,
    other_side,
)
from routellm_core.embedding.embedders import Embedder
from routellm_core.errors import InvalidInputError, ModelCallError, StreamInterruptedError, reraise_routellm_error
from routellm_core.escalation.config import Escalation
from routellm_core.learning.judging import Judge
from routellm_core.learning.labelling import TrafficLabelling, traffic_labelling
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.cascade import (
    Cascade,
    CostOf,
    Outcome,
    Pricing,
    Usage,
    Verdict,
    aoutcome_of,
    atogether,
    outcome_of,
    together,
)
from routellm_core.routing.dispatch import Dispatcher, EmptyResponseError, FallbackHook, log_route
from routellm_core.routing.objective import Objective
from routellm_core.routing.policy import RoutingPolicy, build_policy, router_label
from routellm_core.routing.text import RouteOn, canonical_route_on

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: A call whose last message is a tool result: ``"continue"`` on the side that issued the tool call, or ``"route"``.
ToolStep = Literal["continue", "route"]


@functools.cache
def accepted_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keyword arguments a pydantic model takes: its fields' names and aliases (a front end refuses any other,
    naming the nearest: :func:`~routellm_core.errors.unknown_options_error`)."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        if info.alias:
            keys.add(info.alias)
        alias = info.validation_alias
        if isinstance(alias, str):
            keys.add(alias)
        elif isinstance(alias, AliasChoices):
            keys.update(choice for choice in alias.choices if isinstance(choice, str))
    return frozenset(keys)


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

    label_concurrency: int = Field(default=8, ge=1)
    """Most labels in flight at once (each the other side's answer and the judge's two calls): sync calls' labels run
    on up to this many worker threads, async calls' in as many tasks; a sampled call beyond them is dropped and
    counted (``labelling.labeller.stats.dropped_full``). Raise it when labels take long and traffic is high."""

    strong_name: str | None = None
    """Name reported for the strong side in metadata, records and errors; derived from the model when ``None``."""

    weak_name: str | None = None
    """Name reported for the weak side in metadata, records and errors; derived from the model when ``None``."""

    escalate: Escalation | None = Field(default=None, exclude=True)
    """Escalate on the cheap model's answer (:class:`~routellm_core.escalation.Escalation`): a call routed to the
    weak side gets the weak answer and a second cheap one at once, and the strong model answers instead when the
    check is not confident (``Escalation(second=None)`` samples the weak model again). Calls routed to strong go
    there directly (the pre-route: set ``threshold`` / ``strong_fraction`` for how many)."""

    prices: dict[str, tuple[float, float]] | None = Field(default=None, exclude=True)
    """USD per million input and output tokens by model name, for the records' costs (over the shipped table)."""

    objective: Objective | None = Field(default=None, exclude=True)
    """With ``models=[...]``: how the model is picked (:class:`~routellm_core.routing.objective.Objective`, or
    its ``"<kind>=<value>"`` form); default ``Objective.margin(0.05)``: the cheapest model predicted within 5
    points of the best."""

    priors: dict[str, ModelPrior] | None = Field(default=None, exclude=True)
    """With ``models=[...]``: what to assume about models the router has no profile for
    (``{"my-model": ModelPrior(like="gpt-4o-mini")}`` or ``ModelPrior(score=0.82)``; also written as the server's
    ``--prior`` takes them: ``"like:gpt-4o-mini"``, ``"score:0.82"``), until labels refit them."""

    @field_serializer("router")
    def _serialize_router(self, router: Any) -> str:
        return router_label(router)

    @field_validator("threshold", "strong_fraction", "label_fraction")
    @classmethod
    def _in_unit_interval(cls, value: float | None, info: Any) -> float | None:
        return None if value is None else check_threshold(value, info.field_name)

    @field_validator("escalate", mode="before")
    @classmethod
    def _escalation(cls, value: Any) -> Any:
        if value is None or isinstance(value, Escalation):
            return value
        if value is True:
            return Escalation()
        raise InvalidInputError(
            f"escalate must be an Escalation (or True for the defaults), got {type(value).__name__}"
        )

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> Any:
        if value is None or isinstance(value, Objective):
            return value
        if isinstance(value, str):
            return Objective.parse(value)
        raise InvalidInputError(f"objective must be an Objective or '<kind>=<value>', got {type(value).__name__}")

    @field_validator("priors", mode="before")
    @classmethod
    def _priors(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, Mapping) or not all(isinstance(v, (ModelPrior, str)) for v in value.values()):
            raise InvalidInputError(
                "priors must map model names to ModelPrior(like=...) or ModelPrior(score=...) (or their written "
                "forms 'like:<profiled model>', 'score:<fraction>')"
            )
        return {name: p if isinstance(p, ModelPrior) else ModelPrior.parse(p, str(name)) for name, p in value.items()}

    @field_validator("route_on")
    @classmethod
    def _known_route_on(cls, value: Any) -> Any:
        if isinstance(value, str):
            canonical_route_on(value)
        return value


#: The option names: a copy of a front end that changes one of them rebuilds its engine.
ROUTING_FIELDS = frozenset(RoutingOptions.model_fields)


def checked_routing_update(update: Mapping[str, Any] | None, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A front end's ``model_copy`` update with its routing options read as the constructor reads them (pydantic's
    ``model_copy`` runs no validators): ``escalate=True`` becomes an :class:`Escalation`, ``objective="budget=1.5"``
    an :class:`Objective`, a threshold out of range is refused. ``skip``: fields the front end checks itself.

    Raises:
        InvalidInputError: A routing option the constructor refuses (its subclass where one fits).
    """
    update = dict(update or {})
    routing = {key: value for key, value in update.items() if key in ROUTING_FIELDS and key not in skip}
    if not routing:
        return update
    try:
        checked = RoutingOptions(**routing)
    except ValidationError as exc:
        reraise_routellm_error(exc)
        raise
    return {**update, **{key: getattr(checked, key) for key in routing}}


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
        second_name: Display name of the model giving the second cheap answer under ``escalate`` (default: the
            weak model's, resampled).
        answer_value: What the escalation check compares of an answer (its text, or its tool calls); default
            ``answer_text``.
        usage: The ``(input_tokens, output_tokens)`` an answer reports (either may be None); default: unknown.
        join_chunks: A whole answer from streamed chunks (the escalation check reads held streams); default: the
            chunks' text joined.
        logprobs: The token log-probabilities an answer carries, for the ``"logprobs"`` check (default: none).
        labelling: A labelling to share (the pair engines of a call among N models); built from ``options`` when
            not given.

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
        second_name: str | None = None,
        answer_value: Callable[[Any], Any] | None = None,
        usage: Callable[[Any], Usage] | None = None,
        join_chunks: Callable[[list[Any]], Any] | None = None,
        logprobs: Callable[[Any], list[float] | None] | None = None,
        labelling: TrafficLabelling | Literal["own"] | None = "own",
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
        self.passthrough = passthrough
        self.pricing = Pricing(usage or (lambda _value: (None, None)), price_table(options.prices))
        self.join_chunks = join_chunks or (lambda chunks: "".join(chunk_text(c) for c in chunks))
        self.cascade: Cascade | None = None
        if options.escalate is not None and options.escalate.climb:
            raise InvalidInputError(
                f"{owner}: Escalation(climb=True) climbs a price ladder: list the models with models=[...], or "
                "leave climb off for a strong/weak pair"
            )
        if options.escalate is not None:
            self.cascade = Cascade(
                options.escalate,
                names=self.names,
                second_name=second_name or f"{self.names['weak']}{RESAMPLED_SUFFIX}",
                answer_value=answer_value or answer_text,
                answer_text=answer_text,
                is_empty=is_empty,
                pricing=self.pricing,
                join_chunks=self.join_chunks,
                logprobs=logprobs or (lambda _value: None),
            )
        if labelling == "own":
            labelling = traffic_labelling(
                options.feedback,
                judge if judge is not None else options.judge,
                options.label_fraction,
                options.label_seed,
                names=self.names,
                concurrency=options.label_concurrency,
            )
        elif labelling is not None:
            labelling.check_names(self.names)
        self.labelling: TrafficLabelling | None = labelling

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
    def holds(self, route: Route) -> bool:
        """Whether the answers of a call under ``route`` are held for the escalation check before the caller sees
        any of them (a front end keeps such attempts' tokens off its streaming callbacks)."""
        return self.cascade is not None and self.cascade.applies(route)

    def held_attempt(self, route: Route, record: ServedDecision) -> bool:
        """Whether the answer of the attempt called with ``record`` is held for the escalation check (the weak
        answer of a cascade): a front end keeps its tokens off its streaming callbacks."""
        return self.holds(route) and record.served == "weak" and not record.escalated

    def call(
        self,
        route: Route,
        attempt: Callable[[Side, ServedDecision], T],
        *,
        other_answer: Callable[[Side], str] | None = None,
        second: Callable[[ServedDecision], T] | None = None,
        verify: Callable[[ServedDecision, Any], Any] | None = None,
        on_final: Callable[[ServedDecision], None] | None = None,
        fallback: bool | None = None,
    ) -> tuple[T, ServedDecision]:
        """Call the chosen side through ``attempt(side, record)`` (falling back once if configured), record the
        decision and, when sampled, label it with ``other_answer(side)``: the other side's answer text. Under
        ``escalate``, ``second(record)`` gives the second cheap answer and ``verify(record, answer)`` the weak
        model's reply to the self-verification question about ``answer``.

        ``on_final`` gets the call's priced record; also, when a cascade ends without an answer after paying some
        attempts, the record of those. Ended by anything but a model's failure (the caller's control flow, a
        ``KeyboardInterrupt``...), that record is kept in the feedback store (no text, no label) and the exception
        propagates; a failed escalation's :class:`ModelCallError` carries them as ``attempts``. ``fallback``
        overrides the engine's for this call (a continuation whose state only its upstream holds: ``False``).

        Raises:
            ModelCallError: The chosen side failed or answered empty (and the fallback too, when configured), or
                the strong model failed after an escalation.
        """
        if self.holds(route):
            paid = _Paid()
            try:
                value, record, _ = self._cascade(
                    route, attempt, self._second(second), self._verify(verify), stream=False, paid=paid
                )
            except BaseException as exc:
                quietly(self._record_end, route, exc, self._paid(paid, exc, on_final), "")
                raise
        else:
            try:
                value, record = self.dispatcher.call(route, attempt, fallback=fallback)
            except ModelCallError as exc:
                quietly(self._record_end, route, exc, None, "")
                raise
            record = self._priced(record, value, first_side=route.first_side)
        if on_final is not None:
            on_final(record)
        self.record_call(route, record, self.answer_text(value), other_answer)
        return value, record

    async def acall(
        self,
        route: Route,
        attempt: Callable[[Side, ServedDecision], Awaitable[T]],
        *,
        other_answer: Callable[[Side], Awaitable[str]] | None = None,
        second: Callable[[ServedDecision], Awaitable[T]] | None = None,
        verify: Callable[[ServedDecision, Any], Awaitable[Any]] | None = None,
        on_final: Callable[[ServedDecision], None] | None = None,
        fallback: bool | None = None,
    ) -> tuple[T, ServedDecision]:
        """Async :meth:`call` (a cascade cancelled, by its caller or a timeout, is recorded with what it paid)."""
        if self.holds(route):
            paid = _Paid()
            try:
                value, record, _ = await self._acascade(
                    route, attempt, self._second(second), self._verify(verify), stream=False, paid=paid
                )
            except BaseException as exc:
                await self._arecord_end_quietly(route, exc, self._paid(paid, exc, on_final), "")
                raise
        else:
            try:
                value, record = await self.dispatcher.acall(route, attempt, fallback=fallback)
            except ModelCallError as exc:
                await self._arecord_end_quietly(route, exc, None, "")
                raise
            record = self._priced(record, value, first_side=route.first_side)
        if on_final is not None:
            on_final(record)
        await self.arecord_call(route, record, self.answer_text(value), other_answer)
        return value, record

    def stream(
        self,
        route: Route,
        open_stream: Callable[[Side, ServedDecision], Iterator[Any]],
        *,
        other_answer: Callable[[Side], str] | None = None,
        second: Callable[[ServedDecision], Any] | None = None,
        verify: Callable[[ServedDecision, Any], Any] | None = None,
        on_final: Callable[[ServedDecision], None] | None = None,
        fallback: bool | None = None,
    ) -> Iterator[tuple[Any, ServedDecision]]:
        """Relay the chosen side's chunks as ``(chunk, record)`` (see :meth:`Dispatcher.stream`); once the stream
        ended, record and label it like :meth:`call`. Under ``escalate`` the weak answer is held until its check
        passed (then its chunks are relayed), or the strong model's stream is relayed.

        ``on_final`` gets the stream's priced record however the relay ends (finished, failed or abandoned by the
        caller), once something was relayed or paid (a cascade that ended before its answer: the attempts it paid).
        A stream the caller left, or that anything but a model's failure ended (the caller's control flow, a
        ``KeyboardInterrupt``...), is recorded too (its decision id takes feedback), with the text relayed and no
        label sampled."""
        tally = _Tally(self, route)
        paid = _Paid()
        relayed: Iterator[tuple[Any, ServedDecision]]
        ending: BaseException | None = None
        try:
            if self.holds(route):
                held_answer, record, strong_route = self._cascade(
                    route, held(open_stream), self._second(second), self._verify(verify), stream=True, paid=paid
                )
                if strong_route is None:
                    relayed = tally.kept(held_answer, record)
                else:
                    tally.cheap = record.attempts
                    relayed = self._escalated_stream(route, strong_route, open_stream, held_answer, record, tally)
            else:
                relayed = self.dispatcher.stream(route, open_stream, fallback=fallback)
            for chunk, served in relayed:
                yield chunk, tally.add(chunk, served)
        except BaseException as exc:  # GeneratorExit: the caller left
            ending = exc
            raise
        finally:
            record = tally.final()
            if record is None and ending is not None:
                record = self._paid(paid, ending, None)
            if record is not None and on_final is not None:
                on_final(record)
            if ending is not None:
                quietly(self._record_end, route, ending, record, tally.text)
        if record is not None:
            self.record_call(route, record, tally.text, other_answer)

    async def astream(
        self,
        route: Route,
        open_stream: Callable[[Side, ServedDecision], AsyncIterator[Any]],
        *,
        other_answer: Callable[[Side], Awaitable[str]] | None = None,
        second: Callable[[ServedDecision], Awaitable[Any]] | None = None,
        verify: Callable[[ServedDecision, Any], Awaitable[Any]] | None = None,
        on_final: Callable[[ServedDecision], None] | None = None,
        fallback: bool | None = None,
    ) -> AsyncIterator[tuple[Any, ServedDecision]]:
        """Async :meth:`stream` (the side's stream is closed however the relay ends; a relay the caller left,
        closed or cancelled, is recorded as :meth:`stream` says). A caller cancelled before the answer's first chunk
        (while the cheap answers or the check run, or an escalated stream waits for the strong model's first chunk)
        leaves the record of the attempts the cascade paid, with no text."""
        tally = _Tally(self, route)
        paid = _Paid()
        relayed: AsyncIterator[tuple[Any, ServedDecision]]
        ending: BaseException | None = None
        try:
            if self.holds(route):
                held_answer, record, strong_route = await self._acascade(
                    route, aheld(open_stream), self._second(second), self._verify(verify), stream=True, paid=paid
                )
                if strong_route is None:
                    relayed = _aiter(tally.kept(held_answer, record))
                else:
                    tally.cheap = record.attempts
                    relayed = self._aescalated_stream(route, strong_route, open_stream, held_answer, record, tally)
            else:
                relayed = self.dispatcher.astream(route, open_stream, fallback=fallback)
            async with aclosing(relayed):  # type: ignore[type-var]
                async for chunk, served in relayed:
                    yield chunk, tally.add(chunk, served)
        except BaseException as exc:  # GeneratorExit / CancelledError: the caller left
            ending = exc
            raise
        finally:
            record = tally.final()
            if record is None and ending is not None:
                record = self._paid(paid, ending, None)
            if record is not None and on_final is not None:
                on_final(record)
            if ending is not None:
                await self._arecord_end_quietly(route, ending, record, tally.text)
        if record is not None:
            await self.arecord_call(route, record, tally.text, other_answer)

    def _escalated_stream(
        self,
        route: Route,
        strong_route: Route,
        open_stream: Callable[[Side, ServedDecision], Iterator[Any]],
        held_answer: Outcome,
        escalated: ServedDecision,
        tally: _Tally,
    ) -> Iterator[tuple[Any, ServedDecision]]:
        """The strong model's stream after an escalation; when it fails before its first chunk, what
        :meth:`_finish_escalation` serves (under ``fallback``, the weak answer held for the check, not a new one)."""
        try:
            yield from self.dispatcher.stream(strong_route, open_stream, fallback=False)
        except StreamInterruptedError:
            raise
        except ModelCallError as exc:
            value, record = self._finish_escalation(route, held_answer, escalated, _failed_outcome(exc), stream=True)
            yield from tally.kept(value, record)

    async def _aescalated_stream(
        self,
        route: Route,
        strong_route: Route,
        open_stream: Callable[[Side, ServedDecision], AsyncIterator[Any]],
        held_answer: Outcome,
        escalated: ServedDecision,
        tally: _Tally,
    ) -> AsyncIterator[tuple[Any, ServedDecision]]:
        """Async :meth:`_escalated_stream`."""
        relayed = self.dispatcher.astream(strong_route, open_stream, fallback=False)
        try:
            async with aclosing(relayed):  # type: ignore[type-var]
                async for item in relayed:
                    yield item
        except StreamInterruptedError:
            raise
        except ModelCallError as exc:
            value, record = self._finish_escalation(route, held_answer, escalated, _failed_outcome(exc), stream=True)
            for item in tally.kept(value, record):
                yield item

    # ---- the cascade (escalation) ----------------------------------------------------------------------
    def _second(self, second: Callable[..., Any] | None) -> Callable[..., Any] | None:
        assert self.cascade is not None
        if second is None and self.cascade.needs_second:
            raise InvalidInputError(f"{self.owner} cannot ask the second cheap answer the escalation check needs")
        return second if self.cascade.needs_second else None

    def _verify(self, verify: Callable[..., Any] | None) -> Callable[..., Any] | None:
        assert self.cascade is not None
        return self.cascade.verification(verify, self.owner)

    def _outcome(self, call: Callable[..., Any], *args: Any) -> Outcome:
        return outcome_of(self.passthrough, call, *args)

    async def _aoutcome(self, call: Callable[..., Awaitable[Any]], *args: Any) -> Outcome:
        return await aoutcome_of(self.passthrough, call, *args)

    def _cascade(
        self,
        route: Route,
        attempt: Callable[..., Any],
        second: Callable[..., Any] | None,
        verify: Callable[..., Any] | None,
        *,
        stream: bool,
        paid: _Paid,
    ) -> tuple[Any, ServedDecision, Route | None]:
        """The cheap answers (concurrently), the check, then the strong model when it is not confident: the answer
        and its record; for a stream that escalates, the weak answer held (its :class:`Outcome`: served only if the
        strong model fails, under ``fallback``) and the route to stream the strong model on. ``paid`` follows what
        the call paid, for a call that ends early."""
        cascade = self.cascade
        assert cascade is not None
        planned = paid.record = self.planned(route)
        calls = [functools.partial(self._outcome, attempt, "weak", planned)]
        if second is not None:
            calls.append(functools.partial(self._outcome, second, planned))
        outcomes = together(calls, paid.cheap(cascade, stream), name="routellm-check")
        first, other = outcomes[0], (outcomes[1] if second is not None else None)
        paid.attempts = cascade.unchecked_attempts(first, other, stream)
        checked = cascade.whole(first, stream)
        verification = None
        if verify is not None and checked.ok and checked.value is not None:
            verification = self._outcome(verify, planned, checked.value)
        verdict, cheap = self._verdict(route, first, checked, other, verification)
        if verdict.keep:
            return self._kept(first, planned, cheap)
        escalated = paid.record = cascade.escalated_record(planned, cheap)
        paid.attempts = cheap
        if stream:
            return first, escalated, self._escalated_route(route)
        return (*self._finish_escalation(route, first, escalated, self._outcome(attempt, "strong", escalated)), None)

    async def _acascade(
        self,
        route: Route,
        attempt: Callable[..., Awaitable[Any]],
        second: Callable[..., Any] | None,
        verify: Callable[..., Awaitable[Any]] | None,
        *,
        stream: bool,
        paid: _Paid,
    ) -> tuple[Any, ServedDecision, Route | None]:
        """Async :meth:`_cascade`."""
        cascade = self.cascade
        assert cascade is not None
        planned = paid.record = self.planned(route)
        calls = [functools.partial(self._aoutcome, attempt, "weak", planned)]
        if second is not None:
            calls.append(functools.partial(self._aoutcome, second, planned))
        outcomes = await atogether(calls, paid.cheap(cascade, stream))
        first, other = outcomes[0], (outcomes[1] if second is not None else None)
        paid.attempts = cascade.unchecked_attempts(first, other, stream)
        checked = cascade.whole(first, stream)
        verification = None
        if verify is not None and checked.ok and checked.value is not None:
            verification = await self._aoutcome(verify, planned, checked.value)
        verdict, cheap = self._verdict(route, first, checked, other, verification)
        if verdict.keep:
            return self._kept(first, planned, cheap)
        escalated = paid.record = cascade.escalated_record(planned, cheap)
        paid.attempts = cheap
        if stream:
            return first, escalated, self._escalated_route(route)
        strong = await self._aoutcome(attempt, "strong", escalated)
        return (*self._finish_escalation(route, first, escalated, strong), None)

    def _verdict(
        self, route: Route, first: Outcome, checked: Outcome, other: Outcome | None, verification: Outcome | None
    ) -> tuple[Verdict, tuple[Attempt, ...]]:
        """The check's verdict on the weak answer (``checked``: ``first`` as one answer) and the cheap attempts."""
        cascade = self.cascade
        assert cascade is not None
        verdict = cascade.judge(route, checked, other, verification)
        cascade.log(route, verdict, first, other)
        attempts = cascade.cheap_attempts(checked, other, verdict, kept=verdict.keep, verification=verification)
        return verdict, attempts

    @staticmethod
    def _kept(
        first: Outcome, planned: ServedDecision, cheap: tuple[Attempt, ...]
    ) -> tuple[Any, ServedDecision, Route | None]:
        return first.value, replace(planned, attempts=cheap), None

    def _escalated_route(self, route: Route) -> Route:
        return replace(route, side="strong", escalated=True)

    def _finish_escalation(
        self, route: Route, first: Outcome, escalated: ServedDecision, strong: Outcome, *, stream: bool = False
    ) -> tuple[Any, ServedDecision]:
        """The strong model's answer; when it failed, the weak answer under ``fallback`` (if it had one; with
        ``stream``, ``first`` holds its chunks)."""
        cascade = self.cascade
        assert cascade is not None
        error = strong.error
        if error is None and self.dispatcher.is_empty(strong.value):
            error = EmptyResponseError(f"{self.names['strong']} returned an empty message")
        if error is None:
            entry = cascade.attempt(self.names["strong"], "strong", "escalation", strong, kept=True)
            return strong.value, replace(escalated, attempts=(*escalated.attempts, entry))
        failed = cascade.attempt(self.names["strong"], "strong", "escalation", Outcome(error=error), kept=False)
        if self.options.fallback and cascade.answered(cascade.whole(first, stream)):
            logger.warning(
                "%s: the strong model %r failed after an escalation (%s); serving the weak answer",
                self.owner,
                self.names["strong"],
                type(error).__name__,
            )
            attempts = (*(replace(a, kept=a.role == "answer") for a in escalated.attempts), failed)
            record = replace(
                escalated,
                served="weak",
                model=self.names["weak"],
                escalated=False,
                fallback_from=self.names["strong"],
                fallback_error=type(error).__name__,
                attempts=attempts,
            )
            if self.dispatcher.on_fallback is not None:  # the front end's event / metric, as for any fallback
                self.dispatcher.on_fallback(record, error)
            return first.value, record
        d = route.decision
        what = "returned an empty message" if isinstance(error, EmptyResponseError) else f"failed: {error!r}"
        raise ModelCallError(
            f"{self.owner}: the weak answer did not pass the escalation check and the strong model "
            f"{self.names['strong']!r} {what} (router {d.router!r}, win rate {d.win_rate:.4f}, "
            f"threshold {d.threshold:.4f})",
            model=self.names["strong"],
            decision=d,
            side="strong",
            chunks_delivered=0 if stream else None,
            attempts=(*escalated.attempts, failed),
        ) from error

    # ---- the record's attempts and costs ---------------------------------------------------------------
    def _priced(
        self, record: ServedDecision, value: Any, before: tuple[Attempt, ...] = (), first_side: Side | None = None
    ) -> ServedDecision:
        """``record`` listing its attempts: ``before`` (a cascade's cheap ones), the failed one before a fallback
        (unless the side called first, ``first_side``, served: a step continued after an earlier step's fallback),
        and the answer, priced from the usage ``value`` reports (unpriced while ``value`` is None)."""
        tokens_in, tokens_out, cost = self.pricing.of(record.model, value)
        served = Attempt(
            model=record.model,
            side=record.served,
            role=record.served_role,
            kept=True,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost,
        )
        if not record.fallback or record.fallback_from is None or record.served == first_side:
            # a step continued after a fallback starts on the side that served: the failure was an earlier step's
            return replace(record, attempts=(*before, served))
        failed_side = other_side(record.served)
        failed = Attempt(
            model=record.fallback_from,
            side=failed_side,
            role="answer" if failed_side == record.choice else "escalation",
            error=record.fallback_error,
        )
        return replace(record, attempts=(*before, failed, served))

    # ---- recording and labelling -----------------------------------------------------------------------
    def record_call(
        self,
        route: Route,
        record: ServedDecision,
        answer: str,
        other_answer: Callable[[Side], str] | None,
        *,
        sample: bool = True,
    ) -> None:
        """Record a served call in the feedback store and, when sampled (never with ``sample=False``), label it
        with ``other_answer(side)``; a continued step (an agent's tool step) adds its calls to its decision's."""
        if self.labelling is None or (route.text is None and not route.continued):
            return
        other = other_side(record.served)

        def ask() -> str:
            if other_answer is None:
                raise self._cannot_ask()
            return other_answer(other)

        self.labelling.after_call(record, self.names, route.text or "", answer, ask, sample=sample)

    async def arecord_call(
        self,
        route: Route,
        record: ServedDecision,
        answer: str,
        other_answer: Callable[[Side], Awaitable[str]] | None,
        *,
        sample: bool = True,
    ) -> None:
        """Async :meth:`record_call`."""
        if self.labelling is None or (route.text is None and not route.continued):
            return
        other = other_side(record.served)

        async def ask() -> str:
            if other_answer is None:
                raise self._cannot_ask()
            return await other_answer(other)

        await self.labelling.aafter_call(record, self.names, route.text or "", answer, ask, sample=sample)

    async def arecord_left(self, route: Route, record: ServedDecision, answer: str) -> None:
        """Record a stream its caller left (closed or cancelled), with the text relayed and no label sampled. The
        write runs as its own task, so a cancellation that keeps hitting the caller's awaits (a server whose
        client went away) does not stop it."""
        task = asyncio.ensure_future(self.arecord_call(route, record, answer, None, sample=False))
        _LEFT_WRITES.add(task)
        task.add_done_callback(_LEFT_WRITES.discard)
        await asyncio.shield(task)

    def _paid(
        self, paid: _Paid, exc: BaseException, on_final: Callable[[ServedDecision], None] | None
    ) -> ServedDecision | None:
        """The record of a cascade that ended early with ``exc`` (None when it paid nothing), given to ``on_final``."""
        record = paid.record_of(exc)
        if record is not None and on_final is not None:
            quietly(on_final, record)
        return record

    def ended(self, route: Route, exc: BaseException, record: ServedDecision | None) -> ServedDecision | None:
        """The record to keep of a call that ``exc`` ended: a model's failure (:class:`ModelCallError`) gives its
        attempts, the failed ones with their ``error``, none kept (nothing was served) but a stream's cut after its
        chunks reached the caller (kept, with its error: ``record`` is what was relayed); anything else ``record``,
        what the call paid (None: nothing to keep)."""
        if not isinstance(exc, ModelCallError):
            return record
        if record is not None and isinstance(exc, StreamInterruptedError) and record.attempts:
            *before, cut = record.attempts
            error = type(exc.__cause__ or exc).__name__
            return replace(record, attempts=(*before, replace(cut, kept=True, error=error)))
        attempts = tuple(a for a in exc.attempts if isinstance(a, Attempt))
        if attempts and isinstance(exc, StreamInterruptedError):  # a call's tokens reached the caller's callbacks
            attempts = (*attempts[:-1], replace(attempts[-1], kept=True))
        return replace(record or self.planned(route), attempts=attempts) if attempts else None

    def _record_end(self, route: Route, exc: BaseException, record: ServedDecision | None, answer: str) -> None:
        """Record a call that ``exc`` ended (:meth:`ended`), with the text relayed and no label sampled."""
        if (kept := self.ended(route, exc, record)) is not None:
            self.record_call(route, kept, _relayed(exc, answer), None, sample=False)

    async def _arecord_end_quietly(
        self, route: Route, exc: BaseException, record: ServedDecision | None, answer: str
    ) -> None:
        """Async :meth:`_record_end` (as :meth:`arecord_left`, shielded) while ``exc`` propagates: a failure to
        record is logged, not raised over it."""
        if (kept := self.ended(route, exc, record)) is None:
            return
        try:
            await self.arecord_left(route, kept, _relayed(exc, answer))
        except Exception:
            logger.exception("%s: could not record decision %s", self.owner, kept.id)

    def _cannot_ask(self) -> InvalidInputError:
        return InvalidInputError(f"{self.owner} cannot ask the other side of this call for a label")

    def __repr__(self) -> str:
        return (
            f"RoutingEngine(owner={self.owner!r}, names={self.names!r}, policy={self.policy!r}, "
            f"fallback={self.options.fallback}, labelling={self.labelling!r})"
        )


class _Paid:
    """What a cascade paid before its answer: the record the call carries so far and the attempts that finished
    (priced), so a call that ends early is recorded and billed with them."""

    def __init__(self) -> None:
        self.record: ServedDecision | None = None
        self.attempts: tuple[Attempt, ...] = ()

    def cheap(self, cascade: Cascade, stream: bool) -> Callable[[list[Outcome | None]], None]:
        """What the cheap step hands over when it ends early: the cheap answers that came (None: still running)."""

        def interrupted(outcomes: list[Outcome | None]) -> None:
            self.attempts = cascade.unchecked_attempts(outcomes[0], (outcomes[1:] or [None])[0], stream)

        return interrupted

    def record_of(self, exc: BaseException) -> ServedDecision | None:
        """The record of the call ended by ``exc``: the attempts paid (a failed escalation's error lists them with
        the failed call); None when none finished."""
        attempts = exc.attempts if isinstance(exc, ModelCallError) and exc.attempts else self.attempts
        if self.record is None or not attempts:
            return None
        return replace(self.record, attempts=tuple(attempts))  # type: ignore[arg-type]


def quietly(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """``call(...)`` while an exception propagates: a failure is logged, never raised over the caller's one."""
    try:
        call(*args, **kwargs)
    except Exception:
        logger.exception("routellm: could not record a call that ended early")


class _Tally:
    """What a relayed stream delivered: its text and chunks, and the record each chunk carries (priced once the
    stream ended; a kept cheap answer's record is final before its first chunk)."""

    def __init__(self, engine: RoutingEngine, route: Route) -> None:
        self.engine = engine
        self.route = route
        #: The cascade's cheap attempts, listed before the streaming side's.
        self.cheap: tuple[Attempt, ...] = ()
        self.final_record: ServedDecision | None = None
        self.served: ServedDecision | None = None
        self.chunks: list[Any] = []
        self.texts: list[str] = []

    def kept(self, chunks: list[Any], record: ServedDecision) -> Iterator[tuple[Any, ServedDecision]]:
        """Relay a held answer that passed its check: its record is final."""
        self.final_record = record
        return ((chunk, record) for chunk in chunks)

    def add(self, chunk: Any, served: ServedDecision) -> ServedDecision:
        """Count ``chunk``; the record it carries."""
        self.chunks.append(chunk)
        self.texts.append(self.engine.dispatcher.chunk_text(chunk))
        if self.final_record is not None:
            return self.final_record
        self.served = served
        return self.engine._priced(served, None, self.cheap, self.route.first_side)

    def final(self) -> ServedDecision | None:
        """The stream's record, priced from the whole stream's usage (None when nothing was relayed)."""
        if self.final_record is not None:
            return self.final_record
        if self.served is None:
            return None
        return self.engine._priced(self.served, self.engine.join_chunks(self.chunks), self.cheap, self.route.first_side)

    @property
    def text(self) -> str:
        """The text relayed."""
        return "".join(self.texts)


def held(open_stream: Callable[[Side, ServedDecision], Iterator[Any]]) -> Callable[[Side, ServedDecision], list[Any]]:
    """A call that reads a side's whole stream (closed however it ends): an answer held for an escalation check."""

    def read(side: Side, planned: ServedDecision) -> list[Any]:
        stream = open_stream(side, planned)
        try:
            return list(stream)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    return read


def aheld(
    open_stream: Callable[[Side, ServedDecision], AsyncIterator[Any]],
) -> Callable[[Side, ServedDecision], Awaitable[list[Any]]]:
    """Async :func:`held`."""

    async def read(side: Side, planned: ServedDecision) -> list[Any]:
        async with aclosing(open_stream(side, planned)) as stream:  # type: ignore[type-var]
            return [chunk async for chunk in stream]

    return read


#: Writes of left streams' records still running (a task needs a reference until it is done).
_LEFT_WRITES: set[asyncio.Future[None]] = set()


def _relayed(exc: BaseException, text: str) -> str:
    """The text a call that ``exc`` ended had relayed: ``text``, or for a call that was not streamed the tokens a
    model streamed through the caller's callbacks before it failed (:class:`StreamInterruptedError`)."""
    if not text and isinstance(exc, StreamInterruptedError):
        return exc.partial_text
    return text


def _failed_outcome(exc: ModelCallError) -> Outcome:
    """The outcome of a strong stream that failed before its first chunk: the failure the dispatcher wrapped."""
    cause = exc.__cause__
    return Outcome(error=cause if isinstance(cause, Exception) else exc)


async def _aiter(items: Iterator[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def price_table(prices: Mapping[str, tuple[float, float]] | None) -> CostOf:
    """The price of a call in USD: ``prices`` (USD per million input and output tokens by model name) over the
    shipped table (:func:`routellm_core.data.prices.call_cost`); None without token counts or a known price."""
    table = dict(prices or {})

    def cost_of(model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
        if input_tokens is None or output_tokens is None:
            return None
        try:
            return call_cost(model, input_tokens, output_tokens, prices=table)
        except InvalidInputError as exc:  # not token counts, or prices= naming the model ambiguously: unknown
            logger.warning("routellm: cannot price %r for %r input / %r output tokens: %s", model, input_tokens,
                           output_tokens, exc)  # fmt: skip
            return None

    return cost_of


__all__ = ["ROUTING_FIELDS", "RouteOn", "RoutingEngine", "RoutingOptions", "ToolStep", "aheld", "held", "price_table"]
