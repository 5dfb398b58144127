"""Warm start shared by the routers that support it: refit the scoring pair's logit on the user's labels.

A fitted router scores a prompt with a logit ``z0`` (``P(strong wins) = sigmoid(z0)``). Warm-starting on labelled
battles between the router's pair refits ``z = a * z0 + x · δ + c`` by L2-penalised logistic regression (Newton's
method), with ``a`` pulled towards 1 and ``δ``, ``c`` towards 0, where ``x`` is the router's own prompt
representation (mf: the embedding; difficulty: its standardised features). The penalty is fixed while the
likelihood grows with the labels, so a few labels move the init a little and many as far as they show. From
:data:`CV_MIN_PROMPTS` labelled prompts on, a :data:`CV_FOLDS`-fold cross-validation picks the prior's strength
(``x CV_MULTIPLIERS``) or no update at all, by the APGR of the out-of-fold scores: labels that do not improve the
ranking of held-out labelled prompts leave the init as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from routellm_core.errors import CheckpointError
from routellm_core.routers.base import WinRateModel

#: Newton iterations of a fit (it converges in 5-10).
ITERATIONS = 50
#: L2 precision of the intercept correction ``c`` (keeps it finite when every label goes one way).
BIAS_PRIOR = 1.0
#: Cross-validated choice of the prior: from this many labelled prompts on, over these folds, among these
#: multiples of the prior's ``delta`` precision and "no update".
CV_MIN_PROMPTS = 50
CV_FOLDS = 5
CV_MULTIPLIERS = (10.0, 1.0, 0.1)


@dataclass(frozen=True)
class Prior:
    """L2 precisions of the correction: ``scale`` for ``a`` around 1, ``delta`` for ``δ`` and ``bias`` for ``c``
    around 0."""

    scale: float
    delta: float
    bias: float = BIAS_PRIOR


def check_init(model: WinRateModel, init: object) -> None:
    """Refuse an init of another router type, an unfitted one, or one in another embedding space.

    Args:
        model: The router about to be warm-started.
        init: What it was given to start from.

    Raises:
        CheckpointError: Naming the problem.
    """
    if not isinstance(init, type(model)):
        raise CheckpointError(
            f"{model.name} can only warm-start from another {model.name} router, got "
            f"{getattr(init, 'name', type(init).__name__)!r}"
        )
    if not init._is_fitted():
        raise CheckpointError("the init router is not fitted: load a checkpoint or fit it first")
    mine, theirs = model.get_embedder().name, init.get_embedder().name
    if mine != theirs:
        raise CheckpointError(
            f"embedder mismatch: the init router was trained in {theirs!r} space, this router embeds with "
            f"{mine!r}; warm-start with the init's embedder"
        )


def solve(z0: np.ndarray, x: np.ndarray, strong_won: np.ndarray, prior: Prior, multiplier: float = 1.0) -> np.ndarray:
    """``θ = (a, δ..., c)`` of ``z = a z0 + x·δ + c``: penalised logistic regression, one row per label.

    Args:
        z0: The init's logit per label.
        x: The prompt representation per label.
        strong_won: 1 where the strong model won, 0 where it lost (ties are left out by the caller).
        prior: The penalty.
        multiplier: Scales the penalty on ``δ``.

    Returns:
        ``θ``: ``a``, then ``δ`` (one weight per column of ``x``), then ``c``.
    """
    design = np.hstack([z0[:, None], x, np.ones((len(x), 1))])
    prior_mean = np.zeros(design.shape[1])
    prior_mean[0] = 1.0
    precision = np.concatenate([[prior.scale], np.full(x.shape[1], prior.delta * multiplier), [prior.bias]])
    theta = prior_mean.copy()
    for _ in range(ITERATIONS):
        p = 0.5 * (1.0 + np.tanh(0.5 * (design @ theta)))  # the logistic function, without overflow
        grad = design.T @ (p - strong_won) + precision * (theta - prior_mean)
        hess = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(precision)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta


def apply(theta: np.ndarray, z0: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The corrected logit ``a z0 + x·δ + c``."""
    return theta[0] * z0 + x @ theta[1:-1] + theta[-1]


def fit(
    z0: np.ndarray, x: np.ndarray, rows: np.ndarray, share: np.ndarray, prior: Prior, seed: int
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The correction for labelled battles, or ``None`` where cross-validation keeps the init.

    Args:
        z0: The init's logit per unique prompt.
        x: The prompt representation per unique prompt.
        rows: Per battle, its prompt's index into ``z0`` / ``x``.
        share: Per battle, 1 if the strong model won, 0 if it lost, 0.5 for a tie.
        prior: The penalty (its ``delta`` is scaled by the chosen multiplier).
        seed: Seed of the folds.

    Returns:
        ``θ`` (see :func:`solve`) or ``None``, and what was chosen: ``prior_multiplier`` (``None``: no update)
        and ``cv_apgr`` (out-of-fold APGR per candidate; ``None`` below :data:`CV_MIN_PROMPTS` prompts).
    """
    multiplier, cv = _select(z0, x, rows, share, prior, seed)
    info: dict[str, Any] = {"prior_multiplier": multiplier, "cv_apgr": cv}
    decided = share != 0.5
    if multiplier is None or not decided.any():
        return None, info
    return solve(z0[rows[decided]], x[rows[decided]], share[decided], prior, multiplier), info


def _select(
    z0: np.ndarray, x: np.ndarray, rows: np.ndarray, share: np.ndarray, prior: Prior, seed: int
) -> tuple[float | None, dict[str, float] | None]:
    """Pick the prior's multiplier by cross-validation on the labels, the init itself (``None``) among them.

    With at least :data:`CV_MIN_PROMPTS` labelled prompts, each candidate multiplier and "no update" is scored by
    the APGR of its out-of-fold scores on the labelled prompts, with the strong model's win share (ties 1/2) as
    their quality; the best wins, the init on a tie. Fewer labels keep the prior as it is (multiplier 1).
    """
    from routellm_core.data import Benchmark
    from routellm_core.evaluation.metrics import apgr

    prompt_rows, inverse = np.unique(rows, return_inverse=True)
    if len(prompt_rows) < CV_MIN_PROMPTS:
        return 1.0, None
    strong = np.bincount(inverse, weights=share) / np.bincount(inverse)
    if strong.mean() <= 0.5:  # no gap to recover on these labels: nothing to select on
        return 1.0, None
    labels = Benchmark("labels", tuple(map(str, prompt_rows)), strong, 1.0 - strong)
    fold_of = np.random.default_rng(seed).permutation(len(prompt_rows)) % CV_FOLDS
    base = z0[prompt_rows]
    candidates: dict[float | None, np.ndarray] = {None: base}
    for multiplier in CV_MULTIPLIERS:
        oof = base.copy()
        for f in range(CV_FOLDS):
            train = (fold_of[inverse] != f) & (share != 0.5)
            if not train.any():
                continue
            theta = solve(z0[rows[train]], x[rows[train]], share[train], prior, multiplier)
            test = fold_of == f
            oof[test] = apply(theta, base[test], x[prompt_rows[test]])
        candidates[multiplier] = oof
    cv = {m: apgr(oof, labels) for m, oof in candidates.items()}
    best = max(cv, key=lambda m: cv[m])
    return best, {("init" if m is None else f"{m:g}"): round(v, 5) for m, v in cv.items()}
