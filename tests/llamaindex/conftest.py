"""Fixtures the LlamaIndex tests share."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from li_fakes import Recorder
from llama_index.core import Settings
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import MockLLM

from llamaindex_routellm import RouteLLMEmbedding


@pytest.fixture
def events() -> Generator[Recorder, None, None]:
    """A :class:`~li_fakes.Recorder` on LlamaIndex's root dispatcher for the test."""
    recorder = Recorder()
    root = get_dispatcher()
    root.add_event_handler(recorder)
    yield recorder
    root.event_handlers.remove(recorder)


@pytest.fixture(scope="module")
def embed_model() -> RouteLLMEmbedding:
    return RouteLLMEmbedding()


@pytest.fixture
def offline_settings(embed_model: RouteLLMEmbedding) -> Generator[None, None, None]:
    """Explicit LlamaIndex globals, so nothing looks up OpenAI defaults."""
    previous_llm, previous_embed = Settings._llm, Settings._embed_model
    Settings.llm = MockLLM()
    Settings.embed_model = embed_model
    yield
    Settings._llm, Settings._embed_model = previous_llm, previous_embed
