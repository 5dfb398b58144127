"""What the shared data holds, by name: benchmarks, training sources, reference models and their aliases.

Every loader checks names here, so a typo fails the same way everywhere (a :class:`TrainingDataError` listing the
accepted names).
"""

from __future__ import annotations

from collections.abc import Sequence

from routellm_core.errors import TrainingDataError

#: RouteLLM's reference pair: the router predicts whether the first beats the second.
STRONG_REFERENCE = "gpt-4-1106-preview"
WEAK_REFERENCE = "mistralai/Mixtral-8x7B-Instruct-v0.1"

#: RouteLLM's strong reference model (GPT-4 Turbo).
STRONG = STRONG_REFERENCE
#: RouteLLM's weak reference model (Mixtral 8x7B Instruct).
WEAK = WEAK_REFERENCE

#: RouteLLM's three evaluation benchmarks (``routellm-evals/``), scored for :data:`STRONG` and :data:`WEAK`.
ROUTELLM_BENCHMARKS: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench")
#: ZeroEval's benchmarks (``zeroeval/``), each with its own reference pair (:data:`~routellm_core.data.ZEROEVAL_PAIRS`).
ZEROEVAL_BENCHMARKS: tuple[str, ...] = ("crux", "math_l5")
#: Every benchmark :func:`~routellm_core.data.load_benchmark` accepts and ``exclude=`` can leave out of training.
BENCHMARKS: tuple[str, ...] = ROUTELLM_BENCHMARKS + ZEROEVAL_BENCHMARKS
#: Training sources, as accepted by :func:`~routellm_core.data.training_battles`.
TRAINING_SOURCES: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench", "dcrouter", "mmlu_pro", "arena", "crux", "math_l5")

#: MMLU-Pro model names mapped onto the reference names they denote, so all sources share one model space.
MMLU_PRO_ALIASES: dict[str, str] = {"Mixtral-8x7B-Instruct-v0.1": WEAK}
#: ZeroEval model names mapped onto the reference names they denote (only Mixtral: ZeroEval's GPT-4 Turbo is
#: ``gpt-4-turbo-2024-04-09``, a later model than the reference ``gpt-4-1106-preview``).
ZEROEVAL_ALIASES: dict[str, str] = {"Mixtral-8x7B-Instruct-v0.1": WEAK}

#: Chatbot Arena models counted as strong by :func:`~routellm_core.evaluation.metrics.evaluate_battles`: the GPT-4-class
#: top tier of the 2023 Arena the battles come from.
ARENA_STRONG_MODELS: frozenset[str] = frozenset({"gpt-4", "claude-1", "claude-2"})
#: Chatbot Arena models counted as weak: every open-weights model of 14B parameters or fewer in the battles.
#: The middle (gpt-3.5-turbo, claude-instant-1, palm-2 and the 30-70B open models) is neither and is left out.
ARENA_WEAK_MODELS: frozenset[str] = frozenset(
    {
        "alpaca-13b",
        "chatglm-6b",
        "chatglm2-6b",
        "dolly-v2-12b",
        "fastchat-t5-3b",
        "gpt4all-13b-snoozy",
        "koala-13b",
        "llama-13b",
        "llama-2-7b-chat",
        "llama-2-13b-chat",
        "mpt-7b-chat",
        "oasst-pythia-12b",
        "RWKV-4-Raven-14B",
        "stablelm-tuned-alpha-7b",
        "vicuna-7b",
        "vicuna-13b",
        "wizardlm-13b",
    }
)


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def check_benchmark_name(name: str) -> str:
    """The canonical benchmark name (``"mt-bench"`` -> ``"mt_bench"``, ``"math-l5"`` -> ``"math_l5"``).

    Raises:
        TrainingDataError: Not one of :data:`BENCHMARKS`.
    """
    key = _key(name)
    if key not in BENCHMARKS:
        raise TrainingDataError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    return key


def check_source_names(sources: Sequence[str]) -> tuple[str, ...]:
    """Canonical, de-duplicated training-source names, in the given order.

    Raises:
        TrainingDataError: No source, or one that is not in :data:`TRAINING_SOURCES`.
    """
    srcs = tuple(dict.fromkeys(_key(s) for s in sources))
    unknown = [s for s in srcs if s not in TRAINING_SOURCES]
    if unknown or not srcs:
        raise TrainingDataError(f"unknown or no training sources {unknown or list(sources)}; use {TRAINING_SOURCES}")
    return srcs
