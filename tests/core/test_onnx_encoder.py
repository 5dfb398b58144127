"""The ONNX Runtime backend of the MiniLM embedder: same vectors as torch, exported once, cache verified."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routellm_core.data import load_benchmark
from routellm_core.embedding import onnx_encoder
from routellm_core.embedding.embedders import TransformerEmbedder, minilm_path
from routellm_core.embedding.onnx_encoder import META_FILE, ONNX_FILE, OnnxEncoder, export_dir
from routellm_core.errors import EmbeddingError, InvalidInputError


@pytest.fixture(scope="module")
def onnx_embedder() -> TransformerEmbedder:
    embedder = TransformerEmbedder(backend="onnx")
    embedder.embed(["load"])
    return embedder


@pytest.fixture(scope="module")
def torch_embedder() -> TransformerEmbedder:
    return TransformerEmbedder(backend="torch")


@pytest.fixture(scope="module")
def real_prompts(shared_data_dir: Path) -> list[str]:
    prompts = list(load_benchmark("mt_bench").prompts)[:40]
    return prompts + list(load_benchmark("gsm8k").prompts)[:40]


def test_default_embedder_runs_on_onnx(embedder: Any) -> None:
    assert embedder.inner.active_backend == "onnx"


@pytest.mark.slow
def test_onnx_matches_torch_on_real_prompts(
    onnx_embedder: TransformerEmbedder, torch_embedder: TransformerEmbedder, real_prompts: list[str]
) -> None:
    a, b = onnx_embedder.embed(real_prompts), torch_embedder.embed(real_prompts)
    assert a.shape == b.shape == (len(real_prompts), 384)
    assert (a * b).sum(1).min() > 0.9999


@pytest.mark.slow
def test_onnx_single_prompt_equals_its_row_in_a_padded_batch(
    onnx_embedder: TransformerEmbedder, real_prompts: list[str]
) -> None:
    batch = onnx_embedder.embed(real_prompts)
    singles = np.vstack([onnx_embedder.embed([p]) for p in real_prompts[:10]])
    np.testing.assert_allclose(singles, batch[:10], atol=1e-5)


@pytest.mark.slow
def test_long_prompt_is_truncated_like_torch(
    onnx_embedder: TransformerEmbedder, torch_embedder: TransformerEmbedder
) -> None:
    long = " ".join(f"w{i}" for i in range(600))  # > 256 tokens, < the 4,096-character pre-cut
    assert len(long) < onnx_embedder.max_tokens * onnx_embedder.CHARS_PER_TOKEN_CAP
    assert float((onnx_embedder.embed([long]) @ torch_embedder.embed([long]).T)[0, 0]) > 0.9999
    np.testing.assert_allclose(onnx_embedder.embed([long]), onnx_embedder.embed([long + " tail"]), atol=1e-6)
    assert float((onnx_embedder.embed([long]) @ onnx_embedder.embed([long[:200]]).T)[0, 0]) < 0.999


def test_batches_respect_count_and_token_budget() -> None:
    embedder = TransformerEmbedder(batch_size=4, batch_tokens=100)
    texts = ["x" * n for n in (400, 8, 8, 8, 8, 8, 40, 4)]
    batches = embedder._batches(texts)
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))
    assert all(len(b) <= 4 for b in batches)
    assert batches[-1] == [0]  # the longest text rides alone: two of it would pass 100 tokens
    assert [len(texts[i]) for b in batches for i in b] == sorted(len(t) for t in texts)


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="backend"):
        TransformerEmbedder(backend="tensorrt")


def _copy_export(onnx_embedder: TransformerEmbedder, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the cache at ``cache`` and copy the existing export there (saves a re-export per test)."""
    source = export_dir(minilm_path())
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(cache))
    target = export_dir(minilm_path())
    shutil.copytree(source, target)
    return target


def test_cached_export_is_reused(
    onnx_embedder: TransformerEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_export(onnx_embedder, tmp_path, monkeypatch)
    monkeypatch.setattr(onnx_encoder, "_export", lambda *a: pytest.fail("re-exported a valid cached file"))
    OnnxEncoder(minilm_path(), max_tokens=256)


@pytest.mark.slow
def test_corrupt_cached_export_is_replaced_not_run(
    onnx_embedder: TransformerEmbedder,
    torch_embedder: TransformerEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = _copy_export(onnx_embedder, tmp_path, monkeypatch)
    data = (target / ONNX_FILE).read_bytes()
    (target / ONNX_FILE).write_bytes(data[: len(data) // 2])  # truncated, as after a crash mid-write
    encoder = OnnxEncoder(minilm_path(), max_tokens=256)
    assert (target / ONNX_FILE).stat().st_size == len(data)
    text = ["Is the re-exported model right?"]
    got = encoder(text)
    assert float(((got / np.linalg.norm(got)) @ torch_embedder.embed(text).T)[0, 0]) > 0.9999


def test_unreadable_meta_forces_reexport(
    onnx_embedder: TransformerEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = export_dir(minilm_path())
    target = _copy_export(onnx_embedder, tmp_path, monkeypatch)
    (target / META_FILE).write_text("{not json")
    calls: list[Path] = []

    def export_again(model_dir: Path, out: Path, max_tokens: int) -> None:
        calls.append(out)
        shutil.copytree(good, out, dirs_exist_ok=True)

    monkeypatch.setattr(onnx_encoder, "_export", export_again)
    OnnxEncoder(minilm_path(), max_tokens=256)
    assert calls == [target], "an unverifiable export must be redone before it is run"


def test_explicit_onnx_backend_raises_when_export_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exporter crash becomes an ``EmbeddingError`` naming the model and the cache folder, with the crash chained;
    nothing is left in the cache to be run later."""
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path))
    crash = RuntimeError("exporter crashed")

    def crashing_export(*args: object) -> None:
        raise crash

    monkeypatch.setattr(onnx_encoder, "_export", crashing_export)
    with pytest.raises(EmbeddingError) as info:
        TransformerEmbedder(backend="onnx").embed(["hello"])
    folder = export_dir(minilm_path())
    message = str(info.value)
    assert "could not prepare the ONNX model" in message and str(minilm_path()) in message and str(folder) in message
    assert "RuntimeError: exporter crashed" in message and info.value.__cause__ is crash
    assert not (folder / ONNX_FILE).exists()


def test_auto_backend_warns_and_falls_back_to_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(onnx_encoder, "_export", _failing_export)
    embedder = TransformerEmbedder(backend="auto")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors = embedder.embed(["hello"])
    assert embedder.active_backend == "torch"
    assert vectors.shape == (1, 384)
    assert any("ONNX backend unavailable" in str(w.message) for w in caught)


@pytest.mark.slow
def test_concurrent_processes_export_once(onnx_embedder: TransformerEmbedder, tmp_path: Path) -> None:
    script = (
        "import routellm_core.embedding.onnx_encoder as m\n"
        "from routellm_core.embedding.embedders import minilm_path\n"
        "calls = []\n"
        "real = m._export\n"
        "m._export = lambda *a: (calls.append(1), real(*a))\n"
        "m.OnnxEncoder(minilm_path(), max_tokens=256)\n"
        "print('EXPORTS', len(calls))\n"
    )
    env = {**os.environ, "ROUTELLM_CACHE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    exports = [int(out.split("EXPORTS")[1]) for out, _ in outputs]
    assert sorted(exports) == [0, 1], "the second process must wait for the first export and reuse it"
    folder = next((tmp_path / "onnx").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == [".lock", META_FILE, ONNX_FILE]  # no temp files left
    assert (folder / ONNX_FILE).stat().st_mode & 0o777 == 0o644


def _failing_export(*args: object) -> None:
    raise EmbeddingError("the ONNX export disagrees with torch (simulated)")
