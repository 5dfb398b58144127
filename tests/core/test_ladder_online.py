"""The routed call among N priced models (``LadderEngine``): objectives, the pair a call runs on, escalation up
the ladder, the budget controller on drifting traffic, the record.

The three models are stand-ins whose profiles start from far-apart real ones (``ModelPrior(like=...)``), so which
model is better on any prompt is known in advance (checked as a precondition), and their prices are given, so every
expected cost is known: tiny at 0.1, mid at 1, big at 10 USD per million tokens (input and output alike).
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from ladder_standins import MODELS, PRICES, PRIORS, priced_engine, served_record

from routellm_core.decisions import ServedDecision
from routellm_core.errors import InvalidInputError
from routellm_core.escalation.config import Escalation
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routers.profiles import ModelPrior, UnknownModelError
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import DEFAULT_OUTPUT_TOKENS, BudgetController, LadderEngine
from routellm_core.routing.objective import Objective

PROMPTS = [
    "hi",
    "Prove that the square root of 2 is irrational.",
    "Write a haiku about autumn leaves.",
    "A train leaves at 3pm at 60 mph; when has it covered 150 miles?",
    "Implement quicksort in Rust with generics and explain its complexity.",
]


def engine(objective: Objective | str | None = None, **options: object) -> LadderEngine:
    opts = RoutingOptions(objective=objective, priors=PRIORS, prices=PRICES, **options)
    return LadderEngine(opts, MODELS, owner="test", is_empty=lambda v: not v, chunk_text=str, answer_text=str)


def expected_cost(model: str, text: str, output_tokens: float = DEFAULT_OUTPUT_TOKENS) -> float:
    price = PRICES[model][0]
    return (max(1.0, len(text) / 4) + output_tokens) * price / 1e6


@pytest.fixture(scope="module")
def ladder() -> LadderEngine:
    eng = engine()
    for text in PROMPTS[1:]:  # precondition: the stand-ins are ordered big > mid > tiny on these prompts
        p = dict(zip(eng.route(text).ladder.models, eng.route(text).ladder.predictions, strict=True))
        assert p["big"] > p["mid"] > p["tiny"]
    return eng


@pytest.mark.parametrize(
    ("objective", "chosen"),
    [
        (Objective.margin(1.0), "tiny"),  # everyone is within a margin of 1: the cheapest
        (Objective.margin(0.0), "big"),  # no margin: the best predicted
        (Objective.cost_weight(0.0), "big"),
        (Objective.cost_weight(1e9), "tiny"),
        (f"max_cost={1e-3:g}", "mid"),  # mid costs about 3e-4 USD here, big about 3e-3
        (Objective.max_cost(1e-6), "tiny"),  # nothing fits: the cheapest
    ],
)
def test_objectives_pick_the_model_known_in_advance(
    ladder: LadderEngine, objective: Objective | str, chosen: str
) -> None:
    for text in PROMPTS[1:3]:
        assert expected_cost("mid", text) < 1e-3 < expected_cost("big", text)
    eng = engine(objective)
    for text in PROMPTS[1:3]:
        route = eng.route(text)
        assert route.ladder.chosen == chosen
        assert route.ladder.expected_costs == pytest.approx([expected_cost(m, text) for m in ("tiny", "mid", "big")])


def test_the_chosen_model_runs_on_a_pair_and_the_record_names_it(ladder: LadderEngine) -> None:
    cheap = engine(Objective.margin(1.0))
    route = cheap.route(PROMPTS[1])
    # tiny chosen: the best-predicted costlier model (big) stands above it
    assert (route.ladder.weak, route.ladder.strong, route.choice) == ("tiny", "big", "weak")
    called: list[str] = []

    def attempt(side: str, record: ServedDecision) -> str:
        called.append(record.model)
        return f"answer of {record.model}"

    value, record = cheap.call(route, attempt)
    assert called == ["tiny"] and value == "answer of tiny"
    assert record.model == "tiny" and record.ladder is not None and record.ladder.chosen == "tiny"
    assert record.ladder.expected_cost == pytest.approx(expected_cost("tiny", PROMPTS[1]))
    back = ServedDecision.from_dict(record.as_dict())
    assert back == record  # the ladder entry round-trips through the metadata form

    best = engine(Objective.margin(0.0)).route(PROMPTS[1])
    # big chosen: nothing costlier is better, so big is the strong side and the call goes there
    assert (best.ladder.strong, best.choice) == ("big", "strong")


def test_escalation_climbs_from_the_chosen_model_to_the_one_above() -> None:
    eng = engine(Objective.margin(1.0), escalate=Escalation(threshold=0.5))
    route = eng.route(PROMPTS[3])
    samples = iter(["42", "17"])  # the tiny answers disagree

    def attempt(side: str, record: ServedDecision) -> str:
        return next(samples) if record.model == "tiny" else "big says 2.5 hours"

    value, record = eng.call(route, attempt, second=lambda record: next(samples))
    assert value == "big says 2.5 hours"
    assert record.escalated and record.model == "big" and record.ladder.chosen == "tiny"
    assert [(a.model, a.role) for a in record.attempts] == [
        ("tiny", "answer"),
        ("tiny (resampled)", "check"),
        ("big", "escalation"),
    ]

    agreeing = iter(["42", "42"])
    value, record = eng.call(eng.route(PROMPTS[3]), lambda side, rec: next(agreeing), second=lambda rec: "42")
    assert value == "42" and not record.escalated and record.model == "tiny"


def test_fallback_goes_to_the_pairs_other_model() -> None:
    eng = engine(Objective.margin(1.0), fallback=True)

    def attempt(side: str, record: ServedDecision) -> str:
        if record.model == "tiny":
            raise TimeoutError("tiny timed out")
        return f"answer of {record.model}"

    value, record = eng.call(eng.route(PROMPTS[2]), attempt)
    assert value == "answer of big" and record.fallback_from == "tiny" and record.fallback_error == "TimeoutError"


def test_a_continued_step_stays_on_its_pair(ladder: LadderEngine) -> None:
    eng = engine(Objective.margin(1.0))
    _, record = eng.call(eng.route(PROMPTS[4]), lambda side, rec: "calls a tool")
    route = eng.continued(record)
    assert route is not None and route.continued and route.ladder == record.ladder
    _, step = eng.call(route, lambda side, rec: f"answer of {rec.model}")
    assert step.model == "tiny" and step.id == record.id


def _report(eng: LadderEngine, text: str, model: str, output_tokens: int) -> None:
    eng.ladder.observe(served_record(model, int(len(text) / 4), output_tokens), text)


def _expected(eng: LadderEngine, text: str) -> dict[str, float]:
    route = eng.route(text)
    return dict(zip(route.ladder.models, route.ladder.expected_costs, strict=True))


def test_reported_output_lengths_move_the_expected_costs() -> None:
    eng = engine(Objective.margin(1.0), escalate=None)
    text = PROMPTS[1]
    before = _expected(eng, text)
    _report(eng, text, "tiny", 3000)
    after = _expected(eng, text)
    assert after["tiny"] == pytest.approx(expected_cost("tiny", text, 3000), rel=0.05)
    assert after["tiny"] > before["tiny"]
    # big reported nothing: it is expected to write what the traffic's answers are now as long as
    assert after["big"] == pytest.approx(expected_cost("big", text, 3000), rel=0.05)


def test_a_drift_in_answer_lengths_reaches_the_models_served_rarely() -> None:
    """big writes twice what tiny writes; then the traffic's answers get 3x longer and only tiny reports it:
    big's expected output follows (3 x 600), keeping its own verbosity, instead of staying at its old 600."""
    eng = engine(Objective.margin(1.0), escalate=None)
    text = PROMPTS[1]
    for _ in range(60):
        _report(eng, text, "tiny", 300)
        _report(eng, text, "big", 600)
    steady = _expected(eng, text)
    assert steady["tiny"] == pytest.approx(expected_cost("tiny", text, 300), rel=0.05)
    assert steady["big"] == pytest.approx(expected_cost("big", text, 600), rel=0.05)
    for _ in range(30):
        _report(eng, text, "tiny", 900)
    drifted = _expected(eng, text)
    assert drifted["tiny"] == pytest.approx(expected_cost("tiny", text, 900), rel=0.1)
    assert drifted["big"] == pytest.approx(expected_cost("big", text, 1800), rel=0.15)


def test_the_budget_controller_holds_the_spend_when_the_traffic_drifts() -> None:
    """Short prompts, then long ones (input tokens x20): a fixed cost weight would overspend after the drift; the
    controller keeps the window's spend at the target in both halves."""
    short = [f"question {i}: what is {i} plus {i}?" for i in range(300)]
    long_ = [f"question {i}: " + "please read this long document carefully. " * 60 for i in range(300)]
    target = 1.0  # USD per 1k requests: between tiny-only and big-only on both halves
    for traffic in (short, long_):
        only = {m: 1000 * np.mean([expected_cost(m, t) for t in traffic]) for m in PRICES}
        assert only["tiny"] < target < only["big"]
    eng = engine(Objective.budget(target, window=100))
    spends = []
    for text in short + long_:
        route = eng.route(text)
        spends.append(dict(zip(route.ladder.models, route.ladder.expected_costs, strict=True))[route.ladder.chosen])
        assert route.ladder.objective == "budget" and route.ladder.budget == target
    first, second = 1000 * np.mean(spends[100:300]), 1000 * np.mean(spends[400:600])
    assert first == pytest.approx(target, rel=0.15) and second == pytest.approx(target, rel=0.15)


def test_a_budget_below_the_cheapest_model_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    cheapest = 1000 * np.mean([expected_cost("tiny", p) for p in PROMPTS])
    eng = engine(Objective.budget(cheapest / 10, window=20))
    with caplog.at_level(logging.WARNING, logger="routellm_core.routing.ladder"):
        chosen = [eng.route(PROMPTS[i % len(PROMPTS)]).ladder.chosen for i in range(60)]
    assert set(chosen) == {"tiny"}  # nothing cheaper to spend less on
    warned = [r.getMessage() for r in caplog.records if "below what the cheapest model costs" in r.getMessage()]
    assert len(warned) == 1 and "every call goes to the cheapest model" in warned[0]
    caplog.clear()
    held = engine(Objective.budget(cheapest * 3, window=20))  # a budget it can hold: no warning
    with caplog.at_level(logging.WARNING, logger="routellm_core.routing.ladder"):
        for i in range(60):
            held.route(PROMPTS[i % len(PROMPTS)])
    assert not [r for r in caplog.records if "below what the cheapest" in r.getMessage()]


def test_async_calls_route_and_record() -> None:
    eng = engine(Objective.margin(0.0))

    async def attempt(side: str, record: ServedDecision) -> str:
        return f"answer of {record.model}"

    async def main() -> tuple[str, ServedDecision]:
        route = await eng.aroute(PROMPTS[1])
        return await eng.acall(route, attempt)

    value, record = asyncio.run(main())
    assert value == "answer of big" and record.ladder.chosen == "big"


def test_the_feedback_store_records_each_calls_pair(tmp_path) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite")
    cheap, best = engine(Objective.margin(1.0), feedback=store), engine(Objective.margin(0.0), feedback=store)
    _, a = cheap.call(cheap.route(PROMPTS[1]), lambda side, rec: "tiny answer")
    _, b = best.call(best.route(PROMPTS[1]), lambda side, rec: "big answer")
    rows = {row.decision_id: row for row in store.decisions()}
    assert (rows[a.id].record.weak_model, rows[a.id].record.served_model) == ("tiny", "tiny")
    assert rows[b.id].record.served_model == "big"
    # with what was compared: the models, their predictions and expected costs, the objective
    assert rows[a.id].record.ladder == a.ladder and rows[b.id].record.ladder == b.ladder


def test_bad_ladders_are_refused_with_the_reason() -> None:
    opts = RoutingOptions(prices=PRICES)
    kwargs = {"owner": "test", "is_empty": lambda v: not v, "chunk_text": str, "answer_text": str}
    with pytest.raises(UnknownModelError, match=r"priors=\{'big'"):
        LadderEngine(opts, MODELS, **kwargs)  # no prior for the stand-ins
    with pytest.raises(InvalidInputError, match="no price"):
        LadderEngine(RoutingOptions(priors=PRIORS), MODELS, **kwargs)
    with pytest.raises(InvalidInputError, match="objective"):
        LadderEngine(RoutingOptions(priors=PRIORS, prices=PRICES, threshold=0.3), MODELS, **kwargs)
    with pytest.raises(InvalidInputError, match="twice"):
        LadderEngine(RoutingOptions(priors=PRIORS, prices=PRICES), ["tiny", "tiny"], **kwargs)
    with pytest.raises(InvalidInputError, match="predicts each model"):
        LadderEngine(RoutingOptions(router="random", priors=PRIORS, prices=PRICES), MODELS, **kwargs)
    for bad in ("margin=2", "budget=0", "speed=1", "budget", "margin=x"):
        with pytest.raises(InvalidInputError):
            Objective.parse(bad)
    with pytest.raises(InvalidInputError, match="threshold"):
        engine().route(PROMPTS[0], threshold=0.5)


def test_priors_for_models_not_listed_are_kept_unless_one_looks_like_a_mistyped_listed_model() -> None:
    kwargs = {"owner": "test", "is_empty": lambda v: not v, "chunk_text": str, "answer_text": str}
    # one table for several ladders (or a copy over fewer models): the extra prior is unused, not an error
    ghost = {**PRIORS, "ghost": ModelPrior(like="gpt-4o-mini")}
    assert LadderEngine(RoutingOptions(priors=ghost, prices=PRICES), MODELS, **kwargs).names == tuple(MODELS)
    # big's prior under a key too far from "big" to guess: big then has no profile, and the error names the keys
    typo = {"tiny": PRIORS["tiny"], "mid": PRIORS["mid"], "bgi": PRIORS["big"]}
    with pytest.raises(UnknownModelError) as info:
        LadderEngine(RoutingOptions(priors=typo, prices=PRICES), MODELS, **kwargs)
    assert "'big'" in str(info.value) and "priors= names ['bgi'], none of them listed" in str(info.value)
    # another spelling of one listed model (a provider prefix, a version's dot, a date) is that model's prior
    spelled = {"openai:small-model": PRIORS["tiny"], "large.model-2025-01-31": PRIORS["big"]}
    priced = {"small-model": (0.1, 0.1), "large.model": (1.0, 1.0)}
    eng = LadderEngine(RoutingOptions(priors=spelled, prices=priced), ["small-model", "large.model"], **kwargs)
    assert set(eng.priors) == {"small-model", "large.model"}
    haiku = {"anthropic/claude-haiku-4.5": ModelPrior(like="claude-3-haiku")}  # Anthropic writes 4-5
    eng = LadderEngine(RoutingOptions(priors=haiku), ["claude-haiku-4-5", "gpt-4o"], **kwargs)
    assert set(eng.priors) == {"claude-haiku-4-5"}
    # but another size (an Ollama tag) or another dated version is another model: its prior is not moved onto it
    for key, listed in (("llama3.1:70b", "llama3.1:8b"), ("acme-2024-06-20", "acme-2024-10-22")):
        with pytest.raises(UnknownModelError, match="none of them listed"):
            LadderEngine(
                RoutingOptions(priors={key: ModelPrior(like="gpt-4o")}, prices={listed: (0.1, 0.1)}),
                [listed, "gpt-4o"],
                **kwargs,
            )
    # a key one letter off a listed model that has no prior: refused with the guess
    long = {"small-model": PRIORS["tiny"], "large-modle": PRIORS["big"]}
    with pytest.raises(InvalidInputError, match=r"did you mean 'large-model' for 'large-modle'\?"):
        LadderEngine(
            RoutingOptions(priors=long, prices={"small-model": (0.1, 0.1), "large-model": (1.0, 1.0)}),
            ["small-model", "large-model"],
            **kwargs,
        )


@pytest.mark.parametrize("reported", [True, False])
def test_the_budget_controller_pays_back_what_expected_costs_missed(reported: bool) -> None:
    """Every call really costs twice what was expected (answers longer than learned): told the realised costs, the
    controller brings the realised spend to the target; not told, it spends about twice the target."""
    rng = np.random.default_rng(0)
    cost = np.array([0.0001, 0.001])  # USD: cheap, dear
    target = 0.5  # USD per 1k: half the requests on the dear model, as expected; all of them at twice the price
    ctrl = BudgetController(target, window=100, seed=1)
    realised = []
    for _ in range(800):
        p_cheap = rng.uniform(0.2, 0.8)
        pred = np.array([p_cheap, p_cheap + rng.uniform(0.0, 0.2)])
        weight, _ = ctrl.weight(pred, cost)
        chosen = int(np.argmax(pred - weight * cost))
        realised.append(2 * cost[chosen])
        if reported:
            ctrl.spent(realised[-1])
    spend = 1000 * float(np.mean(realised[-400:]))
    if reported:
        assert spend == pytest.approx(target, rel=0.1)
    else:
        assert spend > 1.6 * target


def _budget_engine(**options: object) -> LadderEngine:
    """A budget engine whose answers report 10 input tokens and one output token per character."""
    return priced_engine(RoutingOptions(objective=Objective.budget(1.0), priors=PRIORS, prices=PRICES, **options))


def _cost(model: str, output_tokens: int) -> float:
    return (10 * PRICES[model][0] + output_tokens * PRICES[model][1]) / 1e6


def test_streams_teach_the_ladder_and_the_controller_however_they_end() -> None:
    chunks = ["a" * 100, "b" * 100]
    for abandon in (False, True):
        eng = _budget_engine()
        route = eng.route(PROMPTS[1])
        chosen = route.ladder.chosen
        finals: list[ServedDecision] = []
        relay = eng.stream(route, lambda side, rec: iter(chunks), on_final=finals.append)
        if abandon:  # the caller stops after the first chunk: what was relayed is still paid for
            next(relay)
            relay.close()
        else:
            assert len(list(relay)) == 2
        out = 100 if abandon else 200
        assert len(finals) == 1 and finals[0].cost == pytest.approx(_cost(chosen, out))
        assert eng.controller is not None and eng.controller.realised == pytest.approx(_cost(chosen, out))
        expected = dict(zip(eng.route(PROMPTS[1]).ladder.models, eng.route(PROMPTS[1]).ladder.expected_costs))
        assert expected[chosen] == pytest.approx(expected_cost(chosen, PROMPTS[1], out), rel=0.05)


def test_async_streams_teach_the_controller() -> None:
    eng = _budget_engine()
    route = eng.route(PROMPTS[1])

    async def open_stream(side: str, record: ServedDecision):  # type: ignore[no-untyped-def]
        for chunk in ("a" * 50, "b" * 50):
            yield chunk

    async def relay() -> list[object]:
        return [item async for item in eng.astream(route, open_stream)]

    assert len(asyncio.run(relay())) == 2
    assert eng.controller is not None and eng.controller.realised == pytest.approx(_cost(route.ladder.chosen, 100))


def test_a_fallback_bills_the_model_that_answered() -> None:
    eng = _budget_engine(fallback=True)
    route = eng.route(PROMPTS[1])
    pair = route.ladder.pair

    def attempt(side: str, record: ServedDecision) -> str:
        if record.model == route.ladder.chosen:
            raise TimeoutError("the chosen model timed out")
        return "x" * 50

    _, record = eng.call(route, attempt)
    other = pair["strong"] if route.ladder.chosen == pair["weak"] else pair["weak"]
    assert record.model == other and record.cost is None  # the failed attempt has no price
    assert eng.controller is not None and eng.controller.realised == pytest.approx(_cost(other, 50))


def test_a_zero_token_reply_neither_fails_the_call_nor_makes_a_model_free() -> None:
    eng = engine(Objective.margin(1.0), escalate=None)
    text = PROMPTS[1]
    _report(eng, text, "big", 250)
    _report(eng, text, "tiny", 0)
    _report(eng, text, "tiny", 0)
    _, record = eng.call(eng.route(text), lambda side, rec: f"answer of {rec.model}")
    assert record.model == "tiny"
    assert _expected(eng, text)["tiny"] > expected_cost("tiny", text, 0.5)
