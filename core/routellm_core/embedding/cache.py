"""An embedding cache keyed by embedder name and text: in memory (LRU), optionally backed by SQLite on disk."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from routellm_core.embedding.embedders import Embedder


class CachedEmbedder(Embedder):
    """Wraps an embedder so repeated texts are embedded once.

    Args:
        inner: The embedder that computes missing vectors.
        max_entries: In-memory LRU size.
        cache_dir: Folder for a persistent SQLite cache shared across processes; memory only when ``None``.
    """

    def __init__(
        self, inner: Embedder, *, max_entries: int = 50_000, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_entries = max_entries
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._db_path = Path(cache_dir) / "embeddings.sqlite" if cache_dir is not None else None
        if self._db_path is not None:
            self._db_path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        assert self._db_path is not None
        return sqlite3.connect(self._db_path, timeout=30)

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

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
        if missing:
            first_text = {k: t for k, t in zip(keys, texts)}
            computed = self.inner.embed([first_text[k] for k in missing])
            new = dict(zip(missing, computed))
            found.update(new)
            if self._db_path is not None:
                self._write_disk(new)
        with self._lock:
            for k in keys:
                self._memory[k] = found[k]
                self._memory.move_to_end(k)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)
        return np.stack([found[k] for k in keys])

    def _read_disk(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk):
                    out[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def _write_disk(self, vectors: dict[str, np.ndarray]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()],
            )

    def clear(self) -> None:
        """Drop the in-memory entries (the disk cache stays)."""
        with self._lock:
            self._memory.clear()
