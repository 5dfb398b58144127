"""Warm-started training: ``train_router("mf", battles, init=...)`` starts from a shipped or saved router."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_core import Battle, CheckpointError, InvalidInputError, load_router
from routellm_core.embedders import MINILM_NAME, embedder_from_name
from routellm_core.evaluation import evaluate, evaluate_router
from routellm_core.routers.mf import MatrixFactorizationRouter
from routellm_core.routers.random import RandomRouter
from routellm_core.training import train_router

PROMPTS = [
    "What is 2 + 2?",
    "Prove that there are infinitely many primes of the form 4k + 3.",
    "hi",
    "Write a sonnet about the sea at night.",
    "Implement a lock-free queue in C++ and explain its memory ordering.",
]
#: Two kinds of prompt with an obvious winner: the weak model is as good on greetings, strong wins proofs.
GREETINGS = [f"hello there, how are you doing today, friend number {i}?" for i in range(40)]
PROOFS = [f"prove that the sum of the first {i} odd numbers is a perfect square" for i in range(40)]


@pytest.fixture(scope="module")
def fast() -> MatrixFactorizationRouter:
    router = load_router("fast")
    assert isinstance(router, MatrixFactorizationRouter)
    return router


def obvious_battles(strong: str, weak: str, n: int) -> list[Battle]:
    return [Battle(prompt=p, model_a=strong, model_b=weak, winner="model_b") for p in GREETINGS[:n]] + [
        Battle(prompt=p, model_a=weak, model_b=strong, winner="model_b") for p in PROOFS[:n]
    ]


def test_no_labels_scores_exactly_like_the_init(fast) -> None:
    expected = fast.predict_win_rate(PROMPTS)
    assert np.array_equal(train_router("mf", [], init="fast").predict_win_rate(PROMPTS), expected)
    # ties only, and a pair of the user's own models the init never saw: still the init's scores
    ties = [Battle(prompt=p, model_a="gpt-4o", model_b="gpt-4o-mini", winner="tie") for p in PROMPTS]
    router = train_router("mf", ties, init=fast, strong_model="gpt-4o", weak_model="gpt-4o-mini")
    assert np.array_equal(router.predict_win_rate(PROMPTS), expected)
    assert router.strong_model == "gpt-4o" and router.metadata["warm_start"]["init"] == "mf"
    assert router.calibrated_thresholds == fast.calibrated_thresholds  # 5 prompts are too few to recalibrate


def test_warm_start_learns_the_labels_of_a_new_pair_and_round_trips(fast, tmp_path) -> None:
    battles = obvious_battles("gpt-4o", "gpt-4o-mini", 30)
    router = train_router("mf", battles, init="fast", strong_model="gpt-4o", weak_model="gpt-4o-mini")
    unseen = [GREETINGS[35], PROOFS[35]]
    greeting, proof = router.predict_win_rate(unseen)
    assert proof > 0.7 > 0.3 > greeting  # the init alone cannot tell them apart this clearly
    before = fast.predict_win_rate(unseen)
    assert abs(before[1] - before[0]) < proof - greeting
    assert router.embedder is fast.embedder  # the init's embedder is reused
    # thresholds recalibrated on the 60 training prompts: 0.5 sends half of them to strong
    assert router.metadata["calibrated_on_prompts"] == 60 and len(router.calibrated_thresholds) == 9
    scores = router.predict_win_rate(GREETINGS[:30] + PROOFS[:30])
    assert np.mean(scores >= router.threshold_for(0.5)) == pytest.approx(0.5, abs=0.02)
    loaded = load_router(router.save(tmp_path / "mine"))
    assert np.array_equal(loaded.predict_win_rate(unseen), router.predict_win_rate(unseen))
    assert loaded.metadata["warm_start"]["init"] == "fast"
    # a later warm start from the saved folder works the same way
    again = train_router("mf", [], init=tmp_path / "mine")
    assert np.array_equal(again.predict_win_rate(unseen), router.predict_win_rate(unseen))


def test_few_contradicting_labels_stay_within_noise_of_the_init(fast, shared_data_dir) -> None:
    """16 labels that contradict GSM8K's truth must not cost the init more than the noise on 1,267 held-out
    prompts (the test measures that noise by bootstrap); with the priors turned off the same labels do."""
    from routellm_core.data import load_benchmark

    bench = load_benchmark("gsm8k")
    order = np.random.default_rng(0).permutation(len(bench))
    held_out = bench.subset(np.sort(order[40:]))
    gain = bench.strong - bench.weak
    flipped = [
        Battle(
            prompt=bench.prompts[i],
            model_a=bench.strong_model,
            model_b=bench.weak_model,
            winner="model_b" if gain[i] > 0 else "model_a",
        )
        for i in order[:40]
        if gain[i] != 0
    ]
    assert len(flipped) == 16
    scores = fast.predict_win_rate(list(held_out.prompts))
    init_apgr = evaluate(scores, held_out).apgr
    rng = np.random.default_rng(1)
    boot = []
    for _ in range(200):
        idx = rng.integers(0, len(held_out), len(held_out))
        boot.append(evaluate(scores[idx], held_out.subset(idx)).apgr)
    noise = 2 * float(np.std(boot))
    assert init_apgr > 0.55 and noise < 0.06

    pair = {"strong_model": bench.strong_model, "weak_model": bench.weak_model}
    warm = train_router("mf", flipped, init=fast, **pair)
    assert evaluate_router(warm, held_out).apgr >= init_apgr - noise
    loose = train_router("mf", flipped, init=fast, warm_prior=1e-2, warm_scale_prior=1e-2, **pair)
    assert evaluate_router(loose, held_out).apgr < init_apgr - noise  # the check above can fail


def test_refuses_another_router_type_or_embedding_space(fast) -> None:
    battles = obvious_battles(fast.strong_model, fast.weak_model, 5)
    with pytest.raises(CheckpointError, match="cannot warm-start a 'mf' router from a 'random' router"):
        train_router("mf", battles, init=RandomRouter())
    with pytest.raises(CheckpointError, match="cannot warm-start a 'sw_ranking' router from a 'mf' router"):
        train_router("sw_ranking", battles, init="fast")
    minilm = embedder_from_name(MINILM_NAME)
    with pytest.raises(CheckpointError, match="embedder mismatch"):
        train_router("mf", battles, init="fast", embedder=minilm)
    with pytest.raises(CheckpointError, match="embedder mismatch"):
        MatrixFactorizationRouter(embedder=minilm).fit(battles, init=fast)
    with pytest.raises(CheckpointError, match="neither a shipped router"):
        train_router("mf", battles, init="no-such-router")
    with pytest.raises(CheckpointError, match="dim"):
        train_router("mf", battles, init="fast", dim=64)


def test_hyperparameters_are_checked_before_training(fast) -> None:
    battles = obvious_battles(fast.strong_model, fast.weak_model, 5)
    with pytest.raises(InvalidInputError, match="'epochs' = -3 is invalid"):
        train_router("mf", battles, embedder=fast.embedder, epochs=-3)
    with pytest.raises(InvalidInputError, match=r"takes no parameter\(s\) \['epoch'\]"):
        train_router("mf", battles, embedder=fast.embedder, epoch=3)
    with pytest.raises(InvalidInputError, match="'warm_prior' = 0"):
        train_router("mf", battles, init=fast, warm_prior=0)
