"""RouteLLM for LlamaIndex: a ``FunctionCallingLLM`` that sends each call to a strong or a weak LLM, or to one of
N priced LLMs.

A learned router predicts, from the call's routing text, the probability that the strong model's answer beats
the weak model's; calls at or above the threshold go to ``strong``, the rest to ``weak``. With ``models=[...]``
the router predicts each listed model's chance of answering well and the objective picks one
(:class:`~routellm_core.routing.ladder.LadderEngine`). The decision travels with the answer
(``response.additional_kwargs["routellm"]``) and through LlamaIndex instrumentation
(:class:`~llamaindex_routellm.events.RoutingDecisionEvent` inside the router's span, the child's span beneath).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing, closing
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, ValidationError, field_serializer, model_validator
from llama_index.core.callbacks import CallbackManager
from llama_index.core.callbacks.base import BASE_TRACE_EVENT, global_stack_trace
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import LLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from llamaindex_routellm._answers import (
    answer_logprobs,
    answer_usage,
    answer_value,
    join_chunks,
    resampled,
    verification_chat,
    verification_prompt,
)
from llamaindex_routellm._messages import (
    RoutingTextFn,
    conversation_key,
    ends_with_observation,
    issued_keys,
    makes_tool_calls,
    names_action,
    routing_text,
    tool_result_ids,
)
from llamaindex_routellm._models import as_judge, model_label, named_models
from llamaindex_routellm._outputs import answer_text, chunk_text, has_content, tag_response
from llamaindex_routellm.events import RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core.decisions import LadderChoice, Route, RoutingDecision, ServedDecision, Side
from routellm_core.errors import InvalidInputError, reraise_routellm_error, unknown_options_error
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.learning.labelling import TrafficLabelling
from routellm_core.routing.engine import (
    ROUTING_FIELDS,
    RoutingEngine,
    RoutingOptions,
    accepted_keys,
    checked_routing_update,
)
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.policy import RouterSpec, RoutingPolicy, build_policy
from routellm_core.routing.text import RouteOn, prompt_routing_text

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)

R = TypeVar("R", ChatResponse, CompletionResponse)

#: The ``chat_with_tools`` arguments of this context's latest ``_prepare_chat_with_tools``, for the ``chat`` call
#: that follows it with the same ``tools`` object (no private value travels in the public chat kwargs).
_TOOL_REQUEST: ContextVar[tuple[int, Any] | None] = ContextVar("routellm_tool_request", default=None)


#: Answers that issued tool calls remembered per router, for the tool steps that continue them.
ISSUED_KEPT = 4096


class _IssuedAnswers:
    """The records of the latest answers that issued tool calls, by key (bounded, thread-safe): a tool step
    continues on the model that served the call, as LangChain reads it from the AI message. A key two answers
    served by different models share (the same ReAct input run twice, an integration whose call ids repeat) is
    ambiguous: its tool steps are routed anew rather than guessed."""

    def __init__(self, size: int = ISSUED_KEPT) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._records: OrderedDict[str, ServedDecision | None] = OrderedDict()

    def __deepcopy__(self, memo: dict[int, Any]) -> _IssuedAnswers:
        return _IssuedAnswers(self._size)

    def add(self, keys: Iterable[str], record: ServedDecision) -> None:
        """Remember ``record`` under ``keys`` (the oldest forgotten beyond the size)."""
        with self._lock:
            for key in keys:
                held = self._records.get(key, record)
                self._records[key] = record if held is not None and held.model == record.model else None
                self._records.move_to_end(key)
            while len(self._records) > self._size:
                self._records.popitem(last=False)

    def find(self, keys: Iterable[str]) -> ServedDecision | None:
        """The record remembered under the first of ``keys`` that has one (``None`` when that key is ambiguous)."""
        with self._lock:
            return next((self._records[k] for k in keys if k in self._records), None)


@dataclass
class _ToolRequest:
    """The ``chat_with_tools`` arguments, replayed on the chosen child's own ``_prepare_chat_with_tools``."""

    tools: Sequence[BaseTool]
    verbose: bool = False
    allow_parallel_tool_calls: bool = False
    tool_required: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _unknown_options(owner: str, given: Iterable[Any], valid: Collection[str]) -> None:
    """Raise for the keys of ``given`` that are not in ``valid`` (LlamaIndex's ``to_dict`` adds ``class_name``).

    Raises:
        InvalidInputError: Naming each unknown key and the nearest valid one.
    """
    unknown = [key for key in given if key not in valid and key != "class_name"]
    if unknown:
        raise unknown_options_error(owner, unknown, valid)


def _known(size: int | None) -> bool:
    """Whether a child states a size (LlamaIndex writes an unknown one as -1)."""
    return size is not None and size > 0


def _min_known(sizes: Iterable[int | None], default: int) -> int:
    """The smallest of the children's sizes, ignoring unknown (non-positive) values."""
    known = [v for v in sizes if v is not None and _known(v)]
    return min(known) if known else default


def _window(metas: Sequence[LLMMetadata]) -> tuple[int, int]:
    """``(context_window, num_output)`` every child honours: the smallest output size, and a window whose room for
    the prompt (window minus output, what LlamaIndex's prompt helper fills) is the smallest of the children's rooms
    (each child's own output size reserved, or the smallest stated one where it states none); not each size's
    smallest, which could pair one child's window with another's smaller output and overflow the first."""
    num_output = _min_known((m.num_output for m in metas), DEFAULT_NUM_OUTPUTS)
    rooms = [
        m.context_window - (m.num_output if _known(m.num_output) else num_output)
        for m in metas
        if _known(m.context_window)
    ]
    return (min(rooms) + num_output if rooms else DEFAULT_CONTEXT_WINDOW), num_output


def _calls_tools(llm: LLM) -> bool:
    """Whether a child can call tools: a ``FunctionCallingLLM`` whose metadata says so."""
    return isinstance(llm, FunctionCallingLLM) and llm.metadata.is_function_calling_model


@contextlib.contextmanager
def _child_trace(child: LLM, own: CallbackManager) -> Iterator[None]:
    """Forget the legacy trace entries a child's call adds beneath the router's call, once it ended.

    LlamaIndex resets a callback manager's trace map only when that manager opens a top-level trace. A child called
    inside the router's trace never does, so its map would grow by the ids of every routed call, forever, whether
    or not it has handlers (once ``Settings.callback_manager`` is set, every new LLM's manager shares its handlers).
    Handlers read only the map of the manager that opened the top-level trace, when it ends. So entries are kept
    when the child's manager is the router's own, or the manager of the trace the call runs in (a query engine's,
    given the same manager: its handlers read them, and its next top-level trace resets them); else each call
    removes the ids it added (a set difference: calls that overlap on one child remove each other's at worst, never
    keep one).
    """
    manager = getattr(child, "callback_manager", None)
    if not isinstance(manager, CallbackManager) or manager is own or _opened_the_trace(manager):
        yield
        return
    trace_map = manager.trace_map
    before = {key: set(ids) for key, ids in list(trace_map.items())}
    try:
        yield
    finally:
        if manager.trace_map is trace_map:  # else a top-level trace of the child's own reset it meanwhile
            for key in list(trace_map):
                known = before.get(key, set())
                ids = trace_map.get(key)
                if ids is None:
                    continue
                ids[:] = [i for i in ids if i in known]
                if not ids:
                    trace_map.pop(key, None)


def _opened_the_trace(manager: CallbackManager) -> bool:
    """Whether ``manager`` opened the legacy trace the current call runs in (its map starts at that trace's first
    event: a top-level trace resets the map of the manager that opens it)."""
    stack = global_stack_trace.get()
    return len(stack) > 1 and stack[1] in manager.trace_map.get(BASE_TRACE_EVENT, ())


def _primed(stream: Iterator[R]) -> Iterator[R]:
    """Fetch the first chunk now (inside the router's span, so a failure before any output raises from the call
    itself), then relay the rest; the underlying stream is closed however the relay ends."""
    try:
        first = next(stream)
    except StopIteration:
        return iter(())

    def relay() -> Iterator[R]:
        try:
            yield first
            yield from stream
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    return relay()


async def _aprimed(stream: AsyncIterator[R]) -> AsyncIterator[R]:
    """Async :func:`_primed`."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = None

    async def relay() -> AsyncIterator[R]:
        try:
            if first is None:
                return
            yield first
            async for chunk in stream:
                yield chunk
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    return relay()


def _closing_chunk(last: R, relayed: ServedDecision, final: list[ServedDecision]) -> tuple[R, ServedDecision] | None:
    """The chunk that ends a stream with its priced record: the last chunk again with an empty delta (its message
    and ``raw``, where a provider's usage is), tagged with the record the engine priced from the whole stream
    (``final``, filled by its ``on_final``); None when the last chunk already carries it (a held answer relayed as
    it passed its check)."""
    if not final or final[-1] is relayed:
        return None
    return tag_response(last.model_copy(update={"delta": ""}), final[-1]), final[-1]


class RouteLLM(RoutingOptions, FunctionCallingLLM):
    """An LLM that routes every call to a strong or a weak LlamaIndex LLM with a learned win-rate router, or, with
    ``models=[...]``, to one of N priced LLMs.

    Use it wherever LlamaIndex takes an ``llm``: ``index.as_query_engine(llm=router)``, chat engines,
    ``FunctionAgent(llm=router)`` / ``AgentWorkflow`` (each agent step is routed anew, except a tool step: it
    continues on the model that made the call), ``Settings.llm``.

    Args:
        strong: The stronger, costlier LLM (two models; not with ``models``).
        weak: The cheaper LLM (two models; not with ``models``).
        models: Instead of ``strong`` / ``weak``: N LLMs, a list (named by their ``metadata.model_name``) or a
            dict name -> LLM. Each call goes to the model ``objective`` picks from the router's predicted success
            of every model and each one's expected cost (``prices=``, over the shipped price table), and runs on
            a pair: the chosen model and the best-predicted costlier one above it, the target of ``escalate`` and
            ``fallback`` (see :class:`~routellm_core.routing.ladder.LadderEngine`). Needs a router that predicts
            each model's success (the ``"default"``); models it has no profile for need ``priors=``.
        router: Shipped pretrained name (``"default"``), checkpoint folder, registry name (``"random"``...),
            a ``WinRateModel`` instance, or a ``RoutingPolicy`` (to share one policy and its micro-batching).
        threshold: Send to strong when P(strong wins) >= threshold; when neither this nor ``strong_fraction`` is
            given, the router's calibrated threshold for half of its calibration traffic (0.5 without calibration).
        strong_fraction: Instead of a threshold, the target fraction of strong calls (needs a router with
            shipped calibration, such as ``"default"``).
        route_on: ``"last_user"`` (latest user message), ``"conversation"`` (user and assistant turns),
            ``"rag_query"`` (the query inside a query engine's prompt, recommended with ``as_query_engine``) or a
            callable ``messages -> str``.
        fallback: If the chosen model fails (raises, times out, returns an empty message, or a stream fails
            before its first chunk), answer with the other model and record it. Off by default: the failure
            raises :class:`~routellm_core.errors.ModelCallError` naming the chosen model.
        embedder: Embedder to load the router with (when ``router`` is a name or path).
        callback_manager: LlamaIndex callback manager.
        **kwargs: The other routing options (``feedback``, ``judge``, ``label_fraction``, ``label_seed``,
            ``strong_name``, ``weak_name``, ``prices``, ``escalate``; with ``models``: ``objective``, ``priors``:
            see :class:`~routellm_core.routing.engine.RoutingOptions`; ``tool_step="continue"``, the default: an
            agent's tool step continues on the model that served the tool call, found by the call's id, or for
            ReAct by the input of the step that named the action) and LlamaIndex's ``LLM`` fields.

    Raises:
        InvalidInputError: A keyword argument that is no option or ``LLM`` field (the message names the nearest
            one), both ``models`` and ``strong`` / ``weak``, neither, ``objective`` / ``priors`` without
            ``models``, ``threshold`` / ``strong_fraction`` / ``strong_name`` / ``weak_name`` with ``models``, or a
            ladder the core refuses (a model without a price, a repeated name...).
        UnknownModelError: With ``models``, a model the router has no profile and ``priors`` no prior for.
        InvalidThresholdError: Both ``threshold`` and ``strong_fraction``, or a value outside [0, 1].
        UnknownRouterError: ``router`` names nothing.
        CheckpointError: The checkpoint is missing, corrupt, or has no calibration for ``strong_fraction``.

    Example:
        >>> from llamaindex_routellm import RouteLLM
        >>> llm = RouteLLM(strong=OpenAI(model="gpt-4o"), weak=OpenAI(model="gpt-4o-mini"), threshold=0.5)
        >>> response = llm.complete("Prove that there are infinitely many primes.")
        >>> response.additional_kwargs["routellm"]
        {'decision_id': '3b7e…', 'router': 'mf', 'win_rate': 0.71, 'threshold': 0.5, 'choice': 'strong', ...}
        >>> ladder = RouteLLM(models=[mini, gpt4o, o3], objective=Objective.budget(2.0))  # USD per 1k calls
        >>> ladder.complete("...").additional_kwargs["routellm"]["ladder"]["chosen"]
        'gpt-4o-mini'
    """

    strong: LLM | None = Field(
        default=None, description="The stronger, costlier LLM, called when the router predicts it wins."
    )
    weak: LLM | None = Field(default=None, description="The cheaper LLM, called for every other request.")
    models: dict[str, LLM] | None = Field(
        default=None, description="Instead of strong/weak: N priced LLMs by name, one picked per call."
    )
    route_on: RouteOn | RoutingTextFn = Field(
        default="last_user",
        description="Routing text: 'last_user', 'conversation', 'rag_query', or a callable (messages) -> str.",
    )

    _engine: RoutingEngine | LadderEngine = PrivateAttr()
    _issued: _IssuedAnswers = PrivateAttr(default_factory=_IssuedAnswers)

    def __init__(
        self,
        strong: LLM | None = None,
        weak: LLM | None = None,
        router: RouterSpec | RoutingPolicy = "default",
        threshold: float | None = None,
        strong_fraction: float | None = None,
        *,
        models: Sequence[LLM] | Mapping[str, LLM] | None = None,
        **kwargs: Any,
    ) -> None:
        """Validate the fields; the router's own errors (unknown router, bad threshold...) keep their type. The
        ``threshold`` field holds the threshold in force (``None`` under ``strong_fraction`` and with
        ``models``)."""
        _unknown_options("RouteLLM", kwargs, accepted_keys(type(self)))  # before a router is loaded
        if models is not None:
            self._init_ladder(strong, weak, router, threshold, strong_fraction, models, kwargs)
            return
        if strong is None or weak is None:
            raise InvalidInputError(
                "RouteLLM needs strong= and weak= LLMs (two models) or models=[...] (N priced models); "
                f"missing {'strong=' if strong is None else 'weak='}"
            )
        for key in ("objective", "priors"):
            if kwargs.get(key) is not None:
                raise InvalidInputError(
                    f"RouteLLM: {key}= picks among models=[...]; strong= and weak= are routed by threshold= or "
                    "strong_fraction="
                )
        policy = build_policy(router, threshold, strong_fraction, kwargs.get("embedder"))
        try:
            super().__init__(
                strong=strong,
                weak=weak,
                router=router,
                threshold=None if policy.strong_fraction is not None else policy.threshold,
                strong_fraction=policy.strong_fraction,
                **kwargs,
            )
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise
        self._build_engine(policy)

    @model_validator(mode="before")
    @classmethod
    def _known_options(cls, data: Any) -> Any:
        """Refuse a keyword argument that is no field (a misspelt option would otherwise be ignored silently)."""
        if isinstance(data, Mapping):
            _unknown_options("RouteLLM", data, accepted_keys(cls))
        return data

    def _init_ladder(
        self,
        strong: LLM | None,
        weak: LLM | None,
        router: RouterSpec | RoutingPolicy,
        threshold: float | None,
        strong_fraction: float | None,
        models: Sequence[LLM] | Mapping[str, LLM],
        kwargs: dict[str, Any],
    ) -> None:
        """``__init__`` with ``models=[...]``: the N named LLMs and the :class:`LadderEngine` (which refuses a
        threshold, a strong fraction, a model without a price or a profile)."""
        if strong is not None or weak is not None:
            raise InvalidInputError(
                "RouteLLM: give either strong= and weak= (two models) or models=[...] (N priced models), not both"
            )
        for key in ("strong_name", "weak_name"):
            if kwargs.get(key) is not None:
                raise InvalidInputError(
                    f"RouteLLM: {key}= names a side of two models; with models= pass a dict name -> LLM to name them"
                )
        try:
            super().__init__(
                models=named_models(models),
                router=router,
                threshold=threshold,
                strong_fraction=strong_fraction,
                **kwargs,
            )
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise
        self._build_engine(None)

    def _build_engine(self, policy: RoutingPolicy | None) -> None:
        """Build the engine (dispatcher and labelling) from the fields around ``policy`` (with ``models``: built
        from ``router`` when ``None``)."""
        common: dict[str, Any] = {
            "owner": "RouteLLM",
            "is_empty": lambda response: not has_content(response),
            "chunk_text": chunk_text,
            "answer_text": answer_text,
            "judge": as_judge(self.judge),
            "on_fallback": self._on_fallback,
            "policy": policy,
            "second_name": model_label(self._second_llm()) if self.escalate and self.escalate.second else None,
            "answer_value": answer_value,
            "usage": answer_usage,
            "join_chunks": join_chunks,
            "logprobs": answer_logprobs,
        }
        if self.models is not None:
            self._engine = LadderEngine(self, list(self.models), **common)
            return
        names: dict[Side, str] = {
            "strong": self.strong_name or model_label(self._child("strong")),
            "weak": self.weak_name or model_label(self._child("weak")),
        }
        self._engine = RoutingEngine(self, names, **common)

    def _cheap_llm(self, record: ServedDecision | None) -> LLM:
        """The LLM answering on the weak side of a call (resampled and asked the self-verification question): the
        weak LLM; among N models, the one ``record`` names (the chosen model of its pair)."""
        if self.models is None:
            return self.weak  # type: ignore[return-value]
        if record is None:
            raise InvalidInputError("RouteLLM: the cheap model of a call among N models is named by its record")
        return self.models[record.model]

    def _second_llm(self, record: ServedDecision | None = None) -> LLM:
        """The LLM giving the escalation check's second cheap answer: ``Escalation.second``, else the weak LLM
        (among N models: the chosen model, named by ``record``) sampled again."""
        second = self.escalate.second if self.escalate is not None else None
        if second is None:
            return resampled(self._cheap_llm(record))
        if not isinstance(second, LLM):
            raise InvalidInputError(f"escalate.second must be a LlamaIndex LLM, got {type(second).__name__}")
        return second

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> RouteLLM:
        """A copy; changed routing fields (or ``models``) rebuild the engine (and the policy when the router or its
        threshold changed).

        Raises:
            InvalidInputError: ``update`` names something that is no field.
        """
        _unknown_options("RouteLLM.model_copy", update or (), type(self).model_fields)
        if update and update.get("models") is not None:
            if self.models is None:
                raise InvalidInputError("RouteLLM: a copy of a two-model router cannot take models=; build a new one")
            update = {**update, "models": named_models(update["models"])}
        # model_copy runs no validators: read the routing options as the constructor does (route_on may be a
        # callable here, checked when routing)
        update = checked_routing_update(update, skip=frozenset({"route_on"}))
        copy = super().model_copy(update=update, deep=deep)
        copy._issued = _IssuedAnswers()  # its own tool calls (a copy may answer with other models)
        changed = set(update or ())
        if changed & (ROUTING_FIELDS | {"models"}):
            policy = copy._engine.policy
            if changed & {"router", "threshold", "strong_fraction", "embedder"}:
                threshold = None if "strong_fraction" in changed and "threshold" not in changed else copy.threshold
                policy = build_policy(copy.router, threshold, copy.strong_fraction, copy.embedder)
            copy._build_engine(policy)
        return copy

    @property
    def feedback_store(self) -> FeedbackStore | None:
        """The feedback store (``feedback=``), to attach verdicts by decision id; ``None`` without one."""
        return self._engine.feedback_store

    @property
    def labelling(self) -> TrafficLabelling | None:
        """The labelling of this LLM's calls (its labeller's ``stats``, ``flush()``...), if configured."""
        return self._engine.labelling

    @classmethod
    def class_name(cls) -> str:
        return "RouteLLM"

    @field_serializer("route_on")
    def _serialize_route_on(self, route_on: Any) -> str:
        return route_on if isinstance(route_on, str) else getattr(route_on, "__qualname__", repr(route_on))

    # ---- properties --------------------------------------------------------------------------------------
    @property
    def policy(self) -> RoutingPolicy:
        """The policy (router + threshold in force) deciding each call (the name LangChain's models use)."""
        return self._engine.policy

    @property
    def routing_policy(self) -> RoutingPolicy:
        """The policy (router + threshold in force) deciding each call; same as :attr:`policy`."""
        return self._engine.policy

    @property
    def router_name(self) -> str:
        """The router as decisions name it: ``"default"``, a checkpoint path as given, or an instance's registry name
        (``"difficulty"``, ``"mf"``...)."""
        return self._engine.policy.router_name

    @property
    def metadata(self) -> LLMMetadata:
        """Limits every child honours: the smallest output size and room for the prompt (:func:`_window`); function
        calling when every child supports it."""
        metas = [child.metadata for child in self._children()]
        roles = {meta.system_role for meta in metas}
        context_window, num_output = _window(metas)
        return LLMMetadata(
            context_window=context_window,
            num_output=num_output,
            is_chat_model=True,
            is_function_calling_model=self._supports_tools(),
            model_name=f"routellm:{self.router_name}",
            system_role=metas[0].system_role if len(roles) == 1 else MessageRole.SYSTEM,
        )

    def to_payload(self) -> dict[str, Any]:
        """Non-sensitive description for instrumentation: metadata plus the router and the two models (among N
        models: their names and the objective)."""
        payload = {**super().to_payload(), "router": self.router_name}
        if isinstance(self._engine, LadderEngine):
            return {**payload, "models": list(self._engine.names), "objective": str(self._engine.objective)}
        return {
            **payload,
            "threshold": self._engine.policy.threshold,
            "strong_model": self._engine.names["strong"],
            "weak_model": self._engine.names["weak"],
        }

    def _children(self) -> list[LLM]:
        """The child LLMs: strong and weak, or the N listed models."""
        if self.models is not None:
            return list(self.models.values())
        return [self.strong, self.weak]  # type: ignore[list-item]

    def _supports_tools(self) -> bool:
        return all(_calls_tools(child) for child in self._children())

    def _child(self, side: Side) -> LLM:
        return self.strong if side == "strong" else self.weak  # type: ignore[return-value]

    def _answering(self, side: Side, record: ServedDecision) -> LLM:
        """The LLM to call for ``side`` of a call: the strong or weak child; among N models, the one ``record``
        names (the engine's record of that side's attempt)."""
        return self._child(side) if self.models is None else self.models[record.model]

    def _other_llm(self, route: Route, side: Side) -> LLM:
        """The LLM standing for ``side`` under ``route`` (the labeller's other answer): the strong or weak child;
        among N models, that side of the route's pair."""
        if isinstance(self._engine, LadderEngine) and self.models is not None:
            return self.models[self._engine.name_of(route, side)]
        return self._child(side)

    # ---- routing -----------------------------------------------------------------------------------------
    def decide(self, messages: str | Sequence[ChatMessage]) -> RoutingDecision:
        """The decision a call with these messages (or this completion prompt) would get (among N models: the
        chosen model's side in its pair; :meth:`choose_model` says which model).

        Calls no model and emits no event (under ``Objective.budget`` the request joins the controller's window).

        Raises:
            InvalidInputError: Unroutable input (see :func:`~llamaindex_routellm._messages.routing_text`).
        """
        if isinstance(self._engine, LadderEngine):
            return self._engine.route(self._routing_text(messages)).decision
        return self._engine.policy.decide(self._routing_text(messages))

    async def adecide(self, messages: str | Sequence[ChatMessage]) -> RoutingDecision:
        """Async :meth:`decide`, micro-batched with the event loop's other routing calls."""
        if isinstance(self._engine, LadderEngine):
            return (await self._engine.aroute(self._routing_text(messages))).decision
        return await self._engine.policy.adecide(self._routing_text(messages))

    def choose_model(self, messages: str | Sequence[ChatMessage]) -> LadderChoice:
        """Among N models: the model a call with these messages (or this completion prompt) would go to, with
        the predictions and expected costs it was picked from. Calls no model and emits no event (under
        ``Objective.budget`` the request joins the controller's window, as a call's would).

        Raises:
            InvalidInputError: A two-model router (use :meth:`decide`), or unroutable input.
        """
        if not isinstance(self._engine, LadderEngine):
            raise InvalidInputError("RouteLLM.choose_model picks among models=[...]; with strong=/weak= use decide()")
        return self._engine.choice(self._routing_text(messages))

    def _routing_text(self, messages: str | Sequence[ChatMessage]) -> str:
        if isinstance(messages, str):  # a completion prompt: one user message, as in LangChain
            messages = [ChatMessage(role=MessageRole.USER, content=prompt_routing_text(messages))]
        return routing_text(messages, self.route_on)

    def _announce(self, route: Route) -> Route:
        """Emit the call's :class:`RoutingDecisionEvent`: the side and model it goes to, as its record names them."""
        ladder, served = route.ladder, route.first_side  # a continued request stays where a fallback moved it
        model = ladder.chosen if ladder is not None and served == route.choice else self._model_name(route, served)
        dispatcher.event(
            RoutingDecisionEvent(
                router=route.decision.router,
                win_rate=route.decision.win_rate,
                threshold=route.decision.threshold,
                choice=route.choice,
                served=served,
                model=model,
                continued=route.continued,
                decision_id=route.id,
                ladder=None if ladder is None else ladder.as_dict(),
            )
        )
        return route

    def _model_name(self, route: Route, side: Side) -> str:
        """The name records give the model standing for ``side`` under ``route`` (among N models: that side of the
        route's pair)."""
        if isinstance(self._engine, LadderEngine):
            return self._engine.name_of(route, side)
        return self._engine.names[side]

    def _route(self, messages: str | Sequence[ChatMessage]) -> Route:
        if (route := self._engine.continued(self._tool_step_record(messages))) is not None:
            return self._announce(route)
        return self._announce(self._engine.route(self._routing_text(messages)))

    async def _aroute(self, messages: str | Sequence[ChatMessage]) -> Route:
        if (route := self._engine.continued(self._tool_step_record(messages))) is not None:
            return self._announce(route)
        return self._announce(await self._engine.aroute(self._routing_text(messages)))

    # ---- agents' tool steps: continued on the model that made the call ------------------------------------
    def _tool_step_record(self, messages: str | Sequence[ChatMessage]) -> ServedDecision | None:
        """For a step whose last message answers a tool call (a tool message, or a ReAct observation), the record
        of the answer that made the call, while this router remembers it."""
        if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
            return None  # a completion prompt (or input the routing text refuses by name)
        items = list(messages)
        if not all(isinstance(m, ChatMessage) for m in items):
            return None
        keys = [f"call:{k}" for k in tool_result_ids(items)]
        if not keys and ends_with_observation(items):
            keys = [f"react:{conversation_key(items[:-2])}"]  # the input of the step that named the action
        return self._issued.find(keys) if keys else None

    def _remember(
        self,
        messages: Sequence[ChatMessage] | None,
        response: ChatResponse | CompletionResponse,
        record: ServedDecision,
    ) -> None:
        """Remember the record of a chat answer (tagged with it) that makes tool calls, by their ids as the agent
        reads them (the serving child's parser), or that names a ReAct action, by the step's input."""
        if messages is None or not isinstance(response, ChatResponse):
            return
        ids = set(issued_keys(response.message))
        if not ids and makes_tool_calls(response.message):  # calls without ids: the ids the agent will read
            # (a child whose parser refuses this answer raises again when the agent asks it)
            with contextlib.suppress(Exception):
                calls = self.get_tool_calls_from_response(response, error_on_no_tool_call=False)
                ids.update(c.tool_id for c in calls)
        keys = [f"call:{k}" for k in sorted(i for i in ids if isinstance(i, str) and i)]
        if names_action(response.message):
            keys.append(f"react:{conversation_key(messages)}")
        if keys:
            self._issued.add(keys, record)

    def _on_fallback(self, record: ServedDecision, exc: BaseException) -> None:
        dispatcher.event(
            RoutingFallbackEvent(
                failed_choice=record.failed_side or record.choice,
                failed_model=record.fallback_from or "",
                fallback_choice=record.served,
                fallback_model=record.model,
                error=f"{type(exc).__name__}: {exc}",
                decision_id=record.id,
            )
        )

    # ---- calls through the core engine ------------------------------------------------------------------
    def _traced_check(
        self, verify: Callable[[ServedDecision, Any], Any] | None
    ) -> Callable[[ServedDecision, Any], Any] | None:
        """``verify`` (the cheap LLM asked the self-verification question), its legacy trace entries forgotten."""
        if verify is None:
            return None

        def check(record: ServedDecision, answer: Any) -> Any:
            with _child_trace(self._cheap_llm(record), self.callback_manager):
                return verify(record, answer)

        return check

    def _atraced_check(
        self, verify: Callable[[ServedDecision, Any], Awaitable[Any]] | None
    ) -> Callable[[ServedDecision, Any], Awaitable[Any]] | None:
        """Async :meth:`_traced_check`."""
        if verify is None:
            return None

        async def check(record: ServedDecision, answer: Any) -> Any:
            with _child_trace(self._cheap_llm(record), self.callback_manager):
                return await verify(record, answer)

        return check

    def _run(
        self,
        route: Route,
        call: Callable[[LLM], R],
        verify: Callable[[ServedDecision, Any], Any] | None = None,
        messages: Sequence[ChatMessage] | None = None,
    ) -> R:
        def called(child: LLM) -> R:
            with _child_trace(child, self.callback_manager):
                return call(child)

        def attempt(side: Side, record: ServedDecision) -> R:
            return called(self._answering(side, record))

        def other(side: Side) -> str:
            return answer_text(called(self._other_llm(route, side)))

        def second(record: ServedDecision) -> R:
            return called(self._second_llm(record))

        response, record = self._engine.call(
            route, attempt, other_answer=other, second=second, verify=self._traced_check(verify)
        )
        tagged = tag_response(response, record)
        self._remember(messages, tagged, record)
        return tagged

    async def _arun(
        self,
        route: Route,
        call: Callable[[LLM], Awaitable[R]],
        verify: Callable[[ServedDecision, Any], Awaitable[Any]] | None = None,
        messages: Sequence[ChatMessage] | None = None,
    ) -> R:
        async def called(child: LLM) -> R:
            with _child_trace(child, self.callback_manager):
                return await call(child)

        async def attempt(side: Side, record: ServedDecision) -> R:
            return await called(self._answering(side, record))

        async def other(side: Side) -> str:
            return answer_text(await called(self._other_llm(route, side)))

        async def second(record: ServedDecision) -> R:
            return await called(self._second_llm(record))

        response, record = await self._engine.acall(
            route, attempt, other_answer=other, second=second, verify=self._atraced_check(verify)
        )
        tagged = tag_response(response, record)
        self._remember(messages, tagged, record)
        return tagged

    def _stream(
        self,
        route: Route,
        start: Callable[[LLM], Iterator[R]],
        verify: Callable[[ServedDecision, Any], Any] | None = None,
        messages: Sequence[ChatMessage] | None = None,
    ) -> Iterator[R]:
        def read(child: LLM) -> list[R]:
            with _child_trace(child, self.callback_manager):
                return list(start(child))

        def open_stream(side: Side, record: ServedDecision) -> Iterator[R]:
            child = self._answering(side, record)
            with _child_trace(child, self.callback_manager):
                yield from start(child)

        def other(side: Side) -> str:
            return "".join(map(chunk_text, read(self._other_llm(route, side))))

        def second(record: ServedDecision) -> Any:
            return join_chunks(read(self._second_llm(record)))

        def relay() -> Iterator[R]:
            final: list[ServedDecision] = []  # the record priced from the whole stream, once it ended
            stream = self._engine.stream(
                route,
                open_stream,
                other_answer=other,
                second=second,
                verify=self._traced_check(verify),
                on_final=final.append,
            )
            last: tuple[R, ServedDecision] | None = None
            with closing(stream) as chunks:
                for chunk, record in chunks:
                    last = (tag_response(chunk, record), record)
                    yield last[0]
            if last is not None and (ending := self._ended(messages, last, final)) is not None:
                yield ending

        return _primed(relay())

    async def _astream(
        self,
        route: Route,
        start: Callable[[LLM], Awaitable[AsyncIterator[R]]],
        verify: Callable[[ServedDecision, Any], Awaitable[Any]] | None = None,
        messages: Sequence[ChatMessage] | None = None,
    ) -> AsyncIterator[R]:
        async def read(child: LLM) -> list[R]:
            with _child_trace(child, self.callback_manager):
                return [c async for c in await start(child)]

        async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[R]:
            child = self._answering(side, record)
            with _child_trace(child, self.callback_manager):
                stream = await start(child)
                try:
                    async for chunk in stream:
                        yield chunk
                finally:  # at once, not when the event loop finalizes it (a child's stream need not be a generator)
                    aclose = getattr(stream, "aclose", None)
                    if aclose is not None:
                        await aclose()

        async def other(side: Side) -> str:
            return "".join(map(chunk_text, await read(self._other_llm(route, side))))

        async def second(record: ServedDecision) -> Any:
            return join_chunks(await read(self._second_llm(record)))

        async def tagged() -> AsyncIterator[R]:
            final: list[ServedDecision] = []
            stream = self._engine.astream(
                route,
                open_stream,
                other_answer=other,
                second=second,
                verify=self._atraced_check(verify),
                on_final=final.append,
            )
            last: tuple[R, ServedDecision] | None = None
            async with aclosing(stream) as chunks:
                async for chunk, record in chunks:
                    last = (tag_response(chunk, record), record)
                    yield last[0]
            if last is not None and (ending := self._ended(messages, last, final)) is not None:
                yield ending

        return await _aprimed(tagged())

    def _ended(
        self, messages: Sequence[ChatMessage] | None, last: tuple[R, ServedDecision], final: list[ServedDecision]
    ) -> R | None:
        """A stream that ended: remember its final response (its closing chunk, else its last chunk) and return the
        closing chunk to relay, if any (:func:`_closing_chunk`)."""
        ending = _closing_chunk(*last, final)
        self._remember(messages, *(ending or last))
        return None if ending is None else ending[0]

    # ---- child calls -------------------------------------------------------------------------------------
    @staticmethod
    def _tool_kwargs(
        child: LLM, messages: Sequence[ChatMessage], request: _ToolRequest, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The chosen child's own chat kwargs for a tool call (its tool schema format, tool_choice...)."""
        if not isinstance(child, FunctionCallingLLM):
            raise InvalidInputError(f"{model_label(child)!r} is not a FunctionCallingLLM; it cannot call tools")
        return child._prepare_chat_with_tools_compat(
            request.tools,
            chat_history=list(messages),
            verbose=request.verbose,
            allow_parallel_tool_calls=request.allow_parallel_tool_calls,
            tool_required=request.tool_required,
            **{**request.extra, **kwargs},
        )

    def _child_chat(
        self, child: LLM, messages: Sequence[ChatMessage], request: _ToolRequest | None, kwargs: dict[str, Any]
    ) -> ChatResponse:
        if request is None:
            return child.chat(messages, **kwargs)
        response = child.chat(**self._tool_kwargs(child, messages, request, kwargs))
        return child._validate_chat_with_tools_response(  # type: ignore[attr-defined,no-any-return]
            response, request.tools, allow_parallel_tool_calls=request.allow_parallel_tool_calls, **request.extra
        )

    async def _child_achat(
        self, child: LLM, messages: Sequence[ChatMessage], request: _ToolRequest | None, kwargs: dict[str, Any]
    ) -> ChatResponse:
        if request is None:
            return await child.achat(messages, **kwargs)
        response = await child.achat(**self._tool_kwargs(child, messages, request, kwargs))
        return child._validate_chat_with_tools_response(  # type: ignore[attr-defined,no-any-return]
            response, request.tools, allow_parallel_tool_calls=request.allow_parallel_tool_calls, **request.extra
        )

    def _child_stream_chat(
        self, child: LLM, messages: Sequence[ChatMessage], request: _ToolRequest | None, kwargs: dict[str, Any]
    ) -> ChatResponseGen:
        if request is None:
            return child.stream_chat(messages, **kwargs)
        return child.stream_chat(**self._tool_kwargs(child, messages, request, kwargs))

    async def _child_astream_chat(
        self, child: LLM, messages: Sequence[ChatMessage], request: _ToolRequest | None, kwargs: dict[str, Any]
    ) -> ChatResponseAsyncGen:
        if request is None:
            return await child.astream_chat(messages, **kwargs)
        return await child.astream_chat(**self._tool_kwargs(child, messages, request, kwargs))

    def _pop_tool_request(self, kwargs: dict[str, Any]) -> _ToolRequest | None:
        """The tool request of this chat call: the one ``_prepare_chat_with_tools`` recorded for these ``tools``,
        or, for a caller that passed ``tools`` itself, one with default options."""
        tools = kwargs.pop("tools", None)
        if tools is None:
            return None
        entry = _TOOL_REQUEST.get()
        if entry is not None and entry[0] == id(self) and entry[1].tools is tools:
            _TOOL_REQUEST.set(None)
            return entry[1]  # type: ignore[no-any-return]
        return _ToolRequest(tools=tools)

    # ---- chat --------------------------------------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route on the messages, then chat with the chosen model."""
        request = self._pop_tool_request(kwargs)
        decision = self._route(messages)
        return self._run(
            decision,
            lambda child: self._child_chat(child, messages, request, kwargs),
            lambda record, answer: self._cheap_llm(record).chat(verification_chat(messages, answer)),
            messages,
        )

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async :meth:`chat`."""
        request = self._pop_tool_request(kwargs)
        decision = await self._aroute(messages)
        return await self._arun(
            decision,
            lambda child: self._child_achat(child, messages, request, kwargs),
            lambda record, answer: self._cheap_llm(record).achat(verification_chat(messages, answer)),
            messages,
        )

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Route on the messages, then stream the chosen model's answer (its first chunk is fetched now)."""
        request = self._pop_tool_request(kwargs)
        decision = self._route(messages)
        return self._stream(
            decision,
            lambda child: self._child_stream_chat(child, messages, request, kwargs),
            lambda record, answer: self._cheap_llm(record).chat(verification_chat(messages, answer)),
            messages,
        )

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Async :meth:`stream_chat`."""
        request = self._pop_tool_request(kwargs)
        decision = await self._aroute(messages)
        return await self._astream(
            decision,
            lambda child: self._child_astream_chat(child, messages, request, kwargs),
            lambda record, answer: self._cheap_llm(record).achat(verification_chat(messages, answer)),
            messages,
        )

    # ---- completion: derived from the child's chat when the child is a chat model -------------------------
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Route on the prompt, then complete with the chosen model."""
        decision = self._route(prompt)

        def call(child: LLM) -> CompletionResponse:
            if child.metadata.is_chat_model:
                return chat_to_completion_decorator(child.chat)(prompt, **kwargs)
            return child.complete(prompt, formatted=formatted, **kwargs)

        return self._run(
            decision, call, lambda record, answer: self._cheap_llm(record).complete(verification_prompt(prompt, answer))
        )

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Async :meth:`complete`."""
        decision = await self._aroute(prompt)

        async def call(child: LLM) -> CompletionResponse:
            if child.metadata.is_chat_model:
                return await achat_to_completion_decorator(child.achat)(prompt, **kwargs)
            return await child.acomplete(prompt, formatted=formatted, **kwargs)

        return await self._arun(
            decision,
            call,
            lambda record, answer: self._cheap_llm(record).acomplete(verification_prompt(prompt, answer)),
        )

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Route on the prompt, then stream the chosen model's completion."""
        decision = self._route(prompt)

        def start(child: LLM) -> CompletionResponseGen:
            if child.metadata.is_chat_model:
                return stream_chat_to_completion_decorator(child.stream_chat)(prompt, **kwargs)
            return child.stream_complete(prompt, formatted=formatted, **kwargs)

        return self._stream(
            decision,
            start,
            lambda record, answer: self._cheap_llm(record).complete(verification_prompt(prompt, answer)),
        )

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        """Async :meth:`stream_complete`."""
        decision = await self._aroute(prompt)

        async def start(child: LLM) -> CompletionResponseAsyncGen:
            if child.metadata.is_chat_model:
                return await astream_chat_to_completion_decorator(child.astream_chat)(prompt, **kwargs)
            return await child.astream_complete(prompt, formatted=formatted, **kwargs)

        return await self._astream(
            decision,
            start,
            lambda record, answer: self._cheap_llm(record).acomplete(verification_prompt(prompt, answer)),
        )

    # ---- tool calling ------------------------------------------------------------------------------------
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Collect the messages and defer the tool formatting to the chosen child's own
        ``_prepare_chat_with_tools`` (each provider has its own tool schema), which runs once routed."""
        if self.models is not None and not self._supports_tools():
            lacking = [name for name, llm in self.models.items() if not _calls_tools(llm)]
            raise InvalidInputError(
                f"tool calling needs every listed model to call functions; {lacking} are not FunctionCallingLLMs "
                "with function calling"
            )
        if not self._supports_tools():
            strong, weak = model_label(self._child("strong")), model_label(self._child("weak"))
            raise InvalidInputError(
                f"tool calling needs two function-calling children; strong {strong!r} and weak {weak!r} are not both "
                "FunctionCallingLLMs with function calling"
            )
        messages = list(chat_history or [])
        if user_msg:
            messages.append(
                ChatMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str) else user_msg
            )
        request = _ToolRequest(
            tools=tools,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            tool_required=tool_required,
            extra=kwargs,
        )
        _TOOL_REQUEST.set((id(self), request))
        return {"messages": messages, "tools": tools}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """Parse tool calls with the child that wrote the response (``additional_kwargs["routellm"]``;
        the strong child's parser for a response without that record; among N models, the model the record names,
        else the first listed)."""
        record = response.additional_kwargs.get("routellm") or {}
        if self.models is not None:
            child = self.models.get(record.get("model", "")) or next(iter(self.models.values()))
        else:
            child = self._child(record.get("served", "strong"))
        if not isinstance(child, FunctionCallingLLM):
            raise InvalidInputError(f"{model_label(child)!r} is not a FunctionCallingLLM; it cannot call tools")
        return child.get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)
