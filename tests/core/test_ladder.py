"""Price ladders: per-model prices, per-model predictions of the shipped ``default`` router (aliases, priors,
profiles learned from golden labels) and the offline ladder evaluation (curve, hull, area, escalation)."""

from __future__ import annotations

import numpy as np
import pytest

import routellm_core
from routellm_core import GoldenLabel, InvalidInputError, load_router
from routellm_core.data.prices import call_cost, price_of
from routellm_core.escalation import AgreementCheck, AnswerFeaturesCheck
from routellm_core.escalation.ladder import evaluate_choices
from routellm_core.routers.difficulty import DifficultyRouter
from routellm_core.routers.profiles import ModelPrior, UnknownModelError, resolve_model
from routellm_core.routers.training import train_router
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import ModelLadder

WORDS = [
    *("apple", "river", "stone", "cloud", "music", "garden", "window", "paper"),
    *("light", "table", "ocean", "forest", "silver", "engine", "planet"),
]


def _prompts(rng: np.random.Generator, lo: int, hi: int, n: int, tag: str) -> list[str]:
    return [f"{tag} {i}: " + " ".join(rng.choice(WORDS, int(rng.integers(lo, hi)))) + "?" for i in range(n)]


@pytest.fixture(scope="module")
def default() -> DifficultyRouter:
    router = load_router("default")
    assert isinstance(router, DifficultyRouter)
    return router


# ---- prices ----------------------------------------------------------------------------------------------------
def test_prices_come_from_the_maintained_table_and_yours_override() -> None:
    assert price_of("gpt-4o-mini") == (0.15, 0.6)  # OpenAI's list price, from genai-prices' bundled table
    assert price_of("openai:gpt-4o") == price_of("gpt-4o-2024-08-06") == (2.5, 10.0)  # provider prefix, dated version
    assert price_of("anthropic/claude-3-5-sonnet-20241022") == (3.0, 15.0)
    assert price_of("together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo") == (0.18, 0.18)
    assert price_of("acme-7b") is None and call_cost("acme-7b", 1000, 500) is None
    mine = {"acme-7b": (1.0, 2.0), "gpt-4o": (1.0, 1.0)}
    assert price_of("acme-7b", mine) == (1.0, 2.0)
    assert price_of("openai:gpt-4o", mine) == (1.0, 1.0)  # yours first, found without the provider prefix
    assert call_cost("acme-7b", 1_000, 500, mine) == pytest.approx(0.002)
    assert call_cost("gpt-4o", 1_000, 500) == pytest.approx(0.0075)  # 2.50 / 10.00 USD per 1M tokens
    with pytest.raises(InvalidInputError, match="price of 'acme-7b'"):
        price_of("acme-7b", {"acme-7b": (1.0,)})
    with pytest.raises(InvalidInputError, match="output_tokens must be finite and non-negative"):
        call_cost("gpt-4o", 10, -1)
    with pytest.raises(InvalidInputError, match="non-empty string"):
        price_of("")


# ---- per-model predictions ----------------------------------------------------------------------------------------
def test_aliases_resolve_provider_names_and_dated_versions(default: DifficultyRouter) -> None:
    known = default.models
    assert len(known) == 114 and "gpt-4o-2024-08-06" in known
    cases = {
        "gpt-4o-2024-08-06": "gpt-4o-2024-08-06",
        "openai:gpt-4o": "gpt-4o-2024-08-06",  # undated: the latest profiled version
        "gpt-4o-2024-06-01": "gpt-4o-2024-05-13",  # the version in use on that date
        "anthropic/claude-3-5-sonnet-20241022": "claude-3-5-sonnet-20240620",
        "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
        "meta-llama/Meta-Llama-3.1-70B-Instruct": "Meta-Llama-3.1-70B-Instruct",
        "GPT-4O-MINI-2024-07-18": "gpt-4o-mini-2024-07-18",
    }
    for name, profiled in cases.items():
        assert resolve_model(name, known) == profiled, name
    assert resolve_model("o1", known) is None  # o1 is not o1-preview
    assert resolve_model("acme-7b", known) is None


def test_predict_success_is_a_matrix_over_models_with_aliases(default: DifficultyRouter) -> None:
    texts = ["What is 2 + 2?", "Prove that there are infinitely many primes.", "hi"]
    out = default.predict_success(texts, ["openai:gpt-4o", "gpt-4o-mini", "Meta-Llama-3-8B-Instruct"])
    assert out.shape == (3, 3) and ((out > 0) & (out < 1)).all()
    same = default.predict_success(texts, ["gpt-4o-2024-08-06"])[:, 0]
    np.testing.assert_allclose(out[:, 0], same, rtol=1e-12)
    np.testing.assert_allclose(default.success_rate(texts, "gpt-4o-mini"), out[:, 1], rtol=1e-12)
    assert (out[:, 0] > out[:, 2]).all()  # gpt-4o is profiled above Llama-3-8B on these prompts
    with pytest.raises(UnknownModelError, match=r"no profile for model 'acme-7b'.*add_model"):
        default.predict_success(texts, ["gpt-4o", "acme-7b"])
    with pytest.raises(InvalidInputError, match="at least one model"):
        default.predict_success(texts, [])


def test_a_mistyped_model_gets_a_did_you_mean_before_the_remedy(default: DifficultyRouter) -> None:
    texts = ["What is 2 + 2?"]
    for typo, meant in [
        ("openai:gpt-4o-mnii", "gpt-4o-mini"),
        ("gpt4o-mini", "gpt-4o-mini"),
        ("claude-3-5-sonet", "claude-3-5-sonnet"),
        ("athene-70c", "Athene-70B"),
    ]:
        with pytest.raises(UnknownModelError) as info:
            default.predict_success(texts, [typo])
        message = str(info.value)
        assert f"did you mean {meant!r}?" in message, message
        assert message.index("did you mean") < message.index("state a prior") < message.index("add_model")
        assert resolve_model(meant, default.models) is not None  # the suggestion is a name the router resolves
    for other in ("acme-7b", "gpt-5", "gemini-2.0-flash", "o1"):  # nothing close, or another version: no guess
        with pytest.raises(UnknownModelError, match="state a prior") as info:
            default.predict_success(texts, [other])
        assert "did you mean" not in str(info.value)


def test_a_mistyped_unpriced_model_gets_a_did_you_mean_before_the_remedy() -> None:
    assert price_of("gpt-4o-mnii") is None
    with pytest.raises(InvalidInputError) as info:
        ModelLadder(["gpt-4o", "gpt-4o-mnii"])
    message = str(info.value)
    assert message.startswith("no price for ['gpt-4o-mnii'] (did you mean 'gpt-4o-mini'?)"), message
    assert "give prices={name: " in message
    with pytest.raises(InvalidInputError) as info:  # your own prices' names are candidates too; one guess each
        ModelLadder(["my-modle", "claude-3-haku", "mystery"], prices={"my-model": (1.0, 1.0)})
    message = str(info.value)
    assert "(did you mean 'my-model' for 'my-modle', 'claude-3-haiku' for 'claude-3-haku'?)" in message, message
    assert price_of("claude-3-haiku") is not None
    with pytest.raises(InvalidInputError, match=r"no price for \['mystery'\]: the shipped") as info:
        ModelLadder(["gpt-4o", "mystery"])  # nothing close: no guess
    assert "did you mean" not in str(info.value)


def test_an_unknown_model_starts_from_the_prior_you_state(default: DifficultyRouter, tmp_path) -> None:
    texts = ["What is 2 + 2?", "Prove that there are infinitely many primes.", "Write a haiku about rain."]
    like = default.predict_success(texts, ["acme-7b"], priors={"acme-7b": ModelPrior(like="gpt-4o-mini")})
    np.testing.assert_allclose(like, default.predict_success(texts, ["gpt-4o-mini-2024-07-18"]), rtol=1e-12)
    low, high = (
        default.predict_success(texts, ["acme-7b"], priors={"acme-7b": ModelPrior(score=s)})[:, 0] for s in (0.3, 0.8)
    )
    assert (high > low + 0.2).all()
    # a score placed among the same benchmark's scores of profiled models: a score equal to gpt-4o's lands near it
    ref = {"gpt-4o": 0.72, "Meta-Llama-3-8B-Instruct": 0.41, "gpt-3.5-turbo-0125": 0.5}
    placed = default.predict_success(texts, ["acme"], priors={"acme": ModelPrior(score=0.72, reference=ref)})[:, 0]
    gpt4o, llama = default.predict_success(texts, ["gpt-4o", "Meta-Llama-3-8B-Instruct"]).T
    assert (np.abs(placed - gpt4o) < np.abs(placed - llama)).all()
    with pytest.raises(InvalidInputError, match="exactly one of like"):
        ModelPrior()
    with pytest.raises(InvalidInputError, match="strictly between 0 and 1"):
        ModelPrior(score=82)
    router = train_router(None, [], init=default)  # a copy: add_model changes the router it is called on
    router.add_model("acme-7b", ModelPrior(like="gpt-4o-mini"))
    assert "acme-7b" in router.models and "acme-7b" not in default.models
    with pytest.raises(InvalidInputError, match="already has a profile"):
        router.add_model("openai:gpt-4o-mini", ModelPrior(like="gpt-4o"))
    loaded = load_router(router.save(tmp_path / "with-acme"))
    np.testing.assert_allclose(loaded.predict_success(texts, ["acme-7b"]), like, rtol=1e-12)
    assert loaded.metadata["model_priors"] == {"acme-7b": "like gpt-4o-mini"}


def test_a_prior_written_as_the_server_takes_it_is_the_same_prior(default: DifficultyRouter) -> None:
    texts = ["What is 2 + 2?", "Prove that there are infinitely many primes."]
    for written, prior in [("like:gpt-4o-mini", ModelPrior(like="gpt-4o-mini")), ("score:0.8", ModelPrior(score=0.8))]:
        assert ModelPrior.parse(written) == prior
        np.testing.assert_allclose(
            default.predict_success(texts, ["acme"], priors={"acme": written}),
            default.predict_success(texts, ["acme"], priors={"acme": prior}),
            rtol=1e-12,
        )
    router = train_router(None, [], init=default)
    router.add_model("acme-7b", "like:gpt-4o-mini")
    assert router.metadata["model_priors"]["acme-7b"] == "like gpt-4o-mini"
    for bad, match in [
        ("lik:gpt-4o", "the prior of 'acme' must be 'like:<profiled model>' or 'score:"),
        ("score:82", "the prior of 'acme': ModelPrior.score must be a fraction"),
        ("score:high", "the prior of 'acme': ModelPrior.score must be a fraction"),
        ("like:", "must be 'like:<profiled model>'"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            default.predict_success(texts, ["acme"], priors={"acme": bad})
    with pytest.raises(InvalidInputError, match="the prior of 'acme-8b' must be a ModelPrior, got int"):
        router.add_model("acme-8b", 3)  # type: ignore[arg-type]
    options = RoutingOptions(priors={"acme": "score:0.7", "acme-7b": ModelPrior(like="gpt-4o")})
    assert options.priors == {"acme": ModelPrior(score=0.7), "acme-7b": ModelPrior(like="gpt-4o")}


def test_a_score_placed_between_two_references_is_predicted_between_them_on_every_prompt(
    default: DifficultyRouter,
) -> None:
    """A public score between two profiled models' scores on the same benchmark: the new model is predicted between
    them prompt by prompt (it once took the shape of the profiles nearest its accuracy and came out below both)."""
    texts = [
        "What is the capital of France?",
        "Write a haiku about autumn.",
        "How do I boil an egg?",
        "Translate 'good morning' to Spanish.",
        "Why is the sky blue?",
        "Prove that there are infinitely many primes.",
        "Write a SQL query that counts users by country.",
        "Implement a thread-safe LRU cache in Rust and explain its complexity.",
    ]
    ref = {"gpt-4o": 0.887, "gpt-4o-mini": 0.82}
    for score in (0.83, 0.85, 0.88):
        prior = {"x": ModelPrior(score=score, reference=ref)}
        mini, big, placed = default.predict_success(texts, ["gpt-4o-mini", "gpt-4o", "x"], priors=prior).T
        low, high = np.minimum(mini, big), np.maximum(mini, big)
        assert ((placed >= low - 1e-9) & (placed <= high + 1e-9)).all(), (score, placed, mini, big)
    closer = default.predict_success(texts, ["x"], priors={"x": ModelPrior(score=0.88, reference=ref)})[:, 0]
    farther = default.predict_success(texts, ["x"], priors={"x": ModelPrior(score=0.83, reference=ref)})[:, 0]
    assert closer.mean() > farther.mean()  # a higher public score, a higher prediction (on average: the references'
    # own profiles cross on some prompts, and the placed one follows them)


def test_golden_labels_profile_a_model_the_default_never_saw(default: DifficultyRouter) -> None:
    """acme-7b is right exactly on the short prompts: the fitted profile predicts it higher on short than on long
    prompts it was not trained on; the known model keeps a warm-started profile, the others their own."""
    rng = np.random.default_rng(0)
    short, long_ = _prompts(rng, 3, 8, 60, "short"), _prompts(rng, 150, 300, 60, "long")
    labels = [GoldenLabel(prompt=p, scores={"acme-7b": 1.0, "gpt-4o-2024-08-06": 1.0}) for p in short[:40]]
    labels += [GoldenLabel(prompt=p, scores={"acme-7b": 0.0, "gpt-4o-2024-08-06": 1.0}) for p in long_[:40]]
    with pytest.raises(UnknownModelError):
        default.predict_success(short, ["acme-7b"])
    router = train_router(None, labels, init="default")
    assert "acme-7b" in router.models and set(default.models) < set(router.models)
    held = router.predict_success(short[40:] + long_[40:], ["acme-7b", "gpt-4o", "claude-3-haiku"])
    on_short, on_long = held[:20, 0], held[20:, 0]
    assert on_short.min() > 0.8 and on_long.max() < 0.2  # the mean profile it started from cannot do this
    assert router.metadata["profiles_refit"]["acme-7b"] == {"labels": 80, "start": "mean profile"}
    assert router.metadata["profiles_refit"]["gpt-4o-2024-08-06"]["start"] == "own profile"
    before = default.predict_success(long_[40:], ["gpt-4o"])[:, 0]
    assert (held[20:, 1] > before).all()  # gpt-4o was right on every long prompt: its profile moved up there
    np.testing.assert_allclose(
        held[:, 2], default.predict_success(short[40:] + long_[40:], ["claude-3-haiku"])[:, 0], rtol=1e-12
    )  # not labelled: untouched


# ---- ladder evaluation ----------------------------------------------------------------------------------------------
def _three_rungs() -> tuple[list[str], dict, dict]:
    """Models A < B < C costing 1, 2, 4 per prompt; A is right on the first third, B on two thirds, C on all."""
    prompts = [f"p{i}" for i in range(30)]
    tier = np.repeat([0, 1, 2], 10)
    quality = {"C": np.ones(30), "A": (tier == 0) * 1.0, "B": (tier <= 1) * 1.0}
    costs = {"C": np.full(30, 4.0), "A": np.full(30, 1.0), "B": np.full(30, 2.0)}
    return prompts, quality, costs


def test_a_perfect_router_beats_the_hull_and_a_blind_one_is_on_it() -> None:
    prompts, quality, costs = _three_rungs()
    curve = routellm_core.evaluate_ladder(quality, prompts, quality, costs)  # predictions = the truth
    assert curve.models == ("A", "B", "C")
    assert curve.singles["B"] == pytest.approx((2.0, 2 / 3))
    assert curve.cost_for(1.0) == pytest.approx(7 / 3)  # each tier to the cheapest model that is right on it
    assert curve.hull_cost_for(1.0) == pytest.approx(4.0)
    assert curve.hull_quality_at(7 / 3) == pytest.approx(2 / 3 + (1 / 3) * (1 / 3) / 2)  # on the B -> C segment
    assert curve.quality_at(1.0) == pytest.approx(1 / 3) and np.isnan(curve.quality_at(0.5))
    assert curve.area_above_hull() > 0.1
    last = curve.points[-1]
    assert tuple(last) == pytest.approx((7 / 3, 1.0))
    np.testing.assert_allclose(curve.shares[-1], [1 / 3, 1 / 3, 1 / 3], rtol=1e-12)
    # knowing only each model's mean quality, a router picks one model per λ: its curve is the hull
    means = {m: np.full(30, q.mean()) for m, q in quality.items()}
    averages = routellm_core.evaluate_ladder(means, prompts, quality, costs)
    assert len(averages.points) == 3 and averages.area_above_hull() == pytest.approx(0.0, abs=1e-12)
    blind = routellm_core.evaluate_ladder(np.full((30, 3), 0.5), prompts, quality, costs)  # ties: the cheapest
    assert len(blind.points) == 1 and blind.area_above_hull() < -0.2
    for objective in ("margin", "max_cost"):
        other = routellm_core.evaluate_ladder(quality, prompts, quality, costs, objective=objective)
        assert other.points[-1, 1] == pytest.approx(1.0)
        assert other.settings[-1]["objective"] == objective
    assert routellm_core.evaluate_ladder(quality, prompts, quality, costs, objective="margin").cost_for(
        1.0
    ) == pytest.approx(7 / 3)


def test_escalation_up_the_ladder_pays_for_every_call() -> None:
    """A and B (cheap) agree exactly on the easy 80%, where both are right; C is right everywhere. Starting at A
    and escalating: easy prompts pay A + B (one call), hard ones A + B + C (two calls)."""
    n = 50
    easy = np.arange(n) < 40
    prompts = [f"q{i}" for i in range(n)]
    quality = {"A": easy * 1.0, "B": easy * 1.0, "C": np.ones(n)}
    costs = {"A": np.full(n, 1.0), "B": np.full(n, 1.5), "C": np.full(n, 10.0)}
    answers = {
        "A": ["42" if e else "1" for e in easy],
        "B": ["42.0" if e else "2" for e in easy],  # the same number as A's, written differently
        "C": ["42" if e else "7" for e in easy],
    }
    rising = np.tile([0.5, 0.6, 0.9], (n, 1))  # each costlier rung predicted better: the climb goes through all
    curve = routellm_core.evaluate_ladder(
        rising, prompts, quality, costs, answers=answers, check=AgreementCheck("number")
    )
    cost = 0.8 * 2.5 + 0.2 * 12.5
    assert curve.cost_for(1.0) == pytest.approx(cost)
    i = int(np.argmax(curve.points[:, 1]))
    assert curve.settings[i]["escalate"] and curve.calls[i] == pytest.approx(1.2)
    assert curve.escalated[i] == pytest.approx(0.2)
    np.testing.assert_allclose(curve.shares[i], [0.0, 0.8, 0.2])  # B serves when it agrees with A
    assert curve.area_above_hull() > 0
    exact = routellm_core.evaluate_ladder(
        rising, prompts, quality, costs, answers=answers, check=AgreementCheck("exact")
    )
    # "42" vs "42.0" as strings: the climb pays A + B + C = 12.5 on every prompt, so C alone (10) is cheaper
    assert exact.cost_for(1.0) == pytest.approx(10.0)
    # from B, one rung above: comparing B with C would decide nothing, so only C is called (10, not 11.5)
    from_b = evaluate_choices(
        np.ones((1, n), dtype=int), quality, costs, answers=answers, check=AgreementCheck("number")
    )
    j = [setting["escalate"] for setting in from_b.settings].index(True)
    assert tuple(from_b.points[j]) == pytest.approx((10.0, 1.0)) and from_b.calls[j] == 1.0
    blind = routellm_core.evaluate_ladder(np.full((n, 3), 0.5), prompts, quality, costs, answers=answers)
    assert np.all(blind.calls == 1.0)  # no costlier rung is predicted better: nothing to climb to


def test_a_one_answer_check_is_refused_by_the_offline_ladder() -> None:
    """The offline climb compares consecutive models' answers; a check reading one answer would be scored as if it
    compared them."""
    n = 4
    quality = {m: np.ones(n) for m in "ABC"}
    costs = {"A": np.full(n, 1.0), "B": np.full(n, 2.0), "C": np.full(n, 3.0)}
    answers = {m: ["1"] * n for m in "ABC"}
    with pytest.raises(InvalidInputError, match="reads one answer"):
        evaluate_choices(np.zeros((1, n), dtype=int), quality, costs, answers=answers, check=AnswerFeaturesCheck())


def test_the_climb_skips_a_rung_not_predicted_better() -> None:
    """B (predicted below A) agrees with A's wrong answers on the hard 20%: a climb through it would serve them. The
    climb from A skips it: A and C agree on the easy 80% (C serves), and on the hard ones C and D disagree (D
    serves, right): quality 1 at 0.8 x 2.1 + 0.2 x 12.1 = 4.1, where D alone costs 10."""
    n = 50
    easy = np.arange(n) < 40
    prompts = [f"q{i}" for i in range(n)]
    quality = {"A": easy * 1.0, "B": np.zeros(n), "C": easy * 1.0, "D": np.ones(n)}
    costs = {"A": np.full(n, 0.1), "B": np.full(n, 1.0), "C": np.full(n, 2.0), "D": np.full(n, 10.0)}
    answers = {
        "A": ["42" if e else "1" for e in easy],
        "B": ["1"] * n,
        "C": ["42" if e else "5" for e in easy],
        "D": ["42" if e else "7" for e in easy],
    }
    pred = np.tile([0.5, 0.4, 0.7, 0.9], (n, 1))
    curve = routellm_core.evaluate_ladder(pred, prompts, quality, costs, answers=answers, check="agreement")
    assert curve.cost_for(1.0) == pytest.approx(0.8 * 2.1 + 0.2 * 12.1)
    through_b = evaluate_choices(np.zeros((1, n), dtype=int), quality, costs, answers=answers)
    assert through_b.points[:, 1].max() < 1.0  # without predictions the climb goes through B and serves its answers


def test_ladder_inputs_are_checked() -> None:
    prompts, quality, costs = _three_rungs()
    with pytest.raises(InvalidInputError, match="at least two models"):
        routellm_core.evaluate_ladder(np.ones((30, 1)), prompts, {"A": quality["A"]}, costs)
    with pytest.raises(InvalidInputError, match="costs has no entry for model 'C'"):
        routellm_core.evaluate_ladder(quality, prompts, quality, {"A": costs["A"], "B": costs["B"]})
    with pytest.raises(InvalidInputError, match="expected \\(30, 3\\)"):
        routellm_core.evaluate_ladder(np.ones((30, 2)), prompts, quality, costs)
    with pytest.raises(InvalidInputError, match="unknown objective"):
        routellm_core.evaluate_ladder(quality, prompts, quality, costs, objective="cheapest")
    with pytest.raises(InvalidInputError, match="29 prompts"):
        routellm_core.evaluate_ladder(quality, prompts[:29], quality, costs)
    with pytest.raises(InvalidInputError, match="answers has no entry for model"):
        routellm_core.evaluate_ladder(quality, prompts, quality, costs, answers={"A": [None] * 30})
    with pytest.raises(InvalidInputError, match="must not be negative"):
        routellm_core.evaluate_ladder(quality, prompts, quality, {**costs, "A": -costs["A"]})


def test_the_default_router_on_a_real_ladder_with_escalation(default: DifficultyRouter, shared_data_dir) -> None:
    """GSM8K, Llama-3.1-8B < gpt-4o-mini < gpt-4o priced per token: escalation along the ladder reaches gpt-4o's
    accuracy at well under gpt-4o's cost (issue 20 found 0.16-0.33x for the two-cheap-model version)."""
    from routellm_core.data.zeroeval_answers import load_answer_table

    table = load_answer_table("gsm")
    idx = np.random.default_rng(0).permutation(len(table.prompts))[:400]
    prompts = [table.prompts[i] for i in idx]
    ladder = {
        "Meta-Llama-3.1-8B-Instruct": "together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
        "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
        "gpt-4o-2024-08-06": "openai:gpt-4o",
    }
    quality = {m: np.array([table.correct[m][i] for i in idx]) for m in ladder}
    costs = {}
    for m, ref in ladder.items():
        p_in, p_out = price_of(ref)
        costs[m] = (
            np.array([len(prompts[j]) / 4 * p_in + table.output_chars[m][i] / 4 * p_out for j, i in enumerate(idx)])
            / 1e6
        )
    answers = {m: [table.answers[m][i] for i in idx] for m in ladder}
    plain = routellm_core.evaluate_ladder(default, prompts, quality, costs)
    assert plain.models == tuple(ladder) and np.isfinite(plain.area_above_hull())
    assert plain.points[0] == pytest.approx(plain.singles["Meta-Llama-3.1-8B-Instruct"])  # λ = ∞: all cheapest
    esc = routellm_core.evaluate_ladder(
        default, prompts, quality, costs, answers=answers, check=AgreementCheck("number")
    )
    best_cost, best_q = esc.singles["gpt-4o-2024-08-06"]
    assert esc.cost_for(best_q) < 0.6 * best_cost
    assert esc.area_above_hull() > plain.area_above_hull()


def test_the_output_length_assumed_before_any_report_is_the_ladders_to_set() -> None:
    text = "Prove that there are infinitely many primes."
    short, long_ = ModelLadder(["gpt-4o", "gpt-4o-mini"]), ModelLadder(["gpt-4o", "gpt-4o-mini"], output_tokens=3000)
    usd_out = np.array([price_of("gpt-4o")[1], price_of("gpt-4o-mini")[1]])  # type: ignore[index]
    np.testing.assert_allclose(long_.expected_costs(text) - short.expected_costs(text), 2700 * usd_out / 1e6)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(InvalidInputError, match="output_tokens must be a positive int"):
            ModelLadder(["gpt-4o", "gpt-4o-mini"], output_tokens=bad)  # type: ignore[arg-type]
