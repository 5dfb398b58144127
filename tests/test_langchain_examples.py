"""The LangChain examples run offline and print the routing decisions (run in-process to share the model load)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
