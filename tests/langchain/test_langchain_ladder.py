"""``models=[...]`` in the LangChain front ends: ChatRouteLLM, RouteLLMRunnable and RouteLLMMiddleware among N priced
models (the core's ``LadderEngine``).

The three fake chat models stand in for models whose profiles start from far-apart real ones (``ModelPrior(like=...)``)
and whose prices are given, as in tests/core/test_ladder_online.py: on ordinary prompts the shipped ``default`` router
predicts big > mid > tiny (checked as a precondition), so ``Objective.margin(1.0)`` picks tiny (everyone is within a
margin of 1: the cheapest) and ``Objective.margin(0.0)`` picks big (the best predicted), and escalation or fallback
from tiny goes to big (the best-predicted costlier model). Each fake answers ``"[<name>] ..."`` so the answer says
which model served.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import tool
from lc_fakes import ToolEchoChatModel, shared_router
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware, RouteLLMRunnable
from routellm_core.errors import InvalidInputError, ModelCallError
from routellm_core.escalation import Escalation
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routers.profiles import ModelPrior, UnknownModelError
from routellm_core.routing.objective import Objective

PRIORS = {
    "tiny": ModelPrior(like="chatglm-6b"),
    "mid": ModelPrior(like="Qwen2.5-32B-Instruct"),
    "big": ModelPrior(like="o1-preview-2024-09-12"),
}
PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
ORDER = ("big", "tiny", "mid")  # the order the models are listed in need not be the price order
PROOF = "Prove that the square root of 2 is irrational."
WEATHER_Q = "What is the weather in 'Paris' right now?"
CHEAPEST, BEST = Objective.margin(1.0), Objective.margin(0.0)


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny in {city}."


class Weather(BaseModel):
    """The weather in a city."""

    city: str


class Counting(ToolEchoChatModel):
    """A fake whose every answer differs from its last (``"[<label>] answer <n>"``): its resampled answers disagree."""

    def _reply(self, messages: Any, stop: Any, **kwargs: Any) -> AIMessage:
        message = super()._reply(messages, stop, **kwargs)
        return message.model_copy(update={"content": f"[{self.label}] The answer is {len(self.calls)}."})


class NoTools(ToolEchoChatModel):
    """A fake chat model without tool calling."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("no tool calling here")


class IgnoresTools(ToolEchoChatModel):
    """A fake that takes tools but never calls them (it answers in text)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def fakes(cls: type[ToolEchoChatModel] = ToolEchoChatModel, **overrides: dict[str, Any]) -> dict[str, Any]:
    """tiny, mid and big fakes named by their ``model`` field (``model_name`` gives the ladder's names)."""
    return {
        name: (overrides.get(name, {}).pop("cls", cls))(label=name, model=name, **overrides.get(name, {}))
        for name in ORDER
    }


def ladder(models: dict[str, Any], objective: Objective = CHEAPEST, **kwargs: Any) -> ChatRouteLLM:
    """A ChatRouteLLM over the models listed (as a list, named by the models themselves)."""
    return ChatRouteLLM(models=list(models.values()), objective=objective, priors=PRIORS, prices=PRICES, **kwargs)


def expected_cost(model: str, text: str) -> float:
    """The expected cost before any model reported its output length: 300 output tokens, 4 characters a token."""
    return (max(1.0, len(text) / 4) + 300) * PRICES[model][0] / 1e6


def called(models: dict[str, ToolEchoChatModel]) -> dict[str, int]:
    return {name: len(model.calls) for name, model in models.items() if model.calls}


def test_precondition_the_default_router_orders_the_stand_ins() -> None:
    predictions = shared_router().predict_success([PROOF, WEATHER_Q], ["tiny", "mid", "big"], priors=PRIORS)
    for tiny, mid, big in predictions:
        assert big > mid > tiny


# ---- ChatRouteLLM -------------------------------------------------------------------------------------------------
class TestChatRouteLLM:
    @pytest.mark.parametrize(("objective", "chosen"), [(CHEAPEST, "tiny"), (BEST, "big")])
    def test_invoke_goes_to_the_model_known_in_advance(self, objective: Objective, chosen: str) -> None:
        models = fakes()
        message = ladder(models, objective).invoke(PROOF)
        assert message.text == f"[{chosen}] You said: {PROOF}"
        assert called(models) == {chosen: 1}
        record = message.response_metadata["routellm"]
        assert (record["model"], record["served"], record["escalated"]) == (chosen, record["choice"], False)
        entry = record["ladder"]
        assert entry["chosen"] == chosen and entry["models"] == ["tiny", "mid", "big"]  # cheapest first
        assert entry["objective"] == "margin" and entry["value"] == objective.value
        assert entry["expected_cost"] == pytest.approx(expected_cost(chosen, PROOF))
        assert entry["expected_costs"] == pytest.approx({m: expected_cost(m, PROOF) for m in PRICES})
        assert entry["predictions"]["big"] > entry["predictions"]["mid"] > entry["predictions"]["tiny"]
        # the pair the call ran on: tiny escalates / falls back to big; big is its own strong side
        assert entry["strong"] == "big" and (entry["weak"] == "tiny" if chosen == "tiny" else entry["weak"] != "big")
        usage = message.usage_metadata
        assert usage is not None
        price = PRICES[chosen][0]
        assert record["cost"] == pytest.approx((usage["input_tokens"] + usage["output_tokens"]) * price / 1e6)

    def test_a_dict_names_the_models(self) -> None:
        models = {name: ToolEchoChatModel(label=name, model=f"vendor-{name}-2025") for name in ORDER}
        llm = ChatRouteLLM(models=models, objective=BEST, priors=PRIORS, prices=PRICES)
        record = llm.invoke(PROOF).response_metadata["routellm"]
        assert record["model"] == "big" and record["ladder"]["models"] == ["tiny", "mid", "big"]
        assert llm.model_names == {name: f"vendor-{name}-2025" for name in ORDER}

    def test_a_list_named_by_names(self) -> None:
        models = [ToolEchoChatModel(label=name, model="same-model") for name in ORDER]
        llm = ChatRouteLLM(models=models, names=list(ORDER), objective=CHEAPEST, priors=PRIORS, prices=PRICES)
        message = llm.invoke(PROOF)
        assert message.text.startswith("[tiny]") and message.response_metadata["routellm"]["model"] == "tiny"

    def test_strings_are_built_like_strong_and_weak(self) -> None:
        llm = ChatRouteLLM(
            models=["openai:gpt-4o-mini", "openai:gpt-4o"], api_key="sk-test-not-a-key", max_retries=0, timeout=1
        )
        assert [type(m).__name__ for m in llm.models.values()] == ["ChatOpenAI", "ChatOpenAI"]
        assert list(llm.models) == ["gpt-4o-mini", "gpt-4o"]  # profiled and priced by the shipped tables
        assert llm._identifying_params == {
            "router": "default",
            "objective": "margin=0.05",
            "models": ["gpt-4o-mini", "gpt-4o"],
            "route_on": "last_user",
            "tool_step": "continue",
            "fallback": False,
        }
        assert llm._get_ls_params()["ls_model_name"] == "gpt-4o-mini|gpt-4o"
        assert "sk-test" not in repr(llm)

    def test_a_budget_is_held_by_one_controller_shared_with_tool_bound_copies(self) -> None:
        llm = ladder(fakes(), objective="budget=1.5")  # type: ignore[arg-type]
        bound = llm.bind_tools([get_weather])
        assert bound.bound._engine is llm._engine  # type: ignore[attr-defined]
        for question in (PROOF, WEATHER_Q):
            entry = bound.invoke(question).response_metadata["routellm"]["ladder"]
            assert (entry["objective"], entry["budget"]) == ("budget", 1.5)
        assert llm._engine.controller is not None and len(llm._engine.controller._rows) == 2

    def test_generate_reports_the_chosen_model(self) -> None:
        models = fakes()
        result = ladder(models, BEST).generate([[HumanMessage(PROOF)]])
        generation = result.generations[0][0]
        assert generation.text.startswith("[big]") and generation.generation_info["routellm"]["model"] == "big"
        assert called(models) == {"big": 1}

    def test_stream_relays_the_chosen_models_tokens_with_the_decision_first(self) -> None:
        models = fakes()
        chunks = list(ladder(models, CHEAPEST).stream(PROOF))
        assert "".join(c.text for c in chunks) == f"[tiny] You said: {PROOF}"
        assert len(chunks) > 3 and chunks[0].response_metadata["routellm"]["ladder"]["chosen"] == "tiny"
        assert chunks[-1].chunk_position == "last" and called(models) == {"tiny": 1}

    def test_async_invoke_stream_and_batch(self) -> None:
        models = fakes()
        llm = ladder(models, BEST)

        async def run() -> tuple[AIMessage, list[Any]]:
            return await llm.ainvoke(PROOF), [c async for c in llm.astream(WEATHER_Q)]

        message, chunks = asyncio.run(run())
        assert message.text.startswith("[big]") and message.response_metadata["routellm"]["ladder"]["chosen"] == "big"
        assert "".join(c.text for c in chunks) == f"[big] You said: {WEATHER_Q}"
        assert chunks[0].response_metadata["routellm"]["model"] == "big"
        answers = llm.batch([PROOF, WEATHER_Q])
        assert [a.text.split("]")[0] for a in answers] == ["[big", "[big"]
        assert called(models) == {"big": 4}

    def test_the_run_reports_the_model_called(self) -> None:
        runs: list[tuple[str, dict[str, Any], list[str]]] = []

        class Runs(BaseCallbackHandler):
            def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
                runs.append(("chain", dict(kw.get("metadata") or {}), list(kw.get("tags") or [])))

            def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
                runs.append(("chat", dict(kw.get("metadata") or {}), list(kw.get("tags") or [])))

        ladder(fakes(), CHEAPEST).invoke(PROOF, {"callbacks": [Runs()]})
        (router_run, router_meta, router_tags), (child_run, child_meta, _) = runs
        assert (router_run, child_run) == ("chain", "chat")
        assert router_meta["ls_model_name"] == "tiny" and router_meta["ls_provider"] == "toolechochatmodel"
        assert router_meta["routellm"]["ladder"]["chosen"] == "tiny" and "routellm:weak" in router_tags
        assert child_meta["routellm"]["ladder"]["chosen"] == "tiny"  # the chosen model's run inherits it

    def test_bind_tools_binds_every_model(self) -> None:
        for objective, chosen in ((CHEAPEST, "tiny"), (BEST, "big")):
            models = fakes()
            message = ladder(models, objective).bind_tools([get_weather]).invoke(WEATHER_Q)
            assert message.tool_calls[0]["name"] == "get_weather" and message.tool_calls[0]["args"] == {"city": "Paris"}
            assert message.response_metadata["routellm"]["model"] == chosen and called(models) == {chosen: 1}

    def test_a_model_without_tools_is_named(self) -> None:
        llm = ladder(fakes(mid={"cls": NoTools}))
        with pytest.raises(NotImplementedError, match="the model 'mid' does not support tool calling"):
            llm.bind_tools([get_weather])

    def test_structured_output_from_the_chosen_model(self) -> None:
        models = fakes()
        out = ladder(models, BEST).with_structured_output(Weather).invoke(WEATHER_Q)
        assert out == Weather(city="Paris") and called(models) == {"big": 1}
        raw = ladder(fakes(), CHEAPEST).with_structured_output(Weather, include_raw=True).invoke(WEATHER_Q)
        assert raw["parsed"] == Weather(city="Paris")
        assert raw["raw"].response_metadata["routellm"]["ladder"]["chosen"] == "tiny"

    def test_escalation_climbs_from_tiny_to_big_when_the_answers_disagree(self) -> None:
        models = fakes(tiny={"answer": "The answer is 42."})
        disagree = ToolEchoChatModel(label="other", model="other-small", answer="The answer is 17.")
        message = ladder(models, CHEAPEST, escalate=Escalation(second=disagree, threshold=0.5)).invoke(PROOF)
        record = message.response_metadata["routellm"]
        assert message.text.startswith("[big]") and record["escalated"] and record["model"] == "big"
        assert record["ladder"]["chosen"] == "tiny"
        assert [(a["model"], a["role"]) for a in record["attempts"]] == [
            ("tiny", "answer"),
            ("other-small", "check"),
            ("big", "escalation"),
        ]
        assert called(models) == {"tiny": 1, "big": 1}

        agree = ToolEchoChatModel(label="other", model="other-small", answer="The answer is 42.")
        models = fakes(tiny={"answer": "The answer is 42."})
        message = ladder(models, CHEAPEST, escalate=Escalation(second=agree, threshold=0.5)).invoke(PROOF)
        assert message.text == "[tiny] The answer is 42." and not message.response_metadata["routellm"]["escalated"]
        assert called(models) == {"tiny": 1}

    def test_the_second_answer_is_the_chosen_model_resampled(self) -> None:
        models = fakes(tiny={"cls": Counting})  # tiny's two samples disagree: "... 1." then "... 2."
        llm = ladder(models, CHEAPEST, escalate=Escalation(threshold=0.5))
        message = llm.invoke(PROOF)
        record = message.response_metadata["routellm"]
        assert message.text.startswith("[big]") and record["escalated"]
        assert [(a["model"], a["role"]) for a in record["attempts"]] == [
            ("tiny", "answer"),
            ("tiny (resampled)", "check"),
            ("big", "escalation"),
        ]
        assert called(models) == {"tiny": 2, "big": 1}

        models = fakes()  # a deterministic tiny agrees with itself: it serves
        message = ladder(models, CHEAPEST, escalate=Escalation(threshold=0.5)).invoke(PROOF)
        assert message.text.startswith("[tiny]") and called(models) == {"tiny": 2}

    def test_an_escalated_stream_relays_the_model_above(self) -> None:
        models = fakes(tiny={"cls": Counting})
        llm = ladder(models, CHEAPEST, escalate=Escalation(threshold=0.5))
        chunks = list(llm.stream(PROOF))
        assert "".join(c.text for c in chunks) == f"[big] You said: {PROOF}"  # tiny's held answers never surface
        assert chunks[0].response_metadata["routellm"]["escalated"] is True

        async def run() -> str:
            return "".join([c.text async for c in llm.astream(PROOF)])

        assert asyncio.run(run()) == f"[big] You said: {PROOF}"

    def test_structured_output_escalates_on_the_resampled_structured_answer(self) -> None:
        models = fakes(tiny={"cls": Counting})
        out = ladder(models, CHEAPEST, escalate=Escalation(threshold=0.5)).with_structured_output(Weather)
        # Counting's tool calls agree (Paris, Paris): the structured answers agree, so tiny serves
        assert out.invoke(WEATHER_Q) == Weather(city="Paris") and called(models) == {"tiny": 2}

    def test_fallback_goes_to_the_model_above(self) -> None:
        models = fakes(tiny={"error": TimeoutError("tiny timed out")})
        message = ladder(models, CHEAPEST, fallback=True).invoke(PROOF)
        record = message.response_metadata["routellm"]
        assert message.text.startswith("[big]")
        assert (record["fallback_from"], record["fallback_error"], record["model"]) == ("tiny", "TimeoutError", "big")
        with pytest.raises(ModelCallError, match="'tiny'"):
            ladder(fakes(tiny={"error": TimeoutError("tiny timed out")}), CHEAPEST).invoke(PROOF)

    def test_feedback_records_and_labels_the_pair(self, tmp_path: Any) -> None:
        store = FeedbackStore(tmp_path / "fb.db", store_answers=True)
        judged: list[tuple[str, str]] = []

        def judge(prompt: str, answer_a: str, answer_b: str) -> str:
            judged.append((answer_a, answer_b))
            return "model_a"

        models = fakes()
        llm = ladder(models, CHEAPEST, feedback=store, judge=judge, label_fraction=1.0)
        record = llm.invoke(PROOF).response_metadata["routellm"]
        assert llm.labelling is not None and llm.labelling.labeller is not None
        assert llm.labelling.labeller.flush(timeout=60)
        assert called(models) == {"tiny": 1, "big": 1}  # the labeller asked the pair's other model: big
        (row,) = store.decisions()
        assert (row.decision_id, row.record.served_model, row.record.weak_model) == (
            record["decision_id"],
            "tiny",
            "tiny",
        )
        (label,) = store.labels(["judge"])
        assert (label.model_a, label.model_b, label.winner) == ("big", "tiny", "model_a")
        assert judged == [(f"[big] You said: {PROOF}", f"[tiny] You said: {PROOF}")]
        assert store.add_verdict(record["decision_id"], "bad") is not None

    def test_agent_tool_loop_stays_on_the_chosen_model(self) -> None:
        for objective, chosen in ((CHEAPEST, "tiny"), (BEST, "big")):
            models = fakes()
            out = create_agent(ladder(models, objective), tools=[get_weather]).invoke(
                {"messages": [HumanMessage(WEATHER_Q)]}
            )
            check_tool_loop(out["messages"], chosen)
            assert models[chosen].calls == ["HumanMessage", "ToolMessage"] and called(models) == {chosen: 2}


# ---- errors -------------------------------------------------------------------------------------------------------
class TestErrors:
    def test_strong_weak_and_models_exclude_each_other(self) -> None:
        m = fakes()
        with pytest.raises(InvalidInputError, match=r"models=\[...\] and strong=, weak= exclude each other"):
            ChatRouteLLM(strong=m["big"], weak=m["tiny"], models=list(m.values()), priors=PRIORS, prices=PRICES)
        with pytest.raises(InvalidInputError, match="missing strong= and weak="):
            ChatRouteLLM(priors=PRIORS, prices=PRICES)
        with pytest.raises(InvalidInputError, match=r"missing weak=.*or models="):
            RouteLLMRunnable(strong=m["big"])
        with pytest.raises(InvalidInputError, match="strong_name="):
            ladder(m, strong_name="x")
        with pytest.raises(InvalidInputError, match="objective=, priors= go with models"):
            ChatRouteLLM(strong=m["big"], weak=m["tiny"], objective=BEST, priors=PRIORS)
        with pytest.raises(InvalidInputError, match="exclude each other"):
            RouteLLMMiddleware(strong=m["big"], weak=m["tiny"], models=list(m.values()))

    def test_bad_ladders_name_the_problem(self) -> None:
        m = fakes()
        with pytest.raises(InvalidInputError, match="threshold= and strong_fraction="):
            ladder(m, threshold=0.3)
        with pytest.raises(UnknownModelError, match=r"priors=\{'big'"):
            ChatRouteLLM(models=list(m.values()), prices=PRICES)
        with pytest.raises(InvalidInputError, match=r"no price for \['tiny'"):
            ChatRouteLLM(models=list(m.values()), priors=PRIORS, prices={"mid": (1, 1), "big": (10, 10)})
        with pytest.raises(InvalidInputError, match="two of models= are named 'same'"):
            ChatRouteLLM(models=[ToolEchoChatModel(model="same")] * 2, priors=PRIORS, prices=PRICES)
        with pytest.raises(InvalidInputError, match="at least two models, got 1"):
            ChatRouteLLM(models=[m["tiny"]], priors=PRIORS, prices=PRICES)
        with pytest.raises(InvalidInputError, match="one name per model: 3 models"):
            ChatRouteLLM(models=list(m.values()), names=["tiny", "big"], priors=PRIORS, prices=PRICES)
        with pytest.raises(InvalidInputError, match="drop names="):
            ChatRouteLLM(models=m, names=list(m), priors=PRIORS, prices=PRICES)
        with pytest.raises(InvalidInputError, match="predicts each model"):
            ladder(m, router="random")
        with pytest.raises(InvalidInputError, match="objective"):
            ladder(m, objective="speed=1")


# ---- RouteLLMRunnable ---------------------------------------------------------------------------------------------
PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])


def chains(models: dict[str, ToolEchoChatModel]) -> dict[str, Runnable]:
    return {name: PROMPT | model | StrOutputParser() for name, model in models.items()}


class TestRunnable:
    @pytest.mark.parametrize(("objective", "chosen"), [(CHEAPEST, "tiny"), (BEST, "big")])
    def test_chains_named_by_a_dict(self, objective: Objective, chosen: str) -> None:
        models = fakes()
        rag = RouteLLMRunnable(
            models=chains(models), objective=objective, priors=PRIORS, prices=PRICES, include_decision=True
        )
        out = rag.invoke({"question": PROOF, "context": "..."})
        assert out["output"] == f"[{chosen}] You said: {PROOF}" and called(models) == {chosen: 1}
        assert out["routellm"]["model"] == chosen and out["routellm"]["ladder"]["chosen"] == chosen

    def test_a_list_named_by_names_streams_sync_and_async(self) -> None:
        models = fakes()
        rag = RouteLLMRunnable(
            models=list(chains(models).values()),
            names=list(ORDER),
            objective=CHEAPEST,
            priors=PRIORS,
            prices=PRICES,
            routing_text="question",
            include_decision=True,
        )
        frames = list(rag.stream({"question": PROOF}))
        assert frames[0]["routellm"]["ladder"]["chosen"] == "tiny"
        assert "".join(f["output"] for f in frames[1:]) == f"[tiny] You said: {PROOF}"

        async def run() -> tuple[Any, list[Any]]:
            return await rag.ainvoke({"question": PROOF}), [f async for f in rag.astream({"question": PROOF})]

        out, aframes = asyncio.run(run())
        assert out["output"].startswith("[tiny]") and aframes[0]["routellm"]["model"] == "tiny"
        assert called(models) == {"tiny": 3}

    def test_unnamed_chains_must_be_named(self) -> None:
        with pytest.raises(InvalidInputError, match="two of models= are named 'RunnableSequence'"):
            RouteLLMRunnable(models=list(chains(fakes()).values()), priors=PRIORS, prices=PRICES)

    def test_escalation_resamples_the_chosen_runnable(self) -> None:
        models = fakes(tiny={"cls": Counting})
        rag = RouteLLMRunnable(
            models=chains(models),
            objective=CHEAPEST,
            priors=PRIORS,
            prices=PRICES,
            escalate=Escalation(threshold=0.5),
            include_decision=True,
        )
        out = rag.invoke({"question": PROOF})
        assert out["output"].startswith("[big]") and out["routellm"]["escalated"]
        assert called(models) == {"tiny": 2, "big": 1}

    def test_fallback_among_runnables(self) -> None:
        def broken(_: Any) -> str:
            raise ConnectionError("tiny is down")

        models = fakes()
        named = {**chains(models), "tiny": RunnableLambda(broken)}
        rag = RouteLLMRunnable(models=named, objective=CHEAPEST, priors=PRIORS, prices=PRICES, fallback=True)
        assert rag.invoke({"question": PROOF}) == f"[big] You said: {PROOF}"


# ---- RouteLLMMiddleware -------------------------------------------------------------------------------------------
def check_tool_loop(messages: list[Any], chosen: str) -> None:
    """Human -> AI(tool call) -> Tool -> AI(final), both AI steps served by ``chosen``, the second one continued."""
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    call, result, final = messages[1], messages[2], messages[3]
    assert call.tool_calls[0]["name"] == "get_weather" and call.tool_calls[0]["args"] == {"city": "Paris"}
    assert isinstance(result, ToolMessage) and result.text == "It is sunny in Paris."
    assert final.text == f"[{chosen}] The tool said: It is sunny in Paris."
    first, last = call.response_metadata["routellm"], final.response_metadata["routellm"]
    assert (first["model"], first["continued"], first["ladder"]["chosen"]) == (chosen, False, chosen)
    assert (last["model"], last["continued"], last["decision_id"]) == (chosen, True, first["decision_id"])
    assert last["ladder"] == first["ladder"]


class TestMiddleware:
    def make(self, objective: Objective, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        models = fakes()
        middleware = RouteLLMMiddleware(
            models=list(models.values()), objective=objective, priors=PRIORS, prices=PRICES, **kwargs
        )
        # the agent's own model is never called: the middleware swaps in the chosen one, and the agent binds its tools
        placeholder = ToolEchoChatModel(label="placeholder", model="placeholder")
        return create_agent(placeholder, tools=[get_weather], middleware=[middleware]), models

    @pytest.mark.parametrize(("objective", "chosen"), [(CHEAPEST, "tiny"), (BEST, "big")])
    def test_tools_are_bound_to_the_chosen_model_and_the_tool_step_continues(
        self, objective: Objective, chosen: str
    ) -> None:
        agent, models = self.make(objective)
        check_tool_loop(agent.invoke({"messages": [HumanMessage(WEATHER_Q)]})["messages"], chosen)
        assert models[chosen].calls == ["HumanMessage", "ToolMessage"] and called(models) == {chosen: 2}

    def test_async(self) -> None:
        agent, models = self.make(CHEAPEST)
        out = asyncio.run(agent.ainvoke({"messages": [HumanMessage(WEATHER_Q)]}))
        check_tool_loop(out["messages"], "tiny")
        assert called(models) == {"tiny": 2}

    def test_the_models_run_carries_the_decision(self) -> None:
        seen: list[dict[str, Any]] = []

        class Meta(BaseCallbackHandler):
            def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
                seen.append({"metadata": kw.get("metadata") or {}, "tags": kw.get("tags") or []})

        agent, _ = self.make(BEST)
        agent.invoke({"messages": [HumanMessage(WEATHER_Q)]}, config={"callbacks": [Meta()]})
        assert len(seen) == 2
        for run in seen:
            assert run["metadata"]["ls_model_name"] == "big"
            assert run["metadata"]["routellm"]["ladder"]["chosen"] == "big"

    def test_an_escalated_step_climbs_and_its_tool_step_stays_above(self) -> None:
        """tiny calls the tool, the second cheap model answers in text: they disagree, big answers the step (with the
        tools bound) and the tool step continues on big."""
        models = fakes()
        second = IgnoresTools(label="other", model="other-small")
        middleware = RouteLLMMiddleware(
            models=models,
            objective=CHEAPEST,
            priors=PRIORS,
            prices=PRICES,
            escalate=Escalation(second=second, threshold=0.5),
        )
        agent = create_agent(models["tiny"], tools=[get_weather], middleware=[middleware])
        messages = agent.invoke({"messages": [HumanMessage(WEATHER_Q)]})["messages"]
        call, final = messages[1], messages[3]
        first = call.response_metadata["routellm"]
        assert first["escalated"] and first["model"] == "big" and first["ladder"]["chosen"] == "tiny"
        assert [(a["model"], a["role"]) for a in first["attempts"]] == [
            ("tiny", "answer"),
            ("other-small", "check"),
            ("big", "escalation"),
        ]
        assert final.text == "[big] The tool said: It is sunny in Paris."
        assert final.response_metadata["routellm"]["continued"] is True
        assert called(models) == {"tiny": 1, "big": 2}

    def test_fallback_and_repr(self) -> None:
        models = fakes(tiny={"error": TimeoutError("tiny timed out")})
        middleware = RouteLLMMiddleware(models=models, objective=CHEAPEST, priors=PRIORS, prices=PRICES, fallback=True)
        agent = create_agent(models["big"], tools=[get_weather], middleware=[middleware])
        messages = agent.invoke({"messages": [HumanMessage(WEATHER_Q)]})["messages"]
        record = messages[1].response_metadata["routellm"]
        assert (record["fallback_from"], record["model"]) == ("tiny", "big")
        assert messages[-1].text == "[big] The tool said: It is sunny in Paris."
        assert models["tiny"].calls == ["HumanMessage"]  # the tool step stays on big, no second try of tiny
        assert repr(middleware).startswith("RouteLLMMiddleware(models=['big', 'tiny', 'mid'], objective=margin=1")
        assert middleware.names == ("big", "tiny", "mid")


def test_a_copy_with_other_models_routes_among_them() -> None:
    """model_copy(update={"models": ...}) with other names builds the copy anew: its calls go to the new models and
    its records name them; the original keeps its own."""
    old = fakes()
    llm = ladder(old, BEST)
    new = {f"new-{name}": ToolEchoChatModel(label=f"new-{name}", model=f"new-{name}") for name in ORDER}
    copy = llm.model_copy(
        update={
            "models": new,
            "priors": {f"new-{k}": v for k, v in PRIORS.items()},
            "prices": {f"new-{k}": v for k, v in PRICES.items()},
        }
    )
    record = copy.invoke(PROOF).response_metadata["routellm"]
    assert record["model"] == "new-big" and record["ladder"]["models"] == ["new-tiny", "new-mid", "new-big"]
    assert called(new) == {"new-big": 1} and called(old) == {}
    assert llm.invoke(PROOF).response_metadata["routellm"]["model"] == "big"
    with pytest.raises(InvalidInputError, match="two-model router cannot take models="):
        ChatRouteLLM(strong=old["big"], weak=old["tiny"]).model_copy(update={"models": new})


# ---- Escalation(climb=True): rung by rung ----------------------------------------------------------------------------
class TestClimb:
    """tiny is chosen; the climb compares tiny with mid, then mid with big, and serves the upper of the first pair
    that agrees (the costliest when none does)."""

    CLIMB = Escalation(climb=True, threshold=0.5)

    def test_chat_model_invoke_and_streams_serve_the_first_agreeing_rung(self) -> None:
        answers = {"tiny": {"answer": "The answer is 42."}, "mid": {"answer": "It is 42."}, "big": {"answer": "7."}}
        models = fakes(**{k: dict(v) for k, v in answers.items()})
        llm = ladder(models, CHEAPEST, escalate=self.CLIMB)
        message = llm.invoke(PROOF)
        record = message.response_metadata["routellm"]
        assert message.text == "[mid] It is 42." and record["model"] == "mid" and record["escalated"]
        assert [(a["model"], a["role"], a["kept"]) for a in record["attempts"]] == [
            ("tiny", "answer", False),
            ("mid", "escalation", True),
        ]
        assert record["ladder"]["chosen"] == "tiny" and called(models) == {"tiny": 1, "mid": 1}  # big never asked
        assert "".join(c.text for c in llm.stream(PROOF)) == "[mid] It is 42."

        async def run() -> str:
            return "".join([c.text async for c in llm.astream(PROOF)])

        assert asyncio.run(run()) == "[mid] It is 42."

        models = fakes(tiny={"answer": "17."}, mid={"answer": "42."}, big={"answer": "It is 42."})
        message = ladder(models, CHEAPEST, escalate=self.CLIMB).invoke(PROOF)
        assert message.text == "[big] It is 42." and called(models) == {"tiny": 1, "mid": 1, "big": 1}

    def test_runnables_climb(self) -> None:
        models = fakes(tiny={"answer": "17."}, mid={"answer": "42."}, big={"answer": "It is 42."})
        rag = RouteLLMRunnable(
            models=chains(models),
            objective=CHEAPEST,
            priors=PRIORS,
            prices=PRICES,
            escalate=self.CLIMB,
            include_decision=True,
        )
        out = rag.invoke({"question": PROOF})
        assert out["output"] == "[big] It is 42." and out["routellm"]["model"] == "big"
        assert [a["model"] for a in out["routellm"]["attempts"]] == ["tiny", "mid", "big"]

    @pytest.mark.parametrize(("mid_cls", "served"), [(ToolEchoChatModel, "mid"), (IgnoresTools, "big")])
    def test_an_agent_step_climbs_on_its_tool_calls_and_the_tool_step_stays(
        self, mid_cls: type[ToolEchoChatModel], served: str
    ) -> None:
        """tiny calls the tool; a mid that calls it too agrees (mid serves the step); one that answers in text
        disagrees, and so does big's tool call with mid's text (big serves). The tool step continues there."""
        models = fakes(mid={"cls": mid_cls})
        middleware = RouteLLMMiddleware(
            models=models, objective=CHEAPEST, priors=PRIORS, prices=PRICES, escalate=self.CLIMB
        )
        agent = create_agent(models["tiny"], tools=[get_weather], middleware=[middleware])
        messages = agent.invoke({"messages": [HumanMessage(WEATHER_Q)]})["messages"]
        call, final = messages[1], messages[3]
        first = call.response_metadata["routellm"]
        assert call.tool_calls[0]["args"] == {"city": "Paris"}
        assert first["model"] == served and first["ladder"]["chosen"] == "tiny"
        assert final.text == f"[{served}] The tool said: It is sunny in Paris."
        assert final.response_metadata["routellm"]["continued"] is True
        assert models[served].calls[-1] == "ToolMessage" and models["tiny"].calls == ["HumanMessage"]

    def test_structured_output_climbs_on_the_structured_answers(self) -> None:
        """tiny's and mid's tool calls (Paris, Paris) agree: mid's structured answer serves, big is never asked."""
        models = fakes()
        out = ladder(models, CHEAPEST, escalate=self.CLIMB).with_structured_output(Weather)
        assert out.invoke(WEATHER_Q) == Weather(city="Paris") and called(models) == {"tiny": 1, "mid": 1}

    def test_every_rung_of_a_climb_is_held_off_the_token_stream(self) -> None:
        """Any rung's answer may be thrown away (mid's here): every child run is tagged ``nostream``, so LangGraph's
        ``stream_mode="messages"`` forwards none of them; the caller gets the served answer from the router."""
        runs: list[list[str]] = []

        class Tags(BaseCallbackHandler):
            def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
                runs.append(list(kw.get("tags") or []))

        models = fakes(tiny={"answer": "17."}, mid={"answer": "42."}, big={"answer": "It is 42."})
        llm = ladder(models, CHEAPEST, escalate=self.CLIMB)
        for call in (
            lambda cfg: "".join(c.text for c in llm.stream(PROOF, cfg)),
            lambda cfg: llm.invoke(PROOF, cfg).text,
        ):
            runs.clear()
            assert call({"callbacks": [Tags()]}) == "[big] It is 42."
            children = [tags for tags in runs if any(t.startswith("routellm:") for t in tags)]  # the rungs' runs
            assert len(children) == 3 and all("nostream" in tags for tags in children)

    def test_a_climb_straight_up_names_the_model_it_called_not_the_chosen_one(self) -> None:
        """tiny is chosen; with big the only rung above, the call goes straight to big: its failure says so."""
        models = fakes(big={"error": ConnectionError("down")})
        del models["mid"]
        llm = ChatRouteLLM(
            models=list(models.values()),
            objective=CHEAPEST,
            priors={k: PRIORS[k] for k in models},
            prices=PRICES,
            escalate=self.CLIMB,
        )
        with pytest.raises(ModelCallError, match=r"the called strong model 'big' failed: ConnectionError"):
            llm.invoke(PROOF)

    def test_astream_events_shows_the_served_answer_on_the_router_run(self) -> None:
        """docs/escalation.md: every rung's tokens arrive as ``on_chat_model_stream`` events of its run, tagged
        ``routellm:held``; the router run's own ``on_chain_stream`` events carry exactly what the caller gets."""
        models = fakes(tiny={"answer": "17."}, mid={"answer": "42."}, big={"answer": "It is 42."})
        llm = ladder(models, CHEAPEST, escalate=self.CLIMB)

        async def events() -> list[dict[str, Any]]:
            return [e async for e in llm.astream_events(PROOF, version="v2")]

        seen = asyncio.run(events())
        served = [
            e["data"]["chunk"].text for e in seen if e["event"] == "on_chain_stream" and e["name"] == "ChatRouteLLM"
        ]
        assert "".join(served) == "[big] It is 42."
        rungs = [e for e in seen if e["event"] == "on_chat_model_stream"]
        texts: dict[str, str] = {}
        for e in rungs:
            texts[e["run_id"]] = texts.get(e["run_id"], "") + e["data"]["chunk"].text
        assert sorted(texts.values()) == ["[big] It is 42.", "[mid] 42.", "[tiny] 17."]  # the rejected ones too
        assert all("routellm:held" in e["tags"] for e in rungs)
