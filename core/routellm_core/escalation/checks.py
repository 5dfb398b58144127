"""Escalation checks: how confident to be in the cheap model's answer.

A check reads one batch of cheap answers (:class:`CheckInput`) and returns named float signals and a confidence in
[0, 1] per prompt; below the escalation threshold the call goes to the strong model.

- :class:`AgreementCheck`: a second cheap answer (another model, or the same one sampled again) compared with the
  first on the final answer (:mod:`routellm_core.escalation.answers`), or for free text by the cosine similarity of
  their embeddings with the shipped static embedder (``kind="embedding"``). Confidence: the share of the check
  answers that agree.
- :class:`AnswerFeaturesCheck`: the first answer alone: its output's length against the prompt's, no extractable
  answer, a refusal. Confidence: 0 without an answer or on a refusal, else falling with the length ratio.
- :class:`LogprobCheck`: the first answer's token log-probabilities (when the model returns them, e.g. OpenAI's
  ``logprobs``). Confidence: the geometric mean of the tokens' probabilities.
- :class:`SelfVerificationCheck`: the cheap model asked whether its own answer is right (AutoMix-style; one
  short call after the answer). Confidence: 1 for "yes", 0 for "no", 0.5 when the reply says neither.
- :class:`LogisticCombiner`: a logistic regression over other checks' signals and the prompt router's win rate,
  fitted on labelled batches (was the cheap answer right?); saved as JSON config + safetensors (no pickle).
  :func:`shipped_combiner` loads the one fitted on the shared answer data (``check="combined"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from routellm_core.checkpoint import load_tensors, save_tensors
from routellm_core.embedding.embedders import Embedder
from routellm_core.errors import CheckpointError, InvalidInputError, NotFittedError, TrainingDataError
from routellm_core.escalation.answers import ANSWER_KINDS, Extractor, answers_agree, is_refusal

#: The combiner's file format version (``config.json``'s ``"version"``).
COMBINER_VERSION = 1
_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class CheckInput:
    """One batch of cheap answers for a check, aligned by prompt.

    Attributes:
        first: The first cheap model's final answers (None: none extracted).
        others: The check answers: one sequence per check model (or per extra sample), each aligned with ``first``.
        prompts: The prompts (answer-feature checks need them).
        outputs: The first model's raw outputs (refusal detection; their length when ``output_chars`` is absent).
        output_chars: The length in characters of the first model's raw outputs.
        win_rates: The prompt router's P(strong beats weak) per prompt (the combiner reads it).
        logprobs: The first answer's token log-probabilities per prompt (None where the model returned none).
        verifications: The cheap model's reply to :data:`VERIFY_QUESTION` about its own answer, per prompt.
    """

    first: Sequence[Any]
    others: Sequence[Sequence[Any]] = ()
    prompts: Sequence[str] | None = None
    outputs: Sequence[str | None] | None = None
    output_chars: Sequence[float] | None = None
    win_rates: Sequence[float] | None = None
    logprobs: Sequence[Sequence[float] | None] | None = None
    verifications: Sequence[str | None] | None = None

    def __post_init__(self) -> None:
        n = len(self.first)
        for name in ("prompts", "outputs", "output_chars", "win_rates", "logprobs", "verifications"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise InvalidInputError(f"CheckInput.{name} has {len(value)} items for {n} answers")
        for i, other in enumerate(self.others):
            if len(other) != n:
                raise InvalidInputError(f"CheckInput.others[{i}] has {len(other)} answers for {n}")

    def __len__(self) -> int:
        return len(self.first)


@runtime_checkable
class Check(Protocol):
    """What every escalation check provides: named per-prompt signals and a confidence in [0, 1]."""

    name: str

    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        """Named float signals, one value per prompt."""
        ...

    def confidence(self, batch: CheckInput) -> np.ndarray:
        """Confidence in the first answer, in [0, 1] per prompt (escalate below the threshold)."""
        ...


@dataclass
class AgreementCheck:
    """Agreement of the check answers with the first answer.

    Attributes:
        kind: Answer kind (see :mod:`~routellm_core.escalation.answers`), or ``"embedding"``: cosine similarity of
            the two answers' embeddings (clipped to [0, 1]) for free text.
        extract: A user's extractor (raw answer -> comparable key, None = no answer); overrides ``kind``.
        fields: For ``kind="json"``: the fields compared (None: all).
        embedder: For ``kind="embedding"``: the embedder (None: the shipped static embedder).
    """

    kind: str = "auto"
    extract: Extractor | None = None
    fields: tuple[str, ...] | None = None
    embedder: Embedder | None = None
    name: str = "agreement"

    def __post_init__(self) -> None:
        if self.kind not in (*ANSWER_KINDS, "embedding"):
            raise InvalidInputError(
                f"unknown answer kind {self.kind!r}; expected one of {[*ANSWER_KINDS, 'embedding']}"
            )
        if self.extract is not None and not callable(self.extract):
            raise InvalidInputError("extract must be a callable (answer -> comparable key or None)")

    def _get_embedder(self) -> Embedder:
        if self.embedder is None:
            from routellm_core.embedding.static import StaticEmbedder

            self.embedder = StaticEmbedder()
        return self.embedder

    def _similarity(self, first: Sequence[Any], other: Sequence[Any]) -> np.ndarray:
        out = np.zeros(len(first))
        pairs = [(i, str(a), str(b)) for i, (a, b) in enumerate(zip(first, other)) if a is not None and b is not None]
        texts = sorted({t for _, a, b in pairs for t in (a, b) if t.strip()})
        if not texts:
            return out
        vectors = self._get_embedder().embed(texts)
        index = {t: j for j, t in enumerate(texts)}
        for i, a, b in pairs:
            if a.strip() and b.strip():
                out[i] = float(vectors[index[a]] @ vectors[index[b]])
            else:
                out[i] = float(a.strip() == b.strip())
        return np.clip(out, 0.0, 1.0)

    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        n = len(batch)
        first_missing = np.array([a is None for a in batch.first], dtype=np.float64)
        per_other = []
        for other in batch.others:
            if self.kind == "embedding" and self.extract is None:
                per_other.append(self._similarity(batch.first, other))
            else:
                kw = {"extract": self.extract, "fields": self.fields}
                per_other.append(
                    np.array([float(answers_agree(a, b, self.kind, **kw)) for a, b in zip(batch.first, other)])
                )
        agreement = np.mean(per_other, axis=0) if per_other else np.zeros(n)
        missing = (
            np.mean([[b is None for b in other] for other in batch.others], axis=0) if batch.others else np.zeros(n)
        )
        out = {"agreement": agreement, "first_missing": first_missing, "others_missing": missing.astype(np.float64)}
        for i, values in enumerate(per_other):
            out[f"agree_{i}"] = values
        return out

    def confidence(self, batch: CheckInput) -> np.ndarray:
        if not batch.others:
            raise InvalidInputError("the agreement check needs at least one check answer (CheckInput.others)")
        return np.clip(self.signals(batch)["agreement"], 0.0, 1.0)

    def config(self) -> dict[str, Any]:
        """The JSON-able settings (a user extractor or embedder is not saved)."""
        return {"name": self.name, "kind": self.kind, "fields": None if self.fields is None else list(self.fields)}


@dataclass
class AnswerFeaturesCheck:
    """Signals of the first answer alone: length against the prompt, no answer, refusal.

    Attributes:
        center: Log length ratio (output chars / prompt chars) at which the confidence is 0.5.
        scale: Width of the confidence's fall with the log length ratio.
    """

    center: float = 1.0
    scale: float = 0.5
    name: str = "answer_features"

    def __post_init__(self) -> None:
        for what, value in (("center", self.center), ("scale", self.scale)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise InvalidInputError(f"AnswerFeaturesCheck {what} must be a finite number, got {value!r}")
        if self.scale <= 0:
            raise InvalidInputError(f"AnswerFeaturesCheck scale must be > 0, got {self.scale!r}")

    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        if batch.prompts is None:
            raise InvalidInputError("the answer-features check needs the prompts (CheckInput.prompts)")
        n = len(batch)
        if batch.output_chars is not None:
            out_chars = np.asarray(batch.output_chars, dtype=np.float64)
        elif batch.outputs is not None:
            out_chars = np.array([0.0 if o is None else len(o) for o in batch.outputs])
        else:
            out_chars = np.array([0.0 if a is None else len(str(a)) for a in batch.first])
        out_chars = np.nan_to_num(out_chars, nan=0.0)
        prompt_chars = np.array([len(p) for p in batch.prompts], dtype=np.float64)
        texts = batch.outputs if batch.outputs is not None else [None] * n
        refusal = np.array(
            [float(is_refusal(t) or is_refusal(a)) for t, a in zip(texts, batch.first)], dtype=np.float64
        )
        return {
            "no_answer": np.array([a is None or str(a).strip() == "" for a in batch.first], dtype=np.float64),
            "refusal": refusal,
            "log_length_ratio": np.log((out_chars + 1.0) / (prompt_chars + 1.0)),
            "log_output_chars": np.log1p(out_chars),
            "log_prompt_chars": np.log1p(prompt_chars),
            "log_answer_chars": np.log1p([0.0 if a is None else len(str(a)) for a in batch.first]),
        }

    def confidence(self, batch: CheckInput) -> np.ndarray:
        s = self.signals(batch)
        conf = 1.0 / (1.0 + np.exp((s["log_length_ratio"] - self.center) / self.scale))
        conf[(s["no_answer"] > 0) | (s["refusal"] > 0)] = 0.0
        return np.clip(conf, 0.0, 1.0)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "center": self.center, "scale": self.scale}


@dataclass
class LogprobCheck:
    """Confidence from the first answer's token log-probabilities: the geometric mean of its tokens' probabilities.

    The weak model must return them (LangChain ``ChatOpenAI(logprobs=True)``, LlamaIndex ``OpenAI(logprobs=True)``,
    an OpenAI-compatible upstream asked with ``"logprobs": true``).

    Attributes:
        when_missing: Confidence of an answer that came without log-probabilities (0: escalate it).
    """

    when_missing: float = 0.0
    name: str = "logprobs"
    needs_second_answer: bool = False

    def __post_init__(self) -> None:
        check_threshold_like(self.when_missing, "when_missing")

    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        n = len(batch)
        rows = batch.logprobs if batch.logprobs is not None else [None] * n
        mean, low, has = np.zeros(n), np.zeros(n), np.zeros(n)
        for i, row in enumerate(rows):
            values = np.asarray([] if row is None else list(row), dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size:
                mean[i], low[i], has[i] = float(values.mean()), float(values.min()), 1.0
        return {"mean_logprob": mean, "min_logprob": low, "has_logprobs": has}

    def confidence(self, batch: CheckInput) -> np.ndarray:
        s = self.signals(batch)
        return np.where(s["has_logprobs"] > 0, np.exp(np.minimum(s["mean_logprob"], 0.0)), self.when_missing)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "when_missing": self.when_missing}


#: The question a self-verification check asks the cheap model after its answer (AutoMix's, shortened).
VERIFY_QUESTION = (
    "Check the answer you just gave: is it correct and complete for the question asked? Reply with one word: Yes or No."
)
_YES = re.compile(r"^\W*(?:yes|yeah|yep|correct|true|right)\b(?!\W*(?:and\s+no|or\s+no)\b)", re.IGNORECASE)
_NO = re.compile(r"^\W*(?:no|nope|incorrect|wrong|false)\b(?!\W*(?:doubt|problem)\b)", re.IGNORECASE)
# a verdict taken back in the same breath ("Yes, but the last step is wrong"): neither yes nor no
_HEDGE = re.compile(r"^\W*\w+\W*(?:but|however|although|though|except|partly|partially|mostly)\b", re.IGNORECASE)


@dataclass
class SelfVerificationCheck:
    """The cheap model's own verdict on its answer: asked :data:`VERIFY_QUESTION` right after answering.

    The reply's first word decides, in any case and markup (``Yes``, ``**no.**``, ``Correct``, ``Wrong``); a verdict
    hedged in the same breath ("Yes, but ...", "Yes and no") or any other reply is unsure.

    Attributes:
        unsure: Confidence when the reply is neither yes nor no (or the verification call failed).
    """

    unsure: float = 0.5
    name: str = "self_verification"
    needs_second_answer: bool = False
    needs_verification: bool = True

    def __post_init__(self) -> None:
        check_threshold_like(self.unsure, "unsure")

    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        replies = batch.verifications if batch.verifications is not None else [None] * len(batch)
        clear = [r if r is not None and not _HEDGE.match(r) else None for r in replies]
        yes = np.array([float(r is not None and bool(_YES.match(r))) for r in clear])
        no = np.array([float(r is not None and bool(_NO.match(r))) for r in clear])
        return {"verified_yes": yes, "verified_no": no, "verification_unclear": 1.0 - yes - no}

    def confidence(self, batch: CheckInput) -> np.ndarray:
        s = self.signals(batch)
        return s["verified_yes"] + self.unsure * s["verification_unclear"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "unsure": self.unsure}


def check_threshold_like(value: float, what: str) -> float:
    """``value`` if it is a finite number in [0, 1].

    Raises:
        InvalidInputError: Otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise InvalidInputError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass
class LogisticCombiner:
    """A logistic regression from other checks' signals (and the prompt router's win rate) to P(first answer is
    right); its confidence is that probability.

    Follows scikit-learn's rules: ``__init__`` stores parameters, :meth:`fit` returns self, learned state ends in
    ``_``, predicting before fitting raises :class:`~routellm_core.errors.NotFittedError`.

    ``LogisticCombiner()`` is unfitted (fit your own); :func:`shipped_combiner` (what ``Escalation(check="combined")``
    uses) is the one fitted on the shared answer data and shipped with the package. Predictions clip each signal to
    the range seen in fitting, so a value outside the data (a far shorter prompt, say) is read as the nearest one
    seen rather than extrapolated.

    Attributes:
        checks: The checks whose signals it reads.
        use_win_rate: Add the logit of ``CheckInput.win_rates`` as the signal ``win_rate_logit``.
        l2: Ridge penalty on the standardised weights (with a ``prior``: toward the prior's weights, intercept too).
        max_iter: Newton iterations at most.
        signal_names: The signals the fit reads (None: every signal the checks give). Signals outside it are still
            computed (and recorded online) but carry no weight.
    """

    checks: tuple[Any, ...] = field(default_factory=lambda: (AgreementCheck(), AnswerFeaturesCheck()))
    use_win_rate: bool = True
    l2: float = 1.0
    max_iter: int = 50
    name: str = "combined"
    signal_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.signal_names is not None:
            names = tuple(self.signal_names)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise InvalidInputError("signal_names must be a non-empty sequence of signal names, or None")
            self.signal_names = names
        if isinstance(self.l2, bool) or not isinstance(self.l2, (int, float)) or not float(self.l2) >= 0.0:
            raise InvalidInputError(f"l2 must be a number >= 0, got {self.l2!r}")

    # ---- signals -------------------------------------------------------------------------------------------
    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for check in self.checks:
            for key, value in check.signals(batch).items():
                out[f"{check.name}.{key}"] = np.asarray(value, dtype=np.float64)
        if self.use_win_rate:
            if batch.win_rates is None:
                raise InvalidInputError("the combiner was built with use_win_rate=True; pass CheckInput.win_rates")
            out["win_rate_logit"] = _logit(np.asarray(batch.win_rates))
        return out

    def _matrix(self, signals: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
        missing = [k for k in names if k not in signals]
        if missing:
            raise InvalidInputError(f"signals missing for the combiner: {missing}")
        x = np.column_stack([np.asarray(signals[k], dtype=np.float64) for k in names])
        if not np.isfinite(x).all():
            raise InvalidInputError("the combiner's signals hold NaN or infinite values")
        return x

    # ---- fit / predict -------------------------------------------------------------------------------------
    def fit_signals(
        self,
        signals: Mapping[str, np.ndarray],
        correct: Sequence[float],
        *,
        prior: LogisticCombiner | None = None,
    ) -> LogisticCombiner:
        """Fit on named signals and 0/1 labels (was the first answer right?).

        Args:
            signals: Signal name -> one value per prompt (extra names beyond ``signal_names`` are ignored).
            correct: 1 where the first answer was right, else 0.
            prior: A fitted combiner to warm-start from: its signal names and standardisation are kept, and the
                ridge penalty ``l2`` pulls every weight (intercept included) toward its weights instead of toward 0,
                so a few labels move it only as far as they support.

        Raises:
            TrainingDataError: No signals, no labels, a label count that differs from the prompts', or labels
                other than 0/1.
            InvalidInputError: A signal the fit needs is missing, or holds NaN / infinite values.
        """
        if prior is not None:
            prior._check_fitted()
            names = list(prior.feature_names_)
            if self.signal_names is not None and set(self.signal_names) != set(names):
                raise InvalidInputError(
                    f"signal_names {list(self.signal_names)} differ from the prior's signals {names}"
                )
        elif self.signal_names is not None:
            names = list(self.signal_names)
        else:
            names = sorted(signals)
        if not names:
            raise TrainingDataError("no signals to fit the combiner on")
        x = self._matrix(signals, names)
        y = np.asarray(correct, dtype=np.float64).reshape(-1)
        if y.shape[0] != x.shape[0] or x.shape[0] == 0:
            raise TrainingDataError(f"{y.shape[0]} labels for {x.shape[0]} prompts")
        if not np.isin(y, (0.0, 1.0)).all():
            raise TrainingDataError("combiner labels must be 0 or 1")
        low, high = x.min(axis=0), x.max(axis=0)
        if prior is not None:
            mean, scale = prior.mean_.copy(), prior.scale_.copy()
            centre = np.r_[prior.intercept_, prior.coef_]
            if getattr(prior, "low_", None) is not None:
                low, high = np.minimum(low, prior.low_), np.maximum(high, prior.high_)
        else:
            mean = x.mean(axis=0)
            scale = x.std(axis=0)
            scale[scale < 1e-12] = 1.0
            centre = np.zeros(len(names) + 1)
        z = np.column_stack([np.ones(len(x)), (x - mean) / scale])
        w = centre.copy()
        penalty = np.full(z.shape[1], float(self.l2))
        if prior is None:
            penalty[0] = 0.0

        def loss(v: np.ndarray) -> float:
            margin = z @ v
            return float(np.sum(np.logaddexp(0.0, margin) - y * margin) + 0.5 * np.sum(penalty * (v - centre) ** 2))

        current = loss(w)
        for _ in range(self.max_iter):  # Newton's method, the step halved until the penalised loss falls
            p = _sigmoid(z @ w)
            grad = z.T @ (p - y) + penalty * (w - centre)
            hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hess, grad)
            t = 1.0
            while t > 1e-10 and loss(w - t * step) > current + 1e-12 * max(1.0, abs(current)):
                t *= 0.5
            w = w - t * step
            current = loss(w)
            if np.max(np.abs(t * step)) < 1e-8:
                break
        self.feature_names_ = list(names)
        self.mean_, self.scale_ = mean, scale
        self.low_, self.high_ = low, high
        self.intercept_, self.coef_ = float(w[0]), w[1:].copy()
        return self

    def fit(self, batch: CheckInput, correct: Sequence[float]) -> LogisticCombiner:
        """Fit on one labelled batch (``correct[i]``: 1 when the first answer to prompt ``i`` was right)."""
        return self.fit_signals(self.signals(batch), correct)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("LogisticCombiner is not fitted; call fit() or load() first")

    def predict_signals(self, signals: Mapping[str, np.ndarray]) -> np.ndarray:
        """P(first answer right) from named signals."""
        self._check_fitted()
        x = self._matrix(signals, self.feature_names_)
        if getattr(self, "low_", None) is not None:
            x = np.clip(x, self.low_, self.high_)
        return _sigmoid(((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_)

    def predict(self, batch: CheckInput) -> np.ndarray:
        """P(first answer right) for each prompt of the batch."""
        return self.predict_signals(self.signals(batch))

    def confidence(self, batch: CheckInput) -> np.ndarray:
        return self.predict(batch)

    def weights(self) -> dict[str, float]:
        """The fitted weights by signal name (on standardised signals), plus ``"(intercept)"``."""
        self._check_fitted()
        return {"(intercept)": self.intercept_, **{k: float(v) for k, v in zip(self.feature_names_, self.coef_)}}

    # ---- persistence (JSON config + safetensors) -----------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``; returns it."""
        self._check_fitted()
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        config = {
            "type": "logistic_combiner",
            "version": COMBINER_VERSION,
            "feature_names": self.feature_names_,
            "use_win_rate": self.use_win_rate,
            "l2": self.l2,
            "max_iter": self.max_iter,
            "signal_names": None if self.signal_names is None else list(self.signal_names),
            "clipped": getattr(self, "low_", None) is not None,
            "checks": [c.config() for c in self.checks],
        }
        if getattr(self, "metadata_", None):
            config["metadata"] = self.metadata_
        (out / _CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        tensors = {
            "coef": self.coef_.astype(np.float64),
            "intercept": np.array([self.intercept_], dtype=np.float64),
            "mean": self.mean_.astype(np.float64),
            "scale": self.scale_.astype(np.float64),
        }
        if getattr(self, "low_", None) is not None:
            tensors["low"] = np.asarray(self.low_, dtype=np.float64)
            tensors["high"] = np.asarray(self.high_, dtype=np.float64)
        save_tensors(out, tensors, _WEIGHTS)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> LogisticCombiner:
        """Load a combiner written by :meth:`save`.

        Raises:
            CheckpointError: A file is missing, unreadable, of another type or version, or inconsistent.
        """
        folder = Path(directory)
        try:
            config = json.loads((folder / _CONFIG).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{folder}: no {_CONFIG}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{folder / _CONFIG}: not valid JSON ({exc})") from None
        if not isinstance(config, dict) or config.get("type") != "logistic_combiner":
            raise CheckpointError(f"{folder / _CONFIG}: not a logistic combiner")
        if config.get("version") != COMBINER_VERSION:
            raise CheckpointError(f"{folder / _CONFIG}: version {config.get('version')!r}, expected {COMBINER_VERSION}")
        # names, ranks, NaN / infinity and the file size are checked by the shared loader; sizes against the config
        expected: dict[str, tuple[int | None, ...]] = {
            "coef": (None,),
            "intercept": (1,),
            "mean": (None,),
            "scale": (None,),
        }
        clipped = bool(config.get("clipped", False))
        if clipped:
            expected.update(low=(None,), high=(None,))
        tensors = load_tensors(folder, expected, filename=_WEIGHTS)
        names = config.get("feature_names")
        d = len(names) if isinstance(names, list) else -1
        shapes_ok = (
            d > 0
            and all(isinstance(n, str) for n in names)
            and tensors["coef"].shape == tensors["mean"].shape == tensors["scale"].shape == (d,)
        )
        if not shapes_ok:
            raise CheckpointError(f"{folder}: weights do not match the config's {d} feature names")
        if (tensors["scale"] <= 0).any():
            raise CheckpointError(f"{folder / _WEIGHTS}: non-positive scale values")
        if clipped and (
            tensors["low"].shape != (d,) or tensors["high"].shape != (d,) or (tensors["low"] > tensors["high"]).any()
        ):
            raise CheckpointError(f"{folder / _WEIGHTS}: the signal range (low, high) does not fit the feature names")
        checks = tuple(_check_from_config(c) for c in config.get("checks", []))
        signal_names = config.get("signal_names")
        if signal_names is not None and (not isinstance(signal_names, list) or sorted(signal_names) != sorted(names)):
            raise CheckpointError(f"{folder / _CONFIG}: signal_names do not match the feature names")
        try:
            obj = cls(
                checks=checks,
                use_win_rate=bool(config.get("use_win_rate", True)),
                l2=float(config.get("l2", 1.0)),
                max_iter=int(config.get("max_iter", 50)),
                signal_names=None if signal_names is None else tuple(signal_names),
            )
        except (TypeError, ValueError, InvalidInputError) as exc:
            raise CheckpointError(f"{folder / _CONFIG}: bad settings ({exc})") from None
        metadata = config.get("metadata")
        if isinstance(metadata, dict):
            obj.metadata_ = metadata
        obj.feature_names_ = list(names)
        obj.coef_ = tensors["coef"].astype(np.float64)
        obj.intercept_ = float(tensors["intercept"][0])
        obj.mean_ = tensors["mean"].astype(np.float64)
        obj.scale_ = tensors["scale"].astype(np.float64)
        if clipped:
            obj.low_ = tensors["low"].astype(np.float64)
            obj.high_ = tensors["high"].astype(np.float64)
        return obj


def _check_from_config(config: Any) -> Any:
    if not isinstance(config, dict):
        raise CheckpointError(f"bad check entry in the combiner config: {config!r}")
    kind = config.get("name")
    try:
        if kind == "agreement":
            fields = config.get("fields")
            return AgreementCheck(kind=config.get("kind", "auto"), fields=None if fields is None else tuple(fields))
        if kind == "answer_features":
            return AnswerFeaturesCheck(center=float(config["center"]), scale=float(config["scale"]))
        if kind == "self_verification":
            return SelfVerificationCheck(unsure=float(config.get("unsure", 0.5)))
        if kind == "logprobs":
            return LogprobCheck(when_missing=float(config.get("when_missing", 0.0)))
    except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
        raise CheckpointError(f"bad check entry in the combiner config: {config!r} ({exc})") from None
    raise CheckpointError(f"unknown check {kind!r} in the combiner config")


#: The shipped combiner's folder (``config.json`` + ``model.safetensors`` + ``MODEL_CARD.md``), written by
#: ``scripts/build_combiner.py``.
SHIPPED_COMBINER_DIR = Path(__file__).resolve().parent / "shipped_combiner"


def shipped_combiner() -> LogisticCombiner:
    """The :class:`LogisticCombiner` shipped with the package, fitted on the shared ZeroEval answer data.

    It reads the agreement of two cheap answers (answer kind ``"auto"``), the first answer's length and the prompt's,
    a refusal, and the logit of the prompt router's win rate (the shipped ``default`` router's during fitting); see
    its ``MODEL_CARD.md``. A fresh object on every call.

    Raises:
        CheckpointError: The shipped files are missing or damaged.
    """
    return LogisticCombiner.load(SHIPPED_COMBINER_DIR)


#: Built-in check names -> a factory (``Escalation(check=...)`` and ``evaluate_escalation(check=...)``);
#: ``"combined"`` gives the shipped, fitted combiner.
CHECKS: dict[str, Any] = {
    "agreement": AgreementCheck,
    "answer_features": AnswerFeaturesCheck,
    "logprobs": LogprobCheck,
    "self_verification": SelfVerificationCheck,
    "combined": shipped_combiner,
}


def check_confidence(check: Check, batch: CheckInput) -> np.ndarray:
    """A check's confidences, validated: one finite value in [0, 1] per prompt."""
    conf = np.asarray(check.confidence(batch), dtype=np.float64).reshape(-1)
    if conf.shape[0] != len(batch):
        raise InvalidInputError(
            f"check {getattr(check, 'name', check)!r} gave {conf.shape[0]} confidences for {len(batch)}"
        )
    if not np.isfinite(conf).all() or (conf < 0).any() or (conf > 1).any():
        raise InvalidInputError(f"check {getattr(check, 'name', check)!r} gave confidences outside [0, 1]")
    return conf


def needs_second_answer(check: Any) -> bool:
    """Whether a check compares the first answer with a second one (custom checks: assumed yes unless they set
    ``needs_second_answer = False``)."""
    if isinstance(check, AgreementCheck):
        return True
    if isinstance(check, AnswerFeaturesCheck):
        return False
    if isinstance(check, LogisticCombiner):
        return any(needs_second_answer(c) for c in check.checks)
    return bool(getattr(check, "needs_second_answer", True))


__all__ = [
    "CHECKS",
    "VERIFY_QUESTION",
    "AgreementCheck",
    "AnswerFeaturesCheck",
    "Check",
    "CheckInput",
    "LogisticCombiner",
    "LogprobCheck",
    "SelfVerificationCheck",
    "check_confidence",
    "needs_second_answer",
    "shipped_combiner",
]
