"""A new user's LlamaIndex walkthrough with late-2026 models (docs/models.md): ``RouteLLM(models=[...])`` over real
LlamaIndex ``OpenAI`` LLMs for gpt-5-mini and gpt-5 against the local OpenAI stand-in (it answers
``"[<model>] <prompt>"`` with token usage), priors for the models the shipped router never saw, and prices keyed as
LangChain and the server write model names (``"openai:gpt-5"``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.llms.openai import OpenAI

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding
from routellm_core.data.prices import price_of
from routellm_core.routers.profiles import ModelPrior

PRIORS = {"gpt-5-mini": ModelPrior(like="gpt-4o-mini"), "gpt-5": "like:o1-preview-2024-09-12"}
PRICES = {"openai:gpt-5-mini": (2.0, 4.0), "openai:gpt-5": (20.0, 40.0)}  # not the table's: these must be used


@pytest.fixture(scope="module")
def openai_url() -> Iterator[str]:
    """The local OpenAI-compatible echo endpoint (no network)."""
    from routellm_core.server import ServerThread
    from routellm_core.server.mock_upstream import create_mock_upstream

    with ServerThread(create_mock_upstream()) as server:
        yield f"{server.url}/v1"


def models(url: str) -> list[OpenAI]:
    return [OpenAI(model=name, api_base=url, api_key="sk-offline-stand-in", max_retries=0) for name in PRIORS]


def test_prices_keyed_with_the_provider_prefix_cost_the_call(openai_url: str) -> None:
    llm = RouteLLM(models=models(openai_url), priors=PRIORS, prices=PRICES, objective="margin=0")
    question = "Prove that there are infinitely many primes."
    response = llm.complete(question)
    assert response.text == f"[gpt-5] {question}"
    record = response.additional_kwargs["routellm"]
    (attempt,) = record["attempts"]
    assert attempt["model"] == "gpt-5" and attempt["input_tokens"] > 0 and attempt["output_tokens"] > 0
    assert price_of("gpt-5") != PRICES["openai:gpt-5"]
    expected = (attempt["input_tokens"] * 20.0 + attempt["output_tokens"] * 40.0) / 1e6
    assert record["cost"] == pytest.approx(expected)  # your prices, not the table's


def test_a_query_engine_routes_the_question_among_todays_models(openai_url: str) -> None:
    llm = RouteLLM(models=models(openai_url), priors=PRIORS, objective="margin=1", route_on="rag_query")  # cheapest
    documents = [Document(text="The warranty covers parts for two years.")]
    index = VectorStoreIndex.from_documents(documents, embed_model=RouteLLMEmbedding())
    answer = index.as_query_engine(llm=llm).query("What does the warranty cover?")
    assert str(answer).startswith("[gpt-5-mini] ")  # the stand-in names the model the request reached
    assert llm.choose_model("What does the warranty cover?").chosen == "gpt-5-mini"
