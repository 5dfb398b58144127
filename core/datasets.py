"""Loaders for the shared benchmark data, the shared training sources, and users' own files.

Data folder: ``$ROUTELLM_DATA_DIR``, else ``../shared/data`` beside the repository (or beside the working
directory). The benchmark loaders reproduce RouteLLM's evaluation sets exactly:

- **MMLU**: 57 ``mmlu/responses/mmlu_<subject>.csv`` files, 14,042 rows; 5 contaminated prompts dropped
  -> 14,037 prompts (GPT-4 0.806, Mixtral 0.681). 105 prompts occur twice (the same question in two subjects);
  RouteLLM keeps both rows, and so do we.
- **GSM8K**: ``gsm8k/gsm8k_responses.csv``, 1,319 rows, no duplicates; 12 contaminated prompts dropped -> 1,307
  (0.858 / 0.637).
- **MT Bench**: 80 questions; a question is dropped when either turn is contaminated (8 are, all on turn 1) -> 72.
  The routing text is turn 1; a model's quality is its mean GPT-4 grade over both turns (9.21 / 8.28).

Contaminated prompts are read from ``<benchmark>/contaminated_prompts.jsonl`` (field ``eval_prompt``) and
matched after stripping surrounding whitespace.

User files (JSONL or CSV, chosen by suffix):

- **Battles**: keys/columns ``prompt, model_a, model_b, winner`` (optional ``source``). ``winner`` is
  ``model_a``, ``model_b``, ``tie``, the winning model's name, or Chatbot Arena's ``tie (bothbad)`` (a tie).
- **Golden labels**: JSONL ``{"prompt": "...", "scores": {"model": 0.8, ...}}`` (``null`` = no score), or CSV with
  a ``prompt`` column and one numeric column per model (empty cell = no score; ``True``/``False`` read as 1/0;
  optional ``source`` and ``id`` columns are not models).

Every malformed row raises :class:`~routellm_core.errors.TrainingDataError` naming the file, the line and the
problem. Files are parsed with ``json`` and ``csv`` only, never ``eval`` or pickle.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import math
import os
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from routellm_core.errors import TrainingDataError
from routellm_core.records import Battle, GoldenLabel, Winner, golden_to_battles
from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE

#: Environment variable naming the data folder.
DATA_DIR_ENV = "ROUTELLM_DATA_DIR"
#: RouteLLM's strong reference model (GPT-4 Turbo).
STRONG = STRONG_REFERENCE
#: RouteLLM's weak reference model (Mixtral 8x7B Instruct).
WEAK = WEAK_REFERENCE
#: Evaluation benchmarks, as accepted by :func:`load_benchmark`.
BENCHMARKS: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench")
#: Training sources, as accepted by :func:`training_battles`.
TRAINING_SOURCES: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench", "dcrouter", "mmlu_pro")
#: MMLU-Pro model names mapped onto the reference names they denote, so all sources share one model space.
MMLU_PRO_ALIASES: dict[str, str] = {"Mixtral-8x7B-Instruct-v0.1": WEAK}

_BENCH_DIRS = {"mmlu": "mmlu", "gsm8k": "gsm8k", "mt_bench": "mt_bench"}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TIE_RE = re.compile(r"tie\s*(?:\(\s*bothbad\s*\)|[_ -]?bothbad)?", re.IGNORECASE)
_BATTLE_KEYS = ("prompt", "model_a", "model_b", "winner")
_LABEL_META_COLUMNS = frozenset({"prompt", "source", "id"})

R = TypeVar("R", Battle, GoldenLabel)


class DataNotFoundError(TrainingDataError, FileNotFoundError):
    """The data folder or one of its files is missing."""


# ---- the data folder -------------------------------------------------------------------------------------
def data_dir() -> Path:
    """The shared data folder: ``$ROUTELLM_DATA_DIR``, else ``../shared/data`` beside the repo or the cwd.

    Raises:
        DataNotFoundError: The folder does not exist.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"{DATA_DIR_ENV}={env!r} is not a folder")
        return path.resolve()
    candidates = [
        Path(__file__).resolve().parents[1].parent / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    for path in candidates:
        if path.is_dir():
            return path
    raise DataNotFoundError(
        f"benchmark data not found (looked in {', '.join(map(str, candidates))}); "
        f"set {DATA_DIR_ENV} to the folder holding routellm-evals/, llmrouter-dcrouter/ and mmlu-pro/"
    )


def _root() -> str:
    return str(data_dir())


def _file(root: str, *parts: str) -> Path:
    path = Path(root, *parts)
    if not path.is_file():
        raise DataNotFoundError(f"missing data file {path} (data folder from {DATA_DIR_ENV} or ../shared/data)")
    return path


# ---- low-level readers -----------------------------------------------------------------------------------
def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSONL file."""
    with path.open(encoding="utf-8") as fh:
        lines = enumerate(fh, start=1)
        while True:
            try:
                line_no, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise TrainingDataError(f"{path}: the file is not UTF-8 text ({exc.reason})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}, line {line_no}: invalid JSON ({exc.msg})") from None
            except (ValueError, RecursionError) as exc:  # absurd nesting depth or number size
                raise TrainingDataError(f"{path}, line {line_no}: invalid JSON ({str(exc)[:120]})") from None
            if not isinstance(obj, dict):
                raise TrainingDataError(f"{path}, line {line_no}: expected a JSON object, got {type(obj).__name__}")
            yield line_no, obj


def _iter_csv(path: Path, required: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first line number, row dict) for each data row of a CSV file with a header."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TrainingDataError(f"{path}: the file is empty (expected a header row)") from None
        except csv.Error as exc:
            raise TrainingDataError(f"{path}, line 1: malformed CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise TrainingDataError(f"{path}: the file is not UTF-8 text ({exc.reason})") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise TrainingDataError(f"{path}: missing column(s) {missing}; the header is {header}")
        if len(set(header)) != len(header):
            raise TrainingDataError(f"{path}: duplicate column names in the header {header}")
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise TrainingDataError(f"{path}, line {start}: malformed CSV ({exc})") from None
            except UnicodeDecodeError as exc:
                raise TrainingDataError(f"{path}, near line {start}: not UTF-8 text ({exc.reason})") from None
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise TrainingDataError(
                    f"{path}, line {start}: {len(row)} fields but the header has {len(header)} columns"
                )
            yield start, dict(zip(header, row))


def _format_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise TrainingDataError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl or .csv")


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"no such file: {p}")
    return p


def _parse_bool(value: str, where: str) -> float:
    if value == "True":
        return 1.0
    if value == "False":
        return 0.0
    raise TrainingDataError(f"{where}: expected True or False, got {value!r}")


def _parse_score(value: object, where: str, text: bool = True) -> float | None:
    """A score from a CSV cell (``text``) or a JSON value (numbers, booleans, null only); ``None`` if missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        score = float(value)
    elif isinstance(value, str) and text:
        cell = value.strip()
        if not cell:
            return None
        if cell.lower() in ("true", "false"):
            return 1.0 if cell.lower() == "true" else 0.0
        try:
            score = float(cell)
        except ValueError:
            raise TrainingDataError(f"{where}: non-numeric score {value!r}") from None
    else:
        raise TrainingDataError(f"{where}: non-numeric score {value!r}")
    if not math.isfinite(score):
        raise TrainingDataError(f"{where}: score is not finite ({value!r})")
    return score


def _prompt_of(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TrainingDataError(f"{where}: missing or empty prompt")
    return value


# ---- evaluation benchmarks -------------------------------------------------------------------------------
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


@functools.lru_cache(maxsize=16)
def _contaminated(root: str, name: str, include_train_prompts: bool) -> frozenset[str]:
    folder = _BENCH_DIRS[name]
    path = _file(root, "routellm-evals", folder, "contaminated_prompts.jsonl")
    out: set[str] = set()
    for line_no, obj in _iter_jsonl(path):
        keys = ("eval_prompt", "train_prompt") if include_train_prompts else ("eval_prompt",)
        for key in keys:
            value = obj.get(key)
            if key == "eval_prompt" and not isinstance(value, str):
                raise TrainingDataError(f"{path}, line {line_no}: no eval_prompt string")
            if isinstance(value, str) and value.strip():
                out.add(value.strip())
    return frozenset(out)


def _check_bench_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in BENCHMARKS:
        raise TrainingDataError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    return key


def contaminated_prompts(name: str, *, include_train_prompts: bool = False) -> frozenset[str]:
    """The benchmark's contaminated prompts (``eval_prompt`` of its ``contaminated_prompts.jsonl``), stripped.

    Args:
        name: ``"mmlu"``, ``"gsm8k"`` or ``"mt_bench"``.
        include_train_prompts: Also include the matching training-side texts (``train_prompt``).
    """
    return _contaminated(_root(), _check_bench_name(name), include_train_prompts)


def drop_contaminated(records: Sequence[R], names: Sequence[str]) -> list[R]:
    """Drop battles or golden labels whose prompt is listed as contaminated for any of ``names``.

    Both sides of each contamination pair (the eval prompt and the training prompt that matched it) are
    dropped, after stripping whitespace.
    """
    banned: set[str] = set()
    for name in names:
        banned |= contaminated_prompts(name, include_train_prompts=True)
    return [r for r in records if r.prompt.strip() not in banned]


@functools.lru_cache(maxsize=4)
def _mmlu(root: str, drop: bool) -> Benchmark:
    folder = Path(root, "routellm-evals", "mmlu", "responses")
    files = sorted(folder.glob("mmlu_*.csv")) if folder.is_dir() else []
    if not files:
        raise DataNotFoundError(f"no MMLU response files (mmlu_*.csv) in {folder}")
    banned = _contaminated(root, "mmlu", False) if drop else frozenset()
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
                strong.append(_parse_bool(row[is_], where))
                weak.append(_parse_bool(row[iw], where))
                prompts.append(prompt)
    return Benchmark("mmlu", tuple(prompts), np.array(strong), np.array(weak))


@functools.lru_cache(maxsize=4)
def _gsm8k(root: str, drop: bool) -> Benchmark:
    path = _file(root, "routellm-evals", "gsm8k", "gsm8k_responses.csv")
    banned = _contaminated(root, "gsm8k", False) if drop else frozenset()
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for line, row in _iter_csv(path, ("prompt", STRONG, WEAK)):
        if row["prompt"].strip() in banned:
            continue
        where = f"{path}, line {line}"
        strong.append(_parse_bool(row[STRONG], where))
        weak.append(_parse_bool(row[WEAK], where))
        prompts.append(row["prompt"])
    return Benchmark("gsm8k", tuple(prompts), np.array(strong), np.array(weak))


@functools.lru_cache(maxsize=4)
def _mt_bench(root: str, drop: bool) -> Benchmark:
    qpath = _file(root, "routellm-evals", "mt_bench", "question.jsonl")
    jpath = _file(root, "routellm-evals", "mt_bench", "judgements.jsonl")
    banned = _contaminated(root, "mt_bench", False) if drop else frozenset()
    grades: dict[tuple[str, str], list[float]] = {}
    for line_no, obj in _iter_jsonl(jpath):
        where = f"{jpath}, line {line_no}"
        score = _parse_score(obj.get("score"), where, text=False)
        if score is None or "question_id" not in obj or "model" not in obj:
            raise TrainingDataError(f"{where}: a judgement needs question_id, model and a numeric score")
        if score < 0:  # FastChat writes -1 when the judge's grade could not be parsed
            continue
        grades.setdefault((str(obj["question_id"]), str(obj["model"])), []).append(score)
    prompts: list[str] = []
    ids: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for line_no, obj in _iter_jsonl(qpath):
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
        prompts.append(_prompt_of(turns[0], f"{qpath}, line {line_no}"))
        ids.append(qid)
    return Benchmark("mt_bench", tuple(prompts), np.array(strong), np.array(weak), ids=tuple(ids))


def load_mmlu(drop_contaminated: bool = True) -> Benchmark:
    """MMLU (57 subjects) with GPT-4 and Mixtral correctness: 14,037 prompts after decontamination."""
    return _mmlu(_root(), drop_contaminated)


def load_gsm8k(drop_contaminated: bool = True) -> Benchmark:
    """GSM8K test set with GPT-4 and Mixtral correctness: 1,307 prompts after decontamination."""
    return _gsm8k(_root(), drop_contaminated)


def load_mt_bench(drop_contaminated: bool = True) -> Benchmark:
    """MT Bench: turn-1 routing texts, mean GPT-4 grade over both turns; 72 questions after decontamination."""
    return _mt_bench(_root(), drop_contaminated)


def load_benchmark(name: str, drop_contaminated: bool = True) -> Benchmark:
    """Load ``"mmlu"``, ``"gsm8k"`` or ``"mt_bench"`` (``"mt-bench"`` also accepted).

    Raises:
        TrainingDataError: Unknown name or malformed data.
    """
    key = _check_bench_name(name)
    loader = {"mmlu": load_mmlu, "gsm8k": load_gsm8k, "mt_bench": load_mt_bench}[key]
    return loader(drop_contaminated)


# ---- golden labels from the shared data -------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _bench_labels(root: str, name: str, drop: bool) -> tuple[GoldenLabel, ...]:
    bench = {"mmlu": _mmlu, "gsm8k": _gsm8k, "mt_bench": _mt_bench}[name](root, drop)
    return tuple(bench.golden_labels(source=name))


def golden_labels_mmlu(drop_contaminated: bool = True) -> list[GoldenLabel]:
    """MMLU as golden labels: GPT-4 and Mixtral correctness (0/1), source ``"mmlu"``."""
    return list(_bench_labels(_root(), "mmlu", drop_contaminated))


def golden_labels_gsm8k(drop_contaminated: bool = True) -> list[GoldenLabel]:
    """GSM8K as golden labels: GPT-4 and Mixtral correctness (0/1), source ``"gsm8k"``."""
    return list(_bench_labels(_root(), "gsm8k", drop_contaminated))


def golden_labels_mt_bench(drop_contaminated: bool = True) -> list[GoldenLabel]:
    """MT Bench as golden labels: turn-1 prompt, mean judge grade over both turns, source ``"mt_bench"``."""
    return list(_bench_labels(_root(), "mt_bench", drop_contaminated))


@functools.lru_cache(maxsize=4)
def _dcrouter(root: str, split: str) -> tuple[GoldenLabel, ...]:
    path = _file(root, "llmrouter-dcrouter", f"{split}.json")
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise TrainingDataError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, list):
        raise TrainingDataError(f"{path}: expected a JSON list of records")
    labels: list[GoldenLabel] = []
    for i, item in enumerate(data):
        where = f"{path}, record {i}"
        if not isinstance(item, dict) or not isinstance(item.get("scores"), dict):
            raise TrainingDataError(f"{where}: expected {{question, scores: {{model: score}}}}")
        prompt = _prompt_of(item.get("question"), where)
        scores = {}
        for model, value in item["scores"].items():
            score = _parse_score(value, f"{where}, model {model!r}", text=False)
            if score is not None:
                scores[str(model)] = score
        if scores:
            labels.append(GoldenLabel(prompt=prompt, scores=scores, source="dcrouter"))
    return tuple(labels)


def golden_labels_dcrouter(split: str = "train") -> list[GoldenLabel]:
    """LLMRouter's DC-Router data: 9 open models over 14 tasks; ``split`` is ``"train"`` (5,608) or ``"test"`` (500).

    Note: 119 test questions also occur in the train split.
    """
    if split not in ("train", "test"):
        raise TrainingDataError(f"dcrouter split must be 'train' or 'test', got {split!r}")
    return list(_dcrouter(_root(), split))


def format_multiple_choice(question: str, options: Sequence[str]) -> str:
    """Format a question MMLU's way: the question, lettered options ``A. ...``, then ``Answer:``."""
    if len(options) > len(_LETTERS):
        raise TrainingDataError(f"too many options ({len(options)}) to letter")
    lines = [question.strip(), *(f"{_LETTERS[i]}. {str(opt).strip()}" for i, opt in enumerate(options))]
    return "\n".join([*lines, "Answer:"])


@functools.lru_cache(maxsize=4)
def _mmlu_pro(root: str, canonical: bool) -> tuple[GoldenLabel, ...]:
    qpath = _file(root, "mmlu-pro", "questions.jsonl")
    cpath = _file(root, "mmlu-pro", "correctness.csv")
    questions: dict[str, str] = {}
    for line_no, obj in _iter_jsonl(qpath):
        where = f"{qpath}, line {line_no}"
        options = obj.get("options")
        if not isinstance(options, list):
            raise TrainingDataError(f"{where}: 'options' must be a list")
        questions[str(obj.get("question_id"))] = format_multiple_choice(_prompt_of(obj.get("question"), where), options)
    labels: list[GoldenLabel] = []
    with cpath.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if not header or header[0] != "question_id":
            raise TrainingDataError(f"{cpath}: the first column must be question_id")
        models = [MMLU_PRO_ALIASES.get(m, m) if canonical else m for m in header[1:]]
        for row in reader:
            where = f"{cpath}, line {reader.line_num}"
            if len(row) != len(header):
                raise TrainingDataError(f"{where}: {len(row)} fields but the header has {len(header)} columns")
            prompt = questions.get(row[0])
            if prompt is None:
                raise TrainingDataError(f"{where}: question_id {row[0]!r} is not in {qpath.name}")
            scores = {}
            for model, cell in zip(models, row[1:]):
                if cell:
                    if cell not in ("0", "1"):
                        raise TrainingDataError(f"{where}: expected 0, 1 or empty for {model!r}, got {cell!r}")
                    scores[model] = float(cell)
            if scores:
                labels.append(GoldenLabel(prompt=prompt, scores=scores, source="mmlu_pro"))
    return tuple(labels)


def golden_labels_mmlu_pro(canonical_names: bool = True) -> list[GoldenLabel]:
    """MMLU-Pro: 12,032 ten-option questions (MMLU-formatted prompt), 0/1 correctness of 30 models.

    Args:
        canonical_names: Rename models that are reference models under another name
            (:data:`MMLU_PRO_ALIASES`: ``Mixtral-8x7B-Instruct-v0.1`` -> ``mistralai/Mixtral-8x7B-Instruct-v0.1``).
    """
    return list(_mmlu_pro(_root(), canonical_names))


# ---- users' own files ------------------------------------------------------------------------------------
def _parse_winner(raw: object, model_a: str, model_b: str, where: str) -> Winner:
    if not isinstance(raw, str) or not raw.strip():
        raise TrainingDataError(f"{where}: missing winner")
    value = raw.strip()
    if value in ("model_a", "model_b", "tie"):
        return value  # type: ignore[return-value]
    if value == model_a:
        return "model_a"
    if value == model_b:
        return "model_b"
    if _TIE_RE.fullmatch(value):
        return "tie"
    raise TrainingDataError(
        f"{where}: unknown winner {raw!r} (expected model_a, model_b, tie, tie (bothbad), "
        f"or one of the two model names {model_a!r} / {model_b!r})"
    )


def _battle_from(obj: dict[str, Any], where: str, source: str | None) -> Battle:
    prompt = _prompt_of(obj.get("prompt"), where)
    names = []
    for key in ("model_a", "model_b"):
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            raise TrainingDataError(f"{where}: missing {key}")
        names.append(value.strip())
    model_a, model_b = names
    if model_a == model_b:
        raise TrainingDataError(f"{where}: model_a and model_b are both {model_a!r}; a battle needs two models")
    winner = _parse_winner(obj.get("winner"), model_a, model_b, where)
    row_source = obj.get("source")
    src = row_source if isinstance(row_source, str) and row_source.strip() else source
    try:
        return Battle(prompt=prompt, model_a=model_a, model_b=model_b, winner=winner, source=src)
    except ValidationError as exc:
        raise TrainingDataError(f"{where}: invalid battle ({exc.errors()[0]['msg']})") from None


def load_battles(path: str | os.PathLike[str], source: str | None = None) -> list[Battle]:
    """Read battles from a JSONL or CSV file (schema in the module docstring).

    Args:
        path: ``.jsonl`` or ``.csv`` file.
        source: Source name for rows that carry none.

    Raises:
        TrainingDataError: A malformed row (the message names the file and line), or no battles at all.
    """
    p = _existing(path)
    kind = _format_suffix(p)
    battles: list[Battle] = []
    rows: Iterator[tuple[int, dict[str, Any]]] = (
        _iter_jsonl(p) if kind == "jsonl" else _iter_csv(p, required=_BATTLE_KEYS)
    )
    for line, obj in rows:
        battles.append(_battle_from(obj, f"{p}, line {line}", source))
    if not battles:
        raise TrainingDataError(f"{p}: no battles in the file")
    return battles


def _read_golden(path: Path, source: str | None) -> list[tuple[int, GoldenLabel]]:
    kind = _format_suffix(path)
    out: list[tuple[int, GoldenLabel]] = []
    if kind == "jsonl":
        for line, obj in _iter_jsonl(path):
            where = f"{path}, line {line}"
            prompt = _prompt_of(obj.get("prompt"), where)
            raw = obj.get("scores")
            if not isinstance(raw, dict):
                raise TrainingDataError(f"{where}: 'scores' must be an object {{model: score}}")
            scores = {}
            for model, value in raw.items():
                score = _parse_score(value, f"{where}, model {model!r}", text=False)
                if score is not None:
                    scores[str(model)] = score
            if not scores:
                raise TrainingDataError(f"{where}: no model scores")
            row_source = obj.get("source")
            src = row_source if isinstance(row_source, str) and row_source.strip() else source
            out.append((line, GoldenLabel(prompt=prompt, scores=scores, source=src)))
    else:
        for line, row in _iter_csv(path, required=("prompt",)):
            where = f"{path}, line {line}"
            prompt = _prompt_of(row["prompt"], where)
            scores = {}
            for model, cell in row.items():
                if model in _LABEL_META_COLUMNS:
                    continue
                score = _parse_score(cell, f"{where}, column {model!r}")
                if score is not None:
                    scores[model] = score
            if not scores:
                raise TrainingDataError(f"{where}: no model scores")
            src = row.get("source", "").strip() or source
            out.append((line, GoldenLabel(prompt=prompt, scores=scores, source=src)))
    if not out:
        raise TrainingDataError(f"{path}: no golden labels in the file")
    return out


def load_golden_labels(path: str | os.PathLike[str], source: str | None = None) -> list[GoldenLabel]:
    """Read golden labels from a JSONL or CSV file (schema in the module docstring).

    Args:
        path: ``.jsonl`` or ``.csv`` file.
        source: Source name for rows that carry none.

    Raises:
        TrainingDataError: A malformed row (the message names the file and line), or no labels at all.
    """
    return [label for _, label in _read_golden(_existing(path), source)]


def load_benchmark_file(
    path: str | os.PathLike[str], strong_model: str, weak_model: str, name: str | None = None
) -> Benchmark:
    """Build a :class:`Benchmark` from a golden-label file; every row must score both models.

    Raises:
        TrainingDataError: A malformed row, or a row without a score for ``strong_model`` or ``weak_model``.
    """
    p = _existing(path)
    if strong_model == weak_model:
        raise TrainingDataError(f"strong and weak model are both {strong_model!r}; name two different models")
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for line, label in _read_golden(p, None):
        for model in (strong_model, weak_model):
            if model not in label.scores:
                raise TrainingDataError(f"{p}, line {line}: no score for {model!r}")
        prompts.append(label.prompt)
        strong.append(label.scores[strong_model])
        weak.append(label.scores[weak_model])
    return Benchmark(name or p.stem, tuple(prompts), np.array(strong), np.array(weak), strong_model, weak_model)


# ---- honest leave-one-benchmark-out ------------------------------------------------------------------------
_WORD_RE = re.compile(r"\w+")
_OPTION_RE = re.compile(r"\n\s*A[.)]\s")
#: Eval texts with at least this many words also match when contained in a training prompt.
_CONTAIN_MIN_WORDS = 10
_HASH_BASE = 1_000_003
_MASK64 = (1 << 64) - 1


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _stem(text: str) -> str:
    """The question part of a multiple-choice prompt (before the ``A.`` option line)."""
    m = _OPTION_RE.search(text)
    return text[: m.start()] if m else text


def _anchor(words: Sequence[str]) -> int:
    """Hash of the first ``_CONTAIN_MIN_WORDS`` words, equal to :func:`_window_hashes` at that window."""
    h = 0
    for w in words[:_CONTAIN_MIN_WORDS]:
        h = (h * _HASH_BASE + (hash(w) & _MASK64)) & _MASK64
    return h


def _window_hashes(word_lists: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every window of ``_CONTAIN_MIN_WORDS`` words inside each list, and each window's list index."""
    k = _CONTAIN_MIN_WORDS
    lengths = np.fromiter((len(w) for w in word_lists), dtype=np.int64, count=len(word_lists))
    total = int(lengths.sum())
    if total < k:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    t = np.fromiter((hash(w) for ws in word_lists for w in ws), dtype=np.int64, count=total).view(np.uint64)
    doc = np.repeat(np.arange(len(word_lists)), lengths)
    n = total - k + 1
    h = np.zeros(n, dtype=np.uint64)
    base = np.uint64(_HASH_BASE)
    for j in range(k):
        h = h * base + t[j : j + n]
    inside = doc[:n] == doc[k - 1 :]
    return h[inside], doc[:n][inside]


class _EvalIndex:
    """Normalised eval texts: exact word-sequence matches, plus containment for texts of 10+ words."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.exact: set[str] = set()
        self.anchors: dict[int, list[str]] = {}
        for text in texts:
            for part in {text, _stem(text)}:
                words = _words(part)
                if not words:
                    continue
                key = " ".join(words)
                self.exact.add(key)
                if len(words) >= _CONTAIN_MIN_WORDS:
                    self.anchors.setdefault(_anchor(words), []).append(key)
        self.anchor_array = np.fromiter(self.anchors, dtype=np.uint64, count=len(self.anchors))

    def matches(self, prompts: Sequence[str]) -> np.ndarray:
        """Boolean mask: the prompt equals, or contains, an eval text (word sequences, case-folded)."""
        word_lists = [_words(p) for p in prompts]
        hit = np.zeros(len(prompts), dtype=bool)
        for i, (prompt, words) in enumerate(zip(prompts, word_lists)):
            stem = _stem(prompt)
            hit[i] = " ".join(words) in self.exact or (stem is not prompt and " ".join(_words(stem)) in self.exact)
        hashes, docs = _window_hashes(word_lists)
        found = np.flatnonzero(np.isin(hashes, self.anchor_array))
        joined: dict[int, str] = {}
        for pos in found:
            d = int(docs[pos])
            if hit[d]:
                continue
            if d not in joined:
                joined[d] = " " + " ".join(word_lists[d]) + " "
            hit[d] = any(f" {key} " in joined[d] for key in self.anchors[int(hashes[pos])])
        return hit


@functools.lru_cache(maxsize=8)
def _eval_index(root: str, names: tuple[str, ...]) -> _EvalIndex:
    texts: list[str] = []
    for name in names:
        bench = {"mmlu": _mmlu, "gsm8k": _gsm8k, "mt_bench": _mt_bench}[name](root, False)
        texts.extend(bench.prompts)
    return _EvalIndex(texts)


def drop_eval_overlap(records: Sequence[R], names: Sequence[str]) -> list[R]:
    """Drop battles or golden labels whose prompt duplicates an eval prompt of the named benchmarks.

    Matching is on lower-cased word sequences (punctuation and whitespace ignored): a record is dropped when
    its prompt, or the question part of a multiple-choice prompt (before its ``A.`` line), equals an eval
    prompt or its question part, or when it contains an eval text of 10+ words (e.g. a GSM8K question wrapped
    in an instruction, an MMLU question re-optioned in MMLU-Pro). Contaminated-list entries are handled by
    :func:`drop_contaminated`.
    """
    keys = tuple(sorted({_check_bench_name(n) for n in names}))
    if not keys or not records:
        return list(records)
    mask = _eval_index(_root(), keys).matches([r.prompt for r in records])
    return [r for r, bad in zip(records, mask) if not bad]


# ---- training battles from named sources -----------------------------------------------------------------
def _source_labels(name: str) -> list[GoldenLabel]:
    loaders = {
        "mmlu": golden_labels_mmlu,
        "gsm8k": golden_labels_gsm8k,
        "mt_bench": golden_labels_mt_bench,
        "dcrouter": golden_labels_dcrouter,
        "mmlu_pro": golden_labels_mmlu_pro,
    }
    return loaders[name]()


@functools.lru_cache(maxsize=64)
def _pair_table(n_models: int) -> tuple[tuple[int, int], ...]:
    return tuple(itertools.combinations(range(n_models), 2))


def _sampled_battles(labels: Sequence[GoldenLabel], max_pairs: int | None, rng: random.Random) -> list[Battle]:
    battles: list[Battle] = []
    for label in labels:
        n_models = len(label.scores)
        n_pairs = n_models * (n_models - 1) // 2
        if max_pairs is None or n_pairs <= max_pairs:
            battles.extend(golden_to_battles([label]))
            continue
        names = sorted(label.scores)
        table = _pair_table(n_models)
        for j in sorted(rng.sample(range(n_pairs), max_pairs)):
            a, b = names[table[j][0]], names[table[j][1]]
            sa, sb = label.scores[a], label.scores[b]
            winner: Winner = "model_a" if sa > sb else "model_b" if sb > sa else "tie"
            battles.append(Battle(prompt=label.prompt, model_a=a, model_b=b, winner=winner, source=label.source))
    return battles


@functools.lru_cache(maxsize=4)
def _training_battles(
    root: str, sources: tuple[str, ...], exclude: tuple[str, ...], max_pairs: int | None, seed: int
) -> tuple[Battle, ...]:
    rng = random.Random(seed)
    battles: list[Battle] = []
    for name in sources:
        if name in exclude:
            continue
        labels = _source_labels(name)
        if exclude:
            labels = drop_eval_overlap(drop_contaminated(labels, exclude), exclude)
        battles.extend(_sampled_battles(labels, max_pairs, rng))
    return tuple(battles)


def training_battles(
    sources: Sequence[str],
    exclude: Sequence[str] = (),
    *,
    max_pairs_per_prompt: int | None = 8,
    seed: int = 0,
) -> list[Battle]:
    """Battles from named shared sources, for training with honest leave-one-benchmark-out.

    Golden labels become battles through :func:`~routellm_core.records.golden_to_battles` (higher score wins,
    equal scores tie). A prompt with ``m`` scored models has ``m(m-1)/2`` pairs: 1 for MMLU/GSM8K/MT Bench,
    36 for DC-Router (9 models), up to 435 for MMLU-Pro (30 models). To keep training sets manageable, a prompt
    with more than ``max_pairs_per_prompt`` pairs gets that many pairs drawn uniformly without replacement
    (seeded): with the default 8, DC-Router gives ~45k battles and MMLU-Pro ~96k, each model still meeting
    every other across prompts. ``None`` keeps every pair.

    Args:
        sources: Any of ``"mmlu"``, ``"gsm8k"``, ``"mt_bench"``, ``"dcrouter"`` (train split), ``"mmlu_pro"``.
        exclude: Benchmarks held out for evaluation (``"mmlu"``, ``"gsm8k"``, ``"mt_bench"``). Their own source
            is skipped, and from every other source we drop prompts in their contamination lists
            (:func:`drop_contaminated`) and duplicates of their eval prompts (:func:`drop_eval_overlap`).
        max_pairs_per_prompt: Pairs sampled per prompt when a prompt has more; ``None`` for all pairs.
        seed: Seed of the pair sampling.

    Raises:
        TrainingDataError: Unknown source or benchmark name, or a bad ``max_pairs_per_prompt``.
    """
    srcs = tuple(dict.fromkeys(s.strip().lower().replace("-", "_") for s in sources))
    unknown = [s for s in srcs if s not in TRAINING_SOURCES]
    if unknown or not srcs:
        raise TrainingDataError(f"unknown or no training sources {unknown or list(sources)}; use {TRAINING_SOURCES}")
    excl = tuple(sorted({_check_bench_name(e) for e in exclude}))
    if max_pairs_per_prompt is not None and (isinstance(max_pairs_per_prompt, bool) or max_pairs_per_prompt < 1):
        raise TrainingDataError(f"max_pairs_per_prompt must be a positive int or None, got {max_pairs_per_prompt!r}")
    return list(_training_battles(_root(), srcs, excl, max_pairs_per_prompt, seed))


__all__ = [
    "BENCHMARKS",
    "DATA_DIR_ENV",
    "MMLU_PRO_ALIASES",
    "STRONG",
    "TRAINING_SOURCES",
    "WEAK",
    "Benchmark",
    "DataNotFoundError",
    "contaminated_prompts",
    "data_dir",
    "drop_contaminated",
    "drop_eval_overlap",
    "format_multiple_choice",
    "golden_labels_dcrouter",
    "golden_labels_gsm8k",
    "golden_labels_mmlu",
    "golden_labels_mmlu_pro",
    "golden_labels_mt_bench",
    "load_battles",
    "load_benchmark",
    "load_benchmark_file",
    "load_golden_labels",
    "load_gsm8k",
    "load_mmlu",
    "load_mt_bench",
    "training_battles",
]
