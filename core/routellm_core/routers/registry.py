"""Router registry: names to classes (imported lazily), and ``load_router`` for names, pretrained and paths."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from routellm_core.checkpoint import CONFIG_FILE, read_config
from routellm_core.embedding.embedders import Embedder
from routellm_core.errors import InvalidInputError, UnknownRouterError
from routellm_core.routers.base import WinRateModel

#: name -> "module:Class"; modules are imported on first use so torch-heavy routers cost nothing until asked.
_REGISTRY: dict[str, str] = {
    "random": "routellm_core.routers.random:RandomRouter",
    "sw_ranking": "routellm_core.routers.sw_ranking:SWRankingRouter",
    "mf": "routellm_core.routers.mf:MatrixFactorizationRouter",
    "difficulty": "routellm_core.routers.difficulty:DifficultyRouter",
    "bert": "routellm_core.routers.bert:BertRouter",
    "causal_llm": "routellm_core.routers.causal_llm:CausalLLMRouter",
}

PRETRAINED_DIR = Path(__file__).parents[1] / "pretrained"


def register_router(name: str, target: str | type[WinRateModel]) -> None:
    """Register a router class (or its ``"module:Class"`` path) under ``name``."""
    _REGISTRY[name] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def available_routers() -> list[str]:
    """Registered router names, sorted."""
    return sorted(_REGISTRY)


def pretrained_routers() -> list[str]:
    """Names of the routers shipped inside the package (``"default"`` among them)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_FILE).is_file())


def get_router_class(name: str) -> type[WinRateModel]:
    """The class registered under ``name``.

    Raises:
        UnknownRouterError: No router has that name.
    """
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UnknownRouterError(
            f"unknown router {name!r}; available: {available_routers()}, pretrained: {pretrained_routers()}"
        ) from None
    module, _, attr = target.partition(":")
    cls: type[WinRateModel] = getattr(importlib.import_module(module), attr)
    return cls


def load_checkpoint(path: str | os.PathLike[str], *, embedder: Embedder | None = None) -> WinRateModel:
    """Load any saved router from its folder, whatever its type."""
    config = read_config(path)
    return get_router_class(config.router).load(path, embedder=embedder)


def load_router(
    name_or_path: str | os.PathLike[str] = "default", *, embedder: Embedder | None = None, **kwargs: Any
) -> WinRateModel:
    """Get a router by pretrained name, checkpoint path, or registry name.

    Resolution order: a shipped pretrained router (``"default"``), an existing checkpoint folder, then a
    registry name, which builds an unfitted router from ``kwargs`` (``random`` needs no fitting).

    Raises:
        UnknownRouterError: Nothing matches.
        CheckpointError: The checkpoint exists but is missing files, corrupt, or for another embedder.
        InvalidInputError: Constructor parameters for a checkpoint (its parameters are the saved ones), or
            ``embedder`` for a router that embeds no text (bert and causal_llm read it with their own encoder).
    """
    if isinstance(name_or_path, WinRateModel):
        return name_or_path
    key = os.fspath(name_or_path)
    path = Path(key)
    folder = PRETRAINED_DIR / key if key in pretrained_routers() else path
    if key in pretrained_routers() or path.is_dir() or (path.suffix == "" and os.sep in key):
        if kwargs:
            raise InvalidInputError(
                f"{key!r} is a checkpoint: it loads with its saved parameters and takes none of {sorted(kwargs)}; "
                f"for your own pair, warm-start from it: train_router(None, [], init={key!r}, strong_model=..., "
                "weak_model=...)"
            )
        return load_checkpoint(folder, embedder=embedder)
    cls = get_router_class(key)
    cls.check_embedder(embedder, f"load_router({key!r})")
    if embedder is not None:
        kwargs["embedder"] = embedder
    return cls(**kwargs)
