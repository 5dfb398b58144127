"""Safe checkpoint files: a validated JSON config beside safetensors weights. Nothing is ever unpickled."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from routellm_core.errors import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1
#: Refuse weight files above this size unless a router asks for more (crafted oversized files).
MAX_WEIGHTS_BYTES = 2 * 1024**3
MAX_CONFIG_BYTES = 16 * 1024**2


class CheckpointConfig(BaseModel):
    """The JSON config of a saved router.

    Attributes:
        router: Registry name of the router class.
        format_version: Checkpoint format version.
        embedder: Name of the embedding space the router was trained in, if it uses one.
        strong_model: Reference strong model whose win the router predicts.
        weak_model: Reference weak model.
        params: The router's constructor parameters (JSON values only).
        calibrated_thresholds: Strong-call fraction (as a string, e.g. ``"0.3"``) -> threshold.
        metadata: Free-form training facts (sources, sizes, metrics).
    """

    #: Errors never quote a value: a crafted checkpoint's ``config.json`` may be a link to another JSON file (a
    #: credentials file), whose values would otherwise show in the message.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    router: str = Field(min_length=1)
    format_version: int = FORMAT_VERSION
    embedder: str | None = None
    strong_model: str
    weak_model: str
    params: dict[str, Any] = Field(default_factory=dict)
    calibrated_thresholds: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"unsupported checkpoint format_version {v}; this code reads {FORMAT_VERSION}")
        return v

    @field_validator("calibrated_thresholds")
    @classmethod
    def _thresholds_in_range(cls, values: dict[str, float]) -> dict[str, float]:
        for frac, thr in values.items():
            f = float(frac)
            if not (0.0 <= f <= 1.0 and 0.0 <= thr <= 1.0):
                raise ValueError(f"calibrated threshold {frac!r}: {thr} is outside [0, 1]")
        return values


def write_config(directory: Path, config: CheckpointConfig) -> None:
    """Write ``config.json`` into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(config.model_dump(), indent=2, sort_keys=True) + "\n")


def read_config(directory: str | os.PathLike[str]) -> CheckpointConfig:
    """Read and validate ``config.json`` from a checkpoint folder.

    Raises:
        CheckpointError: The folder or file is missing, too large, not JSON, or fails validation.
    """
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {directory}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory} has no {CONFIG_FILE}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes; refusing to read it")
    with path.open("rb") as handle:  # bounded even where stat lies (a link to a /proc file, a growing file)
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes; refusing to read it")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, absurd nesting or number sizes
        raise CheckpointError(f"{path} is not valid JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    try:
        return CheckpointConfig.model_validate(raw)
    except ValidationError as exc:
        raise CheckpointError(f"{path} is not a valid router config: {exc}") from exc


def save_tensors(
    directory: Path,
    tensors: Mapping[str, np.ndarray],
    filename: str = WEIGHTS_FILE,
    *,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write numpy arrays as safetensors, with optional string ``metadata`` in the header. The file mode comes from
    the umask, like ``config.json``'s: safetensors' ``save_file`` makes the file owner-only (even one that existed),
    so a checkpoint shipped or shared by another user could not be read."""
    from safetensors.numpy import save

    directory.mkdir(parents=True, exist_ok=True)
    data = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=dict(metadata or {}) or None)
    (directory / filename).write_bytes(data)


def load_tensors(
    directory: str | os.PathLike[str],
    expected: Mapping[str, tuple[int | None, ...]],
    *,
    filename: str = WEIGHTS_FILE,
    max_bytes: int | None = None,
) -> dict[str, np.ndarray]:
    """Load safetensors weights and check names, shapes and values.

    Args:
        directory: Checkpoint folder.
        expected: Tensor name -> shape; ``None`` in a shape accepts any size on that axis.
        filename: Weights file inside the folder (a bare file name; no paths).
        max_bytes: Largest file accepted; :data:`MAX_WEIGHTS_BYTES` (read at call time) when ``None``.

    Raises:
        CheckpointError: Missing or oversized file, unreadable data, missing or unexpected tensors, wrong
            shapes, NaN or infinite values.
    """
    if Path(filename).name != filename:
        raise CheckpointError(f"weights file name {filename!r} must be a bare file name")
    path = Path(directory) / filename
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory} has no {filename}")
    if max_bytes is None:
        max_bytes = MAX_WEIGHTS_BYTES
    if path.stat().st_size > max_bytes:
        raise CheckpointError(f"{path} is {path.stat().st_size} bytes, above the {max_bytes}-byte limit")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{path} does not hold this router's weights (another router's checkpoint?): missing tensors "
            f"{_few(missing)}, unexpected tensors {_few(extra)}"
        )
    for name, shape in expected.items():
        arr = tensors[name]
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            raise CheckpointError(f"{path}: tensor {name!r} has shape {arr.shape}, expected {shape}")
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or infinite values")
    return tensors


def _few(names: list[str], shown: int = 5) -> str:
    """The first ``shown`` names, then how many more (a whole network's tensor list is hundreds of lines)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{names[:shown]}{more}"
