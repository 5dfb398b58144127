"""Router overhead: cold start, single-prompt latency, batched throughput, peak RSS; the integrations' own
overhead against calling the child directly; and many concurrent async requests through ``ChatRouteLLM``.

- **Per router** (one fresh subprocess each, ``bench/_worker.py``): cold start = import + checkpoint load +
  first call (which loads the embedding model); p50/p99 of single-prompt ``predict_win_rate`` over distinct
  prompts (every call misses the embedding cache, so embedding is included); batched throughput of one
  ``predict_win_rate`` call over distinct prompts; the same with embedding excluded (``predict_from_embeddings``
  on precomputed vectors); peak RSS (``ru_maxrss``). Prompts: a seeded mix of MT Bench, GSM8K, MMLU and
  DC-Router test prompts.
- **Integration overhead**: fake children that answer instantly (LangChain ``GenericFakeChatModel``,
  LlamaIndex ``MockLLM``); the same prompts, in the same process, alternately sent to the child directly and
  through the router wrapper. With the ``random`` router the difference is the wrapper's own cost; with
  ``mf`` on repeated prompts (embedding-cache hits) it adds scoring; with ``mf`` on fresh prompts it adds the
  embedding.
- **Concurrent load**: N ``ainvoke`` calls gathered at once through ``ChatRouteLLM``; throughput, latency
  percentiles, and the batch sizes the router actually saw (micro-batching), against ``max_batch_size=1``.

Run alone: ``python -m bench.overhead [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    REPO,
    Settings,
    Timer,
    checkpoint_dir,
    log,
    machine_info,
    percentile_ms,
    write_json,
)
from routellm_core import data
from routellm_core.data.records import limit_prompts_per_source


# ---- prompts -----------------------------------------------------------------------------------------------
def latency_prompts(n_warm: int, n_single: int, n_batch: int, n_extra: int, seed: int = 0) -> dict[str, list[str]]:
    """Distinct prompts, a seeded shuffle of MT Bench, GSM8K, MMLU and DC-Router test prompts."""
    pool: list[str] = []
    for name in ("mt_bench", "gsm8k", "mmlu"):
        pool += list(data.load_benchmark(name).prompts)
    pool += [lab.prompt for lab in data.golden_labels_dcrouter("test")]
    pool = list(dict.fromkeys(p for p in pool if p.strip()))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    need = n_warm + n_single + n_batch + n_extra
    picked = [pool[i] for i in order[:need]]
    a, b, c = n_warm, n_warm + n_single, n_warm + n_single + n_batch
    return {"warmup": picked[:a], "single": picked[a:b], "batch": picked[b:c], "extra": picked[c:]}


def prompt_stats(prompts: Sequence[str]) -> dict[str, float]:
    lengths = [len(p) for p in prompts]
    return {"n": len(lengths), "chars_median": float(np.median(lengths)), "chars_mean": float(np.mean(lengths))}


# ---- checkpoints -------------------------------------------------------------------------------------------
def prepare_checkpoints(settings: Settings) -> dict[str, dict[str, Any]]:
    """Router name -> worker spec fields.

    mf is MiniLM on ONNX Runtime (the previous default's recipe, trained on the run's training slice) and, as its
    baseline, the same router with MiniLM on torch; ``difficulty (default)`` is the shipped ``default`` router;
    mf[static] is the shipped ``fast`` router; sw_ranking is trained on the run's training slice.
    """
    from bench.quality import MF_PARAMS
    from routellm_core.routers.mf import MatrixFactorizationRouter
    from routellm_core.routers.sw_ranking import SWRankingRouter
    from routellm_core.routers.training import training_embedder

    ckpts = checkpoint_dir(settings)
    battles = limit_prompts_per_source(data.training_battles(settings.sources), settings.train_limit)
    specs: dict[str, dict[str, Any]] = {"random": {"checkpoint": "random"}}
    mf_dir = ckpts / "mf"
    if not (mf_dir / "config.json").is_file():
        log(f"training mf (MiniLM) on {len(battles)} battles for the overhead benchmark")
        epochs = 1 if settings.quick else settings.mf_epochs
        MatrixFactorizationRouter(**MF_PARAMS, epochs=epochs, embedder=training_embedder()).fit(battles).save(mf_dir)
    specs["mf"] = {"checkpoint": str(mf_dir)}
    if not settings.quick:
        specs["mf (torch backend)"] = {"checkpoint": str(mf_dir), "backend": "torch"}
    if settings.wants("difficulty"):
        specs["difficulty (default)"] = {"checkpoint": "default"}
    sw_dir = ckpts / "sw_ranking"
    if settings.wants("sw_ranking"):
        if not (sw_dir / "config.json").is_file():
            log(f"training sw_ranking on {len(battles)} battles for the overhead benchmark")
            SWRankingRouter(embedder=training_embedder()).fit(battles).save(sw_dir)
        specs["sw_ranking"] = {"checkpoint": str(sw_dir)}
    if settings.static and settings.wants("mf[static]"):
        specs["mf[static]"] = {"checkpoint": "fast"}
    for neural in ("bert", "causal_llm"):
        if (ckpts / neural / "config.json").is_file():
            specs[neural] = {"checkpoint": str(ckpts / neural)}
    return specs


def run_worker(name: str, spec: dict[str, Any], prompts_file: Path, n_single: int, n_batch: int) -> dict[str, Any]:
    """Run one router's measurements in a fresh subprocess."""
    full = {"name": name, "prompts_file": str(prompts_file), "n_single": n_single, "n_batch": n_batch}
    full.update(spec)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(full, fh)
    spawn = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "bench._worker", fh.name], cwd=REPO, capture_output=True, text=True, check=False
    )
    Path(fh.name).unlink(missing_ok=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        log(f"worker {name} failed: {proc.stderr[-2000:]}")
        return {"router": name, "error": proc.stderr[-500:]}
    out: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    out["wall_process_start_to_ready_s"] = out.pop("spawn_wall") - spawn + out["cold_first_call_s"]
    return out


# ---- integration overhead ------------------------------------------------------------------------------------
def _lc_child(text: str = "ok") -> Any:
    import itertools

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    return GenericFakeChatModel(messages=itertools.repeat(AIMessage(content=text)))


def _paired(direct: Any, through: Any, prompts: Sequence[str], rounds: int = 1) -> dict[str, Any]:
    """Alternate direct and routed calls on the same prompts; per-call durations in microseconds."""
    d_times: list[float] = []
    r_times: list[float] = []
    for _ in range(rounds):
        for p in prompts:
            t = time.perf_counter()
            direct(p)
            d_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            through(p)
            r_times.append(time.perf_counter() - t)
    d50, r50 = statistics.median(d_times) * 1e6, statistics.median(r_times) * 1e6
    return {
        "n": len(d_times),
        "direct_p50_us": d50,
        "routed_p50_us": r50,
        "direct_mean_us": statistics.fmean(d_times) * 1e6,
        "routed_mean_us": statistics.fmean(r_times) * 1e6,
        "added_p50_us": r50 - d50,
        "ratio_p50": r50 / d50 if d50 else float("nan"),
        "routed_p99_us": float(np.percentile(r_times, 99) * 1e6),
    }


def integration_overhead(
    settings: Settings, specs: dict[str, dict[str, Any]], prompts: dict[str, list[str]]
) -> dict[str, Any]:
    """ChatRouteLLM and the LlamaIndex RouteLLM vs calling the same child directly, same run."""
    from routellm_core.routers.registry import load_router

    out: dict[str, Any] = {}
    n = 20 if settings.quick else 300
    repeated = prompts["single"][:20]
    n_fresh = 3 if settings.quick else 200
    fresh_lc, fresh_li = prompts["extra"][:n_fresh], prompts["extra"][n_fresh : 2 * n_fresh]
    mf = load_router(specs["mf"]["checkpoint"])
    mf.predict_win_rate(repeated)  # loads the embedder and fills the embedding cache for `repeated`
    routers = {"random": load_router("random"), "mf": mf}

    def cases(fresh: list[str]) -> list[tuple[str, str, list[str], int]]:
        return [
            ("random router (wrapper only)", "random", repeated, n),
            ("mf, repeated prompts (embedding cached)", "mf", repeated, n),
            ("mf, fresh prompts (embedding included)", "mf", fresh, len(fresh)),
        ]

    try:
        from langchain_routellm import ChatRouteLLM

        child = _lc_child()
        lc: dict[str, Any] = {}
        for label, rname, ps, count in cases(fresh_lc):
            chat = ChatRouteLLM(strong=child, weak=child, router=routers[rname], threshold=0.5)
            chat.invoke(ps[0])
            child.invoke(ps[0])
            lc[label] = _paired(child.invoke, chat.invoke, (ps * (count // len(ps) + 1))[:count])
            log(f"langchain {label}: +{lc[label]['added_p50_us']:.0f} us p50")
        out["langchain"] = lc
    except Exception as exc:  # the integration may be in progress; report instead of failing the whole run
        out["langchain"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        from llama_index.core.base.llms.types import ChatMessage
        from llama_index.core.llms import MockLLM

        from llamaindex_routellm import RouteLLM

        li_child = MockLLM(max_tokens=1)
        li: dict[str, Any] = {}
        for label, rname, ps, count in cases(fresh_li):
            llm = RouteLLM(strong=li_child, weak=li_child, router=routers[rname], threshold=0.5)
            llm.complete(ps[0])
            li[label + " - complete"] = _paired(li_child.complete, llm.complete, (ps * (count // len(ps) + 1))[:count])
            if rname == "mf" and ps is fresh_li:
                continue  # chat would reuse the prompts complete just embedded (cache hits)
            li[label + " - chat"] = _paired(
                lambda p: li_child.chat([ChatMessage(role="user", content=p)]),
                lambda p, llm=llm: llm.chat([ChatMessage(role="user", content=p)]),
                (ps * (count // len(ps) + 1))[:count],
            )
            log(f"llamaindex {label}: +{li[label + ' - complete']['added_p50_us']:.0f} us p50")
        out["llamaindex"] = li
    except Exception as exc:
        out["llamaindex"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# ---- concurrent load -----------------------------------------------------------------------------------------
class _BatchRecorder:
    """Wraps a router's ``predict_win_rate`` to record the batch sizes it is called with."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.sizes: list[int] = []
        self._inner = router.predict_win_rate

    def __enter__(self) -> _BatchRecorder:
        def wrapped(texts: Sequence[str]) -> np.ndarray:
            self.sizes.append(len(texts))
            return self._inner(texts)

        self.router.predict_win_rate = wrapped
        return self

    def __exit__(self, *exc: object) -> None:
        del self.router.predict_win_rate


async def _gather(chat: Any, prompts: Sequence[str]) -> tuple[float, list[float]]:
    lat: list[float] = []

    async def one(p: str) -> None:
        t = time.perf_counter()
        await chat.ainvoke(p)
        lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    return time.perf_counter() - t0, lat


def concurrent_load(
    settings: Settings, specs: dict[str, dict[str, Any]], prompts: dict[str, list[str]]
) -> dict[str, Any]:
    """N simultaneous ``ainvoke`` calls through ChatRouteLLM, micro-batched vs one by one."""
    from routellm_core.routers.registry import load_router
    from routellm_core.routing.policy import RoutingPolicy

    try:
        from langchain_routellm import ChatRouteLLM
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    n = 16 if settings.quick else 1000
    n_serial = 8 if settings.quick else 200
    out: dict[str, Any] = {}
    variants: list[tuple[str, str, dict[str, Any]]] = [("mf (MiniLM)", "mf", specs["mf"])]
    if "mf[static]" in specs:
        variants.append(("mf[static] (the fast router)", "mf[static]", specs["mf[static]"]))
    variants.append(("random", "random", specs["random"]))
    pool = prompts["extra"][800 if not settings.quick else 20 :]  # after the integration benchmark's prompts
    offset = 0
    for label, _name, spec in variants:
        router = load_router(spec["checkpoint"])
        router.predict_win_rate(["warm up the embedding model"])
        child = _lc_child()
        res: dict[str, Any] = {}
        for mode, max_batch, count in (
            ("micro-batched (max_batch_size=64)", 64, n),
            ("one by one (max_batch_size=1)", 1, n_serial),
        ):
            ps = pool[offset : offset + count]
            offset += count  # fresh prompts each time: no embedding-cache hits
            chat = ChatRouteLLM(
                strong=child, weak=child, router=RoutingPolicy(router, threshold=0.5, max_batch_size=max_batch)
            )
            with _BatchRecorder(router) as rec:
                wall, lat = asyncio.run(_gather(chat, ps))
            res[mode] = {
                "requests": len(ps),
                "wall_s": wall,
                "requests_per_s": len(ps) / wall,
                "latency_p50_ms": percentile_ms(lat, 50),
                "latency_p99_ms": percentile_ms(lat, 99),
                "scoring_calls": len(rec.sizes),
                "mean_batch": float(np.mean(rec.sizes)) if rec.sizes else 0.0,
                "max_batch": max(rec.sizes) if rec.sizes else 0,
            }
            log(f"concurrent {label} {mode}: {res[mode]['requests_per_s']:.0f} req/s, {len(rec.sizes)} scoring calls")
        out[label] = res
    return out


# ---- entry point ---------------------------------------------------------------------------------------------
def run(settings: Settings) -> dict[str, Any]:
    """Measure everything and write ``overhead.json``."""
    start = time.time()
    n_single = 20 if settings.quick else settings.extra.get("n_single", 200)
    n_batch = 40 if settings.quick else settings.extra.get("n_batch", 1000)
    n_extra = 200 if settings.quick else 400 + 3 * (1000 + 200) + 400
    prompts = latency_prompts(10, max(n_single, 20), max(n_batch, 20), n_extra)
    pfile = settings.results_dir / "_latency_prompts.json"
    pfile.parent.mkdir(parents=True, exist_ok=True)
    pfile.write_text(json.dumps(prompts))
    with Timer() as t_prep:
        specs = prepare_checkpoints(settings)
    per_router: dict[str, Any] = {}
    slow = {"bert": (100, 300), "causal_llm": (30, 60)}
    for name, spec in specs.items():
        if not settings.wants(name):
            continue
        ns, nb = slow.get(name, (n_single, n_batch)) if not settings.quick else (min(n_single, 5), min(n_batch, 10))
        log(f"overhead: {name} ({ns} single, {nb} batched)")
        per_router[name] = run_worker(name, spec, pfile, ns, nb)
        r = per_router[name]
        if "error" not in r:
            log(
                f"  p50 {r['single_p50_ms']:.1f} ms, {r['batch_prompts_per_s']:.0f} prompts/s, RSS {r['peak_rss_mb']:.0f} MB"
            )
    with Timer() as t_int:
        integ = integration_overhead(settings, specs, prompts)
    with Timer() as t_conc:
        conc = concurrent_load(settings, specs, prompts)
    pfile.unlink(missing_ok=True)
    result = {
        "seconds": time.time() - start,
        "settings": settings.as_dict(),
        "machine": machine_info(),
        "prompts": {k: prompt_stats(v) for k, v in prompts.items()},
        "routers": per_router,
        "integration": integ,
        "concurrent": conc,
        "timings": {"prepare_s": t_prep.s, "integration_s": t_int.s, "concurrent_s": t_conc.s},
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    write_json(settings.results_dir / "overhead.json", result)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    from bench.quality import add_args, settings_from

    parser = argparse.ArgumentParser(description="Router overhead benchmarks")
    add_args(parser)
    args = parser.parse_args(argv)
    settings = settings_from(args)
    settings.extra["command"] = "python -m bench.overhead " + " ".join(sys.argv[1:] if argv is None else argv)
    run(settings)


if __name__ == "__main__":
    main()
