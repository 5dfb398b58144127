"""Gaps of the LangChain front end, each closed with a test that failed before its fix:

1. LangChain's cache key named a router given as an instance by its registry type, so two differently trained
   routers (and two escalation settings) shared cached answers.
2. ``with_structured_output`` without ``include_raw`` lost the raw message: the record had no tokens or cost, and the
   ``logprobs`` escalation check always escalated.
3. ``RouteLLMMiddleware`` dropped its token watch when a model's ``callbacks`` was a callback manager.
4. A chain given as ``Escalation(second=...)`` to ``RouteLLMRunnable`` was recorded as ``RunnableSequence``.
5. A bad routing option in ``model_copy(update=...)`` raised pydantic's error titled ``RoutingOptions``.

Routers are real (the fitted ``known_router``, one fitted here on the opposite battles); the chat models are the
offline fakes of ``lc_fakes``.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from fitted_router import HARD, TRIVIA, fit_like_known, known_battles
from langchain.agents import create_agent
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler, CallbackManager, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from lc_fakes import ToolEchoChatModel, children
from pydantic import BaseModel, ValidationError

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware, RouteLLMRunnable
from routellm_core.errors import ModelCallError, NotFittedError
from routellm_core.escalation import Escalation
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.registry import get_router_class, load_router

PROOF = HARD[0]
GREETING = TRIVIA[1]


class Weather(BaseModel):
    """The weather question's structured answer."""

    city: str


@pytest.fixture(scope="module")
def flipped_router() -> WinRateModel:
    """An ``mf`` router fitted as ``known_router`` is, on the same battles with every winner swapped: it sends
    proofs to the weak model and greetings to the strong one."""
    from routellm_core import Battle

    swapped = [Battle(prompt=b.prompt, model_a=b.model_b, model_b=b.model_a, winner="model_a") for b in known_battles()]
    return fit_like_known(swapped)


def generated(llm: ChatRouteLLM, prompt: str) -> AIMessage:
    """The answer of ``llm.generate()``, the path on which LangChain caches the router's own answers."""
    message = llm.generate([[HumanMessage(prompt)]]).generations[0][0].message
    assert isinstance(message, AIMessage)
    return message


# ---- 1. the cache key -----------------------------------------------------------------------------------------------
def test_cache_tells_apart_two_trained_routers_of_one_type(
    known_router: WinRateModel, flipped_router: WinRateModel, llm_cache: InMemoryCache
) -> None:
    assert known_router.name == flipped_router.name == "mf"
    kids = children()
    # one threshold: only the routers' learned state tells the two models apart
    proofs_strong = ChatRouteLLM(**kids, router=known_router, threshold=0.5)
    proofs_weak = ChatRouteLLM(**kids, router=flipped_router, threshold=0.5)
    assert proofs_strong.policy.router_name == proofs_weak.policy.router_name, "the same label in records"
    assert proofs_strong.invoke(PROOF).text.startswith("[strong]")
    assert proofs_weak.invoke(PROOF).text.startswith("[weak]")

    assert generated(proofs_strong, PROOF).text.startswith("[strong]")
    calls = len(kids["strong"].calls)
    assert generated(proofs_strong, PROOF).text.startswith("[strong]")
    assert len(kids["strong"].calls) == calls, "the cache serves a repeated call"
    assert generated(proofs_weak, PROOF).text.startswith("[weak]"), "the other router's cached answer was served"


def test_cache_is_shared_by_one_checkpoint_loaded_twice(
    known_router: WinRateModel, tmp_path: Path, llm_cache: InMemoryCache
) -> None:
    known_router.save(tmp_path / "router")
    kids = children()
    first = ChatRouteLLM(**kids, router=load_router(tmp_path / "router"))
    again = ChatRouteLLM(**kids, router=load_router(tmp_path / "router"))
    assert first.policy.router is not again.policy.router
    assert generated(first, PROOF).text.startswith("[strong]")
    calls = len(kids["strong"].calls)
    assert generated(again, PROOF).text.startswith("[strong]")
    assert len(kids["strong"].calls) == calls, "the same router state shares the cached answer"


def test_cache_tells_apart_escalation_settings(known_router: WinRateModel, llm_cache: InMemoryCache) -> None:
    kids = children()
    plain = ChatRouteLLM(**kids, router=known_router)
    # the second cheap answer never agrees with the weak one ("[other] ..." vs "[weak] ..."): every weak call escalates
    disagreeing = Escalation(second=ToolEchoChatModel(label="other", model="other-1"), threshold=0.5)
    escalating = ChatRouteLLM(**kids, router=known_router, escalate=disagreeing)
    assert generated(plain, GREETING).text.startswith("[weak]")
    answer = generated(escalating, GREETING)
    assert answer.text.startswith("[strong]"), "the model without escalation's cached answer was served"
    assert answer.response_metadata["routellm"]["escalated"] is True


def test_cache_tells_apart_prices_among_n_models(llm_cache: InMemoryCache) -> None:
    """Among N models the objective weighs the prices: the cheapest model differs, so must the cached answer."""
    from routellm_core.routers.profiles import ModelPrior
    from routellm_core.routing.objective import Objective

    priors = {"tiny": ModelPrior(like="chatglm-6b"), "big": ModelPrior(like="o1-preview-2024-09-12")}
    models = {name: ToolEchoChatModel(label=name, model=name) for name in priors}

    def ladder(prices: dict[str, tuple[float, float]]) -> ChatRouteLLM:
        return ChatRouteLLM(models=models, priors=priors, prices=prices, objective=Objective.margin(1.0))

    assert generated(ladder({"tiny": (0.1, 0.1), "big": (10.0, 10.0)}), PROOF).text.startswith("[tiny]")
    assert generated(ladder({"tiny": (10.0, 10.0), "big": (0.1, 0.1)}), PROOF).text.startswith("[big]")


def test_cache_key_of_an_unfitted_router_leaves_the_error_to_routing(llm_cache: InMemoryCache) -> None:
    """An unfitted router has no checkpoint to fingerprint: the call fails where routing fails, saying what to do."""
    llm = ChatRouteLLM(**children(), router=get_router_class("difficulty")(), threshold=0.5)
    with pytest.raises(NotFittedError, match="call fit"):
        generated(llm, PROOF)


# ---- 2. structured output without include_raw -----------------------------------------------------------------------
class Sure(ToolEchoChatModel):
    """A fake that reports confident token log-probabilities, as ``ChatOpenAI(logprobs=True)`` does."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._reply(messages, stop, **kwargs)
        logprobs = {"content": [{"token": "t", "logprob": lp} for lp in (-0.01, -0.05)]}
        message = message.model_copy(update={"response_metadata": {**message.response_metadata, "logprobs": logprobs}})
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_structured_output_without_raw_records_tokens_and_cost(
    known_router: WinRateModel, tmp_path: Path, mode: str
) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    kids = children()
    prices = {"fake-weak-1": (0.5, 1.5), "fake-strong-1": (5.0, 15.0)}
    llm = ChatRouteLLM(**kids, router=known_router, feedback=store, prices=prices)
    question = f"{GREETING} What is the weather in 'Paris'?"
    structured = llm.with_structured_output(Weather)
    answer = structured.invoke(question) if mode == "invoke" else asyncio.run(structured.ainvoke(question))
    assert answer == Weather(city="Paris"), "the caller still gets the parsed value only"

    usage = ToolEchoChatModel().with_structured_output(Weather, include_raw=True).invoke(question)["raw"].usage_metadata
    (row,) = store.decisions()
    (attempt,) = row.record.attempts
    assert (attempt.model, attempt.input_tokens, attempt.output_tokens) == (
        "fake-weak-1",
        usage["input_tokens"],
        usage["output_tokens"],
    )
    expected = (usage["input_tokens"] * 0.5 + usage["output_tokens"] * 1.5) / 1e6
    assert row.record.cost == pytest.approx(expected)


def test_structured_output_without_raw_feeds_the_logprob_check(known_router: WinRateModel, tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    strong, weak = ToolEchoChatModel(label="strong", model="big"), Sure(label="weak", model="small")
    llm = ChatRouteLLM(
        strong=strong,
        weak=weak,
        router=known_router,
        feedback=store,
        escalate=Escalation(check="logprobs", threshold=0.5),
    )
    assert llm.with_structured_output(Weather).invoke(f"{GREETING} Weather in 'Oslo'?") == Weather(city="Oslo")
    assert strong.calls == [], "a confident weak answer (token probability ~0.97) must not escalate"
    (row,) = store.decisions()
    assert row.record.escalated is False
    assert row.record.attempts[0].confidence == pytest.approx(math.exp(-0.03))


class BadArgs(ToolEchoChatModel):
    """Calls the schema's tool without its required argument: the answer does not parse."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append("bad")
        call = {"name": "Weather", "args": {"town": "Oslo"}, "id": "call-1", "type": "tool_call"}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="", tool_calls=[call]))])


def test_structured_output_without_raw_still_fails_on_a_parsing_error(known_router: WinRateModel) -> None:
    """A parsing error stays the model's failure (the raw form only holds it): with ``fallback=True`` the other model
    answers, without it the call raises."""
    strong, weak = ToolEchoChatModel(label="strong", model="big"), BadArgs(label="weak", model="small")
    question = f"{GREETING} Weather in 'Oslo'?"
    falling_back = ChatRouteLLM(strong=strong, weak=weak, router=known_router, fallback=True)
    assert falling_back.with_structured_output(Weather).invoke(question) == Weather(city="Oslo")
    assert (weak.calls, len(strong.calls)) == (["bad"], 1), "the weak answer did not parse: the strong one served"
    failing = ChatRouteLLM(strong=strong, weak=weak, router=known_router)
    with pytest.raises(ModelCallError, match="small"):
        failing.with_structured_output(Weather).invoke(question)


class IgnoresRaw(ToolEchoChatModel):
    """A community-style model whose ``with_structured_output`` takes ``include_raw`` and ignores it."""

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Any:
        return super().with_structured_output(schema, include_raw=False, **kwargs)


def test_structured_output_of_a_model_that_ignores_include_raw_still_answers(known_router: WinRateModel) -> None:
    strong, weak = IgnoresRaw(label="strong", model="big"), IgnoresRaw(label="weak", model="small")
    llm = ChatRouteLLM(strong=strong, weak=weak, router=known_router, escalate=Escalation(second=IgnoresRaw()))
    assert llm.with_structured_output(Weather).invoke(f"{GREETING} Weather in 'Oslo'?") == Weather(city="Oslo")
    assert strong.calls == [], "the two parsed answers agree: no escalation"


# ---- 3. the middleware's token watch with a callback manager ---------------------------------------------------------
class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


class FailsAfterTokens(ToolEchoChatModel):
    """Streams a token through its callbacks, then the connection drops."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        assert run_manager is not None
        run_manager.on_llm_new_token("PARTIAL ")
        raise ConnectionError("reset mid-answer")


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_middleware_watches_tokens_of_a_model_with_a_callback_manager(known_router: WinRateModel, mode: str) -> None:
    user = Tokens()
    manager = CallbackManager(handlers=[user])
    strong = FailsAfterTokens(label="strong", model="big", callbacks=manager)
    weak = ToolEchoChatModel(label="weak", model="small")
    middleware = RouteLLMMiddleware(strong=strong, weak=weak, router=known_router, threshold=0.0, fallback=True)
    agent = create_agent(weak, tools=[], middleware=[middleware])
    request = {"messages": [HumanMessage(PROOF)]}
    with pytest.raises(ModelCallError) as failed:
        if mode == "invoke":
            agent.invoke(request)
        else:
            asyncio.run(agent.ainvoke(request))
    assert isinstance(failed.value.__cause__, ConnectionError)
    assert weak.calls == [], "tokens reached the callbacks: the other model must not answer after them"
    assert user.tokens == ["PARTIAL "], "the model's own handler still sees its tokens"
    assert manager.handlers == [user] and manager.inheritable_handlers == [], "the user's manager is never changed"


# ---- 4. a chain as the escalation check's second model ---------------------------------------------------------------
def test_runnable_names_a_chain_second_by_its_chat_model(known_router: WinRateModel) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])

    def chain(label: str, model: str) -> Any:
        return prompt | ToolEchoChatModel(label=label, model=model) | StrOutputParser()

    def record(second: Any) -> dict[str, Any]:
        rag = RouteLLMRunnable(
            strong=chain("strong", "big"),
            weak=chain("weak", "small"),
            router=known_router,
            routing_text="question",
            include_decision=True,
            escalate=Escalation(second=second, threshold=0.5),
        )
        return rag.invoke({"question": GREETING})["routellm"]

    check = record(chain("other", "mid"))["attempts"][1]
    assert (check["role"], check["model"]) == ("check", "mid")
    named = record(chain("other", "mid").with_config(run_name="mid-rag"))["attempts"][1]
    assert named["model"] == "mid-rag", "a name given to the chain wins"
    two = prompt | {"a": ToolEchoChatModel(model="m1"), "b": ToolEchoChatModel(model="m2")} | (lambda d: str(d["a"]))
    assert record(two)["attempts"][1]["model"] == "RunnableSequence", "two chat models: no single name"


# ---- 5. bad routing options in model_copy ----------------------------------------------------------------------------
@pytest.mark.parametrize("owner", ["ChatRouteLLM", "RouteLLMRunnable"])
def test_model_copy_titles_a_bad_routing_option_for_the_front_end(known_router: WinRateModel, owner: str) -> None:
    if owner == "ChatRouteLLM":
        original: Any = ChatRouteLLM(**children(), router=known_router)
    else:
        original = RouteLLMRunnable(**children(), router=known_router)
    with pytest.raises(ValidationError) as built:
        type(original)(**children(), router=known_router, route_on="everything")
    with pytest.raises(ValidationError) as copied:
        original.model_copy(update={"route_on": "everything"})
    assert copied.value.title == built.value.title == owner
    assert [e["loc"] for e in copied.value.errors()] == [("route_on",)]
    assert "route_on" in str(copied.value) and "'everything'" in str(copied.value)
