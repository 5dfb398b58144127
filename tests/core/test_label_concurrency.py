"""``label_concurrency``: how many labels may be in flight at once.

Every front end kept at most 8 labels in flight (2 threads for sync callers): with labels that take seconds (the
other model's answer and two judge calls) and traffic above a few sampled calls per second, the rest were dropped.
The option raises it, in the LangChain and LlamaIndex front ends alike (one core option) and in the server.

Routers are real (the fitted ``known_router``); the children are the offline fakes; the judge is slow on purpose,
so the labels are all in flight together.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fitted_router import TRIVIA
from lc_fakes import children

from langchain_routellm import ChatRouteLLM
from routellm_core.errors import InvalidInputError
from routellm_core.learning.feedback import FeedbackStore

CALLS = 20


async def slow_judge(prompt: str, answer_a: str, answer_b: str) -> str:
    await asyncio.sleep(0.3)
    return "model_a"


def burst(llm: ChatRouteLLM) -> Any:
    """``CALLS`` concurrent ``ainvoke``, then the labeller's stats once every label finished."""

    async def run() -> Any:
        await asyncio.gather(*(llm.ainvoke(f"{TRIVIA[i % len(TRIVIA)]} ({i})") for i in range(CALLS)))
        assert llm.labelling is not None and llm.labelling.labeller is not None
        assert await llm.labelling.labeller.aflush(timeout=30)
        return llm.labelling.labeller.stats

    return asyncio.run(run())


@pytest.mark.parametrize(("concurrency", "stored"), [(None, 8), (CALLS, CALLS)])
def test_a_burst_is_labelled_up_to_the_concurrency(
    known_router: Any, tmp_path: Path, concurrency: int | None, stored: int
) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite")
    options = {} if concurrency is None else {"label_concurrency": concurrency}
    llm = ChatRouteLLM(
        **children(), router=known_router, feedback=store, judge=slow_judge, label_fraction=1.0, **options
    )
    stats = burst(llm)
    assert (stats.stored, stats.dropped_full) == (stored, CALLS - stored)
    assert store.stats().labels == stored
    store.close()


def test_sync_callers_get_as_many_threads(known_router: Any, tmp_path: Path) -> None:
    llm = ChatRouteLLM(
        **children(), router=known_router, feedback=tmp_path / "fb.sqlite", judge=lambda p, a, b: "tie",
        label_fraction=1.0, label_concurrency=16,
    )  # fmt: skip
    assert llm.labelling is not None and llm.labelling.labeller is not None
    assert (llm.labelling.labeller.max_pending, llm.labelling.labeller.workers) == (16, 16)


def test_llamaindex_takes_the_same_option(known_router: Any, tmp_path: Path) -> None:
    from li_fakes import LabelledLLM

    from llamaindex_routellm import RouteLLM

    llm = RouteLLM(
        strong=LabelledLLM(label="strong"), weak=LabelledLLM(label="weak"), router=known_router,
        feedback=tmp_path / "fb.sqlite", judge=lambda p, a, b: "tie", label_fraction=1.0, label_concurrency=32,
    )  # fmt: skip
    assert llm.labelling is not None and llm.labelling.labeller is not None
    assert llm.labelling.labeller.max_pending == 32


@pytest.mark.parametrize("bad", [0, -1])
def test_a_concurrency_below_one_is_refused(known_router: Any, tmp_path: Path, bad: int) -> None:
    with pytest.raises((InvalidInputError, ValueError), match="label_concurrency"):
        ChatRouteLLM(**children(), router=known_router, label_concurrency=bad)


def test_the_server_takes_it_from_its_command_line() -> None:
    import argparse

    from routellm_core.server.cli import add_arguments, settings_from_args
    from routellm_core.server.settings import ServerSettings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--strong", "mock:strong", "--weak", "mock:weak", "--label-concurrency", "24"])
    assert settings_from_args(args).label_concurrency == 24
    with pytest.raises(ValueError, match="label_concurrency"):
        ServerSettings(strong="mock:strong", weak="mock:weak", label_concurrency=0)
