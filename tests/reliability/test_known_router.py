"""Both frameworks route with a router fitted in the test, so every expected choice is known in advance.

The router (``fitted_router``) learned "proofs, derivations, complexity analyses -> strong; trivia, greetings ->
weak" from obvious battles. Here, on held-out prompts of both kinds, each entry point must send the hard ones to
the strong child and the trivia to the weak child: ChatRouteLLM (invoke, stream, async, batch, ``stream_events``
v3, inside ``create_agent``), RouteLLMRunnable, RouteLLMMiddleware in an agent, and LlamaIndex's RouteLLM (chat,
complete, streams, a query engine, a FunctionAgent). An inverted or random router fails these tests, and so does
an adapter that resolves ``strong_fraction`` wrongly (using the fraction itself as the threshold, say).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fitted_router import (
    HARD,
    TRAFFIC,
    TRAIN_HARD,
    TRAIN_TRIVIA,
    TRIVIA,
    expected_side,
    strong_share,
)
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from lc_fakes import children
from li_fakes import LabelledLLM
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
)
from llama_index.core.llms.mock import MockFunctionCallingLLMWithChatMemoryOfLastCall
from llama_index.core.tools import FunctionTool

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware, RouteLLMRunnable
from llamaindex_routellm import RouteLLM, RouteLLMEmbedding

# llama_index's workflow engine inspects agents with inspect.getmembers, touching pydantic's deprecated attributes
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

HELD_OUT = HARD + TRIVIA
#: Strong-call fractions checked against the calibration traffic; 0.2 and 0.8 differ from the share of traffic
#: whose win rate is above the fraction itself, so a fraction taken as a threshold fails.
FRACTIONS = [0.2, 0.5, 0.8]


def calibrated_share(fraction: float) -> float:
    """The share of ``TRAFFIC`` a router calibrated on it sends to strong at ``fraction`` (distinct scores)."""
    return math.ceil(fraction * len(TRAFFIC)) / len(TRAFFIC)


def side_of(text: str) -> str:
    """Which labelled child wrote an answer (``"[strong] ..."`` / ``"[weak] ..."``)."""
    for side in ("strong", "weak"):
        if text.startswith(f"[{side}]"):
            return side
    raise AssertionError(f"answer from neither child: {text!r}")


# ---- the router itself --------------------------------------------------------------------------------------
def test_the_fitted_router_separates_held_out_prompts(known_router: Any) -> None:
    """The premise of every test below: held-out hard prompts score above the calibrated 50% threshold, trivia
    below it, with room to spare; the held-out prompts were never trained on."""
    assert not set(TRAFFIC) & set(TRAIN_HARD + TRAIN_TRIVIA)
    threshold = known_router.threshold_for(0.5)
    hard, trivia = known_router.predict_win_rate(HARD), known_router.predict_win_rate(TRIVIA)
    assert hard.min() > threshold + 0.05, (hard, threshold)
    assert trivia.max() < threshold - 0.05, (trivia, threshold)
    assert known_router.route(HELD_OUT, threshold) == [expected_side(p) for p in HELD_OUT]


# ---- LangChain: ChatRouteLLM ---------------------------------------------------------------------------------
@pytest.fixture(params=["default", "strong_fraction=0.5"])
def chat_llm(request: pytest.FixtureRequest, known_router: Any) -> tuple[ChatRouteLLM, dict[str, Any]]:
    """ChatRouteLLM over the fitted router: default threshold (the calibrated 50% point) or ``strong_fraction``."""
    kids = children()
    options = {} if request.param == "default" else {"strong_fraction": 0.5}
    return ChatRouteLLM(**kids, router=known_router, **options), kids


@pytest.mark.parametrize("prompt", HELD_OUT)
def test_chat_model_invoke(chat_llm: tuple[ChatRouteLLM, dict[str, Any]], prompt: str) -> None:
    llm, kids = chat_llm
    side = expected_side(prompt)
    message = llm.invoke(prompt)
    assert side_of(message.text) == side
    record = message.response_metadata["routellm"]
    assert record["choice"] == record["served"] == side and record["model"] == f"fake-{side}-1"
    assert len(kids[side].calls) == 1 and kids["weak" if side == "strong" else "strong"].calls == []


def test_chat_model_stream(chat_llm: tuple[ChatRouteLLM, dict[str, Any]]) -> None:
    llm, _ = chat_llm
    for prompt in HELD_OUT:
        chunks = list(llm.stream(prompt))
        assert side_of("".join(c.text for c in chunks)) == expected_side(prompt), prompt
        assert chunks[0].response_metadata["routellm"]["choice"] == expected_side(prompt)


async def test_chat_model_async(chat_llm: tuple[ChatRouteLLM, dict[str, Any]]) -> None:
    llm, _ = chat_llm
    for prompt in HELD_OUT:
        assert side_of((await llm.ainvoke(prompt)).text) == expected_side(prompt), prompt
        streamed = "".join([c.text async for c in llm.astream(prompt)])
        assert side_of(streamed) == expected_side(prompt), prompt


async def test_chat_model_batch(chat_llm: tuple[ChatRouteLLM, dict[str, Any]]) -> None:
    llm, _ = chat_llm
    expected = [expected_side(p) for p in HELD_OUT]
    assert [side_of(m.text) for m in llm.batch(HELD_OUT)] == expected
    assert [side_of(m.text) for m in await llm.abatch(HELD_OUT)] == expected


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
async def test_chat_model_stream_events_v3(chat_llm: tuple[ChatRouteLLM, dict[str, Any]]) -> None:
    """``stream_events(version="v3")`` goes through BaseChatModel's own hooks: same choices, decision on the
    assembled message."""
    llm, _ = chat_llm
    for prompt in (HARD[0], TRIVIA[0]):
        stream = llm.stream_events(prompt, version="v3")
        assert side_of("".join(stream.text)) == expected_side(prompt)
        assert stream.output.response_metadata["routellm"]["choice"] == expected_side(prompt)
        astream = await llm.astream_events(prompt, version="v3")
        assert side_of("".join([t async for t in astream.text])) == expected_side(prompt)
        assert (await astream.output).response_metadata["routellm"]["choice"] == expected_side(prompt)


def test_per_call_arguments_reach_the_chosen_child(known_router: Any) -> None:
    """README: per-call keyword arguments (``stop``, ``model``, provider options) go to the chosen child."""
    kids = children()
    llm = ChatRouteLLM(**kids, router=known_router)
    for prompt in (HARD[0], TRIVIA[0]):
        side = expected_side(prompt)
        message = llm.invoke(prompt, stop=[" said"], model=f"{side}-per-call")
        assert message.text == f"[{side}] You"
        assert message.response_metadata["model_name"] == f"{side}-per-call"
    runnable = RouteLLMRunnable(**kids, router=known_router)
    assert runnable.invoke(HARD[0], stop=[" said"]).text == "[strong] You"
    assert len(kids["strong"].calls) == 2 and len(kids["weak"].calls) == 1


def test_chat_model_in_an_agent(known_router: Any) -> None:
    llm = ChatRouteLLM(**children(), router=known_router, strong_fraction=0.5)
    agent = create_agent(llm, tools=[])
    for prompt in (HARD[1], TRIVIA[1]):
        final = agent.invoke({"messages": [HumanMessage(prompt)]})["messages"][-1]
        assert isinstance(final, AIMessage)
        assert side_of(final.text) == expected_side(prompt)


# ---- LangChain: RouteLLMRunnable and the middleware ---------------------------------------------------------
def rag_pipelines() -> dict[str, Any]:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}\n\nContext: {context}")])
    kids = children()
    return {side: prompt | kids[side] | StrOutputParser() for side in ("strong", "weak")}


async def test_runnable_routes_pipelines(known_router: Any) -> None:
    rag = RouteLLMRunnable(**rag_pipelines(), router=known_router, strong_fraction=0.5, routing_text="question")
    # a long retrieved context that looks like neither kind: only the question is routed
    inputs = [{"question": p, "context": "The Eiffel Tower is 330 metres tall. " * 20} for p in HELD_OUT]
    expected = [expected_side(p) for p in HELD_OUT]
    assert [side_of(out) for out in rag.batch(inputs)] == expected
    for value, side in zip(inputs[::5], expected[::5], strict=True):
        assert side_of(rag.invoke(value)) == side
        assert side_of("".join(rag.stream(value))) == side
        assert side_of(await rag.ainvoke(value)) == side
        assert side_of("".join([c async for c in rag.astream(value)])) == side


@pytest.mark.parametrize("prompt", [HARD[2], TRIVIA[2]])
async def test_middleware_routes_agent_steps(known_router: Any, prompt: str) -> None:
    kids = children()
    middleware = RouteLLMMiddleware(**kids, router=known_router)
    agent = create_agent(kids["weak"], tools=[], middleware=[middleware])
    for out in (agent.invoke({"messages": [HumanMessage(prompt)]}), await agent.ainvoke({"messages": [prompt]})):
        final = out["messages"][-1]
        assert side_of(final.text) == expected_side(prompt)
        assert final.response_metadata["routellm"]["choice"] == expected_side(prompt)


# ---- LlamaIndex ---------------------------------------------------------------------------------------------
@pytest.fixture(params=["default", "strong_fraction=0.5"])
def index_llm(request: pytest.FixtureRequest, known_router: Any) -> RouteLLM:
    options = {} if request.param == "default" else {"strong_fraction": 0.5}
    return RouteLLM(strong=LabelledLLM("strong"), weak=LabelledLLM("weak"), router=known_router, **options)


async def test_llamaindex_every_call_form(index_llm: RouteLLM) -> None:
    llm = index_llm
    for prompt in HELD_OUT:
        side = expected_side(prompt)
        messages = [ChatMessage(role=MessageRole.SYSTEM, content="Be brief."), ChatMessage(content=prompt)]
        answers = [
            llm.complete(prompt).text,
            str(llm.chat(messages).message.content),
            "".join(c.delta or "" for c in llm.stream_complete(prompt)),
            "".join(c.delta or "" for c in llm.stream_chat(messages)),
            (await llm.acomplete(prompt)).text,
            str((await llm.achat(messages)).message.content),
            "".join([c.delta or "" async for c in await llm.astream_chat(messages)]),
        ]
        assert [side_of(a) for a in answers] == [side] * len(answers), prompt
        assert llm.complete(prompt).additional_kwargs["routellm"]["choice"] == side
    served = {"strong": llm.strong.calls, "weak": llm.weak.calls}  # type: ignore[attr-defined]
    assert served == {"strong": 8 * len(HARD), "weak": 8 * len(TRIVIA)}


def test_llamaindex_query_engine_routes_the_question(known_router: Any) -> None:
    """``route_on="rag_query"``: the retrieved context (the same for every question) does not sway the choice."""
    embed_model = RouteLLMEmbedding(embedder=known_router.get_embedder())
    docs = [Document(text="The Eiffel Tower in Paris was completed in 1889 and is 330 metres tall.")]
    index = VectorStoreIndex.from_documents(docs, embed_model=embed_model)
    llm = RouteLLM(strong=LabelledLLM("strong"), weak=LabelledLLM("weak"), router=known_router, route_on="rag_query")
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)
    for prompt in (HARD[3], TRIVIA[3], HARD[4], TRIVIA[4]):
        assert str(engine.query(prompt)) == f"[{expected_side(prompt)}] {prompt}"


@pytest.mark.parametrize("prompt", [HARD[5], TRIVIA[5]])
async def test_llamaindex_function_agent_keeps_the_known_side(known_router: Any, prompt: str) -> None:
    strong = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    weak = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    llm = RouteLLM(strong=strong, weak=weak, router=known_router, strong_fraction=0.5)

    def multiply(a: int = 6, b: int = 7) -> int:
        """Multiply two integers."""
        return a * b

    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm, system_prompt="Use tools.")
    await agent.run(prompt)
    chosen, other = (strong, weak) if expected_side(prompt) == "strong" else (weak, strong)
    assert chosen.last_called_chat_function.count("astream_chat") == 2, "both steps (tool call, answer)"
    assert other.last_called_chat_function == []


# ---- strong_fraction resolves through the calibration, in both frameworks -----------------------------------
@pytest.mark.parametrize("fraction", FRACTIONS)
def test_strong_fraction_sends_that_share_of_the_traffic_to_strong(known_router: Any, fraction: float) -> None:
    """The router was calibrated on ``TRAFFIC``: ``strong_fraction=f`` sends ``ceil(f * n)`` of its n prompts to
    strong (within one prompt, for float noise at the cut), in every integration. Scores are bimodal, so taking
    ``f`` itself as the threshold would send about half of the traffic to strong whatever ``f``."""
    expected = calibrated_share(fraction)
    above_f = float(np.mean(known_router.predict_win_rate(TRAFFIC) >= fraction))
    assert abs(above_f - expected) > 2 / len(TRAFFIC) or fraction == 0.5, "f as a threshold must be told apart"
    tolerance = 1 / len(TRAFFIC) + 1e-9

    chat = ChatRouteLLM(**children(), router=known_router, strong_fraction=fraction)
    chat_choices = [m.response_metadata["routellm"]["choice"] for m in chat.batch(TRAFFIC)]
    assert strong_share(chat_choices) == pytest.approx(expected, abs=tolerance)

    runnable = RouteLLMRunnable(**children(), router=known_router, strong_fraction=fraction, include_decision=True)
    runnable_choices = [out["routellm"]["choice"] for out in runnable.batch(TRAFFIC)]
    assert strong_share(runnable_choices) == pytest.approx(expected, abs=tolerance)

    middleware = RouteLLMMiddleware(**children(), router=known_router, strong_fraction=fraction)
    assert middleware.policy.threshold == pytest.approx(known_router.threshold_for(fraction))

    llm = RouteLLM(
        strong=LabelledLLM("strong"), weak=LabelledLLM("weak"), router=known_router, strong_fraction=fraction
    )
    index_choices = [llm.complete(p).additional_kwargs["routellm"]["choice"] for p in TRAFFIC]
    assert strong_share(index_choices) == pytest.approx(expected, abs=tolerance)
    assert llm.strong_fraction == fraction and llm.threshold is None
    assert llm.routing_policy.threshold == pytest.approx(known_router.threshold_for(fraction))
