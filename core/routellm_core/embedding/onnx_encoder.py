"""A local sentence encoder run by ONNX Runtime: exported once from the transformers model, verified, cached.

The graph is the encoder plus mean pooling, exported with torch's TorchScript exporter the first time it is needed
and written under ``cache_dir()/onnx`` next to a ``meta.json`` holding its SHA-256, so a truncated or altered file
is re-exported rather than run. Before the file is kept, its output is compared with the torch model's on probe
texts of several lengths (cosine above :data:`MIN_COSINE`), and the fast tokenizer it uses is checked against
the model's own: the ONNX backend gives the same vectors as the torch one, so routers trained on either work
with both. Later processes load only ``onnxruntime`` and ``tokenizers``; torch is not imported.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core._optional import requires_extra
from routellm_core.embedding.embedders import l2_normalise
from routellm_core.errors import EmbeddingError, MissingDependencyError
from routellm_core.paths import cache_dir

#: Bumped when the exported graph changes, so older cached exports are not reused.
EXPORT_VERSION = 1
#: Smallest cosine between the ONNX and torch vectors of a probe text for an export to be kept.
MIN_COSINE = 0.9999
ONNX_FILE = "model.onnx"
META_FILE = "meta.json"
_PROBES = (
    "Hi",
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists in linear time, and explain its complexity.",
    "Résumé: 日本語のテキストと emoji 🚀 mixed in one prompt, with numbers 3.14159 and symbols <>&. " * 8,
)
_EXPORT_LOCK = threading.Lock()


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_dir(model_dir: Path) -> Path:
    """Cache folder for ``model_dir``'s export, keyed by its path, weight files and :data:`EXPORT_VERSION`."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}|{model_dir.resolve()}".encode())
    for f in sorted(model_dir.glob("*")):
        if f.is_file() and f.suffix in {".safetensors", ".bin", ".json"}:
            st = f.stat()
            h.update(f"|{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return cache_dir() / "onnx" / f"{model_dir.name}-{h.hexdigest()[:16]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_fast_tokenizer(model_dir: Path, max_tokens: int) -> Any:
    """The model's ``tokenizer.json`` as a ``tokenizers.Tokenizer`` that truncates to ``max_tokens`` and pads."""
    from tokenizers import Tokenizer

    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise EmbeddingError(f"the ONNX backend needs a fast tokenizer file, and {path} does not exist")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_tokens)
    pad = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
    return tokenizer


def encode(tokenizer: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64, padded to the longest text) for a batch."""
    encodings = tokenizer.encode_batch(texts)
    ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def _export(model_dir: Path, out: Path, max_tokens: int) -> None:
    """Export encoder + mean pooling to ``out/model.onnx`` and keep it only if it matches torch."""
    with requires_extra("minilm", "exporting the MiniLM embedder to ONNX"):
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import torch
        from transformers import AutoModel, AutoTokenizer

    class _MeanPooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    model = _MeanPooled(AutoModel.from_pretrained(str(model_dir)).eval())
    reference_tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer = load_fast_tokenizer(model_dir, max_tokens)
    probes = list(_PROBES)
    ids, mask = encode(tokenizer, probes)
    ref = reference_tokenizer(probes, padding=True, truncation=True, max_length=max_tokens, return_tensors="np")
    if ids.shape != ref["input_ids"].shape or not (ids == ref["input_ids"]).all():
        raise EmbeddingError(f"{model_dir}/tokenizer.json does not tokenize as the model's own tokenizer does")
    fd, tmp_name = tempfile.mkstemp(dir=out, suffix=".onnx.tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # Reference outputs first: tracing leaves the exported module instance unfit for eager use.
            checks = [(ids, mask), encode(tokenizer, probes[2:3])]  # a padded batch, and one text alone
            expected = [model(torch.from_numpy(i), torch.from_numpy(m)).numpy() for i, m in checks]
            warnings.simplefilter("ignore")  # tracer warnings about shapes the dynamic axes already cover
            torch.onnx.export(
                model,
                tuple(torch.from_numpy(a) for a in encode(tokenizer, probes[:2])),  # short: no size is baked in
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
        session = _session(tmp, threads=None)
        for (i, m), want in zip(checks, expected):
            cosine = _row_cosine(want, session.run(None, {"input_ids": i, "attention_mask": m})[0]).min()
            if cosine < MIN_COSINE:
                raise EmbeddingError(f"the ONNX export of {model_dir} disagrees with torch (cosine {cosine:.6f})")
        meta = {"export_version": EXPORT_VERSION, "source": str(model_dir), "sha256": _sha256(tmp)}
        tmp_meta = tmp.with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps(meta, indent=2))
        for f in (tmp, tmp_meta):
            os.chmod(f, 0o644)  # mkstemp makes 0600; the cache may be shared (an image built by another user)
        os.replace(tmp, out / ONNX_FILE)
        os.replace(tmp_meta, out / META_FILE)  # last: a crash before this leaves an export that is redone
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".json.tmp").unlink(missing_ok=True)


def _row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (l2_normalise(a) * l2_normalise(b)).sum(1)


def _session(path: Path, threads: int | None) -> Any:
    with requires_extra("minilm", "the ONNX backend of the MiniLM embedder"):
        import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _verified(out: Path) -> bool:
    """Whether ``out`` holds a complete export whose file matches the hash recorded at export time."""
    onnx_file, meta_file = out / ONNX_FILE, out / META_FILE
    if not (onnx_file.is_file() and meta_file.is_file()):
        return False
    try:
        meta = json.loads(meta_file.read_text())
        return meta.get("export_version") == EXPORT_VERSION and meta.get("sha256") == _sha256(onnx_file)
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def _export_lock(out: Path) -> Iterator[None]:
    """Hold the export of ``out`` for this thread and process: other processes wait on a file lock."""
    with _EXPORT_LOCK:
        out.mkdir(parents=True, exist_ok=True)
        with (out / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                for stale in out.glob("*.tmp"):  # left by an export that was killed
                    stale.unlink(missing_ok=True)
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class OnnxEncoder:
    """Mean-pooled encoder outputs from an ONNX Runtime session (exported on first use).

    Args:
        model_dir: Local transformers model folder with a ``tokenizer.json``.
        max_tokens: Token limit; longer texts keep their start.
        threads: ONNX Runtime intra-op threads; its default (the physical cores) when ``None``.

    Raises:
        EmbeddingError: The export failed, disagrees with torch, or the cached file cannot be used.
    """

    def __init__(self, model_dir: Path, *, max_tokens: int, threads: int | None = None) -> None:
        self.model_dir = model_dir
        out = export_dir(model_dir)
        try:
            self.tokenizer = load_fast_tokenizer(model_dir, max_tokens)
            if not _verified(out):
                with _export_lock(out):
                    if not _verified(out):  # another process may have exported it while we waited
                        _export(model_dir, out, max_tokens)
        except (EmbeddingError, MissingDependencyError):
            raise
        except Exception as exc:
            raise EmbeddingError(
                f"could not prepare the ONNX model of {model_dir} in {out}: {type(exc).__name__}: {exc}"
            ) from exc
        self.path = out / ONNX_FILE
        try:
            self.session = _session(self.path, threads)
        except MissingDependencyError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"ONNX Runtime cannot load {self.path}: {type(exc).__name__}: {exc}") from exc

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled vectors (not normalised), one row per text."""
        ids, mask = encode(self.tokenizer, texts)
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
