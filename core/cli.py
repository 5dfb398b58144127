"""The ``routellm`` command line: train, calibrate, route and evaluate routers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from routellm_core.errors import RouteLLMError


def _read_prompts(path: str) -> list[str]:
    """Prompts from a text file (one per line), JSONL (``prompt`` key) or a golden-label/battle CSV."""
    p = Path(path)
    if p.suffix == ".jsonl":
        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [r["prompt"] if isinstance(r, dict) else str(r) for r in rows]
    if p.suffix == ".csv":
        import csv

        with p.open(newline="", encoding="utf-8") as f:
            return [row["prompt"] for row in csv.DictReader(f)]
    return [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def _cmd_train(args: argparse.Namespace) -> int:
    from routellm_core import datasets
    from routellm_core.records import golden_to_battles
    from routellm_core.training import train_router

    battles = []
    if args.sources:
        battles += datasets.training_battles(
            args.sources.split(","), exclude=args.exclude.split(",") if args.exclude else ()
        )
    for path in args.battles or []:
        battles += datasets.load_battles(path)
    for path in args.golden or []:
        battles += golden_to_battles(datasets.load_golden_labels(path))
    params = json.loads(args.params) if args.params else {}
    if args.router == "mf":
        params.setdefault("show_progress", True)
    calib = _read_prompts(args.calibration_prompts) if args.calibration_prompts else None
    router = train_router(
        args.router,
        battles,
        calibration_prompts=calib,
        strong_model=args.strong_model,
        weak_model=args.weak_model,
        **params,
    )
    router.save(args.out)
    print(f"trained {args.router} on {len(battles)} battles -> {args.out}")
    return 0


def _load(args: argparse.Namespace):
    from routellm_core.registry import load_router

    return load_router(args.router)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from routellm_core.calibration import calibrate_thresholds, strong_call_fraction

    router = _load(args)
    prompts = _read_prompts(args.prompts)
    if args.threshold is not None:
        print(
            json.dumps(
                {"threshold": args.threshold, "strong_fraction": strong_call_fraction(router, prompts, args.threshold)}
            )
        )
        return 0
    fractions = [float(f) for f in args.fractions.split(",")]
    table = calibrate_thresholds(router, prompts, fractions)
    print(json.dumps(table, indent=2))
    if args.write:
        router.save(args.router)
        print(f"wrote thresholds into {args.router}", file=sys.stderr)
    return 0


def _cmd_route(args: argparse.Namespace) -> int:
    from routellm_core.policy import RoutingPolicy

    policy = RoutingPolicy(args.router, threshold=args.threshold, strong_fraction=args.strong_fraction)
    prompts = list(args.prompts) + (_read_prompts(args.file) if args.file else [])
    for prompt, decision in zip(prompts, policy.decide_batch(prompts)):
        print(json.dumps({"prompt": prompt[:80], **decision.as_dict()}, ensure_ascii=False))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from routellm_core import datasets, evaluation

    router = _load(args)
    if args.golden:
        bench = datasets.load_benchmark_file(args.golden, strong_model=args.strong_model, weak_model=args.weak_model)
    else:
        bench = datasets.load_benchmark(args.benchmark)
    result = evaluation.evaluate_router(router, bench, show_progress=True)
    baseline = evaluation.random_router_result(bench)
    oracle = evaluation.evaluate(evaluation.oracle_scores(bench), bench)
    rows = {"router": result, "random": baseline, "oracle": oracle}
    print(f"{bench.name}: {len(bench.prompts)} prompts")
    for name, r in rows.items():
        print(f"  {name:8s} APGR {r.apgr:.3f}  CPT50 {r.cpt50:.1%}  CPT80 {r.cpt80:.1%}")
    if args.plot:
        curves = {args.router: result.curve, "random": baseline.curve, "oracle": oracle.curve}
        evaluation.plot_cost_quality(curves, bench, args.plot)
        print(f"plot -> {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="routellm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a router from shared sources and/or your own data")
    t.add_argument("--router", default="mf", help="registry name: mf, sw_ranking, bert, causal_llm")
    t.add_argument("--sources", help="comma list of shared sources: mmlu,gsm8k,mt_bench,dcrouter,mmlu_pro")
    t.add_argument("--exclude", help="benchmarks to hold out (their prompts are removed from all sources)")
    t.add_argument("--battles", action="append", help="your battles file (JSONL/CSV); repeatable")
    t.add_argument("--golden", action="append", help="your golden-label file (JSONL/CSV); repeatable")
    t.add_argument("--strong-model", default="gpt-4-1106-preview")
    t.add_argument("--weak-model", default="mistralai/Mixtral-8x7B-Instruct-v0.1")
    t.add_argument("--params", help="router parameters as JSON, e.g. '{\"epochs\": 20}'")
    t.add_argument("--calibration-prompts", help="prompts file to calibrate thresholds on")
    t.add_argument("--out", required=True, help="checkpoint folder to write")
    t.set_defaults(func=_cmd_train)

    c = sub.add_parser("calibrate", help="threshold for a target strong-call fraction on your prompts")
    c.add_argument("--router", default="default")
    c.add_argument("--prompts", required=True, help="prompts file: .txt (one per line), .jsonl or .csv")
    c.add_argument("--fractions", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    c.add_argument("--threshold", type=float, help="instead: report the strong-call fraction of this threshold")
    c.add_argument("--write", action="store_true", help="store the thresholds in the checkpoint folder")
    c.set_defaults(func=_cmd_calibrate)

    r = sub.add_parser("route", help="route prompts and print each decision as JSON")
    r.add_argument("prompts", nargs="*")
    r.add_argument("--file", help="prompts file")
    r.add_argument("--router", default="default")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float)
    g.add_argument("--strong-fraction", type=float)
    r.set_defaults(func=_cmd_route)

    e = sub.add_parser("evaluate", help="APGR / CPT against random and oracle on a benchmark or your file")
    e.add_argument("--router", default="default")
    e.add_argument("--benchmark", default="mt_bench", choices=["mt_bench", "mmlu", "gsm8k"])
    e.add_argument("--golden", help="your golden-label file instead of a shared benchmark")
    e.add_argument("--strong-model", default="gpt-4-1106-preview")
    e.add_argument("--weak-model", default="mistralai/Mixtral-8x7B-Instruct-v0.1")
    e.add_argument("--plot", help="write the cost-quality curve PNG here")
    e.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 with a one-line message on a RouteLLMError)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RouteLLMError as exc:
        print(f"routellm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
