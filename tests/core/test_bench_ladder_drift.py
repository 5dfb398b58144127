"""Smoke test of ``python -m bench.ladder_drift --quick`` (the budget and share controllers on drifting traffic).

Runs the quick slice (120 requests per half, 2 seeds, the shipped router) into a temporary folder: every request
went through the core ``LadderEngine`` (the benchmark itself checks that the records' costs are the stream's prices
times tokens), every policy and baseline is reported for both halves, and the section is written. The numbers
asserted are loose ones that a broken controller fails: on the first half the budget controller's realised spend is
near the target; each share cap binds (the best predicted model uncapped takes more than the cap) and the share
controller serves the capped model within a binomial 2 sd of its cap on the first half; the fixed penalty, tuned on
the first half's predictions, holds the cap there when routed through the engine.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from quick_bench import OTHER_SECTION, run_quick

from bench.ladder_drift import SHORT

GPT_4O = "gpt-4o-2024-08-06"


@pytest.mark.slow
def test_ladder_drift_quick_run(shared_data_dir: Path, tmp_path: Path) -> None:
    res, text = run_quick("bench.ladder_drift", "ladder_drift", shared_data_dir, tmp_path)
    agg = res["aggregate"]
    assert len(res["seeds"]) == 2 and res["n_half"] == 120
    for half in agg["halves"]:
        assert set(half) >= {"controller", "controller_short", "fixed", "at_controller_spend", "singles"}
        assert set(half["singles"]) == set(res["models"])
        assert sum(half["controller"]["shares"]) == pytest.approx(1.0)
    assert len(agg["blocks"]) == 3  # 240 requests in blocks of 100
    budget = res["budget_usd_per_1k"]
    assert agg["halves"][0]["controller"]["spend"] == pytest.approx(budget, rel=0.3)
    assert "## Budget held online on drifting traffic" in text and OTHER_SECTION in text

    shares = res["shares"]
    assert len(shares["seeds"]) == 2
    for name, caps in shares["scenarios"].items():
        first, second = shares["aggregate"][name]["halves"]
        for half in (first, second):
            assert set(half) >= {"controller", "fixed", "budget", "uncapped", "quality_vs_budget"}
            assert sum(half["controller"]["shares"]) == pytest.approx(1.0, abs=1e-5)  # the JSON keeps 6 digits
        for model, cap in caps.items():
            noise = 2 * math.sqrt(cap * (1 - cap) / res["n_half"])
            assert first["controller"]["capped"][model]["share"]["mean"] <= cap + noise
            assert first["fixed"]["capped"][model]["share"]["max"] <= cap + 1e-9
        assert f"Caps {', '.join(f'{SHORT[m]} ≤ {c:.0%}' for m, c in caps.items())}" in text
    # GPT-4o's cap binds: uncapped, the best predicted model takes more than its cap on the first half
    uncapped = shares["aggregate"]["4o_20"]["halves"][0]["uncapped"]["capped"][GPT_4O]["share"]["mean"]
    assert uncapped > 0.2 + 2 * math.sqrt(0.2 * 0.8 / res["n_half"])
    assert "**Share caps on the same traffic.**" in text
