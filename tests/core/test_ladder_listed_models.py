"""What ``models=[...]`` accepts, checked when the front end is built rather than on the first call.

- Two listed names that are one model to the router (one profile) at one price got identical predictions and costs,
  and the pair came out arbitrary (``gpt-4o`` and ``gpt-4o-2024-08-06`` beside ``gpt-4o-mini``).
- ``ModelPrior(like="gpt-5")`` (no such profile) was accepted, then failed on the first call, telling the user to
  give ``gpt-5`` a prior.
- A prior for a model the router profiles is not used (its learned profile is): said once, at construction.

The router is the shipped ``default``; the children are ``lc_fakes``.
"""

from __future__ import annotations

import logging

import pytest
from lc_fakes import ToolEchoChatModel

from langchain_routellm import ChatRouteLLM
from routellm_core.errors import InvalidInputError
from routellm_core.routers.profiles import ModelPrior


def ladder(*names: str, **options: object) -> ChatRouteLLM:
    return ChatRouteLLM(models={n: ToolEchoChatModel(label=n, model=n) for n in names}, **options)  # type: ignore[arg-type]


def test_one_model_listed_twice_at_one_price_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"'gpt-4o' and 'gpt-4o-2024-08-06'.*one model to the router"):
        ladder("gpt-4o-mini", "gpt-4o", "gpt-4o-2024-08-06")


def test_a_prior_of_a_profiled_twin_does_not_let_it_through() -> None:
    """The prior of a profiled model is not used, so it does not tell the two apart either."""
    with pytest.raises(InvalidInputError, match="one model to the router"):
        ladder("gpt-4o-mini", "openai:gpt-4o", "azure:gpt-4o", priors={"azure:gpt-4o": "like:gpt-4o"})


def test_one_model_at_two_prices_is_two_choices() -> None:
    prices = {"gpt-4o": (2.5, 10.0), "gpt-4o-2024-08-06": (1.0, 4.0)}  # e.g. two providers' prices
    llm = ladder("gpt-4o-mini", "gpt-4o", "gpt-4o-2024-08-06", prices=prices)
    assert llm.invoke("Hello there!").text


@pytest.mark.parametrize(
    ("prior", "named"),
    [
        (ModelPrior(like="gpt-5"), "gpt-5"),
        ("like:gpt-5", "gpt-5"),
        (ModelPrior(score=0.7, reference={"gtp-4o": 0.8}), "gtp-4o"),
    ],
)
def test_a_prior_naming_no_profile_is_refused_when_built(prior: object, named: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"the prior of 'my-model' names '{named}'.*no profile"):
        ladder("gpt-4o-mini", "my-model", priors={"my-model": prior})


def test_a_mistyped_like_gets_a_hint() -> None:
    with pytest.raises(InvalidInputError, match="did you mean 'gpt-4o"):
        ladder("gpt-4o-mini", "my-model", priors={"my-model": ModelPrior(like="gpt4o")})


def test_a_prior_of_a_profiled_model_is_said_to_be_unused(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routellm_core.routing import ladder as ladder_module

    monkeypatch.setattr(ladder_module, "_UNUSED_PRIORS_SAID", set())
    priors = {"gpt-4o": ModelPrior(like="o1-preview-2024-09-12")}
    with caplog.at_level(logging.WARNING):
        ladder("gpt-4o-mini", "gpt-4o", priors=priors)
    said = [r.getMessage() for r in caplog.records]
    assert any("'gpt-4o' has a profile" in m and "prior is not used" in m for m in said), said
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # said once (the server builds an engine per objective)
        ladder("gpt-4o-mini", "gpt-4o", priors=priors)
    assert not any("prior is not used" in r.getMessage() for r in caplog.records)
