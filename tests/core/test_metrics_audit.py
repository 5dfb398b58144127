"""The published routing metrics against independent, brute-force versions of their definitions.

APGR and CPT on hand-computed cases; the single models' hull (RouterBench's zero router: the best random mix at a
mean budget, a two-variable linear programme solved here over every pair); the router's ladder curve (every policy of
the ``cost_weight`` sweep enumerated here prompt by prompt); the noise the benchmarks call a difference.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from routellm_core import data as ds
from routellm_core.errors import InvalidInputError
from routellm_core.escalation.ladder import evaluate_ladder
from routellm_core.evaluation import metrics as ev


# ---- brute force, from the definitions --------------------------------------------------------------------
def _best_mix(points: list[tuple[float, float]], budget: float) -> float:
    """Best mean quality of a random mix of (cost, quality) points at mean cost <= budget (NaN: none affordable)."""
    best = -math.inf
    for c, q in points:
        if c <= budget + 1e-12:
            best = max(best, q)
    for (c1, q1), (c2, q2) in itertools.permutations(points, 2):
        if c1 <= budget + 1e-12 < c2:
            best = max(best, q1 + (budget - c1) / (c2 - c1) * (q2 - q1))
    return math.nan if best == -math.inf else best


def _least_cost(points: list[tuple[float, float]], quality: float) -> float | None:
    """Least mean cost of a random mix of (cost, quality) points reaching mean ``quality`` (None: none does)."""
    best = math.inf
    for c, q in points:
        if q >= quality - 1e-12:
            best = min(best, c)
    for (c1, q1), (c2, q2) in itertools.permutations(points, 2):
        if q1 < quality - 1e-12 and q2 > quality:
            best = min(best, c1 + (quality - q1) / (q2 - q1) * (c2 - c1))
    return None if best == math.inf else best


def _cost_weight_policies(pred: np.ndarray, quality: np.ndarray, costs: np.ndarray) -> list[tuple[float, float]]:
    """(mean cost, mean quality) of every policy "each prompt to argmax p_m - λ ĉ_m" (ties to the cheaper model).

    ``quality`` and ``costs`` are ``(models, prompts)`` with the models cheapest (by mean cost) first. The choice of a
    prompt only changes where two models tie on it, so one λ strictly between each two consecutive ties, one below
    the first and one above the last give every policy.
    """
    n_models, n = quality.shape
    mean = [float(np.mean(costs[m])) for m in range(n_models)]
    ties = set()
    for i in range(n):
        for a, b in itertools.combinations(range(n_models), 2):
            if mean[b] > mean[a] and pred[i, b] > pred[i, a]:
                ties.add((pred[i, b] - pred[i, a]) / (mean[b] - mean[a]))
    t = sorted(ties)
    lams = [0.0] + [(x + y) / 2 for x, y in itertools.pairwise(t)] + ([t[-1] * 2 + 1] if t else []) + [math.inf]
    points = []
    for lam in lams:
        cost = qual = 0.0
        for i in range(n):
            if lam == math.inf:
                pick = 0
            else:
                values = [pred[i, m] - lam * mean[m] for m in range(n_models)]
                pick = values.index(max(values))  # the first maximum: the cheaper model
            cost += costs[pick, i]
            qual += quality[pick, i]
        points.append((cost / n, qual / n))
    return points


def _random_ladder(seed: int, n: int, k: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """A ladder of ``k`` models (dearer ones better on average) and predictions that know something of the truth."""
    rng = np.random.default_rng(seed)
    quality = {f"m{j}": (rng.random(n) < 0.4 + 0.15 * j).astype(float) for j in range(k)}
    costs = {f"m{j}": rng.random(n) * 3**j + 0.01 for j in range(k)}
    pred = np.column_stack([0.6 * quality[f"m{j}"] + 0.4 * rng.random(n) for j in range(k)])
    return quality, costs, pred


def _uninformed_ladder() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """23 prompts, 3 models, predictions that know nothing: sweeping λ exactly at the ties lost a policy here."""
    rng = np.random.default_rng(7)
    n, k = int(rng.integers(1, 25)), int(rng.integers(2, 5))
    quality = {f"m{j}": rng.integers(0, 2, n).astype(float) for j in range(k)}
    costs = {f"m{j}": rng.random(n) * (j + 1) + 0.01 for j in range(k)}
    return quality, costs, rng.random((n, k))


def _in_ladder_order(quality, costs, pred):
    names = list(quality)
    order = np.argsort([np.mean(costs[m]) for m in names], kind="stable")
    q = np.array([quality[names[j]] for j in order])
    c = np.array([costs[names[j]] for j in order])
    return q, c, np.asarray(pred)[:, order]


# ---- two models: APGR and CPT by hand -----------------------------------------------------------------------
def test_apgr_and_cpt_with_tied_scores_by_hand() -> None:
    # gains strong - weak: 1, 0, 0, 1, -1; scores 0.5 x3 (gains 1, 0, 1) then 0.2 x2 (gains 0, -1); q_weak 0.4, gap 0.2
    bench = ds.Benchmark("hand", tuple("abcde"), np.array([1, 0, 1, 1, 0.0]), np.array([0, 0, 1, 0, 1.0]))
    r = ev.evaluate([0.5, 0.5, 0.2, 0.5, 0.2], bench)
    # the tied top group is split in expectation: 2/3 of its gain of 2 per prompt sent
    assert r.pgr_curve == pytest.approx([0, 2 / 3, 4 / 3, 2, 1.5, 1])
    assert r.apgr == pytest.approx(0.2 * (2 / 3 + 4 / 3 + 2 + 1.5 + 0.5))  # trapezoid: 1.2
    assert (r.cpt50, r.cpt80) == (pytest.approx(0.2), pytest.approx(0.4))


def test_constant_router_is_the_straight_line() -> None:
    bench = ds.Benchmark("hand", tuple("abcd"), np.array([1, 1, 0, 1.0]), np.array([0, 1, 0, 0.0]))
    r = ev.evaluate([0.3] * 4, bench)
    assert r.pgr_curve == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert (r.apgr, r.cpt50, r.cpt80) == (pytest.approx(0.5), pytest.approx(0.5), pytest.approx(1.0))


def test_one_prompt_and_no_gap() -> None:
    r = ev.evaluate([0.9], ds.Benchmark("one", ("p",), np.array([1.0]), np.array([0.0])))
    assert (r.apgr, r.cpt50) == (pytest.approx(0.5), pytest.approx(1.0))
    with pytest.raises(Exception, match="same quality"):
        ev.evaluate([0.1, 0.2], ds.Benchmark("flat", ("a", "b"), np.array([1.0, 0.0]), np.array([0.0, 1.0])))


# ---- the single models' hull: the best random mix ----------------------------------------------------------
@pytest.mark.parametrize(
    "singles",
    [
        [(1.0, 0.5), (2.0, 0.9), (10.0, 0.8)],  # the dearest model is worse than a cheaper one
        [(1.0, 0.5), (1.0, 0.6), (3.0, 0.7), (3.0, 0.9), (9.0, 0.95)],  # equal costs
        [(1.0, 0.9), (2.0, 0.5), (10.0, 0.8)],  # the cheapest model is the best
        [(1.0, 0.2), (2.0, 0.3), (3.0, 0.9), (4.0, 0.91), (8.0, 1.0)],  # a model under the hull
    ],
)
def test_hull_is_the_best_random_mix(singles: list[tuple[float, float]]) -> None:
    n = 2  # each model's per-prompt costs and qualities average to its point
    quality = {f"m{j}": [q, q] for j, (_, q) in enumerate(singles)}
    costs = {f"m{j}": [c, c] for j, (c, _) in enumerate(singles)}
    curve = evaluate_ladder(np.full((n, len(singles)), 0.5), ["a", "b"], quality, costs)
    for budget in np.linspace(1.0, 10.0, 37):
        assert curve.hull_quality_at(budget) == pytest.approx(_best_mix(singles, budget), abs=1e-12)
    for target in (0.5, 0.65, 0.9, 0.95, 1.0):
        want = _least_cost(singles, target)
        got = curve.hull_cost_for(target)
        assert got == (None if want is None else pytest.approx(want, abs=1e-12))


def test_area_needs_positive_costs_on_its_log_axis() -> None:
    curve = evaluate_ladder(
        np.array([[0.9, 0.9], [0.1, 0.9]]), ["a", "b"], {"a": [1, 0], "b": [1, 1]}, {"a": [0, 0], "b": [1, 1]}
    )
    with pytest.raises(InvalidInputError, match="positive mean costs"):
        curve.area_above_hull()


# ---- the router's ladder curve: every policy of the sweep --------------------------------------------------
@pytest.mark.parametrize(("seed", "n", "k"), [(None, 23, 3), (1, 12, 4), (2, 30, 2), (3, 1, 3), (4, 17, 5)])
def test_cost_weight_curve_keeps_every_policy(seed: int | None, n: int, k: int) -> None:
    """A curve read on every policy's mixes: area above the hull, quality at each budget, cost at the best quality."""
    quality, costs, pred = _uninformed_ladder() if seed is None else _random_ladder(seed, n, k)
    curve = evaluate_ladder(pred, [str(i) for i in range(n)], quality, costs)
    q, c, p = _in_ladder_order(quality, costs, pred)
    policies = _cost_weight_policies(p, q, c)
    singles = [(float(c[m].mean()), float(q[m].mean())) for m in range(k)]
    budgets = np.geomspace(min(s[0] for s in singles), max(s[0] for s in singles), 101)
    gaps = [_best_mix(policies, b) - _best_mix(singles, b) for b in budgets]
    assert curve.area_above_hull() == pytest.approx(float(np.mean(gaps)), abs=1e-12)
    for b in budgets:
        assert curve.quality_at(b) == pytest.approx(_best_mix(policies, b), abs=1e-12)
    best = max(q_ for _, q_ in singles)
    want = _least_cost(policies, best)
    assert curve.cost_for(best) == (None if want is None else pytest.approx(want, abs=1e-12))


@pytest.mark.parametrize("seed", [0, 1])
def test_cost_weight_curve_is_not_thinned_on_a_benchmark_sized_ladder(seed: int) -> None:
    """400 prompts on three models tie at up to 800 values of λ; a sweep cut to 400 of them lost policies (up to
    0.004 of quality at a budget here)."""
    quality, costs, pred = _random_ladder(seed, 400, 3)
    curve = evaluate_ladder(pred, [str(i) for i in range(400)], quality, costs)
    q, c, p = _in_ladder_order(quality, costs, pred)
    policies = _cost_weight_policies(p, q, c)
    for b in np.geomspace(c.mean(axis=1).min(), c.mean(axis=1).max(), 41):
        assert curve.quality_at(b) == pytest.approx(_best_mix(policies, b), abs=1e-12)


# ---- noise -----------------------------------------------------------------------------------------------
def _random_apgr_sd(strong: np.ndarray, weak: np.ndarray, draws: int = 200) -> float:
    """Standard deviation of one random router's APGR: prompts sent in a random order (no ties)."""
    rng = np.random.default_rng(0)
    gap = strong.mean() - weak.mean()
    out = []
    for _ in range(draws):
        gained = np.r_[0.0, np.cumsum((strong - weak)[rng.permutation(len(strong))])] / len(strong) / gap
        out.append((gained.sum() - 0.5 * (gained[0] + gained[-1])) / len(strong))
    return float(np.std(out, ddof=1))


@pytest.mark.usefixtures("shared_data_dir")
def test_default_router_noise_is_randoms_spread() -> None:
    """``bench.default_router.NOISE`` is random's APGR spread (GUIDE.md §4: ±0.01 MMLU, ±0.02 GSM8K, ±0.06 MT Bench,
    one standard deviation); CRUX and MATH-L5 were given ±0.03 and DC-Router ±0.04, about twice theirs."""
    from bench.common import Settings
    from bench.default_router import NOISE, TARGETS
    from bench.quality import dcrouter_bench

    for name in TARGETS:
        bench = dcrouter_bench(Settings(eval_limit=None))[0] if name == "dcrouter" else ds.load_benchmark(name)
        sd = _random_apgr_sd(np.asarray(bench.strong), np.asarray(bench.weak))
        assert 0.6 * sd <= NOISE[name] <= 1.5 * sd, (name, NOISE[name], sd)


def test_gap_noise_is_each_budgets_own() -> None:
    """Three models at costs 1, 2, 4 (quality 0, 1, 1); the router never picks the middle one, so its curve is the
    chord from (1, 0) to (4, 1): under the hull at every budget strictly inside, by 2/3 at budget 2."""
    from bench.ladder import gap_noise

    quality = {"a": [0.0, 0.0], "b": [1.0, 1.0], "c": [1.0, 1.0]}
    costs = {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [4.0, 4.0]}
    curve = evaluate_ladder(np.array([[0.5, 0.1, 0.9]] * 2), ["x", "y"], quality, costs)
    assert curve.quality_at(2.0) - curve.hull_quality_at(2.0) == pytest.approx(-2 / 3)
    steady = gap_noise(curve, np.zeros((20, 101)))
    assert steady == {"min_gap_noise": 0.0, "budgets_below_beyond_noise": 99}
    spread = np.tile(np.r_[-1.0, 1.0], 10)[:, None] * np.ones((20, 101))  # sd 1 at every budget
    assert gap_noise(curve, spread) == {"min_gap_noise": pytest.approx(2.0), "budgets_below_beyond_noise": 0}


def test_evaluate_curve_leaves_the_callers_arrays_writable() -> None:
    bench = ds.Benchmark("hand", ("a", "b"), np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    fractions, qualities = np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.5, 0.5])
    result = ev.evaluate_curve(fractions, qualities, bench)
    fractions[1] = qualities[1] = 0.25  # the caller may reuse its arrays ...
    assert result.curve[0][1] == 0.5 and result.curve[1][1] == 0.5  # ... and the result keeps its own
    assert not result.curve[0].flags.writeable
