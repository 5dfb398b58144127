"""Where the shared data lives: ``$ROUTELLM_DATA_DIR``, else ``../shared/data`` beside the repo or the cwd."""

from __future__ import annotations

import os
from pathlib import Path

from routellm_core.errors import TrainingDataError

#: Environment variable naming the data folder.
DATA_DIR_ENV = "ROUTELLM_DATA_DIR"


class DataNotFoundError(TrainingDataError, FileNotFoundError):
    """The data folder or one of its files is missing."""


def data_dir() -> Path:
    """The shared data folder: ``$ROUTELLM_DATA_DIR``, else ``../shared/data`` beside the repo or the cwd.

    Raises:
        DataNotFoundError: The folder does not exist.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"{DATA_DIR_ENV}={env!r} is not a folder")
        return path.resolve()
    candidates = [
        Path(__file__).resolve().parents[4] / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    for path in candidates:
        if path.is_dir():
            return path
    raise DataNotFoundError(
        f"benchmark data not found (looked in {', '.join(map(str, candidates))}); set {DATA_DIR_ENV} to the "
        "folder holding routellm-evals/, llmrouter-dcrouter/, mmlu-pro/, arena-battles/ and zeroeval/"
    )


def root() -> str:
    """The data folder as a string (the cache key of the loaders' ``lru_cache``)."""
    return str(data_dir())


def data_file(root: str, *parts: str) -> Path:
    """A file under the data folder ``root``.

    Raises:
        DataNotFoundError: The file does not exist.
    """
    path = Path(root, *parts)
    if not path.is_file():
        raise DataNotFoundError(f"missing data file {path} (data folder from {DATA_DIR_ENV} or ../shared/data)")
    return path


def existing_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path` (a leading ``~`` expanded), checked to be a file.

    Raises:
        DataNotFoundError: No such file, or the path is a folder.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise DataNotFoundError(f"{p} is a folder; give the path of a .jsonl or .csv file in it")
    if not p.is_file():
        raise DataNotFoundError(f"no such file: {p}")
    return p
