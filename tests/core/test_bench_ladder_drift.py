"""Smoke test of ``python -m bench.ladder_drift --quick`` (the budget controller on drifting traffic).

Runs the quick slice (120 requests per half, 2 seeds, the shipped router) into a temporary folder: every request
went through the core ``LadderEngine`` (the benchmark itself checks that the records' costs are the stream's prices
times tokens), every policy and baseline is reported for both halves, and the section is written. The only number
asserted is a loose one that a broken controller fails: on the first half its realised spend is near the target.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from quick_bench import OTHER_SECTION, run_quick


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
