"""Embedding routing texts: the embedder interface, the shipped static embedder, MiniLM on ONNX, and the cache."""

from routellm_core.embedding.embedders import Embedder, default_embedder, embedder_from_name

__all__ = ["Embedder", "default_embedder", "embedder_from_name"]
