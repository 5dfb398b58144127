"""Tests for the RouteLLM metrics (PGR, APGR, CPT, AUC), the baselines and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routellm_core import data as ds
from routellm_core.data.records import Battle
from routellm_core.errors import InvalidInputError, InvalidThresholdError, TrainingDataError
from routellm_core.evaluation import metrics as ev
from routellm_core.routers.random import RandomRouter


def _toy(strong: list[float], weak: list[float]) -> ds.Benchmark:
    return ds.Benchmark("toy", tuple(f"prompt {i}" for i in range(len(strong))), np.array(strong), np.array(weak))


# ---- GUIDE.md's table -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "apgr", "cpt50", "cpt80"),
    [("mmlu", 1.29, 0.063, 0.100), ("gsm8k", 1.12, 0.110, 0.177), ("mt_bench", 0.96, 0.083, 0.181)],
)
@pytest.mark.usefixtures("shared_data_dir")
def test_oracle_reproduces_guide_table(name: str, apgr: float, cpt50: float, cpt80: float) -> None:
    bench = ds.load_benchmark(name)
    result = ev.evaluate(ev.oracle_scores(bench), bench, name="oracle")
    assert result.apgr == pytest.approx(apgr, abs=0.01)
    assert result.cpt50 == pytest.approx(cpt50, abs=0.005)
    assert result.cpt80 == pytest.approx(cpt80, abs=0.005)
    assert result.auc == 1.0
    assert result.pgr_curve.max() >= 1.0  # the oracle can beat always-strong


@pytest.mark.parametrize(("name", "apgr"), [("mmlu", 0.586), ("gsm8k", 0.598), ("mt_bench", 0.548)])
@pytest.mark.usefixtures("shared_data_dir")
def test_length_heuristic_reproduces_guide_table(name: str, apgr: float) -> None:
    bench = ds.load_benchmark(name)
    assert ev.apgr(ev.length_scores(bench), bench) == pytest.approx(apgr, abs=0.01)


@pytest.mark.parametrize(
    ("name", "tol", "auc_tol"),
    # MT Bench has only 7 weak-better prompts, so one seed's AUC varies by +-0.13
    [("mmlu", 0.02, 0.02), ("gsm8k", 0.03, 0.04), ("mt_bench", 0.06, 0.15)],
)
@pytest.mark.usefixtures("shared_data_dir")
def test_random_router_apgr_is_one_half(name: str, tol: float, auc_tol: float) -> None:
    bench = ds.load_benchmark(name)
    result = ev.random_router_result(bench, n_seeds=10)
    assert result.name == "random"
    assert result.apgr == pytest.approx(0.5, abs=tol)
    assert result.auc == pytest.approx(0.5, abs=auc_tol)
    again = ev.random_router_result(bench, n_seeds=10)
    assert again.apgr == result.apgr  # seeded


# ---- definitions -----------------------------------------------------------------------------------------
def test_pgr() -> None:
    assert ev.pgr(0.75, 1.0, 0.5) == 0.5
    np.testing.assert_allclose(ev.pgr(np.array([0.5, 1.0, 1.25]), 1.0, 0.5), [0.0, 1.0, 1.5])
    with pytest.raises(TrainingDataError, match="same quality"):
        ev.pgr(0.5, 0.7, 0.7)


def test_curve_by_hand() -> None:
    # gains strong - weak: +1, 0, -1, +1
    bench = _toy([1, 1, 0, 1], [0, 1, 1, 0])
    fractions, qualities = ev.cost_quality_curve([0.9, 0.5, 0.1, 0.7], bench)
    np.testing.assert_allclose(fractions, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(qualities, [0.5, 0.75, 1.0, 1.0, 0.75])
    result = ev.evaluate([0.9, 0.5, 0.1, 0.7], bench)
    # PGR: 0, 1, 2, 2, 1 -> trapezoid area 0.25 * (0.5 + 1.5 + 2 + 1.5)
    assert result.apgr == pytest.approx(1.375)
    assert (result.cpt50, result.cpt80) == (0.25, 0.25)
    assert result.cpt(1.5) == 0.5 and np.isnan(result.cpt(3.0))
    assert result.quality_at(0.125) == pytest.approx(0.625)
    assert result.auc == 1.0
    assert ev.cpt([0.9, 0.5, 0.1, 0.7], bench, target=2.0) == 0.5


def test_ties_are_interpolated_and_order_free() -> None:
    rng = np.random.default_rng(3)
    strong, weak = rng.integers(0, 2, 200).astype(float), rng.integers(0, 2, 200).astype(float)
    bench = _toy(list(strong), list(weak))
    constant = ev.evaluate(np.full(200, 0.3), bench)
    assert constant.apgr == pytest.approx(0.5)
    np.testing.assert_allclose(constant.curve[1], np.linspace(bench.q_weak, bench.q_strong, 201))
    scores = rng.integers(0, 5, 200).astype(float)  # many ties
    perm = rng.permutation(200)
    shuffled = bench.subset(perm)
    a, b = ev.cost_quality_curve(scores, bench), ev.cost_quality_curve(scores[perm], shuffled)
    np.testing.assert_allclose(a[1], b[1])
    # at group boundaries the curve equals the exact threshold routing (score >= t -> strong)
    for t in (1, 2, 3, 4):
        chosen = scores >= t
        k = int(chosen.sum())
        assert a[1][k] == pytest.approx(np.where(chosen, strong, weak).mean())


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    bench = _toy(list(rng.integers(0, 3, 150).astype(float)), list(rng.integers(0, 3, 150).astype(float)))
    scores = rng.integers(0, 10, 150).astype(float)
    diff = bench.strong - bench.weak
    pos, neg = scores[diff > 0], scores[diff < 0]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size)
    assert ev.auc(scores, bench) == pytest.approx(brute)
    assert ev.auc(-diff, bench) == 0.0
    assert ev.auc(np.zeros(150), bench) == 0.5
    assert np.isnan(ev.auc([0.1, 0.2], _toy([1, 1], [1, 1])))


def test_bad_scores_are_rejected() -> None:
    bench = _toy([1, 0], [0, 1])
    with pytest.raises(InvalidInputError, match="3 scores for 2 prompts"):
        ev.evaluate([0.1, 0.2, 0.3], bench)
    with pytest.raises(InvalidInputError, match="finite"):
        ev.apgr([0.1, float("nan")], bench)
    with pytest.raises(InvalidInputError):
        ev.evaluate_curve(np.array([0.0, 1.0]), np.array([1.0]), bench)


@pytest.mark.usefixtures("shared_data_dir")
def test_evaluate_router_batches_and_matches_direct_scores() -> None:
    bench = ds.load_mt_bench()
    router = RandomRouter(seed=4)
    result = ev.evaluate_router(router, bench, batch_size=7)
    direct = ev.evaluate(router.predict_win_rate(list(bench.prompts)), bench, name="random")
    assert result.name == "random" and result.benchmark == "mt_bench"
    assert result.apgr == direct.apgr and result.auc == direct.auc
    np.testing.assert_array_equal(result.curve[1], direct.curve[1])
    assert set(result.as_dict()) == {"name", "benchmark", "apgr", "cpt50", "cpt80", "auc", "q_strong", "q_weak"}
    with pytest.raises(InvalidInputError):
        ev.evaluate_router(router, bench, batch_size=0)
    assert "| random | mt_bench |" in ev.format_results([result])


@pytest.mark.usefixtures("shared_data_dir")
def test_curve_helpers_agree() -> None:
    bench = ds.load_gsm8k()
    scores = ev.length_scores(bench)
    fractions, qualities = ev.cost_quality_curve(scores, bench)
    assert ev.apgr_from_curve(fractions, qualities, bench) == ev.apgr(scores, bench)
    assert ev.cpt_from_curve(fractions, qualities, bench, 0.8) == ev.evaluate(scores, bench).cpt80
    assert qualities[0] == pytest.approx(bench.q_weak) and qualities[-1] == pytest.approx(bench.q_strong)


@pytest.mark.usefixtures("shared_data_dir")
def test_plot_cost_quality_writes_png(tmp_path: Path) -> None:
    bench = ds.load_mt_bench()
    curves = {
        "oracle": ev.evaluate(ev.oracle_scores(bench), bench),
        "length": ev.cost_quality_curve(ev.length_scores(bench), bench),
    }
    out = ev.plot_cost_quality(curves, bench, tmp_path / "plots" / "mt_bench.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


# ---- ZeroEval benchmarks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["crux", "math_l5"])
@pytest.mark.usefixtures("shared_data_dir")
def test_zeroeval_benchmarks_baselines(name: str) -> None:
    bench = ds.load_benchmark(name)
    oracle = ev.evaluate(ev.oracle_scores(bench), bench, name="oracle")
    rnd = ev.random_router_result(bench, n_seeds=10)
    assert rnd.apgr == pytest.approx(0.5, abs=0.04)
    assert oracle.auc == 1.0 and oracle.apgr > rnd.apgr + 0.25
    assert oracle.pgr_curve.max() > 1.0  # the weak model alone is right on a few prompts


# ---- human-vote battles ------------------------------------------------------------------------------------
def _vote(a: str, b: str, winner: str, prompt: str = "p") -> Battle:
    return Battle(prompt=prompt, model_a=a, model_b=b, winner=winner)  # type: ignore[arg-type]


#: Strong tier {big}, weak tier {small}: two strong wins (0.9, 0.6), a weak win (0.7), a tie (0.2), and two
#: battles with a model in neither tier.
HAND_BATTLES = [
    _vote("big", "small", "model_a", "q1"),
    _vote("small", "big", "model_b", "q2"),
    _vote("big", "small", "model_b", "q3"),
    _vote("small", "big", "tie", "q4"),
    _vote("mid", "small", "model_a", "q5"),
    _vote("big", "mid", "model_a", "q6"),
]
HAND_SCORES = [0.9, 0.6, 0.7, 0.2, 0.0, 1.0]
TIERS = {"strong_models": {"big"}, "weak_models": {"small"}}


def test_evaluate_battles_by_hand() -> None:
    r = ev.evaluate_battles(HAND_SCORES, HAND_BATTLES, **TIERS)
    assert (r.n_battles, r.n_strong_wins, r.n_weak_wins, r.n_ties) == (4, 2, 1, 1)
    # the tie is a negative: positives {0.9, 0.6} vs negatives {0.7, 0.2} -> 3 of 4 pairs ordered right
    assert r.auc == pytest.approx(0.75)
    # at 0.5: 0.9 and 0.6 say strong (right), 0.7 says strong (wrong), 0.2 says weak (right)
    assert r.accuracy == pytest.approx(0.75) and r.majority_accuracy == 0.5 and r.threshold == 0.5
    at_065 = ev.evaluate_battles(HAND_SCORES, HAND_BATTLES, threshold=0.65, **TIERS)
    assert at_065.accuracy == pytest.approx(0.5) and at_065.auc == r.auc  # AUC needs no threshold
    dropped = ev.evaluate_battles(HAND_SCORES, HAND_BATTLES, ties="drop", **TIERS)
    assert (dropped.n_battles, dropped.n_ties) == (3, 1)
    assert dropped.auc == pytest.approx(0.5)  # 0.9 > 0.7 but 0.6 < 0.7
    assert dropped.accuracy == pytest.approx(2 / 3) and dropped.majority_accuracy == pytest.approx(2 / 3)
    # scores on battles outside the tiers are ignored; equal scores count one half
    other = ev.evaluate_battles([0.9, 0.6, 0.7, 0.2, 0.99, 0.01], HAND_BATTLES, **TIERS)
    assert other.as_dict() == r.as_dict()
    assert ev.evaluate_battles([0.5] * 6, HAND_BATTLES, **TIERS).auc == 0.5


def test_evaluate_battles_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="5 scores for 6 battles"):
        ev.evaluate_battles(HAND_SCORES[:5], HAND_BATTLES, **TIERS)
    with pytest.raises(InvalidInputError, match="finite"):
        ev.evaluate_battles([float("nan")] * 6, HAND_BATTLES, **TIERS)
    with pytest.raises(InvalidInputError, match="both tiers"):
        ev.evaluate_battles(HAND_SCORES, HAND_BATTLES, strong_models={"big", "mid"}, weak_models={"mid"})
    with pytest.raises(InvalidInputError, match="ties"):
        ev.evaluate_battles(HAND_SCORES, HAND_BATTLES, ties="half", **TIERS)  # type: ignore[arg-type]
    with pytest.raises(InvalidThresholdError):
        ev.evaluate_battles(HAND_SCORES, HAND_BATTLES, threshold=1.5, **TIERS)
    with pytest.raises(TrainingDataError, match="no battle pits"):
        ev.evaluate_battles(HAND_SCORES, HAND_BATTLES, strong_models={"gpt-4"}, weak_models={"small"})
    with pytest.raises(TrainingDataError, match="tie"):
        ev.evaluate_battles([0.5], [_vote("big", "small", "tie")], ties="drop", **TIERS)


def test_evaluate_router_on_arena_battles(shared_data_dir: Path) -> None:
    path = shared_data_dir / "arena-battles" / "battles.jsonl"
    if not path.is_file():
        pytest.skip(f"shared data file {path} not found")
    battles = ds.arena_battles()
    router = RandomRouter(seed=1)
    result = ev.evaluate_router_on_battles(router, battles, batch_size=16)
    direct = ev.evaluate_battles(router.predict_win_rate([b.prompt for b in battles]), battles, name="random")
    assert result.as_dict() == direct.as_dict() and result.name == "random"
    # the default rule, counted from the raw file: GPT-4-class vs open models of <= 14B parameters
    outcomes: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for row in map(json.loads, fh):
            sides = {row["model_a"]: "model_a", row["model_b"]: "model_b"}
            strong = [m for m in sides if m in ds.ARENA_STRONG_MODELS]
            weak = [m for m in sides if m in ds.ARENA_WEAK_MODELS]
            if strong and weak:
                won = row["winner"]
                outcomes.append("tie" if won.startswith("tie") else "strong" if won == sides[strong[0]] else "weak")
    counts = (result.n_strong_wins, result.n_weak_wins, result.n_ties)
    assert counts == (outcomes.count("strong"), outcomes.count("weak"), outcomes.count("tie"))
    assert result.n_battles == len(outcomes) > 100
    assert 0.0 <= result.auc <= 1.0 and 0.0 <= result.accuracy <= 1.0
    with pytest.raises(InvalidInputError):
        ev.evaluate_router_on_battles(router, battles, batch_size=0)
