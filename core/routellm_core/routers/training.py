"""Training helpers: a disk-cached embedder for training runs, and fit (or warm start) + calibrate in one call."""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

from routellm_core.data.records import Battle
from routellm_core.embedding.cache import CachedEmbedder
from routellm_core.embedding.embedders import MINILM_NAME, Embedder, TransformerEmbedder, embedder_from_name
from routellm_core.errors import CheckpointError, InvalidInputError
from routellm_core.evaluation.calibration import DEFAULT_FRACTIONS, calibrate_thresholds
from routellm_core.paths import cache_dir
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.registry import get_router_class, load_router, pretrained_routers

#: With ``init`` and no calibration prompts, the battles' prompts recalibrate the thresholds from this many on;
#: fewer keep the init's table (a handful of prompts cannot place nine thresholds).
MIN_CALIBRATION_PROMPTS = 20


def training_embedder(name: str = MINILM_NAME) -> Embedder:
    """The named embedder with a persistent SQLite cache, so repeated training runs embed each prompt once."""
    if name == MINILM_NAME:
        return CachedEmbedder(TransformerEmbedder(), cache_dir=cache_dir() / "embeddings")
    return embedder_from_name(name)


def train_router(
    router: str | WinRateModel | None,
    battles: Sequence[Battle],
    *,
    init: str | os.PathLike[str] | WinRateModel | None = None,
    embedder: Embedder | None = None,
    calibration_prompts: Sequence[str] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    **params: Any,
) -> WinRateModel:
    """Build (by registry name) or take a router, fit it on ``battles`` and optionally calibrate it.

    Args:
        router: Registry name (``"mf"``, ``"difficulty"``...) or an unfitted router instance; ``None`` with
            ``init``: the init's type.
        battles: Training battles (may be empty with ``init``: the result then scores like the init).
        init: Warm start: a shipped router name (``"default"``: difficulty, ``"fast"``: mf), a checkpoint
            folder or a fitted router of the same type to start from (``mf`` and ``difficulty`` warm-start).
            Its hyperparameters, reference pair and embedder are reused (``params`` override the
            hyperparameters; ``strong_model`` / ``weak_model`` may name your own pair, which starts from the
            init's reference models); training refits the pair's logit on your battles, pulled towards the
            init's, less as labels grow (``warm_prior``, its strength chosen by cross-validation). Thresholds are
            recalibrated on ``calibration_prompts``, or on the battles' prompts when there are at least
            ``MIN_CALIBRATION_PROMPTS`` of them.
        embedder: Embedder for routers that embed text; the disk-cached MiniLM when ``None`` (the init's with
            ``init``; another one is refused).
        calibration_prompts: If given, thresholds for ``fractions`` are computed on them and stored.
        fractions: Strong-call fractions to calibrate.
        **params: Constructor parameters (e.g. ``epochs``, ``strong_model``).

    Raises:
        InvalidInputError: An unknown parameter, or one out of range.
        CheckpointError: ``init`` cannot warm-start this router (another type or embedding space).
        TrainingDataError: The battles cannot train the router.
    """
    if init is not None:
        return _warm_start(router, battles, init, embedder, calibration_prompts, fractions, params)
    if router is None:
        raise InvalidInputError("name the router to train (router=None needs init= to take its type from)")
    if isinstance(router, str):
        _check_params(get_router_class(router), params)
    model = load_router(router, **params) if isinstance(router, str) else router
    model.check_embedder(embedder, f"training {model.name}")
    if model.uses_embedder and model.embedder is None:
        model.embedder = embedder or training_embedder()
    model.fit(battles)
    if calibration_prompts:
        calibrate_thresholds(model, calibration_prompts, fractions)
    return model


def _warm_start(
    router: str | WinRateModel | None,
    battles: Sequence[Battle],
    init: str | os.PathLike[str] | WinRateModel,
    embedder: Embedder | None,
    calibration_prompts: Sequence[str] | None,
    fractions: Sequence[float],
    params: dict[str, Any],
) -> WinRateModel:
    start = _load_init(init)
    name = start.name if router is None else router if isinstance(router, str) else router.name
    if name != start.name:
        raise CheckpointError(f"cannot warm-start a {name!r} router from a {start.name!r} router ({_label(init)})")
    if "init" not in inspect.signature(type(start).fit).parameters:
        raise CheckpointError(f"{name!r} routers cannot be warm-started; train without init")
    if embedder is not None and start.uses_embedder and embedder.name != start.get_embedder().name:
        raise CheckpointError(
            f"embedder mismatch: the init {_label(init)} was trained with {start.get_embedder().name!r}, "
            f"but {embedder.name!r} was given; drop embedder= to reuse the init's"
        )
    if not isinstance(router, WinRateModel):
        cls = type(start)
        _check_params(cls, params)
        settings = {"strong_model": start.strong_model, "weak_model": start.weak_model, **start.get_params()}
        model = cls(**{**settings, **params})
    else:
        model = router
    if model.uses_embedder and model.embedder is None:
        model.embedder = embedder or start.get_embedder()  # another space is refused by fit
    model.fit(battles, init=start)  # type: ignore[call-arg]
    model.metadata["warm_start"] = {
        "init": _label(init),
        "init_reference_pair": [start.strong_model, start.weak_model],
        "init_n_battles": start.metadata.get("n_battles"),
        "init_sources": start.metadata.get("sources"),
    }
    prompts = list(calibration_prompts or dict.fromkeys(b.prompt for b in battles))
    if calibration_prompts or len(prompts) >= MIN_CALIBRATION_PROMPTS:
        model.calibrated_thresholds = dict(start.calibrated_thresholds)  # merged: every point recalibrated
        calibrate_thresholds(model, prompts, fractions)
        model.metadata["calibrated_on_prompts"] = len(prompts)
    else:
        model.calibrated_thresholds = dict(start.calibrated_thresholds)
    return model


def _load_init(init: str | os.PathLike[str] | WinRateModel) -> WinRateModel:
    """The init router, fitted: a shipped name, a checkpoint folder or an instance."""
    if isinstance(init, WinRateModel):
        return init
    key = os.fspath(init)
    if key not in pretrained_routers() and not os.path.isdir(key):
        raise CheckpointError(
            f"init {key!r} is neither a shipped router {pretrained_routers()} nor a checkpoint folder"
        )
    return load_router(key)


def _label(init: str | os.PathLike[str] | WinRateModel) -> str:
    return init.name if isinstance(init, WinRateModel) else os.fspath(init)


def _check_params(cls: type[WinRateModel], params: dict[str, Any]) -> None:
    """Refuse constructor parameters the router does not take, with the list of those it does."""
    accepted = set(inspect.signature(cls.__init__).parameters) | {"strong_model", "weak_model", "embedder"}
    unknown = sorted(set(params) - accepted - {"self", "kwargs"})
    if unknown:
        raise InvalidInputError(
            f"{cls.name} takes no parameter(s) {unknown}; its parameters: {sorted(cls.config_keys)}"
        )
