"""Smoke test of ``python -m bench.cascade_latency --quick`` (the escalation cascade's online latency benchmark).

Runs the quick slice into a temporary folder and checks what the run must show whatever the timings: every case
ran, each ended as scripted (the records were checked by the benchmark), the fake models were called as often as
the cascade's design says, and the section was written. No timing is asserted (the numbers of a quick run are
meaningless).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from quick_bench import OTHER_SECTION, run_quick

#: Model calls per request each case must make: the answer, the concurrent check answer, the escalation, the
#: self-verification question.
CALLS = {
    "invoke/direct weak": 1,
    "invoke/routed to weak": 1,
    "invoke/routed to strong": 1,
    "invoke/cascade pre-routed": 1,
    "invoke/cascade kept": 2,
    "invoke/cascade kept, resampled": 2,
    "invoke/cascade escalated": 3,
    "invoke/self-verification kept": 2,
    "invoke/self-verification escalated": 3,
    "ainvoke/cascade kept": 2,
    "ainvoke/cascade escalated": 3,
    "stream/cascade pre-routed": 1,
    "stream/cascade kept": 2,
    "stream/cascade escalated": 3,
    "astream/cascade kept": 2,
    "astream/cascade escalated": 3,
}


@pytest.mark.slow
def test_cascade_latency_quick_run(shared_data_dir: Path, tmp_path: Path) -> None:
    res, report = run_quick("bench.cascade_latency", "cascade_latency", shared_data_dir, tmp_path)
    rows = res["rows"]
    assert res["record_mismatches"] == 0
    for key, calls in CALLS.items():
        assert rows[key]["calls_measured"] == pytest.approx(calls), key
        assert rows[key]["n"] == 3
    for key in ("stream/routed to weak", "stream/cascade kept", "stream/cascade escalated", "astream/cascade kept"):
        assert rows[key]["ttft"]["p50_ms"] > 0
    assert {row["case"] for row in res["concurrency"].values()} == {
        "weak model directly",
        "routed to weak (no escalation)",
        "cascade kept",
        "cascade escalated",
    }
    assert res["concurrency"]["cascade escalated @ 4"]["calls_measured"] == pytest.approx(3)

    assert OTHER_SECTION in report
    for heading in (
        "## Escalation online: latency and time to first token through `ChatRouteLLM`",
        "### Per request: `invoke` / `ainvoke`",
        "### Streaming: time to first token (`stream` / `astream`)",
        "### Throughput under concurrency (`asyncio.gather` of `ainvoke`)",
        "CPU cores (`nproc`)",
    ):
        assert heading in report, heading
