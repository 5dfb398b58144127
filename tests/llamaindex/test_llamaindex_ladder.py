"""``RouteLLM(models=[...])``: LlamaIndex calls routed among N priced LLMs (the core's ``LadderEngine``).

The router is the shipped default; the three models are LlamaIndex mock LLMs named ``tiny``, ``mid`` and ``big``,
whose profiles start from far-apart real models (``ModelPrior(like=...)``) and whose prices are given (0.1, 1 and
10 USD per million tokens), so which model each objective picks is known in advance (checked as a precondition):
``Objective.margin(1.0)`` takes the cheapest (tiny), ``Objective.margin(0.0)`` the best predicted (big).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from li_fakes import LabelledLLM, Recorder, ToolCallingLLM, user
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLMWithChatMemoryOfLastCall
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding, RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core import InvalidInputError, InvalidThresholdError, ModelCallError, load_router
from routellm_core.escalation import Escalation
from routellm_core.escalation.checks import VERIFY_QUESTION
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routers.profiles import ModelPrior, UnknownModelError
from routellm_core.routing.cascade import SAMPLE_TEMPERATURE
from routellm_core.routing.objective import Objective

PRIORS = {
    "tiny": ModelPrior(like="chatglm-6b"),
    "mid": ModelPrior(like="Qwen2.5-32B-Instruct"),
    "big": ModelPrior(like="o1-preview-2024-09-12"),
}
PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
ORDER = ["tiny", "mid", "big"]  # the cost order
QUESTION = "Prove that the square root of 2 is irrational."
ARITHMETIC = "A train leaves at 3pm at 60 mph; when has it covered 150 miles?"
QUERY = "How tall is the Eiffel Tower?"
CHEAPEST, BEST = Objective.margin(1.0), Objective.margin(0.0)
#: About 3e-4 USD for mid on QUESTION (and 3e-3 for big): the best predicted model within it is mid.
MID_BUDGET = "max_cost=0.001"


# ---- the models: LlamaIndex mock LLMs with a name, a scripted reply, and a record of their calls --------------
class Rung(MockLLM):
    """A completion-style ``MockLLM`` named ``name`` (its ``metadata.model_name``) answering ``[name] answer`` (or
    ``reply``; ``resampled_reply`` when asked again warmer for the escalation check), streamed in
    two chunks; it fails with ``error`` and records every prompt with its temperature."""

    name: str = "rung"
    reply: str | None = None
    resampled_reply: str | None = None
    verdict: str = "Yes"
    temperature: float = 0.0
    context_window: int = 8192
    error: Exception | None = None
    seen: list[tuple[float, str]] = Field(default_factory=list)

    def __init__(self, name: str, **fields: Any) -> None:
        super().__init__()
        self.name, self.seen = name, []
        for key, value in fields.items():
            setattr(self, key, value)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name, context_window=self.context_window)

    @property
    def calls(self) -> int:
        return len(self.seen)

    def _answer(self, prompt: str) -> str:
        if VERIFY_QUESTION in prompt:
            return self.verdict
        if self.temperature > 0 and self.resampled_reply is not None:
            return self.resampled_reply
        if self.reply is not None:
            return self.reply
        return f"[{self.name}] answer"

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.seen.append((self.temperature, prompt))
        if self.error is not None:
            raise self.error
        return CompletionResponse(text=self._answer(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self.seen.append((self.temperature, prompt))
        if self.error is not None:
            raise self.error
        answer = self._answer(prompt)

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=answer[:3], delta=answer[:3])
            yield CompletionResponse(text=answer, delta=answer[3:])

        return gen()


class ToolRung(MockFunctionCallingLLMWithChatMemoryOfLastCall):
    """LlamaIndex's function-calling mock, named ``name``: calls every tool it is given, then answers."""

    name: str = "rung"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name, is_function_calling_model=True)


class ReActRung(Rung):
    """A ReAct-format model: asks for the multiply tool, then answers once it sees the observation."""

    def _answer(self, prompt: str) -> str:
        if "Observation: 42" in prompt:
            return f"Thought: I can answer without using any more tools.\nAnswer: 42 ({self.name})"
        return (
            "Thought: I need to use a tool to help me answer the question.\n"
            'Action: multiply\nAction Input: {"a": 6, "b": 7}'
        )


def multiply(a: int = 6, b: int = 7) -> int:
    """Multiply two integers."""
    return a * b


def rungs(kind: type = Rung, **per_model: dict[str, Any]) -> dict[str, Any]:
    return {name: kind(name, **per_model.get(name, {})) for name in ORDER}


# ---- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def router_model() -> Any:
    return load_router("default")


@pytest.fixture
def ladder(router_model: Any) -> Any:
    """``ladder(models, objective, **options)``: a RouteLLM over ``models`` with the stand-ins' priors and prices."""

    def build(models: Any, objective: Any = None, **options: Any) -> RouteLLM:
        return RouteLLM(
            models=models, router=router_model, objective=objective, priors=PRIORS, prices=PRICES, **options
        )

    return build


def test_precondition_the_stand_ins_are_ordered_big_mid_tiny(ladder: Any) -> None:
    llm = ladder(list(rungs().values()))
    for text in (QUESTION, ARITHMETIC, QUERY, "What is 6 times 7?"):
        choice = llm.choose_model(text)
        assert list(choice.models) == ORDER  # cost order, whatever the listed order
        p = dict(zip(choice.models, choice.predictions, strict=True))
        assert p["big"] > p["mid"] > p["tiny"], text
    costs = dict(zip(choice.models, llm.choose_model(QUESTION).expected_costs, strict=True))
    assert costs["mid"] < 1e-3 < costs["big"]


# ---- every call form goes to the model known in advance ---------------------------------------------------
@pytest.mark.parametrize(("objective", "chosen"), [(CHEAPEST, "tiny"), (BEST, "big"), (MID_BUDGET, "mid")])
async def test_every_call_form_goes_to_the_chosen_model(
    ladder: Any, events: Recorder, objective: Any, chosen: str
) -> None:
    models = rungs()
    llm = ladder([models["big"], models["tiny"], models["mid"]], objective)  # the listed order does not matter
    messages = [ChatMessage(role=MessageRole.SYSTEM, content="Be brief."), user(QUESTION)]
    answers: list[Any] = [
        llm.chat(messages),
        await llm.achat(messages),
        llm.complete(QUESTION),
        await llm.acomplete(QUESTION),
    ]
    streams: list[list[Any]] = [
        list(llm.stream_chat(messages)),
        [c async for c in await llm.astream_chat(messages)],
        list(llm.stream_complete(QUESTION)),
        [c async for c in await llm.astream_complete(QUESTION)],
    ]
    for response in answers:
        text = response.message.content if isinstance(response, ChatResponse) else response.text
        assert text == f"[{chosen}] answer"
    for chunks in streams:
        # the chosen model's two chunks, then the closing chunk with the record priced from the whole stream
        assert len(chunks) == 3 and "".join(c.delta for c in chunks) == f"[{chosen}] answer"
    for response in answers + [c for chunks in streams for c in chunks]:
        record = response.additional_kwargs["routellm"]
        assert record["model"] == chosen and record["ladder"]["chosen"] == chosen
        assert record["ladder"]["models"] == ORDER
        assert record["ladder"]["objective"] == str(objective).split("=")[0]
        assert record["ladder"]["expected_cost"] == pytest.approx(record["ladder"]["expected_costs"][chosen])
        # the pair the call ran on: the chosen model and the best-predicted one above it (or the chosen one on top)
        assert record["ladder"]["strong"] == "big"
        assert record["ladder"]["weak"] == (chosen if chosen != "big" else "mid")
        assert record["served"] == ("strong" if chosen == "big" else "weak") == record["choice"]
    assert {name: m.calls for name, m in models.items()} == {name: 8 * (name == chosen) for name in ORDER}
    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 8 and {d.model for d in decisions} == {chosen}
    assert all(d.ladder["chosen"] == chosen and d.ladder["models"] == ORDER for d in decisions)
    assert {d.decision_id for d in decisions} == {r.additional_kwargs["routellm"]["decision_id"] for r in answers} | {
        chunks[0].additional_kwargs["routellm"]["decision_id"] for chunks in streams
    }


def test_models_as_a_dict_are_named_by_their_keys(ladder: Any) -> None:
    # the keys name the models (prices, priors, records), not the LLMs' own metadata names
    llm = ladder({name: LabelledLLM(name) for name in ORDER}, BEST)
    response = llm.complete(QUESTION)
    assert response.text == f"[big] {QUESTION}"
    assert response.additional_kwargs["routellm"]["model"] == "big"
    assert llm.to_payload()["models"] == ORDER and llm.to_payload()["objective"] == "margin=0"


def test_decide_and_choose_model_call_no_model(ladder: Any) -> None:
    models = rungs()
    cheap, best = ladder(list(models.values()), CHEAPEST), ladder(list(models.values()), BEST)
    assert cheap.choose_model(QUESTION).chosen == "tiny" and best.choose_model([user(QUESTION)]).chosen == "big"
    assert cheap.decide(QUESTION).choice == "weak" and best.decide(QUESTION).choice == "strong"
    assert all(m.calls == 0 for m in models.values())


def test_metadata_is_what_every_model_honours(ladder: Any) -> None:
    llm = ladder([Rung("tiny", context_window=4096), Rung("mid", context_window=32_000), Rung("big")])
    assert llm.metadata.context_window == 4096 and llm.metadata.is_chat_model
    assert not llm.metadata.is_function_calling_model
    assert llm.metadata.model_name == f"routellm:{llm.router_name}"
    assert ladder(list(rungs(ToolRung).values())).metadata.is_function_calling_model
    mixed = ladder([ToolRung("tiny"), Rung("mid"), ToolRung("big")])
    assert not mixed.metadata.is_function_calling_model, "every listed model must call functions"
    with pytest.raises(InvalidInputError, match=r"\['mid'\] are not FunctionCallingLLMs"):
        mixed.chat_with_tools([FunctionTool.from_defaults(multiply)], user_msg="6 x 7")


def test_a_copy_with_another_objective_routes_by_it(ladder: Any) -> None:
    llm = ladder(list(rungs().values()), CHEAPEST)
    assert llm.complete(QUESTION).additional_kwargs["routellm"]["model"] == "tiny"
    best = llm.model_copy(update={"objective": "margin=0"})
    assert best.complete(QUESTION).additional_kwargs["routellm"]["model"] == "big"
    assert llm.complete(QUESTION).additional_kwargs["routellm"]["model"] == "tiny"


@pytest.mark.parametrize(("usd_per_1k", "chosen"), [(1e-6, "tiny"), (1e6, "big")])
def test_a_budget_out_of_reach_or_unlimited_picks_the_ends_of_the_ladder(
    ladder: Any, usd_per_1k: float, chosen: str
) -> None:
    # even tiny costs ~3e-2 USD per 1k requests here: the controller spends as little as it can; with 1e6 USD per
    # 1k, cost never matters and the best predicted model answers
    models = rungs()
    llm = ladder(list(models.values()), f"budget={usd_per_1k:g}")
    for _ in range(3):
        record = llm.complete(QUESTION).additional_kwargs["routellm"]
        assert record["model"] == chosen and record["ladder"]["objective"] == "budget"
        assert record["ladder"]["budget"] == usd_per_1k and record["ladder"]["spend"] is not None
    assert models[chosen].calls == 3


# ---- escalation and fallback along the ladder ---------------------------------------------------------------
async def test_escalation_climbs_from_tiny_to_big_when_its_answers_disagree(ladder: Any) -> None:
    # tiny answers 42, and 17 when sampled again for the check: the check is not confident, big answers
    models = rungs(tiny={"reply": "42", "resampled_reply": "17"}, big={"reply": "2.5 hours"})
    llm = ladder(list(models.values()), CHEAPEST, escalate=Escalation(threshold=0.5))
    results = [
        llm.complete(ARITHMETIC),
        llm.chat([user(ARITHMETIC)]),
        await llm.acomplete(ARITHMETIC),
        list(llm.stream_complete(ARITHMETIC))[-1],
        [c async for c in await llm.astream_chat([user(ARITHMETIC)])][-1],
    ]
    for result in results:
        record = result.additional_kwargs["routellm"]
        assert (result.text if isinstance(result, CompletionResponse) else result.message.content) == "2.5 hours"
        assert record["escalated"] and record["model"] == "big" and record["ladder"]["chosen"] == "tiny"
        assert [(a["model"], a["role"]) for a in record["attempts"]] == [
            ("tiny", "answer"),
            ("tiny (resampled)", "check"),
            ("big", "escalation"),
        ]
    assert sorted({t for t, _ in models["tiny"].seen}) == [0.0, SAMPLE_TEMPERATURE]  # the chosen model, resampled
    assert models["mid"].calls == 0 and models["big"].calls == len(results)

    agreeing = rungs(tiny={"reply": "42", "resampled_reply": "42"})
    kept = ladder(list(agreeing.values()), CHEAPEST, escalate=Escalation(threshold=0.5))
    record = kept.complete(ARITHMETIC).additional_kwargs["routellm"]
    assert not record["escalated"] and record["model"] == "tiny" and agreeing["big"].calls == 0


def test_escalation_from_mid_goes_to_big_and_verification_asks_the_chosen_model(ladder: Any) -> None:
    models = rungs(mid={"reply": "Paris", "verdict": "No, that is wrong."}, big={"reply": "Big: Paris"})
    llm = ladder(list(models.values()), MID_BUDGET, escalate=Escalation(check="self_verification"))
    record = llm.complete(QUESTION).additional_kwargs["routellm"]
    assert record["ladder"]["chosen"] == "mid" and record["escalated"] and record["model"] == "big"
    assert [(a["model"], a["role"]) for a in record["attempts"]] == [
        ("mid", "answer"),
        ("mid (verify)", "check"),
        ("big", "escalation"),
    ]
    assert any(VERIFY_QUESTION in prompt for _, prompt in models["mid"].seen) and models["tiny"].calls == 0


async def test_a_climb_goes_rung_by_rung_and_serves_the_first_agreeing_pair(ladder: Any) -> None:
    # tiny and mid disagree, mid and big agree: big's answer, with every rung listed and paid
    models = rungs(tiny={"reply": "17"}, mid={"reply": "42"}, big={"reply": "It is 42."})
    llm = ladder(list(models.values()), CHEAPEST, escalate=Escalation(climb=True, threshold=0.5))
    results = [
        llm.complete(ARITHMETIC),
        await llm.achat([user(ARITHMETIC)]),
        list(llm.stream_complete(ARITHMETIC))[-1],
        [c async for c in await llm.astream_chat([user(ARITHMETIC)])][-1],
    ]
    for result in results:
        record = result.additional_kwargs["routellm"]
        assert (result.text if isinstance(result, CompletionResponse) else result.message.content) == "It is 42."
        assert record["model"] == "big" and record["ladder"]["chosen"] == "tiny" and record["escalated"]
        assert [(a["model"], a["kept"]) for a in record["attempts"]] == [("tiny", False), ("mid", False), ("big", True)]
    assert [models[m].calls for m in ORDER] == [len(results)] * 3
    assert {t for t, _ in models["tiny"].seen} == {0.0}  # no resample: mid gives the second answer

    # with the one-answer self-verification check each rung answers alone: mid says its answer is right
    models = rungs(tiny={"verdict": "No."}, mid={"reply": "Paris", "verdict": "Yes."}, big={"reply": "Big: Paris"})
    llm = ladder(list(models.values()), CHEAPEST, escalate=Escalation(climb=True, check="self_verification"))
    record = llm.complete(QUESTION).additional_kwargs["routellm"]
    assert record["model"] == "mid" and models["big"].calls == 0
    assert [(a["model"], a["role"]) for a in record["attempts"]] == [
        ("tiny", "answer"),
        ("tiny (verify)", "check"),
        ("mid", "escalation"),
        ("mid (verify)", "check"),
    ]


async def test_fallback_goes_to_the_pairs_other_model(ladder: Any, events: Recorder) -> None:
    models = rungs(tiny={"error": TimeoutError("tiny timed out")})
    llm = ladder(list(models.values()), CHEAPEST, fallback=True)
    results = [
        llm.complete(QUESTION),
        await llm.achat([user(QUESTION)]),
        list(llm.stream_chat([user(QUESTION)]))[-1],
    ]
    for result in results:
        record = result.additional_kwargs["routellm"]
        assert (record["model"], record["fallback_from"], record["fallback_error"]) == ("big", "tiny", "TimeoutError")
        assert record["ladder"]["chosen"] == "tiny"
    fallbacks = events.of(RoutingFallbackEvent)
    assert [(f.failed_model, f.fallback_model) for f in fallbacks] == [("tiny", "big")] * len(results)
    with pytest.raises(ModelCallError, match="tiny"):
        ladder(list(rungs(tiny={"error": TimeoutError("slow")}).values()), CHEAPEST).complete(QUESTION)


def test_labelling_judges_the_chosen_model_against_its_pair(ladder: Any, tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    models = rungs()

    def judge(prompt: str, answer_a: str, answer_b: str) -> str:
        return "model_a" if answer_a.startswith("[big]") else "model_b"

    llm = ladder(list(models.values()), CHEAPEST, feedback=store, judge=judge, label_fraction=1.0)
    record = llm.complete(QUESTION).additional_kwargs["routellm"]
    assert llm.labelling is not None and llm.labelling.labeller.flush(timeout=30)
    (row,) = store.decisions()
    assert row.decision_id == record["decision_id"]
    assert (row.record.served_model, row.record.weak_model, row.record.strong_model) == ("tiny", "tiny", "big")
    (battle,) = store.battles()
    assert {battle.model_a, battle.model_b} == {"tiny", "big"}
    assert (battle.model_a if battle.winner == "model_a" else battle.model_b) == "big"
    assert models["big"].calls == 1 and models["mid"].calls == 0, "the labeller asked the pair's other model"
    assert llm.feedback_store is store


# ---- agents: tools on the chosen model, every step routed ----------------------------------------------------
@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize(("objective", "chosen"), [(CHEAPEST, "tiny"), (BEST, "big")])
async def test_function_agent_calls_tools_on_the_chosen_model(
    ladder: Any, events: Recorder, streaming: bool, objective: Objective, chosen: str
) -> None:
    models = rungs(ToolRung)
    llm = ladder(list(models.values()), objective)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(multiply)], llm=llm, system_prompt="Use tools.", streaming=streaming
    )
    handler = agent.run("What is 6 times 7?")
    tool_results = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
    result = await handler
    assert [r.tool_output.content for r in tool_results] == ["42"]
    assert "Tool calls complete." in str(result)
    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 2 and {d.model for d in decisions} == {chosen}, "two steps, each routed"
    called = "astream_chat" if streaming else "achat"  # (the mock's achat records its inner chat too)
    assert models[chosen].last_called_chat_function.count(called) == 2
    assert all(not m.last_called_chat_function for n, m in models.items() if n != chosen)


def test_tool_calls_are_parsed_by_the_model_that_answered(ladder: Any) -> None:
    llm = ladder(list(rungs(ToolRung).values()), BEST)
    response = llm.chat_with_tools([FunctionTool.from_defaults(multiply)], user_msg="What is 6 times 7?")
    assert response.additional_kwargs["routellm"]["model"] == "big"
    assert [s.tool_name for s in llm.get_tool_calls_from_response(response)] == ["multiply"]
    assert llm.predict_and_call([FunctionTool.from_defaults(multiply)], user_msg="What is 6 times 7?").response == "42"


async def test_react_agent_keeps_the_chosen_model_for_the_request(ladder: Any, events: Recorder) -> None:
    models = rungs(ReActRung)
    llm = ladder(list(models.values()), CHEAPEST)
    result = await ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm).run("What is 6 times 7?")
    assert "42 (tiny)" in str(result)
    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 2 and {d.model for d in decisions} == {"tiny"}
    # the observation step is routed on the user's request, not on the tool's output
    assert decisions[0].ladder["predictions"] == decisions[1].ladder["predictions"]
    assert models["tiny"].calls == 2 and models["mid"].calls == models["big"].calls == 0


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize("tool_step", ["continue", "route"])
async def test_a_climbed_tool_call_is_answered_by_the_model_that_made_it(
    ladder: Any, events: Recorder, streaming: bool, tool_step: str
) -> None:
    # tiny and mid call the tool with different arguments: the climb goes on to big, which makes the call; on the
    # tool result all three answer "done", so a step routed anew would end with tiny's and mid's agreeing answers
    models = {name: ToolCallingLLM(name, {"a": a}, done="done") for name, a in (("tiny", 1), ("mid", 2), ("big", 6))}
    llm = ladder(list(models.values()), CHEAPEST, escalate=Escalation(climb=True), tool_step=tool_step)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm, streaming=streaming)
    result = await agent.run("What is 6 times 7?")
    assert str(result) == "done"
    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 2 and decisions[0].model == "tiny"
    assert all(m.log[0][1] == "user" for m in models.values())
    if tool_step == "continue":
        assert models["big"].log == [("big", "user"), ("big", "tool")]
        assert len(models["tiny"].log) == len(models["mid"].log) == 1
    else:  # routed anew: the climb starts again from tiny, and tiny and mid agree
        assert models["tiny"].log[1:] == [("tiny", "tool")] and models["mid"].log[1:] == [("mid", "tool")]
        assert len(models["big"].log) == 1


async def test_a_react_step_after_a_climb_stays_on_the_model_that_named_the_action(
    ladder: Any, events: Recorder
) -> None:
    # ReAct: every model names the same action, so tiny and mid agree and mid's step serves; the observation then
    # comes back as a user message: it stays on mid (routed anew, tiny's and mid's answers would differ: "(tiny)")
    models = rungs(ReActRung)
    llm = ladder(list(models.values()), CHEAPEST, escalate=Escalation(climb=True))
    result = await ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm).run("What is 6 times 7?")
    assert "42 (mid)" in str(result)
    assert models["mid"].calls == 2 and models["tiny"].calls == 1 and models["big"].calls == 0


# ---- a real query engine answering through the ladder ----------------------------------------------------------
DOCUMENTS = {
    "eiffel": "The Eiffel Tower in Paris was completed in 1889 and is 330 metres tall.",
    "gil": "Python's Global Interpreter Lock lets only one thread run Python bytecode at a time.",
}


@pytest.fixture(scope="module")
def index(embed_model: RouteLLMEmbedding) -> VectorStoreIndex:
    docs = [Document(text=text, doc_id=name) for name, text in DOCUMENTS.items()]
    return VectorStoreIndex.from_documents(docs, embed_model=embed_model)


@pytest.mark.usefixtures("offline_settings")
@pytest.mark.parametrize(("objective", "chosen"), [(CHEAPEST, "tiny"), (BEST, "big")])
async def test_query_engine_answers_through_the_ladder(
    index: VectorStoreIndex, ladder: Any, events: Recorder, objective: Objective, chosen: str
) -> None:
    models = {name: LabelledLLM(name) for name in ORDER}
    llm = ladder(models, objective, route_on="rag_query")
    response = index.as_query_engine(llm=llm, similarity_top_k=1).query(QUERY)
    assert str(response) == f"[{chosen}] {QUERY}"
    assert response.source_nodes[0].node.ref_doc_id == "eiffel"
    assert "330 metres" in models[chosen].prompts[-1], "the retrieved context reached the chosen model"
    aresponse = await index.as_query_engine(llm=llm, similarity_top_k=1).aquery(QUERY)
    assert str(aresponse) == f"[{chosen}] {QUERY}"
    streaming = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True).query(QUERY)
    assert "".join(streaming.response_gen) == f"[{chosen}] {QUERY}"
    assert {name: m.calls for name, m in models.items()} == {name: 3 * (name == chosen) for name in ORDER}
    decisions = events.of(RoutingDecisionEvent)
    # rag_query routes on the question, not on the retrieved context
    expected = llm.choose_model(QUERY)
    assert len(decisions) == 3 and all(d.ladder["predictions"] == expected.as_dict()["predictions"] for d in decisions)


# ---- errors ------------------------------------------------------------------------------------------------------
def test_bad_ladders_are_refused_with_the_reason(ladder: Any, router_model: Any) -> None:
    models = list(rungs().values())
    with pytest.raises(InvalidInputError, match="not both"):
        RouteLLM(strong=models[2], weak=models[0], models=models)
    with pytest.raises(InvalidInputError, match="strong= and weak= LLMs"):
        RouteLLM(weak=models[0])
    with pytest.raises(InvalidInputError, match="objective= picks among models"):
        RouteLLM(strong=models[2], weak=models[0], objective=BEST)
    with pytest.raises(InvalidInputError, match="priors= picks among models"):
        RouteLLM(strong=models[2], weak=models[0], priors=PRIORS)
    with pytest.raises(InvalidInputError, match="objective="):
        ladder(models, threshold=0.3)
    with pytest.raises(InvalidInputError, match="objective="):
        ladder(models, strong_fraction=0.3)
    with pytest.raises(InvalidThresholdError):
        ladder(models, threshold=1.5)
    with pytest.raises(InvalidInputError, match="weak_name= names a side"):
        ladder(models, weak_name="small")
    with pytest.raises(UnknownModelError, match=r"priors=\{'tiny'"):
        RouteLLM(models=models, router=router_model, prices=PRICES)
    with pytest.raises(InvalidInputError, match="no price"):
        RouteLLM(models=models, router=router_model, priors=PRIORS)
    with pytest.raises(InvalidInputError, match=r"lists \['tiny'\] more than once.*dict name -> LLM"):
        ladder([Rung("tiny"), Rung("tiny"), Rung("big")])
    with pytest.raises(InvalidInputError, match="at least two"):
        ladder([Rung("tiny")])
    with pytest.raises(InvalidInputError, match="'mid' is str, not a LlamaIndex LLM"):
        ladder({"tiny": models[0], "mid": "gpt-4o"})
    with pytest.raises(InvalidInputError, match="list of LlamaIndex LLMs or a dict"):
        ladder(models[0])
    with pytest.raises(InvalidInputError, match="predicts each model"):
        RouteLLM(models=models, router="random", priors=PRIORS, prices=PRICES)
    with pytest.raises(InvalidInputError, match="objective"):
        ladder(models, objective="speed=1")
    two = RouteLLM(strong=models[2], weak=models[0], router=router_model)
    with pytest.raises(InvalidInputError, match="choose_model picks among models"):
        two.choose_model(QUESTION)
    assert all(m.calls == 0 for m in models)
