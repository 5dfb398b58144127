"""Smoke test of ``python -m bench.ladder_climb --quick`` (the online climb through the core ``LadderEngine``).

Runs the quick slice (200 GSM8K problems, one ladder, 4 cost weights, the shipped router) into a temporary folder:
every request went through the engine (the benchmark itself checks each record's cost against the table's prices
times tokens), every baseline is reported at each online point's cost, and the section is written. The only numbers
asserted are loose ones a broken climb fails: the online climb lands near the offline evaluation of the same policy,
and it serves above the chosen rung on some requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from quick_bench import OTHER_SECTION, run_quick


@pytest.mark.slow
def test_ladder_climb_quick_run(shared_data_dir: Path, tmp_path: Path) -> None:
    res, text = run_quick("bench.ladder_climb", "ladder_climb", shared_data_dir, tmp_path)
    (lad,) = res["tasks"]["gsm"]["ladders"].values()
    assert lad["n_prompts"] == 200 and len(lad["online"]) == 4
    for point in lad["online"]:
        at = point["offline_at_cost"]
        assert set(at) == {"router", "router + escalation", "length", "length + escalation", "random", "hull"}
        assert sum(point["shares"].values()) == pytest.approx(1.0)
        assert point["quality"] == pytest.approx(at["router + escalation"], abs=0.05)
    assert max(p["climbed"] for p in lad["online"]) > 0.5
    assert "online climb" in lad["cost_x_best@best"]
    assert "## The online climb" in text and OTHER_SECTION in text
