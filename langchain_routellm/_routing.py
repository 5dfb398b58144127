"""LangChain glue over the core routed-call engine: messages to a route, a decision into run configs.

The call / fallback / stream / labelling logic and the decision record live once in
:mod:`routellm_core.routing.engine` (two models) and :mod:`routellm_core.routing.ladder` (``models=[...]``: N priced
models, each call run on a pair); this module only adds what LangChain needs: the engine with LangChain's answer
rules, the listed models by name, reading routes from LangChain messages (and continuing an agent's tool step on the
model that issued the tool call), and putting the decision into the router's run and a fallback child's run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs

from langchain_routellm._answers import answer_logprobs, answer_usage, answer_value, join_chunks
from langchain_routellm._messages import routing_text, tool_step_record
from langchain_routellm._models import model_name, unwrap_model
from langchain_routellm._outputs import chunk_text, is_empty_output
from routellm_core.decisions import METADATA_KEY, Route, ServedDecision, Side
from routellm_core.errors import InvalidInputError
from routellm_core.learning.judging import Judge, PairwiseJudge
from routellm_core.routing.dispatch import PartialOutputError
from routellm_core.routing.engine import RoutingEngine, RoutingOptions
from routellm_core.routing.ladder import LadderEngine

try:  # LangGraph control-flow signals (interrupts, parent commands) must pass through untouched.
    from langgraph.errors import GraphBubbleUp as _GraphBubbleUp
except ImportError:  # pragma: no cover - langgraph ships with langchain 1.x

    class _GraphBubbleUp(Exception):  # type: ignore[no-redef]
        pass


T = TypeVar("T")

#: The engine of a front end: two models (``strong`` / ``weak``) or N priced models (``models=[...]``).
Engine = RoutingEngine | LadderEngine


def init_child(spec: Any, kwargs: dict[str, Any], field: str) -> Any:
    """A side's model from a ``"provider:model"`` string (through ``init_chat_model``) or as given.

    Raises:
        ValueError: The string names no installed provider (the message says which extra brings OpenAI's).
        TypeError: Neither a chat model (possibly with bound tools) nor a string.
    """
    if isinstance(spec, str):
        from langchain.chat_models import init_chat_model

        try:
            return init_chat_model(spec, **kwargs)
        except (ImportError, ValueError) as exc:
            hint = " (for OpenAI: pip install 'routellm-integrations[openai]')" if "openai" in spec else ""
            raise ValueError(f"cannot build the {field} model from {spec!r}: {exc}{hint}") from exc
    if not isinstance(unwrap_model(spec), BaseChatModel):
        raise TypeError(
            f"{field} must be a chat model (BaseChatModel, possibly with bound tools) or a "
            f"'provider:model' string, got {type(spec).__name__}"
        )
    return spec


def check_members(
    owner: str,
    *,
    models: Any,
    strong: Any,
    weak: Any,
    names: Any = None,
    options: RoutingOptions | None = None,
) -> None:
    """Check that a front end was given either ``strong`` and ``weak`` or ``models=[...]``, with the options that go
    with each.

    Raises:
        InvalidInputError: Both or neither; ``names=`` without ``models=``; ``strong_name`` / ``weak_name`` with
            ``models=``; ``objective`` / ``priors`` without it.
    """
    strong_name = options.strong_name if options is not None else None
    weak_name = options.weak_name if options is not None else None
    if models is not None:
        named = (("strong", strong), ("weak", weak), ("strong_name", strong_name), ("weak_name", weak_name))
        given = [f"{field}=" for field, value in named if value is not None]
        if given:
            raise InvalidInputError(
                f"{owner}: models=[...] and {', '.join(given)} exclude each other: give strong= and weak= (two models) "
                "or models=[...] (N priced models; name them with a dict {name: model} or names=[...]), not both"
            )
        return
    missing = [f"{field}=" for field, value in (("strong", strong), ("weak", weak)) if value is None]
    if missing:
        raise InvalidInputError(
            f"{owner}: missing {' and '.join(missing)}: give strong= and weak= (two models) or models=[...] (N priced "
            "models)"
        )
    extra = [f"{field}=" for field, value in (("names", names),) if value is not None]
    if options is not None:
        extra += [f"{field}=" for field in ("objective", "priors") if getattr(options, field) is not None]
    if extra:
        raise InvalidInputError(f"{owner}: {', '.join(extra)} go with models=[...]; strong= and weak= take threshold=")


def ladder_members(
    models: Any, names: Sequence[str] | None, build: Callable[[Any, str], Any], owner: str
) -> dict[str, Any]:
    """The listed models by name, each built by ``build(spec, field)``: a dict ``{name: model}`` as given, or a list
    named by ``names`` (same length) or by each model's own name (:func:`model_name`).

    Raises:
        InvalidInputError: Fewer than two models, two with one name, ``names`` of another length, or ``names``
            with a dict.
        TypeError: ``models`` is neither a list nor a dict.
    """
    if isinstance(models, Mapping):
        if names is not None:
            raise InvalidInputError(f"{owner}: models= is a dict, so its keys name the models already; drop names=")
        built = {str(name): build(spec, f"models[{name!r}]") for name, spec in models.items()}
    elif isinstance(models, (list, tuple)):
        listed = [build(spec, f"models[{i}]") for i, spec in enumerate(models)]
        if names is None:
            names = [model_name(model) for model in listed]
        elif isinstance(names, str) or len(names) != len(listed):
            raise InvalidInputError(
                f"{owner}: names= must list one name per model: {len(listed)} models, got {names!r:.120}"
            )
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InvalidInputError(
                    f"{owner}: two of models= are named {name!r}; name them with a dict {{name: model}} or names=[...]"
                )
            seen.add(name)
        built = dict(zip(map(str, names), listed, strict=True))
    else:
        raise TypeError(
            f"{owner}: models= must be a list of models or a dict {{name: model}}, got {type(models).__name__}"
        )
    if len(built) < 2:
        raise InvalidInputError(f"{owner}: models= needs at least two models, got {len(built)}")
    return built


def priors_by_name(priors: Mapping[str, Any] | None, listed: Any, names: Sequence[str]) -> dict[str, Any] | None:
    """``priors`` with each key that is a ``"provider:model"`` string of a list ``models=[...]`` (``"openai:gpt-5"``)
    replaced by the name the model built from it goes by (``"gpt-5"``), unless that name has a prior of its own;
    ``priors`` as given otherwise (None stays None)."""
    if not priors or not isinstance(listed, (list, tuple)):
        return None if priors is None else dict(priors)
    renamed = {spec: name for spec, name in zip(listed, names, strict=True) if isinstance(spec, str) and spec != name}
    return {renamed[key] if key in renamed and renamed[key] not in priors else key: p for key, p in priors.items()}


def build_engine(
    options: RoutingOptions,
    names: Mapping[Side, str] | Sequence[str],
    *,
    owner: str,
    is_empty: Callable[[Any], bool] = is_empty_output,
    answer_text: Callable[[Any], str] = chunk_text,
    passthrough: tuple[type[BaseException], ...] = (),
    second_name: str | None = None,
    answer_value: Callable[[Any], Any] = answer_value,
    usage: Callable[[Any], tuple[int | None, int | None]] = answer_usage,
    logprobs: Callable[[Any], list[float] | None] = answer_logprobs,
) -> Engine:
    """The core engine with LangChain's empty-answer rule, chunk text, judge and LangGraph passthrough (plus
    ``passthrough``: other exceptions that are control flow for the caller, never a model failure), and what the
    escalation check and the costs read of an answer.

    ``names``: the two sides' names (a :class:`RoutingEngine`), or the listed models' names (``models=[...]``: a
    :class:`LadderEngine`, each call run on a pair of them).
    """
    kwargs: dict[str, Any] = {
        "is_empty": is_empty,
        "chunk_text": chunk_text,
        "answer_text": answer_text,
        "judge": as_judge(options.judge),
        "passthrough": (_GraphBubbleUp, *passthrough),
        "second_name": second_name,
        "answer_value": answer_value,
        "usage": usage,
        "join_chunks": join_chunks,
        "logprobs": logprobs,
    }
    if isinstance(names, Mapping):
        return RoutingEngine(options, names, owner=owner, **kwargs)
    return LadderEngine(options, list(names), owner=owner, **kwargs)


def side_name(engine: Engine, route: Route, side: Side) -> str:
    """The name of the model standing for ``side`` in ``route`` (among N models: in the route's pair)."""
    if isinstance(engine, LadderEngine):
        return engine.name_of(route, side)
    return engine.names[side]


def listed_names(engine: Engine) -> str:
    """The models' names in one string, for LangSmith before routing: ``"<strong>|<weak>"`` or ``"a|b|c"``."""
    if isinstance(engine, LadderEngine):
        return "|".join(engine.names)
    return f"{engine.names['strong']}|{engine.names['weak']}"


def route_messages(engine: Engine, messages: Sequence[BaseMessage]) -> Route:
    """Route a conversation (sync; micro-batched with concurrent threads); a tool step may continue its request."""
    if (route := engine.continued(tool_step_record(messages))) is not None:
        return route
    return engine.route(routing_text(messages, engine.options.route_on))


async def aroute_messages(engine: Engine, messages: Sequence[BaseMessage]) -> Route:
    """Async :func:`route_messages` (micro-batched with the event loop's concurrent calls)."""
    if (route := engine.continued(tool_step_record(messages))) is not None:
        return route
    return await engine.aroute(routing_text(messages, engine.options.route_on))


def run_config(
    config: RunnableConfig, record: ServedDecision, extra_metadata: dict[str, Any] | None = None
) -> RunnableConfig:
    """The config for the router's own run: the decision in its metadata and a ``routellm:<choice>`` tag."""
    meta = {**(extra_metadata or {}), METADATA_KEY: record.as_dict()}
    return merge_configs(config, {"metadata": meta, "tags": [f"routellm:{record.choice}"]})


class TokenWatch(BaseCallbackHandler):
    """Collects the tokens a side streams through the callbacks during a call the caller did not stream itself
    (LangGraph's ``stream_mode="messages"`` and ``astream_events`` forward them to the caller)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if token:
            self.tokens.append(token)

    def watched(self, config: RunnableConfig) -> RunnableConfig:
        """``config`` with this watch among its callbacks."""
        return merge_configs(config, {"callbacks": [self]})

    def failure(self, exc: Exception) -> Exception:
        """The failure to raise: final (no fallback, no mixed answer) once tokens reached the callbacks."""
        return PartialOutputError(exc, len(self.tokens), "".join(self.tokens)) if self.tokens else exc


def watch_tokens(call: Callable[[RunnableConfig], T], config: RunnableConfig) -> T:
    """Run ``call`` with a :class:`TokenWatch` in its config; a failure after tokens becomes final."""
    watch = TokenWatch()
    try:
        return call(watch.watched(config))
    except Exception as exc:
        raise watch.failure(exc) from exc


async def awatch_tokens(call: Callable[[RunnableConfig], Awaitable[T]], config: RunnableConfig) -> T:
    """Async :func:`watch_tokens`."""
    watch = TokenWatch()
    try:
        return await call(watch.watched(config))
    except Exception as exc:
        raise watch.failure(exc) from exc


#: LangGraph's tag for runs whose tokens its ``stream_mode="messages"`` must not forward (held answers).
NOSTREAM_TAG = "nostream"


def child_config(config: RunnableConfig, record: ServedDecision, *, held: bool = False) -> RunnableConfig:
    """The config for a side's call (callbacks already point at the router's run): a fallback or an escalation is
    tagged; a ``held`` answer (waiting for the escalation check) is kept off LangGraph's token stream."""
    tags: list[str] = []
    if record.fallback:
        tags = [f"routellm:{record.served}", "routellm:fallback"]
    elif record.escalated:
        tags = ["routellm:strong", "routellm:escalated"]
    if held:
        tags += ["routellm:held", NOSTREAM_TAG]
    if not tags:
        return config
    return merge_configs(config, {"metadata": {METADATA_KEY: record.as_dict()}, "tags": tags})


def check_config(config: RunnableConfig, record: ServedDecision) -> RunnableConfig:
    """The config for the second cheap answer (the escalation check's): tagged, never streamed to the caller."""
    return merge_configs(
        config, {"metadata": {METADATA_KEY: record.as_dict()}, "tags": ["routellm:check", NOSTREAM_TAG]}
    )


# ---- learning the traffic ------------------------------------------------------------------------------------
def as_judge(judge: Any) -> Judge | None:
    """A core judge from a LangChain chat model (asked with MT-Bench's pairwise prompt) or a callable."""
    if judge is None or isinstance(judge, PairwiseJudge):
        return judge
    model = unwrap_model(judge)
    if isinstance(model, BaseChatModel):
        # Sync: the labeller runs it on its worker threads (async callers' labels too, in a worker thread), so a
        # client bound to one event loop is never driven from another.
        return PairwiseJudge(lambda messages: chunk_text(judge.invoke(messages)), name=model_name(judge))
    if callable(judge):
        return judge  # type: ignore[no-any-return]
    raise InvalidInputError(
        f"judge must be a LangChain chat model, a PairwiseJudge or a callable (prompt, answer_a, answer_b) -> winner, "
        f"got {type(judge).__name__}"
    )
