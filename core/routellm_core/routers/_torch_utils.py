"""Shared machinery of the torch routers (``bert``, ``causal_llm``).

Both routers reduce to the same problem: a network maps a routing text to three class logits over
{strong wins, tie, weak wins}, and the score is the softmax probability of "strong wins". This module holds
everything that does not depend on which network: turning battles into labelled examples, the seeded
training loop (class balancing, validation split, early stopping, progress bars), batched thread-safe
inference, and persistence (safetensors weights whose header records a fingerprint of the base model).

torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from routellm_core._optional import requires_extra
from routellm_core.checkpoint import WEIGHTS_FILE, CheckpointConfig, load_tensors, save_tensors
from routellm_core.data.records import Battle, GoldenLabel, check_trainable, golden_to_battles
from routellm_core.errors import CheckpointError, InvalidInputError, NotFittedError, TrainingDataError
from routellm_core.routers.base import WinRateModel

if TYPE_CHECKING:
    import torch

#: Class indices: the score is the probability of class ``STRONG_WINS``.
STRONG_WINS, TIE, WEAK_WINS = 0, 1, 2
NUM_CLASSES = 3
CLASS_NAMES = ("strong_wins", "tie", "weak_wins")
#: Characters kept per allowed token before tokenising: far above any real token length, so it never changes
#: the result, but a megabyte prompt no longer stalls the tokenizer.
CHARS_PER_TOKEN_CAP = 16
#: Config fields compared between the base model a checkpoint was trained on and the one found at load.
FINGERPRINT_FIELDS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers")
#: Key of the base-model fingerprint in the safetensors header.
FINGERPRINT_KEY = "routellm.base_fingerprint"
WEIGHT_DTYPES = ("float32", "float16")
#: Bounds of the shared training parameters, checked when a checkpoint's config is read.
PARAM_TYPES: dict[str, Any] = {
    "max_length": Annotated[int, Field(ge=1)],
    "epochs": Annotated[int, Field(ge=0)],
    "batch_size": Annotated[int, Field(ge=1)],
    "eval_batch_size": Annotated[int, Field(ge=1)],
    "lr": Annotated[float, Field(gt=0)],
    "weight_decay": Annotated[float, Field(ge=0)],
    "warmup_ratio": Annotated[float, Field(ge=0, le=1)],
    "validation_fraction": Annotated[float, Field(ge=0, lt=1)],
    "patience": Annotated[int, Field(ge=0)],
    "max_steps": Annotated[int, Field(ge=0)] | None,
    "seed": int,
    "weights_dtype": Literal["float32", "float16"],
}


# ---- data ----------------------------------------------------------------------------------------------
def pair_examples(
    records: Sequence[Battle | GoldenLabel], strong_model: str, weak_model: str
) -> tuple[list[str], np.ndarray]:
    """Labelled examples from the battles between ``strong_model`` and ``weak_model``.

    Battles between any other pair of models are ignored: the classes are about the reference pair. Golden
    labels are turned into battles first (higher score wins, equal scores tie). Either model may be
    ``model_a``.

    Returns:
        The prompts and an int64 array of class indices (``STRONG_WINS``, ``TIE``, ``WEAK_WINS``).

    Raises:
        TrainingDataError: No records, or none compares the two reference models.
    """
    records = list(records)
    labels_in = [r for r in records if isinstance(r, GoldenLabel)]
    battles = [r for r in records if isinstance(r, Battle)]
    if len(labels_in) + len(battles) != len(records):
        bad = next(r for r in records if not isinstance(r, (Battle, GoldenLabel)))
        raise TrainingDataError(f"expected Battle or GoldenLabel records, got {type(bad).__name__}")
    battles += golden_to_battles(labels_in, models=[strong_model, weak_model])
    check_trainable(battles)
    texts: list[str] = []
    classes: list[int] = []
    pair = {strong_model, weak_model}
    for b in battles:
        if {b.model_a, b.model_b} != pair:
            continue
        if b.winner == "tie":
            cls = TIE
        else:
            winner = b.model_a if b.winner == "model_a" else b.model_b
            cls = STRONG_WINS if winner == strong_model else WEAK_WINS
        texts.append(b.prompt)
        classes.append(cls)
    if not texts:
        raise TrainingDataError(
            f"none of the {len(battles)} battles compares {strong_model!r} with {weak_model!r}; "
            "this router learns from battles between its strong_model and weak_model only"
        )
    return texts, np.asarray(classes, dtype=np.int64)


def split_indices(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation split of example indices.

    Each class gives ``round(fraction * count)`` examples to validation (none when that would leave a class
    with no training example). No validation set when ``fraction`` is 0 or there are fewer than 4 examples.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    n = len(labels)
    if fraction == 0.0 or n < 4:
        return rng.permutation(n), np.empty(0, dtype=np.int64)
    val: list[np.ndarray] = []
    for cls in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        k = round(fraction * len(idx))
        val.append(idx[: min(k, len(idx) - 1)] if len(idx) > 1 else idx[:0])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    train_idx = rng.permutation(np.setdiff1d(np.arange(n), val_idx)).astype(np.int64)
    return train_idx, val_idx


def balanced_class_weights(labels: np.ndarray) -> np.ndarray:
    """``n / (classes present * count)`` per class (scikit-learn's "balanced"); 0 for absent classes."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    present = int((counts > 0).sum())
    weights = np.zeros(NUM_CLASSES)
    weights[counts > 0] = len(labels) / (present * counts[counts > 0])
    return weights


def clip_chars(texts: Sequence[str], max_tokens: int) -> list[str]:
    """Cut each text to ``max_tokens * CHARS_PER_TOKEN_CAP`` characters (keeps the start)."""
    cap = max(1, max_tokens) * CHARS_PER_TOKEN_CAP
    return [t[:cap] for t in texts]


def length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Index batches in order of length, so each batch pads little."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


# ---- torch helpers -------------------------------------------------------------------------------------
def resolve_device(device: str | None) -> str:
    """``device`` as given, else ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    if device:
        return device
    with requires_extra("neural", "the bert and causal_llm routers"):
        import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def seeded(seed: int, device: str) -> Iterator[None]:
    """Seed torch's generators inside the block and restore their previous state afterwards."""
    with requires_extra("neural", "the bert and causal_llm routers"):
        import torch

    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, *, left: bool, device: str) -> dict[str, torch.Tensor]:
    """Pad token id lists into ``input_ids`` / ``attention_mask`` (and ``position_ids`` when left-padded)."""
    with requires_extra("neural", "the bert and causal_llm routers"):
        import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if left:
        # Positions count real tokens only, so a text scores the same whatever it is batched with.
        batch["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    return {k: v.to(device) for k, v in batch.items()}


def round_to_dtype(params: Sequence[torch.nn.Parameter], dtype: str) -> None:
    """Round parameter values to ``dtype`` in place, so the in-memory model equals its saved form."""
    with requires_extra("neural", "the bert and causal_llm routers"):
        import torch

    if dtype == "float32":
        return
    target = getattr(torch, dtype)
    with torch.no_grad():
        for p in params:
            p.copy_(p.to(target).to(p.dtype))


def config_fingerprint(config: Any) -> dict[str, Any]:
    """The fields of a transformers config that identify an architecture (see ``FINGERPRINT_FIELDS``)."""
    out: dict[str, Any] = {}
    for key in FINGERPRINT_FIELDS:
        value = getattr(config, key, None)
        if value is None and hasattr(config, "get_text_config"):
            value = getattr(config.get_text_config(), key, None)
        out[key] = value
    return out


def check_fingerprint(found: dict[str, Any], saved: dict[str, Any], base: Path, what: str = "config") -> None:
    """Raise :class:`CheckpointError` when the base model's fingerprint differs from the saved one."""
    diff = {k: (saved[k], found.get(k)) for k in saved if k in found and found[k] != saved[k]}
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs base {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(
            f"base model {base} does not match the one this checkpoint was trained on ({what}: {detail})"
        )


# ---- training ------------------------------------------------------------------------------------------
def weighted_ce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy over the class logits, weighted per class (mean over the batch's weight)."""
    with requires_extra("neural", "the bert and causal_llm routers"):
        import torch.nn.functional as F

    return F.cross_entropy(logits.float(), labels, weight=weights)


def train_classifier(
    *,
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    logits_fn: Callable[[list[int]], torch.Tensor],
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    class_weights: np.ndarray | None,
    rng: np.random.Generator,
    device: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    warmup_ratio: float,
    patience: int,
    max_steps: int | None,
    gradient_accumulation_steps: int = 1,
    eval_batch_size: int = 32,
    progress: bool = True,
    desc: str = "training",
) -> dict[str, Any]:
    """Train ``params`` so ``logits_fn(indices)`` predicts ``labels``; keep the best validation state.

    AdamW (no decay on vectors) with linear warm-up and decay, gradients clipped to norm 1, class-weighted
    cross-entropy. The validation loss is measured at the end of each epoch; training stops once it has not
    improved for ``patience`` epochs (at least one), restoring the best weights. Without a validation set
    the last weights are kept.

    Returns:
        A JSON-ready summary (steps, epochs, losses, best epoch).
    """
    with requires_extra("neural", "the bert and causal_llm routers"):
        import torch
    from tqdm.auto import tqdm

    y_all = torch.as_tensor(labels, dtype=torch.long, device=device)
    w = torch.as_tensor(class_weights, dtype=torch.float32, device=device) if class_weights is not None else None
    micro_per_epoch = math.ceil(len(train_idx) / batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / gradient_accumulation_steps)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    summary: dict[str, Any] = {
        "train_examples": len(train_idx),
        "validation_examples": len(val_idx),
        "planned_steps": total,
        "steps": 0,
        "epochs": 0,
        "train_loss": [],
        "validation_loss": [],
        "best_epoch": None,
    }
    if total <= 0 or not params:
        return summary
    # No weight decay on biases and norm scales (vectors), as in BERT fine-tuning.
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    try:  # the fused kernel is several times faster, on CPU too
        optimizer = torch.optim.AdamW(groups, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=learning_rate)
    warmup = round(warmup_ratio * total)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def validate() -> float:
        model.eval()
        total_loss, total_weight = 0.0, 0.0
        with torch.inference_mode():
            for start in range(0, len(val_idx), eval_batch_size):
                idx = [int(i) for i in val_idx[start : start + eval_batch_size]]
                y = y_all[idx]
                loss = torch.nn.functional.cross_entropy(logits_fn(idx).float(), y, weight=w, reduction="sum")
                total_loss += float(loss)
                total_weight += float(w[y].sum()) if w is not None else len(idx)
        model.train()
        return total_loss / max(total_weight, 1e-12)

    best_loss, best_state, stale, step = math.inf, None, 0, 0
    model.train()
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    try:
        for epoch in range(epochs):
            order = rng.permutation(train_idx)
            epoch_loss, micro = 0.0, 0
            optimizer.zero_grad(set_to_none=True)
            for m, start in enumerate(range(0, len(order), batch_size)):
                idx = [int(i) for i in order[start : start + batch_size]]
                loss = weighted_ce(logits_fn(idx), y_all[idx], w)
                (loss / gradient_accumulation_steps).backward()
                epoch_loss += float(loss.detach())
                micro += 1
                if (m + 1) % gradient_accumulation_steps == 0 or m + 1 == micro_per_epoch:
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
                    if step >= total:
                        break
            summary["epochs"] = epoch + 1
            summary["train_loss"].append(epoch_loss / max(micro, 1))
            if len(val_idx):
                val_loss = validate()
                summary["validation_loss"].append(val_loss)
                if val_loss < best_loss - 1e-6:
                    best_loss, stale, summary["best_epoch"] = val_loss, 0, epoch + 1
                    best_state = [p.detach().to("cpu", copy=True) for p in params]
                else:
                    stale += 1
                    if stale >= patience:
                        break
            if step >= total:
                break
    finally:
        bar.close()
        model.eval()
    summary["steps"] = step
    if best_state is not None:
        with torch.no_grad():
            for p, saved in zip(params, best_state):
                p.copy_(saved.to(p.device))
    return summary


# ---- the shared router base ----------------------------------------------------------------------------
class TorchRouter(WinRateModel):
    """Base of the routers whose scorer is a torch network over {strong wins, tie, weak wins}.

    Subclasses provide the network (:meth:`_build_model`), tokenisation (:meth:`_encode`, :meth:`_collate`)
    and the three class logits (:meth:`_class_logits`). This class does the rest: ``fit`` on battles,
    batched thread-safe ``predict``, and ``save``/``load`` as ``config.json`` + ``model.safetensors`` holding
    the trained parameters (the whole network, or only LoRA adapters) with a base-model fingerprint in the
    safetensors header. The network is built lazily (under a lock) on the first prediction after ``load``.
    """

    uses_embedder = False
    text_reader = "reads the prompts with its own encoder (its base model), not an embedder"
    param_types: ClassVar[dict[str, Any]] = PARAM_TYPES

    # Set by subclasses' __init__ (declared here for type checkers).
    base_model: str | None
    max_length: int
    epochs: int
    batch_size: int
    eval_batch_size: int
    lr: float
    weight_decay: float
    warmup_ratio: float
    validation_fraction: float
    patience: int
    class_weighting: bool
    max_steps: int | None
    seed: int
    weights_dtype: str
    device: str | None
    show_progress: bool

    def _init_state(self) -> None:
        """Create the (empty) learned and runtime state; call at the end of ``__init__``."""
        if self.weights_dtype not in WEIGHT_DTYPES:
            raise InvalidInputError(f"weights_dtype must be one of {WEIGHT_DTYPES}, got {self.weights_dtype!r}")
        if not isinstance(self.max_length, numbers.Integral) or self.max_length < 1:
            raise InvalidInputError(f"max_length must be a positive integer, got {self.max_length!r}")
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._model_: Any = None
        self._tokenizer_: Any = None
        self._device_: str | None = None
        self._pending_: dict[str, np.ndarray] | None = None
        self.base_fingerprint_: dict[str, Any] | None = None

    # ---- subclass hooks ------------------------------------------------------------------------------
    @abstractmethod
    def _resolve_base(self) -> Path:
        """Local folder of the base model; raises :class:`CheckpointError` when it is missing."""

    @abstractmethod
    def _load_tokenizer(self, base: Path) -> Any:
        """The tokenizer of the base model."""

    @abstractmethod
    def _build_model(self, base: Path, mode: str) -> torch.nn.Module:
        """The network: ``mode`` is ``"train"`` (pretrained base), ``"load"`` (ready for saved weights) or
        ``"meta"`` (on the meta device, for parameter shapes only)."""

    @abstractmethod
    def _trainable(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        """The parameters that training changes and checkpoints store, by name."""

    @abstractmethod
    def _encode(self, tokenizer: Any, texts: list[str]) -> list[list[int]]:
        """Token ids of each (already character-clipped) text, truncated deterministically."""

    @abstractmethod
    def _collate(self, tokenizer: Any, sequences: list[list[int]], device: str) -> dict[str, torch.Tensor]:
        """Padded model inputs for a batch of token id lists."""

    @abstractmethod
    def _class_logits(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(batch, 3)`` logits over (strong wins, tie, weak wins)."""

    def _weights_fingerprint(self, model: torch.nn.Module) -> dict[str, Any]:
        """Fingerprint of the frozen base weights (checked after lazy loading); none by default."""
        return {}

    def _check_weights(self, model: torch.nn.Module, saved: dict[str, Any], base: Path) -> None:
        """Compare the frozen base weights' fingerprint with the saved one."""

    def _load_config(self, base: Path) -> Any:
        """The transformers config of the base model, errors as :class:`CheckpointError`."""
        with requires_extra("neural", "the bert and causal_llm routers"):
            from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(str(base))
        except Exception as exc:
            raise CheckpointError(f"cannot read the base model config at {base}: {exc}") from exc

    # ---- training -----------------------------------------------------------------------------------
    def fit(self, battles: Sequence[Battle | GoldenLabel], *, seed: int | None = None) -> TorchRouter:
        """Fine-tune on the battles between ``strong_model`` and ``weak_model``; returns ``self``.

        Battles between other model pairs are ignored. Golden labels are accepted too (converted to battles
        between the two reference models). Deterministic on CPU for a given seed. Calibrated thresholds are
        dropped: they described the previous scores (calibrate again after fitting).

        Args:
            battles: Training records.
            seed: Overrides the ``seed`` parameter for this fit.

        Raises:
            InvalidInputError: A parameter of the wrong type or out of range (checked before anything loads, so
                nothing is trained or saved that could not be loaded back).
            TrainingDataError: No battle between the two reference models, or only ties between them.
            CheckpointError: The base model is missing or cannot be loaded.
        """
        self.check_params()
        texts, labels = pair_examples(battles, self.strong_model, self.weak_model)
        if not np.isin(labels, (STRONG_WINS, WEAK_WINS)).any():
            raise TrainingDataError(
                f"all {len(labels)} battles between {self.strong_model!r} and {self.weak_model!r} are ties: "
                f"{self.name} learns whom to route to from the battles one of them won"
            )
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng(seed)
        base = self._resolve_base()
        device = resolve_device(self.device)
        tokenizer = self._load_tokenizer(base)
        ids = self._encode(tokenizer, clip_chars(texts, self.max_length))
        train_idx, val_idx = split_indices(labels, self.validation_fraction, rng)
        weights = balanced_class_weights(labels[train_idx]) if self.class_weighting else None
        with seeded(seed, device):
            model = self._build_model(base, "train").to(device)
            trainable = self._trainable(model)
            fingerprint = {**config_fingerprint(self._load_config(base)), **self._weights_fingerprint(model)}

            def logits_fn(idx: list[int]) -> torch.Tensor:
                return self._class_logits(model, self._collate(tokenizer, [ids[i] for i in idx], device))

            summary = train_classifier(
                model=model,
                params=list(trainable.values()),
                logits_fn=logits_fn,
                labels=labels,
                train_idx=train_idx,
                val_idx=val_idx,
                class_weights=weights,
                rng=rng,
                device=device,
                epochs=self.epochs,
                batch_size=self.batch_size,
                learning_rate=self.lr,
                weight_decay=self.weight_decay,
                warmup_ratio=self.warmup_ratio,
                patience=self.patience,
                max_steps=self.max_steps,
                gradient_accumulation_steps=getattr(self, "gradient_accumulation_steps", 1),
                eval_batch_size=self.eval_batch_size,
                progress=self.show_progress,
                desc=f"fit {self.name}",
            )
        round_to_dtype(list(trainable.values()), self.weights_dtype)
        model.eval()
        with self._lock:
            self._model_, self._tokenizer_, self._device_ = model, tokenizer, device
            self._pending_ = None
            self.base_fingerprint_ = fingerprint
        self.calibrated_thresholds = {}  # a previous fit's (or checkpoint's) thresholds describe other scores
        counts = np.bincount(labels, minlength=NUM_CLASSES)
        summary["class_counts"] = {name: int(c) for name, c in zip(CLASS_NAMES, counts)}
        summary["seed"] = seed
        self.metadata["training"] = summary
        return self

    # ---- inference ----------------------------------------------------------------------------------
    def _is_fitted(self) -> bool:
        return self._model_ is not None or self._pending_ is not None

    def _ensure_model(self) -> tuple[Any, Any, str]:
        """The network, tokenizer and device; builds them from loaded weights on first use (thread-safe)."""
        with self._lock:
            if self._model_ is None:
                if self._pending_ is None:
                    raise NotFittedError(f"router {self.name!r} is not fitted: call fit(...) or load a checkpoint")
                self._materialize(self._pending_)
                self._pending_ = None
            return self._model_, self._tokenizer_, self._device_  # type: ignore[return-value]

    def _materialize(self, arrays: dict[str, np.ndarray]) -> None:
        with requires_extra("neural", "the bert and causal_llm routers"):
            import torch

        base = self._resolve_base()
        device = resolve_device(self.device)
        tokenizer = self._load_tokenizer(base)
        model = self._build_model(base, "load")
        trainable = self._trainable(model)
        if set(trainable) != set(arrays):
            raise CheckpointError(f"saved tensors do not fit the model built from {base}")
        with torch.no_grad():
            for name, param in trainable.items():
                value = torch.from_numpy(np.ascontiguousarray(arrays[name]))
                if tuple(value.shape) != tuple(param.shape):
                    raise CheckpointError(f"tensor {name!r}: shape {tuple(value.shape)} vs model {param.shape}")
                param.copy_(value.to(param.dtype))
        if self.base_fingerprint_:
            self._check_weights(model, self.base_fingerprint_, base)
        self._model_, self._tokenizer_, self._device_ = model.to(device).eval(), tokenizer, device

    def _predict(self, texts: list[str]) -> np.ndarray:
        with requires_extra("neural", "the bert and causal_llm routers"):
            import torch

        model, tokenizer, device = self._ensure_model()
        clipped = clip_chars(texts, self.max_length)
        with self._tokenizer_lock:
            ids = self._encode(tokenizer, clipped)
        out = np.empty(len(ids), dtype=np.float64)
        with torch.inference_mode():
            for idx in length_batches([len(s) for s in ids], self.eval_batch_size):
                with self._tokenizer_lock:
                    batch = self._collate(tokenizer, [ids[i] for i in idx], device)
                probs = torch.softmax(self._class_logits(model, batch).float(), dim=-1)
                out[idx] = probs[:, STRONG_WINS].double().cpu().numpy()
        return out

    # ---- persistence --------------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        """The trained parameters (the loaded arrays of a checkpoint not used yet), in ``weights_dtype``."""
        with self._lock:
            model, pending = self._model_, self._pending_
        if model is not None:
            return {
                name: np.ascontiguousarray(p.detach().float().cpu().numpy().astype(self.weights_dtype))
                for name, p in self._trainable(model).items()
            }
        if pending is not None:  # loaded but never used: the loaded arrays
            return dict(pending)
        raise NotFittedError(f"router {self.name!r} is not fitted; nothing to save")

    def _save_state(self, directory: Path) -> None:
        header = {FINGERPRINT_KEY: json.dumps(self.base_fingerprint_ or {}, sort_keys=True)}
        save_tensors(directory, self._state(), metadata=header)  # readable like config.json, not owner-only

    def _load_state(self, directory: Path, config: CheckpointConfig) -> None:
        base = self._resolve_base()
        saved = _read_fingerprint(directory / WEIGHTS_FILE)
        check_fingerprint(config_fingerprint(self._load_config(base)), saved, base)
        try:
            meta = self._build_model(base, "meta")
        except InvalidInputError as exc:  # saved parameters the base cannot take (e.g. lora_layers)
            raise CheckpointError(f"{directory}: {exc}") from exc
        expected = {name: tuple(p.shape) for name, p in self._trainable(meta).items()}
        itemsize = np.dtype(self.weights_dtype).itemsize
        limit = sum(math.prod(s) for s in expected.values()) * itemsize + 16 * 1024**2
        arrays = load_tensors(directory, expected, max_bytes=limit)
        for name, arr in arrays.items():
            if arr.dtype != np.dtype(self.weights_dtype):
                raise CheckpointError(f"tensor {name!r} is {arr.dtype}, expected {self.weights_dtype}")
        with self._lock:
            self._model_ = None
            self._pending_ = arrays
            self.base_fingerprint_ = saved


def _read_fingerprint(path: Path) -> dict[str, Any]:
    """The base-model fingerprint from a safetensors header."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.parent} has no {path.name}")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    raw = header.get(FINGERPRINT_KEY)
    if raw is None:
        raise CheckpointError(f"{path} records no base-model fingerprint ({FINGERPRINT_KEY!r})")
    try:
        fingerprint = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: base-model fingerprint is not JSON: {exc}") from exc
    if not isinstance(fingerprint, dict):
        raise CheckpointError(f"{path}: base-model fingerprint is not a JSON object")
    return fingerprint


def local_base(path: str | Path, what: str, *, files: tuple[str, ...] = ()) -> Path:
    """``path`` as a local model folder (or a file with one of the suffixes ``files``).

    Raises:
        CheckpointError: Naming the path, when it does not exist, is a folder without a ``config.json`` (not a
            Hugging Face model folder), or is a file of another kind.
    """
    folder = Path(path).expanduser()
    hint = (
        "give a local Hugging Face model folder (download it first), or leave base_model unset for the offline default"
    )
    if not folder.exists():
        raise CheckpointError(f"base model for the {what} router not found at {str(path)!r}: {hint}")
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise CheckpointError(
            f"base model for the {what} router at {str(path)!r} is a folder without a config.json, so not a "
            f"Hugging Face model folder: {hint}"
        )
    if not folder.is_dir() and folder.suffix not in files:
        kinds = f" or a {' / '.join(files)} file" if files else ""
        raise CheckpointError(
            f"base model for the {what} router at {str(path)!r} is a file; it takes a model folder{kinds}: {hint}"
        )
    return folder


def absolute_base(base_model: str | os.PathLike[str] | None) -> str | None:
    """``base_model`` as an absolute path (user folder expanded; its ``..`` kept, so errors name it as written), so a
    checkpoint loads from any working directory."""
    return None if base_model is None else str(Path(os.fspath(base_model)).expanduser().absolute())
