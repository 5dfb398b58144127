"""Route on any LangChain embedding model: a ``routellm_core`` embedder over a LangChain ``Embeddings``."""

from __future__ import annotations

import numpy as np
from langchain_core.embeddings import Embeddings

from routellm_core.embedding.embedders import Embedder


class LangChainEmbedder(Embedder):
    """A :class:`routellm_core.embedding.embedders.Embedder` over any LangChain ``Embeddings`` (``embed_documents``).

    Vectors are L2-normalised float32 like every core embedder's. ``name`` identifies the embedding space in
    checkpoints (default ``langchain:<class>[:<model>]``); a router trained with it loads only with an embedder of
    the same name.

    Args:
        embeddings: The LangChain embedding model, e.g. ``OpenAIEmbeddings(model="text-embedding-3-small")``.
        name: Embedding-space name recorded in checkpoints.

    Example:
        >>> from routellm_core import load_router
        >>> router = load_router("mf", embedder=LangChainEmbedder(my_embeddings)).fit(battles)

    Raises:
        TypeError: ``embeddings`` has no ``embed_documents`` method.
    """

    def __init__(self, embeddings: Embeddings, *, name: str | None = None) -> None:
        if not hasattr(embeddings, "embed_documents"):
            raise TypeError(f"{type(embeddings).__name__} is not a LangChain Embeddings (no embed_documents)")
        self.embeddings = embeddings
        model = getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None)
        self.name = name or f"langchain:{type(embeddings).__name__}" + (f":{model}" if model else "")

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embeddings.embed_documents(texts), dtype=np.float32)
