"""Shared helpers for the benchmarks: settings, machine description, seeded slices, JSON results."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO / "bench" / "results"
DEFAULT_PLOTS = REPO / "bench" / "plots"
SEED = 0
#: The default set's data caps (``--all-data`` lifts both).
DEFAULT_EVAL_LIMIT = 3000
DEFAULT_TRAIN_LIMIT = 2000


@dataclass
class Settings:
    """What one benchmark run measures and on how much data.

    Attributes:
        eval_limit: Prompts per benchmark (seeded subsample); ``None`` = the whole benchmark. The default set's
            3,000 subsamples MMLU only (the other benchmarks are smaller).
        train_limit: Unique training prompts kept per source (first N, deterministic); ``None`` = all. The
            default set's 2,000 keeps a cold run (every prompt embedded with MiniLM) under 30 minutes on 2 cores.
        mf_epochs: Maximum mf epochs.
        folds: Folds of the in-domain protocol.
        neural: Also train and evaluate the ``bert`` and ``causal_llm`` routers (slow on CPU).
        neural_train: Training examples (strong-vs-weak battles) sampled for the neural routers.
        neural_eval: Prompts per benchmark the neural routers are evaluated on (MT Bench whole).
        static: Include mf on the shipped static embedder (the ``fast`` router's recipe).
        results_dir: Where JSON results go.
        plots_dir: Where PNG curves go.
        quick: A smoke-test run (tiny slices; numbers meaningless).
        routers: Routers to run (``None``: all); baselines always run.
        benchmarks: Benchmarks of the quality protocols (any of ``routellm_core.data.BENCHMARKS``: the default
            three, plus ZeroEval's ``crux`` and ``math_l5``).
        sources: Training sources (any of ``routellm_core.data.TRAINING_SOURCES``: the default five, plus
            ``arena``, ``crux`` and ``math_l5``).
    """

    eval_limit: int | None = DEFAULT_EVAL_LIMIT
    train_limit: int | None = DEFAULT_TRAIN_LIMIT
    mf_epochs: int = 40
    folds: int = 5
    neural: bool = False
    neural_train: int = 600
    neural_eval: int = 300
    static: bool = True
    results_dir: Path = DEFAULT_RESULTS
    plots_dir: Path = DEFAULT_PLOTS
    quick: bool = False
    routers: tuple[str, ...] | None = None
    benchmarks: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench")
    sources: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench", "dcrouter", "mmlu_pro")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def all_data(self) -> bool:
        """Whether this run uses every benchmark prompt and every training prompt (``--all-data``)."""
        return self.eval_limit is None and self.train_limit is None and not self.quick

    @property
    def quality_file(self) -> str:
        """Results file of the quality run: all-data runs keep their own, beside the default set's."""
        return "quality_all_data.json" if self.all_data else "quality.json"

    def wants(self, router: str) -> bool:
        """Whether ``router`` is selected (all are when ``routers`` is None)."""
        return self.routers is None or router in self.routers

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["results_dir"] = str(self.results_dir)
        d["plots_dir"] = str(self.plots_dir)
        return d


def checkpoint_dir(settings: Settings) -> Path:
    """Where trained benchmark checkpoints live (outside the repo unless this is a quick run)."""
    if settings.quick:
        return settings.results_dir / "checkpoints"
    from routellm_core.paths import cache_dir

    return cache_dir() / "bench-checkpoints"


def machine_info() -> dict[str, Any]:
    """CPU count and model, memory, GPU, Python/torch versions, date: written next to every number."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, ValueError, subprocess.CalledProcessError):
        nproc = os.cpu_count() or 0
    gpu = None
    torch_version = None
    try:
        import torch

        torch_version = torch.__version__
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "nproc": nproc,
        "cpu_model": cpu_model,
        "memory_gb": mem_gb,
        "gpu": gpu,
        "python": sys.version.split()[0],
        "torch": torch_version,
        "platform": platform.platform(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_at_start": None if load is None else [round(x, 2) for x in load],
    }


def machine_line(m: dict[str, Any] | None) -> str:
    """One line describing the machine of a run (from :func:`machine_info`), for BENCHMARKS.md."""
    if not m:
        return "unknown machine"
    gpu = m.get("gpu") or "no GPU"
    load = m.get("loadavg_at_start")
    return (
        f"{m.get('nproc')} CPU cores (`nproc`), {m.get('cpu_model')}, {m.get('memory_gb')} GB RAM, {gpu}; "
        f"Python {m.get('python')}, torch {m.get('torch')}; {m.get('date_utc')}"
        + (f"; load average {load}" if load else "")
    )


def seeded_subset(n: int, limit: int | None, seed: int = SEED) -> np.ndarray:
    """Sorted indices of a seeded sample of ``limit`` out of ``n`` (all when ``limit`` is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False))


def sample_items(items: Sequence[Any], k: int | None, seed: int = SEED) -> list[Any]:
    """A seeded sample of ``k`` items in their original order (all of them when ``k`` is None or too big)."""
    if k is None or k >= len(items):
        return list(items)
    idx = sorted(random.Random(seed).sample(range(len(items)), k))
    return [items[i] for i in idx]


def percentile_ms(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile of durations in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(list(values)) * 1000.0, q))


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as pretty JSON (NaN written as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(data), indent=1, sort_keys=False) + "\n")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return None if not np.isfinite(f) else round(f, 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


class Timer:
    """``with Timer() as t: ...``; ``t.s`` is the elapsed wall time in seconds."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.s = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.start


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def replace_section(path: Path, heading: str, lines: list[str]) -> None:
    """Replace the ``BENCHMARKS.md`` section that starts with ``heading`` (up to the next ``## ``), or append it,
    leaving every other section as it is."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    start = text.find(heading)
    block = "\n".join(lines).rstrip() + "\n"
    if start < 0:
        text = text.rstrip() + "\n\n" + block
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + block + ("\n" + text[end + 1 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")


def bench_parser(module: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark that writes a ``BENCHMARKS.md`` section takes (add your own to it)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--no-markdown", action="store_true", help="leave BENCHMARKS.md alone")
    return parser


def publish(
    res: dict[str, Any], args: argparse.Namespace, name: str, heading: str, section: Callable[[Any], list[str]]
) -> dict[str, Any]:
    """Write ``res`` to ``<results-dir>/<name>.json``, its section into BENCHMARKS.md (unless ``--no-markdown``),
    and print the section."""
    path = args.results_dir / f"{name}.json"
    write_json(path, res)
    if not args.no_markdown:
        replace_section(args.markdown, heading, section(read_json(path)))
    print("\n".join(section(res)))
    return res
