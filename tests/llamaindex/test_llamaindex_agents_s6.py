"""Bug hunt: LlamaIndex agents, workflows, query engines and structured output over ``RouteLLM`` with two models and
with N priced models (``models=[...]``).

The router is real (the shipped ``default``); only the children are stand-ins (``li_fakes``), or real LlamaIndex
``OpenAI`` LLMs against the local OpenAI stand-in (``routellm_core.server.mock_upstream``, no network).
"""

from __future__ import annotations

from typing import Any

import pytest
from li_fakes import LabelledLLM, Recorder, ToolCallingLLM, WindowedLLM, down_strong_pair, multiply
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding, RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core import load_router
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.objective import Objective

PRIORS = {
    "tiny": ModelPrior(like="chatglm-6b"),
    "mid": ModelPrior(like="Qwen2.5-32B-Instruct"),
    "big": ModelPrior(like="o1-preview-2024-09-12"),
}
PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
BEST = Objective.margin(0.0)  # the best predicted model: big
QUESTION = "What does the warranty cover?"
#: A long document: a query engine packs many of its chunks into one prompt, as much as the LLM's metadata allows.
WARRANTY = " ".join(f"Fact {i}: the warranty covers part number {i} for {i % 7 + 1} years." for i in range(400))


@pytest.fixture(scope="module")
def router_model() -> Any:
    return load_router("default")


# ---- 1. metadata: a prompt sized to the router's window fits whichever child is chosen ------------------------
def two_or_ladder(router_model: Any, kind: str, small: LabelledLLM, large: LabelledLLM) -> RouteLLM:
    """A router that sends every call to ``small`` (the strong side at threshold 0, or big, the best predicted)."""
    if kind == "two":
        return RouteLLM(strong=small, weak=large, router=router_model, threshold=0.0)
    models = {"tiny": large, "mid": WindowedLLM("mid", 32_000, 1024), "big": small}
    return RouteLLM(models=models, router=router_model, objective=BEST, priors=PRIORS, prices=PRICES)


@pytest.mark.parametrize("kind", ["two", "ladder"])
def test_the_prompt_room_is_the_smallest_any_child_has(router_model: Any, kind: str) -> None:
    # a child's room for the prompt is its window less the answer it reserves (its max_tokens); pairing one child's
    # window (8,192) with another's smaller output (512) promised 7,680 tokens to a model that has 4,096
    small, large = WindowedLLM("small", 8192, 4096), WindowedLLM("large", 128_000, 512)
    llm = two_or_ladder(router_model, kind, small, large)
    meta = llm.metadata
    assert meta.num_output == 512
    assert meta.context_window - meta.num_output == 8192 - 4096
    assert meta.context_window <= 8192, "a memory sized to the window (FunctionAgent's) fits every child too"


@pytest.mark.usefixtures("offline_settings")
@pytest.mark.parametrize("kind", ["two", "ladder"])
def test_a_query_engine_packs_prompts_that_fit_the_chosen_model(
    router_model: Any, embed_model: RouteLLMEmbedding, kind: str
) -> None:
    # the chosen model refuses, like a provider's API, a prompt that leaves it less than its max_tokens to answer
    small, large = WindowedLLM("small", 8192, 4096), WindowedLLM("large", 128_000, 512)
    llm = two_or_ladder(router_model, kind, small, large)
    index = VectorStoreIndex.from_documents([Document(text=WARRANTY)], embed_model=embed_model)
    assert len(index.docstore.docs) >= 6, "precondition: more text than one prompt of the small model holds"
    engine = index.as_query_engine(llm=llm, similarity_top_k=20, response_mode="compact")
    response = engine.query(QUESTION)
    assert str(response) == f"[small] {QUESTION}"
    assert small.calls >= 2 and large.calls == 0, "the context was split over several prompts of the small model"


# ---- 2. the decision event names the model as the record does ------------------------------------------------
@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_the_decision_event_names_the_model_as_the_record_does(
    router_model: Any, events: Recorder, threshold: float
) -> None:
    # strong_name / weak_name name the models in records, prices and fallback events: the decision event too
    llm = RouteLLM(
        strong=LabelledLLM("s"),
        weak=LabelledLLM("w"),
        router=router_model,
        threshold=threshold,
        strong_name="gpt-4o",
        weak_name="gpt-4o-mini",
    )
    record = llm.complete(QUESTION).additional_kwargs["routellm"]
    assert record["model"] == ("gpt-4o" if threshold == 0.0 else "gpt-4o-mini")
    (decision,) = events.of(RoutingDecisionEvent)
    assert decision.model == record["model"] and decision.decision_id == record["decision_id"]
    assert (llm.to_payload()["strong_model"], llm.to_payload()["weak_model"]) == ("gpt-4o", "gpt-4o-mini")


async def test_an_agents_events_and_records_agree_on_the_model_names(router_model: Any, events: Recorder) -> None:
    # a FunctionAgent over a named pair whose strong model is down: one decision per step, one fallback event, and
    # every name in them is a name the records use
    llm = down_strong_pair(router_model)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    assert str(await agent.run("What is 6 times 7?")) == "w: done"
    records = [
        e.response.additional_kwargs["routellm"]
        for e in events.of(LLMChatEndEvent)
        if e.span_id and e.span_id.startswith("RouteLLM.")
    ]
    assert [(r["model"], r["fallback_from"], r["continued"]) for r in records] == [
        ("gpt-4o-mini", "gpt-4o", False),
        ("gpt-4o-mini", "gpt-4o", True),
    ]
    decisions, (fallback,) = events.of(RoutingDecisionEvent), events.of(RoutingFallbackEvent)
    # the first call's event names the router's choice; the continued step's the model that serves it, as its record
    assert [(d.model, d.continued) for d in decisions] == [("gpt-4o", False), ("gpt-4o-mini", True)]
    assert (fallback.failed_model, fallback.fallback_model) == ("gpt-4o", "gpt-4o-mini")


# ---- 3. the child's own answer, held by its events, is left as the child returned it ---------------------------
@pytest.mark.parametrize("streaming", [False, True])
async def test_the_childs_events_keep_its_own_answer_so_records_are_not_counted_twice(
    router_model: Any, events: Recorder, streaming: bool
) -> None:
    # a handler that keeps events and sums the records' costs afterwards (as exporters and LlamaDebugHandler read
    # them): the router tagged the child's response in place, so the child's end event later held the router's
    # record too, and every call was counted twice
    models = {name: ToolCallingLLM(name, {"a": 6, "b": 7}) for name in PRIORS}
    llm = RouteLLM(models=models, router=router_model, objective=BEST, priors=PRIORS, prices=PRICES)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm, streaming=streaming)
    assert str(await agent.run("What is 6 times 7?")) == "big: done"
    ends = events.of(LLMChatEndEvent)
    routed = [e for e in ends if e.span_id.startswith("RouteLLM.")]
    children = [e for e in ends if e.span_id.startswith("ToolCallingLLM.")]
    assert len(routed) == len(children) == 2, "two agent steps, each one router call over one child call"
    assert all("routellm" in e.response.additional_kwargs for e in routed)
    assert [e.response for e in children if "routellm" in e.response.additional_kwargs] == []
    assert [e.response.message.blocks for e in routed] == [e.response.message.blocks for e in children]
