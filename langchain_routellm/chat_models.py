"""ChatRouteLLM: a chat model that routes each call between a strong and a weak chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.runnables.config import merge_configs
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_serializer, model_validator
from typing_extensions import Self

from langchain_routellm._routing import (
    Route,
    RouteEngine,
    aroute_messages,
    build_policy,
    route_messages,
)
from langchain_routellm._utils import (
    RouteOn,
    Tier,
    ToolStep,
    as_chunk,
    child_callbacks,
    model_name,
    model_provider,
    reraise_routellm_error,
    unwrap_model,
    with_metadata,
)
from routellm_core.embedders import Embedder
from routellm_core.policy import RoutingPolicy, router_label
from routellm_core.routers.base import WinRateModel

_OWNER = "ChatRouteLLM"


def _init_child(spec: Any, kwargs: dict[str, Any], field: str) -> Any:
    """A child model from a ``"provider:model"`` string (through ``init_chat_model``) or as given."""
    if isinstance(spec, str):
        from langchain.chat_models import init_chat_model

        try:
            return init_chat_model(spec, **kwargs)
        except (ImportError, ValueError) as exc:
            raise ValueError(f"cannot build the {field} model from {spec!r}: {exc}") from exc
    if not isinstance(unwrap_model(spec), BaseChatModel):
        raise TypeError(
            f"{field} must be a chat model (BaseChatModel, possibly with bound tools) or a "
            f"'provider:model' string, got {type(spec).__name__}"
        )
    return spec


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


class ChatRouteLLM(BaseChatModel):
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
        # {'router': 'mf', 'win_rate': 0.71, 'threshold': 0.5, 'choice': 'strong',
        #  'model': 'gpt-4o', 'fallback': False, 'continued': False}
        ```

    Stream, batch, async, tools, structured output:
        ```python
        for chunk in llm.stream("Hi!"): ...          # the first chunk carries the decision
        llm.batch(["Hi", "Explain RLHF"])            # routed one by one, scored in micro-batches
        await llm.ainvoke("...")
        llm.bind_tools([get_weather])                # binds the tools to both children
        llm.with_structured_output(Answer)           # each child's own structured output, routed
        ```

    Tracing: a call is a ``ChatRouteLLM`` run whose metadata holds ``routellm`` (the decision) and the
    chosen model's ``ls_provider`` / ``ls_model_name``, tagged ``routellm:strong`` or ``routellm:weak``; the
    chosen child's own chat-model run nests under it (so token usage is counted once, on the child's run).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    strong: BaseChatModel | Runnable | str
    """The strong (expensive) model: a chat model, or a ``"provider:model"`` string for ``init_chat_model``."""

    weak: BaseChatModel | Runnable | str
    """The weak (cheap) model: a chat model, or a ``"provider:model"`` string for ``init_chat_model``."""

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

    route_on: RouteOn = "last_human"
    """Routing text: ``"last_human"`` (latest human message's text) or ``"conversation"`` (all human/AI text)."""

    tool_step: ToolStep = "continue"
    """A call whose last message is a tool result: ``"continue"`` with the model that issued the tool call
    (read from its ``routellm`` metadata), or ``"route"`` it like any other call."""

    fallback: bool = False
    """When the chosen model fails or answers empty before any output, call the other model once."""

    strong_name: str | None = None
    """Name reported for the strong model in metadata and errors; derived from the model when ``None``."""

    weak_name: str | None = None
    """Name reported for the weak model in metadata and errors; derived from the model when ``None``."""

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

    _policy: RoutingPolicy = PrivateAttr()
    _names: dict[Tier, str] = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        """Validate the fields; the router's own errors (unknown router, bad threshold...) keep their type."""
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise

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
        self.strong = _init_child(self.strong, init_kwargs, "strong")
        self.weak = _init_child(self.weak, init_kwargs, "weak")
        self._policy = build_policy(self.router, self.threshold, self.strong_fraction, self.embedder)
        self._names = {
            "strong": self.strong_name or model_name(self.strong),
            "weak": self.weak_name or model_name(self.weak),
        }
        return self

    # ---- identity --------------------------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "routellm"

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy (router + threshold in force), shared by copies made by ``bind_tools``."""
        return self._policy

    @property
    def model_names(self) -> dict[Tier, str]:
        """Names of the two children, as reported in metadata."""
        return dict(self._names)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "router": self._policy.router_name,
            "threshold": self._policy.threshold,
            "strong": self._names["strong"],
            "weak": self._names["weak"],
            "route_on": self.route_on,
            "tool_step": self.tool_step,
            "fallback": self.fallback,
        }

    def _child(self, tier: Tier) -> Any:
        return self.strong if tier == "strong" else self.weak

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """LangSmith params: the chosen model's provider and name when known (``routellm_choice``), else
        ``ls_provider="routellm"`` and ``"<strong>|<weak>"``; a per-call ``model`` kwarg wins."""
        choice = kwargs.get("routellm_choice")
        params = LangSmithParams(
            ls_provider="routellm",
            ls_model_name=f"{self._names['strong']}|{self._names['weak']}",
            ls_model_type="chat",
        )
        if choice in ("strong", "weak"):
            params["ls_model_name"] = self._names[choice]
            params["ls_provider"] = model_provider(self._child(choice)) or "routellm"
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
    def _engine(self) -> RouteEngine:
        return RouteEngine(self._names, fallback=self.fallback, owner=_OWNER)

    def _messages(self, input: LanguageModelInput) -> list[BaseMessage]:
        return self._convert_input(input).to_messages()

    def _route(self, messages: Sequence[BaseMessage]) -> Route:
        return route_messages(self._policy, messages, self.route_on, self.tool_step)

    async def _aroute(self, messages: Sequence[BaseMessage]) -> Route:
        return await aroute_messages(self._policy, messages, self.route_on, self.tool_step)

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
        ls = {
            k: v
            for k, v in self._get_ls_params(stop, routellm_choice=route.choice).items()
            if k in ("ls_provider", "ls_model_name", "ls_model_type")
        }
        return self._engine().run_config(base, route, ls)

    def _call_kwargs(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        call = {k: v for k, v in kwargs.items() if k != "routellm_choice"}
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

    # ---- invoke ----------------------------------------------------------------------------------------
    def _invoke_child(
        self, route: Route, messages: list[BaseMessage], config: RunnableConfig, call: dict[str, Any]
    ) -> AIMessage:
        engine = self._engine()
        if self.streaming:
            full: AIMessageChunk | None = None
            for chunk in self._stream_child(route, messages, config, call, engine):
                full = chunk if full is None else full + chunk
            assert full is not None  # the engine raises on an empty stream
            return self._finish(full)

        def attempt(tier: Tier, error: BaseException | None) -> Any:
            return self._child(tier).invoke(messages, engine.child_config(config, route, tier, error), **call)

        value, meta = engine.call(route, attempt)
        return self._finish(with_metadata(value, meta))

    async def _ainvoke_child(
        self, route: Route, messages: list[BaseMessage], config: RunnableConfig, call: dict[str, Any]
    ) -> AIMessage:
        engine = self._engine()
        if self.streaming:
            full: AIMessageChunk | None = None
            async for chunk in self._astream_child(route, messages, config, call, engine):
                full = chunk if full is None else full + chunk
            assert full is not None
            return self._finish(full)

        async def attempt(tier: Tier, error: BaseException | None) -> Any:
            return await self._child(tier).ainvoke(messages, engine.child_config(config, route, tier, error), **call)

        value, meta = await engine.acall(route, attempt)
        return self._finish(with_metadata(value, meta))

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
        engine: RouteEngine,
    ) -> Iterator[AIMessageChunk]:
        def open_stream(tier: Tier, error: BaseException | None) -> Iterator[Any]:
            child_config = engine.child_config(config, route, tier, error)
            return (as_chunk(c) for c in self._child(tier).stream(messages, child_config, **call))

        last: AIMessageChunk | None = None
        for chunk, _meta in engine.stream(route, open_stream):
            last = chunk
            yield chunk
        if last is not None and last.chunk_position != "last":
            yield AIMessageChunk(content="", chunk_position="last", id=last.id)

    async def _astream_child(
        self,
        route: Route,
        messages: list[BaseMessage],
        config: RunnableConfig,
        call: dict[str, Any],
        engine: RouteEngine,
    ) -> AsyncIterator[AIMessageChunk]:
        async def open_stream(tier: Tier, error: BaseException | None) -> AsyncIterator[Any]:
            child_config = engine.child_config(config, route, tier, error)
            async for c in self._child(tier).astream(messages, child_config, **call):
                yield as_chunk(c)

        last: AIMessageChunk | None = None
        async for chunk, _meta in engine.astream(route, open_stream):
            last = chunk
            yield chunk
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
        chunks = self._stream_child(route, messages, config, call, self._engine())
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
        async for chunk in self._atransform_stream_with_config(
            _aone(messages),
            self._astream_run,
            self._run_config(config, route, stop),
            route=route,
            call=self._call_kwargs(stop, kwargs),
        ):
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
        async for chunk in self._astream_child(route, messages, config, call, self._engine()):
            yield convert(chunk) if convert else chunk

    # ---- BaseChatModel hooks (generate(), stream_events(version="v3")) ------------------------------------
    # invoke/stream above do not go through these; they serve the BaseChatModel code paths that create a
    # chat-model run themselves. The child then nests under that run via run_manager.get_child().
    def _hook_config(self, route: Route, run_manager: Any) -> RunnableConfig:
        # Chat-model run managers have no get_child(); build the same child manager by hand.
        config: RunnableConfig = {"callbacks": child_callbacks(run_manager) if run_manager else None}
        return self._engine().run_config(config, route)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route = self._route(messages)
        message = self._invoke_child(
            route, messages, self._hook_config(route, run_manager), self._call_kwargs(stop, kwargs)
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        route = await self._aroute(messages)
        message = await self._ainvoke_child(
            route, messages, self._hook_config(route, run_manager), self._call_kwargs(stop, kwargs)
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

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
        for chunk in self._stream_child(route, messages, config, self._call_kwargs(stop, kwargs), self._engine()):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        route = await self._aroute(messages)
        config = self._hook_config(route, run_manager)
        async for chunk in self._astream_child(
            route, messages, config, self._call_kwargs(stop, kwargs), self._engine()
        ):
            yield ChatGenerationChunk(message=chunk)

    # ---- tools and structured output -------------------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind the tools to both children (each converts them to its provider's format).

        Args:
            tools: Tools as accepted by the children's ``bind_tools``.
            tool_choice: Passed to both children when given (``"any"``, ``"auto"``, a tool name...).
            **kwargs: Passed to both children's ``bind_tools`` (e.g. ``parallel_tool_calls``).

        Returns:
            A ``RunnableBinding`` over a copy of this router whose children have the tools bound; it shares
            this router's policy.

        Raises:
            NotImplementedError: A child does not support tool calling.
        """
        extra = dict(kwargs)
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice
        bound: dict[str, Any] = {}
        for tier in ("strong", "weak"):
            child = self._child(tier)
            try:
                bound[tier] = child.bind_tools(tools, **extra)
            except NotImplementedError as exc:
                raise NotImplementedError(
                    f"the {tier} model {self._names[tier]!r} does not support tool calling: {exc}"
                ) from exc
        return self.model_copy(update=bound).bind()

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output from whichever child the router picks, each using its own native method.

        Builds ``with_structured_output(schema, include_raw=include_raw, **kwargs)`` on both children and
        routes between them with a :class:`~langchain_routellm.RouteLLMRunnable` sharing this router's
        policy. The decision is in the run's metadata and tags, and on ``raw`` when ``include_raw=True``.
        """
        from langchain_routellm.runnables import RouteLLMRunnable

        children = {
            tier: unwrap_model(self._child(tier)).with_structured_output(schema, include_raw=include_raw, **kwargs)
            for tier in ("strong", "weak")
        }
        return RouteLLMRunnable(
            strong=children["strong"],
            weak=children["weak"],
            router=self._policy,
            route_on=self.route_on,
            tool_step=self.tool_step,
            fallback=self.fallback,
            strong_name=self._names["strong"],
            weak_name=self._names["weak"],
            name=f"{self.get_name()}[structured]",
        )
