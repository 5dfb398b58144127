"""Escalation rung by rung up the ladder (``Escalation(climb=True)`` with ``models=[...]``), in the core engine.

The stand-ins and prices are those of tests/core/test_ladder_online.py (tiny 0.1, mid 1, big 10 USD per million
tokens; the default router predicts big > mid > tiny), with ``Objective.margin(1.0)`` choosing tiny, so every climb
starts at tiny and the rungs are tiny, mid, big. Each test's answers are scripted, so which model serves and what it
costs are known in advance; the last test checks the online climb against the offline ``evaluate_choices`` scoring of
the same policy on the same answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from ladder_standins import MODELS, PRICES, PRIORS, answer_cost, priced_engine

from routellm_core.decisions import ServedDecision
from routellm_core.errors import InvalidInputError, ModelCallError
from routellm_core.escalation.checks import AgreementCheck, CheckInput
from routellm_core.escalation.config import Escalation
from routellm_core.escalation.ladder import evaluate_choices
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.engine import RoutingEngine, RoutingOptions
from routellm_core.routing.ladder import LadderEngine, pair_win_rate
from routellm_core.routing.objective import Objective

CHEAPEST = Objective.margin(1.0)
TEXT = "A train leaves at 3pm at 60 mph; when has it covered 150 miles?"


def climber(
    objective: Objective = CHEAPEST, check: Any = "agreement", on_fallback: Any = None, **options: Any
) -> LadderEngine:
    """An engine climbing from tiny whose answers report 10 input tokens and one output token per character."""
    opts = RoutingOptions(
        objective=objective,
        priors=PRIORS,
        prices=PRICES,
        escalate=Escalation(climb=True, check=check, threshold=0.5),
        **options,
    )
    return priced_engine(opts, on_fallback=on_fallback)


def scripted(answers: dict[str, str], called: list[str]) -> Any:
    def attempt(side: str, record: ServedDecision) -> str:
        called.append(record.model)
        if isinstance(answers[record.model], BaseException):
            raise answers[record.model]  # type: ignore[misc]
        return answers[record.model]

    return attempt


@pytest.mark.parametrize(
    ("answers", "served", "called"),
    [
        ({"tiny": "42", "mid": "42", "big": "7"}, "mid", {"tiny", "mid"}),  # tiny and mid agree: mid's answer
        ({"tiny": "17", "mid": "42", "big": "42"}, "big", {"tiny", "mid", "big"}),  # mid and big agree: big's
        ({"tiny": "1", "mid": "2", "big": "3"}, "big", {"tiny", "mid", "big"}),  # none agree: big, as it is
    ],
)
def test_the_climb_serves_the_upper_of_the_first_two_rungs_that_agree(
    answers: dict[str, str], served: str, called: set[str]
) -> None:
    eng = climber()
    route = eng.route(TEXT)
    assert route.ladder.chosen == "tiny" and route.ladder.pair == {"weak": "tiny", "strong": "mid"}
    calls: list[str] = []
    value, record = eng.call(route, scripted(answers, calls))
    assert value == answers[served] and record.model == served and set(calls) == called
    assert record.escalated and record.served == "strong" and record.ladder.pair == {"weak": "tiny", "strong": served}
    # every model called is listed, in the climb's order, and paid; only the served one is kept
    assert [(a.model, a.kept) for a in record.attempts] == [
        (m, m == served) for m in ("tiny", "mid", "big") if m in called
    ]
    assert record.cost == pytest.approx(sum(answer_cost(m, answers[m]) for m in called))
    p = dict(zip(route.ladder.models, route.ladder.predictions, strict=True))
    assert record.win_rate == pytest.approx(pair_win_rate(p[served], p["tiny"]))  # the recorded pair's win rate
    tiny = record.attempts[0]
    assert tiny.role == "answer" and tiny.confidence == (1.0 if served == "mid" else 0.0)


def test_the_climb_skips_a_dearer_model_predicted_no_better() -> None:
    """mid is profiled like tiny (the same prior): its predictions equal tiny's, so the climb goes from tiny to big,
    and with nothing between them the call goes straight to big."""
    opts = RoutingOptions(
        objective=CHEAPEST,
        priors={**PRIORS, "mid": PRIORS["tiny"]},
        prices=PRICES,
        escalate=Escalation(climb=True, threshold=0.5),
    )
    eng = LadderEngine(opts, MODELS, owner="test", is_empty=lambda v: not v, chunk_text=str, answer_text=str)
    route = eng.route(TEXT)
    p = dict(zip(route.ladder.models, route.ladder.predictions, strict=True))
    assert p["mid"] == p["tiny"] < p["big"] and route.ladder.chosen == "tiny"  # precondition
    assert route.ladder.pair == {"weak": "tiny", "strong": "big"}
    # one rung above tiny: comparing tiny with big would decide nothing (big serves either way), so the route sends
    # the call straight to big (its pair's strong side: streamed as it comes, tiny its fallback)
    assert route.choice == "strong" and not eng.holds(route)
    calls: list[str] = []
    value, record = eng.call(route, scripted({"tiny": "17", "mid": "17", "big": "42"}, calls))
    assert value == "42" and calls == ["big"] and record.model == "big" and record.ladder.chosen == "tiny"
    assert [(a.model, a.kept) for a in record.attempts] == [("big", True)]
    # big down: under fallback the chosen model answers, once
    calls.clear()
    fallback = LadderEngine(
        opts.model_copy(update={"fallback": True}),
        MODELS,
        owner="test",
        is_empty=lambda v: not v,
        chunk_text=str,
        answer_text=str,
    )
    broken: dict[str, Any] = {"tiny": "17", "mid": "17", "big": ConnectionError("big is down")}
    value, record = fallback.call(fallback.route(TEXT), scripted(broken, calls))
    assert value == "17" and calls == ["big", "tiny"] and record.model == "tiny" and record.fallback_from == "big"


class Sure:
    """A one-answer check: confident in an answer that says it is sure."""

    name = "sure"
    needs_second_answer = False

    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        return {"sure": np.array([float("sure" in str(v)) for v in batch.first])}

    def confidence(self, batch: CheckInput) -> np.ndarray:
        return self.signals(batch)["sure"]


def test_a_one_answer_check_climbs_until_a_rung_passes_it() -> None:
    calls: list[str] = []
    answers = {"tiny": "maybe 40", "mid": "sure: 42", "big": "sure: 42"}
    value, record = climber(check=Sure()).call(climber(check=Sure()).route(TEXT), scripted(answers, calls))
    assert value == "sure: 42" and record.model == "mid" and calls == ["tiny", "mid"]  # one rung at a time
    assert [(a.model, a.kept, a.confidence) for a in record.attempts] == [("tiny", False, 0.0), ("mid", True, 1.0)]

    calls.clear()
    eng = climber(check=Sure())
    value, record = eng.call(eng.route(TEXT), scripted({"tiny": "sure", "mid": "x", "big": "y"}, calls))
    assert value == "sure" and record.model == "tiny" and not record.escalated and calls == ["tiny"]


def test_a_failing_rung_never_passes_and_a_failing_top_is_an_error_or_a_fallback() -> None:
    calls: list[str] = []
    answers: dict[str, Any] = {"tiny": "42", "mid": TimeoutError("mid timed out"), "big": "42"}
    value, record = climber().call(climber().route(TEXT), scripted(answers, calls))
    assert value == "42" and record.model == "big"  # tiny's answer was not checked against mid's: big serves
    assert [(a.model, a.error) for a in record.attempts] == [("tiny", None), ("mid", "TimeoutError"), ("big", None)]

    broken: dict[str, Any] = {"tiny": "1", "mid": "2", "big": ConnectionError("big is down")}
    with pytest.raises(ModelCallError, match="'big'"):
        climber().call(climber().route(TEXT), scripted(broken, []))
    fallbacks: list[tuple[str, str]] = []
    eng = climber(fallback=True, on_fallback=lambda rec, exc: fallbacks.append((rec.model, type(exc).__name__)))
    value, record = eng.call(eng.route(TEXT), scripted(broken, []))
    assert value == "2" and record.model == "mid" and record.fallback_from == "big" and record.fallback
    assert [(a.model, a.kept) for a in record.attempts] == [("tiny", False), ("mid", True), ("big", False)]
    assert fallbacks == [("mid", "ConnectionError")]  # the front end's fallback hook heard of it
    assert record.failed_side == "strong"  # the climb's last rung

    # a climb that fails still paid tiny and mid: the budget controller is billed for them
    eng = climber(Objective.budget(0.05))
    with pytest.raises(ModelCallError) as failure:
        eng.call(eng.route(TEXT), scripted(broken, []))
    assert [a.model for a in failure.value.attempts] == ["tiny", "mid", "big"]
    assert eng.controller is not None and eng.controller.realised == pytest.approx(
        answer_cost("tiny", "1") + answer_cost("mid", "2")
    )


def test_async_calls_and_streams_climb_the_same_way() -> None:
    answers = {"tiny": "17", "mid": "42", "big": "42"}

    async def attempt(side: str, record: ServedDecision) -> str:
        return answers[record.model]

    async def open_stream(side: str, record: ServedDecision):  # type: ignore[no-untyped-def]
        for char in answers[record.model]:
            yield char

    async def run() -> tuple[Any, ...]:
        eng = climber()
        value, record = await eng.acall(eng.route(TEXT), attempt)
        relayed = [item async for item in eng.astream(eng.route(TEXT), open_stream)]
        return value, record, relayed

    value, record, relayed = asyncio.run(run())
    assert value == "42" and record.model == "big"
    assert "".join(c for c, _ in relayed) == "42" and {r.model for _, r in relayed} == {"big"}

    eng = climber(Objective.budget(0.05))  # USD per 1k: tiny's expected cost is about 0.03, mid's 0.3
    route = eng.route(TEXT)
    assert route.ladder.chosen == "tiny"
    finals: list[ServedDecision] = []
    chunks = list(eng.stream(route, lambda side, rec: iter(answers[rec.model]), on_final=finals.append))
    assert "".join(c for c, _ in chunks) == "42" and chunks[0][1].model == "big"  # only the served answer surfaces
    # the controller is billed every rung the climb paid for
    paid = sum(answer_cost(m, answers[m]) for m in ("tiny", "mid", "big"))
    assert finals[0].cost == pytest.approx(paid)
    assert eng.controller is not None and eng.controller.realised == pytest.approx(paid)


def test_the_feedback_store_and_a_continued_step_keep_the_pair_that_served(tmp_path: Any) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite")
    eng = climber(feedback=store)
    _, record = eng.call(eng.route(TEXT), scripted({"tiny": "17", "mid": "42", "big": "42"}, []))
    row = {r.decision_id: r for r in store.decisions()}[record.id].record
    assert (row.weak_model, row.strong_model, row.served_model) == ("tiny", "big", "big")
    route = eng.continued(record)
    assert route is not None and route.continued
    calls: list[str] = []
    _, step = eng.call(route, scripted({"tiny": "x", "mid": "y", "big": "tool result read"}, calls))
    assert calls == ["big"] and step.model == "big"  # the tool step stays on the model that served, no climb


def test_climb_is_refused_where_there_is_no_ladder_to_climb() -> None:
    with pytest.raises(InvalidInputError, match="second"):
        Escalation(climb=True, second="gpt-4o-mini")
    with pytest.raises(InvalidInputError, match="models="):
        RoutingEngine(
            RoutingOptions(escalate=Escalation(climb=True)),
            {"strong": "big", "weak": "tiny"},
            owner="test",
            is_empty=lambda v: not v,
            chunk_text=str,
            answer_text=str,
        )
    eng = climber(Objective.margin(0.0))  # big chosen: nothing above it, no climb
    calls: list[str] = []
    value, record = eng.call(eng.route(TEXT), scripted({"tiny": "1", "mid": "2", "big": "3"}, calls))
    assert calls == ["big"] and value == "3" and not record.escalated


def test_the_online_climb_costs_and_scores_what_the_offline_evaluation_says() -> None:
    """40 prompts, answers drawn at random (tiny right 30% of the time, mid 60%, big 90%; a wrong answer is one of two
    values, so rungs agree on a wrong answer too): the engine's climb from tiny, priced from its records, matches
    ``evaluate_choices`` scoring "always tiny, climbing" offline on the same answers."""
    rng = np.random.default_rng(3)
    n = 40
    truth = "7"
    accuracy = {"tiny": 0.3, "mid": 0.6, "big": 0.9}
    answers = {
        m: [(truth if rng.random() < p else str(rng.choice(["8", "9"]))) * int(rng.integers(1, 30)) for _ in range(n)]
        for m, p in accuracy.items()
    }
    quality = {m: [float(a[0] == truth) for a in answers[m]] for m in answers}
    costs = {m: [answer_cost(m, a) for a in answers[m]] for m in answers}
    offline = evaluate_choices(
        np.zeros((1, n), dtype=int),
        quality,
        costs,
        answers={m: [a[0] for a in answers[m]] for m in answers},  # the final answer: the repeated digit
    )
    climbed = [s["escalate"] for s in offline.settings].index(True)

    eng = climber(check=AgreementCheck(extract=lambda text: str(text)[:1] or None))
    served_quality, paid, served = [], [], []
    for i in range(n):
        _, record = eng.call(eng.route(TEXT), lambda side, rec, i=i: answers[rec.model][i])
        served_quality.append(quality[record.model][i])
        paid.append(record.cost)
        served.append(record.model)
    assert {"mid", "big"} <= set(served)  # precondition: the climb stops at different rungs
    assert np.mean(paid) == pytest.approx(offline.points[climbed, 0])
    assert np.mean(served_quality) == pytest.approx(offline.points[climbed, 1])


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_climbed_stream_its_caller_left_is_recorded(mode: str, tmp_path: Any) -> None:
    """A climb holds the served answer, then relays it: a caller who stops reading after the first chunk still
    gets its decision recorded (feedback on its id is taken), as for a two-model stream."""
    store = FeedbackStore(tmp_path / "fb.sqlite", store_answers=True)
    eng = climber(feedback=store)
    answers = {"tiny": "17", "mid": "42", "big": "42"}
    route = eng.route(TEXT)
    if mode == "stream":
        relay = eng.stream(route, lambda side, rec: iter(answers[rec.model]))
        first, record = next(relay)
        relay.close()
    else:

        async def open_stream(side: str, rec: ServedDecision):  # type: ignore[no-untyped-def]
            for char in answers[rec.model]:
                yield char

        async def leave() -> tuple[Any, ServedDecision]:
            relay = eng.astream(route, open_stream)
            item = await relay.__anext__()
            await relay.aclose()
            return item

        first, record = asyncio.run(leave())
    assert first == "4" and record.model == "big"
    stored = store.decision(route.id)
    assert stored is not None and stored.record.served_model == "big"
    assert stored.answer == "4"  # the text relayed, not the whole answer the climb held
    store.close()
