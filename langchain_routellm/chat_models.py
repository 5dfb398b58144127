"""ChatRouteLLM: a chat model that routes each call between a strong and a weak chat model, or among N priced
chat models (``models=[...]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from pathlib import PurePath
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.runnables.config import merge_configs
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, SecretStr, model_validator
from typing_extensions import Self

from langchain_routellm._answers import verification_messages
from langchain_routellm._identity import escalation_key, policy_fingerprint
from langchain_routellm._messages import child_messages
from langchain_routellm._models import child_callbacks, model_provider, runnable_name, unwrap_model
from langchain_routellm._options import RouterOptions
from langchain_routellm._outputs import as_chunk, cache_hit, chunk_text, replayed_record, with_metadata
from langchain_routellm._routing import (
    aroute_messages,
    awatch_tokens,
    check_config,
    child_config,
    init_child,
    listed_names,
    route_messages,
    run_config,
    watch_tokens,
)
from langchain_routellm._structured import ParsedOnly
from routellm_core.decisions import METADATA_KEY, Route, ServedDecision, Side
from routellm_core.routing.cascade import SAMPLE_TEMPERATURE


class _V1Blocks:
    """Converts streamed chunks to v1 content blocks with running block indices, as BaseChatModel does."""

    def __init__(self) -> None:
        self.index = -1
        self.block_type = ""

    def __call__(self, chunk: AIMessageChunk) -> AIMessageChunk:
        chunk = chunk.model_copy(
            update={
                "content": chunk.content_blocks,
                "response_metadata": {**chunk.response_metadata, "output_version": "v1"},
            }
        )
        for block in chunk.content:
            if not isinstance(block, dict):
                continue
            if block["type"] != self.block_type:
                self.block_type = block["type"]
                self.index += 1
            block.setdefault("index", self.index)
        return chunk


def _one(value: Any) -> Iterator[Any]:
    yield value


async def _aone(value: Any) -> AsyncIterator[Any]:
    yield value


class ChatRouteLLM(RouterOptions, BaseChatModel):
    """A chat model that sends each call to a strong or a weak chat model, as a learned router decides.

    The router predicts P(strong model beats weak model) for the routing text (by default the latest human
    message); the call goes to ``strong`` when that win rate is at least the threshold, else to ``weak``.

    Setup:
        ```bash
        pip install routellm-integrations
        ```

    Instantiate:
        ```python
        from langchain_routellm import ChatRouteLLM

        llm = ChatRouteLLM(
            strong="openai:gpt-4o",  # any BaseChatModel, or a "provider:model" string
            weak="openai:gpt-4o-mini",
            router="default",  # shipped router; or a checkpoint path / registry name / router
            threshold=0.5,  # or strong_fraction=0.3 to send ~30% of calls to strong
        )
        ```

    Invoke:
        ```python
        msg = llm.invoke("Prove that there are infinitely many primes.")
        msg.response_metadata["routellm"]
        # {'decision_id': '9f1c…', 'router': 'mf', 'win_rate': 0.71, 'threshold': 0.5,
        #  'choice': 'strong', 'served': 'strong', 'model': 'gpt-4o', 'fallback': False, ...}
        ```

    Stream, batch, async, tools, structured output:
        ```python
        for chunk in llm.stream("Hi!"): ...          # the first chunk carries the decision
        llm.batch(["Hi", "Explain RLHF"])            # routed one by one, scored in micro-batches
        await llm.ainvoke("...")
        llm.bind_tools([get_weather])                # binds the tools to both children
        llm.with_structured_output(Answer)           # each child's own structured output, routed
        ```

    Many models with prices (``models=[...]`` instead of ``strong`` / ``weak``):
        ```python
        llm = ChatRouteLLM(
            models=["openai:gpt-4o-mini", "openai:gpt-4o", ChatAnthropic(model="claude-3-5-sonnet-20240620")],
            objective=Objective.margin(0.05),  # the cheapest model predicted within 5 points of the best
        )
        ```
        Each call goes to the model the objective picks from the router's per-model predictions and the models'
        prices; escalation and fallback go to the best-predicted costlier model. Name models with a dict
        ``{name: model}``; state ``priors=`` for models the router has no profile for and ``prices=`` for models
        the price table lacks (keyed by a model's name, or by the ``"provider:model"`` string it was built from).
        The record's ``ladder`` entry lists what was compared.

    Tracing: a call is a ``ChatRouteLLM`` run whose metadata holds ``routellm`` (the decision) and the
    chosen model's ``ls_provider`` / ``ls_model_name``, tagged ``routellm:strong`` or ``routellm:weak``; the
    chosen child's own chat-model run nests under it (so token usage is counted once, on the child's run).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    strong: BaseChatModel | Runnable | str | None = None
    """The strong (expensive) model: a chat model, or a ``"provider:model"`` string for ``init_chat_model``."""

    weak: BaseChatModel | Runnable | str | None = None
    """The weak (cheap) model: a chat model, or a ``"provider:model"`` string for ``init_chat_model``."""

    models: list[BaseChatModel | Runnable | str] | dict[str, BaseChatModel | Runnable | str] | None = None
    """Instead of ``strong`` / ``weak``: N priced chat models or ``"provider:model"`` strings, as a list (named by
    ``names``, else by each model's own name) or a dict ``{name: model}``; ``objective`` picks one per call."""

    streaming: bool = False
    """Whether ``invoke`` consumes the chosen child's stream (so token callbacks fire) instead of invoking it."""

    stop: list[str] | None = None
    """Default stop sequences, passed to the chosen child on each call unless the call gives its own."""

    temperature: float | None = None
    """Temperature for children given as strings (passed to ``init_chat_model``)."""

    max_tokens: int | None = None
    """Max output tokens for children given as strings (passed to ``init_chat_model``)."""

    timeout: float | None = None
    """Request timeout for children given as strings; the router adds no timeout of its own."""

    max_retries: int | None = None
    """Retries for children given as strings; the router itself never retries."""

    api_key: SecretStr | None = Field(default=None, repr=False, exclude=True)
    """API key for children given as strings; never shown in repr, metadata or traces."""

    child_kwargs: dict[str, Any] = Field(default_factory=dict, repr=False, exclude=True)
    """Extra ``init_chat_model`` keyword arguments for children given as strings (not shown in repr)."""

    _owner: ClassVar[str] = "ChatRouteLLM"
    _unknown_hint: ClassVar[str] = "init_chat_model arguments for children given as strings go in child_kwargs={...}"
    _resample_kwargs: ClassVar[dict[str, Any]] = {"temperature": SAMPLE_TEMPERATURE}

    @model_validator(mode="after")
    def _build(self) -> Self:
        """Build string children and the routing policy."""
        init_kwargs: dict[str, Any] = {
            key: value
            for key, value in {
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "timeout": self.timeout,
                "max_retries": self.max_retries,
            }.items()
            if value is not None
        }
        if self.api_key is not None:
            init_kwargs["api_key"] = self.api_key.get_secret_value()
        init_kwargs.update(self.child_kwargs)
        self._build_members(lambda spec, field: init_child(spec, init_kwargs, field))
        self._build_routing()
        return self

    # ---- identity --------------------------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "routellm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """What LangChain's cache keys this model's answers by (with the messages): the router (a router given as an
        instance or in a ``RoutingPolicy`` also by a fingerprint of its state, see :func:`policy_fingerprint`), the
        threshold (among N models the objective, prices and priors), the models, the routing options and the
        escalation."""
        params: dict[str, Any] = {"router": self.policy.router_name}
        if isinstance(self.models, dict):
            params["objective"] = str(self._engine.objective)  # type: ignore[union-attr]
            params["models"] = list(self.models)
        else:
            params["threshold"] = self.policy.threshold
            params["strong"] = self._engine.names["strong"]  # type: ignore[index]
            params["weak"] = self._engine.names["weak"]  # type: ignore[index]
        params.update(route_on=self.route_on, tool_step=self.tool_step, fallback=self.fallback)
        # Only where they apply (a plain model keeps the key it always had): the router's state when given as an
        # instance, what the objective weighs besides the router, the escalation.
        if not isinstance(self.router, (str, PurePath)):
            params["router_state"] = policy_fingerprint(self.policy)
        if isinstance(self.models, dict) and self.prices:
            params["prices"] = {name: list(price) for name, price in sorted(self.prices.items())}
        if isinstance(self.models, dict) and self.priors:
            params["priors"] = {name: repr(prior) for name, prior in sorted(self.priors.items())}
        if self.escalate is not None:
            params["escalate"] = escalation_key(self.escalate, runnable_name(self._second) if self._second else None)
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """LangSmith params before routing: ``ls_provider="routellm"`` and ``"<strong>|<weak>"`` (``"a|b|c"`` with
        ``models=[...]``); a per-call ``model`` kwarg wins. A routed call's run reports the chosen model instead (see
        ``_run_config``)."""
        params = LangSmithParams(
            ls_provider="routellm",
            ls_model_name=listed_names(self._engine),
            ls_model_type="chat",
        )
        if isinstance(kwargs.get("model"), str):
            params["ls_model_name"] = kwargs["model"]
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop := stop or self.stop:
            params["ls_stop"] = stop
        return params

    # ---- routing ---------------------------------------------------------------------------------------
    def _messages(self, input: LanguageModelInput) -> list[BaseMessage]:
        return self._convert_input(input).to_messages()

    def _route(self, messages: Sequence[BaseMessage]) -> Route:
        return route_messages(self._engine, messages)

    async def _aroute(self, messages: Sequence[BaseMessage]) -> Route:
        return await aroute_messages(self._engine, messages)

    def _run_config(self, config: RunnableConfig, route: Route, stop: list[str] | None) -> RunnableConfig:
        """Config for the router's run: the decision, the chosen model's LangSmith params, our own
        callbacks / tags / metadata (as a chat model would apply them)."""
        own: RunnableConfig = {}
        if self.tags:
            own["tags"] = list(self.tags)
        if self.metadata:
            own["metadata"] = dict(self.metadata)
        if self.callbacks is not None:
            own["callbacks"] = self.callbacks
        base = merge_configs(config, own) if own else config
        name = self._name_of(route, route.choice)
        ls = {
            "ls_provider": model_provider(self._called(route.choice, name)) or "routellm",
            "ls_model_name": name,
            "ls_model_type": "chat",
        }
        return run_config(base, self._engine.planned(route), ls)

    def _call_kwargs(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        call = dict(kwargs)
        stop = stop if stop is not None else self.stop
        if stop is not None:
            call["stop"] = stop
        return call

    # ---- output version --------------------------------------------------------------------------------
    def _finish(self, message: BaseMessage) -> AIMessage:
        if isinstance(message, AIMessageChunk):
            message = message_chunk_to_message(message)
        if not isinstance(message, AIMessage):
            raise TypeError(f"the child returned a {type(message).__name__}, not an AIMessage")
        if self.output_version == "v1":
            message = message.model_copy(
                update={
                    "content": message.content_blocks,
                    "response_metadata": {**message.response_metadata, "output_version": "v1"},
                }
            )
        return message

    # ---- the engine's calls besides the chosen side's ---------------------------------------------------
    def _side_calls(
        self, route: Route, messages: list[BaseMessage], config: RunnableConfig, call: dict[str, Any]
    ) -> dict[str, Any]:
        """The escalation check's second answer and self-verification, and the labeller's other side (each call's
        record names the cheap model; among N models the models of ``route``'s pair)."""

        def second(record: ServedDecision) -> Any:
            child, extra = self._second_child(record.model)
            return child.invoke(messages, check_config(config, record), **{**call, **extra})

        def verify(record: ServedDecision, answer: Any) -> Any:
            question = verification_messages(messages, answer)
            return self._called("weak", record.model).invoke(question, check_config(config, record))

        def other_answer(side: Side) -> str:
            return chunk_text(self._called(side, self._name_of(route, side)).invoke(messages, **call))

        return {"second": second, "verify": verify, "other_answer": other_answer}

    def _aside_calls(
        self, route: Route, messages: list[BaseMessage], config: RunnableConfig, call: dict[str, Any]
    ) -> dict[str, Any]:
        """Async :meth:`_side_calls`."""

        async def second(record: ServedDecision) -> Any:
            child, extra = self._second_child(record.model)
            return await child.ainvoke(messages, check_config(config, record), **{**call, **extra})

        async def verify(record: ServedDecision, answer: Any) -> Any:
            question = verification_messages(messages, answer)
            return await self._called("weak", record.model).ainvoke(question, check_config(config, record))

        async def other_answer(side: Side) -> str:
            return chunk_text(await self._called(side, self._name_of(route, side)).ainvoke(messages, **call))

        return {"second": second, "verify": verify, "other_answer": other_answer}

    # ---- invoke ----------------------------------------------------------------------------------------
    def _invoke_child(
        self, route: Route, messages: list[BaseMessage], config: RunnableConfig, call: dict[str, Any]
    ) -> AIMessage:
        messages = child_messages(messages)
        if self.streaming:
            full: AIMessageChunk | None = None
            final: list[ServedDecision] = []  # the record priced from the whole stream (the first chunk's is not)
            for chunk in self._stream_child(route, messages, config, call, on_final=final.append):
                full = chunk if full is None else full + chunk
            assert full is not None  # the dispatcher raises on an empty stream
            return self._finish(with_metadata(full, final[-1]) if final else full)

        def attempt(side: Side, record: ServedDecision) -> Any:
            child = self._called(side, record.model)
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            return watch_tokens(lambda c: child.invoke(messages, c, **call), cfg)

        value, record = self._engine.call(route, attempt, **self._side_calls(route, messages, config, call))
        return self._finish(with_metadata(value, record))

    async def _ainvoke_child(
        self, route: Route, messages: list[BaseMessage], config: RunnableConfig, call: dict[str, Any]
    ) -> AIMessage:
        messages = child_messages(messages)
        if self.streaming:
            full: AIMessageChunk | None = None
            final: list[ServedDecision] = []
            async for chunk in self._astream_child(route, messages, config, call, on_final=final.append):
                full = chunk if full is None else full + chunk
            assert full is not None
            return self._finish(with_metadata(full, final[-1]) if final else full)

        async def attempt(side: Side, record: ServedDecision) -> Any:
            child = self._called(side, record.model)
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            return await awatch_tokens(lambda c: child.ainvoke(messages, c, **call), cfg)

        value, record = await self._engine.acall(route, attempt, **self._aside_calls(route, messages, config, call))
        return self._finish(with_metadata(value, record))

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Route the call, then invoke the chosen child inside a ``ChatRouteLLM`` run.

        Raises:
            InvalidInputError: No messages, no human message, or no text to route on.
            ModelCallError: The chosen child failed or answered empty (and fallback was off or failed too).
        """
        config = ensure_config(config)
        messages = self._messages(input)
        route = self._route(messages)
        return self._call_with_config(
            self._invoke_run,
            messages,
            self._run_config(config, route, stop),
            route=route,
            call=self._call_kwargs(stop, kwargs),
        )

    def _invoke_run(
        self, messages: list[BaseMessage], config: RunnableConfig, *, route: Route, call: dict[str, Any]
    ) -> AIMessage:
        return self._invoke_child(route, messages, config, call)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async :meth:`invoke`; routing runs off the event loop, batched with concurrent calls."""
        config = ensure_config(config)
        messages = self._messages(input)
        route = await self._aroute(messages)
        return await self._acall_with_config(
            self._ainvoke_run,
            messages,
            self._run_config(config, route, stop),
            route=route,
            call=self._call_kwargs(stop, kwargs),
        )

    async def _ainvoke_run(
        self, messages: list[BaseMessage], config: RunnableConfig, *, route: Route, call: dict[str, Any]
    ) -> AIMessage:
        return await self._ainvoke_child(route, messages, config, call)

    # ---- stream ----------------------------------------------------------------------------------------
    def _stream_child(
        self,
        route: Route,
        messages: list[BaseMessage],
        config: RunnableConfig,
        call: dict[str, Any],
        on_final: Callable[[ServedDecision], None] | None = None,
    ) -> Iterator[AIMessageChunk]:
        """The routed chunks, the first one carrying the decision; ``on_final`` gets the record priced from the
        whole stream once it ended."""
        messages = child_messages(messages)

        def open_stream(side: Side, record: ServedDecision) -> Iterator[Any]:
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            return (as_chunk(c) for c in self._called(side, record.model).stream(messages, cfg, **call))

        last: AIMessageChunk | None = None
        calls = self._side_calls(route, messages, config, call)
        stream = self._engine.stream(route, open_stream, on_final=on_final, **calls)
        for chunk, record in stream:
            last = chunk if last is not None else with_metadata(chunk, record)
            yield last
        if last is not None and last.chunk_position != "last":
            yield AIMessageChunk(content="", chunk_position="last", id=last.id)

    async def _astream_child(
        self,
        route: Route,
        messages: list[BaseMessage],
        config: RunnableConfig,
        call: dict[str, Any],
        on_final: Callable[[ServedDecision], None] | None = None,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`_stream_child`."""
        messages = child_messages(messages)

        async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[Any]:
            cfg = child_config(config, record, held=self._engine.held_attempt(route, record))
            async with aclosing(self._called(side, record.model).astream(messages, cfg, **call)) as stream:
                async for c in stream:
                    yield as_chunk(c)

        last: AIMessageChunk | None = None
        calls = self._aside_calls(route, messages, config, call)
        stream = self._engine.astream(route, open_stream, on_final=on_final, **calls)
        async with aclosing(stream) as relayed:
            async for chunk, record in relayed:
                last = chunk if last is not None else with_metadata(chunk, record)
                yield last
        if last is not None and last.chunk_position != "last":
            yield AIMessageChunk(content="", chunk_position="last", id=last.id)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Route the call, then stream the chosen child's chunks token by token.

        The first chunk carries ``response_metadata["routellm"]``; the last is marked
        ``chunk_position="last"``. A failure after chunks were delivered raises ``ModelCallError`` with
        ``chunks_delivered`` set (no fallback then: the caller already holds part of the answer).
        """
        if self.disable_streaming is True:
            yield as_chunk(self.invoke(input, config, stop=stop, **kwargs))
            return
        config = ensure_config(config)
        messages = self._messages(input)
        route = self._route(messages)
        yield from self._transform_stream_with_config(
            _one(messages),
            self._stream_run,
            self._run_config(config, route, stop),
            route=route,
            call=self._call_kwargs(stop, kwargs),
        )

    def _stream_run(
        self,
        inputs: Iterator[list[BaseMessage]],
        config: RunnableConfig,
        *,
        route: Route,
        call: dict[str, Any],
    ) -> Iterator[AIMessageChunk]:
        messages = next(inputs)
        chunks = self._stream_child(route, messages, config, call)
        if self.output_version == "v1":
            convert = _V1Blocks()
            chunks = (convert(chunk) for chunk in chunks)
        yield from chunks

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`stream`."""
        if self.disable_streaming is True:
            yield as_chunk(await self.ainvoke(input, config, stop=stop, **kwargs))
            return
        config = ensure_config(config)
        messages = self._messages(input)
        route = await self._aroute(messages)
        stream = self._atransform_stream_with_config(
            _aone(messages),
            self._astream_run,
            self._run_config(config, route, stop),
            route=route,
            call=self._call_kwargs(stop, kwargs),
        )
        async with aclosing(stream):
            async for chunk in stream:
                yield chunk

    async def _astream_run(
        self,
        inputs: AsyncIterator[list[BaseMessage]],
        config: RunnableConfig,
        *,
        route: Route,
        call: dict[str, Any],
    ) -> AsyncIterator[AIMessageChunk]:
        messages = await anext(inputs)
        convert = _V1Blocks() if self.output_version == "v1" else None
        async with aclosing(self._astream_child(route, messages, config, call)) as chunks:
            async for chunk in chunks:
                yield convert(chunk) if convert else chunk

    # ---- BaseChatModel hooks (generate(), stream_events(version="v3")) ------------------------------------
    # invoke/stream above run the router as a chain run with the child's chat-model run beneath it, so token
    # usage is reported once, by the child. On these paths BaseChatModel opens a chat-model run for the router
    # itself before routing: the decision is on that run's output (response_metadata["routellm"] and the
    # generation_info), and the router's own message leaves usage_metadata to the child's nested run, so a
    # tracer that sums usage over chat-model runs counts it once.
    def _hook_config(self, route: Route, run_manager: Any) -> RunnableConfig:
        # Chat-model run managers have no get_child(); build the same child manager by hand.
        config: RunnableConfig = {"callbacks": child_callbacks(run_manager) if run_manager else None}
        return run_config(config, self._engine.planned(route))

    @staticmethod
    def _hook_generation(message: AIMessage) -> ChatGeneration:
        record = message.response_metadata.get("routellm")
        return ChatGeneration(
            message=message.model_copy(update={"usage_metadata": None}), generation_info={"routellm": record}
        )

    @staticmethod
    def _replayed(result: ChatResult) -> ChatResult:
        """``result`` with each generation LangChain's cache replayed (its message marked as a cache hit) carrying
        :func:`replayed_record` of the first call's record; new generations (the cache's own are never changed)."""
        generations: list[ChatGeneration] = []
        for generation in result.generations:
            record = generation.message.response_metadata.get(METADATA_KEY)
            if not (isinstance(record, Mapping) and cache_hit(generation.message)):
                generations.append(generation)
                continue
            record = replayed_record(record)
            message = generation.message.model_copy(
                update={"response_metadata": {**generation.message.response_metadata, METADATA_KEY: record}}
            )
            info = {**(generation.generation_info or {}), METADATA_KEY: record}
            generations.append(ChatGeneration(message=message, generation_info=info))
        return ChatResult(generations=generations, llm_output=result.llm_output)

    def _generate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """BaseChatModel's cached generation; a cache hit's record says so (see :meth:`_replayed`)."""
        return self._replayed(super()._generate_with_cache(messages, stop, run_manager, **kwargs))

    async def _agenerate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async :meth:`_generate_with_cache`."""
        return self._replayed(await super()._agenerate_with_cache(messages, stop, run_manager, **kwargs))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route = self._route(messages)
        config = self._hook_config(route, run_manager)
        message = self._invoke_child(route, messages, config, self._call_kwargs(stop, kwargs))
        return ChatResult(generations=[self._hook_generation(message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route = await self._aroute(messages)
        config = self._hook_config(route, run_manager)
        message = await self._ainvoke_child(route, messages, config, self._call_kwargs(stop, kwargs))
        return ChatResult(generations=[self._hook_generation(message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # Token callbacks are fired by BaseChatModel itself on these paths, and by the child's own run.
        route = self._route(messages)
        config = self._hook_config(route, run_manager)
        for chunk in self._stream_child(route, messages, config, self._call_kwargs(stop, kwargs)):
            yield ChatGenerationChunk(message=chunk.model_copy(update={"usage_metadata": None}))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        route = await self._aroute(messages)
        config = self._hook_config(route, run_manager)
        async with aclosing(self._astream_child(route, messages, config, self._call_kwargs(stop, kwargs))) as chunks:
            async for chunk in chunks:
                yield ChatGenerationChunk(message=chunk.model_copy(update={"usage_metadata": None}))

    # ---- tools and structured output -------------------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind the tools to both children (every listed model with ``models=[...]``; each converts them to its
        provider's format).

        Args:
            tools: Tools as accepted by the children's ``bind_tools``.
            tool_choice: Passed to every child when given (``"any"``, ``"auto"``, a tool name...).
            **kwargs: Passed to every child's ``bind_tools`` (e.g. ``parallel_tool_calls``).

        Returns:
            A ``RunnableBinding`` over a copy of this router whose children have the tools bound; it shares
            this router's engine (policy, and among N models the budget controller).

        Raises:
            NotImplementedError: A child does not support tool calling (the message names it).
        """
        extra = dict(kwargs)
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice
        if isinstance(self.models, dict):
            members = {name: (f"model {name!r}", model) for name, model in self.models.items()}
        else:
            members = {
                side: (f"{side} model {self._engine.names[side]!r}", self._child(side))  # type: ignore[index]
                for side in ("strong", "weak")
            }
        bound: dict[str, Any] = {}
        for key, (what, child) in members.items():
            try:
                bound[key] = child.bind_tools(tools, **extra)
            except NotImplementedError as exc:
                raise NotImplementedError(f"the {what} does not support tool calling: {exc}") from exc
        copy = self.model_copy(update={"models": bound} if isinstance(self.models, dict) else bound)
        if self._second is not None:  # the escalation check's second model answers with the same tools
            copy._second = self._second.bind_tools(tools, **extra)
        return copy.bind()

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output from whichever child the router picks, each using its own native method.

        Builds ``with_structured_output(schema, include_raw=include_raw, **kwargs)`` on both children (every listed
        model with ``models=[...]``) and routes between them with a :class:`~langchain_routellm.RouteLLMRunnable`
        sharing this router's policy, prices and feedback store (among N models its names, objective and priors;
        a budget is held by its own controller). The decision is in the run's metadata and tags, and on ``raw``
        when ``include_raw=True``. Under ``escalate`` the second answer is structured too (``Escalation.second``'s
        own, or the cheap model's, sampled again) and the record names and prices it as for plain calls;
        self-verification asks the cheap chat model about the structured answer.
        """
        from langchain_routellm.runnables import RouteLLMRunnable

        def structured(model: Any) -> Runnable:
            if include_raw:
                return unwrap_model(model).with_structured_output(schema, include_raw=True, **kwargs)
            return ParsedOnly(unwrap_model(model), schema, kwargs)  # the raw message still prices the record

        common: dict[str, Any] = {
            "router": self.policy,
            "route_on": self.route_on,
            "tool_step": self.tool_step,
            "fallback": self.fallback,
            # the built second model (the runnable names the check's attempt by it); its structured form is set below
            "escalate": self.escalate if self._second is None else replace(self.escalate, second=self._second),
            "prices": self.prices,
            "feedback": self.feedback_store,  # the same store: verdicts attach to these decision ids too
            "name": f"{self.get_name()}[structured]",
        }
        cheap: dict[str, Any]
        if isinstance(self.models, dict):
            runnable = RouteLLMRunnable(
                models={name: structured(model) for name, model in self.models.items()},
                objective=self._engine.objective,  # type: ignore[union-attr]
                priors=self.priors,
                **common,
            )
            cheap = dict(self.models)
        else:
            runnable = RouteLLMRunnable(
                strong=structured(self._child("strong")),
                weak=structured(self._child("weak")),
                strong_name=self._engine.names["strong"],  # type: ignore[index]
                weak_name=self._engine.names["weak"],  # type: ignore[index]
                **common,
            )
            cheap = {self._engine.names["weak"]: self._child("weak")}  # type: ignore[index]
        if self.escalate is not None:
            if self._second is not None:
                runnable._second = structured(self._second)
            elif not self.escalate.climb:  # a climb's second answer is the next model's own
                runnable._resampled = {
                    name: structured(_warmer(model, self._resample_kwargs)) for name, model in cheap.items()
                }
            runnable._verify, runnable._averify = self._verify_structured, self._averify_structured
        return runnable

    def _verify_structured(self, input: LanguageModelInput, record: ServedDecision, answer: Any, config: Any) -> Any:
        """The self-verification question about a structured answer, asked of the cheap chat model ``record`` names
        (the answer written out as JSON)."""
        question = verification_messages(self._messages(input), answer)
        return self._called("weak", record.model).invoke(question, check_config(config, record))

    async def _averify_structured(
        self, input: LanguageModelInput, record: ServedDecision, answer: Any, config: Any
    ) -> Any:
        """Async :meth:`_verify_structured`."""
        question = verification_messages(self._messages(input), answer)
        return await self._called("weak", record.model).ainvoke(question, check_config(config, record))


def _warmer(child: Any, extra: Mapping[str, Any]) -> Any:
    """The chat model under ``child`` asked to sample again: a copy with ``extra`` (a warmer temperature) when its
    fields take them, else the model as it is."""
    model = unwrap_model(child)
    if extra and set(extra) <= set(type(model).model_fields):
        return model.model_copy(update=dict(extra))
    return model
