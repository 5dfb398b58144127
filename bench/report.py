"""Write ``BENCHMARKS.md`` from the JSON results in ``bench/results/`` (``python -m bench.report``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_RESULTS, REPO, machine_line, read_json

PRETTY = {"mt_bench": "MT Bench", "mmlu": "MMLU", "gsm8k": "GSM8K", "dcrouter": "DC-Router test"}
BASELINES = ("random", "oracle", "length")


def pct(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * float(x):.{digits}f}%"


def num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{float(x):.{digits}f}"


def ms(x: Any) -> str:
    if x is None:
        return "n/a"
    x = float(x)
    return f"{x:.2f} ms" if x < 10 else f"{x:.0f} ms"


def rel(path: str, out: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(out.parent.resolve()))
    except ValueError:
        return path


def results_table(entry: dict[str, Any], *, beat_length: bool = True, note: dict[str, str] | None = None) -> list[str]:
    rows = entry["results"]
    length = next((r for r in rows if r["name"] == "length"), None)
    lines = [
        "| router | APGR | CPT(50%) | CPT(80%) | AUC | strong calls for 95% of strong quality |"
        + (" beats length? |" if beat_length and length else ""),
        "|---|---|---|---|---|---|" + ("---|" if beat_length and length else ""),
    ]
    for r in rows:
        name = r["name"] + (f" {note[r['name']]}" if note and r["name"] in note else "")
        if r["name"] in BASELINES:
            name = f"*{name}* (baseline)"
        beat = ""
        if beat_length and length:
            beat = " — |" if r["name"] in BASELINES else (" yes |" if r["apgr"] > length["apgr"] else " **no** |")
        lines.append(
            f"| {name} | {num(r['apgr'])} | {pct(r['cpt50'])} | {pct(r['cpt80'])} | {num(r['auc'])} | "
            f"{pct(r['strong_for_95pct_quality'])} |{beat}"
        )
    return lines


def bench_line(name: str, entry: dict[str, Any]) -> str:
    b = entry["bench"]
    size = f"{b['n_prompts']} prompts" + (
        f" (**seeded slice of {b['full_size']}**)" if b.get("sliced") else " (whole benchmark)"
    )
    return (
        f"**{PRETTY.get(name, name)}** — {size}; strong `{b['strong_model']}` {num(b['q_strong'])}, "
        f"weak `{b['weak_model']}` {num(b['q_weak'])}."
    )


def train_line(entry: dict[str, Any]) -> str:
    t = entry["train"]
    per = ", ".join(f"{k} {v}" for k, v in t.get("prompts_per_source", {}).items())
    extra = f"; + in-domain golden labels from {entry['folds'] - 1}/{entry['folds']} folds" if "folds" in entry else ""
    note = f"; {t['note']}" if t.get("note") else ""
    return f"Training: {t['n_battles']:,} battles over {t['n_prompts']:,} prompts (prompts per source: {per}){extra}{note}."


def quality_sections(q: dict[str, Any], out: Path) -> list[str]:
    lines: list[str] = []
    lines += [
        "## Routing quality, protocol (a): benchmark left out of training",
        "",
        "Each benchmark is excluded from training entirely: its own source is skipped and its contaminated and "
        "overlapping prompts are removed from every other source (`training_battles(sources, exclude=[bench])`; "
        "e.g. the ~6.8k MMLU questions inside MMLU-Pro go). Learned routers are trained on the remaining shared "
        "sources (MMLU, GSM8K, MT Bench, DC-Router train, MMLU-Pro). `mf[static]` is mf on the shipped static "
        "embedder, the `fast` router's recipe (see *Faster embedder*). *random* is the registry's random router averaged over seeds 0–9; "
        "*oracle* knows each prompt's outcome; *length* sends longer prompts to strong.",
        "",
    ]
    for name, entry in q["lobo"].items():
        lines += [bench_line(name, entry), train_line(entry), "", *results_table(entry), ""]
    if q.get("kfold"):
        lines += [
            "## Routing quality, protocol (b): in-domain k-fold (**trained on the benchmark itself**)",
            "",
            "Labelled in-domain: the protocol-(a) training set **plus the benchmark's own golden labels** from "
            f"{q['settings']['folds'] - 1} of {q['settings']['folds']} folds (folds over unique prompts, seed 0); each "
            "prompt is scored by the model that did not see its fold, and the pooled out-of-fold scores are "
            "evaluated on the whole benchmark. Baselines do not train, so they equal protocol (a).",
            "",
        ]
        for name, entry in q["kfold"].items():
            lines += [bench_line(name, entry), train_line(entry), "", *results_table(entry, beat_length=False), ""]
    if q.get("dcrouter"):
        entry = q["dcrouter"]
        lines += [
            "## DC-Router multi-model test split",
            "",
            "LLMRouter's DC-Router test split (9 open models, 14 tasks). Routed between its best model and a weak one "
            "(by train-split mean); routers trained on every source with the 500 test prompts removed (119 of them "
            "also occur in the train split). mf scores the pair from its shared model space; sw_ranking fits "
            "Bradley-Terry ratings over all models and compares the two.",
            "",
            bench_line("dcrouter", entry),
            train_line(entry),
            "",
            *results_table(entry),
            "",
        ]
    if q.get("plots"):
        lines += ["## Cost-quality curves (protocol a)", ""]
        for name, path in q["plots"].items():
            lines += [f"**{PRETTY.get(name, name)}**", "", f"![{name}]({rel(path, out)})", ""]
    return lines


def claims_section(q: dict[str, Any]) -> list[str]:
    lines = [
        "## Against RouteLLM's published claims",
        "",
        "Definition used: *strong calls needed for 95% of GPT-4 quality* = the smallest strong-call fraction "
        "whose quality reaches 0.95 × (all-GPT-4 quality), on the exact cost-quality curve. (RouteLLM's "
        "'95% of GPT-4 performance' claims; on MT Bench 0.95 × 9.21 sits at PGR ≈ 0.50, so this equals their "
        "CPT(50%) there, which is how their 26% / 14% figures line up with their paper's MT Bench CPT(50%).) "
        "Their cost reductions are read as 1 − strong-call share (weak-model cost ignored).",
        "",
        "| benchmark | target quality (PGR) | ours: mf (a) | ours: sw_ranking (a) | ours: mf[static] (a) | ours: best (b, in-domain) | length baseline | random | RouteLLM claim | their training data |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in q["claims"]:
        ours = c["ours_lobo"]
        kf = c.get("ours_kfold") or {}
        best_kf = min(((v, k) for k, v in kf.items() if v is not None), default=(None, ""))
        theirs = "; ".join(f"{x[0]} ({x[1]})" for x in c["theirs"])
        data = "; ".join(x[2] for x in c["theirs"])
        lines.append(
            f"| {PRETTY.get(c['benchmark'], c['benchmark'])}{' (slice)' if c.get('sliced') else ''} | "
            f"{num(c['target_quality'])} ({num(c['target_pgr'], 2)}) | {pct(ours.get('mf'))} | "
            f"{pct(ours.get('sw_ranking'))} | {pct(ours.get('mf[static]'))} | "
            f"{pct(best_kf[0])} {best_kf[1]} | {pct(ours.get('length'))} | {pct(ours.get('random'))} | {theirs} | {data} |"
        )
    lines += [
        "",
        "Our training data: protocol (a) = the shared sources without the benchmark (see each table above); "
        "protocol (b) adds the benchmark's own labels from the other folds. RouteLLM trained on Chatbot Arena "
        "battles (~65k, with augmentation from GPT-4-judged Nectar data and, for MMLU, MMLU validation golden "
        "labels); neither Arena nor Nectar is in the shared data, so their setting cannot be re-run here.",
        "",
    ]
    return lines


def commercial_section(q: dict[str, Any]) -> list[str]:
    c = q["commercial"]
    sc = c["scores"]
    lines = [
        "## MT Bench against the commercial routers",
        "",
        f"Scores from the GPT-4 judge grades in `external-benchmarks/mt-bench/gpt-4_single.jsonl`. Our MT Bench "
        f"evaluation uses {c['n_questions']} questions (8 contaminated turn-1 questions dropped), a question's "
        "quality = mean grade over both turns, unparsable grades (-1) skipped; the commercial routers are scored "
        "the same way on the same questions (first column). Published-style scores over all 80 questions are shown "
        f"for reference (Unify's published {c['unify_published']['score']} = the mean over all valid turn grades, "
        f"with {pct(c['unify_published']['strong_calls'])} GPT-4 calls). On our questions GPT-4 alone scores "
        f"{num(c['gpt4'], 3)} and Mixtral {num(c['mixtral'], 3)}.",
        "",
        "| router | score, our questions | score, all 80 (per question) | mean of all turn grades | invalid grades |",
        "|---|---|---|---|---|",
    ]
    for m, v in sc.items():
        lines.append(
            f"| {m} | {num(v['score_our_questions'])} ({v['n_questions']} q) | {num(v['score_all_80_per_question'])} | "
            f"{num(v['score_all_turns_mean'])} | {v['invalid_grades']} |"
        )
    lines += [
        "",
        "Strong-call % our routers need to match each score (smallest fraction on the curve reaching it):",
        "",
    ]
    models = list(sc)
    lines += [
        "| protocol | router | " + " | ".join(f"to match {m}" for m in models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for proto, rows in c["needed"].items():
        label = "(a) MT Bench left out" if proto == "lobo" else "(b) in-domain k-fold"
        for r, v in rows.items():
            lines.append(f"| {label} | {r} | " + " | ".join(pct(v.get(m)) for m in models) + " |")
    lines.append("")
    return lines


def neural_section(n: dict[str, Any] | None) -> list[str]:
    if not n:
        return [
            "## Neural routers (bert, causal_llm)",
            "",
            "Not in this run (`python -m bench --neural` or `--full` adds them; slow on CPU).",
            "",
        ]
    s = n["settings"]
    lines = [
        "## Neural routers (bert, causal_llm) — **sampled**, protocol (a)",
        "",
        "CPU only, so these run on samples: each router is fine-tuned (1 epoch, 256 tokens) on a seeded sample of "
        f"**reference-pair battles** (bert {s['neural_train']}, causal_llm {s['extra'].get('neural_train_causal')}; "
        "GPT-4 vs Mixtral only, the pair they score) "
        f"from the benchmark-excluded pool, and evaluated on a **seeded subsample of {s['neural_eval']} prompts** "
        "per benchmark (MT Bench whole). The baselines and mf / sw_ranking (trained as in protocol (a) on the full "
        "training set) are re-evaluated on the same subsample, so rows within a table compare like with like; "
        "they are not comparable to the full-benchmark tables. "
        f"Total time {n.get('seconds', 0) / 60:.0f} min.",
        "",
    ]
    for name, entry in n["neural"].items():
        t = entry["train"]
        lines += [
            bench_line(name, entry),
            "Neural training: "
            + ", ".join(
                f"{k.removeprefix('n_battles_')} {v} battles" for k, v in t.items() if k.startswith("n_battles_")
            )
            + f", sampled from {t['pool']:,} reference-pair battles.",
            "",
            *results_table(entry),
            "",
        ]
        tim = entry.get("timings", {})
        if tim:
            lines += [
                "Time: "
                + "; ".join(
                    f"{r} fit {v['fit_s']:.0f} s, scoring {v['per_prompt_ms']:.0f} ms/prompt (batched)"
                    for r, v in tim.items()
                ),
                "",
            ]
    return lines


def overhead_sections(o: dict[str, Any] | None, q: dict[str, Any] | None) -> list[str]:
    if not o:
        return ["## Overhead", "", "Not in this run.", ""]
    m = o["machine"]
    pr = o["prompts"]
    lines = [
        "## Router overhead (CPU)",
        "",
        f"Machine: {machine_line(m)} (machine line recorded at the end of the run; the load average counts the "
        "benchmark itself). Timings vary by a few milliseconds between runs with what else the cores do. "
        + (
            "No GPU on this machine, so GPU figures are absent (MiniLM runs on CUDA through its torch backend, "
            '`device="cuda"`). '
            if not m.get("gpu")
            else ""
        )
        + "One fresh subprocess per router. Prompts: a seeded mix of MT Bench, GSM8K, MMLU and DC-Router test prompts "
        f"(single-call set: {pr['single']['n']} prompts, median {pr['single']['chars_median']:.0f} chars; batch set: "
        f"{pr['batch']['n']} prompts, median {pr['batch']['chars_median']:.0f} chars), all distinct, so every call "
        "misses the embedding cache (the production `CachedEmbedder` is in the path; its lookup is included).",
        "",
        "- *cold start*: import `routellm_core` + load the checkpoint + first call (loads the embedding model), in-process; "
        "*process* adds interpreter start-up.",
        "- *single*: `predict_win_rate([prompt])`, p50 / p99; *batched*: one `predict_win_rate` call over the batch set.",
        "- *no-embed*: `predict_from_embeddings` on precomputed vectors (the router's own cost).",
        "",
        "| router | embedder | cold start (process) | single p50 | single p99 | batched prompts/s | no-embed p50 | no-embed prompts/s | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in o["routers"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'][:80]!r} | | | | | | | |")
            continue
        note = f" (n={r['single_n']}/{r['batch_n']})" if r["single_n"] < 200 or r["batch_n"] < 1000 else ""
        note += " †" if r.get("remeasured") else ""
        lines.append(
            f"| {name}{note} | {r.get('embedder') or '—'} | {r['cold_first_call_s']:.2f} s ({r['wall_process_start_to_ready_s']:.2f} s) | "
            f"{ms(r['single_p50_ms'])} | {ms(r['single_p99_ms'])} | {r['batch_prompts_per_s']:,.0f} | "
            f"{ms(r.get('noembed_single_p50_ms'))} | "
            + (f"{r['noembed_batch_prompts_per_s']:,.0f}" if r.get("noembed_batch_prompts_per_s") else "n/a")
            + f" | {r['peak_rss_mb']:.0f} MB |"
        )
    lines += ["", *targets_section(o, q), ""]
    integ = o.get("integration", {})
    lines += [
        "## Integration overhead",
        "",
        "Fake children that answer instantly (LangChain `GenericFakeChatModel`, LlamaIndex `MockLLM`); the same "
        "child is called directly and through the wrapper, alternately, on the same prompts in the same run. "
        "*random router* isolates the wrapper's own cost (routing is a hash); *mf, repeated prompts* adds mf "
        "scoring with the embedding cached; *mf, fresh prompts* adds the MiniLM embedding.",
        "",
        "| integration | case | n | direct p50 | routed p50 | added p50 | ratio p50 | routed p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for integ_name, cases in integ.items():
        if "error" in cases:
            lines.append(f"| {integ_name} | error: {cases['error'][:100]} | | | | | | |")
            continue
        for case, v in cases.items():
            lines.append(
                f"| {integ_name} | {case} | {v['n']} | {v['direct_p50_us']:.0f} µs | {v['routed_p50_us']:.0f} µs | "
                f"{v['added_p50_us']:.0f} µs | {v['ratio_p50']:.1f}× | {v['routed_p99_us']:.0f} µs |"
            )
    conc = o.get("concurrent", {})
    lines += [
        "",
        "## Concurrent load through ChatRouteLLM",
        "",
        "All requests are started at once (`asyncio.gather` of `ainvoke`) with an instant fake child and fresh prompts. "
        "*scoring calls* counts the router's `predict_win_rate` calls: micro-batching folds concurrent requests into "
        "shared batches; `max_batch_size=1` is the one-by-one control.",
        "",
        "| router | mode | requests | wall | requests/s | latency p50 | latency p99 | scoring calls | mean batch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if "error" in conc:
        lines.append(f"| error: {conc['error']} | | | | | | | | |")
    else:
        for rname, modes in conc.items():
            for mode, v in modes.items():
                lines.append(
                    f"| {rname} | {mode} | {v['requests']} | {v['wall_s']:.2f} s | {v['requests_per_s']:,.0f} | "
                    f"{ms(v['latency_p50_ms'])} | {ms(v['latency_p99_ms'])} | {v['scoring_calls']} | {v['mean_batch']:.1f} |"
                )
    lines.append("")
    return lines


def targets_section(o: dict[str, Any], q: dict[str, Any] | None) -> list[str]:
    r = o["routers"]
    lines = ["### Targets", "", "| router | target | measured | met? |", "|---|---|---|---|"]
    checks = [
        ("mf", "single p50 < 15 ms (core issue)", "single_p50_ms", lambda v: v < 15),
        ("mf", "single p50 < 10 ms (bench issue)", "single_p50_ms", lambda v: v < 10),
        ("mf", "> 300 prompts/s batched (core issue)", "batch_prompts_per_s", lambda v: v > 300),
        ("mf", "> 1,000 prompts/s batched (bench issue)", "batch_prompts_per_s", lambda v: v > 1000),
        ("mf[static]", "single p50 < 10 ms", "single_p50_ms", lambda v: v < 10),
        ("mf[static]", "> 1,000 prompts/s batched", "batch_prompts_per_s", lambda v: v > 1000),
        (
            "sw_ranking",
            "single p50 < 100 ms (core issue: one query over 20k battles)",
            "noembed_single_p50_ms",
            lambda v: v < 100,
        ),
    ]
    for name, target, key, ok in checks:
        if name not in r or "error" in r[name]:
            continue
        v = r[name][key]
        shown = ms(v) if key.endswith("_ms") else f"{v:,.0f} prompts/s"
        lines.append(f"| {name} | {target} | {shown} | {'yes' if ok(v) else '**no**'} |")
    return lines


def fast_embedder_section(q: dict[str, Any] | None, o: dict[str, Any] | None) -> list[str]:
    if not q:
        return []
    lines = [
        "## Faster embedder: the shipped `fast` router",
        "",
        "MiniLM is compute-bound on 2 cores (a 100-token prompt is ~2 GFLOP through its 6 layers), so batched "
        'throughput stays near 20–40 prompts/s whatever the runtime. `load_router("fast")` is mf on a static '
        "embedding distilled from the same MiniLM with model2vec (15 MB of 256-d token vectors shipped in the "
        "package; a prompt's vector is the mean of its token vectors, no transformer pass). `mf[static]` rows are "
        "that recipe retrained per protocol; the overhead rows are the shipped `fast` checkpoint. Quality "
        "(protocol a) and speed side by side:",
        "",
        "| benchmark | mf (MiniLM) APGR / CPT50 | mf[static] APGR / CPT50 | Δ APGR |",
        "|---|---|---|---|",
    ]
    for name, entry in list(q["lobo"].items()) + ([("dcrouter", q["dcrouter"])] if q.get("dcrouter") else []):
        res = {r["name"]: r for r in entry["results"]}
        if "mf" in res and "mf[static]" in res:
            a, b = res["mf"], res["mf[static]"]
            lines.append(
                f"| {PRETTY.get(name, name)} | {num(a['apgr'])} / {pct(a['cpt50'])} | {num(b['apgr'])} / {pct(b['cpt50'])} | "
                f"{b['apgr'] - a['apgr']:+.3f} |"
            )
    if o:
        r = o["routers"]
        if "mf" in r and "mf[static]" in r and "error" not in r["mf"] and "error" not in r["mf[static]"]:
            a, b = r["mf"], r["mf[static]"]
            lines += [
                "",
                f"Speed (embedding included): mf single p50 {ms(a['single_p50_ms'])} → {ms(b['single_p50_ms'])}; "
                f"batched {a['batch_prompts_per_s']:,.0f} → {b['batch_prompts_per_s']:,.0f} prompts/s; "
                f"cold start {a['cold_first_call_s']:.2f} s → {b['cold_first_call_s']:.2f} s.",
            ]
    lines.append("")
    return lines


def _suffixed(lines: list[str], suffix: str) -> list[str]:
    """``lines`` with ``suffix`` added to every section heading."""
    return [f"{line}{suffix}" if line.startswith("## ") else line for line in lines]


def lobo_summary_lines(q: dict[str, Any], label: str = "") -> list[str]:
    """One summary line per benchmark of protocol (a): each learned router's APGR next to length and random."""
    lines = []
    for name, entry in q["lobo"].items():
        res = {r["name"]: r for r in entry["results"]}
        learned = [r for r in entry["results"] if r["name"] not in BASELINES]
        parts = ", ".join(f"{r['name']} {num(r['apgr'])}" for r in learned)
        length, rnd = res.get("length"), res.get("random")
        sl = " (slice)" if entry["bench"].get("sliced") else ""
        lines.append(
            f"- {label}{PRETTY.get(name, name)}{sl}, benchmark left out of training — APGR: {parts}; "
            f"length heuristic {num(length['apgr']) if length else 'n/a'}, random {num(rnd['apgr']) if rnd else 'n/a'}."
        )
    return lines


def summary_section(q: dict[str, Any] | None, qa: dict[str, Any] | None, o: dict[str, Any] | None) -> list[str]:
    lines = ["## Summary", ""]
    if qa:
        lines += lobo_summary_lines(qa, "All data: ")
    if q:
        lines += lobo_summary_lines(q, "Default set: ")
        if q.get("kfold"):
            parts = []
            for name, entry in q["kfold"].items():
                parts.append(
                    f"{PRETTY.get(name, name)} "
                    + ", ".join(f"{r['name']} {num(r['apgr'])}" for r in entry["results"] if r["name"] not in BASELINES)
                )
            lines.append(
                f"- In-domain {q['settings']['folds']}-fold (trained on the benchmark's other folds) — APGR: "
                + "; ".join(parts)
                + "."
            )
    if o:
        r = o["routers"]
        for name in ("mf", "mf (torch backend)", "sw_ranking", "mf[static]"):
            v = r.get(name)
            if v and "error" not in v:
                lines.append(
                    f"- `{name}` on this machine, embedding included: single-prompt p50 {ms(v['single_p50_ms'])} "
                    f"(p99 {ms(v['single_p99_ms'])}), batched {v['batch_prompts_per_s']:,.0f} prompts/s, "
                    f"cold start {v['cold_first_call_s']:.1f} s, peak RSS {v['peak_rss_mb']:.0f} MB."
                )
        lc = o.get("integration", {}).get("langchain", {})
        w = lc.get("random router (wrapper only)")
        if w:
            lines.append(
                f"- ChatRouteLLM's own cost (random router, instant child): +{w['added_p50_us']:.0f} µs p50 per call "
                f"({w['ratio_p50']:.1f}× a direct fake-child call)."
            )
        li = o.get("integration", {}).get("llamaindex", {})
        w = li.get("random router (wrapper only) - complete")
        if w:
            lines.append(f"- LlamaIndex RouteLLM's own cost: +{w['added_p50_us']:.0f} µs p50 per `complete`.")
    lines.append("")
    return lines


def write_report(
    out: Path,
    results_dir: Path = DEFAULT_RESULTS,
    command: str | None = None,
    runtime_s: float | None = None,
    notes: Sequence[str] = (),
) -> Path:
    q = read_json(results_dir / "quality.json")
    qa = read_json(results_dir / "quality_all_data.json")
    n = read_json(results_dir / "neural.json")
    o = read_json(results_dir / "overhead.json")
    machine = (q or o or n or {}).get("machine")
    lines = [
        "# Benchmarks",
        "",
        "Routing quality against RouteLLM's figures, and what a router adds to each request. Generated by `bench/` "
        "(do not edit by hand); numbers are deterministic given the data (seeds fixed, exact curves), timings are not.",
        "",
        f"- Command: `{command or 'python -m bench'}`",
        f"- Machine: {machine_line(machine)}",
    ]
    if runtime_s is not None:
        lines.append(f"- Runtime of this command: {runtime_s / 60:.1f} min")
    for part, data in (("quality", q), ("quality, all data", qa), ("neural", n), ("overhead", o)):
        if data and data.get("settings", {}).get("extra", {}).get("command"):
            extra = data["settings"]["extra"]
            took = f" ({data['seconds'] / 60:.1f} min)" if data.get("seconds") else ""
            note = f"; {extra['note']}" if extra.get("note") else ""
            lines.append(f"- `{part}` results from: `{extra['command']}`{took}{note}")
    lines += [f"- {x}" for x in notes]
    lines += [
        "- Metrics (RouteLLM's): PGR = (q − q_weak)/(q_strong − q_weak); APGR = area under PGR vs strong-call "
        "fraction; CPT(x%) = smallest strong-call fraction reaching PGR x; computed on the exact curve over every "
        "threshold. MT Bench has 72 prompts: random APGR varies ±0.06 across seeds there, so read small differences "
        "with care.",
        "",
    ]
    if q:
        st = q["settings"]
        if st.get("quick"):
            lines += ["> **Quick run**: tiny slices, 1 epoch; the numbers are meaningless.", ""]
        elif st.get("eval_limit") or st.get("train_limit"):
            lines += [
                f"> **Default set**: benchmarks capped at {st.get('eval_limit')} seeded prompts (only MMLU is larger), "
                f"training at the first {st.get('train_limit')} prompts of each source, so that a cold run (every "
                "prompt embedded with MiniLM) fits 30 minutes on 2 cores."
                + (
                    " The same protocols on all the data (`--all-data`) follow the default set's sections."
                    if qa
                    else ""
                ),
                "",
            ]
    lines += summary_section(q, qa, o)
    if q:
        lines += quality_sections(q, out) + claims_section(q) + (commercial_section(q) if q.get("commercial") else [])
    lines += neural_section(n)
    lines += overhead_sections(o, q)
    lines += fast_embedder_section(q, o)
    if qa:
        suffix = " — all data (`--all-data`)"
        lines += _suffixed(quality_sections(qa, out) + claims_section(qa), suffix)
        lines += _suffixed(fast_embedder_section(qa, None), suffix)
    from bench.learning_curves import RECIPES, results_stem
    from bench.learning_curves import section as learning_curves_section  # its own command: bench/learning_curves.py

    for recipe in RECIPES:
        lines += learning_curves_section(read_json(results_dir / f"{results_stem(recipe)}.json"), out)
    from bench.default_router import section as default_router_section  # its own command: bench/default_router.py

    if default_lines := default_router_section(read_json(results_dir / "default_router.json")):
        lines += ["", *default_lines]
    from bench.routing_ceiling import section as ceiling_section  # its own command: bench/routing_ceiling.py

    if ceiling_lines := ceiling_section(read_json(results_dir / "routing_ceiling.json")):
        lines += ["", *ceiling_lines]
    if server := read_json(results_dir / "server_load.json"):  # its own command: bench/server_load.py
        from bench.server_load import section as server_section

        lines += ["", server_section(server)]
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--command", default=None)
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args(argv)
    write_report(args.out, args.results_dir, args.command, notes=args.note)


if __name__ == "__main__":
    main()
