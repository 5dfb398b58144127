"""Bugs found by a bug hunt of N-model ladders and escalation through the LlamaIndex front end, each pinned by a test.

The router is the shipped ``default``; the models are labelled LlamaIndex mock LLMs (``li_fakes.LabelledLLM``).
"""

from __future__ import annotations

import pytest
from li_fakes import LabelledLLM

from llamaindex_routellm import RouteLLM
from routellm_core import InvalidThresholdError, load_router
from routellm_core.escalation import Escalation
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.objective import Objective

QUESTION = "Prove that the square root of 2 is irrational."
PRIORS = {"tiny": ModelPrior(like="chatglm-6b"), "big": ModelPrior(like="o1-preview-2024-09-12")}
PRICES = {"tiny": (0.1, 0.1), "big": (10.0, 10.0)}


@pytest.fixture(scope="module")
def router_model() -> object:
    return load_router("default")


def test_model_copy_takes_escalate_true_as_the_constructor_does(router_model: object) -> None:
    """``RouteLLM(escalate=True)`` takes the default escalation; ``model_copy(update={"escalate": True})`` failed
    with AttributeError ('bool' object has no attribute 'second') while rebuilding the engine."""
    weak, strong = LabelledLLM("weak"), LabelledLLM("strong")
    llm = RouteLLM(strong=strong, weak=weak, router=router_model, threshold=1.0)  # every call to the weak model
    assert (
        RouteLLM(strong=strong, weak=weak, router=router_model, threshold=1.0, escalate=True).escalate == Escalation()
    )
    copy = llm.model_copy(update={"escalate": True})
    assert copy.escalate == Escalation() and llm.escalate is None
    record = copy.complete(QUESTION).additional_kwargs["routellm"]
    # the mock answers alike when resampled: the check agrees and the weak answer serves
    assert [(a["model"], a["role"]) for a in record["attempts"]] == [
        ("weak-model", "answer"),
        ("weak-model (resampled)", "check"),
    ]
    assert record["model"] == "weak-model" and weak.calls == 2 and strong.calls == 0


def test_model_copy_refuses_what_the_constructor_refuses(router_model: object) -> None:
    """A copy's routing options are checked as the constructor's are: a threshold out of [0, 1] is an
    InvalidThresholdError, an objective string is parsed."""
    llm = RouteLLM(strong=LabelledLLM("strong"), weak=LabelledLLM("weak"), router=router_model)
    with pytest.raises(InvalidThresholdError, match="threshold"):
        llm.model_copy(update={"threshold": 3.0})
    ladder = RouteLLM(
        models={"tiny": LabelledLLM("tiny"), "big": LabelledLLM("big")},
        router=router_model,
        priors=PRIORS,
        prices=PRICES,
    )
    cheap = ladder.model_copy(update={"objective": "max_cost=0"})
    assert cheap.objective == Objective.max_cost(0.0)
    assert cheap.choose_model(QUESTION).chosen == "tiny"
