"""Matrix-factorization router (RouteLLM's ``mf``): one vector per model, a projection of the query embedding."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from routellm_core._optional import requires_extra
from routellm_core.checkpoint import CheckpointConfig, load_tensors
from routellm_core.data.records import Battle
from routellm_core.errors import CheckpointError, EmbeddingError, InvalidInputError, TrainingDataError
from routellm_core.routers import warm_start as warm
from routellm_core.routers._battles import battle_arrays
from routellm_core.routers.base import WinRateModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _State:
    """Learned mf weights over a model list."""

    models: list[str]
    model_vectors: np.ndarray
    projection: np.ndarray
    head: np.ndarray
    bias: np.ndarray


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
        warm_prior: Warm start only (``fit(..., init=router)``): L2 precision of the correction vector added to
            the init's scoring direction; larger stays closer to the init.
        warm_scale_prior: Warm start only: L2 precision of the init logit's scale around 1.
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
        "warm_prior",
        "warm_scale_prior",
        "seed",
    )
    param_types: ClassVar[dict[str, Any]] = {
        "dim": Annotated[int, Field(ge=1)],
        "epochs": Annotated[int, Field(ge=1)],
        "lr": Annotated[float, Field(gt=0)],
        "weight_decay": Annotated[float, Field(ge=0)],
        "noise": Annotated[float, Field(ge=0)],
        "batch_size": Annotated[int, Field(ge=1)],
        "validation_fraction": Annotated[float, Field(ge=0, lt=1)],
        "patience": Annotated[int, Field(ge=1)],
        "warm_prior": Annotated[float, Field(gt=0)],
        "warm_scale_prior": Annotated[float, Field(gt=0)],
    }

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
        warm_prior: float = 1.0,
        warm_scale_prior: float = 10.0,
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
        self.warm_prior = warm_prior
        self.warm_scale_prior = warm_scale_prior
        self.seed = seed
        self.show_progress = show_progress

    # ---- training --------------------------------------------------------------------------------------
    def fit(
        self,
        battles: Sequence[Battle],
        *,
        embeddings: np.ndarray | None = None,
        init: MatrixFactorizationRouter | None = None,
    ) -> MatrixFactorizationRouter:
        """Train on battles, from random weights or warm-started from another fitted ``mf`` router.

        Warm start (``init``): the init's weights are kept and only the scoring pair's logit is refitted,
        ``z = a * z_init + e · δ + δ_c``, by L2-penalised logistic regression (Newton's method) on the battles
        between this router's strong and weak models, with ``a`` pulled towards 1 (``warm_scale_prior``) and
        ``δ`` towards 0 (``warm_prior``). The penalty is fixed while the likelihood grows with the labels, so a
        few labels move the init a little and many labels as far as they show. From 50 labelled prompts on, a
        5-fold cross-validation on the labels picks the prior's strength (``warm_prior`` x 10, x 1 or x 0.1) or
        no update at all, by the APGR of the out-of-fold scores (ties count as half a win): labels that do not
        improve the ranking of held-out labelled prompts leave the init as it is. The fit is written back into
        the factors as a rank-one update of the projection (plus the two reference biases), so the result is an
        ordinary ``mf`` checkpoint. Models the init never saw start from its reference vectors (this router's
        strong model from the init's strong one, the weak from the weak, others from the mean), so a router
        for your own pair (say ``gpt-4o`` vs ``gpt-4o-mini``) starts out scoring exactly as the init does, and
        with no decided battle the result scores exactly like the init.

        Args:
            battles: Training battles; ties are dropped. Without ``init`` they must include the reference
                strong and weak models; with it, only the battles between them are used (others are counted in
                ``metadata["warm_start_ignored_battles"]``).
            embeddings: Optional precomputed embeddings of the unique prompts in first-seen order (as
                ``battle_arrays`` orders them), to skip embedding.
            init: A fitted ``mf`` router in the same embedding space to start from.

        Raises:
            InvalidInputError: A hyperparameter out of range.
            CheckpointError: ``init`` is not a fitted ``mf`` router in this router's embedding space.
            TrainingDataError: No usable battles (all ties; the reference models absent without ``init``).
        """
        self._check_params()
        if init is not None:
            return self._fit_warm(battles, embeddings, init)
        arr = battle_arrays(battles, required_models=(self.strong_model, self.weak_model))
        keep = arr.a_score != 0.5
        if not keep.any():
            raise TrainingDataError("every training battle is a tie; mf learns only from wins and losses")
        emb = self._embeddings(arr.prompts, embeddings)
        state, validation_loss = self._train(
            emb,
            arr.prompt_idx[keep],
            arr.a_idx[keep],
            arr.b_idx[keep],
            arr.a_score[keep],
            n_prompts=len(arr.prompts),
            models=list(arr.models),
        )
        self._set_state(state)
        self.metadata.update(
            n_battles=int(keep.sum()),
            n_prompts=len(arr.prompts),
            models=list(arr.models),
            validation_loss=validation_loss,
        )
        return self

    def _embeddings(self, prompts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        emb = self.embed(prompts) if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(prompts):
            raise TrainingDataError(f"got embeddings of shape {emb.shape} for {len(prompts)} unique prompts")
        return emb

    def _check_params(self) -> None:
        """Refuse hyperparameters outside their ranges (``param_types``) before any training."""
        for key, annotation in self.param_types.items():
            value = getattr(self, key)
            try:
                TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False)).validate_python(value)
            except ValidationError as exc:
                problems = "; ".join(e["msg"] for e in exc.errors())
                raise InvalidInputError(f"mf parameter {key!r} = {value!r:.80} is invalid: {problems}") from None

    # ---- warm start ------------------------------------------------------------------------------------
    def _fit_warm(
        self, battles: Sequence[Battle], embeddings: np.ndarray | None, init: MatrixFactorizationRouter
    ) -> MatrixFactorizationRouter:
        self._set_state(self._warm_state(init, battles))
        pair = {self.strong_model, self.weak_model}
        mine = [b for b in battles if {b.model_a, b.model_b} == pair]
        ignored = len(battles) - len(mine)
        if ignored:
            logger.warning("warm start uses only %s vs %s battles; %d others ignored", *sorted(pair), ignored)
        decided = [b for b in mine if b.winner != "tie"]
        fitted: dict[str, Any] = {"scale": 1.0, "n_battles": len(decided), "prior_multiplier": 1.0}
        if decided:
            arr = battle_arrays(battles)
            emb = self._embeddings(arr.prompts, embeddings).astype(np.float64)
            if emb.shape[1] != self.projection_.shape[1]:
                raise EmbeddingError(
                    f"the init mf was trained on {self.projection_.shape[1]}-d embeddings, got {emb.shape[1]}-d"
                )
            index = {p: i for i, p in enumerate(arr.prompts)}
            share = np.array([0.5 if b.winner == "tie" else float(self._strong_won(b)) for b in mine])
            rows = np.array([index[b.prompt] for b in mine])
            z0 = emb @ self._u.astype(np.float64) + self._c
            prior = warm.Prior(scale=self.warm_scale_prior, delta=self.warm_prior)
            theta, info = warm.fit(z0, emb, rows, share, prior, self.seed)
            fitted.update(info)
            if theta is not None:
                fitted["scale"] = float(theta[0])
                self._apply_pair(theta)
        self.metadata.update(
            n_battles=len(decided),
            n_prompts=len({b.prompt for b in decided}),
            models=list(self.models_),
            validation_loss=None,
            warm_start_fit=fitted,
        )
        if ignored:
            self.metadata["warm_start_ignored_battles"] = ignored
        return self

    def _strong_won(self, battle: Battle) -> bool:
        return (battle.winner == "model_a") == (battle.model_a == self.strong_model)

    def _apply_pair(self, theta: np.ndarray) -> None:
        """Write ``z = a z0 + e·δ + δc`` into the factors: a rank-one update of W and the pair's two biases."""
        scale, delta, delta_c = float(theta[0]), theta[1:-1], float(theta[-1])
        u0, c0 = self._u.astype(np.float64), self._c
        # u_new = a u0 + δ as W' = W + g rᵀ / |g|² with g = head ⊙ (v_s - v_w), so that W'ᵀ g = u_new
        s, w = self._model_index(self.strong_model), self._model_index(self.weak_model)
        g = self.head_.astype(np.float64) * (self.model_vectors_[s] - self.model_vectors_[w])
        norm = float(g @ g)
        if norm < 1e-12:
            raise TrainingDataError(f"{self.strong_model!r} and {self.weak_model!r} share one vector in the init")
        r = (scale - 1.0) * u0 + delta
        self.projection_ = (self.projection_ + np.outer(g, r) / norm).astype(np.float32)
        shift = (scale - 1.0) * c0 + delta_c
        self.bias_ = self.bias_.copy()
        self.bias_[s] += np.float32(shift / 2)
        self.bias_[w] -= np.float32(shift / 2)
        self._fold()

    def _warm_state(self, init: MatrixFactorizationRouter, battles: Sequence[Battle]) -> _State:
        """The init's weights over the model list this fit needs (the init's models, then any new ones)."""
        warm.check_init(self, init)
        if init.projection_.shape[0] != self.dim:
            raise CheckpointError(f"the init router has dim {init.projection_.shape[0]}, this router dim {self.dim}")
        wanted = {b.model_a for b in battles} | {b.model_b for b in battles} | {self.strong_model, self.weak_model}
        new = sorted(wanted - set(init.models_))
        source = {
            self.strong_model: init._model_index(init.strong_model),
            self.weak_model: init._model_index(init.weak_model),
        }
        mean_vec = init.model_vectors_.mean(axis=0)
        mean_vec = mean_vec / max(float(np.linalg.norm(mean_vec)), 1e-12)
        vecs = [init.model_vectors_[source[m]] if m in source else mean_vec for m in new]
        biases = [init.bias_[source[m]] if m in source else float(init.bias_.mean()) for m in new]
        return _State(
            models=[*init.models_, *new],
            model_vectors=np.vstack([init.model_vectors_, *vecs]).astype(np.float32),
            projection=init.projection_.copy(),
            head=init.head_.copy(),
            bias=np.concatenate([init.bias_, np.asarray(biases, dtype=np.float32)]).astype(np.float32),
        )

    # ---- training from scratch -------------------------------------------------------------------------
    def _train(
        self,
        emb: np.ndarray,
        p_idx: np.ndarray,
        a_idx: np.ndarray,
        b_idx: np.ndarray,
        y: np.ndarray,
        *,
        n_prompts: int,
        models: list[str],
    ) -> tuple[_State, float | None]:
        """Pairwise logistic loss, Adam, embedding noise, early stopping on held-out prompts."""
        from tqdm.auto import tqdm

        with requires_extra("neural", "training the mf router"):
            import torch

        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        val_mask = np.zeros(len(y), dtype=bool)
        if self.validation_fraction > 0:
            held = rng.random(n_prompts) < self.validation_fraction
            val_mask = held[p_idx]
            if val_mask.all() or not val_mask.any():
                val_mask[:] = False

        model_vecs = torch.nn.Parameter(torch.randn(len(models), self.dim) * 0.1)
        proj = torch.nn.Linear(emb.shape[1], self.dim, bias=False)
        head = torch.nn.Parameter(torch.randn(self.dim) * 0.1)
        bias = torch.nn.Parameter(torch.zeros(len(models)), requires_grad=self.use_bias)
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
            for first in range(0, len(train_rows), self.batch_size):
                rows = torch.from_numpy(train_rows[first : first + self.batch_size])
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
            state = _State(
                models=models,
                model_vectors=torch.nn.functional.normalize(model_vecs, dim=1).numpy().astype(np.float32),
                projection=proj.weight.detach().numpy().astype(np.float32),  # (dim, text_dim)
                head=head.detach().numpy().astype(np.float32),
                bias=bias.detach().numpy().astype(np.float32),
            )
        return state, None if best == float("inf") else round(best, 5)

    def _set_state(self, state: _State) -> None:
        self.model_vectors_ = state.model_vectors
        self.projection_ = state.projection
        self.head_ = state.head
        self.bias_ = state.bias
        self.models_ = list(state.models)
        self._fold()

    def _fold(self) -> None:
        """Precompute the scoring vector for the reference pair."""
        s, w = self._model_index(self.strong_model), self._model_index(self.weak_model)
        delta = self.head_ * (self.model_vectors_[s] - self.model_vectors_[w])
        self._u = (self.projection_.T @ delta).astype(np.float32)
        self._c = float(self.bias_[s] - self.bias_[w])

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
