"""An embedding cache keyed by embedding space and text: in memory (LRU), optionally backed by SQLite on disk.

The disk cache only ever saves work: a folder that cannot be written (read-only, not a folder, a corrupt database)
is reported once with a ``RuntimeWarning`` and embedding goes on in memory, and a stored vector that is malformed
(truncated, not finite, not unit length, another width than the rest) is recomputed and rewritten.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from routellm_core.embedding.embedders import Embedder

#: Largest deviation from unit length a stored vector may have (every stored vector is L2-normalised or zero).
_NORM_TOLERANCE = 1e-3


class CachedEmbedder(Embedder):
    """Wraps an embedder so repeated texts are embedded once.

    Entries are keyed by the wrapped embedder's :attr:`~routellm_core.embedding.embedders.Embedder.cache_key` (its
    name, plus its model folder and settings where the name alone does not pin the vectors) and the text.

    Args:
        inner: The embedder that computes missing vectors.
        max_entries: In-memory LRU size.
        cache_dir: Folder for a persistent SQLite cache shared across processes (``~`` expanded); memory only when
            ``None``, or (with a warning) when the folder cannot hold the database.
    """

    def __init__(
        self, inner: Embedder, *, max_entries: int = 50_000, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_entries = max_entries
        self._space = inner.cache_key
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._dim: int | None = None
        self._db_path = Path(cache_dir).expanduser() / "embeddings.sqlite" if cache_dir is not None else None
        self._writable = True
        if self._db_path is not None:
            try:
                self._db_path.parent.mkdir(parents=True, exist_ok=True)
                with self._connect() as db:
                    db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            except sqlite3.OperationalError as exc:
                if self._db_path.is_file() and "readonly" in str(exc):
                    self._readonly(exc)  # an existing cache we may read but not write
                else:
                    self._drop_disk(exc)
            except (OSError, sqlite3.Error) as exc:
                self._drop_disk(exc)

    def _connect(self) -> sqlite3.Connection:
        assert self._db_path is not None
        return sqlite3.connect(self._db_path, timeout=30)

    def _drop_disk(self, exc: BaseException) -> None:
        """Go on without the disk cache, saying why once."""
        warnings.warn(
            f"embedding cache {self._db_path} is unusable ({type(exc).__name__}: {exc}); "
            "embeddings are cached in memory only",
            RuntimeWarning,
            stacklevel=3,
        )
        self._db_path = None

    def _readonly(self, exc: BaseException) -> None:
        """Keep reading the disk cache but stop writing to it, saying why once."""
        if self._writable:
            warnings.warn(
                f"embedding cache {self._db_path} is read-only ({exc}); new embeddings are cached in memory only",
                RuntimeWarning,
                stacklevel=3,
            )
        self._writable = False

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._space}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def dim(self) -> int:
        """Embedding width of the wrapped embedder."""
        return self.inner.dim  # type: ignore[attr-defined,no-any-return]

    def _embed(self, texts: list[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for k in keys:
                vec = self._memory.get(k)
                if vec is not None:
                    self._memory.move_to_end(k)
                    found[k] = vec
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing and self._db_path is not None:
            found.update(self._read_disk(missing))
            missing = [k for k in missing if k not in found]
        first_text = {k: t for k, t in zip(keys, texts)}
        if missing:
            new = dict(zip(missing, self.inner.embed([first_text[k] for k in missing])))
            self._dim = next(iter(new.values())).shape[0]
            found.update(new)
            stale = [k for k, v in found.items() if v.shape[0] != self._dim]  # rows of another width on disk
            if stale:
                new.update(zip(stale, self.inner.embed([first_text[k] for k in stale])))
                found.update(new)
            self._write_disk(new)
        with self._lock:
            for k in keys:
                self._memory[k] = found[k]
                self._memory.move_to_end(k)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)
        return np.stack([found[k] for k in keys])

    def _read_disk(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Well-formed stored vectors of ``keys``; rows that are not (or of mixed widths) are left to recompute."""
        rows: list[tuple[str, bytes]] = []
        try:
            with self._connect() as db:
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows += db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk).fetchall()
        except sqlite3.Error as exc:
            self._drop_disk(exc)
            return {}
        out = _vectors(rows, self._dim)
        if len({v.shape[0] for v in out.values()}) > 1:
            return {}  # widths disagree: recompute them all rather than guess which are right
        return out

    def _write_disk(self, vectors: dict[str, np.ndarray]) -> None:
        if self._db_path is None or not self._writable or not vectors:
            return
        try:
            with self._connect() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                    [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()],
                )
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc):
                self._readonly(exc)
            else:
                self._drop_disk(exc)
        except sqlite3.Error as exc:
            self._drop_disk(exc)

    def clear(self) -> None:
        """Drop the in-memory entries (the disk cache stays)."""
        with self._lock:
            self._memory.clear()


def _vectors(rows: list[tuple[str, bytes]], dim: int | None) -> dict[str, np.ndarray]:
    """The stored vectors among ``rows`` that this cache could have written: float32, finite, unit length (or zero),
    and ``dim`` wide when that is known; the others are left out."""
    by_size: dict[int, list[tuple[str, bytes]]] = {}
    for key, blob in rows:
        if isinstance(blob, bytes) and blob and len(blob) % 4 == 0 and (dim is None or len(blob) == 4 * dim):
            by_size.setdefault(len(blob), []).append((key, blob))
    out: dict[str, np.ndarray] = {}
    for size, group in by_size.items():
        table = np.frombuffer(b"".join(blob for _, blob in group), dtype=np.float32).reshape(len(group), size // 4)
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.linalg.norm(table.astype(np.float64), axis=1)
        ok = np.isfinite(table).all(axis=1) & ((norms == 0.0) | (np.abs(norms - 1.0) <= _NORM_TOLERANCE))
        out.update((key, table[i].copy()) for i, (key, _) in enumerate(group) if ok[i])
    return out
