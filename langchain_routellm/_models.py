"""The child models: unwrapping bound models, their names and providers, and the callbacks of a side's run."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableBinding, RunnableParallel, RunnableSequence


# ---- child models ----------------------------------------------------------------------------------------
def unwrap_model(child: Any) -> Any:
    """The chat model under any ``RunnableBinding`` layers (``bind_tools``, ``bind``, ``with_config``)."""
    while isinstance(child, RunnableBinding):
        child = child.bound
    return child


def model_name(child: Any) -> str:
    """A display name for a child: its ``model`` / ``model_name`` / ``model_id`` field, else its type name.

    Never reads anything but those name fields, so no credential can leak into a name.
    """
    model = unwrap_model(child)
    for attr in ("model_name", "model", "model_id", "deployment_name", "repo_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    if isinstance(model, BaseChatModel):
        try:
            return f"{type(model).__name__}({model._llm_type})"
        except Exception:  # _llm_type may be abstract or raise on partial models
            return type(model).__name__
    if isinstance(model, Runnable):
        return model.get_name()
    return type(model).__name__


def runnable_name(runnable: Any) -> str:
    """A display name for a Runnable standing for a model (``Escalation(second=chain)``): a chat model's
    :func:`model_name`; else the name it was given (``name=``, ``with_config(run_name=...)``); else the
    :func:`model_name` of the one chat model a chain holds; else its type name."""
    if isinstance(unwrap_model(runnable), BaseChatModel):
        return model_name(runnable)
    layer = runnable
    while True:  # a name given to the runnable or to a binding around it
        config = layer.config if isinstance(layer, RunnableBinding) else {}
        given = getattr(layer, "name", None) or (config or {}).get("run_name")
        if isinstance(given, str) and given:
            return given
        if not isinstance(layer, RunnableBinding):
            break
        layer = layer.bound
    names = {model_name(model) for model in _chat_models(runnable)}
    if len(names) == 1:
        return names.pop()
    return model_name(runnable)


def _chat_models(runnable: Any) -> list[BaseChatModel]:
    """The chat models a chain holds: in a sequence's steps and a parallel's branches, through bindings."""
    model = unwrap_model(runnable)
    if isinstance(model, BaseChatModel):
        return [model]
    if isinstance(model, RunnableSequence):
        parts: list[Any] = model.steps
    elif isinstance(model, RunnableParallel):
        parts = list(model.steps__.values())
    else:
        return []
    return [found for part in parts for found in _chat_models(part)]


def model_provider(child: Any) -> str | None:
    """The child's ``ls_provider`` as it reports it to LangSmith, if it is a chat model."""
    model = unwrap_model(child)
    if isinstance(model, BaseChatModel):
        try:
            provider = model._get_ls_params().get("ls_provider")
        except Exception:
            return None
        return provider if isinstance(provider, str) else None
    return None


def child_callbacks(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun,
) -> CallbackManager | AsyncCallbackManager:
    """A callback manager for runs nested under a chat-model run (what ``get_child()`` does for chains).

    Inheritable handlers, tags and metadata are passed down; ``parent_run_id`` is the chat-model run.
    """
    cls = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) else CallbackManager
    manager = cls(handlers=[], parent_run_id=run_manager.run_id)
    manager.set_handlers(run_manager.inheritable_handlers)
    manager.add_tags(run_manager.inheritable_tags)
    manager.add_metadata(run_manager.inheritable_metadata)
    return manager
