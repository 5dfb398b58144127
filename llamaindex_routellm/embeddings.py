"""Embeddings both ways between LlamaIndex and ``routellm_core``.

- :class:`RouteLLMEmbedding`: a LlamaIndex embedding model backed by a routellm_core embedder (the shipped offline
  MiniLM by default), so an index and the router share one model.
- :class:`LlamaIndexEmbedder`: a routellm_core embedder over any LlamaIndex embedding model, to route on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.callbacks import CallbackManager

from routellm_core.embedding.embedders import Embedder, default_embedder


class RouteLLMEmbedding(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding`` over a :class:`routellm_core.embedding.embedders.Embedder`.

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


class LlamaIndexEmbedder(Embedder):
    """A :class:`~routellm_core.embedding.embedders.Embedder` over any LlamaIndex ``BaseEmbedding``
    (``get_text_embedding_batch``).

    Vectors are L2-normalised float32 like every core embedder's. ``name`` identifies the embedding space in
    checkpoints (default ``llamaindex:<class>[:<model>]``); a router trained with it loads only with an embedder
    of the same name.

    Args:
        embed_model: The LlamaIndex embedding model, e.g. ``OpenAIEmbedding(model="text-embedding-3-small")``.
        name: Embedding-space name recorded in checkpoints.

    Example:
        >>> from routellm_core import load_router
        >>> router = load_router("mf", embedder=LlamaIndexEmbedder(my_embed_model)).fit(battles)

    Raises:
        TypeError: ``embed_model`` has no ``get_text_embedding_batch`` method.
    """

    def __init__(self, embed_model: BaseEmbedding, *, name: str | None = None) -> None:
        if not hasattr(embed_model, "get_text_embedding_batch"):
            raise TypeError(f"{type(embed_model).__name__} is not a LlamaIndex embedding model")
        self.embed_model = embed_model
        model = getattr(embed_model, "model_name", None)
        self.name = name or f"llamaindex:{type(embed_model).__name__}" + (f":{model}" if model else "")

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embed_model.get_text_embedding_batch(texts), dtype=np.float32)
