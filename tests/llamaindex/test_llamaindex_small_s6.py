"""A continued agent step after a fallback: its ``RoutingDecisionEvent`` names the model that serves it (the one the
fallback moved the request to), with ``served`` and ``continued`` as the record has them.

The router is real (the shipped ``default``); the children are stand-ins (``li_fakes``) driven by a real
LlamaIndex ``FunctionAgent``.
"""

from __future__ import annotations

from typing import Any

import pytest
from li_fakes import DownLLM, Recorder, ToolCallingLLM, down_strong_pair, multiply
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM, RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core import load_router
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.objective import Objective


@pytest.fixture(scope="module")
def router_model() -> Any:
    return load_router("default")


def _ladder(router_model: Any) -> RouteLLM:
    """Among three models the best predicted (big) is chosen, and it is down."""
    priors = {
        "tiny": ModelPrior(like="chatglm-6b"),
        "mid": ModelPrior(like="Qwen2.5-32B-Instruct"),
        "big": ModelPrior(like="o1-preview-2024-09-12"),
    }
    models = {"tiny": ToolCallingLLM("tiny", {"a": 6, "b": 7}), "mid": ToolCallingLLM("mid", {"a": 6, "b": 7})}
    models["big"] = DownLLM("big", {})
    prices = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
    return RouteLLM(
        models=models, router=router_model, objective=Objective.margin(0.0), priors=priors, prices=prices, fallback=True
    )


@pytest.mark.parametrize("kind", ["two", "ladder"])
async def test_a_continued_step_after_a_fallback_announces_the_model_that_serves_it(
    router_model: Any, events: Recorder, kind: str
) -> None:
    llm = down_strong_pair(router_model) if kind == "two" else _ladder(router_model)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    assert str(await agent.run("What is 6 times 7?")).endswith(": done")
    records = [
        e.response.additional_kwargs["routellm"]
        for e in events.of(LLMChatEndEvent)
        if e.span_id and e.span_id.startswith("RouteLLM.")
    ]
    first, step = events.of(RoutingDecisionEvent)
    (fallback,) = events.of(RoutingFallbackEvent)
    failed, took_over = fallback.failed_model, fallback.fallback_model
    assert failed != took_over
    # the first step goes to the router's choice, which fails; the fallback event says who answered
    assert (first.choice, first.served, first.model, first.continued) == ("strong", "strong", failed, False)
    # the tool step continues the request where the fallback moved it: the model that serves it, not the one chosen
    assert (step.choice, step.served, step.model, step.continued) == ("strong", "weak", took_over, True)
    assert step.decision_id == first.decision_id
    # as the records say
    assert [(r["served"], r["model"], r["continued"]) for r in records] == [
        ("weak", took_over, False),
        ("weak", took_over, True),
    ]
    assert (step.served, step.model, step.continued) == (records[1]["served"], records[1]["model"], True)
