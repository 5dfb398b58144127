"""The one abstraction: a win-prediction model maps a batch of routing texts to P(strong beats weak)."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError

from routellm_core.checkpoint import CheckpointConfig, read_config, write_config
from routellm_core.data.catalog import STRONG_REFERENCE, WEAK_REFERENCE
from routellm_core.data.records import Battle
from routellm_core.decisions import RoutingDecision, Side, check_threshold
from routellm_core.embedding.embedders import (
    Embedder,
    check_texts,
    default_embedder,
    embedder_from_name,
    same_embedder,
    valid_unicode,
)
from routellm_core.errors import (
    CheckpointError,
    InvalidInputError,
    NotFittedError,
    RouteLLMError,
    ScoringError,
    TrainingDataError,
)

logger = logging.getLogger(__name__)


class WinRateModel(ABC):
    """Base class of every router.

    Follows scikit-learn's estimator rules: ``__init__`` stores parameters only, :meth:`fit` returns ``self``,
    learned state ends in ``_``, predicting before fitting raises :class:`NotFittedError`. Persistence is a
    folder holding ``config.json`` and safetensors weights.

    Args:
        strong_model: Reference strong model the score is about.
        weak_model: Reference weak model.
        embedder: Embedder for routers that embed text; the shared offline MiniLM when ``None``.
    """

    #: Registry name.
    name: ClassVar[str]
    #: Whether the router embeds text (and records its embedder in checkpoints).
    uses_embedder: ClassVar[bool] = True
    #: How a router that embeds nothing reads text: named when ``embedder=`` is given to it (and refused).
    text_reader: ClassVar[str] = "embeds no text"
    #: Constructor parameters saved in the config and passed back on load.
    config_keys: ClassVar[tuple[str, ...]] = ()
    #: Pydantic types (with constraints) for parameters read from a checkpoint, e.g.
    #: ``{"chunk_size": Annotated[int, Field(ge=1)]}``; other keys are checked against ``__init__``'s annotations.
    param_types: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        strong_model: str = STRONG_REFERENCE,
        weak_model: str = WEAK_REFERENCE,
        embedder: Embedder | None = None,
    ) -> None:
        self.strong_model = strong_model
        self.weak_model = weak_model
        self.embedder = embedder
        self.calibrated_thresholds: dict[str, float] = {}
        self.metadata: dict[str, Any] = {}

    # ---- embedding -------------------------------------------------------------------------------------
    @classmethod
    def check_embedder(cls, embedder: Embedder | None, what: str) -> None:
        """Refuse ``embedder=`` for a router that embeds no text (it would be ignored without a word).

        Raises:
            InvalidInputError: ``embedder`` is given and this router embeds nothing, naming its kind and ``what``.
        """
        if embedder is not None and not cls.uses_embedder:
            raise InvalidInputError(
                f"embedder= does not apply to {what}: a {cls.name!r} router {cls.text_reader}, so "
                f"{embedder.name!r} would be ignored; drop embedder="
            )

    def get_embedder(self) -> Embedder:
        """The embedder in use (the shared offline MiniLM unless one was given)."""
        if self.embedder is None:
            self.embedder = default_embedder()
        return self.embedder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with this router's embedder."""
        return self.get_embedder().embed(texts)

    # ---- training and scoring --------------------------------------------------------------------------
    @abstractmethod
    def fit(self, battles: Sequence[Battle]) -> WinRateModel:
        """Learn from battles; returns ``self``."""

    @abstractmethod
    def _is_fitted(self) -> bool:
        """Whether the learned state exists."""

    @abstractmethod
    def _predict(self, texts: list[str]) -> np.ndarray:
        """Scores for validated texts."""

    def predict_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Scores for precomputed embeddings (routers that embed text override this)."""
        raise NotImplementedError(f"{self.name} does not score embeddings directly")

    def predict_win_rate(self, texts: Sequence[str]) -> np.ndarray:
        """Predict P(strong beats weak) for each routing text.

        Returns:
            A float64 array in [0, 1], one value per text.

        Raises:
            InvalidInputError: Empty batch, blank or non-text items.
            NotFittedError: The router was neither fitted nor loaded.
            EmbeddingError: The embedder failed.
            ScoringError: The router failed in its own code or produced NaN / the wrong number of scores.
        """
        items = [valid_unicode(t) for t in check_texts(texts)]
        if not self._is_fitted():
            raise NotFittedError(f"router {self.name!r} is not fitted: call fit(...) or load a checkpoint")
        try:
            scores = np.asarray(self._predict(items), dtype=np.float64).reshape(-1)
        except RouteLLMError:
            raise
        except Exception as exc:
            raise ScoringError(
                f"router {self.name!r} failed to score {len(items)} text(s): {type(exc).__name__}: {exc}"
            ) from exc
        if scores.shape[0] != len(items) or not np.isfinite(scores).all():
            raise ScoringError(
                f"router {self.name!r} produced {scores.shape[0]} score(s) for {len(items)} text(s), "
                f"{int(np.count_nonzero(~np.isfinite(scores)))} of them NaN or infinite"
            )
        return np.clip(scores, 0.0, 1.0)

    def route(self, texts: Sequence[str], threshold: float = 0.5) -> list[Side]:
        """Choose ``"strong"`` for each text whose win rate is at least ``threshold``, else ``"weak"``."""
        return [d.choice for d in self.decide(texts, threshold)]

    def decide(self, texts: Sequence[str], threshold: float = 0.5) -> list[RoutingDecision]:
        """Full routing decisions (win rate, threshold, choice) for each text."""
        thr = check_threshold(threshold)
        return [RoutingDecision.of(self.name, p, thr) for p in self.predict_win_rate(texts)]

    def threshold_for(self, strong_fraction: float) -> float:
        """Threshold sending about ``strong_fraction`` of traffic to strong, from the shipped calibration.

        Interpolates linearly between calibrated points (0 -> 1.0, 1 -> 0.0 at the ends).

        Raises:
            InvalidThresholdError: ``strong_fraction`` outside [0, 1].
            CheckpointError: The router carries no calibration; use ``calibrate_threshold`` on your prompts.
        """
        frac = check_threshold(strong_fraction, "strong_fraction")
        if not self.calibrated_thresholds:
            raise CheckpointError(
                f"router {self.name!r} has no calibrated thresholds; "
                "use routellm_core.calibrate_threshold(router, prompts, strong_fraction), or write them into its "
                "checkpoint: routellm calibrate --router DIR --prompts YOUR_PROMPTS --write"
            )
        points = sorted((float(k), v) for k, v in self.calibrated_thresholds.items())
        xs = [0.0, *[p[0] for p in points], 1.0]
        ys = [1.0, *[p[1] for p in points], 0.0]
        return float(np.interp(frac, xs, ys))

    def _model_index(self, model: str) -> int:
        """Position of ``model`` in a fitted router's ``models_`` (routers with a model space)."""
        models: list[str] = getattr(self, "models_", [])
        try:
            return models.index(model)
        except ValueError:
            raise TrainingDataError(f"model {model!r} was not in the training data; known: {models}") from None

    # ---- persistence -----------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, as saved in the config."""
        return {k: getattr(self, k) for k in self.config_keys}

    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (override in routers with weights)."""
        return {}

    def _save_state(self, directory: Path) -> None:
        """Write learned state; the default stores :meth:`_state` as safetensors."""
        from routellm_core.checkpoint import save_tensors

        state = self._state()
        if state:
            save_tensors(directory, state)

    def _load_state(self, directory: Path, config: CheckpointConfig) -> None:
        """Read learned state written by :meth:`_save_state` (routers without weights keep the default)."""
        return None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted router as ``config.json`` + safetensors into folder ``path``."""
        if not self._is_fitted():
            raise NotFittedError(f"router {self.name!r} is not fitted; nothing to save")
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_state(directory)
        write_config(directory, self._config())
        return directory

    def _config(self) -> CheckpointConfig:
        """The ``config.json`` :meth:`save` writes."""
        return CheckpointConfig(
            router=self.name,
            embedder=self.get_embedder().name if self.uses_embedder else None,
            strong_model=self.strong_model,
            weak_model=self.weak_model,
            params=self.get_params(),
            calibrated_thresholds=self.calibrated_thresholds,
            metadata=self.metadata,
        )

    def fingerprint(self) -> str:
        """A SHA-256 of the fitted router as :meth:`save` would write it (its config and learned arrays), computed
        in memory: one checkpoint loaded twice, in any process, has one fingerprint; two routers trained
        differently have two (a cache key for answers that depend on the router, e.g. LangChain's).

        Raises:
            NotFittedError: Nothing fitted to fingerprint.
        """
        if not self._is_fitted():
            raise NotFittedError(f"router {self.name!r} is not fitted; nothing to fingerprint")
        digest = hashlib.sha256(json.dumps(self._config().model_dump(), sort_keys=True).encode())
        for name, array in sorted(self._state().items()):
            array = np.ascontiguousarray(array)
            digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, embedder: Embedder | None = None) -> WinRateModel:
        """Load a router saved by :meth:`save`.

        Args:
            path: Checkpoint folder.
            embedder: Embedder to use; must have the name the checkpoint records. Rebuilt from that name
                when ``None`` (works for the local MiniLM and OpenAI embedders).

        Raises:
            CheckpointError: Missing or corrupt files, a config for another router, or an embedder mismatch.
            InvalidInputError: ``embedder`` given for a router that embeds no text (bert, causal_llm, random).
        """
        directory = Path(path)
        config = read_config(directory)
        if config.router != cls.name:
            raise CheckpointError(f"{directory} holds a {config.router!r} router, not {cls.name!r}")
        cls.check_embedder(embedder, f"the checkpoint {directory}")
        params = cls._validate_params(config.params, directory)
        try:
            router = cls(strong_model=config.strong_model, weak_model=config.weak_model, **params)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{directory}: config params do not fit {cls.__name__}: {exc}") from exc
        if cls.uses_embedder:
            if config.embedder is None:
                raise CheckpointError(f"{directory}: config names no embedder")
            renamed = embedder is not None and embedder.name != config.embedder
            if renamed and same_embedder(config.embedder, embedder.name):  # type: ignore[union-attr]
                logger.warning(
                    "%s records embedder %r, the name the shipped %r had when given by its folder (and any model in a "
                    "folder of that name): loading it with the shipped one",
                    directory,
                    config.embedder,
                    embedder.name,
                )
            if embedder is not None and not same_embedder(config.embedder, embedder.name):
                raise CheckpointError(
                    f"embedder mismatch: {directory} was trained with {config.embedder!r}, "
                    f"but {embedder.name!r} was given"
                )
            router.embedder = embedder or embedder_from_name(config.embedder)
        router.calibrated_thresholds = dict(config.calibrated_thresholds)
        router.metadata = dict(config.metadata)
        router._load_state(directory, config)
        return router

    @classmethod
    def _validate_params(cls, params: Mapping[str, Any], directory: Path) -> dict[str, Any]:
        """Check constructor parameters read from a checkpoint: only ``config_keys``, each of the type (and
        within the bounds) that ``param_types`` or ``__init__``'s annotation gives; NaN and infinity refused.

        Raises:
            CheckpointError: An unknown parameter, or a value of the wrong type or out of bounds.
        """
        unknown = sorted(set(params) - set(cls.config_keys))
        if unknown:
            raise CheckpointError(
                f"{directory}: config params {unknown} are not parameters of {cls.__name__} "
                f"(expected some of {list(cls.config_keys)})"
            )
        return cls._checked_params(params, f"{directory}: config param", CheckpointError)

    def check_params(self) -> None:
        """Refuse parameters that :meth:`load` would refuse in a checkpoint, before any training (so nothing is
        trained or saved that could not be loaded back); a value of an equal but looser type (``2.0`` epochs) is
        stored as the declared type.

        Raises:
            InvalidInputError: A parameter of the wrong type or out of bounds, naming it.
        """
        for key, value in self._checked_params(self.get_params(), f"{self.name} parameter", InvalidInputError).items():
            setattr(self, key, value)

    @classmethod
    def _checked_params(cls, params: Mapping[str, Any], what: str, error: type[RouteLLMError]) -> dict[str, Any]:
        """``params`` validated against ``param_types`` or ``__init__``'s annotations; ``error`` names the first bad
        one, after ``what``."""
        try:
            signature = inspect.signature(cls.__init__, eval_str=True).parameters
        except NameError:  # an annotation names a type-checking-only import: check those keys as Any
            signature = inspect.signature(cls.__init__).parameters
        checked: dict[str, Any] = {}
        for key, value in params.items():
            annotation = cls.param_types.get(key)
            if annotation is None:
                parameter = signature.get(key)
                known = parameter is not None and parameter.annotation is not inspect.Parameter.empty
                known = known and not isinstance(parameter.annotation, str)  # unresolved: checked as Any
                annotation = parameter.annotation if known else Any  # type: ignore[union-attr]
            try:
                checked[key] = TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False)).validate_python(value)
            except ValidationError as exc:
                problems = "; ".join(e["msg"] for e in exc.errors())
                raise error(f"{what} {key!r} = {value!r:.80} is invalid for {cls.__name__}: {problems}") from None
        return checked

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
