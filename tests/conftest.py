"""Shared fixtures: tests never touch the network, and share one loaded embedder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# caches (the ONNX export, embeddings) stay in the checkout, not in the user's ~/.cache
os.environ.setdefault("ROUTELLM_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "routellm"))


@pytest.fixture(scope="session")
def embedder():
    """The shared, cached offline MiniLM embedder (loaded once per test session)."""
    from routellm_core import default_embedder

    return default_embedder()
