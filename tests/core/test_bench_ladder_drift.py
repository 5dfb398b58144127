"""Smoke test of ``python -m bench.ladder_drift --quick`` (the budget controller on drifting traffic).

Runs the quick slice (120 requests per half, 2 seeds, the shipped router) into a temporary folder: every request
went through the core ``LadderEngine`` (the benchmark itself checks that the records' costs are the stream's prices
times tokens), every policy and baseline is reported for both halves, and the section is written. The only number
asserted is a loose one that a broken controller fails: on the first half its realised spend is near the target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ladder_drift_quick_run(shared_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## Another section\n\nkept as it is\n")
    cmd = [sys.executable, "-m", "bench.ladder_drift", "--quick", "--results-dir", str(tmp_path), "--markdown"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "ROUTELLM_DATA_DIR": str(shared_data_dir)}
    proc = subprocess.run([*cmd, str(out)], cwd=REPO, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]

    res = json.loads((tmp_path / "ladder_drift.json").read_text())
    agg = res["aggregate"]
    assert len(res["seeds"]) == 2 and res["n_half"] == 120
    for half in agg["halves"]:
        assert set(half) >= {"controller", "controller_short", "fixed", "at_controller_spend", "singles"}
        assert set(half["singles"]) == set(res["models"])
        assert sum(half["controller"]["shares"]) == pytest.approx(1.0)
    assert len(agg["blocks"]) == 3  # 240 requests in blocks of 100
    budget = res["budget_usd_per_1k"]
    assert agg["halves"][0]["controller"]["spend"] == pytest.approx(budget, rel=0.3)
    text = out.read_text()
    assert "## Budget held online on drifting traffic" in text and "kept as it is" in text
