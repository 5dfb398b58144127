"""Run the default benchmark set and write ``BENCHMARKS.md``: ``python -m bench``.

Default set (under 30 minutes on a 2-core CI machine from a cold cache): benchmarks capped at 3,000 seeded
prompts (only MMLU is larger) and training at the first 2,000 prompts of each source; quality of random /
oracle / length / mf / sw_ranking / mf[static] in both protocols, DC-Router, curves, claims, commercial
routers; overhead of every router with a checkpoint (mf on ONNX Runtime and on torch, the fast router),
integration overhead, concurrent load.

- ``--all-data``: whole benchmarks and sources (embeds ~32k prompts with MiniLM: about an hour cold on 2 cores);
  written to ``quality_all_data.json`` and reported beside the default set.
- ``--quick``: tiny slices (20 prompts, 1 epoch), for the smoke test; numbers are meaningless.
- ``--neural``: add bert and causal_llm (sampled; slow on CPU). ``--full``: ``--neural`` with larger samples.
- ``--skip-quality`` / ``--skip-overhead``: reuse the other part's JSON from ``--results-dir``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import overhead, quality
from bench.common import REPO, log
from bench.report import write_report


def main(argv: Sequence[str] | None = None) -> Path:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    quality.add_args(parser)
    parser.add_argument("--full", action="store_true", help="neural routers with larger samples (long)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="report path")
    args = parser.parse_args(argv)
    settings = quality.settings_from(args)
    if args.full:
        settings.neural = True
        settings.neural_train = max(settings.neural_train, 2000)
        settings.neural_eval = max(settings.neural_eval, 1000)
    command = "python -m bench" + ("" if not argv else " " + shlex.join(argv))
    settings.extra["command"] = command
    start = time.time()
    if args.neural_only:
        settings.neural = True
    if not args.skip_quality:
        log("quality benchmarks")
        quality.run(settings, neural_only=args.neural_only)
        quality.merge_saved_lobo(settings)
    if not args.skip_overhead and not args.neural_only:
        log("overhead benchmarks")
        overhead.run(settings)
    runtime = time.time() - start
    out = write_report(args.out, settings.results_dir, command, runtime)
    log(f"wrote {out} in {runtime / 60:.1f} min")
    return out


if __name__ == "__main__":
    main()
