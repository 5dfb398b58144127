"""The shared training corpora that are not RouteLLM benchmarks: DC-Router, MMLU-Pro, ZeroEval, Chatbot Arena.

- **DC-Router** (``llmrouter-dcrouter/{train,test}.json``): 9 open models over 14 tasks, scores in [0, 1].
- **MMLU-Pro** (``mmlu-pro/questions.jsonl`` + ``correctness.csv``): 12,032 ten-option questions formatted MMLU's
  way, 0/1 correctness of 30 models.
- **ZeroEval** (``zeroeval/crux_correctness.csv``, ``zeroeval/math-l5_correctness.csv``): 800 CRUXEval and 721
  MATH level-5 prompts, 0/1 correctness of 48 and 40 models; an empty cell means the model has no answer for that
  prompt, and the model is left out of that prompt's label (not scored 0).
- **Chatbot Arena** (``arena-battles/battles.jsonl``): 769 human-vote battles (first user turn, two of 29 models,
  ``model_a`` / ``model_b`` / ``tie`` / ``tie (bothbad)``; both ties become ``"tie"``).

Model names are the files' own, except models that are a reference model under another name
(:data:`~routellm_core.data.MMLU_PRO_ALIASES`, :data:`~routellm_core.data.ZEROEVAL_ALIASES`), so that every source
shares one model space. Loaders are cached; callers get fresh lists.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Mapping, Sequence

from routellm_core.data.catalog import MMLU_PRO_ALIASES, ZEROEVAL_ALIASES, ZEROEVAL_BENCHMARKS
from routellm_core.data.readers import iter_jsonl, parse_score, prompt_of
from routellm_core.data.records import Battle, GoldenLabel
from routellm_core.data.user_files import load_battles, read_golden
from routellm_core.data.workspace import data_file, root
from routellm_core.errors import TrainingDataError

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: ZeroEval benchmark name -> its correctness file in ``zeroeval/``.
ZEROEVAL_FILES: dict[str, str] = {"crux": "crux_correctness.csv", "math_l5": "math-l5_correctness.csv"}


@functools.lru_cache(maxsize=4)
def _dcrouter(root: str, split: str) -> tuple[GoldenLabel, ...]:
    path = data_file(root, "llmrouter-dcrouter", f"{split}.json")
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
        prompt = prompt_of(item.get("question"), where)
        scores = {}
        for model, value in item["scores"].items():
            score = parse_score(value, f"{where}, model {model!r}", text=False)
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
    return list(_dcrouter(root(), split))


def format_multiple_choice(question: str, options: Sequence[str]) -> str:
    """Format a question MMLU's way: the question, lettered options ``A. ...``, then ``Answer:``."""
    if len(options) > len(_LETTERS):
        raise TrainingDataError(f"too many options ({len(options)}) to letter")
    lines = [question.strip(), *(f"{_LETTERS[i]}. {str(opt).strip()}" for i, opt in enumerate(options))]
    return "\n".join([*lines, "Answer:"])


@functools.lru_cache(maxsize=4)
def _mmlu_pro(root: str, canonical: bool) -> tuple[GoldenLabel, ...]:
    qpath = data_file(root, "mmlu-pro", "questions.jsonl")
    cpath = data_file(root, "mmlu-pro", "correctness.csv")
    questions: dict[str, str] = {}
    for line_no, obj in iter_jsonl(qpath):
        where = f"{qpath}, line {line_no}"
        options = obj.get("options")
        if not isinstance(options, list):
            raise TrainingDataError(f"{where}: 'options' must be a list")
        questions[str(obj.get("question_id"))] = format_multiple_choice(prompt_of(obj.get("question"), where), options)
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
    return list(_mmlu_pro(root(), canonical_names))


# ---- ZeroEval ----------------------------------------------------------------------------------------------
def _renamed(scores: Mapping[str, float], aliases: Mapping[str, str]) -> dict[str, float]:
    return {aliases.get(model, model): score for model, score in scores.items()}


@functools.lru_cache(maxsize=8)
def zeroeval_labels(root: str, name: str, canonical: bool) -> tuple[GoldenLabel, ...]:
    """The golden labels of ZeroEval benchmark ``name`` under the data folder ``root`` (cached).

    Raises:
        DataNotFoundError: The file is missing.
        TrainingDataError: A malformed row, or a cell other than 0, 1 or empty.
    """
    path = data_file(root, "zeroeval", ZEROEVAL_FILES[name])
    aliases = ZEROEVAL_ALIASES if canonical else {}
    labels: list[GoldenLabel] = []
    for line, label in read_golden(path, name):
        bad = {m: s for m, s in label.scores.items() if s not in (0.0, 1.0)}
        if bad:
            raise TrainingDataError(f"{path}, line {line}: expected 0, 1 or empty correctness cells, got {bad}")
        labels.append(GoldenLabel(prompt=label.prompt, scores=_renamed(label.scores, aliases), source=name))
    return tuple(labels)


def _check_zeroeval(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in ZEROEVAL_BENCHMARKS:
        raise TrainingDataError(f"unknown ZeroEval benchmark {name!r}; expected one of {list(ZEROEVAL_BENCHMARKS)}")
    return key


def golden_labels_zeroeval(name: str, canonical_names: bool = True) -> list[GoldenLabel]:
    """ZeroEval per-model correctness: ``"crux"`` (800 prompts, 48 models) or ``"math_l5"`` (721 prompts, 40 models).

    A model with an empty cell has no answer for that prompt and is not in that label's scores.

    Args:
        name: ``"crux"`` or ``"math_l5"`` (``"math-l5"`` also accepted); it is also each label's source.
        canonical_names: Rename models that are reference models under another name
            (:data:`~routellm_core.data.ZEROEVAL_ALIASES`: ``Mixtral-8x7B-Instruct-v0.1`` ->
            ``mistralai/Mixtral-8x7B-Instruct-v0.1``).
    """
    return list(zeroeval_labels(root(), _check_zeroeval(name), canonical_names))


def golden_labels_crux(canonical_names: bool = True) -> list[GoldenLabel]:
    """CRUXEval output prediction (ZeroEval): 800 prompts, 0/1 correctness of 48 models, source ``"crux"``."""
    return golden_labels_zeroeval("crux", canonical_names)


def golden_labels_math_l5(canonical_names: bool = True) -> list[GoldenLabel]:
    """MATH level 5 (ZeroEval): 721 problems, 0/1 correctness of 40 models, source ``"math_l5"``."""
    return golden_labels_zeroeval("math_l5", canonical_names)


# ---- Chatbot Arena -----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _arena(root: str) -> tuple[Battle, ...]:
    return tuple(load_battles(data_file(root, "arena-battles", "battles.jsonl"), source="arena"))


def arena_battles() -> list[Battle]:
    """Chatbot Arena human-vote battles (FastChat's arena_hard_1k): 769 battles, 29 models, source ``"arena"``.

    ``tie`` and ``tie (bothbad)`` are both read as ``"tie"``. The prompt is the user's first turn (78 battles were
    multi-turn; the vote was cast on the whole conversation). Prompts of the reserved arena-bench-v1 set were
    removed when the file was built.
    """
    return list(_arena(root()))
