"""Prices keyed by another spelling, bare Bedrock ids, the report's APGR intervals, and ``routellm route``'s words.

Prices asserted as numbers are the providers' public list prices (USD per million input / output tokens), as the
shipped ``genai-prices`` table holds them; a user's price is one no table holds (1.11, 2.22).
"""

from __future__ import annotations

import argparse

import pytest

from routellm_core import Battle, InvalidInputError
from routellm_core._cli_args import argument_type, pairs_once
from routellm_core.cli import build_parser, main
from routellm_core.data.prices import call_cost, price_of, same_spelling, split_provider
from routellm_core.learning.report import traffic_report
from routellm_core.routers.profiles import same_model
from routellm_core.routing.ladder import ModelLadder
from routellm_core.server.cli import settings_from_args

MINE = (1.11, 2.22)


# ---- 1. prices= keys spelled another way ---------------------------------------------------------------------
def test_a_key_with_a_version_dot_prices_the_model_written_with_a_dash() -> None:
    assert price_of("claude-sonnet-4-5") == (3.0, 15.0)  # Anthropic's price, which the key must override
    prices = {"claude-sonnet-4.5": MINE}
    assert price_of("claude-sonnet-4-5", prices) == MINE
    assert price_of("anthropic:claude-sonnet-4-5", prices) == MINE
    assert price_of("claude-sonnet-4-5-20250929", prices) == MINE  # a dated version of the model the key names
    assert call_cost("claude-sonnet-4-5", 1_000_000, 1_000_000, prices) == pytest.approx(1.11 + 2.22)
    assert price_of("claude-sonnet-4", prices) == (3.0, 15.0)  # another model: the table's
    assert price_of("claude-sonnet-4-5", {"anthropic:claude-sonnet-4.5": MINE}) == MINE  # its provider's key


def test_a_dated_key_prices_its_spellings_but_not_another_date() -> None:
    prices = {"gpt-4.1-2025-04-14": MINE}
    assert price_of("gpt-4-1-2025-04-14", prices) == MINE
    assert price_of("openai:GPT-4.1-2025-04-14", prices) == MINE
    assert price_of("gpt-4.1", prices) == MINE  # the undated name, as a prior keyed so moves onto it
    assert price_of("gpt-4.1-2025-06-01", prices) == (2.0, 8.0)  # another snapshot: the table's gpt-4.1, not yours
    assert price_of("gpt-4.1-mini", prices) == (0.4, 1.6)  # another model: the table's


def test_an_undated_key_prices_a_dated_model_unless_that_has_a_key_of_its_own() -> None:
    assert price_of("gpt-4o-2024-05-13") == (5.0, 15.0)  # the table prices that snapshot above gpt-4o
    assert price_of("gpt-4o-2024-05-13", {"gpt-4o": MINE}) == MINE
    own = {"gpt-4o": (9.0, 9.0), "GPT-4o-2024-05-13": MINE}  # a key of the same date wins over the undated one
    assert price_of("gpt-4o-2024-05-13", own) == MINE
    assert price_of("gpt-4o-2024-08-06", own) == (9.0, 9.0)
    # two snapshots at their own prices name no price for the undated model: the table's
    assert price_of("gpt-4o", {"gpt-4o-2024-05-13": MINE, "gpt-4o-2024-08-06": (3.0, 4.0)}) == price_of("gpt-4o")
    assert price_of("gpt-4o", {"gpt-4o-2024-05-13": MINE, "GPT-4o-2024-05-13": MINE}) == MINE  # same price: fine


def test_a_key_never_prices_another_size_tag_or_provider() -> None:
    prices = {"llama-3.1-8b": MINE, "qwen2.5:7b": MINE, "azure:gpt-4.1": MINE}
    assert price_of("llama-3.1-70b", prices) is None
    assert price_of("llama-3-1-8b", prices) == MINE
    assert price_of("qwen2.5:14b", prices) is None and price_of("qwen2-5:7b", prices) == MINE
    assert price_of("gpt-4-1", prices) is None  # an OpenAI model: the Azure key is not its price
    assert price_of("openai:gpt-4.1", prices) == (2.0, 8.0)  # OpenAI's own
    assert price_of("azure:gpt-4-1", prices) == MINE
    assert price_of("gpt-4-1", {"openai:gpt-4.1": MINE}) == MINE  # the table knows it as OpenAI's gpt-4.1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("claude-sonnet-4.5", "claude-sonnet-4-5"),
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-08-06"),
        ("llama-3.1-8b", "llama-3.1-70b"),
        ("qwen2.5:7b", "qwen2.5:14b"),
        ("qwen2.5:latest", "qwen2-5"),
        ("gpt-4o", "gpt-4o-mini"),
        ("Meta-Llama-3_1-70B-Instruct", "meta-llama-3.1-70b-instruct"),
        ("claude-3-5-sonnet-latest", "claude-3.5-sonnet-20241022"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106"),
    ],
)
def test_prices_spell_a_model_as_priors_do(a: str, b: str) -> None:
    # the priors' rule lives in routers/ (layer 5), above data/ (layer 1): the two must agree on bare names
    assert same_spelling(a, b) == same_model(a, b)
    assert (price_of(b, {a: MINE}) == MINE) == same_model(a, b)


def test_a_ladder_takes_a_price_keyed_by_another_spelling() -> None:
    ladder = ModelLadder(["gpt-4o-mini", "claude-sonnet-4-5"], {"claude-sonnet-4.5": MINE})
    assert ladder.prices.tolist() == [[0.15, 0.6], [1.11, 2.22]]


# ---- 2. bare AWS Bedrock ids -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "aws"),
    [
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", (3.0, 15.0)),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", (3.0, 15.0)),  # a cross-region inference profile
        ("meta.llama3-1-70b-instruct-v1:0", (0.72, 0.72)),
        ("us.meta.llama3-1-70b-instruct-v1:0", (0.72, 0.72)),
        ("amazon.nova-pro-v1:0", (0.8, 3.2)),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", (3.3, 16.5)),  # AWS's regional price, not Anthropic's
    ],
)
def test_a_bare_bedrock_id_is_priced_at_aws_price(model: str, aws: tuple[float, float]) -> None:
    assert split_provider(model) == (None, model)  # no provider prefix: the id alone says Bedrock
    assert price_of(model) == aws == price_of(f"bedrock:{model}")
    assert call_cost(model, 1_000_000, 0) == pytest.approx(aws[0])


def test_bedrock_pricing_keeps_to_bedrock_ids() -> None:
    assert price_of("anthropic.claude-sonnet-4-5-20250929-v1:0") != price_of("claude-sonnet-4-5-20250929")
    assert price_of("claude-3-5-sonnet-20240620") == (3.0, 15.0)  # Anthropic's, as before
    assert price_of("gpt-4.1") == (2.0, 8.0)  # a version dot is no Bedrock vendor
    assert price_of("cohere.command-r-plus-v1:0") is None  # a Bedrock id the table does not list
    with pytest.raises(InvalidInputError, match=r"no price for \['cohere.command-r-plus-v1:0'\].*give prices="):
        ModelLadder(["amazon.nova-pro-v1:0", "cohere.command-r-plus-v1:0"])
    assert ModelLadder(["amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0"]).prices.tolist() == [
        [0.035, 0.14],
        [0.8, 3.2],
    ]


def test_route_says_how_to_price_an_unlisted_bedrock_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "--model", "amazon.nova-pro-v1:0", "--model", "cohere.command-r-plus-v1:0", "hi"]) == 2
    err = capsys.readouterr().err
    assert "no price for ['cohere.command-r-plus-v1:0']" in err and "give --prices NAME=IN,OUT" in err


# ---- 3. the report's APGR intervals ----------------------------------------------------------------------------
#: 30 labelled prompts: strong wins the 7 proofs, weak wins the 5 limericks, the 18 greetings tie. Strong's advantage
#: is 2/30, so many resamples have none. Proofs are the longest prompts and limericks the shortest, so the length
#: heuristic ranks as the oracle does: strong-won prompts first, weak-won last.
PROOFS = [f"prove that the sum of the first {i} odd numbers is a perfect square, step by step" for i in range(7)]
GREETINGS = [f"hello there my old friend number {i:02d}" for i in range(18)]
LIMERICKS = [f"limerick {i}" for i in range(5)]


def _labels() -> list[Battle]:
    won = {**dict.fromkeys(PROOFS, "model_a"), **dict.fromkeys(GREETINGS, "tie"), **dict.fromkeys(LIMERICKS, "model_b")}
    return [Battle(prompt=p, model_a="gpt-4o", model_b="gpt-4o-mini", winner=w) for p, w in won.items()]


def test_apgr_intervals_leave_out_resamples_without_an_advantage_and_are_not_clipped() -> None:
    report = traffic_report("fast", _labels(), strong_model="gpt-4o", weak_model="gpt-4o-mini", folds=0)
    length = next(row for row in report.rows if row.name == "length")
    # the oracle order: PGR climbs to 7/2 at 7 strong calls and falls back to 1 (APGR well above 1, by definition)
    assert length.apgr.value > 2.0
    # in every resample where strong is preferred the oracle order recovers at least the diagonal (APGR >= 0.5);
    # a resample where weak is preferred turns the same order into the worst one (APGR < 0.5): left out
    assert length.apgr.low >= 0.5
    assert length.apgr.high > length.apgr.value > 1.0  # not clipped to [0, 1]
    note = next(note for note in report.notes if "bootstrap resamples the weak model was preferred" in note)
    assert "on 30 prompts" in note and "may leave [0, 1]" in note


def test_no_note_when_the_strong_model_is_clearly_better() -> None:
    labels = [Battle(prompt=p, model_a="gpt-4o", model_b="gpt-4o-mini", winner="model_a") for p in PROOFS * 2]
    labels += [Battle(prompt=p, model_a="gpt-4o", model_b="gpt-4o-mini", winner="tie") for p in GREETINGS]
    report = traffic_report("fast", labels, strong_model="gpt-4o", weak_model="gpt-4o-mini", folds=0)
    assert report.rows and not any("resamples" in note for note in report.notes)
    length = next(row for row in report.rows if row.name == "length")
    assert 0.5 <= length.apgr.low <= length.apgr.value <= length.apgr.high <= 1.0  # strong never loses: PGR <= 1


# ---- 4. route's ladder options share serve's argument helpers --------------------------------------------------
def test_argument_type_lets_argparse_name_the_option() -> None:
    def positive(text: str) -> float:
        if float(text) <= 0:
            raise InvalidInputError(f"must be positive, got {text}")
        return float(text)

    parser = argparse.ArgumentParser(prog="demo", exit_on_error=False)
    parser.add_argument("--rate", type=argument_type(positive))
    assert parser.parse_args(["--rate", "2"]).rate == 2.0
    with pytest.raises(argparse.ArgumentError, match="argument --rate: must be positive, got -1"):
        parser.parse_args(["--rate", "-1"])
    assert pairs_once("--x", [("a", 1), ("b", 2)]) == {"a": 1, "b": 2}
    with pytest.raises(InvalidInputError, match="--x gives 'a' twice"):
        pairs_once("--x", [("a", 1), ("a", 1)])


def test_route_and_serve_refuse_a_model_priced_twice_alike(capsys: pytest.CaptureFixture[str]) -> None:
    twice = ["--prices", "gpt-4o=1,2", "--prices", "gpt-4o=3,4"]
    assert main(["route", "--model", "gpt-4o-mini", "--model", "gpt-4o", *twice, "hi"]) == 2
    assert "--prices gives 'gpt-4o' twice" in capsys.readouterr().err
    args = build_parser().parse_args(["serve", "--model", "gpt-4o-mini", "--model", "gpt-4o", "--no-auth", *twice])
    with pytest.raises(InvalidInputError, match="--prices gives 'gpt-4o' twice"):
        settings_from_args(args)


def test_route_leads_an_unknown_model_with_the_command_line_prior(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["route", "--model", "gpt-4o-mini", "--model", "acme-7b", "--prices", "acme-7b=0.1,0.2", "hi"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the difficulty router has no profile for model 'acme-7b' (it profiles 114 models" in err
    assert err.index("--prior acme-7b=like:<a profiled model>") < err.index("--prior acme-7b=score:")
    assert "routellm train --feedback STORE --init default --out DIR" in err
    assert "router.add_model" not in err and "ModelPrior(" not in err and "train_router(" not in err  # Python's


def test_route_suggests_the_profiled_model_a_name_mistypes(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["route", "--model", "gpt-4o", "--model", "gpt-4o-mnii", "--prices", "gpt-4o-mnii=0.1,0.2", "hi"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "did you mean 'gpt-4o-mini'? Otherwise state a prior: --prior gpt-4o-mnii=like:" in err


def test_two_keys_spelling_a_model_alike_at_different_prices_are_refused() -> None:
    mine = {"claude-sonnet-4.5": (3.0, 15.0), "Claude-Sonnet-4.5": (4.0, 16.0)}
    with pytest.raises(InvalidInputError, match="at different prices"):
        price_of("claude-sonnet-4-5", mine)
