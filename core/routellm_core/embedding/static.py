"""A static embedder: one shipped vector per token, mean-pooled. About a millisecond a prompt on a CPU.

The shipped vectors (``core/routellm_core/assets/minilm_static``) are all-MiniLM-L6-v2 distilled with model2vec (PCA
to 256 dimensions, SIF weighting; see the folder's ``NOTICE.md`` and ``scripts/distill_static.py``). Embedding a
text is a tokenizer call, a table lookup and a mean, with model2vec's ``StaticModel.encode`` semantics: no special
tokens, the first ``max_tokens`` tokens, unknown-token ids dropped, the mean of the remaining rows, L2-normalised
(a text with no known token is the zero vector). It needs numpy, safetensors and ``tokenizers`` only: no model2vec, no
torch, no transformer forward pass.

The embedding space differs from MiniLM's: routers must be trained on it (the ``fast`` pretrained router is).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from routellm_core.checkpoint import load_tensors
from routellm_core.embedding.embedders import Embedder, folder_fingerprint
from routellm_core.errors import CheckpointError, EmbeddingError, InvalidInputError

#: Embedding-space name recorded in checkpoints trained on the shipped static vectors.
STATIC_NAME = "model2vec:all-MiniLM-L6-v2-distilled-pca256"
#: The shipped distilled vectors.
STATIC_DIR = Path(__file__).parents[1] / "assets" / "minilm_static"
TABLE_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
#: Name of the token table inside ``model.safetensors`` (model2vec's layout).
TABLE_TENSOR = "embeddings"
#: Largest token table accepted (the shipped one is ~15 MB); refuses crafted oversized files.
MAX_TABLE_BYTES = 1024**3
MAX_TOKENIZER_BYTES = 64 * 1024**2


class _Loaded(NamedTuple):
    tokenizer: Any  # tokenizers.Tokenizer
    table: np.ndarray  # (vocab, dim) float32, read-only
    unk_id: int | None


class StaticEmbedder(Embedder):
    """Static token-vector embedder (model2vec layout), the shipped distilled MiniLM vectors by default.

    Loading is lazy (on first use) and thread-safe; a loaded embedder may be shared by threads.

    Args:
        path: Folder holding ``model.safetensors`` (tensor ``embeddings``, float16 or float32, one row per token
            id) and ``tokenizer.json``; the shipped vectors when ``None``.
        name: Embedding-space name stored in checkpoints; :data:`STATIC_NAME` for the shipped vectors (given as
            ``None`` or as their folder), else
            ``"model2vec:<folder name>"`` (pass ``name=STATIC_NAME`` for a re-distilled copy of the same model).
        max_tokens: Tokens kept per text (longer texts keep their start); model2vec's default, 512.
        batch_size: Texts pooled together (bounds the memory of one lookup to ``batch_size * max_tokens`` rows).
    """

    #: Characters kept before tokenising (as :class:`~routellm_core.embedding.embedders.TransformerEmbedder`): far above
    #: ``max_tokens`` tokens, so it never changes the result except for megabyte prompts, which it keeps from
    #: stalling the tokenizer.
    CHARS_PER_TOKEN_CAP = 16

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        max_tokens: int = 512,
        batch_size: int = 64,
    ) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be a positive int, got {max_tokens!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
        self.path = Path(path).expanduser() if path is not None else None
        self._shipped = self.path is None or self.path.resolve() == STATIC_DIR.resolve()
        self.name = name or (STATIC_NAME if self._shipped else f"model2vec:{self.path.name}")  # type: ignore[union-attr]
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    #: ``max_tokens`` of the shipped static embedder (its caches are keyed by the name alone).
    DEFAULT_MAX_TOKENS = 512

    @property
    def cache_key(self) -> str:
        """The name; with the folder (path, file sizes and times) for vectors other than the shipped ones, and
        ``max_tokens`` where it is not the default."""
        key = self.name if self._shipped else f"{self.name}|{folder_fingerprint(self.path)}"  # type: ignore[arg-type]
        return key if self.max_tokens == self.DEFAULT_MAX_TOKENS else f"{key}|max_tokens={self.max_tokens}"

    # ---- loading ---------------------------------------------------------------------------------------
    def _load(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = _read_folder(self.path or STATIC_DIR)
            return self._loaded

    @property
    def dim(self) -> int:
        """Embedding width (256 for the shipped vectors)."""
        return int(self._load().table.shape[1])

    # ---- embedding -------------------------------------------------------------------------------------
    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids each text is pooled over: no special tokens, the first ``max_tokens``, unknown ids dropped."""
        loaded = self._load()
        cap = self.max_tokens * self.CHARS_PER_TOKEN_CAP
        tokenizer = loaded.tokenizer
        encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch  # _fast: no offsets
        encodings = encode([t[:cap] for t in texts], add_special_tokens=False)
        ids = [enc.ids[: self.max_tokens] for enc in encodings]
        if loaded.unk_id is not None:
            ids = [[i for i in row if i != loaded.unk_id] for row in ids]
        return ids

    def _embed(self, texts: list[str]) -> np.ndarray:
        table = self._load().table
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            ids = self.token_ids(texts[start : start + self.batch_size])
            lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
            rows = np.flatnonzero(lengths)  # texts without a known token stay zero, as in model2vec
            if not len(rows):
                continue
            flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
            offsets = np.concatenate(([0], np.cumsum(lengths[rows])[:-1]))
            sums = np.add.reduceat(table[flat], offsets, axis=0)
            out[start + rows] = sums / lengths[rows, None].astype(np.float32)
        return out  # Embedder.embed L2-normalises


def _read_folder(folder: Path) -> _Loaded:
    """Read and check a static model folder.

    Raises:
        EmbeddingError: The folder or one of its two files is missing.
        CheckpointError: A file is unreadable, oversized, or does not fit the other (dtype, shape, vocabulary).
    """
    if not folder.is_dir():
        raise EmbeddingError(f"static embedding folder not found: {folder}")
    for file in (TABLE_FILE, TOKENIZER_FILE):
        if not (folder / file).is_file():
            raise EmbeddingError(f"static embedding folder {folder} has no {file}")

    # The table: a single 2-d float16/float32 tensor, finite (checked by load_tensors).
    tensors = load_tensors(folder, {TABLE_TENSOR: (None, None)}, filename=TABLE_FILE, max_bytes=MAX_TABLE_BYTES)
    raw = tensors[TABLE_TENSOR]
    if raw.dtype not in (np.float16, np.float32):
        raise CheckpointError(f"{folder / TABLE_FILE}: token table is {raw.dtype}, expected float16 or float32")
    if raw.shape[0] < 1 or raw.shape[1] < 1:
        raise CheckpointError(f"{folder / TABLE_FILE}: token table has shape {raw.shape}")
    table = np.ascontiguousarray(raw, dtype=np.float32)
    table.setflags(write=False)

    # The tokenizer: every id it can produce must index a row of the table.
    from tokenizers import Tokenizer

    tok_path = folder / TOKENIZER_FILE
    if tok_path.stat().st_size > MAX_TOKENIZER_BYTES:
        raise CheckpointError(f"{tok_path} is larger than {MAX_TOKENIZER_BYTES} bytes; refusing to read it")
    try:
        tokenizer = Tokenizer.from_file(str(tok_path))
    except Exception as exc:  # tokenizers raises its own Exception subclass for bad JSON or an unknown model
        raise CheckpointError(f"{tok_path} is not a readable tokenizer: {str(exc)[:200]}") from None
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    if not vocab:
        raise CheckpointError(f"{tok_path}: tokenizer has an empty vocabulary")
    n_ids = max(vocab.values()) + 1
    if n_ids > table.shape[0]:
        raise CheckpointError(
            f"{folder}: tokenizer ids go up to {n_ids - 1}, but the token table has only {table.shape[0]} rows "
            "(tokenizer.json and model.safetensors do not belong together)"
        )
    tokenizer.no_padding()
    tokenizer.no_truncation()  # truncation is ours (max_tokens), per call, without mutating shared state
    return _Loaded(tokenizer, table, _unk_id(tokenizer))


def _unk_id(tokenizer: Any) -> int | None:
    """Id of the unknown token, which model2vec drops before pooling (``None`` if the model has none)."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):  # WordPiece, BPE, WordLevel
        token = model.unk_token
        return None if token is None else tokenizer.token_to_id(token)
    unk = json.loads(tokenizer.to_str())["model"].get("unk_id")  # Unigram
    return int(unk) if unk is not None else None
