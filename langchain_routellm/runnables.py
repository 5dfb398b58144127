"""RouteLLMRunnable: route any input between two arbitrary Runnables (chains, RAG pipelines, models), or among N
priced ones (``models=[...]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.runnables.utils import AddableDict
from pydantic import ConfigDict, PrivateAttr, model_validator
from typing_extensions import Self

from langchain_routellm._messages import DEFAULT_TEXT_KEYS, child_input, to_messages
from langchain_routellm._options import RouterOptions
from langchain_routellm._outputs import ParsedAnswer, chunk_text, with_metadata
from langchain_routellm._routing import (
    aroute_messages,
    awatch_tokens,
    check_config,
    child_config,
    route_messages,
    run_config,
    watch_tokens,
)
from routellm_core.decisions import METADATA_KEY, Route, ServedDecision, Side
from routellm_core.errors import InvalidInputError


def _one(value: Any) -> Iterator[Any]:
    yield value


async def _aone(value: Any) -> AsyncIterator[Any]:
    yield value


class RouteLLMRunnable(RouterOptions, RunnableSerializable[Any, Any]):
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

    Among N priced Runnables, give ``models=`` instead of ``strong`` / ``weak``: a dict ``{name: runnable}``, or a
    list with ``names=[...]`` (a chain has no model name of its own); the names are what ``prices=`` and
    ``priors=`` (or the router's own profiles) know them by, and ``objective=`` picks one per input:

    ```python
    rag = RouteLLMRunnable(
        models={"gpt-4o-mini": prompt | mini, "gpt-4o": prompt | big, "o1-preview": prompt | o1},
        objective="margin=0.05",
        routing_text="question",
    )
    ```
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    strong: Runnable | None = None
    """Runnable that serves inputs routed to the strong side."""

    weak: Runnable | None = None
    """Runnable that serves inputs routed to the weak side."""

    models: list[Runnable] | dict[str, Runnable] | None = None
    """Instead of ``strong`` / ``weak``: N priced Runnables taking the same input, as a dict ``{name: runnable}`` or a
    list named by ``names``; ``objective`` picks one per input."""

    routing_text: str | Callable[[Any], Any] | None = None
    """Which part of the input to route on: a dict key, or a callable returning a string or messages."""

    include_decision: bool = False
    """Return ``{"output": ..., "routellm": {...}}`` instead of the bare output."""

    _owner: ClassVar[str] = "RouteLLMRunnable"

    #: The self-verification question, when the input has a place for it (``ChatRouteLLM.with_structured_output``
    #: sets it: the weak chat model is asked about its answer): ``(input, record, answer, config) -> reply``, sync
    #: and async. ``None``: an arbitrary Runnable's input has none, and the check is refused.
    _verify: Any = PrivateAttr(default=None)
    _averify: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build(self) -> Self:
        """Build the routing policy, dispatcher and labelling."""
        self._build_members(lambda spec, field: spec)
        self._build_routing()
        return self

    def _build_second(self, spec: Any) -> Any:
        """The escalation check's second Runnable (it takes the same input as ``strong`` and ``weak``)."""
        if not isinstance(spec, Runnable):
            raise TypeError(f"escalate.second must be a Runnable taking the same input, got {type(spec).__name__}")
        return spec

    def _run_config(self, config: RunnableConfig, route: Route) -> RunnableConfig:
        return run_config(config, self._engine.planned(route))

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
            return self._engine.route(selected)
        return route_messages(self._engine, selected)

    async def _aroute(self, value: Any) -> Route:
        selected = self._messages_or_text(value)
        if isinstance(selected, str):
            return await self._engine.aroute(selected)
        return await aroute_messages(self._engine, selected)

    def _output(self, value: Any, record: ServedDecision) -> Any:
        if isinstance(value, ParsedAnswer):  # structured output kept its raw message for the record only
            value = value.parsed
        value = with_metadata(value, record)
        return {"output": value, METADATA_KEY: record.as_dict()} if self.include_decision else value

    # ---- the engine's calls besides the chosen side's ---------------------------------------------------
    def _side_calls(self, route: Route, input: Any, config: RunnableConfig, call: dict[str, Any]) -> dict[str, Any]:
        """The escalation check's second answer and the labeller's other side (self-verification only when
        :attr:`_verify` is set: an arbitrary Runnable's input has no place for the question)."""

        def second(record: ServedDecision) -> Any:
            child, extra = self._second_child(record.model)
            return child.invoke(input, check_config(config, record), **{**call, **extra})

        def other_answer(side: Side) -> str:
            return chunk_text(self._called(side, self._name_of(route, side)).invoke(input, **call))

        calls: dict[str, Any] = {"second": second, "other_answer": other_answer}
        if (ask := self._verify) is not None:
            calls["verify"] = lambda record, answer: ask(input, record, answer, config)
        return calls

    def _aside_calls(self, route: Route, input: Any, config: RunnableConfig, call: dict[str, Any]) -> dict[str, Any]:
        """Async :meth:`_side_calls`."""

        async def second(record: ServedDecision) -> Any:
            child, extra = self._second_child(record.model)
            return await child.ainvoke(input, check_config(config, record), **{**call, **extra})

        async def other_answer(side: Side) -> str:
            return chunk_text(await self._called(side, self._name_of(route, side)).ainvoke(input, **call))

        calls: dict[str, Any] = {"second": second, "other_answer": other_answer}
        if (ask := self._averify) is not None:
            calls["verify"] = lambda record, answer: ask(input, record, answer, config)
        return calls

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
        input = child_input(input)  # routed on the caller's input; children get it without earlier records

        def attempt(side: Side, record: ServedDecision) -> Any:
            child = self._called(side, record.model)
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            return watch_tokens(lambda c: child.invoke(input, c, **call), cfg)

        value, record = self._engine.call(route, attempt, **self._side_calls(route, input, config, call))
        return self._output(value, record)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Async :meth:`invoke`; routing runs off the event loop, batched with concurrent calls."""
        config = ensure_config(config)
        route = await self._aroute(input)
        return await self._acall_with_config(
            self._ainvoke_run, input, self._run_config(config, route), route=route, call=kwargs
        )

    async def _ainvoke_run(self, input: Any, config: RunnableConfig, *, route: Route, call: dict[str, Any]) -> Any:
        input = child_input(input)

        async def attempt(side: Side, record: ServedDecision) -> Any:
            child = self._called(side, record.model)
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            return await awatch_tokens(lambda c: child.ainvoke(input, c, **call), cfg)

        value, record = await self._engine.acall(route, attempt, **self._aside_calls(route, input, config, call))
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
        input = child_input(next(inputs))

        def open_stream(side: Side, record: ServedDecision) -> Iterator[Any]:
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            return self._called(side, record.model).stream(input, cfg, **call)

        first = True
        for chunk, record in self._engine.stream(route, open_stream, **self._side_calls(route, input, config, call)):
            if isinstance(chunk, ParsedAnswer):  # a structured stream's whole message: for the record only
                continue
            yield from self._framed(chunk, record, first)
            first = False

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        config = ensure_config(config)
        route = await self._aroute(input)
        stream = self._atransform_stream_with_config(
            _aone(input), self._astream_run, self._run_config(config, route), route=route, call=kwargs
        )
        async with aclosing(stream):
            async for chunk in stream:
                yield chunk

    async def _astream_run(
        self, inputs: AsyncIterator[Any], config: RunnableConfig, *, route: Route, call: dict[str, Any]
    ) -> AsyncIterator[Any]:
        input = child_input(await anext(inputs))

        def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[Any]:
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            return self._called(side, record.model).astream(input, cfg, **call)

        first = True
        stream = self._engine.astream(route, open_stream, **self._aside_calls(route, input, config, call))
        async with aclosing(stream) as relayed:
            async for chunk, record in relayed:
                if isinstance(chunk, ParsedAnswer):  # a structured stream's whole message: for the record only
                    continue
                for item in self._framed(chunk, record, first):
                    yield item
                first = False
