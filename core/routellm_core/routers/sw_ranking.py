"""Similarity-weighted Bradley-Terry ranking (RouteLLM's ``sw_ranking``), vectorised over queries and battles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from routellm_core._optional import requires_extra
from routellm_core.checkpoint import CheckpointConfig, load_tensors
from routellm_core.data.records import Battle
from routellm_core.errors import CheckpointError, EmbeddingError, TrainingDataError
from routellm_core.routers._battles import battle_arrays
from routellm_core.routers.base import WinRateModel


class SWRankingRouter(WinRateModel):
    """Per query, weight every training battle by prompt similarity and fit Bradley-Terry ratings on them.

    A battle on prompt ``p_i`` weighs ``gamma ** (1 + cos(q, p_i) / max_j cos(q, p_j))``. Battles are
    pre-aggregated per (prompt, model pair), so one query costs one matrix-vector product over the training
    prompts plus a few Newton steps over the model ratings. Returns ``sigmoid(R_strong - R_weak)``.

    Args:
        gamma: Similarity sharpness (RouteLLM: 10).
        l2: Ridge penalty on the ratings; keeps the Newton system well posed.
        newton_steps: Newton iterations per query.
        chunk_size: Queries scored together (bounds memory: chunk x training prompts floats).
    """

    name = "sw_ranking"
    config_keys = ("gamma", "l2", "newton_steps", "chunk_size")
    param_types: ClassVar[dict[str, Any]] = {
        "gamma": Annotated[float, Field(ge=1, le=1e4)],
        "l2": Annotated[float, Field(gt=0)],
        "newton_steps": Annotated[int, Field(ge=1, le=1000)],
        "chunk_size": Annotated[int, Field(ge=1)],
    }

    def __init__(
        self,
        gamma: float = 10.0,
        l2: float = 1.0,
        newton_steps: int = 8,
        chunk_size: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gamma = gamma
        self.l2 = l2
        self.newton_steps = newton_steps
        self.chunk_size = chunk_size

    def fit(self, battles: Sequence[Battle]) -> SWRankingRouter:
        """Store the embedded training prompts and their per-model-pair win weights.

        Raises:
            InvalidInputError: A parameter of the wrong type or out of range (checked first, so nothing is saved
                that could not be loaded back).
            TrainingDataError: No battles, a reference model absent, or every battle a tie (every query would
                score 0.5).
        """
        self.check_params()
        arr = battle_arrays(battles, required_models=(self.strong_model, self.weak_model))
        if (arr.a_score == 0.5).all():
            raise TrainingDataError(
                f"all {len(arr.a_score)} training battles are ties: sw_ranking would score every query 0.5; it needs "
                "battles some model won"
            )
        pairs = sorted({(int(a), int(b)) for a, b in zip(arr.a_idx, arr.b_idx)})
        pair_index = {p: k for k, p in enumerate(pairs)}
        k_idx = np.array([pair_index[(int(a), int(b))] for a, b in zip(arr.a_idx, arr.b_idx)], dtype=np.int64)
        wins = np.zeros((len(arr.prompts), len(pairs)), dtype=np.float32)
        losses = np.zeros_like(wins)
        np.add.at(wins, (arr.prompt_idx, k_idx), arr.a_score)
        np.add.at(losses, (arr.prompt_idx, k_idx), 1.0 - arr.a_score)
        # stored as float16 in checkpoints; round now so a loaded router scores exactly like the fitted one
        self.embeddings_ = self.embed(arr.prompts).astype(np.float16).astype(np.float32)
        self.pair_models_ = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.wins_, self.losses_ = wins, losses
        self.models_ = arr.models
        self.metadata.update(n_battles=len(battles), n_prompts=len(arr.prompts), models=arr.models)
        return self

    def _is_fitted(self) -> bool:
        return hasattr(self, "embeddings_")

    def _predict(self, texts: list[str]) -> np.ndarray:
        return self.predict_from_embeddings(self.embed(texts))

    def predict_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Win rates for already-embedded queries."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embeddings_.shape[1]:
            raise EmbeddingError(
                f"sw_ranking was trained on {self.embeddings_.shape[1]}-d embeddings, got shape {embeddings.shape}"
            )
        out = np.empty(len(embeddings))
        for start in range(0, len(embeddings), self.chunk_size):
            out[start : start + self.chunk_size] = self._score_chunk(embeddings[start : start + self.chunk_size])
        return out

    def _score_chunk(self, queries: np.ndarray) -> np.ndarray:
        sims = queries.astype(np.float32) @ self.embeddings_.T  # (Q, P)
        top = np.maximum(sims.max(axis=1, keepdims=True), 1e-6)
        weights = np.power(np.float32(self.gamma), 1.0 + sims / top)  # (Q, P)
        sparse_wins, sparse_losses, incidence, outer = self._scoring_tables()
        win_w = np.asarray(sparse_wins.T @ weights.T, dtype=np.float64).T  # (Q, K)
        loss_w = np.asarray(sparse_losses.T @ weights.T, dtype=np.float64).T
        total = win_w + loss_w
        n_models = len(self.models_)
        ratings = np.zeros((len(queries), n_models))
        eye = np.eye(n_models)
        for _ in range(self.newton_steps):
            p = 1.0 / (1.0 + np.exp(-(ratings @ incidence.T)))  # (Q, K): P(a beats b) per model pair
            grad = (win_w - total * p) @ incidence - self.l2 * ratings  # d loglik / d ratings
            hess = ((total * p * (1.0 - p)) @ outer).reshape(-1, n_models, n_models) + self.l2 * eye
            ratings += np.linalg.solve(hess, grad[..., None])[..., 0]
        s, w = self.models_.index(self.strong_model), self.models_.index(self.weak_model)
        return 1.0 / (1.0 + np.exp(-(ratings[:, s] - ratings[:, w])))

    def _scoring_tables(self) -> tuple[Any, Any, np.ndarray, np.ndarray]:
        """Sparse win/loss tables and the pair incidence matrices, built once from the fitted state.

        ``incidence`` is (K, M) with +1 at model a and -1 at model b of each pair, so rating differences are
        ``ratings @ incidence.T``; ``outer`` is (K, M*M), each pair's ``d d^T`` flattened, so the Newton
        Hessian is one matrix product instead of a Python loop over pairs.
        """
        cached = getattr(self, "_tables", None)
        if cached is not None and cached[0] is self.wins_:
            return cached[1]
        with requires_extra("sw-ranking", "the sw_ranking router"):
            from scipy import sparse

        n_models = len(self.models_)
        incidence = np.zeros((len(self.pair_models_), n_models))
        rows = np.arange(len(self.pair_models_))
        incidence[rows, self.pair_models_[:, 0]] += 1.0
        incidence[rows, self.pair_models_[:, 1]] -= 1.0
        outer = (incidence[:, :, None] * incidence[:, None, :]).reshape(len(incidence), -1)
        tables = (sparse.csr_matrix(self.wins_), sparse.csr_matrix(self.losses_), incidence, outer)
        self._tables = (self.wins_, tables)
        return tables

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "embeddings": self.embeddings_.astype(np.float16),
            "wins": self.wins_,
            "losses": self.losses_,
            "pair_models": self.pair_models_,
        }

    def _load_state(self, directory: Path, config: CheckpointConfig) -> None:
        models = config.metadata.get("models")
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise CheckpointError(f"{directory}: sw_ranking config lacks its model list (metadata.models)")
        t = load_tensors(
            directory,
            {
                "embeddings": (None, None),
                "wins": (None, None),
                "losses": (None, None),
                "pair_models": (None, 2),
            },
        )
        n_prompts, n_pairs = t["wins"].shape
        if t["embeddings"].shape[0] != n_prompts or t["losses"].shape != t["wins"].shape:
            raise CheckpointError(f"{directory}: sw_ranking tensors disagree on the number of prompts")
        if n_prompts == 0 or n_pairs == 0:
            raise CheckpointError(f"{directory}: sw_ranking checkpoint holds no training battles")
        if not np.issubdtype(t["pair_models"].dtype, np.integer):
            raise CheckpointError(f"{directory}: sw_ranking pair table is {t['pair_models'].dtype}, not integers")
        for key in ("wins", "losses"):
            # bounded so that the gamma**2-weighted sums (gamma <= 1e4) stay finite in float32
            if t[key].min() < 0 or float(t[key].astype(np.float64).sum()) > 1e30:
                raise CheckpointError(f"{directory}: sw_ranking {key} counts are negative or implausibly large")
        if (
            t["pair_models"].shape[0] != n_pairs
            or t["pair_models"].min(initial=0) < 0
            or (t["pair_models"].max(initial=0) >= len(models))
        ):
            raise CheckpointError(f"{directory}: sw_ranking pair table does not fit its {len(models)} models")
        for m in (self.strong_model, self.weak_model):
            if m not in models:
                raise CheckpointError(f"{directory}: reference model {m!r} is not among the trained models")
        self.embeddings_ = t["embeddings"].astype(np.float32)
        self.wins_, self.losses_ = t["wins"].astype(np.float32), t["losses"].astype(np.float32)
        self.pair_models_ = t["pair_models"].astype(np.int64)
        self.models_ = models
