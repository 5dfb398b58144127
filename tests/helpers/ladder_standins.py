"""Three stand-in models for the core N-model engine's tests: profiles from far-apart real ones (so the shipped
``default`` router predicts big > mid > tiny on ordinary prompts) and given prices (tiny 0.1, mid 1, big 10 USD per
million tokens, input and output alike), listed out of price order."""

from __future__ import annotations

from typing import Any

from routellm_core.decisions import Attempt, ServedDecision
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import LadderEngine

PRIORS = {
    "tiny": ModelPrior(like="chatglm-6b"),
    "mid": ModelPrior(like="Qwen2.5-32B-Instruct"),
    "big": ModelPrior(like="o1-preview-2024-09-12"),
}
PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
MODELS = ["big", "tiny", "mid"]  # the front end's order need not be the price order


def priced_engine(options: RoutingOptions, **engine_kwargs: Any) -> LadderEngine:
    """An engine over the stand-ins whose text answers report 10 input tokens and one output token per character."""
    return LadderEngine(
        options,
        MODELS,
        owner="test",
        is_empty=lambda v: not v,
        chunk_text=str,
        answer_text=str,
        usage=lambda v: (10, len(v)),
        **engine_kwargs,
    )


def answer_cost(model: str, answer: str) -> float:
    """What ``model``'s answer ``answer`` costs in USD under :func:`priced_engine`'s token counts."""
    return (10 * PRICES[model][0] + len(answer) * PRICES[model][1]) / 1e6


def served_record(model: str, input_tokens: int | None, output_tokens: int | None) -> ServedDecision:
    """A served call's record with one attempt of ``model`` and its token counts (what the ladder learns from)."""
    attempt = Attempt(model=model, side="weak", input_tokens=input_tokens, output_tokens=output_tokens, cost=0.0)
    return ServedDecision(
        id="x",
        router="difficulty",
        win_rate=0.5,
        threshold=1.0,
        choice="weak",
        served="weak",
        model=model,
        attempts=(attempt,),
    )
