"""Determinism: the same prompt, router and threshold give the same decision across batch sizes, call paths,
caches and processes (win rates within 1e-6).

Batch-size checks bypass the embedding cache (they use the shipped router with the raw static embedder), so every
batch really is embedded again with different grouping. The cross-process check runs a fresh Python
(another hash seed, one torch thread, another order and batch size) and compares its JSON output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routellm_core import load_router
from routellm_core.routing.policy import RoutingPolicy

ATOL = 1e-6
REPO = Path(__file__).resolve().parents[2]

TEXTS = [
    *(f"Question {i}: what is {i} times {i + 3}?" for i in range(20)),
    *(f"Please write a short poem about the number {i}." for i in range(15)),
    *(f"Prove that {p} is prime, step by step, and then generalise the method." for p in (2, 3, 5, 7, 11, 13, 17)),
    "hi",
    "thanks!",
    "Explique la relativité restreinte à un lycéen, avec des exemples concrets et sans équations.",
    "用三句话解释什么是机器学习。",
    "Напиши функцию на Python, которая переворачивает связный список.",
    "😀🚀 emoji only? 👍🏽",
    *(f"Translate sentence number {i} into Spanish: 'the weather is nice today'." for i in range(16)),
    # last, so that batches of 64 stay cheap (no padding to 256 tokens); batches of 1 and 7 mix them in
    "Derive the closed form of the Fibonacci sequence using generating functions. " * 30,  # > 256 tokens
    "x" * 5000,
]
assert len(TEXTS) > 64


def scores_in_batches(router: Any, texts: list[str], size: int) -> np.ndarray:
    return np.concatenate([router.predict_win_rate(texts[i : i + size]) for i in range(0, len(texts), size)])


@pytest.fixture(scope="module")
def uncached() -> Any:
    """The shipped router with the raw (uncached) static embedder: every call embeds again."""
    from routellm_core.embedding.static import StaticEmbedder

    return load_router("default", embedder=StaticEmbedder())


@pytest.fixture(scope="module")
def reference(uncached: Any) -> np.ndarray:
    return uncached.predict_win_rate(TEXTS)


def split_threshold(rates: np.ndarray) -> float:
    """A threshold halfway between the two middle win rates: decisions on both sides, none on the edge."""
    ordered = np.sort(rates)
    mid = len(ordered) // 2
    return float((ordered[mid - 1] + ordered[mid]) / 2)


#: Small batches are checked on a sample (short, long, truncated and non-Latin texts) to bound the runtime.
SAMPLE = sorted({*range(0, len(TEXTS), 5), *range(40, 48), len(TEXTS) - 2, len(TEXTS) - 1})


@pytest.mark.parametrize("size", [1, 7, 64, len(TEXTS)])
def test_same_scores_and_decisions_across_batch_sizes(uncached: Any, reference: np.ndarray, size: int) -> None:
    """Batches of 1, 7, 64 and all texts (the reference is one batch of all, in another order)."""
    index = SAMPLE if size < 64 else list(range(len(TEXTS)))[::-1] if size == len(TEXTS) else range(len(TEXTS))
    texts = [TEXTS[i] for i in index]
    rates = scores_in_batches(uncached, texts, size)
    np.testing.assert_allclose(rates, reference[list(index)], atol=ATOL, rtol=0)
    threshold = split_threshold(reference)
    assert [p >= threshold for p in rates] == [p >= threshold for p in reference[list(index)]]


def test_cache_and_call_paths_agree(reference: np.ndarray) -> None:
    """The cached router, the policy's single and batched paths, and repeated calls all agree."""
    cached = load_router("default")
    np.testing.assert_allclose(cached.predict_win_rate(TEXTS), reference, atol=ATOL, rtol=0)
    np.testing.assert_allclose(cached.predict_win_rate(TEXTS), reference, atol=ATOL, rtol=0)  # from the cache
    policy = RoutingPolicy(cached, threshold=split_threshold(reference))
    batch = policy.decide_batch(TEXTS)
    single = [policy.decide(t) for t in TEXTS[:10]]
    assert [d.choice for d in single] == [d.choice for d in batch[:10]]
    np.testing.assert_allclose([d.win_rate for d in single], reference[:10], atol=ATOL, rtol=0)
    assert [d.choice for d in batch] == ["strong" if p >= policy.threshold else "weak" for p in reference]


CHILD = """
import json, sys
import torch
torch.set_num_threads(1)
from routellm_core import load_router
texts = json.loads(sys.stdin.read())
order = list(reversed(range(len(texts))))
router = load_router("default")
rates = {}
for start in range(0, len(order), 5):
    chunk = order[start:start + 5]
    for i, p in zip(chunk, router.predict_win_rate([texts[i] for i in chunk])):
        rates[i] = float(p)
random = load_router("random", seed=3).predict_win_rate(texts).tolist()
print(json.dumps({"rates": [rates[i] for i in range(len(texts))], "random": random}))
"""


@pytest.mark.slow
def test_same_scores_in_another_process(reference: np.ndarray) -> None:
    env = {
        **os.environ,
        "PYTHONHASHSEED": "4242",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["rates"], reference, atol=ATOL, rtol=0)
    threshold = split_threshold(reference)
    assert [p >= threshold for p in out["rates"]] == [p >= threshold for p in reference]
    assert out["random"] == load_router("random", seed=3).predict_win_rate(TEXTS).tolist()  # hash-based: exact
