"""``bench.agreement_bound``: the frontier of serving the anchor's answer or an agreed one, with full knowledge.

Small cases whose frontier is worked out by hand, and the bound against the real agreement check on the same
answers: no policy the check can run in that family beats it.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.agreement_bound import agreement_bound, options_frontier
from routellm_core.escalation.answers import answers_agree
from routellm_core.escalation.evaluate import evaluate_escalation


def test_options_frontier_takes_the_best_quality_per_cost_first() -> None:
    # prompt 0: a dominated option and one under the chord; prompt 1: a cheap step worth more per cost
    curve = options_frontier([[(0.0, 0.0), (1.0, 0.1), (2.0, 1.0), (3.0, 0.5)], [(0.0, 0.0), (1.0, 1.0)]])
    np.testing.assert_allclose(curve.points, [[0.0, 0.0], [0.5, 0.5], [1.5, 1.0]])
    assert curve.cost_for(0.75) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one option"):
        options_frontier([[]])


def test_agreement_bound_pays_the_pair_only_where_it_agrees_and_is_right() -> None:
    quality = {"s": [1, 1, 1], "a": [1, 0, 0], "b": [1, 0, 1]}
    costs = {"s": [10, 10, 10], "a": [1, 1, 1], "b": [1, 1, 1]}
    answers = {"a": ["4", "7", "2"], "b": ["4.0", "7", "3"]}
    bound = agreement_bound(
        quality, costs, answers, anchor="s", others=["a", "b"], agree=lambda x, y: answers_agree(x, y, "number")
    )
    # full quality: prompt 0 served by the agreeing pair (2), prompts 1 (agreed but wrong) and 2 by s (10 each)
    assert bound.max_quality == pytest.approx(1.0)
    assert bound.cost_for(1.0) == pytest.approx(22 / 3)
    # the cheapest point keeps the wrong agreed answer of prompt 1
    np.testing.assert_allclose(bound.points[0], [(2 + 2 + 10) / 3, 2 / 3])


def test_no_agreement_policy_without_unchecked_answers_beats_the_bound() -> None:
    rng = np.random.default_rng(0)
    n = 300
    truth = rng.integers(0, 5, n)
    answers = {
        m: np.where(rng.random(n) < p, truth, rng.integers(0, 5, n)).astype(str).tolist()
        for m, p in (("a", 0.6), ("b", 0.5))
    }
    quality = {
        "s": (rng.random(n) < 0.9).astype(float),
        **{m: (np.array(v) == truth.astype(str)).astype(float) for m, v in answers.items()},
    }
    costs = {"s": rng.uniform(5, 15, n), "a": rng.uniform(0.5, 1.5, n), "b": rng.uniform(0.2, 1.0, n)}
    bound = agreement_bound(
        quality, costs, answers, anchor="s", others=["a", "b"], agree=lambda x, y: answers_agree(x, y, "exact")
    )
    real = evaluate_escalation(answers, quality, costs, strong="s", cheap=["a", "b"], check="agreement")
    # at this quality every real policy escalates each disagreement (a's unconfirmed answers are mostly wrong):
    # it serves only confirmed answers or s's own, so it is in the bound's family and cannot beat it
    for cost, q in real.points:
        if q >= quality["s"].mean() * 0.95:
            assert bound.cost_for(q) is not None and bound.cost_for(q) <= cost + 1e-9
