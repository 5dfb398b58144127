"""LlamaIndex stand-ins for the strong and weak children in tests (imported as ``from li_fakes import ...``, like
``lc_fakes``). The router under test is always real; these only say which side answered."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback

from routellm_core.routing.text import rag_query


class LabelledLLM(MockLLM):
    """``MockLLM`` answering ``[label] <the query>`` (the question of a RAG prompt), recording the prompts it got;
    it streams its answer in two chunks."""

    label: str = "mock"
    prompts: list[str] = Field(default_factory=list)

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    @property
    def calls(self) -> int:
        """Completions asked of this model (chat calls included, which LlamaIndex derives from them)."""
        return len(self.prompts)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=f"{self.label}-model")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=f"[{self.label}] {rag_query(prompt).strip()}")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        answer = self.complete(prompt).text

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=answer[:3], delta=answer[:3])
            yield CompletionResponse(text=answer, delta=answer[3:])

        return gen()
