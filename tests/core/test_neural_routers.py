"""The torch routers ``bert`` and ``causal_llm``: a few CPU training steps on tiny real data.

Checks that training moves scores towards the labels, that save/load round-trips give identical scores, that
checkpoints are safetensors + JSON holding only what was trained, and that missing bases, corrupt files and
unfitted routers fail with clear errors. The SmolLM2 GGUF conversion is cached (``$ROUTELLM_CACHE_DIR`` or
``~/.cache/routellm``), so only the first run pays its ~30 s.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from routellm_core import (
    STRONG_REFERENCE,
    WEAK_REFERENCE,
    Battle,
    CheckpointError,
    GoldenLabel,
    NotFittedError,
    TrainingDataError,
    load_router,
)
from routellm_core.checkpoint import CONFIG_FILE, WEIGHTS_FILE

pytest.importorskip("torch")
pytest.importorskip("transformers")
# peft calls a transformers API that transformers 5 renamed; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

S, W = STRONG_REFERENCE, WEAK_REFERENCE
DATA_DIR = Path(os.environ.get("ROUTELLM_DATA_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "data")

HARD = [
    "Prove that there are infinitely many primes of the form 4k+3.",
    "Derive the closed form of the integral of x^2 e^{-x} from 0 to infinity and justify each step.",
    "Solve the system of equations 3x + 2y - z = 1, 2x - 2y + 4z = -2, -x + y/2 - z = 0 step by step.",
    "Explain the proof of the Cauchy-Schwarz inequality for inner product spaces rigorously.",
    "Compute the eigenvalues of the matrix [[2, 1], [1, 3]] and the corresponding eigenvectors.",
    "Find all real solutions of x^4 - 5x^2 + 4 = 0 and prove there are no others.",
    "Prove that the square root of 2 is irrational using infinite descent.",
    "Evaluate the limit of (1 + 1/n)^(n^2) / e^n as n tends to infinity.",
    "Show that every finite integral domain is a field, with a complete proof.",
    "Compute the determinant of the 4x4 Vandermonde matrix and prove the general formula.",
    "Prove by induction that the sum of the first n cubes equals the square of the n-th triangular number.",
    "Find the Fourier series of the sawtooth wave f(x) = x on (-pi, pi) and prove its convergence.",
]
EASY = [
    "Hi there!",
    "Say hello to my friend Anna.",
    "What is your name?",
    "Thanks, have a nice day.",
    "Good morning! How are you?",
    "Say goodbye in French.",
    "Hello, nice to meet you.",
    "Hey, how is it going?",
    "Thank you so much!",
    "Good night, see you tomorrow.",
    "Hi! Just wanted to say hello.",
    "Have a lovely weekend!",
]
HARD_TEST = [
    "Prove that the product of two odd integers is odd, and compute the integral of x^3 from 0 to 2.",
    "Show that the eigenvalues of a symmetric real matrix are real, with a rigorous proof.",
    "Solve x^3 - 6x^2 + 11x - 6 = 0 and prove these are all the roots.",
]
EASY_TEST = ["Hello! How are you today?", "Thanks a lot, bye!", "Good morning, friend."]


def _battles(hard: list[str] = HARD, easy: list[str] = EASY) -> list[Battle]:
    """Learnable labels on real text: hard prompts -> strong wins, chit-chat -> weak wins."""
    out = [Battle(prompt=p, model_a=S, model_b=W, winner="model_a") for p in hard]
    out += [Battle(prompt=p, model_a=W, model_b=S, winner="model_a") for p in easy]
    out += [Battle(prompt=p, model_a=S, model_b="some-other-model", winner="model_b") for p in hard[:3]]  # ignored
    return out


def _gap(router) -> float:
    scores = router.predict_win_rate(HARD_TEST + EASY_TEST)
    return float(scores[: len(HARD_TEST)].mean() - scores[len(HARD_TEST) :].mean())


def _mmlu_golden(limit: int = 24) -> list[GoldenLabel]:
    """Golden labels from two MMLU subjects of the shared data (read with the csv module)."""
    out: list[GoldenLabel] = []
    for subject in ("college_mathematics", "high_school_geography"):
        path = DATA_DIR / "routellm-evals" / "mmlu" / "responses" / f"mmlu_{subject}.csv"
        if not path.is_file():
            pytest.skip(f"shared MMLU data not found at {path} (set ROUTELLM_DATA_DIR)")
        with path.open(newline="", encoding="utf-8") as handle:
            for i, row in enumerate(csv.DictReader(handle)):
                if i >= limit // 2:
                    break
                scores = {m: float(row[m] == "True") for m in (S, W)}
                out.append(GoldenLabel(prompt=row["prompt"], scores=scores, source=f"mmlu_{subject}"))
    return out


def _set_param(path: Path, key: str, value: object) -> None:
    config = json.loads((path / CONFIG_FILE).read_text())
    config["params"][key] = value
    (path / CONFIG_FILE).write_text(json.dumps(config))


# ---- bert ------------------------------------------------------------------------------------------------
BERT_KW = dict(max_length=32, epochs=3, batch_size=9, lr=3e-4, validation_fraction=0.25, show_progress=False)


@pytest.fixture(scope="module")
def bert_pair():
    """The bert router before (no steps, same seed) and after a few training steps on the synthetic battles."""
    from routellm_core.routers.bert import BertRouter

    before = BertRouter(**BERT_KW, max_steps=0).fit(_battles())
    after = BertRouter(**BERT_KW).fit(_battles())
    return before, after


@pytest.fixture(scope="module")
def bert_mmlu():
    """bert trained for a few steps on MMLU golden labels (real data, ties included)."""
    from routellm_core.routers.bert import BertRouter

    return BertRouter(max_length=48, epochs=1, batch_size=8, max_steps=3, show_progress=False).fit(_mmlu_golden())


@pytest.mark.slow
def test_bert_training_moves_scores_towards_labels(bert_pair) -> None:
    before, after = bert_pair
    assert _gap(after) > _gap(before) + 0.1
    assert _gap(after) > 0.1
    summary = after.metadata["training"]
    assert summary["class_counts"] == {"strong_wins": len(HARD), "tie": 0, "weak_wins": len(EASY)}
    assert summary["validation_examples"] > 0 and summary["steps"] > 0
    assert before.metadata["training"]["steps"] == 0


@pytest.mark.slow
def test_bert_round_trip_identical_scores(bert_mmlu, tmp_path) -> None:
    from routellm_core.routers.bert import BertRouter

    texts = [*HARD_TEST, *EASY_TEST, "word " * 5000]
    expected = bert_mmlu.predict_win_rate(texts)
    assert np.all((expected >= 0) & (expected <= 1))
    assert bert_mmlu.metadata["training"]["class_counts"]["tie"] > 0  # golden labels: equal scores tie
    bert_mmlu.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert config["router"] == "bert" and config["embedder"] is None
    assert config["params"]["base_model"] is None and config["params"]["weights_dtype"] == "float16"
    loaded = load_router(tmp_path / "ckpt")
    assert isinstance(loaded, BertRouter)
    assert loaded.fingerprint() == bert_mmlu.fingerprint()  # in memory, before the loaded weights build a network
    np.testing.assert_allclose(loaded.predict_win_rate(texts), expected, atol=1e-6)
    assert loaded.fingerprint() == bert_mmlu.fingerprint()  # and after
    # Batching and order do not change a text's score.
    single = loaded.predict_win_rate([texts[0]])
    np.testing.assert_allclose(single, expected[:1], atol=1e-5)
    # Saving a loaded (never used) router writes the same weights back.
    reloaded = load_router(BertRouter.load(tmp_path / "ckpt").save(tmp_path / "again"))
    np.testing.assert_allclose(reloaded.predict_win_rate(texts), expected, atol=1e-6)


@pytest.mark.slow
def test_bert_lazy_load_is_thread_safe(bert_mmlu, tmp_path) -> None:
    bert_mmlu.save(tmp_path / "ckpt")
    loaded = load_router(tmp_path / "ckpt")
    texts = HARD_TEST + EASY_TEST
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(loaded.predict_win_rate(texts))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_allclose(r, bert_mmlu.predict_win_rate(texts), atol=1e-6)


@pytest.mark.slow
def test_bert_fit_is_seeded() -> None:
    from routellm_core.routers.bert import BertRouter

    kw = dict(BERT_KW, max_steps=1, validation_fraction=0.0)
    a = BertRouter(**kw).fit(_battles()).predict_win_rate(HARD_TEST)
    b = BertRouter(**kw).fit(_battles()).predict_win_rate(HARD_TEST)
    np.testing.assert_array_equal(a, b)
    # Another seed, another head initialisation (no training step needed to see it).
    c = BertRouter(**dict(kw, max_steps=0)).fit(_battles(), seed=1).predict_win_rate(HARD_TEST)
    assert not np.allclose(a, c)


def test_bert_not_fitted_and_bad_data() -> None:
    from routellm_core.routers.bert import BertRouter

    router = load_router("bert", max_length=16)
    assert isinstance(router, BertRouter) and not router.uses_embedder
    with pytest.raises(NotFittedError):
        router.predict_win_rate(["hello"])
    with pytest.raises(NotFittedError):
        router.save("/tmp/never-written")
    other = [Battle(prompt="hi", model_a="x", model_b="y", winner="tie")]
    with pytest.raises(TrainingDataError, match="compares"):
        router.fit(other)
    with pytest.raises(CheckpointError, match="/nonexistent/encoder"):
        BertRouter(base_model="/nonexistent/encoder").fit(_battles())


def test_bert_checkpoint_errors(bert_mmlu, tmp_path) -> None:
    ckpt = bert_mmlu.save(tmp_path / "ckpt")
    # A missing base model.
    _set_param(ckpt, "base_model", "/nonexistent/encoder")
    with pytest.raises(CheckpointError, match="/nonexistent/encoder"):
        load_router(ckpt)
    _set_param(ckpt, "base_model", None)
    # Out-of-range parameters.
    _set_param(ckpt, "weights_dtype", "float64")
    with pytest.raises(CheckpointError, match="weights_dtype"):
        load_router(ckpt)
    _set_param(ckpt, "weights_dtype", "float16")
    weights = ckpt / WEIGHTS_FILE
    good = weights.read_bytes()
    # Truncated and garbage weights.
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError):
        load_router(ckpt)
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        load_router(ckpt)
    # Well-formed safetensors with the wrong tensors.
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3, dtype=np.float16)}, str(weights), metadata={"routellm.base_fingerprint": "{}"})
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_router(ckpt)
    # A checkpoint made for another architecture.
    weights.write_bytes(good)
    from safetensors import safe_open

    with safe_open(str(weights), framework="numpy") as handle:
        header = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - safe_open has no __iter__
    fingerprint = json.loads(header["routellm.base_fingerprint"])
    header["routellm.base_fingerprint"] = json.dumps({**fingerprint, "hidden_size": 1024})
    save_file(tensors, str(weights), metadata=header)
    with pytest.raises(CheckpointError, match="does not match"):
        load_router(ckpt)


# ---- causal_llm ------------------------------------------------------------------------------------------
CAUSAL_KW = dict(
    max_length=24,
    system_prompt="Label the query: A strong, B tie, C weak.",
    lora_r=4,
    lora_alpha=8,
    lora_layers=[-2, -1],
    epochs=1,
    batch_size=6,
    eval_batch_size=8,
    lr=3e-3,
    validation_fraction=0.0,
    show_progress=False,
)


@pytest.fixture(scope="session")
def smol_base() -> Path:
    """SmolLM2-135M-Instruct converted from the packaged GGUF (cached across runs)."""
    pytest.importorskip("gguf")
    pytest.importorskip("peft")
    from routellm_core.routers.causal_llm import convert_gguf, default_gguf_path

    try:
        gguf = default_gguf_path()
    except CheckpointError as exc:
        pytest.skip(str(exc))
    return convert_gguf(gguf)


@pytest.fixture(scope="module")
def causal_pair(smol_base):
    """The causal_llm router on the base alone (zero steps) and after a few LoRA steps."""
    from routellm_core.routers.causal_llm import CausalLLMRouter

    battles = _battles(HARD[:9], EASY[:9])
    before = CausalLLMRouter(**CAUSAL_KW, max_steps=0).fit(battles)
    after = CausalLLMRouter(**CAUSAL_KW).fit(battles)
    return before, after


@pytest.mark.slow
def test_causal_llm_training_moves_scores_towards_labels(causal_pair) -> None:
    before, after = causal_pair
    assert after.metadata["training"]["steps"] == 3
    assert _gap(after) > _gap(before) + 0.05


@pytest.mark.slow
def test_causal_llm_round_trip_and_lora_only_checkpoint(causal_pair, tmp_path) -> None:
    from safetensors import safe_open

    from routellm_core.routers.causal_llm import CausalLLMRouter

    _, after = causal_pair
    texts = [*HARD_TEST, *EASY_TEST, "x" * 1_000_000]
    expected = after.predict_win_rate(texts)
    ckpt = after.save(tmp_path / "ckpt")
    assert sorted(p.name for p in ckpt.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    assert (ckpt / WEIGHTS_FILE).stat().st_size < 2_000_000  # adapters of two blocks, not the 135M base
    with safe_open(str(ckpt / WEIGHTS_FILE), framework="numpy") as handle:
        names = list(handle.keys())
    assert names and all("lora_" in n for n in names)
    assert all(".layers.28." in n or ".layers.29." in n for n in names)
    loaded = load_router(ckpt)
    assert isinstance(loaded, CausalLLMRouter)
    assert loaded.label_tokens == ["A", "B", "C"] and loaded.lora_layers == [-2, -1]
    np.testing.assert_allclose(loaded.predict_win_rate(texts), expected, atol=1e-6)


def test_causal_llm_checkpoint_errors(causal_pair, tmp_path) -> None:
    _, after = causal_pair
    ckpt = after.save(tmp_path / "ckpt")
    _set_param(ckpt, "base_model", str(tmp_path / "no-such-llama"))
    with pytest.raises(CheckpointError, match="no-such-llama"):
        load_router(ckpt)
    _set_param(ckpt, "base_model", None)
    weights = ckpt / WEIGHTS_FILE
    good = weights.read_bytes()
    weights.write_bytes(good[:100])
    with pytest.raises(CheckpointError):
        load_router(ckpt)
    weights.write_bytes(good)
    # The adapters belong to one base: different base weights are refused on first use.
    router = load_router(ckpt)
    router.base_fingerprint_ = {**router.base_fingerprint_, "embedding_sum": 123.0}
    with pytest.raises(CheckpointError, match="does not match"):
        router.predict_win_rate(["hello"])


def test_causal_llm_rejects_multi_token_labels(smol_base) -> None:
    from routellm_core.routers.causal_llm import CausalLLMRouter

    with pytest.raises(ValueError, match="label token"):
        CausalLLMRouter(**CAUSAL_KW, label_tokens=("strongly preferred", "B", "C")).fit(_battles())
    with pytest.raises(ValueError, match="3 distinct"):
        CausalLLMRouter(label_tokens=("A", "A", "C"))
    with pytest.raises(NotFittedError):
        CausalLLMRouter().predict_win_rate(["hi"])
