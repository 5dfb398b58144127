"""Shared fixtures: tests never touch the network, and share one loaded embedder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedder():
    """The shared, cached offline MiniLM embedder (loaded once per test session)."""
    from routellm_core import default_embedder

    return default_embedder()
