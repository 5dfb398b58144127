"""``routellm route --model ...``: the model each prompt would go to among N priced models, printed as the decision
record's ``ladder`` entry, with the shipped ``default`` router and no model called.

The choices asserted are known in advance: expected costs follow from the prices given (``--prices``) and the
assumed answer length (``--output-tokens``; 300 by default), so a cap just below or above a model's cost decides;
a margin of 1 takes the cheapest model; priors borrow the profiles of a weak and a frontier model, so with a huge
price gap the cost weight decides which side wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routellm_core.cli import main
from routellm_core.decisions import LadderChoice
from routellm_core.routing.ladder import DEFAULT_OUTPUT_TOKENS

MINI, GPT4O, O1 = "gpt-4o-mini", "gpt-4o", "o1-preview-2024-09-12"
PROOF = "Prove that there are infinitely many primes."  # 44 characters: 11 prompt tokens at 4 characters a token
QUICKSORT = "Implement quicksort in Rust with generics and explain its complexity."
#: Prices given on the command line (USD per million input / output tokens), so the costs below do not depend on
#: the shipped table.
PRICES = {MINI: (0.15, 0.6), GPT4O: (2.5, 10.0)}
LADDER_KEYS = {
    "models",
    "predictions",
    "expected_costs",
    "chosen",
    "expected_cost",
    "objective",
    "value",
    "strong",
    "weak",
    "budget",
    "spend",
    "caps",
    "shares",
    "closed",
}


def _route(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[dict], str]:
    """Run ``routellm route`` and return its JSON lines and stderr."""
    assert main(["route", *args]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def _priced(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--prices", f"{name}={PRICES[name][0]},{PRICES[name][1]}")]


def _cost(name: str, prompt: str, output_tokens: int = 300) -> float:
    """Expected USD cost: prompt tokens (characters / 4, at least 1) and the assumed answer length."""
    usd_in, usd_out = PRICES[name]
    return (max(1.0, len(prompt) / 4) * usd_in + output_tokens * usd_out) / 1e6


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``routellm route`` expecting a refusal (exit code 2), and return what it said on stderr."""
    try:
        code = main(["route", *args])
    except SystemExit as exc:  # argparse refuses a malformed option value itself
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    return captured.err


def test_each_prompt_prints_the_record_ladder_entry(capsys: pytest.CaptureFixture[str]) -> None:
    rows, err = _route(capsys, "--model", MINI, "--model", GPT4O, "--model", O1, "hi", PROOF)
    assert [row["prompt"] for row in rows] == ["hi", PROOF]
    for row in rows:
        assert set(row) == {"prompt", "ladder"}
        ladder = row["ladder"]
        assert set(ladder) == LADDER_KEYS
        assert ladder["models"] == [MINI, GPT4O, O1]  # cheapest expected first
        assert set(ladder["predictions"]) == set(ladder["expected_costs"]) == {MINI, GPT4O, O1}
        assert all(0 < p < 1 for p in ladder["predictions"].values())
        assert ladder["objective"] == "margin" and ladder["value"] == 0.05  # the default objective
        assert ladder["budget"] is None and ladder["spend"] is None
        assert ladder["expected_cost"] == ladder["expected_costs"][ladder["chosen"]]
        assert LadderChoice.from_dict(ladder).as_dict() == ladder  # the record's own form, round-tripped
    assert rows[0]["ladder"]["chosen"] == O1  # the docs' point: a margin sends even "hi" to the frontier model
    assert "2 prompts under margin=0.05" in err and f"chosen {MINI} 0, {GPT4O} 0, {O1} 2;" in err


def test_max_cost_below_the_dearer_models_cost_chooses_the_cheaper(capsys: pytest.CaptureFixture[str]) -> None:
    pair = ["--model", MINI, "--model", GPT4O, *_priced(MINI, GPT4O)]
    dear = _cost(GPT4O, PROOF)  # 0.0030275 USD
    rows, _ = _route(capsys, *pair, "--objective", "max_cost=0.003", PROOF)
    ladder = rows[0]["ladder"]
    assert ladder["expected_costs"] == pytest.approx({MINI: _cost(MINI, PROOF), GPT4O: dear})
    assert ladder["predictions"][GPT4O] > ladder["predictions"][MINI] + 0.02  # gpt-4o is predicted better here...
    assert ladder["chosen"] == MINI and ladder["objective"] == "max_cost" and ladder["value"] == 0.003  # ...too dear
    assert (ladder["weak"], ladder["strong"]) == (MINI, GPT4O)  # the pair a call would run on
    rows, _ = _route(capsys, *pair, "--objective", "max_cost=0.0031", PROOF)
    assert rows[0]["ladder"]["chosen"] == GPT4O  # the cap now covers it: the best predicted model
    # shorter answers make gpt-4o cheap enough under the lower cap
    rows, _ = _route(capsys, *pair, "--objective", "max_cost=0.002", "--output-tokens", "100", PROOF)
    ladder = rows[0]["ladder"]
    assert ladder["expected_costs"] == pytest.approx({MINI: _cost(MINI, PROOF, 100), GPT4O: _cost(GPT4O, PROOF, 100)})
    assert ladder["chosen"] == GPT4O


def test_output_tokens_default_is_the_ladders(capsys: pytest.CaptureFixture[str]) -> None:
    pair = ["--model", MINI, "--model", GPT4O, *_priced(MINI, GPT4O), "hi"]
    default, _ = _route(capsys, *pair)
    same, _ = _route(capsys, *pair, "--output-tokens", str(DEFAULT_OUTPUT_TOKENS))
    longer, _ = _route(capsys, *pair, "--output-tokens", "2000")
    assert default == same
    assert longer[0]["ladder"]["expected_costs"] == pytest.approx(
        {MINI: _cost(MINI, "hi", 2000), GPT4O: _cost(GPT4O, "hi", 2000)}
    )
    with pytest.raises(SystemExit):
        main(["route", "--help"])
    assert f"(default: {DEFAULT_OUTPUT_TOKENS}, the ladder's before any report)" in " ".join(
        capsys.readouterr().out.split()
    )


def test_a_margin_of_one_takes_the_cheapest_and_zero_the_best(capsys: pytest.CaptureFixture[str]) -> None:
    ladder = ["--model", O1, "--model", GPT4O, "--model", MINI]  # listed dearest first: the order does not matter
    rows, _ = _route(capsys, *ladder, "--objective", "margin=1", "hi", PROOF, QUICKSORT)
    assert [row["ladder"]["chosen"] for row in rows] == [MINI, MINI, MINI]
    rows, _ = _route(capsys, *ladder, "--objective", "margin=0", "hi", PROOF, QUICKSORT)
    for row in rows:
        predictions = row["ladder"]["predictions"]
        assert row["ladder"]["chosen"] == max(predictions, key=predictions.get) == O1


def test_priors_borrow_profiles_and_the_cost_weight_trades_them_against_price(
    capsys: pytest.CaptureFixture[str],
) -> None:
    weak, frontier = "Llama-2-13b-hf", O1
    models = [
        *("--model", "tiny", "--prior", f"tiny=like:{weak}", "--prices", "tiny=0.01,0.01"),
        *("--model", "frontier", "--prior", f"frontier=like:{frontier}", "--prices", "frontier=60,240"),
    ]
    direct, _ = _route(capsys, "--model", weak, "--model", frontier, "--prices", f"{weak}=0.1,0.1", PROOF)
    profiled = direct[0]["ladder"]["predictions"]
    rows, _ = _route(capsys, *models, "--objective", "cost_weight=1", PROOF)
    ladder = rows[0]["ladder"]
    assert ladder["predictions"] == pytest.approx({"tiny": profiled[weak], "frontier": profiled[frontier]})
    assert ladder["predictions"]["frontier"] - ladder["predictions"]["tiny"] > 0.3  # very different strength
    frontier_cost = (11 * 60 + 300 * 240) / 1e6  # 0.07266 USD: 1 x cost is far below the quality gap
    assert ladder["expected_costs"] == pytest.approx(
        {"tiny": (11 * 0.01 + 300 * 0.01) / 1e6, "frontier": frontier_cost}
    )
    assert ladder["chosen"] == "frontier" and ladder["objective"] == "cost_weight" and ladder["value"] == 1
    rows, _ = _route(capsys, *models, "--objective", "cost_weight=100", PROOF)  # 100 x cost: 7.3 points, above it
    assert rows[0]["ladder"]["chosen"] == "tiny"
    # a benchmark score instead of a profile: a model scoring 0.99 is predicted well above the weak profile
    scored = ["--model", "tiny", "--prior", "tiny=score:0.99", "--prices", "tiny=0.01,0.01"]
    rows, _ = _route(capsys, *scored, "--model", weak, "--prices", f"{weak}=0.1,0.1", PROOF)
    assert rows[0]["ladder"]["predictions"]["tiny"] > profiled[weak] + 0.2
    assert rows[0]["ladder"]["predictions"][weak] == pytest.approx(profiled[weak])


def _traffic(n: int) -> list[str]:
    """Prompts of many kinds and lengths (easy and hard, padded with 0-40 words)."""
    rng = np.random.default_rng(0)
    words = ("apple", "river", "stone", "cloud", "music", "garden", "window", "paper", "light", "ocean", "planet")
    kinds = ["hi", "Thank you so much!", "What is 2 + 2?", PROOF, QUICKSORT, "Write a haiku about autumn leaves."]
    return [f"{kinds[i % len(kinds)]} ({' '.join(rng.choice(words, int(rng.integers(0, 40))))})" for i in range(n)]


def test_a_budget_runs_the_controller_over_the_prompts_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "traffic.txt"
    prompts.write_text("\n".join(_traffic(300)) + "\n", encoding="utf-8")
    ladder = ["--model", MINI, "--model", GPT4O, "--model", O1, "--file", str(prompts)]
    rows, _ = _route(capsys, *ladder, "--objective", "margin=0")  # the best predicted model, at any price
    best = 1000 * np.mean([row["ladder"]["expected_cost"] for row in rows])
    cheapest = 1000 * np.mean([row["ladder"]["expected_costs"][MINI] for row in rows])
    assert cheapest < 0.25 and best > 15  # USD per 1,000 requests: the budgets below lie between
    for budget in (0.5, 2.0):
        rows, err = _route(capsys, *ladder, "--objective", f"budget={budget:g}")
        assert len(rows) == 300
        spend = 1000 * np.mean([row["ladder"]["expected_cost"] for row in rows])
        assert spend == pytest.approx(budget, rel=0.1), budget  # held over the prompts, as on live traffic
        last = rows[-1]["ladder"]
        assert last["objective"] == "budget" and last["budget"] == budget
        assert last["spend"] == pytest.approx(budget, rel=0.1)  # the window's expected spend (no call reported)
        assert len({row["ladder"]["chosen"] for row in rows}) >= 2  # a mix, not one model throughout
        assert f"(budget {budget:g})" in err
    # a budget below the cheapest model's cost cannot be held: every prompt to the cheapest, and the line says so
    rows, err = _route(capsys, *ladder, "--objective", f"budget={cheapest / 10:g}")
    assert {row["ladder"]["chosen"] for row in rows} == {MINI}
    assert "below what the cheapest model costs on these prompts" in err


def test_the_docs_example_chooses_what_the_docs_say(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--model", MINI, "--model", GPT4O, "--model", O1, "--objective", "cost_weight=5"]
    rows, _ = _route(capsys, *args, "hi", PROOF, QUICKSORT)
    assert [row["ladder"]["chosen"] for row in rows] == [MINI, GPT4O, O1]  # docs/models.md, "From the command line"


# ---- refusals -------------------------------------------------------------------------------------------------------
def test_two_model_options_are_refused_with_models(capsys: pytest.CaptureFixture[str]) -> None:
    pair = ["--model", MINI, "--model", GPT4O, "hi"]
    err = _refused(capsys, *pair, "--threshold", "0.5")
    assert "--threshold chooses between two models; with --model give --objective" in err
    err = _refused(capsys, *pair, "--strong-fraction", "0.3")
    assert "--strong-fraction chooses between two models" in err
    err = _refused(capsys, "--objective", "margin=0.1", "--output-tokens", "50", "hi")  # ladder options, no --model
    assert "--objective, --output-tokens apply to routing among priced models: give --model NAME at least twice" in err


def test_model_list_errors_name_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert "give at least two, got ['gpt-4o-mini']" in _refused(capsys, "--model", MINI, "hi")
    assert "--model names ['gpt-4o-mini'] more than once" in _refused(capsys, "--model", MINI, "--model", MINI, "hi")
    assert "no prompt to route" in _refused(capsys, "--model", MINI, "--model", GPT4O)
    err = _refused(capsys, "--model", MINI, "--model", GPT4O, "--router", "fast", "hi")
    assert "--router fast only compares two models" in err


def test_an_unknown_model_without_prior_gets_the_cores_message(capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, "--model", MINI, "--model", "acme-7b", "--prices", "acme-7b=0.1,0.2", "hi")
    assert "the difficulty router has no profile for model 'acme-7b'" in err  # UnknownModelError's own words
    assert "--prior acme-7b=like:<a profiled model>" in err


def test_an_unpriced_model_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, "--model", MINI, "--model", "acme-7b", "--prior", "acme-7b=like:gpt-4o-mini", "hi")
    assert "no price for ['acme-7b']" in err and "give --prices NAME=IN,OUT" in err


def test_prices_and_priors_must_name_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    pair = ["--model", MINI, "--model", GPT4O, "hi"]
    err = _refused(capsys, *pair, "--prices", "gpt4o=1,2")
    assert "--prices names ['gpt4o'], which no --model names (models: ['gpt-4o-mini', 'gpt-4o'])" in err
    err = _refused(capsys, *pair, "--prior", "o3=like:gpt-4o")
    assert "--prior names ['o3'], which no --model names" in err
    assert "--prices gives 'gpt-4o' twice" in _refused(
        capsys, *pair, "--prices", "gpt-4o=1,2", "--prices", "gpt-4o=3,4"
    )


def test_malformed_values_are_refused_by_the_servers_parsers(capsys: pytest.CaptureFixture[str]) -> None:
    pair = ["--model", MINI, "--model", GPT4O, "hi"]
    assert "argument --prices: --prices 'gpt-4o=abc': give NAME=IN,OUT" in _refused(
        capsys, *pair, "--prices", "gpt-4o=abc"
    )
    err = _refused(capsys, *pair, "--prior", "gpt-4o=maybe")
    assert "argument --prior:" in err and "must be 'like:<profiled model>' or 'score:<fraction in (0, 1)>'" in err
    assert "a margin is a difference of probabilities in [0, 1]" in _refused(capsys, *pair, "--objective", "margin=2")
    assert "an objective is '<kind>=<number>'" in _refused(capsys, *pair, "--objective", "cheap")
    assert "argument --output-tokens: must be a whole number of tokens >= 1" in _refused(
        capsys, *pair, "--output-tokens", "0"
    )
