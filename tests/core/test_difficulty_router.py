"""The difficulty router: fitted on obvious synthetic golden labels, saved and loaded, refusing bad checkpoints
and bad training data; and the shipped ``default`` (a difficulty router) loads, carries its calibration and routes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from routellm_core import (
    STRONG_REFERENCE,
    WEAK_REFERENCE,
    Battle,
    CheckpointError,
    InvalidInputError,
    NotFittedError,
    TrainingDataError,
    data,
    evaluation,
    load_router,
)
from routellm_core.data.records import GoldenLabel
from routellm_core.embedding.static import STATIC_NAME
from routellm_core.routers.difficulty import FEATURE_NAMES, MAX_FEATURE_CHARS, DifficultyRouter, prompt_features
from routellm_core.routing.policy import RoutingPolicy

REPO = Path(__file__).resolve().parents[2]
S, W = STRONG_REFERENCE, WEAK_REFERENCE
MID = "mid-model"

#: Hard reasoning: every model but the strong one fails. Easy chit-chat and trivia: every model is right.
HARD = [
    "Prove that there are infinitely many primes of the form 4k+3, and justify every step of the argument.",
    "Derive the closed form of the integral of x^2 e^{-x} from 0 to infinity and justify each step rigorously.",
    "Write a lock-free concurrent queue in C++ with memory-order annotations and prove its linearizability.",
    "Solve the system 3x + 2y - z = 1, 2x - 2y + 4z = -2, -x + y/2 - z = 0 step by step and verify it.",
    "Prove the Cauchy-Schwarz inequality for inner product spaces and state when equality holds, with proof.",
    "Compute the eigenvalues and eigenvectors of [[2, 1, 0], [1, 3, 1], [0, 1, 4]] and show your working.",
    "Implement Dijkstra's algorithm with a binary heap in Rust, prove its correctness and analyse complexity.",
    "Find all real solutions of x^4 - 5x^2 + 4 = 0, prove there are no others, and explain each step.",
    "Prove that every continuous function on a closed interval is uniformly continuous, step by step.",
    "Derive the Black-Scholes equation from a self-financing portfolio argument, justifying every step.",
    "Show that the halting problem is undecidable with a rigorous diagonal argument, step by step.",
    "Prove by strong induction that every integer n >= 2 is a product of primes, and justify the base case.",
]
EASY = [
    "Hi there!",
    "What is the capital of France?",
    "Say hello to my friend Anna.",
    "What colour is the sky?",
    "Thanks, have a nice day.",
    "How many legs does a cat have?",
    "Good morning!",
    "Who wrote Hamlet?",
    "Say goodbye in French.",
    "What is 2 + 2?",
    "Name a fruit.",
    "Is water wet?",
]
UNSEEN_HARD = [
    "Prove that the square root of 2 is irrational, justifying every step of the proof.",
    "Derive the formula for the sum of a geometric series and prove that it converges for |r| < 1.",
    "Implement a red-black tree in C with deletion and prove that it stays balanced, step by step.",
]
UNSEEN_EASY = ["Hello!", "What is the capital of Spain?", "Thank you!"]


def _labels() -> list[GoldenLabel]:
    hard = [GoldenLabel(prompt=p, scores={S: 1.0, W: 0.0, MID: 0.0}, source="synthetic") for p in HARD]
    easy = [GoldenLabel(prompt=p, scores={S: 1.0, W: 1.0, MID: 1.0}, source="synthetic") for p in EASY]
    return hard + easy


@pytest.fixture(scope="module")
def fitted() -> DifficultyRouter:
    return DifficultyRouter().fit(_labels())


def test_predictions_move_the_right_way(fitted: DifficultyRouter) -> None:
    hard = fitted.predict_win_rate(UNSEEN_HARD)
    easy = fitted.predict_win_rate(UNSEEN_EASY)
    assert hard.min() > easy.max()
    assert np.all((hard >= 0) & (hard <= 1)) and np.all((easy >= 0) & (easy <= 1))
    assert fitted.success_rate(UNSEEN_HARD, W).max() < fitted.success_rate(UNSEEN_EASY, W).min()
    # every model is right on easy prompts: the strong call buys little there
    assert easy.max() < 0.6 < hard.min()
    choices = fitted.route(UNSEEN_HARD + UNSEEN_EASY, threshold=float((hard.min() + easy.max()) / 2))
    assert choices == ["strong"] * len(UNSEEN_HARD) + ["weak"] * len(UNSEEN_EASY)


def test_pairwise_win_rate_is_antisymmetric_and_matches_the_reference_pair(fitted: DifficultyRouter) -> None:
    texts = UNSEEN_HARD + UNSEEN_EASY
    np.testing.assert_allclose(fitted.pairwise_win_rate(texts, S, W), fitted.predict_win_rate(texts), atol=1e-12)
    np.testing.assert_allclose(
        fitted.pairwise_win_rate(texts, MID, W), 1.0 - fitted.pairwise_win_rate(texts, W, MID), atol=1e-12
    )
    with pytest.raises(TrainingDataError, match="not in the training data"):
        fitted.pairwise_win_rate(texts, "never-seen", W)


def test_battles_add_profile_observations(fitted: DifficultyRouter) -> None:
    """A model seen only in battles gets a profile: winning every hard battle raises its hard-prompt success."""
    battles = [Battle(prompt=p, model_a="newcomer", model_b=W, winner="model_a") for p in HARD]
    router = DifficultyRouter().fit([*_labels(), *battles])
    assert router.success_rate(UNSEEN_HARD, "newcomer").min() > router.success_rate(UNSEEN_HARD, W).max()
    assert router.metadata["n_battles"] == len(battles)


def test_ablation_traits(fitted: DifficultyRouter) -> None:
    length_only = DifficultyRouter(traits="length").fit(_labels())
    assert np.all(length_only.model_coefs_[:, 2] == 0.0)
    difficulty_only = DifficultyRouter(traits="difficulty", use_prompt_features=False).fit(_labels())
    assert np.all(difficulty_only.model_coefs_[:, 1] == 0.0)
    assert np.all(difficulty_only.difficulty_weights_[-len(FEATURE_NAMES) :] == 0.0)
    assert difficulty_only.predict_win_rate(UNSEEN_HARD).min() > difficulty_only.predict_win_rate(UNSEEN_EASY).max()


def test_prompt_features_are_deterministic_and_named() -> None:
    texts = ["def f(x):\n    return x**2\n", "Solve $x^2 = 4$.", "Which? A. one\nB. two", "héllo wörld", "x" * 200_000]
    a, b = prompt_features(texts), prompt_features(list(texts))
    assert a.shape == (len(texts), len(FEATURE_NAMES)) and np.array_equal(a, b) and np.isfinite(a).all()
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    assert a[0, col["code_markers"]] > a[3, col["code_markers"]]
    assert a[1, col["math_markers"]] > a[3, col["math_markers"]]
    assert a[2, col["lettered_options"]] > 0 and a[3, col["non_ascii_share"]] > 0
    # only the start is read, as the embedder reads only the start: a huge prompt scores like its first 2 KB
    assert np.array_equal(prompt_features(["x" * MAX_FEATURE_CHARS]), a[4:5])


def test_save_load_round_trip(fitted: DifficultyRouter, tmp_path: Path) -> None:
    fitted.calibrated_thresholds = {"0.5": 0.55}
    folder = fitted.save(tmp_path / "difficulty")
    config = json.loads((folder / "config.json").read_text())
    assert config["router"] == "difficulty" and config["embedder"] == STATIC_NAME
    assert config["params"] == {
        "alpha": 10.0,
        "slope_l2": 0.01,
        "min_models": 2,
        "traits": "length+difficulty",
        "use_prompt_features": True,
        "warm_prior": 10.0,
        "warm_scale_prior": 10.0,
        "profile_prior": 10.0,
    }
    loaded = load_router(folder)
    assert isinstance(loaded, DifficultyRouter) and loaded.models_ == fitted.models_
    texts = UNSEEN_HARD + UNSEEN_EASY
    np.testing.assert_allclose(loaded.predict_win_rate(texts), fitted.predict_win_rate(texts), atol=1e-12)
    assert loaded.threshold_for(0.5) == pytest.approx(0.55)


def _saved(fitted: DifficultyRouter, tmp_path: Path, name: str) -> Path:
    return fitted.save(tmp_path / name)


def test_corrupt_checkpoints_are_refused(fitted: DifficultyRouter, tmp_path: Path) -> None:
    folder = _saved(fitted, tmp_path, "nan")
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["difficulty_weights"][0] = np.nan
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="NaN"):
        load_router(folder)

    folder = _saved(fitted, tmp_path, "shape")
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["model_coefs"] = tensors["model_coefs"][:, :2].copy()
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="shape"):
        load_router(folder)

    folder = _saved(fitted, tmp_path, "scale")
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["feature_scale"][3] = 0.0
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="positive"):
        load_router(folder)

    folder = _saved(fitted, tmp_path, "truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_router(folder)

    folder = _saved(fitted, tmp_path, "features")
    config = json.loads((folder / "config.json").read_text())
    config["metadata"]["feature_names"] = ["log_chars"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="prompt features"):
        load_router(folder)

    folder = _saved(fitted, tmp_path, "param")
    config = json.loads((folder / "config.json").read_text())
    config["params"]["traits"] = "everything"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="traits"):
        load_router(folder)

    folder = _saved(fitted, tmp_path, "models")
    config = json.loads((folder / "config.json").read_text())
    config["metadata"]["models"] = [S, W]  # fewer models than the weights hold
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape"):
        load_router(folder)

    folder = _saved(fitted, tmp_path, "mismatched")
    shutil.copy(folder / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="embedder mismatch"):
        from routellm_core.embedding.embedders import TransformerEmbedder

        load_router(folder, embedder=TransformerEmbedder())


def test_bad_training_data_and_params_are_refused() -> None:
    with pytest.raises(NotFittedError):
        DifficultyRouter().predict_win_rate(["hi"])
    battles = [Battle(prompt=p, model_a=S, model_b=W, winner="model_a") for p in HARD]
    with pytest.raises(TrainingDataError, match="golden labels"):
        DifficultyRouter().fit(battles)
    with pytest.raises(TrainingDataError, match="reference model"):
        DifficultyRouter(strong_model="absent-model").fit(_labels())
    with pytest.raises(InvalidInputError, match="alpha"):
        DifficultyRouter(alpha=0.0).fit(_labels())
    with pytest.raises(InvalidInputError, match="traits"):
        DifficultyRouter(traits="all").fit(_labels())  # type: ignore[arg-type]
    with pytest.raises(TrainingDataError, match="Battle and GoldenLabel"):
        DifficultyRouter().fit(["not a record"])  # type: ignore[list-item]


def test_judge_grades_are_scaled_per_source() -> None:
    """Grades on a 1-10 scale train like fractions: the same router as the labels divided down to [0, 1]."""
    graded = [GoldenLabel(prompt=g.prompt, scores={m: 1 + 9 * s for m, s in g.scores.items()}) for g in _labels()]
    a = DifficultyRouter().fit(graded)
    b = DifficultyRouter().fit([GoldenLabel(prompt=g.prompt, scores=g.scores) for g in _labels()])
    np.testing.assert_allclose(a.predict_win_rate(UNSEEN_HARD), b.predict_win_rate(UNSEEN_HARD), atol=1e-9)


# ---- the shipped default ---------------------------------------------------------------------------------------
def test_shipped_default_is_a_calibrated_difficulty_router(shared_data_dir: Path) -> None:
    router = load_router("default")
    assert isinstance(router, DifficultyRouter)
    assert router.get_embedder().name == STATIC_NAME
    assert (router.strong_model, router.weak_model) == (S, W)
    assert sorted(float(k) for k in router.calibrated_thresholds) == pytest.approx([i / 10 for i in range(1, 10)])
    thresholds = [router.calibrated_thresholds[k] for k in sorted(router.calibrated_thresholds, key=float)]
    assert thresholds == sorted(thresholds, reverse=True)  # more strong calls, lower threshold
    # no threshold, no strong_fraction: the calibrated threshold for half of the calibration traffic, which it
    # routes about half to strong
    policy = RoutingPolicy(router)
    assert policy.threshold == pytest.approx(router.threshold_for(0.5))
    spec = importlib.util.spec_from_file_location("train_default", REPO / "scripts" / "train_default.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    traffic = script.calibration_prompts(router.metadata["sources"])
    share = np.mean([d.choice == "strong" for d in policy.decide_batch(traffic)])
    assert share == pytest.approx(0.5, abs=0.02)


# ---- the default recipe on benchmarks it never saw ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("bench_name", ["mmlu", "gsm8k"])
def test_default_recipe_beats_random_on_a_benchmark_it_never_saw(bench_name: str, shared_data_dir: Path) -> None:
    """The shipped recipe trained with the benchmark left out (protocol (a)) clears random's 99th percentile there
    and is not below the length heuristic by more than that percentile's distance from random's mean."""
    router = DifficultyRouter().fit(data.training_labels(data.TRAINING_SOURCES, exclude=[bench_name]))
    bench = data.load_benchmark(bench_name)
    apgr = evaluation.apgr(router.predict_win_rate(list(bench.prompts)), bench)
    rng = np.random.default_rng(0)
    draws = np.array([evaluation.apgr(rng.permutation(len(bench)).astype(float), bench) for _ in range(500)])
    q99 = float(np.quantile(draws, 0.99))
    length = evaluation.apgr(evaluation.length_scores(bench), bench)
    assert apgr >= q99, f"{bench_name}: APGR {apgr:.3f}, random's 99th percentile {q99:.3f}"
    assert apgr >= length - (q99 - draws.mean()), f"{bench_name}: APGR {apgr:.3f}, length {length:.3f}"


@pytest.mark.slow
def test_bench_default_router_quick_run(shared_data_dir: Path, tmp_path: Path) -> None:
    """Smoke test of ``python -m bench.default_router --quick`` (tiny slices; its numbers are meaningless)."""
    cmd = [sys.executable, "-m", "bench.default_router", "--quick", "--targets", "mt_bench,dcrouter", "--skip-speed"]
    cmd += ["--results-dir", str(tmp_path), "--markdown", ""]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "ROUTELLM_DATA_DIR": str(shared_data_dir)}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "default_router.json").read_text())
    assert set(res["quality"]) == {"mt_bench", "dcrouter"}
    names = {r["name"] for r in res["quality"]["mt_bench"]["results"]}
    assert {"random", "length", "oracle", "difficulty (default)", "length trait only", "mf[static] (fast)"} <= names
    assert res["quality"]["dcrouter"]["scored_pair"] == res["quality"]["dcrouter"]["pair"]
    from bench.default_router import SECTION, section

    assert section(res)[0] == SECTION


def test_cli_trains_it_on_golden_labels_as_they_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from routellm_core.cli import main

    golden = tmp_path / "labels.jsonl"
    golden.write_text("\n".join(json.dumps({"prompt": g.prompt, "scores": g.scores}) for g in _labels()) + "\n")
    out = tmp_path / "router"
    args = ["train", "--router", "difficulty", "--golden", str(golden), "--strong-model", S, "--weak-model", W]
    assert main([*args, "--out", str(out)]) == 0
    assert f"trained difficulty on {len(_labels())} golden labels and 0 battles" in capsys.readouterr().out
    router = load_router(out)
    assert router.predict_win_rate(UNSEEN_HARD).min() > router.predict_win_rate(UNSEEN_EASY).max()
