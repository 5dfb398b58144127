"""RouteLLMMiddleware: per-step routing between two models (or among N priced ones) inside a LangChain 1.x agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from langchain.agents.middleware import (
    AgentMiddleware,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain.agents.structured_output import StructuredOutputError
from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager, Callbacks
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from langchain_routellm._answers import answer_logprobs, answer_usage, answer_value, verification_messages
from langchain_routellm._messages import child_messages
from langchain_routellm._models import model_name
from langchain_routellm._outputs import chunk_text, is_empty_output, record_of
from langchain_routellm._routing import (
    NOSTREAM_TAG,
    Engine,
    TokenWatch,
    aroute_messages,
    build_engine,
    check_members,
    init_child,
    ladder_members,
    priors_by_name,
    route_messages,
    side_name,
)
from routellm_core.decisions import METADATA_KEY, Route, ServedDecision, Side
from routellm_core.errors import close_name, reraise_routellm_error, unknown_options_error
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.learning.labelling import TrafficLabelling
from routellm_core.routing.cascade import SAMPLE_TEMPERATURE
from routellm_core.routing.engine import ROUTING_FIELDS, RoutingOptions, accepted_keys
from routellm_core.routing.policy import RoutingPolicy

_OWNER = "RouteLLMMiddleware"
#: Tags of a held weak answer and of the escalation check's second answer: kept off LangGraph's token stream.
_HELD = ("routellm:held", NOSTREAM_TAG)
_CHECK = ("routellm:check", NOSTREAM_TAG)
#: The options the middleware itself takes (any other keyword argument is for models given as strings).
_OPTIONS = ROUTING_FIELDS | {"strong", "weak", "models", "names"}


def _init_model(spec: str | BaseChatModel, kwargs: dict[str, Any], field: str) -> BaseChatModel:
    model = init_child(spec, kwargs, field)
    if not isinstance(model, BaseChatModel):  # the agent binds its tools itself: a bare chat model is needed
        raise TypeError(f"{field} must be a BaseChatModel or a 'provider:model' string, got {type(model).__name__}")
    return model


def _string_specs(strong: Any, weak: Any, models: Any, second: Any) -> list[str]:
    """The models given as ``"provider:model"`` strings (built by ``init_chat_model`` with the extra kwargs)."""
    listed = list(models.values()) if isinstance(models, Mapping) else list(models or ())
    return [spec for spec in (strong, weak, *listed, second) if isinstance(spec, str)]


def _check_model_kwargs(kwargs: Mapping[str, Any], strings: Sequence[str]) -> None:
    """Refuse keyword arguments that are no option when no model is given as a string (nothing would read them).

    Raises:
        InvalidInputError: Naming the keys and the nearest option.
    """
    if kwargs and not strings:
        raise unknown_options_error(
            _OWNER,
            kwargs,
            _OPTIONS,
            "other keyword arguments are init_chat_model arguments for models given as 'provider:model' strings, "
            "and no model here is one",
        )


def _check_typos(kwargs: Mapping[str, Any], built: Sequence[BaseChatModel]) -> None:
    """Refuse the keyword arguments passed to models built from strings that look like a misspelt option and are no
    field of any of those models (the provider would otherwise be sent them on every call).

    Raises:
        InvalidInputError: Naming the keys and the nearest option.
    """
    taken = set().union(*(accepted_keys(type(model)) for model in built))
    typos = [key for key in kwargs if key not in taken and close_name(key, _OPTIONS) is not None]
    if typos:
        kinds = ", ".join(sorted({type(model).__name__ for model in built}))
        raise unknown_options_error(
            _OWNER, typos, _OPTIONS, f"not a field of {kinds} either, so the provider would be sent it on every call"
        )


def _response_message(response: Any) -> BaseMessage | None:
    """The AI message of a model-call result (ModelResponse, ExtendedModelResponse or AIMessage)."""
    if isinstance(response, ExtendedModelResponse):
        response = response.model_response
    if isinstance(response, BaseMessage):
        return response
    if isinstance(response, ModelResponse):
        return next((m for m in response.result if isinstance(m, AIMessage)), None)
    return None


def _plain(request: ModelRequest) -> list[BaseMessage]:
    """The step's conversation with its system message, for asking the other model without tools."""
    system = getattr(request, "system_message", None)
    messages = child_messages(request.messages)
    return [system, *messages] if isinstance(system, BaseMessage) else messages


def _with_handler(callbacks: Callbacks, handler: BaseCallbackHandler) -> Callbacks:
    """A model's own callbacks (a list, a callback manager or None) with ``handler`` added; a manager is copied,
    never changed (the caller's model keeps it)."""
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=False)  # a model's own handlers are local to its run, as a list's are
        return manager
    return [*(callbacks or []), handler]


def _check_config(record: ServedDecision) -> RunnableConfig:
    """The config of the self-verification question's run: the decision in its metadata and tagged as the step's
    other runs are (the agent's own callbacks, tags and metadata come from the model node's context)."""
    return {"tags": [f"routellm:{record.served}", *_CHECK], "metadata": {METADATA_KEY: record.as_dict()}}


def _is_empty_response(response: Any) -> bool:
    message = _response_message(response)
    if message is None:
        return isinstance(response, ModelResponse) and not response.result
    return is_empty_output(message)


def _annotate(response: Any, record: ServedDecision) -> Any:
    """Attach the decision to the AI message(s) of a model-call result (copies, never mutates); a message LangChain's
    cache served says ``cached: True``."""

    def mark(message: BaseMessage) -> BaseMessage:
        if not isinstance(message, AIMessage):
            return message
        meta = record_of(message, record)
        return message.model_copy(update={"response_metadata": {**message.response_metadata, METADATA_KEY: meta}})

    if isinstance(response, ExtendedModelResponse):
        return ExtendedModelResponse(
            model_response=_annotate(response.model_response, record), command=response.command
        )
    if isinstance(response, ModelResponse):
        return ModelResponse(
            result=[mark(m) for m in response.result], structured_response=response.structured_response
        )
    if isinstance(response, AIMessage):
        return mark(response)
    return response


class RouteLLMMiddleware(AgentMiddleware):
    """Agent middleware that routes every model call of an agent between a strong and a weak model.

    Each step is routed anew from the conversation in the model request (``request.messages``): by default
    on the latest human message's text. The agent binds its tools to whichever model is chosen, so a tool
    call always meets a model with the tools bound.

    Steps whose last message is a tool result (``tool_step``):
        - ``"continue"`` (default): the step goes to the model that issued the tool call, read from the
          ``response_metadata["routellm"]`` this middleware attached to that AI message (after a fallback,
          the model that actually answered). Without that metadata (e.g. a history from elsewhere) the step
          is routed on the latest human message.
        - ``"route"``: routed like any other step; tool results never become the routing text, so with
          ``route_on="last_human"`` the step is scored on the same human message as the step that issued
          the call.

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain_routellm import RouteLLMMiddleware

        agent = create_agent(
            model="openai:gpt-4o-mini",  # replaced at every step by the routed model
            tools=[get_weather],
            middleware=[RouteLLMMiddleware(strong="openai:gpt-4o", weak="openai:gpt-4o-mini")],
        )
        ```

    Among N priced models (``models=[...]``) each step goes to the model ``objective`` picks, the agent binds its
    tools to that model, and a tool step continues on the pair of the step that called the tool (escalation and
    fallback go to the pair's costlier model).

    Args:
        strong: The strong model (a chat model or a ``"provider:model"`` string).
        weak: The weak model.
        models: Instead of ``strong`` / ``weak``: N priced models (chat models or ``"provider:model"`` strings), a
            list (named by ``names``, else by each model's own name) or a dict ``{name: model}``.
        names: With a list ``models``: the models' names, in the same order.
        objective: With ``models``: how a step's model is picked (an ``Objective`` or ``"margin=0.05"``...).
        priors: With ``models``: ``{name: ModelPrior(...)}`` for models the router has no profile for (a model
            given as a ``"provider:model"`` string may be keyed by that string or by the name of the model it built).
        router: Router (``"default"``, checkpoint path, registry name, router instance or RoutingPolicy).
        threshold: Send to strong when P(strong wins) >= threshold (default: the router's calibrated threshold for
            half of its calibration traffic; 0.5 without calibration).
        strong_fraction: Instead of a threshold, the target fraction of strong calls (calibrated).
        embedder: Embedder to load the router with.
        route_on: ``"last_user"`` (alias ``"last_human"``), ``"conversation"`` or ``"rag_query"``.
        tool_step: Policy for steps whose last message is a tool result (see above).
        fallback: When the chosen model fails or answers empty, call the other once; the message's
            metadata records it. Off by default: a failure raises ``ModelCallError`` naming the model.
        strong_name: Name reported for the strong model (derived from the model when ``None``).
        weak_name: Name reported for the weak model.
        feedback: A ``FeedbackStore`` or a path: every routed step's decision is recorded there.
        judge: Judge for ``label_fraction`` (a chat model, a ``PairwiseJudge`` or a callable).
        label_fraction: Share of steps with a text answer on which the other model is also asked (on the same
            messages, without tools) in the background and the pair judged into ``feedback``.
        label_seed: Seed of the sampling.
        escalate: An :class:`~routellm_core.escalation.Escalation`: a step routed to the weak model gets a second
            cheap answer (with the agent's tools bound) at once, and the strong model answers the step when the two
            disagree (on the tool call, or on the final answer); its ``second`` is a chat model or a
            ``"provider:model"`` string (``None``: the weak model sampled again).
        prices: USD per million input and output tokens by model name (the records' costs; with ``models``, the
            expected costs the objective weighs).
        **model_kwargs: Extra ``init_chat_model`` arguments for models given as strings.

    Raises:
        InvalidInputError: A keyword argument that is no option while no model is given as a string, or one that
            looks like a misspelt option (``treshold=``) and is no field of the models built from strings.
    """

    def __init__(
        self,
        *,
        strong: str | BaseChatModel | None = None,
        weak: str | BaseChatModel | None = None,
        models: Sequence[str | BaseChatModel] | Mapping[str, str | BaseChatModel] | None = None,
        names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        routing = {name: kwargs.pop(name) for name in ROUTING_FIELDS if name in kwargs}
        try:
            options = RoutingOptions(**routing)
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise
        check_members(_OWNER, models=models, strong=strong, weak=weak, names=names, options=options)
        second = options.escalate.second if options.escalate is not None else None
        _check_model_kwargs(kwargs, _string_specs(strong, weak, models, second))
        from_strings: list[BaseChatModel] = []

        def build(spec: str | BaseChatModel, field: str) -> BaseChatModel:
            model = _init_model(spec, kwargs, field)
            if isinstance(spec, str):
                from_strings.append(model)
            return model

        #: The models by side (``"strong"`` / ``"weak"``), or with ``models=[...]`` by name.
        self.models: dict[str, BaseChatModel]
        self._by_name = models is not None  # models keyed by name (models=[...]), not by side
        listed: dict[Side, str] | list[str]
        if models is not None:
            self.models = ladder_members(models, names, build, _OWNER)
            listed = list(self.models)
            if options.priors:  # a prior keyed "openai:gpt-5" is for the model that string built, named gpt-5
                options = options.model_copy(update={"priors": priors_by_name(options.priors, models, listed)})
        else:
            assert strong is not None and weak is not None
            self.models = {"strong": build(strong, "strong"), "weak": build(weak, "weak")}
            listed = {
                "strong": options.strong_name or model_name(self.models["strong"]),
                "weak": options.weak_name or model_name(self.models["weak"]),
            }
        self.second: BaseChatModel | None = build(second, "escalate.second") if second else None
        _check_typos(kwargs, from_strings)
        # The agent's structured-output errors are its own to handle (retry with the error message): never wrapped
        # as a model failure, never a reason to call the other model.
        self.engine: Engine = build_engine(
            options,
            listed,
            owner=_OWNER,
            is_empty=_is_empty_response,
            answer_text=lambda response: chunk_text(_response_message(response)),
            passthrough=(StructuredOutputError,),
            second_name=model_name(self.second) if self.second is not None else None,
            answer_value=lambda response: answer_value(_response_message(response)),
            usage=lambda response: answer_usage(_response_message(response)),
            logprobs=lambda response: answer_logprobs(_response_message(response)),
        )
        self.tools = []

    @property
    def options(self) -> RoutingOptions:
        """The routing options (router, threshold, route_on, tool_step, fallback, feedback...)."""
        return self.engine.options

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy (router + threshold in force)."""
        return self.engine.policy

    @property
    def names(self) -> dict[Side, str] | tuple[str, ...]:
        """Names of the two models by side, as reported in metadata; with ``models=[...]``, the listed names."""
        return self.engine.names

    @property
    def feedback_store(self) -> FeedbackStore | None:
        """The feedback store (``feedback=``), to attach verdicts by decision id; ``None`` without one."""
        return self.engine.feedback_store

    @property
    def labelling(self) -> TrafficLabelling | None:
        """The labelling of these steps, if configured."""
        return self.engine.labelling

    def __repr__(self) -> str:
        if isinstance(self.names, tuple):
            return (
                f"RouteLLMMiddleware(models={list(self.names)!r}, objective={self.engine.objective}, "  # type: ignore[union-attr]
                f"policy={self.policy!r}, route_on={self.options.route_on!r}, tool_step={self.options.tool_step!r}, "
                f"fallback={self.options.fallback})"
            )
        return (
            f"RouteLLMMiddleware(strong={self.names['strong']!r}, weak={self.names['weak']!r}, "
            f"policy={self.policy!r}, route_on={self.options.route_on!r}, tool_step={self.options.tool_step!r}, "
            f"fallback={self.options.fallback})"
        )

    def _model(self, side: Side, name: str) -> BaseChatModel:
        """The model answering for ``side`` under a record naming model ``name``: among N models the listed model of
        that name, else the side's."""
        return self.models[name] if self._by_name else self.models[side]

    def _second_model(self, name: str) -> BaseChatModel:
        """The model giving the escalation check's second answer: ``Escalation.second``, else the weak model (the
        chosen one, named ``name``) sampled again (warmer, when it has a temperature)."""
        if self.second is not None:
            return self.second
        weak = self._model("weak", name)
        if "temperature" in type(weak).model_fields:
            return weak.model_copy(update={"temperature": SAMPLE_TEMPERATURE})
        return weak

    def _other(self, route: Route, side: Side) -> BaseChatModel:
        """The model standing for ``side`` in ``route`` (the labeller's other side)."""
        return self._model(side, side_name(self.engine, route, side))

    def _request_for(
        self,
        request: ModelRequest,
        record: ServedDecision,
        watch: TokenWatch,
        *,
        model: BaseChatModel | None = None,
        tags: tuple[str, ...] = (),
    ) -> ModelRequest:
        """The request with the model for the record's side (or ``model``), which carries the decision in its run
        metadata and a watch on the tokens it streams through the agent's callbacks; ``tags`` added."""
        model = model or self._model(record.served, record.model)
        tags = (*(model.tags or []), f"routellm:{record.served}", *tags)
        if record.fallback:
            tags = (*tags, "routellm:fallback")
        elif record.escalated:
            tags = (*tags, "routellm:escalated")
        update: dict[str, Any] = {
            "metadata": {**(model.metadata or {}), METADATA_KEY: record.as_dict()},
            "tags": list(tags),
        }
        update["callbacks"] = _with_handler(model.callbacks, watch)
        return request.override(model=model.model_copy(update=update), messages=child_messages(request.messages))

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> Any:
        """Route this step, then call the handler with the chosen model."""
        route = route_messages(self.engine, request.messages)

        def attempt(side: Side, record: ServedDecision) -> Any:
            watch = TokenWatch()
            try:
                tags = _HELD if self.engine.held_attempt(route, record) else ()
                return handler(self._request_for(request, record, watch, tags=tags))
            except Exception as exc:
                raise watch.failure(exc) from exc

        def second(record: ServedDecision) -> Any:
            model = self._second_model(record.model)
            return handler(self._request_for(request, record, TokenWatch(), model=model, tags=_CHECK))

        def verify(record: ServedDecision, response: Any) -> Any:
            question = verification_messages(_plain(request), _response_message(response))
            return self._model("weak", record.model).invoke(question, _check_config(record))

        def other_answer(side: Side) -> str:
            return chunk_text(self._other(route, side).invoke(_plain(request)))

        response, record = self.engine.call(route, attempt, other_answer=other_answer, second=second, verify=verify)
        return _annotate(response, record)

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> Any:
        """Async :meth:`wrap_model_call`."""
        route = await aroute_messages(self.engine, request.messages)

        async def attempt(side: Side, record: ServedDecision) -> Any:
            watch = TokenWatch()
            try:
                tags = _HELD if self.engine.held_attempt(route, record) else ()
                return await handler(self._request_for(request, record, watch, tags=tags))
            except Exception as exc:
                raise watch.failure(exc) from exc

        async def second(record: ServedDecision) -> Any:
            model = self._second_model(record.model)
            return await handler(self._request_for(request, record, TokenWatch(), model=model, tags=_CHECK))

        async def verify(record: ServedDecision, response: Any) -> Any:
            question = verification_messages(_plain(request), _response_message(response))
            return await self._model("weak", record.model).ainvoke(question, _check_config(record))

        async def other_answer(side: Side) -> str:
            return chunk_text(await self._other(route, side).ainvoke(_plain(request)))

        response, record = await self.engine.acall(
            route, attempt, other_answer=other_answer, second=second, verify=verify
        )
        return _annotate(response, record)
