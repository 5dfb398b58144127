"""A routed-call engine over plain text answers, as the escalation tests drive it (no framework)."""

from __future__ import annotations

from typing import Any

from routellm_core.decisions import Side
from routellm_core.routing.engine import RoutingEngine, RoutingOptions

#: The two models' names.
NAMES: dict[Side, str] = {"strong": "big-model", "weak": "small-model"}


def text_engine(options: RoutingOptions, **kwargs: Any) -> RoutingEngine:
    """An engine whose answers and chunks are strings (10 input tokens, one output token per character), with the
    second cheap answer named ``other-small``; ``kwargs`` add to :class:`RoutingEngine`'s (``on_fallback``...)."""
    return RoutingEngine(
        options,
        NAMES,
        owner="Test",
        is_empty=lambda value: not str(value).strip(),
        chunk_text=str,
        answer_text=str,
        second_name="other-small",
        usage=lambda value: (10, len(str(value))),
        join_chunks=lambda chunks: " ".join(chunks),
        **kwargs,
    )
