"""Evaluation sets: the :class:`Benchmark` type, the shared benchmarks, and benchmarks from users' files.

RouteLLM's benchmarks (``routellm-evals/``) are reproduced exactly, scored for GPT-4 (``gpt-4-1106-preview``) and
Mixtral (``mistralai/Mixtral-8x7B-Instruct-v0.1``):

- **MMLU**: 57 ``mmlu/responses/mmlu_<subject>.csv`` files, 14,042 rows; 5 contaminated prompts dropped
  -> 14,037 prompts (GPT-4 0.806, Mixtral 0.681). 105 prompts occur twice (the same question in two subjects);
  RouteLLM keeps both rows, and so do we.
- **GSM8K**: ``gsm8k/gsm8k_responses.csv``, 1,319 rows, no duplicates; 12 contaminated prompts dropped -> 1,307
  (0.858 / 0.637).
- **MT Bench**: 80 questions; a question is dropped when either turn is contaminated (8 are, all on turn 1) -> 72.
  The routing text is turn 1; a model's quality is its mean GPT-4 grade over both turns (9.21 / 8.28).

ZeroEval's benchmarks (``zeroeval/``) are two more left-out sets, each with its own reference pair
(:data:`ZEROEVAL_PAIRS`, chosen below); they publish no contamination list:

- **CRUX** (CRUXEval output prediction): 800 prompts, ``gpt-4-turbo-2024-04-09`` 0.789 vs Mixtral 0.449.
- **MATH-L5** (MATH level 5): 721 problems, ``gpt-4-turbo-2024-04-09`` 0.465 vs ``Meta-Llama-3-8B-Instruct`` 0.079.

The pairs mirror RouteLLM's GPT-4-vs-Mixtral setting. Strong: ``gpt-4-turbo-2024-04-09``, the GPT-4 Turbo of
both files (the line of RouteLLM's ``gpt-4-1106-preview``), with an answer on every prompt; o1 and GPT-4o are
newer and stronger than the reference. Weak on CRUX: Mixtral-8x7B-Instruct itself, RouteLLM's weak reference
(read under its reference name), 800/800 prompts. Mixtral has no MATH-L5 results, so the weak model there is
``Meta-Llama-3-8B-Instruct``, the open model of Mixtral's class and period (CRUX 0.378 vs Mixtral's 0.449), with
all 721 prompts graded (86 answers that ZeroEval's extractor could not read count as wrong, as in ZeroEval).
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routellm_core.data.catalog import STRONG, WEAK, check_benchmark_name
from routellm_core.data.contamination import contaminated
from routellm_core.data.corpora import zeroeval_labels
from routellm_core.data.readers import iter_csv, iter_jsonl, parse_bool, parse_score, prompt_of
from routellm_core.data.records import GoldenLabel
from routellm_core.data.user_files import read_golden
from routellm_core.data.workspace import DataNotFoundError, data_file, existing_file, root
from routellm_core.errors import TrainingDataError

#: ZeroEval benchmark -> (strong model, weak model); see the module docstring for why these two.
ZEROEVAL_PAIRS: dict[str, tuple[str, str]] = {
    "crux": ("gpt-4-turbo-2024-04-09", WEAK),
    "math_l5": ("gpt-4-turbo-2024-04-09", "Meta-Llama-3-8B-Instruct"),
}


@dataclass(frozen=True, eq=False)
class Benchmark:
    """An evaluation set: routing texts and each reference model's per-prompt quality.

    Attributes:
        name: Benchmark name.
        prompts: Routing texts (MT Bench: turn 1).
        strong: Per-prompt quality of the strong model (0/1 correctness, or the mean judge grade).
        weak: Per-prompt quality of the weak model.
        strong_model: Name of the strong model.
        weak_model: Name of the weak model.
        ids: Optional per-prompt identifiers (MT Bench question ids).
    """

    name: str
    prompts: tuple[str, ...]
    strong: np.ndarray
    weak: np.ndarray
    strong_model: str = STRONG
    weak_model: str = WEAK
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        prompts = tuple(self.prompts)
        strong = np.array(self.strong, dtype=np.float64).reshape(-1)
        weak = np.array(self.weak, dtype=np.float64).reshape(-1)
        if not prompts:
            raise TrainingDataError(f"benchmark {self.name!r} has no prompts")
        if strong.shape[0] != len(prompts) or weak.shape[0] != len(prompts):
            raise TrainingDataError(
                f"benchmark {self.name!r}: {len(prompts)} prompts but {strong.shape[0]} strong and "
                f"{weak.shape[0]} weak scores"
            )
        if not (np.isfinite(strong).all() and np.isfinite(weak).all()):
            raise TrainingDataError(f"benchmark {self.name!r} has non-finite scores")
        if self.ids is not None and len(self.ids) != len(prompts):
            raise TrainingDataError(f"benchmark {self.name!r}: {len(self.ids)} ids for {len(prompts)} prompts")
        strong.flags.writeable = False
        weak.flags.writeable = False
        object.__setattr__(self, "prompts", prompts)
        object.__setattr__(self, "strong", strong)
        object.__setattr__(self, "weak", weak)
        if self.ids is not None:
            object.__setattr__(self, "ids", tuple(self.ids))

    def __len__(self) -> int:
        return len(self.prompts)

    @classmethod
    def from_golden_labels(
        cls, name: str, labels: Sequence[GoldenLabel], strong_model: str, weak_model: str
    ) -> Benchmark:
        """The labels that score both models, in their order, as a benchmark of that pair.

        Raises:
            TrainingDataError: No label scores both models.
        """
        both = [lab for lab in labels if strong_model in lab.scores and weak_model in lab.scores]
        if not both:
            raise TrainingDataError(f"{name}: no prompt scores both {strong_model!r} and {weak_model!r}")
        return cls(
            name,
            tuple(lab.prompt for lab in both),
            np.array([lab.scores[strong_model] for lab in both]),
            np.array([lab.scores[weak_model] for lab in both]),
            strong_model=strong_model,
            weak_model=weak_model,
        )

    @property
    def q_strong(self) -> float:
        """Mean quality of the strong model (every prompt sent to strong)."""
        return float(self.strong.mean())

    @property
    def q_weak(self) -> float:
        """Mean quality of the weak model (every prompt sent to weak)."""
        return float(self.weak.mean())

    def subset(self, indices: Sequence[int] | np.ndarray) -> Benchmark:
        """A benchmark of the selected prompts (integer indices or a boolean mask)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return Benchmark(
            name=self.name,
            prompts=tuple(self.prompts[i] for i in idx),
            strong=self.strong[idx],
            weak=self.weak[idx],
            strong_model=self.strong_model,
            weak_model=self.weak_model,
            ids=None if self.ids is None else tuple(self.ids[i] for i in idx),
        )

    def golden_labels(self, source: str | None = None) -> list[GoldenLabel]:
        """The benchmark as golden labels (one per prompt, both models scored)."""
        src = source if source is not None else self.name
        return [
            GoldenLabel(prompt=p, scores={self.strong_model: float(s), self.weak_model: float(w)}, source=src)
            for p, s, w in zip(self.prompts, self.strong, self.weak)
        ]

    def __repr__(self) -> str:
        return (
            f"Benchmark(name={self.name!r}, n={len(self)}, strong={self.strong_model!r} {self.q_strong:.3f}, "
            f"weak={self.weak_model!r} {self.q_weak:.3f})"
        )


@functools.lru_cache(maxsize=4)
def _mmlu(root: str, drop: bool) -> Benchmark:
    folder = Path(root, "routellm-evals", "mmlu", "responses")
    files = sorted(folder.glob("mmlu_*.csv")) if folder.is_dir() else []
    if not files:
        raise DataNotFoundError(f"no MMLU response files (mmlu_*.csv) in {folder}")
    banned = contaminated(root, "mmlu", False) if drop else frozenset()
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            try:
                ip, iw, is_ = header.index("prompt"), header.index(WEAK), header.index(STRONG)
            except ValueError:
                raise TrainingDataError(f"{path}: expected columns prompt, {WEAK}, {STRONG}; got {header}") from None
            for row in reader:
                prompt = row[ip]
                if prompt.strip() in banned:
                    continue
                where = f"{path}, line {reader.line_num}"
                strong.append(parse_bool(row[is_], where))
                weak.append(parse_bool(row[iw], where))
                prompts.append(prompt)
    return Benchmark("mmlu", tuple(prompts), np.array(strong), np.array(weak))


@functools.lru_cache(maxsize=4)
def _gsm8k(root: str, drop: bool) -> Benchmark:
    path = data_file(root, "routellm-evals", "gsm8k", "gsm8k_responses.csv")
    banned = contaminated(root, "gsm8k", False) if drop else frozenset()
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for line, row in iter_csv(path, ("prompt", STRONG, WEAK)):
        if row["prompt"].strip() in banned:
            continue
        where = f"{path}, line {line}"
        strong.append(parse_bool(row[STRONG], where))
        weak.append(parse_bool(row[WEAK], where))
        prompts.append(row["prompt"])
    return Benchmark("gsm8k", tuple(prompts), np.array(strong), np.array(weak))


@functools.lru_cache(maxsize=4)
def _mt_bench(root: str, drop: bool) -> Benchmark:
    qpath = data_file(root, "routellm-evals", "mt_bench", "question.jsonl")
    jpath = data_file(root, "routellm-evals", "mt_bench", "judgements.jsonl")
    banned = contaminated(root, "mt_bench", False) if drop else frozenset()
    grades: dict[tuple[str, str], list[float]] = {}
    for line_no, obj in iter_jsonl(jpath):
        where = f"{jpath}, line {line_no}"
        score = parse_score(obj.get("score"), where, text=False)
        if score is None or "question_id" not in obj or "model" not in obj:
            raise TrainingDataError(f"{where}: a judgement needs question_id, model and a numeric score")
        if score < 0:  # FastChat writes -1 when the judge's grade could not be parsed
            continue
        grades.setdefault((str(obj["question_id"]), str(obj["model"])), []).append(score)
    prompts: list[str] = []
    ids: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for line_no, obj in iter_jsonl(qpath):
        turns = obj.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise TrainingDataError(f"{qpath}, line {line_no}: 'turns' must be a list of strings")
        if any(t.strip() in banned for t in turns):
            continue
        qid = str(obj.get("question_id"))
        for model, out in ((STRONG, strong), (WEAK, weak)):
            values = grades.get((qid, model))
            if not values:
                raise TrainingDataError(f"{jpath}: no judgement of {model!r} for question {qid}")
            out.append(sum(values) / len(values))
        prompts.append(prompt_of(turns[0], f"{qpath}, line {line_no}"))
        ids.append(qid)
    return Benchmark("mt_bench", tuple(prompts), np.array(strong), np.array(weak), ids=tuple(ids))


@functools.lru_cache(maxsize=4)
def _zeroeval(root: str, name: str) -> Benchmark:
    return Benchmark.from_golden_labels(name, zeroeval_labels(root, name, True), *ZEROEVAL_PAIRS[name])


def _load(root: str, name: str, drop: bool) -> Benchmark:
    if name == "mmlu":
        return _mmlu(root, drop)
    if name == "gsm8k":
        return _gsm8k(root, drop)
    if name == "mt_bench":
        return _mt_bench(root, drop)
    return _zeroeval(root, name)  # no contamination list: ``drop`` changes nothing


def benchmark_prompts(root: str, name: str) -> tuple[str, ...]:
    """Every prompt of benchmark ``name`` under the data folder ``root``, contaminated ones included.

    These are the texts :func:`~routellm_core.data.drop_eval_overlap` keeps out of training (for ZeroEval's
    benchmarks, every prompt of the file, also those the reference pair did not both answer).
    """
    if name in ZEROEVAL_PAIRS:
        return tuple(lab.prompt for lab in zeroeval_labels(root, name, True))
    return _load(root, name, False).prompts


def load_mmlu(drop_contaminated: bool = True) -> Benchmark:
    """MMLU (57 subjects) with GPT-4 and Mixtral correctness: 14,037 prompts after decontamination."""
    return _mmlu(root(), drop_contaminated)


def load_gsm8k(drop_contaminated: bool = True) -> Benchmark:
    """GSM8K test set with GPT-4 and Mixtral correctness: 1,307 prompts after decontamination."""
    return _gsm8k(root(), drop_contaminated)


def load_mt_bench(drop_contaminated: bool = True) -> Benchmark:
    """MT Bench: turn-1 routing texts, mean GPT-4 grade over both turns; 72 questions after decontamination."""
    return _mt_bench(root(), drop_contaminated)


def load_crux() -> Benchmark:
    """CRUXEval (ZeroEval): 800 prompts, ``gpt-4-turbo-2024-04-09`` vs Mixtral correctness (0.789 / 0.449)."""
    return _zeroeval(root(), "crux")


def load_math_l5() -> Benchmark:
    """MATH level 5 (ZeroEval): 721 problems, ``gpt-4-turbo-2024-04-09`` vs Llama-3-8B-Instruct (0.465 / 0.079)."""
    return _zeroeval(root(), "math_l5")


def load_benchmark(name: str, drop_contaminated: bool = True) -> Benchmark:
    """Load a benchmark by name: ``"mmlu"``, ``"gsm8k"``, ``"mt_bench"``, ``"crux"`` or ``"math_l5"``.

    Dashes are accepted for underscores (``"mt-bench"``, ``"math-l5"``). ``drop_contaminated`` has no effect on
    ``crux`` and ``math_l5``, which publish no contamination list.

    Raises:
        DataNotFoundError: The data folder or a benchmark file is missing.
        TrainingDataError: Unknown name or malformed data.
    """
    return _load(root(), check_benchmark_name(name), drop_contaminated)


# ---- the RouteLLM benchmarks as golden labels ------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _bench_labels(root: str, name: str, drop: bool) -> tuple[GoldenLabel, ...]:
    return tuple(_load(root, name, drop).golden_labels(source=name))


def golden_labels_mmlu(drop_contaminated: bool = True) -> list[GoldenLabel]:
    """MMLU as golden labels: GPT-4 and Mixtral correctness (0/1), source ``"mmlu"``."""
    return list(_bench_labels(root(), "mmlu", drop_contaminated))


def golden_labels_gsm8k(drop_contaminated: bool = True) -> list[GoldenLabel]:
    """GSM8K as golden labels: GPT-4 and Mixtral correctness (0/1), source ``"gsm8k"``."""
    return list(_bench_labels(root(), "gsm8k", drop_contaminated))


def golden_labels_mt_bench(drop_contaminated: bool = True) -> list[GoldenLabel]:
    """MT Bench as golden labels: turn-1 prompt, mean judge grade over both turns, source ``"mt_bench"``."""
    return list(_bench_labels(root(), "mt_bench", drop_contaminated))


def load_benchmark_file(
    path: str | os.PathLike[str], strong_model: str, weak_model: str, name: str | None = None
) -> Benchmark:
    """Build a :class:`Benchmark` from a golden-label file; every row must score both models.

    Raises:
        TrainingDataError: A malformed row, or a row without a score for ``strong_model`` or ``weak_model``.
    """
    p = existing_file(path)
    if strong_model == weak_model:
        raise TrainingDataError(f"strong and weak model are both {strong_model!r}; name two different models")
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for line, label in read_golden(p, None):
        for model in (strong_model, weak_model):
            if model not in label.scores:
                raise TrainingDataError(f"{p}, line {line}: no score for {model!r}")
        prompts.append(label.prompt)
        strong.append(label.scores[strong_model])
        weak.append(label.scores[weak_model])
    return Benchmark(name or p.stem, tuple(prompts), np.array(strong), np.array(weak), strong_model, weak_model)
