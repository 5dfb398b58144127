"""Escalation online: what the cascade adds to latency and time to first token, measured through ``ChatRouteLLM``.

A real ``ChatRouteLLM`` with the shipped ``default`` router; the children are chat models that do nothing but wait
a fixed, stated time (:data:`WEAK`, :data:`STRONG`: a time to first token, then tokens at a fixed rate, scheduled
from the call's start so the waits do not drift), so every number isolates what the routing and the cascade add.
The route is forced by the threshold on the real router (``threshold=1.0``: every call to weak, the default's win
rates stay below 0.7; ``threshold=0.0``: every call to strong), and the answers are scripted so the cascade's
outcome is known: a second cheap model that gives the same final number keeps the weak answer, one that gives
another number escalates. Each call's ``routellm`` record is checked against the expected outcome.

Measured in the same run, the cases interleaved round-robin on distinct prompts (a seeded mix of MT Bench, GSM8K,
MMLU and DC-Router test prompts, so routing never hits the embedding cache):

- the weak and the strong model called directly (the fake models' own overhead: LangChain's and the waits');
- routed without escalation (to weak, to strong);
- the cascade pre-routed to strong; kept (the second cheap answer agrees; it runs concurrently, so about one weak
  call's time); escalated (weak then strong, sequential); ``check="self_verification"`` kept and escalated (one
  extra short sequential call); ``invoke`` and ``ainvoke``;
- streaming time to first token (``stream`` and ``astream``): plain, kept (the weak answer is held until its check
  passed) and escalated (the whole weak answer, then the strong model's first token);
- throughput under concurrency (``asyncio.gather`` of ``ainvoke``): the kept and the escalated cascade against
  plain routing and the weak model called directly.

Each row lists the model calls the design makes (sequential; in all) and the measured calls per request (counted
by the fake models), the scripted latency of the sequential path, p50/p95, p50 minus the scripted latency, and the
*engine overhead*: that minus the fake models' own overhead on the same path (from the direct rows).

Run: ``python -m bench.cascade_latency`` (about two minutes on 2 cores; ``--quick`` for a smoke run, numbers
meaningless); writes ``bench/results/cascade_latency.json`` and its section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from bench.common import bench_parser, log, machine_info, machine_line, percentile_ms, publish
from routellm_core.escalation.checks import VERIFY_QUESTION

SECTION = "## Escalation online: latency and time to first token through `ChatRouteLLM`"
FILLER = ("Let ", "me ", "work ", "this ", "out ", "step ", "by ", "step; ", "the ", "answer ", "is ")


@dataclass(frozen=True)
class Timing:
    """A fake model's scripted timing: the first token after ``first_token_ms``, then one every ``interval_ms``."""

    first_token_ms: float
    tokens: int
    interval_ms: float

    @property
    def total_ms(self) -> float:
        """Time of the whole answer (an ``invoke`` waits this long)."""
        return self.first_token_ms + (self.tokens - 1) * self.interval_ms

    def as_dict(self) -> dict[str, float]:
        return {
            "first_token_ms": self.first_token_ms,
            "tokens": self.tokens,
            "interval_ms": self.interval_ms,
            "total_ms": self.total_ms,
        }


#: The weak (and the second cheap) model: first token at 10 ms, 11 tokens 3 ms apart, 40 ms in all.
WEAK = Timing(10.0, 11, 3.0)
#: The strong model: first token at 30 ms, 31 tokens 3 ms apart, 120 ms in all.
STRONG = Timing(30.0, 31, 3.0)
#: The self-verification reply ("Yes" / "No") is one token: the weak model's time to first token.
VERIFY_MS = WEAK.first_token_ms


class TimedChatModel(BaseChatModel):
    """A chat model that waits its scripted :class:`Timing` and answers ``... the answer is <answer>``.

    Asked the self-verification question it answers ``verdict`` (one token). Streams token by token (firing
    ``on_llm_new_token`` as provider models do), sync and async; counts its calls.
    """

    model: str
    answer: str
    first_token_ms: float
    tokens: int
    interval_ms: float
    verdict: str = "Yes"
    _calls: list[int] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "timed-fake"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model}

    @property
    def calls(self) -> int:
        """Calls made so far (invoke, stream, async alike)."""
        return len(self._calls)

    def _pieces(self, messages: list[BaseMessage]) -> list[str]:
        self._calls.append(1)  # list.append is atomic: safe from the cascade's check thread
        if messages and messages[-1].content == VERIFY_QUESTION:
            return [self.verdict]
        return [FILLER[i % len(FILLER)] for i in range(self.tokens - 1)] + [self.answer]

    def _schedule(self, n: int) -> list[float]:
        """Seconds from the call's start at which each of ``n`` tokens is due."""
        return [(self.first_token_ms + i * self.interval_ms) / 1000.0 for i in range(n)]

    def _message(self, pieces: list[str]) -> AIMessage:
        usage = {"input_tokens": 100, "output_tokens": len(pieces), "total_tokens": 100 + len(pieces)}
        return AIMessage(content="".join(pieces), usage_metadata=usage)  # type: ignore[arg-type]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        start = time.perf_counter()
        pieces = self._pieces(messages)
        _sleep_until(start + self._schedule(len(pieces))[-1])
        return ChatResult(generations=[ChatGeneration(message=self._message(pieces))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        start = time.perf_counter()
        pieces = self._pieces(messages)
        await _asleep_until(start + self._schedule(len(pieces))[-1])
        return ChatResult(generations=[ChatGeneration(message=self._message(pieces))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        start = time.perf_counter()
        pieces = self._pieces(messages)
        for piece, due in zip(pieces, self._schedule(len(pieces)), strict=True):
            _sleep_until(start + due)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        start = time.perf_counter()
        pieces = self._pieces(messages)
        for piece, due in zip(pieces, self._schedule(len(pieces)), strict=True):
            await _asleep_until(start + due)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk


def _sleep_until(deadline: float) -> None:
    left = deadline - time.perf_counter()
    if left > 0:
        time.sleep(left)


async def _asleep_until(deadline: float) -> None:
    left = deadline - time.perf_counter()
    if left > 0:
        await asyncio.sleep(left)


def timed(model: str, timing: Timing, answer: str = "42", verdict: str = "Yes") -> TimedChatModel:
    """A :class:`TimedChatModel` with ``timing``."""
    return TimedChatModel(
        model=model,
        answer=answer,
        first_token_ms=timing.first_token_ms,
        tokens=timing.tokens,
        interval_ms=timing.interval_ms,
        verdict=verdict,
    )


# ---- the cases -------------------------------------------------------------------------------------------------
#: One step of a case's sequential path: (side whose direct row measures the fake's own overhead, "total" or
#: "ttft" of that call, scripted milliseconds).
Step = tuple[str, str, float]


@dataclass
class Case:
    """One measured configuration.

    Attributes:
        key: JSON key. label: Table label. mode: ``invoke`` / ``ainvoke`` / ``stream`` / ``astream``.
        target: The object called (a fake model directly, or a ``ChatRouteLLM``).
        sequential: Model calls on the sequential path, by design. calls: Model calls in all, by design.
        path: The sequential path to the answer's end. ttft_path: ... to its first token (streams only).
        expect: ``(served, escalated)`` each call's record must show (None for direct calls).
        models: The fake models whose calls are counted.
    """

    key: str
    label: str
    mode: str
    target: Any
    sequential: int
    calls: int
    path: tuple[Step, ...]
    ttft_path: tuple[Step, ...] = ()
    expect: tuple[str, bool] | None = None
    models: tuple[TimedChatModel, ...] = ()
    totals: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    mismatches: int = 0

    @property
    def scripted_ms(self) -> float:
        return sum(ms for _, _, ms in self.path)

    @property
    def scripted_ttft_ms(self) -> float:
        return sum(ms for _, _, ms in self.ttft_path)


def _w(kind: str = "total") -> Step:
    return ("weak", kind, WEAK.total_ms if kind == "total" else WEAK.first_token_ms)


def _s(kind: str = "total") -> Step:
    return ("strong", kind, STRONG.total_ms if kind == "total" else STRONG.first_token_ms)


#: The self-verification call is an ``invoke`` of the weak model: its direct row's overhead stands for it.
_VERIFY: Step = ("weak", "total", VERIFY_MS)


def build_cases(router: Any, modes: Sequence[str]) -> list[Case]:
    """Every case of the sequential benchmark, each with its own fake models (so calls are counted per case)."""
    from langchain_routellm import ChatRouteLLM
    from routellm_core.escalation import Escalation

    def chat(threshold: float, escalate: Any = None, verdict: str = "Yes", second: str | None = "42") -> Any:
        weak = timed("weak", WEAK, verdict=verdict)
        strong = timed("strong", STRONG, answer="41")
        esc, models = None, [weak, strong]
        if escalate == "agreement":
            other = timed("weak-2", WEAK, answer=second) if second is not None else None
            esc = Escalation(second=other)
            models += [other] if other is not None else []
        elif escalate == "self_verification":
            esc = Escalation(check="self_verification")
        llm = ChatRouteLLM(strong=strong, weak=weak, router=router, threshold=threshold, escalate=esc)
        return llm, tuple(models)

    cases: list[Case] = []
    for mode in modes:
        streaming = mode in ("stream", "astream")
        for side, timing in (("weak", WEAK), ("strong", STRONG)):
            model = timed(side, timing)
            ttft = ((side, "ttft", timing.first_token_ms),) if streaming else ()
            direct: tuple[Step, ...] = ((side, "total", timing.total_ms),)
            label = f"{side} model directly"
            cases.append(Case(f"{mode}/direct {side}", label, mode, model, 1, 1, direct, ttft, models=(model,)))
        specs: list[tuple[str, str, tuple[Any, ...], int, int, tuple[Step, ...], tuple[Step, ...], tuple[str, bool]]]
        specs = [
            ("routed to weak", "routed to weak (no escalation)", (1.0,), 1, 1, (_w(),), (_w("ttft"),), ("weak", False)),
            ("routed to strong", "routed to strong (no escalation)", (0.0,), 1, 1, (_s(),), (_s("ttft"),),
             ("strong", False)),
            ("cascade pre-routed", "cascade, pre-routed to strong", (0.0, "agreement"), 1, 1, (_s(),),
             (_s("ttft"),), ("strong", False)),
            ("cascade kept", "cascade kept (second model agrees)", (1.0, "agreement"), 1, 2, (_w(),), (_w(),),
             ("weak", False)),
            ("cascade kept, resampled", "cascade kept (`second=None`: weak resampled)", (1.0, "agreement", "Yes", None),
             1, 2, (_w(),), (_w(),), ("weak", False)),
            ("cascade escalated", "cascade escalated (second model disagrees)", (1.0, "agreement", "Yes", "7"), 2, 3,
             (_w(), _s()), (_w(), _s("ttft")), ("strong", True)),
            ("self-verification kept", "`check=\"self_verification\"` kept (Yes)", (1.0, "self_verification"), 2, 2,
             (_w(), _VERIFY), (_w(), _VERIFY), ("weak", False)),
            ("self-verification escalated", "`check=\"self_verification\"` escalated (No)",
             (1.0, "self_verification", "No"), 3, 3, (_w(), _VERIFY, _s()), (_w(), _VERIFY, _s("ttft")),
             ("strong", True)),
        ]  # fmt: skip
        wanted = {
            "invoke": None,
            "ainvoke": {"routed to weak", "routed to strong", "cascade kept", "cascade escalated"},
            "stream": {"routed to weak", "routed to strong", "cascade pre-routed", "cascade kept", "cascade escalated"},
            "astream": {"routed to weak", "cascade kept", "cascade escalated"},
        }[mode]
        for key, label, args, seq, calls, path, ttft_path, expect in specs:
            if wanted is not None and key not in wanted:
                continue
            llm, models = chat(*args)
            ttft_path = ttft_path if streaming else ()
            cases.append(Case(f"{mode}/{key}", label, mode, llm, seq, calls, path, ttft_path, expect, models))
    return cases


# ---- measuring -------------------------------------------------------------------------------------------------
def _record(message: Any) -> dict[str, Any] | None:
    return (getattr(message, "response_metadata", None) or {}).get("routellm")


def _check(case: Case, record: dict[str, Any] | None) -> None:
    if case.expect is None:
        return
    if record is None or (record.get("served"), bool(record.get("escalated"))) != case.expect:
        case.mismatches += 1


def _run_sync(case: Case, prompt: str) -> None:
    start = time.perf_counter()
    if case.mode == "invoke":
        message = case.target.invoke(prompt)
        case.totals.append(time.perf_counter() - start)
        _check(case, _record(message))
        return
    first: float | None = None
    record = None
    for chunk in case.target.stream(prompt):
        if first is None and chunk.text:
            first = time.perf_counter() - start
        record = record or _record(chunk)
    case.totals.append(time.perf_counter() - start)
    case.ttfts.append(first if first is not None else float("nan"))
    _check(case, record)


async def _run_async(case: Case, prompt: str) -> float:
    start = time.perf_counter()
    if case.mode == "ainvoke":
        message = await case.target.ainvoke(prompt)
        elapsed = time.perf_counter() - start
        _check(case, _record(message))
        return elapsed
    first: float | None = None
    record = None
    async for chunk in case.target.astream(prompt):
        if first is None and chunk.text:
            first = time.perf_counter() - start
        record = record or _record(chunk)
    elapsed = time.perf_counter() - start
    case.ttfts.append(first if first is not None else float("nan"))
    _check(case, record)
    return elapsed


def run_sequential(cases: list[Case], prompts: Iterator[str], n: int, warmup: int) -> None:
    """``warmup`` unmeasured then ``n`` measured calls per case, the cases interleaved round-robin."""
    loop = asyncio.new_event_loop()
    try:
        for rnd in range(warmup + n):
            for case in cases:
                if case.mode in ("invoke", "stream"):
                    _run_sync(case, next(prompts))
                else:
                    case.totals.append(loop.run_until_complete(_run_async(case, next(prompts))))
            if rnd == warmup - 1:
                for case in cases:
                    case.totals.clear()
                    case.ttfts.clear()
                    case.mismatches = 0
                    for model in case.models:
                        model._calls.clear()
            if (rnd + 1) % 10 == 0:
                log(f"round {rnd + 1}/{warmup + n}")
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())  # LangChain's stream tee leaves generators to close
        loop.close()


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile_ms(values, 50),
        "p95_ms": percentile_ms(values, 95),
        "mean_ms": 1000 * statistics.fmean(values),
    }


def summarise(cases: list[Case]) -> dict[str, Any]:
    """Per case: design calls, measured calls, scripted and measured times, the fake's and the engine's overhead."""
    excess: dict[tuple[str, str, str], float] = {}  # (mode, side, total|ttft) -> direct p50 - scripted
    for case in cases:
        if case.expect is None:
            side = case.path[0][0]
            excess[(case.mode, side, "total")] = percentile_ms(case.totals, 50) - case.scripted_ms
            if case.ttfts:
                excess[(case.mode, side, "ttft")] = percentile_ms(case.ttfts, 50) - case.scripted_ttft_ms
    rows: dict[str, Any] = {}
    for case in cases:
        total = _stats(case.totals)
        fake = sum(excess.get((case.mode, side, kind), 0.0) for side, kind, _ in case.path)
        row: dict[str, Any] = {
            "label": case.label,
            "mode": case.mode,
            "n": len(case.totals),
            "served": case.expect[0] if case.expect else case.path[0][0],
            "escalated": bool(case.expect and case.expect[1]),
            "sequential_calls_design": case.sequential,
            "calls_design": case.calls,
            "calls_measured": sum(m.calls for m in case.models) / max(len(case.totals), 1),
            "record_mismatches": case.mismatches,
            "scripted_ms": case.scripted_ms,
            "total": total,
            "total_minus_scripted_p50_ms": total["p50_ms"] - case.scripted_ms,
            "engine_overhead_p50_ms": total["p50_ms"] - case.scripted_ms - (fake if case.expect else 0.0),
        }
        if case.ttfts:
            ttft = _stats(case.ttfts)
            fake_ttft = sum(excess.get((case.mode, side, kind), 0.0) for side, kind, _ in case.ttft_path)
            row |= {
                "scripted_ttft_ms": case.scripted_ttft_ms,
                "ttft": ttft,
                "ttft_minus_scripted_p50_ms": ttft["p50_ms"] - case.scripted_ttft_ms,
                "ttft_engine_overhead_p50_ms": ttft["p50_ms"]
                - case.scripted_ttft_ms
                - (fake_ttft if case.expect else 0.0),
            }
        rows[case.key] = row
    return rows


# ---- concurrency ---------------------------------------------------------------------------------------------------
async def _gather(call: Callable[[str], Awaitable[Any]], prompts: list[str]) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def one(prompt: str) -> None:
        start = time.perf_counter()
        await call(prompt)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    return time.perf_counter() - start, latencies


def run_concurrency(router: Any, prompts: Iterator[str], levels: Sequence[int], rounds: int) -> dict[str, Any]:
    """``level`` simultaneous ``ainvoke`` calls, ``rounds`` times per case (cases interleaved)."""
    from langchain_routellm import ChatRouteLLM
    from routellm_core.escalation import Escalation

    def make(kind: str) -> tuple[Callable[[str], Awaitable[Any]], tuple[TimedChatModel, ...], float, int]:
        weak, strong = timed("weak", WEAK), timed("strong", STRONG, answer="41")
        if kind == "weak model directly":
            return weak.ainvoke, (weak,), WEAK.total_ms, 1
        if kind == "routed to weak (no escalation)":
            return (
                ChatRouteLLM(strong=strong, weak=weak, router=router, threshold=1.0).ainvoke,
                (weak,),
                WEAK.total_ms,
                1,
            )
        other = timed("weak-2", WEAK, answer="42" if kind.startswith("cascade kept") else "7")
        llm = ChatRouteLLM(strong=strong, weak=weak, router=router, threshold=1.0, escalate=Escalation(second=other))
        if kind.startswith("cascade kept"):
            return llm.ainvoke, (weak, strong, other), WEAK.total_ms, 2
        return llm.ainvoke, (weak, strong, other), WEAK.total_ms + STRONG.total_ms, 3

    kinds = ("weak model directly", "routed to weak (no escalation)", "cascade kept", "cascade escalated")
    out: dict[str, Any] = {}

    async def main() -> None:
        for level in levels:
            built = {kind: make(kind) for kind in kinds}
            walls: dict[str, list[float]] = {kind: [] for kind in kinds}
            lats: dict[str, list[float]] = {kind: [] for kind in kinds}
            for kind in kinds:  # warm-up round
                await _gather(built[kind][0], [next(prompts) for _ in range(level)])
                for model in built[kind][1]:
                    model._calls.clear()
            for _ in range(rounds):
                for kind in kinds:
                    wall, lat = await _gather(built[kind][0], [next(prompts) for _ in range(level)])
                    walls[kind].append(wall)
                    lats[kind] += lat
            for kind in kinds:
                _, models, scripted, calls = built[kind]
                requests = level * rounds
                out[f"{kind} @ {level}"] = {
                    "case": kind,
                    "concurrency": level,
                    "requests": requests,
                    "wall_s": sum(walls[kind]),
                    "round_wall_p50_ms": percentile_ms(walls[kind], 50),
                    "excess_per_request_ms": (percentile_ms(walls[kind], 50) - scripted) / level,
                    "requests_per_s": requests / sum(walls[kind]),
                    "ideal_requests_per_s": level / (scripted / 1000.0),
                    "scripted_ms": scripted,
                    "latency": _stats(lats[kind]),
                    "calls_design": calls,
                    "calls_measured": sum(m.calls for m in models) / requests,
                }
                log(f"concurrency {level} {kind}: {out[f'{kind} @ {level}']['requests_per_s']:.0f} req/s")

    asyncio.run(main())
    return out


# ---- the report ----------------------------------------------------------------------------------------------------
def _ms(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} ms"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f} ms"


def section(res: dict[str, Any]) -> list[str]:
    """The ``BENCHMARKS.md`` section."""
    rows, conc = res["rows"], res["concurrency"]
    w, s = res["scripted"]["weak"], res["scripted"]["strong"]
    lines = [
        SECTION,
        "",
        f"`{res['command']}` on {machine_line(res['machine'])}; {res['seconds']:.0f} s. "
        + ("**Quick run: numbers meaningless.** " if res.get("quick") else "")
        + f"A real `ChatRouteLLM` with the shipped `default` router; the children are fake LangChain chat models that "
        f"only wait a scripted time: **weak** (and the second cheap model) first token at {w['first_token_ms']:.0f} ms, "
        f"{w['tokens']} tokens {w['interval_ms']:.0f} ms apart, {w['total_ms']:.0f} ms in all; **strong** first token "
        f"at {s['first_token_ms']:.0f} ms, {s['tokens']} tokens, {s['total_ms']:.0f} ms; the self-verification reply "
        f"is one token ({res['scripted']['verify_ms']:.0f} ms). Routes forced on the real router by the threshold "
        "(1.0: weak, 0.0: strong); a second cheap answer with the same final number keeps the weak answer, another "
        "number escalates; every call's `routellm` record was checked against the expected outcome "
        f"({res['record_mismatches']} mismatches). {res['n']} measured calls per row after "
        f"{res['warmup']} warm-up calls, the rows interleaved round-robin, each call on a distinct prompt (a seeded "
        "mix of MT Bench, GSM8K, MMLU and DC-Router prompts: routing never hits the embedding cache).",
        "",
        "*calls*: model calls per request, by design (sequential / in all) and counted by the fake models. "
        "*scripted*: the sum of the scripted latencies on the sequential path. *fake + engine*: p50 minus scripted "
        "(LangChain's own cost of calling a chat model and the timer's slack are in it: see the direct rows). "
        "*engine*: that minus the direct rows' excess over the same sequential path, i.e. what routing and the "
        "cascade add (±0.5 ms is noise).",
        "",
        "### Per request: `invoke` / `ainvoke`",
        "",
        "| call | case | served | calls: sequential / all (measured) | scripted | p50 | p95 | fake + engine p50 | "
        "engine p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        if row["mode"] not in ("invoke", "ainvoke"):
            continue
        direct = row["label"].endswith("directly")
        lines.append(
            f"| `{row['mode']}` | {row['label']} | {row['served']}{' (escalated)' if row['escalated'] else ''} | "
            f"{row['sequential_calls_design']} / {row['calls_design']} ({row['calls_measured']:.2f}) | "
            f"{_ms(row['scripted_ms'], 0)} | {_ms(row['total']['p50_ms'])} | {_ms(row['total']['p95_ms'])} | "
            f"{_signed(row['total_minus_scripted_p50_ms'])} | "
            f"{'(baseline)' if direct else _signed(row['engine_overhead_p50_ms'])} |"
        )
    lines += [
        "",
        "### Streaming: time to first token (`stream` / `astream`)",
        "",
        "| call | case | calls: sequential / all | scripted TTFT | TTFT p50 | TTFT p95 | TTFT engine p50 | "
        "scripted total | total p50 | total engine p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        if row["mode"] not in ("stream", "astream"):
            continue
        direct = row["label"].endswith("directly")
        lines.append(
            f"| `{row['mode']}` | {row['label']} | {row['sequential_calls_design']} / {row['calls_design']} "
            f"({row['calls_measured']:.2f}) | {_ms(row['scripted_ttft_ms'], 0)} | {_ms(row['ttft']['p50_ms'])} | "
            f"{_ms(row['ttft']['p95_ms'])} | "
            f"{'(baseline)' if direct else _signed(row['ttft_engine_overhead_p50_ms'])} | "
            f"{_ms(row['scripted_ms'], 0)} | {_ms(row['total']['p50_ms'])} | "
            f"{'(baseline)' if direct else _signed(row['engine_overhead_p50_ms'])} |"
        )
    lines += [
        "",
        "### Throughput under concurrency (`asyncio.gather` of `ainvoke`)",
        "",
        f"{res['concurrency_rounds']} rounds per row (after one warm-up round), the rows interleaved. *ideal*: "
        "concurrency / scripted latency (every wait overlapped, no CPU cost). *excess / request*: (the median "
        "round's wall time − scripted latency) / concurrency, the time the requests of a round could not overlap "
        "(mostly the Python work of each call, on the event loop and the routing threads). These rows are bound by "
        "the CPU, so they vary between runs more than the sequential ones (other work on the cores shows in them).",
        "",
        "| case | concurrent | requests | requests/s | ideal | round wall p50 | excess / request | latency p50 | "
        "latency p95 | model calls/request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in conc.values():
        lines.append(
            f"| {row['case']} | {row['concurrency']} | {row['requests']} | {row['requests_per_s']:.0f} | "
            f"{row['ideal_requests_per_s']:.0f} | {_ms(row['round_wall_p50_ms'], 0)} | "
            f"{_ms(row['excess_per_request_ms'], 2)} | {_ms(row['latency']['p50_ms'])} | {_ms(row['latency']['p95_ms'])} | "
            f"{row['calls_measured']:.2f} |"
        )
    lines += ["", *_reading(res)]
    return lines


def _reading(res: dict[str, Any]) -> list[str]:
    """A short summary written from the numbers."""
    rows = res["rows"]

    def p50(key: str, what: str = "total") -> float | None:
        row = rows.get(key)
        return None if row is None or what not in row else row[what]["p50_ms"]

    def eng(key: str, what: str = "engine_overhead_p50_ms") -> float | None:
        row = rows.get(key)
        return None if row is None else row.get(what)

    out = [
        f"Reading: routing adds {_signed(eng('invoke/routed to weak'))} to an `invoke` (p50, engine only); a kept "
        f"cascade costs about one weak call ({_ms(p50('invoke/cascade kept'))} against {_ms(p50('invoke/direct weak'))} "
        f"for the weak model alone; engine {_signed(eng('invoke/cascade kept'))}, the concurrent second answer and the "
        f"check included), an escalated one the weak and the strong call in sequence "
        f"({_ms(p50('invoke/cascade escalated'))}; engine {_signed(eng('invoke/cascade escalated'))}), "
        f"self-verification one short call more ({_ms(p50('invoke/self-verification kept'))} kept). "
        f"Streaming, time to first token goes from "
        f"{_ms(p50('stream/routed to weak', 'ttft'))} (plain, routed to weak) to "
        f"{_ms(p50('stream/cascade kept', 'ttft'))} when the weak answer is held for its check, and "
        f"{_ms(p50('stream/cascade escalated', 'ttft'))} when it escalates (the whole weak answer, then the strong "
        f"model's first token; {_ms(p50('stream/routed to strong', 'ttft'))} when routed straight to strong); the "
        "cost is the scripted answer time, the engine adds "
        f"{_signed(eng('stream/cascade kept', 'ttft_engine_overhead_p50_ms'))} / "
        f"{_signed(eng('stream/cascade escalated', 'ttft_engine_overhead_p50_ms'))}.",
    ]
    conc = res["concurrency"]
    for level in sorted({row["concurrency"] for row in conc.values()}):
        rate = {row["case"]: row["requests_per_s"] for row in conc.values() if row["concurrency"] == level}
        if {"cascade kept", "routed to weak (no escalation)", "weak model directly"} <= set(rate):
            out.append(
                f"With {level} concurrent `ainvoke`: the kept cascade {rate['cascade kept']:.0f} requests/s, plain "
                f"routing {rate['routed to weak (no escalation)']:.0f}, the weak model directly "
                f"{rate['weak model directly']:.0f}, the escalated cascade {rate.get('cascade escalated', 0):.0f}."
            )
    return [" ".join(out)]


# ---- entry point ---------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = bench_parser("bench.cascade_latency", __doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="measured calls per row (default 40)")
    parser.add_argument("--concurrency", default="16,64", help="concurrent ainvoke levels (default 16,64)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per concurrency level (default 8)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 calls per row, one round of 4")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    n, warmup = (3, 1) if args.quick else (args.n, 3)
    levels = (4,) if args.quick else tuple(int(x) for x in args.concurrency.split(",") if x.strip())
    rounds = 1 if args.quick else args.rounds
    if n < 1 or rounds < 1 or not levels or min(levels) < 1:
        parser.error("--n, --rounds and every --concurrency level must be at least 1")
    start = time.time()
    machine = machine_info()
    from bench.overhead import latency_prompts
    from routellm_core import load_router

    router = load_router("default")
    modes = ("invoke", "ainvoke", "stream", "astream")
    cases = build_cases(router, modes)
    need = len(cases) * (n + warmup) + sum(level * (rounds + 1) * 4 for level in levels)
    prompts = iter(latency_prompts(0, need, 0, 0)["single"])
    log(f"{len(cases)} cases x {n} calls (+{warmup} warm-up), then concurrency {levels} x {rounds} rounds")
    run_sequential(cases, prompts, n, warmup)
    rows = summarise(cases)
    conc = run_concurrency(router, prompts, levels, rounds)
    res: dict[str, Any] = {
        "command": " ".join(["python -m bench.cascade_latency", *given]),
        "machine": machine,
        "quick": args.quick,
        "n": n,
        "warmup": warmup,
        "scripted": {"weak": WEAK.as_dict(), "strong": STRONG.as_dict(), "verify_ms": VERIFY_MS},
        "record_mismatches": sum(case.mismatches for case in cases),
        "rows": rows,
        "concurrency": conc,
        "concurrency_rounds": rounds,
        "seconds": time.time() - start,
    }
    if res["record_mismatches"]:
        bad = [case.key for case in cases if case.mismatches]
        raise SystemExit(f"bench.cascade_latency: the calls of {bad} did not end as the case scripts them")
    return publish(res, args, "cascade_latency", SECTION, section)


if __name__ == "__main__":
    main()
