"""RouteLLMRunnable: routing arbitrary inputs between two Runnables (chains, RAG-style pipelines)."""

from __future__ import annotations

import functools
from typing import Any
from uuid import UUID

import pytest
from fitted_router import HARD, TRIVIA, expected_side
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from lc_fakes import children, shared_router, split_threshold

from langchain_routellm import RouteLLMRunnable
from routellm_core.errors import (
    CheckpointError,
    InvalidInputError,
    InvalidThresholdError,
    ModelCallError,
    StreamInterruptedError,
)
from routellm_core.routing.policy import RoutingPolicy

QUESTIONS = [
    "hi",
    "Derive the closed form of the sum of the first n squares and prove it by induction.",
    "What colour is the sky?",
]


@pytest.fixture(scope="module")
def router() -> Any:
    return shared_router()


def rag_chains() -> dict[str, Any]:
    """Two 'retriever + LLM' pipelines over a dict input {question, context}."""
    prompt = ChatPromptTemplate.from_messages([("human", "{question}\n\nContext: {context}")])
    kids = children()
    return {side: prompt | kids[side] | StrOutputParser() for side in ("strong", "weak")}


@functools.cache
def mixed() -> float:
    return split_threshold(QUESTIONS)


def expected(router: Any, text: str) -> str:
    return router.decide([text], mixed())[0].choice


class Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs: list[tuple[str, str | None, UUID, UUID | None, dict[str, Any], list[str]]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.runs.append(
            ("chain", kw.get("name"), run_id, kw.get("parent_run_id"), kw.get("metadata") or {}, kw.get("tags") or [])
        )

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any) -> None:
        self.runs.append(
            ("chat", kw.get("name"), run_id, kw.get("parent_run_id"), kw.get("metadata") or {}, kw.get("tags") or [])
        )


class TestRoutingText:
    def test_questions_exercise_both_sides(self, router: Any) -> None:
        assert {expected(router, q) for q in QUESTIONS} == {"strong", "weak"}

    @pytest.mark.parametrize("question", QUESTIONS)
    def test_dict_key_selects_the_routing_text(self, router: Any, question: str) -> None:
        chains = rag_chains()
        rag = RouteLLMRunnable(**chains, router=router, threshold=mixed(), routing_text="question")
        out = rag.invoke({"question": question, "context": "a long retrieved document " * 20})
        assert out.startswith(f"[{expected(router, question)}]")

    def test_callable_selects_the_routing_text(self, router: Any) -> None:
        rag = RouteLLMRunnable(
            **rag_chains(), router=router, threshold=mixed(), routing_text=lambda x: x["question"].upper()
        )
        question = QUESTIONS[1]
        out = rag.invoke({"question": question, "context": "ctx"}, config={})
        assert out.startswith(f"[{expected(router, question.upper())}]")

    def test_default_dict_keys(self, router: Any) -> None:
        rag = RouteLLMRunnable(**rag_chains(), router=router, threshold=mixed())
        out = rag.invoke({"context": "ctx", "question": QUESTIONS[2]})
        assert out.startswith(f"[{expected(router, QUESTIONS[2])}]")

    def test_string_input(self, router: Any) -> None:
        kids = children()
        runnable = RouteLLMRunnable(
            strong=kids["strong"] | StrOutputParser(),
            weak=kids["weak"] | StrOutputParser(),
            router=router,
            threshold=mixed(),
        )
        assert runnable.invoke(QUESTIONS[1]).startswith(f"[{expected(router, QUESTIONS[1])}]")

    def test_message_input_routes_on_latest_human(self, router: Any) -> None:
        kids = children()
        runnable = RouteLLMRunnable(**kids, router=router, threshold=mixed())
        message = runnable.invoke([HumanMessage(QUESTIONS[1]), AIMessage("..."), HumanMessage(QUESTIONS[0])])
        assert isinstance(message, AIMessage)
        assert message.response_metadata["routellm"]["choice"] == expected(router, QUESTIONS[0])
        tuples = runnable.invoke([("human", QUESTIONS[2])])
        assert tuples.response_metadata["routellm"]["choice"] == expected(router, QUESTIONS[2])

    @pytest.mark.parametrize(
        ("kwargs", "value", "match"),
        [
            ({}, {"context": "no question here"}, "cannot find the routing text"),
            ({"routing_text": "query"}, {"question": "q"}, "not a key"),
            ({}, 42, "cannot route on a int"),
            ({}, "   ", "empty"),
            ({"routing_text": lambda x: x["q"]}, {"q": []}, "cannot route on a list|no messages"),
        ],
    )
    def test_bad_input(self, router: Any, kwargs: dict[str, Any], value: Any, match: str) -> None:
        runnable = RouteLLMRunnable(**rag_chains(), router=router, threshold=mixed(), **kwargs)
        with pytest.raises(InvalidInputError, match=match):
            runnable.invoke(value)


def without_id(record: dict[str, Any]) -> dict[str, Any]:
    """A decision record without its decision id, nor its attempts' token counts and costs (a stream's first
    chunk carries the record before the usage is known)."""
    unknown = {"input_tokens": None, "output_tokens": None, "cost": None}
    out = {k: v for k, v in record.items() if k not in ("decision_id", "cost")}
    out["attempts"] = [{**a, **unknown} for a in record.get("attempts", [])]
    return out


class TestDecision:
    def test_include_decision(self, router: Any) -> None:
        rag = RouteLLMRunnable(
            **rag_chains(), router=router, threshold=mixed(), routing_text="question", include_decision=True
        )
        out = rag.invoke({"question": QUESTIONS[1], "context": "ctx"})
        decision = router.decide([QUESTIONS[1]], mixed())[0]
        assert out["output"].startswith(f"[{decision.choice}]")
        assert out["routellm"]["choice"] == decision.choice
        assert out["routellm"]["win_rate"] == pytest.approx(decision.win_rate)
        assert out["routellm"]["model"] == rag.model_names[decision.choice]

    def test_stream_with_decision_adds_up_to_invoke(self, router: Any) -> None:
        rag = RouteLLMRunnable(
            **rag_chains(), router=router, threshold=mixed(), routing_text="question", include_decision=True
        )
        value = {"question": QUESTIONS[2], "context": "ctx"}
        chunks = list(rag.stream(value))
        assert list(chunks[0]) == ["routellm"]
        total = chunks[0]
        for chunk in chunks[1:]:
            total = total + chunk
        invoked = rag.invoke(value)
        assert total["output"] == invoked["output"]
        assert without_id(total["routellm"]) == without_id(invoked["routellm"])
        assert len(chunks) > 3

    async def test_async_and_batch(self, router: Any) -> None:
        rag = RouteLLMRunnable(**rag_chains(), router=router, threshold=mixed(), routing_text="question")
        values = [{"question": q, "context": "ctx"} for q in QUESTIONS]
        expected_prefixes = [f"[{expected(router, q)}]" for q in QUESTIONS]
        assert [o.split(" ")[0] for o in rag.batch(values)] == expected_prefixes
        assert [o.split(" ")[0] for o in await rag.abatch(values)] == expected_prefixes
        assert (await rag.ainvoke(values[1])).split(" ")[0] == expected_prefixes[1]
        streamed = "".join([c async for c in rag.astream(values[1])])
        assert streamed == rag.invoke(values[1])

    def test_runs_nest_and_carry_the_decision(self, router: Any) -> None:
        rag = RouteLLMRunnable(
            **rag_chains(), router=router, threshold=mixed(), routing_text="question", name="rag-router"
        )
        runs = Runs()
        rag.invoke({"question": QUESTIONS[1], "context": "ctx"}, config={"callbacks": [runs]})
        choice = expected(router, QUESTIONS[1])
        top = next(r for r in runs.runs if r[1] == "rag-router")
        assert top[3] is None
        assert top[4]["routellm"]["choice"] == choice
        assert f"routellm:{choice}" in top[5]
        sequence = next(r for r in runs.runs if r[1] == "RunnableSequence")
        assert sequence[3] == top[2]
        chat = next(r for r in runs.runs if r[0] == "chat")
        assert chat[4]["routellm"]["choice"] == choice

    def test_shared_policy(self, router: Any) -> None:
        policy = RoutingPolicy(router, threshold=0.0)
        rag = RouteLLMRunnable(**rag_chains(), router=policy, routing_text="question")
        assert rag.policy is policy
        assert rag.invoke({"question": "hi", "context": ""}).startswith("[strong]")


class TestErrors:
    def test_failure_names_the_chosen_side(self, router: Any) -> None:
        def broken(_: Any) -> str:
            raise RuntimeError("retriever down")

        ok = RunnableLambda(lambda x: "fine")
        runnable = RouteLLMRunnable(
            strong=RunnableLambda(broken), weak=ok, router=router, threshold=0.0, strong_name="big-rag"
        )
        with pytest.raises(ModelCallError, match="'big-rag' failed: RuntimeError: retriever down") as info:
            runnable.invoke("question?")
        assert info.value.model == "big-rag"

    def test_fallback(self, router: Any) -> None:
        calls: list[str] = []

        def broken(_: Any) -> str:
            calls.append("strong")
            raise TimeoutError("timed out")

        def ok(_: Any) -> str:
            calls.append("weak")
            return "fine"

        runnable = RouteLLMRunnable(
            strong=RunnableLambda(broken),
            weak=RunnableLambda(ok),
            router=router,
            threshold=0.0,
            fallback=True,
            include_decision=True,
        )
        out = runnable.invoke("question?")
        assert out["output"] == "fine"
        assert out["routellm"]["fallback"] is True
        assert out["routellm"]["fallback_error"] == "TimeoutError"
        assert calls == ["strong", "weak"]

    def test_empty_output_is_an_error(self, router: Any) -> None:
        runnable = RouteLLMRunnable(
            strong=RunnableLambda(lambda _: ""), weak=RunnableLambda(lambda _: "x"), router=router, threshold=0.0
        )
        with pytest.raises(ModelCallError, match="empty"):
            runnable.invoke("question?")

    def test_misspelt_option_is_an_error_naming_the_nearest(self, router: Any) -> None:
        sides = {"strong": RunnableLambda(lambda _: "s"), "weak": RunnableLambda(lambda _: "w")}
        with pytest.raises(
            InvalidInputError, match=r"RouteLLMRunnable: unknown option 'treshold' \(did you mean 'threshold'\?\)"
        ):
            RouteLLMRunnable(**sides, router=router, treshold=0.0)
        with pytest.raises(
            InvalidInputError, match=r"'include_decison' \(did you mean 'include_decision'\?\), 'colour'$"
        ):
            RouteLLMRunnable(**sides, router=router, include_decison=True, colour="red")
        runnable = RouteLLMRunnable(**sides, router=router, threshold=0.0, name="rag-router", include_decision=True)
        assert runnable.get_name() == "rag-router"
        assert runnable.invoke("question?")["output"] == "s"
        with pytest.raises(InvalidInputError, match=r"RouteLLMRunnable.model_copy: unknown option 'treshold'"):
            runnable.model_copy(update={"treshold": 1.0})
        assert runnable.model_copy(update={"threshold": 1.0}).invoke("question?")["output"] == "w"


# ---- options, with a router fitted in the test (expected choices known in advance) ----------------------------
class TestOptionsWithAKnownRouter:
    """``strong_fraction``, ``route_on``, ``tool_step`` and stream fallback, on prompts whose side is known:
    ``HARD`` prompts go to strong and ``TRIVIA`` to weak under ``known_router`` (see ``fitted_router``)."""

    def test_strong_fraction_resolves_through_the_calibration(self, known_router: Any) -> None:
        for fraction in (0.2, 0.5, 0.8):
            runnable = RouteLLMRunnable(**children(), router=known_router, strong_fraction=fraction)
            assert runnable.policy.threshold == pytest.approx(known_router.threshold_for(fraction))
        runnable = RouteLLMRunnable(**children(), router=known_router, strong_fraction=0.5, include_decision=True)
        for prompt in (HARD[0], TRIVIA[0]):
            assert runnable.invoke(prompt)["routellm"]["choice"] == expected_side(prompt)
        with pytest.raises(InvalidThresholdError, match="either"):
            RouteLLMRunnable(**children(), router=known_router, threshold=0.5, strong_fraction=0.5)
        with pytest.raises(CheckpointError, match="calibrat"):
            RouteLLMRunnable(**children(), router="random", strong_fraction=0.5)

    @pytest.mark.parametrize("route_on", ["last_user", "last_human"])
    def test_route_on_latest_human_message(self, known_router: Any, route_on: str) -> None:
        runnable = RouteLLMRunnable(**children(), router=known_router, route_on=route_on)
        ends_trivial = [HumanMessage(HARD[1]), AIMessage("Here is the proof."), HumanMessage(TRIVIA[1])]
        ends_hard = [HumanMessage(TRIVIA[1]), AIMessage("Hello!"), HumanMessage(HARD[1])]
        assert runnable.invoke(ends_trivial).text.startswith("[weak]")
        assert runnable.invoke(ends_hard).text.startswith("[strong]")

    def test_route_on_conversation(self, known_router: Any) -> None:
        messages = [HumanMessage(HARD[1]), AIMessage("Here is the proof."), HumanMessage(TRIVIA[1])]
        runnable = RouteLLMRunnable(**children(), router=known_router, route_on="conversation")
        record = runnable.invoke(messages).response_metadata["routellm"]
        text = "user: " + HARD[1] + "\n\nassistant: Here is the proof.\n\nuser: " + TRIVIA[1]
        assert record["win_rate"] == pytest.approx(float(known_router.predict_win_rate([text])[0]))
        assert record["choice"] == "strong", "the whole conversation holds a proof request; its last turn does not"

    @pytest.mark.parametrize(("tool_step", "side"), [("continue", "strong"), ("route", "weak")])
    def test_tool_step(self, known_router: Any, tool_step: str, side: str) -> None:
        """A tool result goes back to the side that issued the call (``continue``), or is routed on the latest
        human message (``route``): here a trivia question whose tool call the strong side made."""

        @tool
        def capital_of(country: str) -> str:
            """The capital of a country."""
            return "Lima"

        kids = {s: model.bind_tools([capital_of], tool_choice="any") for s, model in children().items()}
        always_strong = RouteLLMRunnable(**kids, router=known_router, threshold=0.0)
        call = always_strong.invoke([HumanMessage(TRIVIA[0])])
        assert call.tool_calls and call.response_metadata["routellm"]["served"] == "strong"
        messages = [HumanMessage(TRIVIA[0]), call, ToolMessage("Lima", tool_call_id=call.tool_calls[0]["id"])]

        runnable = RouteLLMRunnable(**kids, router=known_router, strong_fraction=0.5, tool_step=tool_step)
        answer = runnable.invoke(messages)
        assert answer.text.startswith(f"[{side}] The tool said: Lima")
        record = answer.response_metadata["routellm"]
        assert record["continued"] is (tool_step == "continue")
        same_decision = record["decision_id"] == call.response_metadata["routellm"]["decision_id"]
        assert same_decision is (tool_step == "continue")

    async def test_stream_falls_back_before_any_content(self, known_router: Any) -> None:
        kids = children()
        kids["strong"].fail_after_chunks = 1  # only the empty opening chunk, held back, then the stream drops
        runnable = RouteLLMRunnable(**kids, router=known_router, strong_fraction=0.5, fallback=True)
        for chunks in (list(runnable.stream(HARD[2])), [c async for c in runnable.astream(HARD[2])]):
            record = chunks[0].response_metadata["routellm"]
            assert (record["choice"], record["served"], record["fallback"]) == ("strong", "weak", True)
            assert record["fallback_error"] == "ConnectionError"
            assert "".join(c.text for c in chunks).startswith(f"[weak] You said: {HARD[2]}")
        assert len(kids["strong"].calls) == len(kids["weak"].calls) == 2

    def test_stream_failure_after_content_is_not_retried(self, known_router: Any) -> None:
        kids = children()
        kids["strong"].fail_after_chunks = 3
        runnable = RouteLLMRunnable(**kids, router=known_router, strong_fraction=0.5, fallback=True)
        received: list[Any] = []
        with pytest.raises(StreamInterruptedError) as info:
            for chunk in runnable.stream(HARD[2]):
                received.append(chunk)
        assert info.value.chunks_delivered == len(received) > 0
        assert "".join(c.text for c in received) == info.value.partial_text
        assert info.value.partial_text.startswith("[strong]")
        assert kids["weak"].calls == []
