"""Smoke test of the benchmark scripts on a tiny slice (the benchmarks themselves are not part of the suite).

Runs ``python -m bench --quick`` (20 prompts per benchmark, 20 training prompts per source, 1 epoch; random and
mf only; two benchmarks) into a temporary folder and checks that the report, JSON results and PNG curves are
written with the expected sections. The numbers of such a run are meaningless.
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
def test_bench_quick_run_writes_report(shared_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--routers",
        "random,mf",
        "--benchmarks",
        "mt_bench,gsm8k",
        "--results-dir",
        str(tmp_path / "results"),
        "--plots-dir",
        str(tmp_path / "plots"),
        "--out",
        str(out),
    ]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "ROUTELLM_DATA_DIR": str(shared_data_dir)}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]

    report = out.read_text()
    for section in (
        "# Benchmarks",
        "- Command: `python -m bench --quick",
        "- Machine:",
        "Quick run",
        "## Routing quality, protocol (a): benchmark left out of training",
        "## Routing quality, protocol (b): in-domain k-fold",
        "## DC-Router multi-model test split",
        "## Cost-quality curves",
        "## Against RouteLLM's published claims",
        "## MT Bench against the commercial routers",
        "## Router overhead (CPU)",
        "## Integration overhead",
        "## Concurrent load through ChatRouteLLM",
    ):
        assert section in report, f"missing {section!r} in the report"
    assert "| mf |" in report and "*oracle* (baseline)" in report and "*length* (baseline)" in report

    quality = json.loads((tmp_path / "results" / "quality.json").read_text())
    assert set(quality["lobo"]) == {"mt_bench", "gsm8k"}
    names = {r["name"] for r in quality["lobo"]["mt_bench"]["results"]}
    assert {"random", "oracle", "length", "mf"} <= names
    assert quality["lobo"]["mt_bench"]["bench"]["sliced"] is True
    assert {"martian", "unify"} <= set(quality["commercial"]["scores"])
    for name in ("mt_bench", "gsm8k", "dcrouter"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 1000

    overhead = json.loads((tmp_path / "results" / "overhead.json").read_text())
    assert {"random", "mf"} <= set(overhead["routers"])
    assert overhead["routers"]["mf"]["single_p50_ms"] > 0


def _run(args: list[str], shared_data_dir: Path) -> None:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "ROUTELLM_DATA_DIR": str(shared_data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_learning_curves_quick_run_for_the_default_recipe(shared_data_dir: Path, tmp_path: Path) -> None:
    """``python -m bench.learning_curves --recipe default --quick``: the default warm-started on MT Bench labels."""
    args = ["--recipe", "default", "--quick", "--results-dir", str(tmp_path), "--plots-dir", str(tmp_path)]
    _run(["bench.learning_curves", *args], shared_data_dir)
    res = json.loads((tmp_path / "learning_curves_default.json").read_text())
    rows = res["benchmarks"]["mt_bench"]["rows"]
    assert set(rows) == {"0", "25"} and len(rows["25"]["warm start"]) == 2
    assert len(rows["25"]["scratch"]) == 2 and len(rows["25"]["length"]) == 2  # every router, every seed
    assert res["benchmarks"]["mt_bench"]["targets"]["target_k"] == 25
    from bench.learning_curves import section

    assert section(res)[0] == "## Learning curves: APGR against in-domain labels (`default` recipe)"


@pytest.mark.slow
def test_routing_ceiling_run_on_mt_bench(shared_data_dir: Path, tmp_path: Path) -> None:
    """``python -m bench.routing_ceiling --targets mt_bench``: every row next to random, length and oracle."""
    _run(
        ["bench.routing_ceiling", "--targets", "mt_bench", "--no-markdown", "--results-dir", str(tmp_path)],
        shared_data_dir,
    )
    res = json.loads((tmp_path / "routing_ceiling.json").read_text())
    apgr = res["targets"]["mt_bench"]["apgr"]
    assert {"random", "length", "oracle", "default recipe (a), reference pair", "ridge on the pair's gain (b)"} <= set(
        apgr
    )
    assert "reads the answers: true difficulty" not in apgr  # MT Bench scores two models only
    assert apgr["oracle"] > apgr["random"]
