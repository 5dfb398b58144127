"""Warm-started training: ``train_router(..., init=...)`` starts from a shipped (``fast``: mf, ``default``:
difficulty) or saved router."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_core import Battle, CheckpointError, InvalidInputError, load_router
from routellm_core.embedding.embedders import MINILM_NAME, embedder_from_name
from routellm_core.evaluation.metrics import evaluate, evaluate_router
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.difficulty import DifficultyRouter
from routellm_core.routers.mf import MatrixFactorizationRouter
from routellm_core.routers.random import RandomRouter
from routellm_core.routers.training import train_router

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


@pytest.fixture(scope="module")
def default() -> DifficultyRouter:
    router = load_router("default")
    assert isinstance(router, DifficultyRouter)
    return router


@pytest.fixture(params=["fast", "default"])
def shipped(request, fast, default) -> tuple[str, WinRateModel]:
    """Each shipped router that warm-starts: its name and the loaded router."""
    return request.param, {"fast": fast, "default": default}[request.param]


def obvious_battles(strong: str, weak: str, n: int) -> list[Battle]:
    return [Battle(prompt=p, model_a=strong, model_b=weak, winner="model_b") for p in GREETINGS[:n]] + [
        Battle(prompt=p, model_a=weak, model_b=strong, winner="model_b") for p in PROOFS[:n]
    ]


def test_no_labels_scores_exactly_like_the_init(shipped) -> None:
    name, init = shipped
    expected = init.predict_win_rate(PROMPTS)
    assert np.array_equal(train_router(init.name, [], init=name).predict_win_rate(PROMPTS), expected)
    assert np.array_equal(train_router(None, [], init=name).predict_win_rate(PROMPTS), expected)  # init's type
    # ties only, and a pair of the user's own models the init never saw: still the init's scores
    ties = [Battle(prompt=p, model_a="my-large", model_b="my-small", winner="tie") for p in PROMPTS]
    router = train_router(init.name, ties, init=init, strong_model="my-large", weak_model="my-small")
    assert np.array_equal(router.predict_win_rate(PROMPTS), expected)
    assert router.strong_model == "my-large" and router.metadata["warm_start"]["init"] == init.name
    assert router.calibrated_thresholds == init.calibrated_thresholds  # 5 prompts are too few to recalibrate


def test_warm_start_learns_the_labels_of_a_new_pair_and_round_trips(shipped, tmp_path) -> None:
    name, init = shipped
    battles = obvious_battles("gpt-4o", "gpt-4o-mini", 30)
    router = train_router(init.name, battles, init=name, strong_model="gpt-4o", weak_model="gpt-4o-mini")
    unseen = [GREETINGS[35], PROOFS[35]]
    greeting, proof = router.predict_win_rate(unseen)
    assert proof > 0.7 > 0.3 > greeting  # the init alone cannot tell them apart this clearly
    before = init.predict_win_rate(unseen)
    assert abs(before[1] - before[0]) < proof - greeting
    assert router.get_embedder().name == init.get_embedder().name  # the init's embedder is reused
    # thresholds recalibrated on the 60 training prompts: 0.5 sends half of them to strong
    assert router.metadata["calibrated_on_prompts"] == 60 and len(router.calibrated_thresholds) == 9
    scores = router.predict_win_rate(GREETINGS[:30] + PROOFS[:30])
    assert np.mean(scores >= router.threshold_for(0.5)) == pytest.approx(0.5, abs=0.02)
    loaded = load_router(router.save(tmp_path / "mine"))
    assert np.array_equal(loaded.predict_win_rate(unseen), router.predict_win_rate(unseen))
    assert loaded.metadata["warm_start"]["init"] == name
    # a later warm start from the saved folder works the same way, and so do labels on top of it
    again = train_router(None, [], init=tmp_path / "mine")
    assert np.array_equal(again.predict_win_rate(unseen), router.predict_win_rate(unseen))
    flipped = [Battle(prompt=b.prompt, model_a=b.model_a, model_b=b.model_b, winner="model_a") for b in battles]
    undone = train_router(None, flipped * 3, init=tmp_path / "mine")
    greeting2, proof2 = undone.predict_win_rate(unseen)
    assert proof2 - greeting2 < proof - greeting  # the new labels contradict the first ones: the gap shrinks


def test_difficulty_pairwise_win_rate_of_the_warm_pair(default) -> None:
    """The warm-started pair scores through its correction in ``pairwise_win_rate`` too, either way round; other
    pairs keep the init's profiles."""
    battles = obvious_battles("gpt-4o", "gpt-4o-mini", 30)
    router = train_router("difficulty", battles, init=default, strong_model="gpt-4o", weak_model="gpt-4o-mini")
    unseen = [GREETINGS[35], PROOFS[35]]
    np.testing.assert_allclose(
        router.pairwise_win_rate(unseen, "gpt-4o", "gpt-4o-mini"), router.predict_win_rate(unseen)
    )
    np.testing.assert_allclose(
        router.pairwise_win_rate(unseen, "gpt-4o-mini", "gpt-4o"), 1 - router.predict_win_rate(unseen)
    )
    other = (default.strong_model, default.weak_model)
    np.testing.assert_allclose(router.pairwise_win_rate(unseen, *other), default.predict_win_rate(unseen))


@pytest.mark.parametrize("name", ["fast", "default"])
def test_few_contradicting_labels_stay_within_noise_of_the_init(name, fast, default, shared_data_dir) -> None:
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
    init = {"fast": fast, "default": default}[name]
    scores = init.predict_win_rate(list(held_out.prompts))
    init_apgr = evaluate(scores, held_out).apgr
    rng = np.random.default_rng(1)
    boot = []
    for _ in range(200):
        idx = rng.integers(0, len(held_out), len(held_out))
        boot.append(evaluate(scores[idx], held_out.subset(idx)).apgr)
    noise = 2 * float(np.std(boot))
    assert init_apgr > 0.55 and noise < 0.06

    pair = {"strong_model": bench.strong_model, "weak_model": bench.weak_model}
    warm = train_router(init.name, flipped, init=init, **pair)
    assert evaluate_router(warm, held_out).apgr >= init_apgr - noise
    loose = train_router(init.name, flipped, init=init, warm_prior=1e-2, warm_scale_prior=1e-2, **pair)
    assert evaluate_router(loose, held_out).apgr < init_apgr - noise  # the check above can fail


def test_refuses_another_router_type_or_embedding_space(fast, default) -> None:
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
    with pytest.raises(CheckpointError, match="cannot warm-start a 'mf' router from a 'difficulty' router"):
        train_router("mf", battles, init="default")
    with pytest.raises(CheckpointError, match="difficulty can only warm-start from another difficulty router"):
        DifficultyRouter().fit(battles, init=fast)
    with pytest.raises(CheckpointError, match="embedder mismatch"):
        DifficultyRouter(embedder=minilm).fit(battles, init=default)
    with pytest.raises(CheckpointError, match="not fitted"):
        DifficultyRouter().fit(battles, init=DifficultyRouter())
    with pytest.raises(InvalidInputError, match="init="):
        train_router(None, battles)


def test_a_corrupt_difficulty_correction_is_refused(default, tmp_path) -> None:
    import json

    from safetensors.numpy import load_file, save_file

    battles = obvious_battles(default.strong_model, default.weak_model, 10)
    router = train_router("difficulty", battles, init=default)
    folder = router.save(tmp_path / "mine")
    assert router.metadata["pair_correction"] is True
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({**tensors, "pair_correction": tensors["pair_correction"][:-1]}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="pair_correction has shape"):
        load_router(folder)
    config = json.loads((folder / "config.json").read_text())
    config["metadata"]["pair_correction"] = "yes"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="pair_correction must be true or false"):
        load_router(folder)
    config["metadata"]["pair_correction"] = True
    (folder / "config.json").write_text(json.dumps(config))
    huge = tensors["pair_correction"].copy()
    huge[3] = 1e300
    save_file({**tensors, "pair_correction": huge}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="crafted or corrupt"):
        load_router(folder)


def test_hyperparameters_are_checked_before_training(fast) -> None:
    battles = obvious_battles(fast.strong_model, fast.weak_model, 5)
    with pytest.raises(InvalidInputError, match="'epochs' = -3 is invalid"):
        train_router("mf", battles, embedder=fast.embedder, epochs=-3)
    with pytest.raises(InvalidInputError, match=r"takes no parameter\(s\) \['epoch'\]"):
        train_router("mf", battles, embedder=fast.embedder, epoch=3)
    with pytest.raises(InvalidInputError, match="'warm_prior' = 0"):
        train_router("mf", battles, init=fast, warm_prior=0)
    with pytest.raises(InvalidInputError, match="difficulty parameter 'warm_scale_prior' = -1"):
        train_router("difficulty", battles, init="default", warm_scale_prior=-1)


def test_difficulty_warm_start_from_itself_keeps_what_it_learned(default) -> None:
    pair = {"strong_model": "gpt-4o", "weak_model": "gpt-4o-mini"}
    router = train_router("difficulty", obvious_battles("gpt-4o", "gpt-4o-mini", 30), init=default, **pair)
    unseen = [GREETINGS[35], PROOFS[35]]
    before = router.predict_win_rate(unseen)
    router.fit([], init=router)  # no new label: the same router, correction included
    np.testing.assert_array_equal(router.predict_win_rate(unseen), before)


def test_difficulty_warm_start_takes_golden_labels_of_the_pair(default, caplog) -> None:
    from routellm_core import GoldenLabel

    labels = [GoldenLabel(prompt=p, scores={"gpt-4o": 0.0, "gpt-4o-mini": 1.0}) for p in GREETINGS[:30]]
    labels += [GoldenLabel(prompt=p, scores={"gpt-4o": 1.0, "gpt-4o-mini": 0.0}) for p in PROOFS[:30]]
    other = GoldenLabel(prompt="unrelated", scores={"gpt-4o": 1.0, "claude": 0.0})
    router = train_router(None, [*labels, other], init="default", strong_model="gpt-4o", weak_model="gpt-4o-mini")
    greeting, proof = router.predict_win_rate([GREETINGS[35], PROOFS[35]])
    assert proof > 0.7 > 0.3 > greeting  # the labels, compared as battles, taught it
    assert router.metadata["n_battles"] == 60 and router.metadata["warm_start_ignored_battles"] == 1
    assert "1 others ignored" in caplog.text


def test_difficulty_init_correction_carries_over_only_to_its_own_profiles(default) -> None:
    """The init's correction was learned on its pair's profiles: it carries to new names that start from them
    and, sign flipped, to the same pair the other way round; a pair with profiles of its own starts clean."""
    strong, weak = default.strong_model, default.weak_model
    first = train_router("difficulty", obvious_battles(strong, weak, 30), init=default)
    unseen = [GREETINGS[35], PROOFS[35], "What is the capital of France?"]
    scores = first.predict_win_rate(unseen)
    renamed = train_router(None, [], init=first, strong_model="my-large", weak_model="my-small")
    assert renamed.metadata["warm_start_fit"]["init_correction"] == "carried"
    np.testing.assert_allclose(renamed.predict_win_rate(unseen), scores)
    swapped = train_router(None, [], init=first, strong_model=weak, weak_model=strong)
    assert swapped.metadata["warm_start_fit"]["init_correction"] == "carried, pair swapped"
    np.testing.assert_allclose(swapped.predict_win_rate(unseen), 1 - scores)
    others = [m for m in default.models_ if m not in (strong, weak)][:2]
    own = train_router(None, [], init=first, strong_model=others[0], weak_model=others[1])
    assert own.metadata["warm_start_fit"]["init_correction"] == "dropped: other profiles"
    np.testing.assert_allclose(own.predict_win_rate(unseen), default.pairwise_win_rate(unseen, *others))
