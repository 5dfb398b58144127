"""A LlamaIndex embedding model backed by a routellm_core embedder (the shipped offline MiniLM by default)."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.callbacks import CallbackManager

from routellm_core.embedders import Embedder, default_embedder


class RouteLLMEmbedding(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding`` over a :class:`routellm_core.embedders.Embedder`.

    With no arguments it wraps the process-wide cached all-MiniLM-L6-v2 embedder the default router uses, so a
    ``VectorStoreIndex`` and the router share one model (and one embedding cache) and everything runs offline.
    Vectors are 384-d, L2-normalised float32 values returned as Python floats.

    Args:
        embedder: The routellm_core embedder to wrap; the shared offline MiniLM when ``None``.
        embed_batch_size: Texts per batch handed to the embedder.
        callback_manager: LlamaIndex callback manager.

    Example:
        >>> from llama_index.core import VectorStoreIndex, Document
        >>> index = VectorStoreIndex.from_documents([Document(text="...")], embed_model=RouteLLMEmbedding())

    Raises:
        InvalidInputError: (on use) a blank text or query; the embedder refuses to embed nothing.
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        embed_batch_size: int = 64,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        embedder = embedder if embedder is not None else default_embedder()
        kwargs.setdefault("model_name", embedder.name)
        super().__init__(embed_batch_size=embed_batch_size, callback_manager=callback_manager, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "RouteLLMEmbedding"

    @property
    def embedder(self) -> Embedder:
        """The wrapped routellm_core embedder."""
        return self._embedder

    def _embed(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return [row.tolist() for row in self._embedder.embed(texts)]

    def _get_query_embedding(self, query: str) -> Embedding:
        """Embed one query."""
        return self._embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        """Embed one query off the event loop."""
        return (await asyncio.to_thread(self._embed, [query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        """Embed one text."""
        return self._embed([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        """Embed one text off the event loop."""
        return (await asyncio.to_thread(self._embed, [text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """Embed a batch of texts in one call."""
        return self._embed(list(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """Embed a batch of texts off the event loop."""
        return await asyncio.to_thread(self._embed, list(texts))
