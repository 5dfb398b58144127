"""Tests for the RouteLLM metrics (PGR, APGR, CPT, AUC), the baselines and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routellm_core import datasets as ds
from routellm_core import evaluation as ev
from routellm_core.errors import InvalidInputError, TrainingDataError
from routellm_core.routers.random import RandomRouter

try:
    ds.data_dir()
except ds.DataNotFoundError as exc:  # pragma: no cover - depends on the checkout
    pytest.skip(f"shared benchmark data not available: {exc}", allow_module_level=True)


def _toy(strong: list[float], weak: list[float]) -> ds.Benchmark:
    return ds.Benchmark("toy", tuple(f"prompt {i}" for i in range(len(strong))), np.array(strong), np.array(weak))


# ---- GUIDE.md's table -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "apgr", "cpt50", "cpt80"),
    [("mmlu", 1.29, 0.063, 0.100), ("gsm8k", 1.12, 0.110, 0.177), ("mt_bench", 0.96, 0.083, 0.181)],
)
def test_oracle_reproduces_guide_table(name: str, apgr: float, cpt50: float, cpt80: float) -> None:
    bench = ds.load_benchmark(name)
    result = ev.evaluate(ev.oracle_scores(bench), bench, name="oracle")
    assert result.apgr == pytest.approx(apgr, abs=0.01)
    assert result.cpt50 == pytest.approx(cpt50, abs=0.005)
    assert result.cpt80 == pytest.approx(cpt80, abs=0.005)
    assert result.auc == 1.0
    assert result.pgr_curve.max() >= 1.0  # the oracle can beat always-strong


@pytest.mark.parametrize(("name", "apgr"), [("mmlu", 0.586), ("gsm8k", 0.598), ("mt_bench", 0.548)])
def test_length_heuristic_reproduces_guide_table(name: str, apgr: float) -> None:
    bench = ds.load_benchmark(name)
    assert ev.apgr(ev.length_scores(bench), bench) == pytest.approx(apgr, abs=0.01)


@pytest.mark.parametrize(
    ("name", "tol", "auc_tol"),
    # MT Bench has only 7 weak-better prompts, so one seed's AUC varies by +-0.13
    [("mmlu", 0.02, 0.02), ("gsm8k", 0.03, 0.04), ("mt_bench", 0.06, 0.15)],
)
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


def test_curve_helpers_agree() -> None:
    bench = ds.load_gsm8k()
    scores = ev.length_scores(bench)
    fractions, qualities = ev.cost_quality_curve(scores, bench)
    assert ev.apgr_from_curve(fractions, qualities, bench) == ev.apgr(scores, bench)
    assert ev.cpt_from_curve(fractions, qualities, bench, 0.8) == ev.evaluate(scores, bench).cpt80
    assert qualities[0] == pytest.approx(bench.q_weak) and qualities[-1] == pytest.approx(bench.q_strong)


def test_plot_cost_quality_writes_png(tmp_path: Path) -> None:
    bench = ds.load_mt_bench()
    curves = {
        "oracle": ev.evaluate(ev.oracle_scores(bench), bench),
        "length": ev.cost_quality_curve(ev.length_scores(bench), bench),
    }
    out = ev.plot_cost_quality(curves, bench, tmp_path / "plots" / "mt_bench.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
