"""A new user's walkthrough with the models of late 2026 (gpt-5, claude-*-4-5, gemini-2.5, Llama-3.3 on Groq and
Together), named as providers, LangChain's ``init_chat_model`` and LiteLLM write them: prices from the shipped table,
model-name resolution, and profiling a new model from golden labels (``train_router(None, labels, init="default")``).

The shipped routers saw no 2025-26 model: each needs a prior or labels, and these tests never invent a profile.
"""

from __future__ import annotations

import pytest

from routellm_core import GoldenLabel, load_router
from routellm_core.data.prices import call_cost, price_of, split_provider
from routellm_core.errors import InvalidInputError
from routellm_core.routers.profiles import ModelPrior, UnknownModelError, resolve_model
from routellm_core.routers.training import train_router
from routellm_core.routing.ladder import ModelLadder

#: Today's models as their providers and routers name them; the shipped table prices every one of them.
MODERN = (
    "gpt-5-mini",
    "openai:gpt-5",
    "gpt-5-2025-08-07",
    "o3",
    "claude-haiku-4-5",
    "anthropic/claude-sonnet-4.5",
    "anthropic:claude-opus-4-1-20250805",
    "gemini-2.5-flash",
    "google:gemini-2.5-pro",
    "together:meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "groq:llama-3.3-70b-versatile",
)


@pytest.fixture(scope="module")
def default():
    return load_router("default")


def test_the_shipped_table_prices_todays_names_and_the_default_router_profiles_none_of_them(default) -> None:
    for name in MODERN:
        assert price_of(name) is not None, name
        with pytest.raises(UnknownModelError, match="state a prior"):
            default.resolve_model(name)  # 2023-24 training data: a 2025-26 model needs a prior or labels


@pytest.mark.parametrize(
    ("written", "bare"),
    [
        ("google_genai:gemini-2.5-flash", "gemini-2.5-flash"),  # init_chat_model's Gemini API provider
        ("google_vertexai:gemini-2.5-pro", "gemini-2.5-pro"),  # init_chat_model's Vertex AI provider
        ("gemini/gemini-2.5-pro", "gemini-2.5-pro"),  # LiteLLM's
        ("mistralai:mistral-large-latest", "mistral:mistral-large-latest"),  # init_chat_model's Mistral provider
        ("xai:grok-4", "grok-4"),  # init_chat_model's xAI provider (the table's id is "x-ai")
        ("azure_openai:gpt-5", "azure:gpt-5"),
    ],
)
def test_init_chat_model_and_litellm_provider_prefixes_are_priced_as_their_provider(written: str, bare: str) -> None:
    assert price_of(bare) is not None
    assert price_of(written) == price_of(bare)
    assert call_cost(written, 1_000, 500) == call_cost(bare, 1_000, 500)


def test_a_ladder_named_with_init_chat_model_strings_is_priced() -> None:
    names = ["google_genai:gemini-2.5-flash", "google_genai:gemini-2.5-pro"]
    ladder = ModelLadder(names)  # raised "no price for [...]" before
    flash, pro = ladder.expected_costs("Prove that there are infinitely many primes.")
    assert 0 < flash < pro


@pytest.mark.parametrize(
    ("bare", "host"),
    [
        ("llama-3.3-70b-versatile", "groq"),  # what ChatGroq calls its model
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together"),  # what ChatTogether calls its model
    ],
)
def test_a_hosted_open_models_bare_name_is_not_priced_but_the_error_names_its_host(bare: str, host: str) -> None:
    assert price_of(bare) is None  # the same weights cost what their host charges: never guessed
    assert price_of(f"{host}:{bare}") is not None
    with pytest.raises(InvalidInputError) as info:
        ModelLadder(["gpt-5-mini", bare])
    assert f"(did you mean '{host}:{bare}'?)" in str(info.value), str(info.value)
    assert "give prices={name: " in str(info.value)


def test_a_self_hosted_open_model_gets_no_host_suggested() -> None:
    with pytest.raises(InvalidInputError) as info:
        ModelLadder(["gpt-5-mini", "Meta-Llama-3.1-70B-Instruct"])
    assert "did you mean" not in str(info.value)


def test_your_prices_keyed_with_a_provider_prefix_price_the_model_of_that_name() -> None:
    mine = {"openai:gpt-5": (9.0, 90.0)}
    assert price_of("gpt-5") != (9.0, 90.0)  # the table's own price differs
    assert price_of("gpt-5", mine) == (9.0, 90.0)  # a model built from "openai:gpt-5" is named gpt-5
    assert call_cost("gpt-5", 1_000, 100, mine) == pytest.approx((1_000 * 9.0 + 100 * 90.0) / 1e6)
    costs = ModelLadder(["gpt-5-mini", "gpt-5"], {"openai:gpt-5-mini": (1.0, 1.0), **mine}).expected_costs("hi")
    table = ModelLadder(["gpt-5-mini", "gpt-5"]).expected_costs("hi")
    assert costs[1] / costs[0] > table[1] / table[0]  # 90x vs the table's ~5x
    assert price_of("openai/gpt-5", mine) == (9.0, 90.0)
    assert price_of("azure:gpt-5", mine) == price_of("azure:gpt-5")  # another provider's price is not yours
    # nor is another provider's copy's price the bare model's (gpt-5 is OpenAI's in the table): a ladder listing
    # several providers' copies, each priced by its own key, prices each as keyed
    copies = {"azure:gpt-5": (0.5, 4.0), "bedrock:gpt-5": (0.6, 5.0)}
    assert price_of("gpt-5", copies) == price_of("gpt-5")
    assert ModelLadder(["gpt-5", "azure:gpt-5", "bedrock:gpt-5", "gpt-5-mini"], copies).prices[1:3].tolist() == [
        [0.5, 4.0],
        [0.6, 5.0],
    ]
    with pytest.raises(InvalidInputError, match=r"prices name 'gpt-5' as \['openai/gpt-5', 'openai:gpt-5'\]"):
        price_of("gpt-5", {"openai:gpt-5": (1.0, 2.0), "openai/gpt-5": (3.0, 4.0)})


def test_a_hugging_face_repo_is_not_read_as_its_organisations_api() -> None:
    """``mistralai/...`` is a Hugging Face repo (self-hosted weights cost what their host charges), unlike
    ``mistralai:...``, LangChain's name for Mistral's API."""
    for repo in ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistral-community/pixtral-12b", "openai-community/gpt2"):
        assert split_provider(repo) == (None, repo) and price_of(repo) is None, repo
    assert split_provider("mistralai:mistral-large-latest")[0] == "mistral"
    assert price_of("mistralai:mistral-large-latest") == price_of("mistral:mistral-large-latest")


def test_an_alias_with_a_date_like_number_does_not_catch_its_family(default) -> None:
    """The alias ``gpt-4-1106`` (GPT-4 Turbo) once caught every name whose key is ``gpt-4`` (its ``-1106`` read as
    a date): ``gpt-4-0613`` and ``openai:gpt-4`` went to GPT-4 Turbo's profile."""
    for name in ("gpt-4-0613", "openai:gpt-4", "openai:gpt-4-0314", "gpt-4"):
        assert resolve_model(name, default.models) == "gpt-4", name
    assert resolve_model("gpt-4-1106-preview", default.models) == "gpt-4-1106-preview"
    assert resolve_model("anthropic/claude-3.5-sonnet", default.models) == "claude-3-5-sonnet-20240620"


def test_dotted_and_dashed_versions_name_one_model() -> None:
    known = ["claude-sonnet-4-5", "gpt-4.1", "gemini-2.5-pro"]
    assert resolve_model("anthropic/claude-sonnet-4.5", known) == "claude-sonnet-4-5"  # OpenRouter's spelling
    assert resolve_model("claude-sonnet-4-5-20250929", known) == "claude-sonnet-4-5"
    assert resolve_model("gpt-4-1-2025-04-14", known) == "gpt-4.1"
    assert resolve_model("google_genai:gemini-2.5-pro", known) == "gemini-2.5-pro"
    assert resolve_model("claude-sonnet-4", known) is None  # another version, not a spelling
    assert resolve_model("claude-sonnet-4-5-1", known) is None


def test_the_default_routers_resolution_is_unchanged_by_the_version_dot_rule(default) -> None:
    assert resolve_model("anthropic/claude-3.5-sonnet", default.models) == "claude-3-5-sonnet-20240620"
    assert resolve_model("claude-3-5-sonnet-latest", default.models) == "claude-3-5-sonnet-20240620"
    # several profiled spellings share the key: the one spelled as written wins, as before
    assert resolve_model("meta-llama/Meta-Llama-3.1-8B-Instruct", default.models) == "Meta-Llama-3.1-8B-Instruct"
    assert resolve_model("Meta-Llama-3_1-8B-Instruct", default.models) == "Meta-Llama-3_1-8B-Instruct"
    for newer in ("gpt-4.1", "llama-3.3-70b-instruct", "gemini-2.5-pro", "claude-3-7-sonnet", "qwen2.5-14b-instruct"):
        assert resolve_model(newer, default.models) is None, newer


HARD = [f"Prove that for every integer n > {k} the sum of the first n odd numbers is n squared." for k in range(12)]
EASY = [f"What is {k} plus {k + 1}?" for k in range(12)]


def test_golden_labels_profile_todays_models_under_every_spelling_of_their_names() -> None:
    scores = {"gpt-5-2025-08-07": 1.0, "claude-sonnet-4-5": 1.0}
    labels = [GoldenLabel(prompt=p, scores={"gpt-5-mini": float(p in EASY), **scores}) for p in HARD + EASY]
    mine = train_router(None, labels, init="default")
    refit = mine.metadata["profiles_refit"]
    assert {name: entry["labels"] for name, entry in refit.items()} == {
        "gpt-5-mini": 24,
        "gpt-5-2025-08-07": 24,
        "claude-sonnet-4-5": 24,
    }
    assert mine.resolve_model("openai:gpt-5") == "gpt-5-2025-08-07"  # undated: the latest dated profile
    for spelling in ("anthropic/claude-sonnet-4.5", "claude-sonnet-4.5", "claude-sonnet-4-5-20250929"):
        assert mine.resolve_model(spelling) == "claude-sonnet-4-5", spelling
    texts = ["Prove that there are infinitely many primes."]
    as_written = mine.predict_success(texts, ["anthropic/claude-sonnet-4.5"])
    assert as_written.tolist() == mine.predict_success(texts, ["claude-sonnet-4-5"]).tolist()
    # a prior may name the labelled model by another spelling too
    liked = mine.predict_success(texts, ["acme-9"], priors={"acme-9": ModelPrior(like="claude-sonnet-4.5")})
    assert liked.tolist() == as_written.tolist()
