"""The static (model2vec-layout) embedder on the shipped vectors, and the ``fast`` pretrained router built on it."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from routellm_core import load_router, pretrained_routers
from routellm_core.data import load_benchmark
from routellm_core.embedding.embedders import Embedder
from routellm_core.embedding.static import STATIC_DIR, STATIC_NAME, StaticEmbedder
from routellm_core.errors import CheckpointError, EmbeddingError, InvalidInputError
from routellm_core.routers.mf import MatrixFactorizationRouter
from routellm_core.routers.registry import PRETRAINED_DIR

REFERENCE = Path(__file__).parent / "data" / "model2vec_reference.npz"


@pytest.fixture(scope="module")
def static() -> StaticEmbedder:
    return StaticEmbedder()


@pytest.fixture(scope="module")
def prompts(shared_data_dir: Path) -> list[str]:
    """A fixed sample of real benchmark prompts (MMLU and MT Bench)."""
    mmlu = load_benchmark("mmlu").prompts
    return [*mmlu[:: max(1, len(mmlu) // 150)][:150], *load_benchmark("mt_bench").prompts[:30]]


@pytest.fixture(scope="module")
def fast_router() -> MatrixFactorizationRouter:
    router = load_router("fast", embedder=StaticEmbedder())
    assert isinstance(router, MatrixFactorizationRouter)
    return router


# ---- the embedder --------------------------------------------------------------------------------------
def test_shipped_vectors_shape_dtype_unit_norm(static: StaticEmbedder, prompts: list[str]) -> None:
    assert isinstance(static, Embedder)
    assert static.name == STATIC_NAME
    assert static.dim == 256
    vectors = static.embed(prompts)
    assert vectors.shape == (len(prompts), 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len({v.tobytes() for v in vectors}) == len(set(prompts))  # distinct prompts, distinct vectors


def test_matches_model2vec_reference_vectors(static: StaticEmbedder) -> None:
    """Vectors saved from model2vec's ``StaticModel.encode`` on the same files (unknown tokens, no-token text,
    over-long text, accents, CJK, code): ours agree to float16 rounding."""
    ref = np.load(REFERENCE, allow_pickle=False)
    texts, expected = [str(t) for t in ref["texts"]], ref["vectors"].astype(np.float32)
    ours = static.embed(texts)
    zero = np.linalg.norm(expected, axis=1) == 0
    assert zero.any()  # "🙂🙂": no known token -> the zero vector, as in model2vec
    assert np.array_equal(np.linalg.norm(ours, axis=1) == 0, zero)
    cos = (ours[~zero] * expected[~zero]).sum(1) / np.linalg.norm(expected[~zero], axis=1)
    assert cos.min() > 0.9999


def test_mean_of_table_rows_without_unknown_tokens(static: StaticEmbedder) -> None:
    """Independent recomputation from the raw files: no special tokens, [UNK] dropped, mean, L2 norm."""
    from tokenizers import Tokenizer

    table = load_file(str(STATIC_DIR / "model.safetensors"))["embeddings"].astype(np.float32)
    tokenizer = Tokenizer.from_file(str(STATIC_DIR / "tokenizer.json"))
    text = "Routers pick 🙂 the cheaper model: naïve résumé, qwertyuiopasdfgh."
    ids = [i for i in tokenizer.encode(text, add_special_tokens=False).ids if i != tokenizer.token_to_id("[UNK]")]
    assert tokenizer.token_to_id("[CLS]") is None  # distilled vocabulary: no special token to add
    expected = table[ids].mean(0)
    expected /= np.linalg.norm(expected)
    assert static.token_ids([text]) == [ids]
    np.testing.assert_allclose(static.embed([text])[0], expected, atol=1e-6)


def test_deterministic_across_batch_sizes_and_instances(static: StaticEmbedder, prompts: list[str]) -> None:
    texts = prompts[:60]
    embedder = StaticEmbedder(batch_size=64)
    reference = embedder.embed(texts)
    assert np.array_equal(reference, static.embed(texts))  # another instance
    for batch_size in (1, 7, 1000):
        embedder.batch_size = batch_size
        assert np.array_equal(embedder.embed(texts), reference)
    single = np.stack([embedder.embed([t])[0] for t in texts[:10]])
    assert np.array_equal(single, reference[:10])
    assert np.array_equal(embedder.embed(texts[::-1])[::-1], reference)


def test_truncates_to_max_tokens_keeping_the_start(static: StaticEmbedder) -> None:
    words = [f"topic{i}" for i in range(400)]  # ~3 tokens a word: well over 512 tokens
    text = " ".join(words)
    ids = static.token_ids([text])[0]
    assert len(ids) == 512
    # whatever follows token 512 does not matter
    assert np.array_equal(static.embed([text]), static.embed([text + " completely different ending " * 50]))
    short = StaticEmbedder(max_tokens=5)
    assert short.token_ids(["one two three four five six seven"]) == [static.token_ids(["one two three four five"])[0]]
    assert np.array_equal(short.embed(["one two three four five six seven"]), static.embed(["one two three four five"]))


class RecordingTokenizer:
    """Passes calls to the real tokenizer, recording the length of every text it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lengths: list[int] = []

    def encode_batch_fast(self, texts: list[str], **kwargs: Any) -> Any:
        self.lengths += [len(t) for t in texts]
        return getattr(self.inner, "encode_batch_fast", self.inner.encode_batch)(texts, **kwargs)

    def encode_batch(self, texts: list[str], **kwargs: Any) -> Any:
        return self.encode_batch_fast(texts, **kwargs)


def test_megabyte_prompt_is_cut_before_the_tokenizer(static: StaticEmbedder) -> None:
    """Only the first ``max_tokens * CHARS_PER_TOKEN_CAP`` characters reach the tokenizer, so a megabyte prompt
    costs what an 8 KB one does (the time it takes is measured by ``python -m bench.limits``)."""
    embedder = StaticEmbedder()
    loaded = embedder._load()
    recorder = RecordingTokenizer(loaded.tokenizer)
    embedder._loaded = loaded._replace(tokenizer=recorder)
    huge = "The quick brown fox jumps over the lazy dog. " * 25_000  # ~1.1 MB
    cap = 512 * StaticEmbedder.CHARS_PER_TOKEN_CAP
    vector = embedder.embed([huge])
    assert recorder.lengths == [cap]
    assert np.array_equal(vector, static.embed([huge[:cap]]))


def test_unicode_and_lone_surrogates(static: StaticEmbedder) -> None:
    vectors = static.embed(["half a pair \ud83d here", "half a pair \ufffd here", "naïve café 日本 Ελληνικά"])
    assert np.array_equal(vectors[0], vectors[1])  # the base class replaces lone surrogates with U+FFFD
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(InvalidInputError):
        static.embed([])
    with pytest.raises(InvalidInputError):
        static.embed(["   "])


def test_lazy_thread_safe_load() -> None:
    embedder = StaticEmbedder()
    assert embedder._loaded is None  # nothing read until first use
    results: list[np.ndarray] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        results.append(embedder.embed(["Is this thread safe?", "Explain quantum tunnelling."]))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(np.array_equal(r, results[0]) for r in results)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        StaticEmbedder(max_tokens=0)
    with pytest.raises(ValueError):
        StaticEmbedder(batch_size=0)
    assert StaticEmbedder("/somewhere/else").name == "model2vec:else"
    assert StaticEmbedder("/somewhere/else", name=STATIC_NAME).name == STATIC_NAME


# ---- missing and corrupt folders -----------------------------------------------------------------------
def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "static"
    shutil.copytree(STATIC_DIR, folder)
    return folder


def test_missing_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="not found"):
        StaticEmbedder(tmp_path / "nope").embed(["hello"])
    folder = _copy(tmp_path)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(EmbeddingError, match=r"tokenizer\.json"):
        StaticEmbedder(folder).embed(["hello"])
    (folder / "model.safetensors").unlink()
    with pytest.raises(EmbeddingError, match=r"model\.safetensors"):
        _ = StaticEmbedder(folder).dim


def _table(name: str, array: np.ndarray):
    return lambda folder: save_file({name: array}, str(folder / "model.safetensors"))


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64), "not a readable safetensors"),
        (_table("embeddings", np.ones((29525, 8), dtype=np.int8)), "int8"),
        (_table("embeddings", np.ones(29525, dtype=np.float16)), "shape"),
        (_table("table", np.ones((29525, 8), dtype=np.float16)), "tensors"),
        (_table("embeddings", np.ones((1000, 8), dtype=np.float16)), "rows"),
        (_table("embeddings", np.full((29525, 8), np.nan, dtype=np.float32)), "NaN"),
        (lambda f: (f / "tokenizer.json").write_text("{not json"), "not a readable tokenizer"),
    ],
    ids=["garbage", "int8", "1-d", "wrong-name", "vocab>table", "nan", "bad-tokenizer"],
)
def test_corrupt_folder(tmp_path: Path, corrupt, match: str) -> None:
    folder = _copy(tmp_path)
    corrupt(folder)
    embedder = StaticEmbedder(folder, name=STATIC_NAME)
    with pytest.raises(CheckpointError, match=match):
        embedder.embed(["hello"])
    with pytest.raises(CheckpointError):  # not cached as loaded: every use reports it
        _ = embedder.dim


# ---- the fast pretrained router ------------------------------------------------------------------------
def test_fast_router_is_shipped_on_the_static_space(fast_router: MatrixFactorizationRouter) -> None:
    assert "fast" in pretrained_routers()
    config = json.loads((PRETRAINED_DIR / "fast" / "config.json").read_text())
    assert config["embedder"] == STATIC_NAME and config["router"] == "mf"
    assert fast_router.get_embedder().name == STATIC_NAME
    assert fast_router.projection_.shape == (128, 256)
    with pytest.raises(CheckpointError, match="embedder mismatch"):
        load_router("fast", embedder=StaticEmbedder("/elsewhere"))


def test_fast_router_routes_real_prompts(fast_router: MatrixFactorizationRouter, prompts: list[str]) -> None:
    p = fast_router.predict_win_rate(prompts)
    assert p.shape == (len(prompts),) and np.all((p >= 0) & (p <= 1))
    assert np.unique(np.round(p, 6)).size > len(prompts) // 2  # a real router separates prompts
    choices = fast_router.route(prompts, threshold=float(np.median(p)))
    assert {"strong", "weak"} == set(choices)
    assert np.array_equal(fast_router.predict_win_rate(prompts[:5]), p[:5])  # same score alone or in a batch


def test_fast_router_thresholds_are_monotone(fast_router: MatrixFactorizationRouter) -> None:
    table = sorted((float(k), v) for k, v in fast_router.calibrated_thresholds.items())
    assert [k for k, _ in table] == pytest.approx([i / 10 for i in range(1, 10)])
    thresholds = [v for _, v in table]
    assert all(0.0 < t < 1.0 for t in thresholds)
    assert all(a > b for a, b in itertools.pairwise(thresholds))  # more strong calls, lower threshold
    assert fast_router.threshold_for(0.3) == pytest.approx(fast_router.calibrated_thresholds["0.3"])


def test_fast_router_loads_by_name_alone(prompts: list[str]) -> None:
    router = load_router("fast")
    assert router.get_embedder().name == STATIC_NAME
    assert router.predict_win_rate(prompts[:3]).shape == (3,)


def test_the_distillation_script_writes_where_the_shipped_vectors_are_read() -> None:
    """``scripts/distill_static.py`` wrote by default to ``core/assets/minilm_static``, which nothing reads."""
    import importlib.util

    from routellm_core.embedding.static import STATIC_DIR

    path = Path(__file__).resolve().parents[2] / "scripts" / "distill_static.py"
    spec = importlib.util.spec_from_file_location("distill_static", path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.DEFAULT_OUT.resolve() == STATIC_DIR.resolve()
