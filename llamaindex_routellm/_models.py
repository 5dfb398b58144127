"""The child LLMs: a readable name, the named models of a ladder, and a judge built from an LLM."""

from __future__ import annotations

from collections.abc import Mapping

from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
)
from llama_index.core.llms import LLM

from routellm_core.errors import InvalidInputError
from routellm_core.learning.judging import Judge, PairwiseJudge


def model_label(llm: LLM) -> str:
    """A readable name for a child model: its metadata model name, else its ``model`` field, else its class."""
    try:
        name = llm.metadata.model_name
    except Exception:  # a child whose metadata fails should still be nameable in errors
        name = None
    if name and name != "unknown":
        return str(name)
    for attr in ("model", "model_name"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return llm.class_name()


def named_models(models: object) -> dict[str, LLM]:
    """The ``models=`` of a call among N models, by name: a mapping name -> LLM as given, or a list of LLMs named
    by :func:`model_label` (their ``metadata.model_name``).

    Raises:
        InvalidInputError: Not a list or dict of LlamaIndex LLMs, a blank name, or two listed LLMs of one name.
    """
    if isinstance(models, Mapping):
        items = list(models.items())
        for name, _ in items:
            if not isinstance(name, str) or not name.strip():
                raise InvalidInputError(f"models= names each model by a non-blank string, got {name!r:.60}")
    elif isinstance(models, (list, tuple)):
        items = [(model_label(llm) if isinstance(llm, LLM) else f"models[{i}]", llm) for i, llm in enumerate(models)]
    else:
        raise InvalidInputError(
            f"models= must be a list of LlamaIndex LLMs or a dict name -> LLM, got {type(models).__name__}"
        )
    for name, llm in items:
        if not isinstance(llm, LLM):
            raise InvalidInputError(f"models= entry {name!r} is {type(llm).__name__}, not a LlamaIndex LLM")
    names = [name for name, _ in items]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidInputError(
            f"models= lists {repeated} more than once (names come from each LLM's metadata.model_name); pass a "
            "dict name -> LLM to tell them apart"
        )
    return dict(items)


def as_judge(judge: object) -> Judge | None:
    """A core judge from a LlamaIndex LLM (asked MT-Bench's pairwise question with ``achat``) or a callable."""
    if judge is None or isinstance(judge, PairwiseJudge):
        return judge
    if isinstance(judge, LLM):
        llm = judge

        def generate(messages: list[dict[str, str]]) -> str:  # sync: see the LangChain adapter's as_judge
            chat = [ChatMessage(role=MessageRole(m["role"]), content=m["content"]) for m in messages]
            return llm.chat(chat).message.content or ""

        return PairwiseJudge(generate, name=model_label(llm))
    if callable(judge):
        return judge  # type: ignore[return-value]
    raise InvalidInputError(
        "judge must be a LlamaIndex LLM, a PairwiseJudge or a callable (prompt, answer_a, answer_b) -> winner, "
        f"got {type(judge).__name__}"
    )
