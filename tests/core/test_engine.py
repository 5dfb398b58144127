"""The routed-call engine, driven with plain callables (no framework) and a router fitted in the tests.

Every front end holds a :class:`RoutingEngine`; here it routes held-out prompts whose side is known in advance
(``fitted_router``), records each decision in a real feedback store, and labels a sampled call with a judge that
knows which answer is right. Options are validated once, by :class:`RoutingOptions`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fitted_router import HARD, TRIVIA, expected_side
from pydantic import ValidationError

from routellm_core.decisions import ServedDecision, Side
from routellm_core.errors import InvalidInputError, InvalidThresholdError, ModelCallError
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.engine import ROUTING_FIELDS, RoutingEngine, RoutingOptions

NAMES: dict[Side, str] = {"strong": "big-model", "weak": "small-model"}
ANSWERS: dict[Side, str] = {"strong": "a careful answer", "weak": "a quick answer"}


def judge_prefers_strong(prompt: str, answer_a: str, answer_b: str) -> str:
    """A judge that knows the strong model's answer is the right one (the labeller puts strong as model_a)."""
    return "model_a" if answer_a == ANSWERS["strong"] else "model_b"


def engine(router: Any, **options: Any) -> RoutingEngine:
    return RoutingEngine(
        RoutingOptions(router=router, strong_fraction=0.5, **options),
        NAMES,
        owner="Test",
        is_empty=lambda value: not value,
        chunk_text=str,
        answer_text=str,
    )


def answer(side: Side, record: ServedDecision) -> str:
    return ANSWERS[side]


def test_options_are_validated_once() -> None:
    assert {"router", "threshold", "strong_fraction", "route_on", "tool_step", "fallback", "feedback"} <= ROUTING_FIELDS
    with pytest.raises(ValidationError, match="threshold must be in"):
        RoutingOptions(threshold=1.5)
    with pytest.raises(ValidationError, match="label_fraction"):
        RoutingOptions(label_fraction=-0.1)
    with pytest.raises(ValidationError):
        RoutingOptions(route_on="everything")
    with pytest.raises(ValidationError):
        RoutingOptions(tool_step="skip")
    assert RoutingOptions(route_on="last_human").route_on == "last_human"


def test_bad_combinations_fail_when_the_engine_is_built(known_router: Any) -> None:
    with pytest.raises(InvalidThresholdError):
        RoutingEngine(
            RoutingOptions(router=known_router, threshold=0.4, strong_fraction=0.3),
            NAMES,
            owner="Test",
            is_empty=bool,
            chunk_text=str,
            answer_text=str,
        )
    with pytest.raises(InvalidInputError, match="need feedback"):
        engine(known_router, label_fraction=0.5, judge=judge_prefers_strong)


@pytest.mark.parametrize("prompt", [*HARD[:3], *TRIVIA[:3]])
def test_call_goes_to_the_side_known_in_advance_and_is_recorded(known_router: Any, prompt: str, tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    routed = engine(known_router, feedback=store)
    route = routed.route(prompt)
    value, record = routed.call(route, answer)
    assert record.served == record.choice == expected_side(prompt)
    assert value == ANSWERS[expected_side(prompt)]
    assert record.model == NAMES[expected_side(prompt)]
    # the decision is in the store under the id the answer carries: a verdict attaches to it
    assert store.add_verdict(record.id, "bad") is not None


def test_sync_and_async_calls_and_streams_agree(known_router: Any) -> None:
    routed = engine(known_router)
    prompts = [HARD[0], TRIVIA[0]]

    def stream(side: Side, record: ServedDecision) -> Iterator[str]:
        yield from ANSWERS[side].split(" ")

    async def astream(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        for word in ANSWERS[side].split(" "):
            yield word

    async def aanswer(side: Side, record: ServedDecision) -> str:
        await asyncio.sleep(0)
        return ANSWERS[side]

    async def run_async(prompt: str) -> tuple[str, str, Side, Side]:
        route = await routed.aroute(prompt)
        value, record = await routed.acall(route, aanswer)
        chunks = [chunk async for chunk, _ in routed.astream(route, astream)]
        return value, " ".join(chunks), record.served, route.choice

    for prompt in prompts:
        route = routed.route(prompt)
        value, record = routed.call(route, answer)
        chunks = [chunk for chunk, _ in routed.stream(route, stream)]
        assert (value, " ".join(chunks), record.served, route.choice) == asyncio.run(run_async(prompt))
        assert record.served == expected_side(prompt)


def test_fallback_is_the_engines_and_names_the_failed_model(known_router: Any) -> None:
    def weak_down(side: Side, record: ServedDecision) -> str:
        if side == "weak":
            raise TimeoutError("weak model timed out")
        return ANSWERS[side]

    route = engine(known_router).route(TRIVIA[0])
    with pytest.raises(ModelCallError, match="small-model"):
        engine(known_router).call(route, weak_down)
    value, record = engine(known_router, fallback=True).call(route, weak_down)
    assert (value, record.choice, record.served, record.fallback_from) == (
        ANSWERS["strong"],
        "weak",
        "strong",
        NAMES["weak"],
    )


def test_sampled_call_is_labelled_with_the_other_sides_answer(known_router: Any, tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db", store_answers=True)
    routed = engine(known_router, feedback=store, judge=judge_prefers_strong, label_fraction=1.0)
    asked: list[Side] = []

    def other_answer(side: Side) -> str:
        asked.append(side)
        return ANSWERS[side]

    _, record = routed.call(routed.route(TRIVIA[1]), answer, other_answer=other_answer)
    assert routed.labelling is not None and routed.labelling.labeller is not None
    assert routed.labelling.labeller.flush(timeout=60)
    assert asked == ["strong"]  # the weak side served; the engine asked the strong side for the label
    (label,) = store.labels(["judge"])
    assert (label.model_a, label.model_b, label.winner) == (NAMES["strong"], NAMES["weak"], "model_a")
    assert (label.decision_id, label.answer_a, label.answer_b) == (record.id, ANSWERS["strong"], ANSWERS["weak"])
