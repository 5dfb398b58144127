"""Bounded shutdown: a judge call that never returns must not hold the interpreter at exit for more than
``EXIT_WAIT_S`` seconds, on the sync path (the labeller's thread pool) and the async one (a blocking judge awaited on
an event loop); a label that finishes within the bound is still stored at exit.

Each case runs in a subprocess that submits one label to a real :class:`Labeller` over a real SQLite
:class:`FeedbackStore`, then returns from its main code; the test times the process until it exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from routellm_core.learning.feedback import FeedbackStore
from routellm_core.learning.labelling import EXIT_WAIT_S

#: Interpreter start-up and imports on a busy 2-core machine, on top of the bound.
SLACK_S = 20.0

SCRIPT = """
import asyncio, sys, threading, time
from routellm_core.decisions import RoutingDecision, ServedDecision
from routellm_core.learning.feedback import DecisionRecord, FeedbackStore
from routellm_core.learning.judging import PairwiseJudge
from routellm_core.learning.labelling import Labeller

path, mode, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
never = threading.Event()

def generate(messages):  # a blocking judge model: never returns when delay < 0
    if delay < 0:
        never.wait()
    time.sleep(delay)
    return "[[A]]"

store = FeedbackStore(path)
labeller = Labeller(store, PairwiseJudge(generate, name="hung-judge", swap=False), fraction=1.0)
served = ServedDecision(id="d" * 32, router="fast", win_rate=0.9, threshold=0.5, choice="strong", served="strong",
                        model="big")
record = DecisionRecord.from_decision(served, strong_model="big", weak_model="small")
if mode == "sync":
    assert labeller.submit(record, "What is 2+2?", "4", lambda: "5")
else:
    async def main():
        async def other():
            return "5"
        assert await labeller.asubmit(record, "What is 2+2?", "4", other)
        await asyncio.sleep(0.5)  # the judge call is running in its thread when the loop ends
    asyncio.run(main())
print("main done", flush=True)
"""


def _run(tmp_path: Path, mode: str, delay: float) -> tuple[float, str]:
    """Run the script; (seconds from the end of its main code to the exit, its output)."""
    path = tmp_path / "feedback.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(path), mode, str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # wait for the end of the main code, then time the exit
            lines.append(line)
            if line.startswith("main done"):
                break
        done = time.monotonic()
        process.wait(timeout=EXIT_WAIT_S + SLACK_S)
        waited = time.monotonic() - done
        lines.append(process.stdout.read())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines)
    assert process.returncode == 0, output
    return waited, output


def _labels(tmp_path: Path) -> int:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    try:
        return len(store.labels(["judge"]))
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_hung_judge_does_not_hold_the_interpreter(tmp_path: Path, mode: str) -> None:
    waited, output = _run(tmp_path, mode, delay=-1)
    assert waited < EXIT_WAIT_S + 3.0, f"exit took {waited:.1f} s after the main code ended"
    if mode == "sync":  # it waited for the label, then gave up on it, and said so
        assert waited >= EXIT_WAIT_S - 0.5
        assert "labels still being judged after 5 s at exit were dropped (hung-judge)" in output
    assert _labels(tmp_path) == 0


@pytest.mark.slow
def test_a_label_finishing_within_the_bound_is_stored_at_exit(tmp_path: Path) -> None:
    waited, output = _run(tmp_path, "sync", delay=1.0)
    assert waited < EXIT_WAIT_S, output
    assert _labels(tmp_path) == 1
    assert "dropped" not in output
