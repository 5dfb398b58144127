"""Matrix-factorization router (RouteLLM's ``mf``): one vector per model, a projection of the query embedding."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from routellm_core.checkpoint import CheckpointConfig, load_tensors
from routellm_core.errors import CheckpointError, EmbeddingError, TrainingDataError
from routellm_core.records import Battle
from routellm_core.routers._battles import battle_arrays
from routellm_core.routers.base import WinRateModel

logger = logging.getLogger(__name__)


class MatrixFactorizationRouter(WinRateModel):
    """``s(m, q) = w · (v̂_m ⊙ W e_q) + b_m``; ``P(strong wins | q) = sigmoid(s(strong, q) - s(weak, q))``.

    Trained with the pairwise logistic loss on battles (ties dropped), Adam, Gaussian noise on the query
    embeddings, early stopping on a held-out split. For scoring, the strong-weak difference folds into one
    vector ``u = Wᵀ (w ⊙ (v̂_s - v̂_w))``: a batch costs one matrix-vector product after embedding.

    Args:
        dim: Latent size (RouteLLM: 128).
        epochs: Maximum training epochs.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (RouteLLM: 1e-5).
        noise: Standard deviation of the noise added to query embeddings while training (RouteLLM: 0.1).
        batch_size: Battles per step.
        use_bias: Learn a per-model bias (overall strength) beside the query-dependent term.
        validation_fraction: Share of prompts held out for early stopping (0 disables it).
        patience: Epochs without validation improvement before stopping.
        seed: Seed for initialisation, shuffling and the split.
        show_progress: Show a progress bar while training.
    """

    name = "mf"
    config_keys = (
        "dim",
        "epochs",
        "lr",
        "weight_decay",
        "noise",
        "batch_size",
        "use_bias",
        "validation_fraction",
        "patience",
        "seed",
    )
    param_types: ClassVar[dict[str, Any]] = {"dim": Annotated[int, Field(ge=1)]}

    def __init__(
        self,
        dim: int = 128,
        epochs: int = 40,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        noise: float = 0.1,
        batch_size: int = 512,
        use_bias: bool = True,
        validation_fraction: float = 0.1,
        patience: int = 4,
        seed: int = 0,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.noise = noise
        self.batch_size = batch_size
        self.use_bias = use_bias
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.show_progress = show_progress

    # ---- training --------------------------------------------------------------------------------------
    def fit(self, battles: Sequence[Battle], *, embeddings: np.ndarray | None = None) -> MatrixFactorizationRouter:
        """Train on battles.

        Args:
            battles: Training battles; ties are dropped. Must include the reference strong and weak models.
            embeddings: Optional precomputed embeddings of the unique prompts in first-seen order (as
                ``battle_arrays`` orders them), to skip embedding.
        """
        import torch
        from tqdm.auto import tqdm

        arr = battle_arrays(battles, required_models=(self.strong_model, self.weak_model))
        keep = arr.a_score != 0.5
        if not keep.any():
            raise TrainingDataError("every training battle is a tie; mf learns only from wins and losses")
        emb = self.embed(arr.prompts) if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        if emb.shape[0] != len(arr.prompts):
            raise TrainingDataError(f"got {emb.shape[0]} embeddings for {len(arr.prompts)} unique prompts")

        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        p_idx, a_idx, b_idx = arr.prompt_idx[keep], arr.a_idx[keep], arr.b_idx[keep]
        y = arr.a_score[keep]
        val_mask = np.zeros(len(y), dtype=bool)
        if self.validation_fraction > 0:
            held = rng.random(len(arr.prompts)) < self.validation_fraction
            val_mask = held[p_idx]
            if val_mask.all() or not val_mask.any():
                val_mask[:] = False

        n_models, text_dim = len(arr.models), emb.shape[1]
        model_vecs = torch.nn.Parameter(torch.randn(n_models, self.dim) * 0.1)
        proj = torch.nn.Linear(text_dim, self.dim, bias=False)
        head = torch.nn.Parameter(torch.randn(self.dim) * 0.1)
        bias = torch.nn.Parameter(torch.zeros(n_models), requires_grad=self.use_bias)
        params = [model_vecs, *proj.parameters(), head] + ([bias] if self.use_bias else [])
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

        E = torch.from_numpy(emb)
        t_p, t_a, t_b = (torch.from_numpy(x) for x in (p_idx, a_idx, b_idx))
        t_y = torch.from_numpy(y)

        def logits(rows: torch.Tensor, noisy: bool) -> torch.Tensor:
            q = E[t_p[rows]]
            if noisy and self.noise > 0:
                q = q + torch.randn_like(q) * self.noise
            z = proj(q)
            v = torch.nn.functional.normalize(model_vecs, dim=1)
            diff = (v[t_a[rows]] - v[t_b[rows]]) * z
            return diff @ head + bias[t_a[rows]] - bias[t_b[rows]]

        train_rows = np.flatnonzero(~val_mask)
        val_rows = torch.from_numpy(np.flatnonzero(val_mask))
        loss_fn = torch.nn.BCEWithLogitsLoss()
        best, best_state, stale = float("inf"), None, 0
        bar = tqdm(range(self.epochs), desc="mf", disable=not self.show_progress)
        for _ in bar:
            rng.shuffle(train_rows)
            for start in range(0, len(train_rows), self.batch_size):
                rows = torch.from_numpy(train_rows[start : start + self.batch_size])
                loss = loss_fn(logits(rows, True), t_y[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if len(val_rows):
                with torch.no_grad():
                    val = float(loss_fn(logits(val_rows, False), t_y[val_rows]))
                bar.set_postfix(val_loss=f"{val:.4f}")
                if val < best - 1e-5:
                    best, stale = val, 0
                    best_state = [p.detach().clone() for p in (model_vecs, proj.weight, head, bias)]
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        if best_state is not None:
            with torch.no_grad():
                for p, saved in zip((model_vecs, proj.weight, head, bias), best_state):
                    p.copy_(saved)
        with torch.no_grad():
            self.model_vectors_ = torch.nn.functional.normalize(model_vecs, dim=1).numpy().astype(np.float32)
            self.projection_ = proj.weight.detach().numpy().astype(np.float32)  # (dim, text_dim)
            self.head_ = head.detach().numpy().astype(np.float32)
            self.bias_ = bias.detach().numpy().astype(np.float32)
        self.models_ = list(arr.models)
        self.metadata.update(
            n_battles=int(keep.sum()),
            n_prompts=len(arr.prompts),
            models=list(arr.models),
            validation_loss=None if best == float("inf") else round(best, 5),
        )
        self._fold()
        return self

    def _fold(self) -> None:
        """Precompute the scoring vector for the reference pair."""
        s, w = self._model_index(self.strong_model), self._model_index(self.weak_model)
        delta = self.head_ * (self.model_vectors_[s] - self.model_vectors_[w])
        self._u = (self.projection_.T @ delta).astype(np.float32)
        self._c = float(self.bias_[s] - self.bias_[w])

    def _model_index(self, model: str) -> int:
        try:
            return self.models_.index(model)
        except ValueError:
            raise TrainingDataError(f"model {model!r} was not in the training data; known: {self.models_}") from None

    # ---- scoring ---------------------------------------------------------------------------------------
    def _is_fitted(self) -> bool:
        return hasattr(self, "model_vectors_")

    def _predict(self, texts: list[str]) -> np.ndarray:
        return self.predict_from_embeddings(self.embed(texts))

    def predict_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Win rates for already-embedded queries: one matrix-vector product."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self._u.shape[0]:
            raise EmbeddingError(f"mf was trained on {self._u.shape[0]}-d embeddings, got shape {embeddings.shape}")
        z = embeddings @ self._u + self._c
        return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))

    def pairwise_win_rate(self, texts: Sequence[str], model_a: str, model_b: str) -> np.ndarray:
        """P(model_a beats model_b) for each text, for any two models seen in training."""
        a, b = self._model_index(model_a), self._model_index(model_b)
        e = self.embed(texts)
        z = (e @ self.projection_.T) @ (self.head_ * (self.model_vectors_[a] - self.model_vectors_[b]))
        return 1.0 / (1.0 + np.exp(-(z + self.bias_[a] - self.bias_[b]).astype(np.float64)))

    # ---- persistence -----------------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "model_vectors": self.model_vectors_,
            "projection": self.projection_,
            "head": self.head_,
            "bias": self.bias_,
        }

    def _load_state(self, directory: Path, config: CheckpointConfig) -> None:
        models = config.metadata.get("models")
        if not isinstance(models, list) or len(models) < 2 or not all(isinstance(m, str) for m in models):
            raise CheckpointError(f"{directory}: mf config lacks its model list (metadata.models)")
        t = load_tensors(
            directory,
            {
                "model_vectors": (len(models), self.dim),
                "projection": (self.dim, None),
                "head": (self.dim,),
                "bias": (len(models),),
            },
        )
        self.model_vectors_ = t["model_vectors"].astype(np.float32)
        self.projection_ = t["projection"].astype(np.float32)
        self.head_ = t["head"].astype(np.float32)
        self.bias_ = t["bias"].astype(np.float32)
        self.models_ = models
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
                self._fold()
        except TrainingDataError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
        if not (np.isfinite(self._u).all() and np.isfinite(self._c)):
            raise CheckpointError(f"{directory}: mf weights overflow float32 when combined (crafted or corrupt)")
