"""Budgets held online among N priced models, probed as a user holds them: odd targets and windows, and answers
LangChain's cache replays (which must not teach the ladder that a model writes nothing).

The models are the stand-ins of tests/core/test_ladder_online.py (profiles from far-apart real models, prices 0.1, 1
and 10 USD per million tokens), routed by the shipped ``default`` router.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from ladder_standins import MODELS, PRICES, PRIORS, served_record
from langchain_core.caches import InMemoryCache
from lc_fakes import ToolEchoChatModel

from langchain_routellm import ChatRouteLLM
from routellm_core.errors import InvalidInputError
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.objective import MAX_WINDOW, Objective

TEXT = "Prove that the square root of 2 is irrational."


def _engine() -> LadderEngine:
    options = RoutingOptions(objective=Objective.budget(1.0), priors=PRIORS, prices=PRICES)
    return LadderEngine(options, MODELS, owner="test", is_empty=lambda v: not v, chunk_text=str, answer_text=str)


# ---- answers a cache replayed ----------------------------------------------------------------------------------
def test_a_cache_replay_teaches_the_ladder_no_output_length() -> None:
    """LangChain's cache replays an answer as 0 input and 0 output tokens (nothing was sent): the ladder's expected
    costs stay what the models' real answers taught it (before the fix each replay read as a 1-token answer, so the
    model's verbosity fell to ~1/300 and its next real answer multiplied the traffic's level by ~300)."""
    eng = _engine()
    for _ in range(10):
        for model in MODELS:
            eng.ladder.observe(served_record(model, 12, 300), TEXT)
    learned = eng.ladder.expected_costs(TEXT)
    for _ in range(30):
        eng.ladder.observe(served_record("tiny", 0, 0), TEXT)
    eng.ladder.observe(served_record("tiny", 12, 300), TEXT)
    assert eng.ladder.expected_costs(TEXT) == pytest.approx(learned, rel=0.01)


def test_a_real_zero_token_answer_still_counts() -> None:
    """An answer with input tokens and no output (a model that wrote nothing) is still what that model did."""
    eng = _engine()
    for _ in range(10):
        for model in MODELS:
            eng.ladder.observe(served_record(model, 12, 300), TEXT)
    before = dict(zip(MODELS, eng.ladder.expected_costs(TEXT), strict=True))
    for _ in range(30):
        eng.ladder.observe(served_record("tiny", 12, 0), TEXT)
    after = dict(zip(MODELS, eng.ladder.expected_costs(TEXT), strict=True))
    assert after["tiny"] < 0.5 * before["tiny"]


def test_answers_reporting_no_input_tokens_leave_the_prompt_length_alone() -> None:
    """A provider that reports output tokens only (input 0) says nothing of the prompt's length: the expected costs
    stay what the real reports taught (each such answer read as a 0-token prompt: expected costs fell 4.6x)."""
    eng = _engine()
    long_text = TEXT * 40  # prompt tokens weigh in the expected cost
    for _ in range(10):
        for model in MODELS:
            eng.ladder.observe(served_record(model, 480, 300), long_text)
    learned = eng.ladder.expected_costs(long_text)
    for _ in range(200):
        eng.ladder.observe(served_record("mid", 0, 300), long_text)
    assert eng.ladder.expected_costs(long_text) == pytest.approx(learned, rel=0.05)


def test_langchain_cache_hits_do_not_carry_the_budget_away() -> None:
    """Half the traffic is one repeated question that LangChain's cache answers after its first call. The budget
    (0.5 USD per 1k: between mid alone, ~0.3, and big alone, ~3) is still spent, as without a cache; before the fix
    the replays inflated every expected cost ~100x and the controller spent a third of it, all on the cheapest model.
    """
    long_answer = " ".join(["word"] * 300)
    cache = InMemoryCache()
    children = [ToolEchoChatModel(label=n, model=n, answer=long_answer, cache=cache) for n in MODELS]
    llm = ChatRouteLLM(models=children, objective="budget=0.5", priors=PRIORS, prices=PRICES)
    rng = random.Random(0)
    words = ("alpha", "beta", "gamma", "delta", "prove", "integral", "compute", "write", "poem", "rust", "code")
    costs, cached = [], 0
    for i in range(400):
        text = "What is the status?" if i % 2 == 0 else " ".join(rng.choice(words) for _ in range(rng.randint(3, 40)))
        record = llm.invoke(text).response_metadata["routellm"]
        cached += bool(record.get("cached")) or record["cost"] == 0
        costs.append(record["cost"] or 0.0)
    assert cached > 100  # precondition: the cache answered many of the repeated questions
    spend = 1000 * float(np.mean(costs[100:]))
    assert spend == pytest.approx(0.5, rel=0.2)


# ---- odd targets and windows -----------------------------------------------------------------------------------
def test_numpy_numbers_are_budgets_and_windows() -> None:
    """A budget or window computed with numpy (``np.float32(1.5)``, ``np.int64(500)``) is a number like any other."""
    objective = Objective.budget(np.float32(1.5), window=np.int64(500))  # type: ignore[arg-type]
    assert (objective.value, objective.window) == (1.5, 500) and type(objective.window) is int
    assert str(objective) == "budget=1.5,window=500"
    assert Objective.margin(np.float64(0.1)).value == pytest.approx(0.1)


@pytest.mark.parametrize("window", [MAX_WINDOW + 1, 10**30])
def test_a_window_too_long_is_refused_naming_the_limit(window: int) -> None:
    """A window of 10^30 requests crashed the engine's construction with ``OverflowError`` (a 500 on the server)."""
    for build in (lambda: Objective.budget(1.5, window=window), lambda: Objective.parse(f"budget=1.5,window={window}")):
        with pytest.raises(InvalidInputError, match=f"at most {MAX_WINDOW:,}"):
            build()
    assert Objective.budget(1.5, window=MAX_WINDOW).window == MAX_WINDOW


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: Objective.budget(-1), "a budget must be above 0 USD per 1,000 requests, got -1"),
        (lambda: Objective.parse("budget=-1"), "a budget must be above 0 USD per 1,000 requests, got -1.0"),
        (lambda: Objective.budget(float("nan")), "needs a finite number"),
        (lambda: Objective.budget(10**400), "needs a finite number"),  # was OverflowError
        (lambda: Objective.cost_weight(-(10**400)), "needs a finite number"),
        (lambda: Objective.budget("1.5"), "needs a finite number, got '1.5'"),  # type: ignore[arg-type]
        (lambda: Objective.margin(-0.1), "needs a number >= 0"),
    ],
)
def test_bad_targets_name_the_problem(build: object, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        build()  # type: ignore[operator]
    assert problem in str(caught.value)


def test_a_negative_zero_margin_reads_as_zero() -> None:
    """``margin=-0`` is the margin 0: its record and its metrics label say 0, not -0."""
    objective = Objective.parse("margin=-0")
    assert str(objective) == "margin=0" and objective == Objective.margin(0.0)
    assert str(objective.value) == "0.0"
