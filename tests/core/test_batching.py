"""Micro-batching as the README promises it: concurrent routing calls share one embedding batch, scored off the loop.

The router is the shipped ``fast`` router on its real static embedder, wrapped so that every batch the router asks
for is recorded. Waits are bounded (``DEADLINE_S``) so that a broken batcher fails the test instead of hanging it;
nothing here asserts a duration.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from routellm_core import InvalidThresholdError, load_router
from routellm_core.embedding.embedders import Embedder
from routellm_core.embedding.static import StaticEmbedder
from routellm_core.routing.policy import RoutingPolicy

DEADLINE_S = 30.0
PROMPTS = [f"Question {i}: explain step {i} of the proof that there are infinitely many primes." for i in range(24)]


class CountingEmbedder(Embedder):
    """A real embedder that records each batch it embeds; ``hook`` runs first, in the embedding thread."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[list[str]] = []
        self.threads: list[int] = []
        self.hook: Callable[[list[str]], None] | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Width of the wrapped embedder's vectors."""
        return self.inner.dim  # type: ignore[attr-defined,no-any-return]

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
            self.threads.append(threading.get_ident())
        if self.hook is not None:
            self.hook(texts)
        return self.inner.embed(texts)


@pytest.fixture
def counting() -> CountingEmbedder:
    return CountingEmbedder(StaticEmbedder())


@pytest.fixture
def policy(counting: CountingEmbedder) -> RoutingPolicy:
    return RoutingPolicy(load_router("fast", embedder=counting), threshold=0.5)


def _same_decisions(got: list, expected: list) -> None:
    assert [d.choice for d in got] == [d.choice for d in expected]
    np.testing.assert_allclose([d.win_rate for d in got], [d.win_rate for d in expected], atol=1e-6)


def test_concurrent_adecide_calls_share_one_embedder_call(policy: RoutingPolicy, counting: CountingEmbedder) -> None:
    async def run() -> list:
        return await asyncio.gather(*[policy.adecide(p) for p in PROMPTS])

    decisions = asyncio.run(run())
    assert counting.calls == [PROMPTS], f"{len(PROMPTS)} concurrent calls made {len(counting.calls)} embedder calls"
    _same_decisions(decisions, policy.decide_batch(PROMPTS))


def test_adecide_batches_are_capped_at_max_batch_size(counting: CountingEmbedder) -> None:
    policy = RoutingPolicy(load_router("fast", embedder=counting), threshold=0.5, max_batch_size=10)

    async def run() -> list:
        return await asyncio.gather(*[policy.adecide(p) for p in PROMPTS])

    decisions = asyncio.run(run())
    assert counting.calls == [PROMPTS[:10], PROMPTS[10:20], PROMPTS[20:]]
    _same_decisions(decisions, policy.decide_batch(PROMPTS))


def test_concurrent_decide_calls_from_threads_share_one_embedder_call(
    policy: RoutingPolicy, counting: CountingEmbedder
) -> None:
    """While one call embeds, every call that arrives meanwhile from other threads joins the next, single batch."""
    leader_inside, release = threading.Event(), threading.Event()

    def hold_the_leader(texts: list[str]) -> None:
        if texts == ["the leading call"]:
            leader_inside.set()
            assert release.wait(DEADLINE_S)

    counting.hook = hold_the_leader
    with ThreadPoolExecutor(len(PROMPTS) + 1) as pool:
        lead = pool.submit(policy.decide, "the leading call")
        assert leader_inside.wait(DEADLINE_S)
        futures = [pool.submit(policy.decide, p) for p in PROMPTS]
        deadline = time.monotonic() + DEADLINE_S
        while len(policy._batcher._pending) < len(PROMPTS) and time.monotonic() < deadline:
            time.sleep(0.01)  # wait (bounded) until every call is queued behind the leader
        queued = len(policy._batcher._pending)
        release.set()
        decisions = [f.result(timeout=DEADLINE_S) for f in futures]
        lead.result(timeout=DEADLINE_S)
    assert queued == len(PROMPTS), "the calls did not queue behind the running batch"
    assert len(counting.calls) == 2, f"{len(PROMPTS)} concurrent calls made {len(counting.calls) - 1} embedder calls"
    assert counting.calls[0] == ["the leading call"]
    assert sorted(counting.calls[1]) == sorted(PROMPTS)
    _same_decisions(decisions, policy.decide_batch(PROMPTS))


def test_adecide_scores_off_the_event_loop(policy: RoutingPolicy, counting: CountingEmbedder) -> None:
    """The embedder runs in a worker thread and the loop keeps running meanwhile: the embedder waits until a ticker
    coroutine on the loop has ticked five times, which cannot happen if scoring blocks the loop."""
    ticked = threading.Event()
    released: list[bool] = []
    counting.hook = lambda texts: released.append(ticked.wait(DEADLINE_S))

    async def main() -> tuple[int, object]:
        loop_thread = threading.get_ident()
        done = False
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                if ticks >= 5:
                    ticked.set()
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        decision = await policy.adecide("Derive the closed form of the Fibonacci numbers.")
        done = True
        await task
        return loop_thread, decision

    loop_thread, decision = asyncio.run(main())
    assert released == [True], "the event loop did not run while the router was embedding"
    assert counting.threads and loop_thread not in counting.threads
    _same_decisions([decision], policy.decide_batch(["Derive the closed form of the Fibonacci numbers."]))


def test_the_batcher_scores_win_rates_and_each_call_applies_its_own_threshold(
    policy: RoutingPolicy, counting: CountingEmbedder
) -> None:
    """One batch serves calls at different thresholds: the batcher returns floats, and each call decides once at
    its own threshold (or the policy's), so the same win rate is strong at 0.0 and weak at 1.0."""
    text = "Prove that the square root of 2 is irrational."
    rate = policy._batcher.submit(text)
    assert type(rate) is float and 0.0 <= rate < 1.0
    counting.calls.clear()

    async def run() -> list:
        return await asyncio.gather(policy.adecide(text, 0.0), policy.adecide(text, 1.0), policy.adecide(text))

    low, high, default = asyncio.run(run())
    assert counting.calls == [[text] * 3], "the three calls were not scored in one batch"
    for decision in (low, high, default):  # one batch, one text: the same score (float32 rows may differ in ulps)
        assert decision.win_rate == pytest.approx(rate, abs=1e-6)
    assert (low.threshold, low.choice) == (0.0, "strong")
    assert (high.threshold, high.choice) == (1.0, "weak")
    assert default.threshold == policy.threshold == 0.5
    assert default.choice == ("strong" if rate >= 0.5 else "weak")
    # exactly at the win rate: strong (>=); just above it: weak (one call at a time: a batch of one scores alike)
    above = float(np.nextafter(rate, 1.0))
    at, over = policy.decide(text, rate), policy.decide(text, above)
    assert (at.win_rate, at.choice, over.win_rate, over.choice) == (rate, "strong", rate, "weak")
    assert [d.choice for d in policy.decide_batch([text], threshold=above)] == ["weak"]
    assert [d.choice for d in policy.decide_batch([text], threshold=rate)] == ["strong"]
    with pytest.raises(InvalidThresholdError):
        policy.decide(text, 1.5)
