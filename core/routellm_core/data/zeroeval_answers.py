"""ZeroEval's graded answers (``zeroeval/<task>_answers.csv`` and friends) as escalation tables.

For each task (``gsm``, ``crux``, ``math-l5``) and model: the final answer exactly as the grader compared it (None
where no answer was extracted, per ``no_answer.csv``, or where the model has no row), its 0/1 correctness and its
raw output length. ``<task>_outputs_cheap.jsonl.gz`` adds the raw outputs of about ten cheap models.
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from routellm_core.data.workspace import data_file, root
from routellm_core.errors import InvalidInputError, TrainingDataError

#: ZeroEval tasks with answer files.
ZEROEVAL_ANSWER_TASKS: tuple[str, ...] = ("gsm", "crux", "math-l5")
#: How each task's answers compare (the kinds of ``routellm_core.escalation.answers``): the grader's own rule.
ZEROEVAL_ANSWER_KINDS: dict[str, str] = {"gsm": "number", "math-l5": "number", "crux": "exact"}


@dataclass(frozen=True, eq=False)
class AnswerTable:
    """One ZeroEval task's answers, correctness and output lengths, aligned by prompt.

    Attributes:
        task: Task name.
        prompts: The prompts.
        answers: Model -> final answer per prompt (None: none extracted, or no row).
        correct: Model -> 0/1 per prompt (None: no row).
        output_chars: Model -> raw output length per prompt (None: no row).
        outputs: Model -> raw output per prompt, for the cheap models whose outputs are kept (None: none).
    """

    task: str
    prompts: tuple[str, ...]
    answers: dict[str, list[str | None]]
    correct: dict[str, list[float | None]]
    output_chars: dict[str, list[float | None]]
    outputs: dict[str, list[str | None]]

    @property
    def models(self) -> list[str]:
        """Models with a complete row set (every prompt graded)."""
        return [m for m, v in self.correct.items() if all(x is not None for x in v)]


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][0] != "prompt":
        raise TrainingDataError(f"{path}: expected a header starting with 'prompt'")
    return rows[0], rows[1:]


@functools.lru_cache(maxsize=4)
def _load(folder: str, task: str) -> AnswerTable:
    base = Path(folder)
    head_c, rows_c = _read(data_file(folder, "zeroeval", f"{task}_correctness.csv"))
    head_a, rows_a = _read(data_file(folder, "zeroeval", f"{task}_answers.csv"))
    head_o, rows_o = _read(data_file(folder, "zeroeval", f"{task}_output_chars.csv"))
    prompts = tuple(r[0] for r in rows_c)
    if tuple(r[0] for r in rows_a) != prompts or tuple(r[0] for r in rows_o) != prompts:
        raise TrainingDataError(f"zeroeval/{task}: the answer, correctness and length files list different prompts")
    missing: set[tuple[str, str]] = set()
    with data_file(folder, "zeroeval", "no_answer.csv").open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            if rec["task"] == task:
                missing.add((rec["model"], rec["prompt"]))
    correct: dict[str, list[float | None]] = {}
    answers: dict[str, list[str | None]] = {}
    chars: dict[str, list[float | None]] = {}
    for j, model in enumerate(head_c[1:], start=1):
        correct[model] = [None if r[j] == "" else float(r[j]) for r in rows_c]
    for j, model in enumerate(head_a[1:], start=1):
        graded = correct.get(model)
        answers[model] = [
            None if graded is None or graded[i] is None or (model, p) in missing else r[j]
            for i, (p, r) in enumerate(zip(prompts, rows_a))
        ]
    for j, model in enumerate(head_o[1:], start=1):
        chars[model] = [None if r[j] == "" else float(r[j]) for r in rows_o]
    outputs: dict[str, list[str | None]] = {}
    index = {p: i for i, p in enumerate(prompts)}
    cheap = base / "zeroeval" / f"{task}_outputs_cheap.jsonl.gz"
    if cheap.is_file():
        with gzip.open(cheap, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                i = index.get(rec["prompt"])
                if i is not None:
                    outputs.setdefault(rec["model"], [None] * len(prompts))[i] = rec["output"]
    return AnswerTable(task, prompts, answers, correct, chars, outputs)


def load_answer_table(task: str) -> AnswerTable:
    """ZeroEval task ``task``'s answer table from the shared data folder (cached).

    Raises:
        InvalidInputError: ``task`` is not one of :data:`ZEROEVAL_ANSWER_TASKS`.
        DataNotFoundError: A file is missing.
    """
    if task not in ZEROEVAL_ANSWER_TASKS:
        raise InvalidInputError(f"unknown ZeroEval task {task!r}; expected one of {list(ZEROEVAL_ANSWER_TASKS)}")
    return _load(root(), task)


__all__ = ["ZEROEVAL_ANSWER_KINDS", "ZEROEVAL_ANSWER_TASKS", "AnswerTable", "load_answer_table"]
