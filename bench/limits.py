"""Machine-dependent limits, measured here rather than asserted in the test suite (their behaviour is tested there).

- **Megabyte prompts** (``tests/core/test_static_embedder.py`` checks that only the first ``512 * CHARS_PER_TOKEN_CAP``
  characters reach the static tokenizer, ``tests/reliability/test_reliability_input.py`` that a 1 MB prompt routes like its
  start): the static embedder embeds a ~1.1 MB prompt in under 2 s, and the ``default`` router (MiniLM) scores each
  of four 1 MB prompts (English, emoji and CJK, one repeated letter, mixed scripts) in under 60 s.
- **Memory soak** (``tests/reliability/test_reliability_load.py`` checks that no object is kept per call): after a warm-up
  round, four more rounds of 1,000 concurrent calls (LangChain and LlamaIndex, async and threads, instant fake
  children) grow the resident set size by under 50 MB.

Run ``python -m bench.limits`` (under a minute on 2 cores); it writes ``limits.json`` to the results folder, prints
each measurement next to its limit and exits with status 1 when one is exceeded.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_RESULTS, Timer, log, machine_info, write_json

#: Seconds allowed to embed the megabyte prompt with the static embedder.
MEGABYTE_PROMPT_LIMIT_S = 2.0
#: Seconds allowed for the ``default`` router to score one 1 MB prompt.
MEGABYTE_MINILM_LIMIT_S = 60.0
MB = 1_000_000
#: Resident-set growth allowed over the soak's rounds after the warm-up.
SOAK_GROWTH_LIMIT_MB = 50.0
SOAK_ROUNDS = 4
SOAK_CALLS = 1000

PROMPTS = [
    *(f"Prove that there are infinitely many primes of the form {k}n+1 and explain each step." for k in range(2, 14)),
    *(f"thanks, see you {day}!" for day in ("monday", "tuesday", "friday", "soon", "later", "tomorrow")),
    *(f"What is the capital of {c}?" for c in ("France", "Peru", "Japan", "Kenya", "Chile", "Norway")),
    "Derive the Black-Scholes equation from first principles.",
    "List five fruits.",
]


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux ``/proc``)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def megabyte_prompt() -> dict[str, Any]:
    """Time to embed a ~1.1 MB prompt with the shipped static embedder (after loading it)."""
    from routellm_core.embedding.static import StaticEmbedder

    embedder = StaticEmbedder()
    embedder.embed(["load the vectors"])
    huge = "The quick brown fox jumps over the lazy dog. " * 25_000
    with Timer() as t:
        embedder.embed([huge])
    return {"prompt_chars": len(huge), "seconds": t.s, "limit_s": MEGABYTE_PROMPT_LIMIT_S}


def megabyte_prompts_minilm() -> dict[str, Any]:
    """Seconds the ``default`` router takes to score each of four 1 MB prompts (after loading it)."""
    from routellm_core.routers.registry import load_router

    english = "The quick brown fox jumps over the lazy dog while we prove that primes never run out. "
    prompts = {
        "english": (english * (MB // len(english) + 1))[:MB],
        "emoji_cjk": ("é😀中 " * (MB // 4 + 1))[:MB],
        "one_letter": "x" * MB,
        "mixed_scripts": ("مرحبا بالعالم Привет мир こんにちは세계 " * (MB // 34 + 1))[:MB],
    }
    router = load_router("default")
    router.predict_win_rate(["load the model"])
    seconds = {}
    for name, text in prompts.items():
        with Timer() as t:
            router.predict_win_rate([text])
        seconds[name] = t.s
    return {"seconds": seconds, "max_s": max(seconds.values()), "limit_s": MEGABYTE_MINILM_LIMIT_S}


def _soak_round(lc: Any, li: Any, offset: int) -> int:
    """One round: ``SOAK_CALLS`` calls, 40% LangChain async, 40% LlamaIndex async, 20% from 16 threads."""
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    def li_messages(i: int) -> list[ChatMessage]:
        return [ChatMessage(role=MessageRole.USER, content=PROMPTS[i % len(PROMPTS)])]

    n_async = SOAK_CALLS * 2 // 5

    async def run_async() -> int:
        lc_calls = [lc.ainvoke(PROMPTS[i % len(PROMPTS)]) for i in range(offset, offset + n_async)]
        li_calls = [li.achat(li_messages(i)) for i in range(offset, offset + n_async)]
        return len(await asyncio.gather(*lc_calls, *li_calls))

    done = asyncio.run(run_async())

    def one(i: int) -> None:
        if i % 2:
            lc.invoke(PROMPTS[i % len(PROMPTS)])
        else:
            li.chat(li_messages(i))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(SOAK_CALLS - done)))
    return SOAK_CALLS


def memory_soak() -> dict[str, Any]:
    """Resident-set growth over ``SOAK_ROUNDS`` rounds of concurrent calls through both integrations."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from llama_index.core.llms import MockLLM

    from langchain_routellm import ChatRouteLLM
    from llamaindex_routellm import RouteLLM
    from routellm_core.routers.registry import load_router
    from routellm_core.routing.policy import RoutingPolicy

    policy = RoutingPolicy(load_router("default"), threshold=0.5)

    def lc_child(text: str) -> GenericFakeChatModel:
        return GenericFakeChatModel(messages=itertools.repeat(AIMessage(content=text)))

    lc = ChatRouteLLM(strong=lc_child("strong"), weak=lc_child("weak"), router=policy)
    li = RouteLLM(strong=MockLLM(max_tokens=4), weak=MockLLM(max_tokens=4), router=policy)
    with Timer() as warm:
        _soak_round(lc, li, 0)  # warm-up: caches, thread pools, lazy imports
    gc.collect()
    baseline = rss_mb()
    samples = []
    with Timer() as t:
        for r in range(1, SOAK_ROUNDS + 1):
            _soak_round(lc, li, r * SOAK_CALLS)
            gc.collect()
            samples.append(rss_mb())
    return {
        "calls_per_round": SOAK_CALLS,
        "rounds": SOAK_ROUNDS,
        "warmup_s": warm.s,
        "rounds_s": t.s,
        "rss_baseline_mb": baseline,
        "rss_after_rounds_mb": samples,
        "growth_mb": samples[-1] - baseline,
        "limit_mb": SOAK_GROWTH_LIMIT_MB,
    }


def run(results_dir: Path) -> bool:
    """Measure both limits, write ``limits.json``; True when every measurement is within its limit."""
    mb = megabyte_prompt()
    log(f"megabyte prompt, static embedder: {mb['seconds']:.3f} s (limit {mb['limit_s']} s)")
    mb_minilm = megabyte_prompts_minilm()
    log(f"megabyte prompts, default router: {mb_minilm['max_s']:.2f} s at most (limit {mb_minilm['limit_s']} s)")
    soak = memory_soak()
    after = ", ".join(f"{mb:.0f}" for mb in soak["rss_after_rounds_mb"])
    log(f"memory soak: RSS {soak['rss_baseline_mb']:.0f} MB -> {after} MB (limit +{soak['limit_mb']:.0f} MB)")
    ok = {
        "megabyte_prompt": mb["seconds"] < mb["limit_s"],
        "megabyte_prompts_minilm": mb_minilm["max_s"] < mb_minilm["limit_s"],
        "memory_soak": soak["growth_mb"] < soak["limit_mb"],
    }
    results = {"megabyte_prompt": mb, "megabyte_prompts_minilm": mb_minilm, "memory_soak": soak}
    write_json(results_dir / "limits.json", {"machine": machine_info(), **results, "within_limits": ok})
    for name, passed in ok.items():
        print(f"{name}: {'within the limit' if passed else 'LIMIT EXCEEDED'}")
    return all(ok.values())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    sys.exit(0 if run(args.results_dir) else 1)


if __name__ == "__main__":
    main()
