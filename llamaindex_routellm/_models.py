"""The child LLMs: a readable name, and a judge built from an LLM."""

from __future__ import annotations

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
