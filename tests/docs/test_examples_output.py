"""What a newcomer sees from the README's first command (``examples/demo.py``) and the LlamaIndex agent example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = "win rate = the router's estimate that the strong model's answer beats the weak model's"


@pytest.mark.slow
def test_demo_defines_the_win_rate_once_and_draws_no_unexplained_bar(tmp_path: Path) -> None:
    """A fresh cache forces the one-time ONNX export of MiniLM, where transformers drew a "Loading weights" bar."""
    env = {**os.environ, "ROUTELLM_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    done = subprocess.run(
        [sys.executable, "examples/demo.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(DEFINITION) == 1
    assert "===== langchain_chain.py =====" in done.stdout and "===== llamaindex_query_engine.py =====" in done.stdout
    assert "Loading weights" not in done.stderr
    assert "the first run exports it to ONNX once" in done.stdout  # the wait it causes is said, not drawn


@pytest.mark.slow
def test_llamaindex_agent_example_explains_its_threshold() -> None:
    done = subprocess.run(
        [sys.executable, "examples/llamaindex_agent.py"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first = done.stdout.splitlines()[0]
    assert first.startswith("router: difficulty, threshold 0.")
    assert "a request goes to the strong model when its win rate" in first
    assert "calibrated on the 6 sample requests above so that about 40%" in first
    assert done.stdout.count("step 1:") == 3  # three requests, each routed
