"""Where the project keeps its caches (embeddings, exported and converted models)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "ROUTELLM_CACHE_DIR"


def cache_dir() -> Path:
    """Folder for caches: ``$ROUTELLM_CACHE_DIR`` or ``~/.cache/routellm``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "routellm").expanduser()
