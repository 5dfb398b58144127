"""The router core: embedders, the registry, random / sw_ranking / mf routers, checkpoints, calibration."""

from __future__ import annotations

import json
import os
import pathlib
import stat

import numpy as np
import pytest
from obvious_prompts import EASY, HARD

from langchain_routellm import LangChainEmbedder
from llamaindex_routellm import LlamaIndexEmbedder
from routellm_core import (
    STRONG_REFERENCE,
    WEAK_REFERENCE,
    Battle,
    CheckpointError,
    InvalidInputError,
    InvalidThresholdError,
    NotFittedError,
    TrainingDataError,
    UnknownRouterError,
    available_routers,
    load_router,
)
from routellm_core.embedding.cache import CachedEmbedder
from routellm_core.embedding.embedders import TransformerEmbedder
from routellm_core.evaluation.calibration import calibrate_threshold, calibrate_thresholds, strong_call_fraction

S, W = STRONG_REFERENCE, WEAK_REFERENCE


def _battles() -> list[Battle]:
    """Real text whose label is learnable: hard prompts -> strong wins, chit-chat -> weak wins (or tie)."""
    out = [Battle(prompt=p, model_a=S, model_b=W, winner="model_a") for p in HARD]
    out += [Battle(prompt=p, model_a=W, model_b=S, winner="model_a") for p in EASY]
    out += [Battle(prompt=p, model_a=S, model_b="other-model", winner="tie") for p in EASY[:3]]
    return out


# ---- embedders ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_embedder_matches_sentence_transformers(embedder) -> None:
    from sentence_transformers import SentenceTransformer

    from routellm_core.embedding.embedders import minilm_path

    texts = ["How do I bake bread?", "Quantum entanglement, explained simply."]
    ours = embedder.embed(texts)
    ref = SentenceTransformer(str(minilm_path()), device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.dtype == np.float32 and ours.shape == (2, 384)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_long_text_is_truncated_deterministically(embedder) -> None:
    long = "The quick brown fox jumps over the lazy dog. " * 50_000  # ~2 MB
    a = embedder.embed([long])
    b = embedder.embed([long[: len(long) // 2]])
    np.testing.assert_allclose(a, b, atol=1e-6)  # both cut to the same first 256 tokens


@pytest.mark.parametrize("bad", [[], [""], ["  \n"], [None], "a bare string", [b"bytes"]])
def test_embedder_rejects_bad_batches(embedder, bad) -> None:
    with pytest.raises(InvalidInputError):
        embedder.embed(bad)


def test_cache_reuses_vectors_and_persists(tmp_path) -> None:
    calls: list[list[str]] = []

    class Counting(TransformerEmbedder):
        def _embed(self, texts):
            calls.append(list(texts))
            return super()._embed(texts)

    inner = Counting()
    cached = CachedEmbedder(inner, cache_dir=tmp_path)
    first = cached.embed(["alpha", "beta", "alpha"])
    again = cached.embed(["beta", "gamma"])
    assert calls == [["alpha", "beta"], ["gamma"]]
    np.testing.assert_allclose(first[1], again[0])
    reopened = CachedEmbedder(inner, cache_dir=tmp_path)  # fresh memory, same disk
    np.testing.assert_allclose(reopened.embed(["alpha"])[0], first[0])
    assert len(calls) == 2


def test_langchain_and_llamaindex_embedding_adapters() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from llama_index.core.embeddings import MockEmbedding

    lc = LangChainEmbedder(DeterministicFakeEmbedding(size=16))
    li = LlamaIndexEmbedder(MockEmbedding(embed_dim=8))
    assert lc.embed(["a", "b"]).shape == (2, 16)
    assert li.embed(["a"]).shape == (1, 8)
    assert lc.name.startswith("langchain:") and li.name.startswith("llamaindex:")
    with pytest.raises(TypeError):
        LangChainEmbedder(object())
    with pytest.raises(TypeError):
        LlamaIndexEmbedder(object())


def test_openai_embedder_is_lazy_and_keeps_key_secret(monkeypatch) -> None:
    from routellm_core.embedding.embedders import OpenAIEmbedder

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    e = OpenAIEmbedder(api_key="sk-very-secret")
    assert e._client is None and "sk-very-secret" not in repr(e) and "sk-very-secret" not in repr(vars(e))
    assert e.name == "openai:text-embedding-3-small"


# ---- registry and bad input --------------------------------------------------------------------------------
def test_registry_names() -> None:
    assert {"random", "sw_ranking", "mf", "bert", "causal_llm"} <= set(available_routers())
    with pytest.raises(UnknownRouterError, match="unknown router 'nope'"):
        load_router("nope")


def test_random_router_is_deterministic_and_uniform() -> None:
    router = load_router("random", seed=3)
    texts = [f"prompt {i}" for i in range(4000)]
    p = router.predict_win_rate(texts)
    np.testing.assert_array_equal(p, router.predict_win_rate(texts))
    assert abs(p.mean() - 0.5) < 0.02 and p.min() >= 0 and p.max() <= 1
    assert not np.array_equal(p, load_router("random", seed=4).predict_win_rate(texts))


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_bad_threshold(threshold) -> None:
    with pytest.raises(InvalidThresholdError):
        load_router("random").route(["hello"], threshold=threshold)


def test_predict_before_fit() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        load_router("mf").predict_win_rate(["hello"])


def test_training_data_errors() -> None:
    with pytest.raises(TrainingDataError, match="no training battles"):
        load_router("mf").fit([])
    with pytest.raises(ValueError, match="two different models"):
        Battle(prompt="x", model_a=S, model_b=S, winner="tie")
    with pytest.raises(ValueError):
        Battle(prompt="x", model_a=S, model_b=W, winner="draw")  # type: ignore[arg-type]
    with pytest.raises(TrainingDataError, match="reference model"):
        load_router("sw_ranking").fit([Battle(prompt="x", model_a="a", model_b="b", winner="tie")])


# ---- learned routers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(embedder):
    battles = _battles()
    mf = load_router("mf", embedder=embedder, epochs=300, lr=1e-2, patience=300, validation_fraction=0.0, dim=16)
    sw = load_router("sw_ranking", embedder=embedder)
    return {"mf": mf.fit(battles), "sw_ranking": sw.fit(battles)}


UNSEEN_HARD = ["Prove that the square root of 2 is irrational.", "Integrate sin(x)^3 dx and show the steps."]
UNSEEN_EASY = ["Hello, how are you today?", "Say hi to my mum."]


@pytest.mark.parametrize("name", ["mf", "sw_ranking"])
def test_learned_router_follows_labels(fitted, name) -> None:
    router = fitted[name]
    hard = router.predict_win_rate(UNSEEN_HARD)
    easy = router.predict_win_rate(UNSEEN_EASY)
    assert hard.min() > easy.max(), (hard, easy)
    assert router.route(UNSEEN_HARD, threshold=float(easy.max()) + 1e-9) == ["strong", "strong"]


@pytest.mark.parametrize("name", ["mf", "sw_ranking"])
def test_save_load_round_trip(fitted, name, tmp_path, embedder) -> None:
    router = fitted[name]
    router.calibrated_thresholds = {"0.5": 0.42}
    path = router.save(tmp_path / name)
    config = json.loads((path / "config.json").read_text())
    assert config["router"] == name and config["embedder"] == embedder.name
    loaded = load_router(path)
    texts = UNSEEN_HARD + UNSEEN_EASY
    np.testing.assert_allclose(loaded.predict_win_rate(texts), router.predict_win_rate(texts), atol=1e-6)
    assert loaded.threshold_for(0.5) == pytest.approx(0.42)


@pytest.mark.parametrize("name", ["mf", "sw_ranking"])
def test_a_fingerprint_follows_the_saved_router_not_the_object(fitted, name, tmp_path, embedder) -> None:
    router = fitted[name]
    path = router.save(tmp_path / name)
    first, again = load_router(path), load_router(path)
    assert first is not again and first.fingerprint() == again.fingerprint() == router.fingerprint()
    # trained on the opposite labels, or recalibrated: another router, another fingerprint
    swap = {"model_a": "model_b", "model_b": "model_a"}
    flipped = [b.model_copy(update={"winner": swap.get(b.winner, b.winner)}) for b in _battles()]
    other = load_router(name, embedder=embedder, **router.get_params()).fit(flipped)
    assert other.fingerprint() != router.fingerprint()
    again.calibrated_thresholds = {"0.5": 0.1}
    assert again.fingerprint() != first.fingerprint()
    with pytest.raises(NotFittedError):
        load_router(name, embedder=embedder).fingerprint()


def test_mf_scoring_is_one_dot_product(fitted) -> None:
    mf = fitted["mf"]
    e = mf.embed(UNSEEN_HARD)
    expected = 1 / (1 + np.exp(-(e @ mf._u + mf._c)))
    np.testing.assert_allclose(mf.predict_from_embeddings(e), expected, rtol=1e-6)
    pair = mf.pairwise_win_rate(UNSEEN_HARD, S, W)
    np.testing.assert_allclose(pair, mf.predict_win_rate(UNSEEN_HARD), atol=1e-5)


def test_sw_ranking_matches_weighted_logistic_regression(fitted) -> None:
    """The vectorised Newton solve equals a direct per-query weighted Bradley-Terry fit (scipy-free check)."""
    sw = fitted["sw_ranking"]
    q = sw.embed(["Prove Fermat's little theorem."])
    sims = (q @ sw.embeddings_.T)[0]
    w = sw.gamma ** (1 + sims / sims.max())
    wins, losses = w @ sw.wins_, w @ sw.losses_
    a, b = sw.pair_models_[:, 0], sw.pair_models_[:, 1]
    r = np.zeros(len(sw.models_))
    for _ in range(200):  # plain gradient ascent on the same penalised likelihood
        p = 1 / (1 + np.exp(-(r[a] - r[b])))
        resid = wins - (wins + losses) * p
        g = np.zeros_like(r)
        np.add.at(g, a, resid)
        np.add.at(g, b, -resid)
        r += 0.5 * (g - sw.l2 * r) / max(1.0, (wins + losses).sum())
    s, wk = sw.models_.index(S), sw.models_.index(W)
    slow = 1 / (1 + np.exp(-(r[s] - r[wk])))
    assert sw.predict_from_embeddings(q)[0] == pytest.approx(slow, abs=2e-3)


# ---- checkpoints -------------------------------------------------------------------------------------------
def test_embedder_mismatch_is_refused(fitted, tmp_path) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    path = fitted["mf"].save(tmp_path / "mf")
    with pytest.raises(CheckpointError, match="embedder mismatch"):
        load_router(path, embedder=LangChainEmbedder(DeterministicFakeEmbedding(size=384)))


def test_corrupt_and_missing_checkpoints(fitted, tmp_path) -> None:
    path = fitted["mf"].save(tmp_path / "mf")
    with pytest.raises(CheckpointError, match="not found"):
        load_router(tmp_path / "missing" / "router")
    (path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_router(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_router(path)


def test_wrong_shapes_and_nans_are_refused(fitted, tmp_path) -> None:
    from safetensors.numpy import load_file, save_file

    path = fitted["mf"].save(tmp_path / "mf")
    tensors = load_file(str(path / "model.safetensors"))
    bad = dict(tensors, head=np.zeros(3, dtype=np.float32))
    save_file(bad, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="shape"):
        load_router(path)
    nan = dict(tensors, bias=np.full_like(tensors["bias"], np.nan))
    save_file(nan, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="NaN"):
        load_router(path)


def test_config_is_validated(fitted, tmp_path) -> None:
    path = fitted["mf"].save(tmp_path / "mf")
    config = json.loads((path / "config.json").read_text())
    for broken in (
        dict(config, format_version=99),
        dict(config, unexpected_key=1),
        dict(config, calibrated_thresholds={"0.5": 7.0}),
        dict(config, router="random"),
    ):
        (path / "config.json").write_text(json.dumps(broken))
        with pytest.raises(CheckpointError):
            load_router(path).predict_win_rate(["x"])


# ---- calibration -------------------------------------------------------------------------------------------
def test_calibration_hits_the_target_fraction() -> None:
    router = load_router("random", seed=1)
    prompts = [f"user prompt number {i}" for i in range(1000)]
    for frac in (0.0, 0.1, 0.25, 0.5, 0.9, 1.0):
        thr = calibrate_threshold(router, prompts, frac)
        assert strong_call_fraction(router, prompts, thr) == pytest.approx(frac, abs=0.001)
    table = calibrate_thresholds(router, prompts)
    assert list(table) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
    assert all(a >= b for a, b in zip(table.values(), list(table.values())[1:]))
    assert router.threshold_for(0.3) == pytest.approx(table["0.3"])
    with pytest.raises(InvalidThresholdError):
        calibrate_threshold(router, prompts, 1.2)


def test_threshold_for_needs_calibration() -> None:
    with pytest.raises(CheckpointError, match="no calibrated thresholds"):
        load_router("random").threshold_for(0.3)


def test_saved_weights_follow_the_umask_like_the_config(tmp_path: pathlib.Path) -> None:
    from routellm_core import load_router

    old = os.umask(0o022)
    try:
        folder = load_router("fast").save(tmp_path / "r")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] == 0o644, modes


def test_load_router_refuses_parameters_for_a_checkpoint(tmp_path: pathlib.Path) -> None:
    """A shipped name or a folder loads its saved parameters: a parameter given anyway is an error, not ignored."""
    with pytest.raises(InvalidInputError, match=r"'default' is a checkpoint.*\['strong_model'\].*init='default'"):
        load_router("default", strong_model="gpt-4o")
    folder = load_router("fast").save(tmp_path / "mine")
    with pytest.raises(InvalidInputError, match=r"takes none of \['epochs'\]"):
        load_router(folder, epochs=3)
    assert load_router("random", seed=3).seed == 3  # a registry name still builds from parameters
