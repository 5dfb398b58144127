"""A new user's LangChain walkthrough with late-2026 models, following docs/models.md literally: ``models=`` given as
``init_chat_model`` strings (real ``ChatOpenAI`` objects against the local OpenAI stand-in, which answers
``"[<model>] <prompt>"`` with token usage) or as fake chat models keyed by provider-style names, priors and prices
keyed the way the models were written, and ``RouteLLMMiddleware`` in a ``create_agent`` agent with a tool.

The shipped ``default`` router has no profile for any 2025-26 model: every one here is given a prior.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from lc_fakes import ToolEchoChatModel

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware
from routellm_core.data.prices import call_cost, price_of
from routellm_core.routers.profiles import ModelPrior

SPECS = ["openai:gpt-5-mini", "openai:gpt-5"]
#: Keyed as the models were written in models=[...] (the built ChatOpenAI objects are named gpt-5-mini, gpt-5).
PRIORS = {"openai:gpt-5-mini": ModelPrior(like="gpt-4o-mini"), "openai:gpt-5": "like:o1-preview-2024-09-12"}
PRICES = {"openai:gpt-5-mini": (2.0, 4.0), "openai:gpt-5": (20.0, 40.0)}  # not the table's: these must be used
QUESTION = "Prove that there are infinitely many primes."


@pytest.fixture(scope="module")
def openai_url() -> Iterator[str]:
    """The local OpenAI-compatible echo endpoint (no network)."""
    from routellm_core.server import ServerThread
    from routellm_core.server.mock_upstream import create_mock_upstream

    with ServerThread(create_mock_upstream()) as server:
        yield f"{server.url}/v1"


def test_priors_and_prices_keyed_by_the_models_strings_are_used(openai_url: str) -> None:
    llm = ChatRouteLLM(
        models=SPECS,
        priors=PRIORS,
        prices=PRICES,
        objective="margin=0",  # the best predicted: gpt-5, whose prior is o1-preview's profile
        api_key="sk-offline-stand-in",
        child_kwargs={"base_url": openai_url},
        max_retries=0,
    )
    assert list(llm.models) == ["gpt-5-mini", "gpt-5"] and sorted(llm.priors) == ["gpt-5", "gpt-5-mini"]
    message = llm.invoke(QUESTION)
    assert message.text == f"[gpt-5] {QUESTION}"  # the stand-in names the model the request reached
    record = message.response_metadata["routellm"]
    assert record["model"] == "gpt-5" and record["ladder"]["chosen"] == "gpt-5"
    (attempt,) = record["attempts"]
    tokens_in, tokens_out = attempt["input_tokens"], attempt["output_tokens"]
    assert tokens_in > 0 and tokens_out > 0
    assert price_of("gpt-5") != PRICES["openai:gpt-5"]
    assert record["cost"] == pytest.approx((tokens_in * 20.0 + tokens_out * 40.0) / 1e6)  # your prices, not the table's


def test_the_middleware_takes_priors_keyed_by_its_models_strings_in_an_agent_with_a_tool(
    openai_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-offline-stand-in")  # create_agent builds its own "openai:..." model

    @tool(return_direct=True)  # the stand-in calls the tool on every "[tool]" step: the tool's result ends the run
    def lookup(echo: str) -> str:
        """Look a fact up."""
        return f"found: {echo[:20]}"

    middleware = RouteLLMMiddleware(
        models=SPECS,
        priors=PRIORS,
        objective="margin=0",
        api_key="sk-offline-stand-in",
        base_url=openai_url,
        max_retries=0,
    )
    assert middleware.names == ("gpt-5-mini", "gpt-5")
    agent = create_agent("openai:gpt-5-mini", tools=[lookup], middleware=[middleware])  # replaced at every step
    ask = {"messages": [{"role": "user", "content": f"[tool] {QUESTION}"}]}
    messages = agent.invoke(ask, {"recursion_limit": 6})["messages"]
    call, result = messages[1:]
    assert isinstance(call, AIMessage) and call.tool_calls[0]["name"] == "lookup" and isinstance(result, ToolMessage)
    record = call.response_metadata["routellm"]
    assert record["model"] == "gpt-5" and call.response_metadata["model_name"] == "gpt-5"  # the stand-in's echo
    assert record["ladder"]["predictions"]["gpt-5"] > record["ladder"]["predictions"]["gpt-5-mini"]


def fake(name: str) -> ToolEchoChatModel:
    return ToolEchoChatModel(label=name, model=name)


def test_models_keyed_by_init_chat_model_names_are_priced_and_costed() -> None:
    flash, pro = "google_genai:gemini-2.5-flash", "google_genai:gemini-2.5-pro"  # init_chat_model's spelling
    models = {flash: fake("gemini-2.5-flash"), pro: fake("gemini-2.5-pro")}
    priors = {flash: "like:gemini-1.5-flash", pro: "like:gemini-1.5-pro"}
    llm = ChatRouteLLM(models=models, priors=priors, objective="margin=1")  # the cheapest: flash
    record = llm.invoke(QUESTION).response_metadata["routellm"]
    assert record["model"] == flash
    (attempt,) = record["attempts"]
    expected = call_cost("gemini-2.5-flash", attempt["input_tokens"], attempt["output_tokens"])
    assert expected is not None and record["cost"] == pytest.approx(expected)
