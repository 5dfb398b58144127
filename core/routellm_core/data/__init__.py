"""Data: the shared benchmarks and training sources, and users' own battle and golden-label files.

The shared data folder is ``$ROUTELLM_DATA_DIR``, else ``../shared/data`` beside the repository (or beside the
working directory). Modules, one job each:

- :mod:`~routellm_core.data.workspace`: finding the data folder (:func:`data_dir`, :class:`DataNotFoundError`).
- :mod:`~routellm_core.data.readers`: JSONL / CSV rows with line numbers, and the cell parsers.
- :mod:`~routellm_core.data.catalog`: names of benchmarks, sources, reference models, model aliases, Arena tiers.
- :mod:`~routellm_core.data.user_files`: the documented battle / golden-label file schema.
- :mod:`~routellm_core.data.corpora`: DC-Router, MMLU-Pro, ZeroEval (CRUX, MATH-L5) and Chatbot Arena.
- :mod:`~routellm_core.data.benchmarks`: :class:`Benchmark` and the evaluation sets (MMLU, GSM8K, MT Bench, CRUX,
  MATH-L5, or a user's golden-label file).
- :mod:`~routellm_core.data.contamination`: the benchmarks' published contamination lists.
- :mod:`~routellm_core.data.overlap`: copies of benchmark prompts inside other sources.
- :mod:`~routellm_core.data.sources`: :func:`training_battles` (and :func:`training_labels`, the same records
  unpaired) from named sources, with benchmarks left out.

Every malformed row raises :class:`~routellm_core.errors.TrainingDataError` naming the file, the line and the
problem. Files are parsed with ``json`` and ``csv`` only, never ``eval`` or pickle.
"""

from routellm_core.data.benchmarks import (
    ZEROEVAL_PAIRS,
    Benchmark,
    golden_labels_gsm8k,
    golden_labels_mmlu,
    golden_labels_mt_bench,
    load_benchmark,
    load_benchmark_file,
    load_crux,
    load_gsm8k,
    load_math_l5,
    load_mmlu,
    load_mt_bench,
)
from routellm_core.data.catalog import (
    ARENA_STRONG_MODELS,
    ARENA_WEAK_MODELS,
    BENCHMARKS,
    MMLU_PRO_ALIASES,
    ROUTELLM_BENCHMARKS,
    STRONG,
    TRAINING_SOURCES,
    WEAK,
    ZEROEVAL_ALIASES,
    ZEROEVAL_BENCHMARKS,
)
from routellm_core.data.contamination import contaminated_prompts, drop_contaminated
from routellm_core.data.corpora import (
    arena_battles,
    format_multiple_choice,
    golden_labels_crux,
    golden_labels_dcrouter,
    golden_labels_math_l5,
    golden_labels_mmlu_pro,
    golden_labels_zeroeval,
)
from routellm_core.data.overlap import drop_eval_overlap
from routellm_core.data.sources import training_battles, training_labels
from routellm_core.data.user_files import load_battles, load_golden_labels
from routellm_core.data.workspace import DATA_DIR_ENV, DataNotFoundError, data_dir

__all__ = [
    "ARENA_STRONG_MODELS",
    "ARENA_WEAK_MODELS",
    "BENCHMARKS",
    "DATA_DIR_ENV",
    "MMLU_PRO_ALIASES",
    "ROUTELLM_BENCHMARKS",
    "STRONG",
    "TRAINING_SOURCES",
    "WEAK",
    "ZEROEVAL_ALIASES",
    "ZEROEVAL_BENCHMARKS",
    "ZEROEVAL_PAIRS",
    "Benchmark",
    "DataNotFoundError",
    "arena_battles",
    "contaminated_prompts",
    "data_dir",
    "drop_contaminated",
    "drop_eval_overlap",
    "format_multiple_choice",
    "golden_labels_crux",
    "golden_labels_dcrouter",
    "golden_labels_gsm8k",
    "golden_labels_math_l5",
    "golden_labels_mmlu",
    "golden_labels_mmlu_pro",
    "golden_labels_mt_bench",
    "golden_labels_zeroeval",
    "load_battles",
    "load_benchmark",
    "load_benchmark_file",
    "load_crux",
    "load_golden_labels",
    "load_gsm8k",
    "load_math_l5",
    "load_mmlu",
    "load_mt_bench",
    "training_battles",
    "training_labels",
]
