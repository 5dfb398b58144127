"""Fixtures the LangChain tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import get_llm_cache, set_llm_cache


@pytest.fixture
def llm_cache() -> Iterator[InMemoryCache]:
    """LangChain's global cache, an empty in-memory one for the test (the previous one restored after)."""
    before = get_llm_cache()
    cache = InMemoryCache()
    set_llm_cache(cache)
    try:
        yield cache
    finally:
        set_llm_cache(before)
