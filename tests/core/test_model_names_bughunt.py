"""Model names as users write them: each real id resolves to its own profile and its own price, or is refused.

The corpus: every id of the shipped price table (genai-prices: every provider, with its ``provider:`` prefix and
bare), and ids as providers, hosts and libraries spell them (OpenAI, Anthropic, Vertex, Bedrock, Azure, Together,
Fireworks, Groq, Mistral, DeepSeek, OpenRouter, Ollama, Hugging Face, LiteLLM). The worst outcome is a silent wrong
match (an 8B priced or profiled as another size, a mini as the full model, one provider's price for another's), so
a name is right, refused (the caller is told to state a prior or a price), or WRONG.

Run as a script (``.venv/bin/python tests/core/test_model_names_bughunt.py``) it prints the counts.
"""

from __future__ import annotations

import re

import pytest
from genai_prices import data_snapshot

from routellm_core import InvalidInputError, load_router
from routellm_core.data.prices import _table_model, price_of
from routellm_core.routers.profiles import ModelPrior, UnknownModelError, resolve_model
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import LadderEngine, ModelLadder

#: name -> (the profile the shipped ``default`` router must resolve it to, the table entry ``provider:id`` that must
#: price it); None: it must be refused. Checked by hand against the providers' model pages.
EXPECTED: dict[str, tuple[str | None, str | None]] = {
    # OpenAI / Azure: dated snapshots are their model, a mini or nano is not the full model, o1 is not o1-preview
    "gpt-4o": ("gpt-4o-2024-08-06", "openai:gpt-4o"),
    "openai:gpt-4o-2024-11-20": ("gpt-4o-2024-08-06", "openai:gpt-4o"),
    "gpt-4o-2024-05-13": ("gpt-4o-2024-05-13", "openai:gpt-4o-2024-05-13"),
    "gpt-4o-mini": ("gpt-4o-mini-2024-07-18", "openai:gpt-4o-mini"),
    "azure/gpt-4o-mini": ("gpt-4o-mini-2024-07-18", "azure:gpt-4o-mini"),
    "azure_openai:gpt-4o-2024-08-06": ("gpt-4o-2024-08-06", "azure:gpt-4o"),
    "azure/my-gpt4o-deployment": (None, None),
    "gpt-4o:extended": ("gpt-4o-2024-08-06", "openai:gpt-4o:extended"),
    "openai:chatgpt-4o-latest": ("chatgpt-4o-latest-24-09-07", "openai:chatgpt-4o-latest"),
    "o1": (None, "openai:o1"),
    "o1-2024-12-17": (None, "openai:o1"),
    "o1-mini": ("o1-mini-2024-09-12", "openai:o1-mini"),
    "o1-preview": ("o1-preview-2024-09-12", "openai:o1-preview"),
    "gpt-4.1": (None, "openai:gpt-4.1"),
    "gpt-4.1-nano-2025-04-14": (None, "openai:gpt-4.1-nano"),
    "gpt-4-1106-preview": ("gpt-4-1106-preview", "openai:gpt-4-turbo"),
    "gpt-4-1106": ("gpt-4-1106-preview", None),  # GPT-4 Turbo's 1106 snapshot, not GPT-4 (was: gpt-4 both)
    "gpt-4-0613": ("gpt-4", "openai:gpt-4"),
    "gpt-3.5-turbo-0125": ("gpt-3.5-turbo-0125", "openai:gpt-3.5-turbo"),
    "gpt-35-turbo-0613": (None, None),  # Azure's 0613 cost 1.5/2.0, not gpt-3.5-turbo's 0.5/1.5 (was priced so)
    # Anthropic, Vertex, Bedrock (bare ids, cross-region, LiteLLM's bedrock/)
    "claude-3-5-sonnet-20241022": ("claude-3-5-sonnet-20240620", "anthropic:claude-3-5-sonnet"),
    "anthropic:claude-3-5-sonnet-latest": ("claude-3-5-sonnet-20240620", "anthropic:claude-3-5-sonnet"),
    "claude-3.5-sonnet": ("claude-3-5-sonnet-20240620", "anthropic:claude-3-5-sonnet"),
    "claude-3-5-haiku": (None, "anthropic:claude-3-5-haiku-latest"),
    "anthropic/claude-3-5-haiku-20241022": (None, "anthropic:claude-3-5-haiku-latest"),
    "claude-3-haiku-20240307": ("claude-3-haiku-20240307", "anthropic:claude-3-haiku"),
    "claude-3-opus-20240229": ("claude-3-opus-20240229", "anthropic:claude-3-opus-latest"),
    "claude-3-5-sonnet@20240620": ("claude-3-5-sonnet-20240620", "anthropic:claude-3-5-sonnet"),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": (None, "aws:regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
    "us.anthropic.claude-3-5-haiku-20241022-v1:0": (None, "aws:regional.anthropic.claude-3-5-haiku-20241022-v1:0"),
    "bedrock/anthropic.claude-3-haiku-20240307-v1:0": (None, "aws:regional.anthropic.claude-3-haiku-20240307-v1:0"),
    "meta.llama3-1-8b-instruct-v1:0": (None, "aws:meta.llama3-1-8b-instruct-v1:0"),
    "meta.llama3-1-70b-instruct-v1:0": (None, "aws:meta.llama3-1-70b-instruct-v1:0"),
    "meta.llama3-1-405b-instruct-v1:0": (None, None),
    "amazon.nova-lite-v1:0": (None, "aws:amazon.nova-lite-v1:0"),
    # Google: Flash-8B is not Flash
    "gemini-1.5-flash": ("gemini-1.5-flash", "google:gemini-1.5-flash"),
    "gemini/gemini-1.5-flash": ("gemini-1.5-flash", "google:gemini-1.5-flash"),
    "gemini-1.5-flash-8b": (None, None),  # was: gemini-1.5-flash's price, twice Flash-8B's
    "gemini-1.5-flash-8b-001": (None, None),
    "google_genai:gemini-1.5-flash-8b": (None, None),
    "openrouter:google/gemini-flash-1.5-8b": (None, "openrouter:google/gemini-flash-1.5-8b"),
    "gemini-1.5-pro-002": ("gemini-1.5-pro-002", "google:gemini-1.5-pro"),
    "gemini-1.5-pro-latest": ("gemini-1.5-pro", "google:gemini-1.5-pro"),
    "gemini-2.0-flash-lite": (None, "google:gemini-2.0-flash-lite"),
    # hosts of open models: their own names and prices; a bare host name is not priced at another provider's price
    "together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": (
        None,
        "together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
    ),
    "together:meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo": (
        None,
        "together:meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo",
    ),
    "together:mistralai/Mixtral-8x22B-Instruct-v0.1": (None, "together:mistralai/Mixtral-8x22B-Instruct-v0.1"),
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo": (None, None),
    "accounts/fireworks/models/llama-v3p1-8b-instruct": (None, "fireworks:llama-v3p1-8b-instruct"),
    "groq:llama-3.1-8b-instant": (None, "groq:llama-3.1-8b-instant"),
    "groq:llama3-70b-8192": (None, "groq:llama3-70b-8192"),
    "llama-3.3-70b-versatile": (None, None),
    "groq:mixtral-8x7b-32768": (None, "groq:mixtral-8x7b-32768"),
    "mixtral-8x7b-32768": (None, None),  # Groq's id: was Mistral's mixtral-8x7b price (0.7 for Groq's 0.24)
    "groq:deepseek-r1-distill-llama-70b": (None, "groq:deepseek-r1-distill-llama-70b"),
    "deepseek-r1-distill-llama-70b": (None, None),  # a Llama-70B distill: was priced as DeepSeek-R1
    "deepseek-r1-distill-qwen-32b": (None, None),
    "deepseek-r1-0528-qwen3-8b": (None, None),
    "deepseek-reasoner": (None, "deepseek:deepseek-reasoner"),
    "deepseek-r1-0528": (None, "deepseek:deepseek-reasoner"),
    # Mistral: Large 2 is 2407/2411; 2402 (Large 1) and 2512 (Large 3) are other generations; 8x22B is not 8x7B
    "mistral-large-latest": ("Mistral-Large-2", "mistral:mistral-large"),
    "mistral-large-2407": ("Mistral-Large-2", "mistral:mistral-large"),
    "mistral-large-2411": ("Mistral-Large-2", "mistral:mistral-large"),
    "mistralai/Mistral-Large-Instruct-2407": ("Mistral-Large-2", None),
    "mistral-large-2402": (None, None),  # was: Large 2's profile and price (2/6 for Large 1's 4/12)
    "mistral-large-2512": (None, "mistral:mistral-large-2512"),  # was: Large 2's profile
    "mistral:open-mixtral-8x22b": (None, "mistral:mixtral-8x22b-instruct"),
    "mixtral-8x22b": (None, None),
    "open-mixtral-8x7b": ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistral:mixtral-8x7b"),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ("mistralai/Mixtral-8x7B-Instruct-v0.1", None),
    "Mistral-Small-3.2-24B-Instruct-2506": (None, "mistral:mistral-small-3.2-24b-instruct"),
    # OpenRouter
    "openrouter:anthropic/claude-3.5-sonnet": ("claude-3-5-sonnet-20240620", "openrouter:anthropic/claude-3.5-sonnet"),
    "openrouter/anthropic/claude-3.5-sonnet": ("claude-3-5-sonnet-20240620", "openrouter:anthropic/claude-3.5-sonnet"),
    "openrouter:meta-llama/llama-3.1-405b-instruct": (
        "Llama-3.1-405B-Inst-fp8",
        "openrouter:meta-llama/llama-3.1-405b-instruct",
    ),
    "openrouter:meta-llama/llama-3.1-70b-instruct": (
        "Meta-Llama-3.1-70B-Instruct",
        "openrouter:meta-llama/llama-3.1-70b-instruct",
    ),
    "openrouter:meta-llama/llama-3.1-8b-instruct": (
        "llama-3.1-8b-instruct",
        "openrouter:meta-llama/llama-3.1-8b-instruct",
    ),
    "openrouter:qwen/qwen-2.5-7b-instruct": (None, "openrouter:qwen/qwen-2.5-7b-instruct"),
    # Ollama tags: the size in the tag is the model's
    "llama3.1:8b": (None, None),
    "ollama:llama3.1:70b": (None, None),
    "qwen2.5:7b-instruct-q4_K_M": (None, None),
    "deepseek-coder-v2:16b": (None, None),  # the 16B Lite: was the 236B DeepSeek-Coder-V2's profile
    "deepseek-coder-v2:236b": ("DeepSeek-Coder-V2", None),
    "mistral-large:123b": ("Mistral-Large-2", None),
    # Hugging Face repos: profiled by their weights, never priced (a host prices them)
    "meta-llama/Meta-Llama-3.1-8B-Instruct": ("Meta-Llama-3.1-8B-Instruct", None),
    "meta-llama/Llama-3.1-70B-Instruct": ("Meta-Llama-3.1-70B-Instruct", None),
    "meta-llama/Llama-3.1-405B-Instruct": ("Llama-3.1-405B-Inst-fp8", None),
    "Meta-Llama-3.1-8B": ("Meta-Llama-3_1-8B", None),
    "llama-3.1-405b": (None, None),
    "Qwen/Qwen2.5-72B-Instruct": ("Qwen2.5-72B-Instruct", None),
    "Qwen/Qwen2.5-7B-Instruct": ("qwen2.5-7b-instruct", None),
    "Qwen/Qwen2.5-14B-Instruct": (None, None),
    "Qwen/Qwen2.5-Coder-32B-Instruct": (None, None),
    "microsoft/Phi-3-mini-4k-instruct": ("Phi-3-mini-4k-instruct", None),
    "microsoft/Phi-3-medium-4k-instruct": (None, None),
    "google/gemma-2-9b-it": ("gemma-2-9b-it", None),
    "01-ai/Yi-1.5-34B-Chat": ("Yi-1.5-34B-Chat", None),
    "01-ai/Yi-1.5-6B-Chat": (None, None),
}

#: Sizes (parameter counts) and tiers: a name and its match differing in one are different models. The test's own
#: reading, independent of the library's.
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?b|\d+x\d+b)(?![a-z0-9])")
_TIER = re.compile(r"(?<![a-z])(mini|nano|lite|flash|haiku|sonnet|opus|small|medium|large|distill)(?![a-z])")
#: Profiled models whose names do not give their size.
_KNOWN_SIZE = {"DeepSeek-Coder-V2": "236b", "Mistral-Large-2": "123b"}


def _words(name: str) -> tuple[set[str], set[str]]:
    text = name.lower().replace("_", ".")
    return set(_SIZE.findall(text)), set(_TIER.findall(text))


def _entry(name: str) -> str | None:
    found = _table_model(name)
    return None if found is None else f"{found[0].id}:{found[1].id}"


def _table_ids() -> list[tuple[str, str]]:
    return [(p.id, m.id) for p in data_snapshot.get_snapshot().providers for m in p.models]


@pytest.fixture(scope="module")
def profiled() -> list[str]:
    return load_router("default").models


@pytest.mark.parametrize("name", list(EXPECTED))
def test_name_resolves_to_its_own_profile_or_is_refused(name: str, profiled: list[str]) -> None:
    assert resolve_model(name, profiled) == EXPECTED[name][0]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_name_is_priced_by_its_own_entry_or_refused(name: str) -> None:
    entry = EXPECTED[name][1]
    assert _entry(name) == entry
    assert (price_of(name) is None) == (entry is None)


def test_every_table_id_with_its_provider_is_priced_by_that_entry_or_refused() -> None:
    wrong = [(p, m, _entry(f"{p}:{m}")) for p, m in _table_ids() if _entry(f"{p}:{m}") not in (None, f"{p}:{m}")]
    assert not wrong


def test_no_table_id_takes_another_size_or_tiers_profile_or_price(profiled: list[str]) -> None:
    assert not _table_violations(profiled)


def test_a_size_tag_refusal_names_no_other_size(profiled: list[str]) -> None:
    router = load_router("default")
    with pytest.raises(UnknownModelError) as info:
        router.resolve_model("deepseek-coder-v2:16b")
    assert "DeepSeek-Coder-V2" not in str(info.value).split("did you mean")[-1].split("?")[0]
    assert "ModelPrior(like=" in str(info.value)
    with pytest.raises(UnknownModelError) as info:
        router.resolve_model("microsoft/Phi-3-medium-4k-instruct")
    assert "did you mean" not in str(info.value)


def test_a_refused_price_hints_no_other_model() -> None:
    for name in ("gpt-4-1106", "gemini-1.5-flash-8b", "mistral-large-2402"):
        with pytest.raises(InvalidInputError) as info:
            ModelLadder([name, "gpt-4o-mini"])
        assert "did you mean" not in str(info.value)
        assert "prices={name:" in str(info.value)
    with pytest.raises(InvalidInputError, match=r"did you mean 'groq:mixtral-8x7b-32768'\?"):
        ModelLadder(["mixtral-8x7b-32768", "gpt-4o-mini"])


def _engine(names: list[str], **options: object) -> LadderEngine:
    return LadderEngine(
        RoutingOptions(**options), names, owner="test", is_empty=lambda v: not v, chunk_text=str, answer_text=str
    )


def test_a_prior_in_another_spelling_attaches_to_its_model_only() -> None:
    like = "Meta-Llama-3.1-70B-Instruct"
    prices = {"groq:llama-3.3-70b-versatile": (0.59, 0.79)}
    engine = _engine(
        ["gpt-4o-mini", "groq:llama-3.3-70b-versatile"],
        prices=prices,
        priors={"Llama-3.3-70B-Versatile": f"like:{like}"},
    )
    choice = engine.choice("Prove that there are infinitely many primes.")
    expected = load_router("default").predict_success(["Prove that there are infinitely many primes."], [like])[0, 0]
    predicted = dict(zip(choice.models, choice.predictions, strict=True))
    assert predicted["groq:llama-3.3-70b-versatile"] == pytest.approx(expected)
    # an 8B's prior is not the 70B's: the 70B has none, and is refused by name
    with pytest.raises(UnknownModelError, match=r"'llama3\.1:70b'"):
        _engine(
            ["gpt-4o-mini", "llama3.1:70b"],
            prices={"llama3.1:70b": (0.5, 0.5)},
            priors={"llama3.1:8b": ModelPrior(like="Meta-Llama-3.1-8B-Instruct")},
        )


def _table_violations(profiled: list[str]) -> list[tuple[str, str]]:
    """Table ids (with their provider and bare) resolved to a profile of another size or tier, or priced by an entry
    of another size (the test's own reading of sizes and tiers)."""
    wrong = []
    for name in sorted({ref for p, m in _table_ids() for ref in (f"{p}:{m}", m)}):
        sizes, tiers = _words(name.split(":", 1)[-1] if ":" in name.split("/")[0] else name)
        found = resolve_model(name, profiled)
        if found is not None:
            own_sizes, own_tiers = _words(found)
            own_sizes |= {_KNOWN_SIZE[found]} if found in _KNOWN_SIZE else set()
            if (sizes and own_sizes and sizes != own_sizes) or tiers != own_tiers:
                wrong.append((name, found))
        entry = _entry(name)
        if entry is not None and not sizes <= _words(entry.split(":", 1)[1])[0]:
            wrong.append((name, entry))
    return wrong


def _counts() -> dict[str, dict[str, int]]:
    """Over :data:`EXPECTED`, for profiles and prices: ``right`` (the expected match, or the expected refusal),
    ``refused`` (no match where one was expected), ``wrong`` (a match other than the expected one); over the whole
    table: its ids resolved / priced, and ``wrong`` ones by :func:`_table_violations`."""
    profiles = load_router("default").models
    counts = {what: {"right": 0, "refused": 0, "wrong": 0} for what in ("profile", "price")}
    for name, (profile, entry) in EXPECTED.items():
        for what, want, got in (("profile", profile, resolve_model(name, profiles)), ("price", entry, _entry(name))):
            counts[what]["right" if got == want else "refused" if got is None else "wrong"] += 1
    names = {ref for p, m in _table_ids() for ref in (f"{p}:{m}", m)}
    counts["table"] = {
        "ids": len(names),
        "profiled": sum(resolve_model(name, profiles) is not None for name in names),
        "priced": sum(_entry(name) is not None for name in names),
        "wrong": len(_table_violations(profiles)),
    }
    return counts


if __name__ == "__main__":
    print(len(EXPECTED), "names:", _counts())
