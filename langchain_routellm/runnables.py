"""RouteLLMRunnable: route any input between two arbitrary Runnables (chains, RAG pipelines, models)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.runnables.utils import AddableDict
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, field_serializer, model_validator
from typing_extensions import Self

from langchain_routellm._routing import (
    alabel,
    aroute_messages,
    aroute_text,
    as_judge,
    child_config,
    dispatcher,
    label,
    route_messages,
    route_text,
    run_config,
)
from langchain_routellm._utils import (
    DEFAULT_TEXT_KEYS,
    RouteOn,
    ToolStep,
    model_name,
    reraise_routellm_error,
    to_messages,
    with_metadata,
)
from routellm_core.dispatch import METADATA_KEY, Dispatcher, Route, ServedDecision
from routellm_core.embedders import Embedder
from routellm_core.errors import InvalidInputError
from routellm_core.feedback import FeedbackStore
from routellm_core.labelling import TrafficLabelling, traffic_labelling
from routellm_core.policy import RoutingPolicy, build_policy, router_label
from routellm_core.routers.base import Side, WinRateModel, other_side

_OWNER = "RouteLLMRunnable"


def _one(value: Any) -> Iterator[Any]:
    yield value


async def _aone(value: Any) -> AsyncIterator[Any]:
    yield value


class RouteLLMRunnable(RunnableSerializable[Any, Any]):
    """Routes each input to one of two Runnables, as a learned router decides from the input's text.

    ``strong`` and ``weak`` can be any Runnables taking the same input: two chains, two retriever + LLM
    pipelines, two chat models. The router scores the *routing text* taken from the input; the input goes,
    unchanged, to ``strong`` when P(strong wins) >= threshold, else to ``weak``.

    The routing text, by default: a ``str`` input itself; for messages / a prompt value, the latest human
    message's text (or the whole conversation, ``route_on="conversation"``); for a dict, the first of the
    keys ``input``, ``question``, ``query``, ``text``, ``prompt``, ``messages`` it holds. Set
    ``routing_text`` to a key or a callable to choose it explicitly.

    Example:
        ```python
        from langchain_routellm import RouteLLMRunnable

        rag = RouteLLMRunnable(
            strong=prompt | big_llm | StrOutputParser(),
            weak=prompt | small_llm | StrOutputParser(),
            routing_text="question",  # or lambda x: x["question"]
            include_decision=True,
        )
        rag.invoke({"question": "Why is the sky blue?", "context": docs})
        # {'output': '...', 'routellm': {'router': 'mf', 'win_rate': 0.42, 'choice': 'weak', ...}}
        ```

    The decision is exposed as for ``ChatRouteLLM``: in ``response_metadata["routellm"]`` when the output is
    a message (the first chunk when streaming), in the run's metadata and ``routellm:<choice>`` tag, and, with
    ``include_decision=True``, as ``{"output": ..., "routellm": {...}}``.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    strong: Runnable
    """Runnable that serves inputs routed to the strong side."""

    weak: Runnable
    """Runnable that serves inputs routed to the weak side."""

    router: str | Path | WinRateModel | RoutingPolicy = "default"
    """Router: ``"default"`` (shipped), a checkpoint path, a registry name, a router, or a RoutingPolicy."""

    @field_serializer("router")
    def _serialize_router(self, router: Any) -> str:
        return router_label(router)

    threshold: float | None = None
    """Send to strong when P(strong wins) >= threshold; 0.5 when neither this nor ``strong_fraction`` is set."""

    strong_fraction: float | None = None
    """Instead of a threshold: the target fraction of strong calls, resolved through the router's calibration."""

    embedder: Embedder | None = Field(default=None, exclude=True)
    """Embedder to load the router with (must match the checkpoint's); the local MiniLM when ``None``."""

    routing_text: str | Callable[[Any], Any] | None = None
    """Which part of the input to route on: a dict key, or a callable returning a string or messages."""

    route_on: RouteOn = "last_user"
    """For message inputs: ``"last_user"`` (latest human message's text; alias ``"last_human"``),
    ``"conversation"`` or ``"rag_query"``."""

    tool_step: ToolStep = "continue"
    """For message inputs ending in a tool result: ``"continue"`` with the side that issued the tool call, or
    ``"route"`` like any other input."""

    fallback: bool = False
    """When the chosen side fails or answers empty before any output, run the other side once."""

    feedback: Any = Field(default=None, exclude=True)
    """A ``FeedbackStore`` or a path: every routed call's decision is recorded there (see ``ChatRouteLLM``)."""

    judge: Any = Field(default=None, exclude=True)
    """Judge for ``label_fraction``: a chat model, a ``PairwiseJudge`` or a callable (see ``ChatRouteLLM``)."""

    label_fraction: float = 0.0
    """Share of calls on which the other side is also run, in the background, and the pair judged into ``feedback``."""

    label_seed: int = 0
    """Seed of the ``label_fraction`` sampling."""

    include_decision: bool = False
    """Return ``{"output": ..., "routellm": {...}}`` instead of the bare output."""

    strong_name: str | None = None
    """Name reported for the strong side; derived from the Runnable when ``None``."""

    weak_name: str | None = None
    """Name reported for the weak side; derived from the Runnable when ``None``."""

    _policy: RoutingPolicy = PrivateAttr()
    _names: dict[Side, str] = PrivateAttr()
    _dispatcher: Dispatcher = PrivateAttr()
    _labelling: TrafficLabelling | None = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        """Validate the fields; the router's own errors (unknown router, bad threshold...) keep their type."""
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise

    @model_validator(mode="after")
    def _build(self) -> Self:
        """Build the routing policy."""
        self._policy = build_policy(self.router, self.threshold, self.strong_fraction, self.embedder)
        self._names = {
            "strong": self.strong_name or model_name(self.strong),
            "weak": self.weak_name or model_name(self.weak),
        }
        self._dispatcher = dispatcher(self._names, fallback=self.fallback, owner=_OWNER)
        self._labelling = traffic_labelling(self.feedback, as_judge(self.judge), self.label_fraction, self.label_seed)
        return self

    @property
    def feedback_store(self) -> FeedbackStore | None:
        """The feedback store (``feedback=``), to attach verdicts by decision id; ``None`` without one."""
        return self._labelling.store if self._labelling is not None else None

    @property
    def labelling(self) -> TrafficLabelling | None:
        """The labelling of this runnable's calls, if configured."""
        return self._labelling

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy (router + threshold in force)."""
        return self._policy

    @property
    def model_names(self) -> dict[Side, str]:
        """Names of the two sides, as reported in metadata."""
        return dict(self._names)

    @property
    def _dispatch(self) -> Dispatcher:
        """The dispatcher for the current fields (rebuilt when a ``model_copy`` changed ``fallback``)."""
        if self._dispatcher.fallback != self.fallback:
            self._dispatcher = dispatcher(self._names, fallback=self.fallback, owner=_OWNER)
        return self._dispatcher

    def _child(self, side: Side) -> Runnable:
        return self.strong if side == "strong" else self.weak

    def _run_config(self, config: RunnableConfig, route: Route) -> RunnableConfig:
        return run_config(config, self._dispatch.served(route, route.choice))

    # ---- routing text ----------------------------------------------------------------------------------
    def _selected(self, value: Any) -> Any:
        """The part of the input that holds the routing text (a string or messages)."""
        selector = self.routing_text
        if selector is None:
            if isinstance(value, Mapping):
                for key in DEFAULT_TEXT_KEYS:
                    if key in value:
                        return value[key]
                raise InvalidInputError(
                    f"cannot find the routing text in a dict with keys {sorted(map(str, value))}; "
                    f"expected one of {list(DEFAULT_TEXT_KEYS)}, or set routing_text=<key or callable>"
                )
            return value
        if callable(selector):
            return selector(value)
        if not isinstance(value, Mapping) or selector not in value:
            raise InvalidInputError(f"routing_text={selector!r} is not a key of the input ({type(value).__name__})")
        return value[selector]

    def _messages_or_text(self, value: Any) -> list[BaseMessage] | str:
        selected = self._selected(value)
        if isinstance(selected, str):
            if not selected.strip():
                raise InvalidInputError("the routing text is empty; there is nothing to route on")
            return selected
        messages = to_messages(selected)
        if messages is None and isinstance(selected, (list, tuple)):
            try:
                messages = convert_to_messages(selected)
            except (ValueError, TypeError, NotImplementedError) as exc:
                raise InvalidInputError(f"cannot read the routing text from the input: {exc}") from exc
        if messages is None:
            raise InvalidInputError(
                f"cannot route on a {type(selected).__name__}: the routing text must be a string or "
                "messages; set routing_text=<key or callable>"
            )
        return messages

    def _route(self, value: Any) -> Route:
        selected = self._messages_or_text(value)
        if isinstance(selected, str):
            return route_text(self._policy, selected)
        return route_messages(self._policy, selected, self.route_on, self.tool_step)

    async def _aroute(self, value: Any) -> Route:
        selected = self._messages_or_text(value)
        if isinstance(selected, str):
            return await aroute_text(self._policy, selected)
        return await aroute_messages(self._policy, selected, self.route_on, self.tool_step)

    def _output(self, value: Any, record: ServedDecision) -> Any:
        value = with_metadata(value, record)
        return {"output": value, METADATA_KEY: record.as_dict()} if self.include_decision else value

    # ---- invoke ----------------------------------------------------------------------------------------
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Route the input, then invoke the chosen side inside a ``RouteLLMRunnable`` run.

        Raises:
            InvalidInputError: No routing text can be found in the input.
            ModelCallError: The chosen side failed or answered empty (and fallback was off or failed too).
        """
        config = ensure_config(config)
        route = self._route(input)
        return self._call_with_config(
            self._invoke_run, input, self._run_config(config, route), route=route, call=kwargs
        )

    def _invoke_run(self, input: Any, config: RunnableConfig, *, route: Route, call: dict[str, Any]) -> Any:
        def attempt(side: Side, record: ServedDecision) -> Any:
            return self._child(side).invoke(input, child_config(config, record), **call)

        value, record = self._dispatch.call(route, attempt)
        other = self._child(other_side(record.served))
        label(self._labelling, route, record, self._names, value, lambda: other.invoke(input, **call))
        return self._output(value, record)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Async :meth:`invoke`; routing runs off the event loop, batched with concurrent calls."""
        config = ensure_config(config)
        route = await self._aroute(input)
        return await self._acall_with_config(
            self._ainvoke_run, input, self._run_config(config, route), route=route, call=kwargs
        )

    async def _ainvoke_run(self, input: Any, config: RunnableConfig, *, route: Route, call: dict[str, Any]) -> Any:
        async def attempt(side: Side, record: ServedDecision) -> Any:
            return await self._child(side).ainvoke(input, child_config(config, record), **call)

        value, record = await self._dispatch.acall(route, attempt)
        other = self._child(other_side(record.served))
        await alabel(self._labelling, route, record, self._names, value, lambda: other.ainvoke(input, **call))
        return self._output(value, record)

    # ---- stream ----------------------------------------------------------------------------------------
    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None) -> Iterator[Any]:
        """Route the input, then stream the chosen side's chunks.

        With ``include_decision=True`` the first chunk is ``{"routellm": {...}}`` and the others
        ``{"output": chunk}`` (they add up to the ``invoke`` result). A failure after chunks were delivered
        raises ``ModelCallError`` with ``chunks_delivered`` set.
        """
        config = ensure_config(config)
        route = self._route(input)
        yield from self._transform_stream_with_config(
            _one(input), self._stream_run, self._run_config(config, route), route=route, call=kwargs
        )

    def _framed(self, chunk: Any, record: ServedDecision, first: bool) -> list[Any]:
        """What the caller receives for one chunk: the decision on the first chunk (or as its own frame)."""
        if not self.include_decision:
            return [with_metadata(chunk, record) if first else chunk]
        head = [AddableDict({METADATA_KEY: record.as_dict()})] if first else []
        return [*head, AddableDict({"output": chunk})]

    def _stream_run(
        self, inputs: Iterator[Any], config: RunnableConfig, *, route: Route, call: dict[str, Any]
    ) -> Iterator[Any]:
        input = next(inputs)

        def open_stream(side: Side, record: ServedDecision) -> Iterator[Any]:
            return self._child(side).stream(input, child_config(config, record), **call)

        first = True
        for chunk, record in self._dispatch.stream(route, open_stream):
            yield from self._framed(chunk, record, first)
            first = False

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        config = ensure_config(config)
        route = await self._aroute(input)
        async for chunk in self._atransform_stream_with_config(
            _aone(input), self._astream_run, self._run_config(config, route), route=route, call=kwargs
        ):
            yield chunk

    async def _astream_run(
        self, inputs: AsyncIterator[Any], config: RunnableConfig, *, route: Route, call: dict[str, Any]
    ) -> AsyncIterator[Any]:
        input = await anext(inputs)

        def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[Any]:
            return self._child(side).astream(input, child_config(config, record), **call)

        first = True
        async for chunk, record in self._dispatch.astream(route, open_stream):
            for item in self._framed(chunk, record, first):
                yield item
            first = False
