"""Fixtures the LlamaIndex tests share."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from li_fakes import Recorder
from llama_index.core.instrumentation import get_dispatcher


@pytest.fixture
def events() -> Generator[Recorder, None, None]:
    """A :class:`~li_fakes.Recorder` on LlamaIndex's root dispatcher for the test."""
    recorder = Recorder()
    root = get_dispatcher()
    root.add_event_handler(recorder)
    yield recorder
    root.event_handlers.remove(recorder)
