"""One router's overhead, measured in a fresh process: ``python -m bench._worker SPEC.json`` prints JSON.

Only the standard library is imported before the clock starts, so "cold start" covers importing
``routellm_core`` (numpy, torch where the router needs it), loading the checkpoint and the first call (which
loads the embedding model). Peak RSS is this process's ``VmHWM``.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()
_WALL0 = time.time()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402


def _peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` can carry the parent's peak over a fork)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main(spec_path: str) -> dict[str, Any]:
    from pathlib import Path

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    prompts = json.loads(Path(spec["prompts_file"]).read_text(encoding="utf-8"))
    warm, single, batch = prompts["warmup"], prompts["single"][: spec["n_single"]], prompts["batch"][: spec["n_batch"]]

    # ---- cold start: import + load + first call --------------------------------------------------------------
    from routellm_core.routers.registry import load_router

    t_import = time.perf_counter() - _T0
    embedder = None
    if spec.get("backend"):  # the MiniLM embedder on a chosen backend, wrapped like the default one
        from routellm_core.embedding.cache import CachedEmbedder
        from routellm_core.embedding.embedders import TransformerEmbedder

        embedder = CachedEmbedder(TransformerEmbedder(backend=spec["backend"]))
    router = load_router(spec["checkpoint"], embedder=embedder)
    if spec.get("device") and hasattr(router, "device"):
        router.device = spec["device"]
    t_load = time.perf_counter() - _T0
    router.predict_win_rate([warm[0]])
    t_first = time.perf_counter() - _T0
    rss_after_load = _peak_rss_mb()

    for p in warm[1:]:
        router.predict_win_rate([p])

    # ---- embedding included: distinct prompts, so every call misses the embedding cache ----------------------
    lat = []
    for p in single:
        t = time.perf_counter()
        router.predict_win_rate([p])
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    router.predict_win_rate(batch)
    batch_s = time.perf_counter() - t

    out: dict[str, Any] = {
        "router": spec["name"],
        "checkpoint": str(spec["checkpoint"]),
        "embedder": getattr(router.embedder, "name", None) if router.uses_embedder else None,
        "embedding_backend": getattr(getattr(router.embedder, "inner", None), "backend_used", None),
        "cold_import_s": t_import,
        "cold_load_s": t_load,
        "cold_first_call_s": t_first,
        "wall_process_start_to_ready_s": None,
        "spawn_wall": _WALL0,
        "single_n": len(single),
        "single_p50_ms": _pct(lat, 50),
        "single_p99_ms": _pct(lat, 99),
        "single_mean_ms": 1000.0 * sum(lat) / len(lat),
        "batch_n": len(batch),
        "batch_s": batch_s,
        "batch_prompts_per_s": len(batch) / batch_s,
        "rss_after_load_mb": rss_after_load,
    }

    # ---- embedding excluded: scoring precomputed embeddings ---------------------------------------------------
    if router.uses_embedder:
        try:
            e_single = router.embed(single)
            e_batch = router.embed(batch)
            router.predict_from_embeddings(e_single[:1])
            lat_x = []
            for i in range(len(single)):
                t = time.perf_counter()
                router.predict_from_embeddings(e_single[i : i + 1])
                lat_x.append(time.perf_counter() - t)
            t = time.perf_counter()
            router.predict_from_embeddings(e_batch)
            bx = time.perf_counter() - t
            out.update(
                noembed_single_p50_ms=_pct(lat_x, 50),
                noembed_single_p99_ms=_pct(lat_x, 99),
                noembed_batch_prompts_per_s=len(batch) / bx,
            )
        except NotImplementedError:
            pass
    out["peak_rss_mb"] = _peak_rss_mb()
    torch = sys.modules.get("torch")  # report it only if the router imported it
    if torch is not None:
        out["torch_threads"] = torch.get_num_threads()
        out["cuda"] = torch.cuda.is_available()
    return out


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1])), flush=True)
