"""The LangChain examples run offline and print the routing decisions (run in-process to share the model load)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, capsys: Any) -> str:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_chain_example(capsys: Any) -> None:
    out = run_example("langchain_chain.py", capsys)
    assert out.count("decision: router=") == 6
    assert "-> strong (demo-strong-xl)" in out
    assert "-> weak (demo-weak-mini)" in out
    assert re.search(r"batch: \d/6 questions went to the strong model", out)
    for line in out.splitlines():
        if line.strip().startswith("answer:"):
            assert "[strong model]" in line or "[weak model]" in line


def test_streaming_example(capsys: Any) -> None:
    out = run_example("langchain_streaming.py", capsys)
    assert out.count("decision (first chunk): router=") == 2
    assert out.count("last chunk_position='last'") == 2
    assert "astream: " in out and "usage: {'input_tokens'" in out


def test_agent_example(capsys: Any) -> None:
    out = run_example("langchain_agent.py", capsys)
    assert "tool call get_weather({'city': 'Paris'})" in out
    assert "tool:  It is 21°C and sunny in Paris." in out
    assert "tool:  391" in out
    assert "[continued: tool result goes back to the model that called the tool]" in out
    assert "== create_agent with RouteLLMMiddleware" in out


@pytest.mark.parametrize("name", ["langchain_chain.py", "langchain_streaming.py", "langchain_agent.py"])
def test_examples_use_the_shipped_router(name: str) -> None:
    assert 'router="default"' in (EXAMPLES / name).read_text()


@pytest.mark.slow
def test_learning_loop_example_learns_the_traffic(shared_data_dir: Path, tmp_path: Path, capsys: Any) -> None:
    """The README walkthrough: route, label with a judge, warm-start, report. The warm-started rows are k-fold
    (each prompt scored by a router that did not train on it), so their APGR is a quality floor on unseen data."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("learning_loop", EXAMPLES / "learning_loop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before, after = module.main(["--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "**Verdict:**" in out and (tmp_path / "my_router" / "config.json").exists()
    assert before.n_prompts >= 450, "nearly every call labelled: nothing lost in the background"
    rows = {row.name: row for row in after.rows}
    learned = next(row for name, row in rows.items() if "your labels" in name)
    random_row = rows["random"]
    # Labels from the traffic beat a coin by more than the interval on held-out folds.
    assert learned.apgr.low > random_row.apgr.value, (learned.apgr, random_row.apgr)
