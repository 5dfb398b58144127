"""The benchmarks' published contamination lists, and the filter that drops listed prompts from training data.

RouteLLM ships ``routellm-evals/<benchmark>/contaminated_prompts.jsonl`` for MMLU, GSM8K and MT Bench: pairs of an
eval prompt (``eval_prompt``) and the training prompt found to match it (``train_prompt``). Prompts are matched
after stripping surrounding whitespace. ZeroEval's benchmarks (``crux``, ``math_l5``) publish no such list: their
list is empty, and their copies in other sources are caught by :func:`~routellm_core.data.drop_eval_overlap`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TypeVar

from routellm_core.data.catalog import ROUTELLM_BENCHMARKS, check_benchmark_name
from routellm_core.data.readers import iter_jsonl
from routellm_core.data.records import Battle, GoldenLabel
from routellm_core.data.workspace import data_file, root
from routellm_core.errors import TrainingDataError

R = TypeVar("R", Battle, GoldenLabel)


@functools.lru_cache(maxsize=16)
def contaminated(root: str, name: str, include_train_prompts: bool) -> frozenset[str]:
    """The stripped contaminated prompts of benchmark ``name`` under the data folder ``root`` (cached)."""
    if name not in ROUTELLM_BENCHMARKS:
        return frozenset()
    path = data_file(root, "routellm-evals", name, "contaminated_prompts.jsonl")
    out: set[str] = set()
    for line_no, obj in iter_jsonl(path):
        keys = ("eval_prompt", "train_prompt") if include_train_prompts else ("eval_prompt",)
        for key in keys:
            value = obj.get(key)
            if key == "eval_prompt" and not isinstance(value, str):
                raise TrainingDataError(f"{path}, line {line_no}: no eval_prompt string")
            if isinstance(value, str) and value.strip():
                out.add(value.strip())
    return frozenset(out)


def contaminated_prompts(name: str, *, include_train_prompts: bool = False) -> frozenset[str]:
    """The benchmark's contaminated prompts (``eval_prompt`` of its ``contaminated_prompts.jsonl``), stripped.

    Args:
        name: A benchmark name (:data:`~routellm_core.data.BENCHMARKS`); ``crux`` and ``math_l5`` have no list
            and give an empty set.
        include_train_prompts: Also include the matching training-side texts (``train_prompt``).

    Raises:
        TrainingDataError: Unknown benchmark name.
    """
    return contaminated(root(), check_benchmark_name(name), include_train_prompts)


def drop_contaminated(records: Sequence[R], names: Sequence[str]) -> list[R]:
    """Drop battles or golden labels whose prompt is listed as contaminated for any of ``names``.

    Both sides of each contamination pair (the eval prompt and the training prompt that matched it) are
    dropped, after stripping whitespace.
    """
    banned: set[str] = set()
    for name in names:
        banned |= contaminated_prompts(name, include_train_prompts=True)
    return [r for r in records if r.prompt.strip() not in banned]
