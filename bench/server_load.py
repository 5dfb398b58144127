"""Load through the OpenAI-compatible server (``routellm serve``): 1,000 concurrent requests, none lost, none mixed up,
and the server's overhead per request against calling the mock upstream directly, in the same run.

Three processes on this machine: the mock upstream (``routellm_core.server.mock_upstream``, which echoes
``"[<model>] <last user text>"`` on both ``/v1/chat/completions`` and ``/v1/responses``), the server in front of it
(the shipped ``fast`` router, ``router-fast-30%``), and this client (the real ``openai`` async client).

- **Overhead**: sequential requests, alternately straight to the mock and through the server, for each route:
  ``POST /v1/chat/completions`` (``chat.completions.create``, non-streamed and streamed to the last chunk), then
  ``POST /v1/responses`` (``responses.create``, non-streamed and streamed to the terminal ``response.completed``
  event); the difference of the medians is what the server adds to one request: a second HTTP hop, parsing,
  routing, the upstream call through the ``openai`` client, and relaying the answer.
- **Concurrent load**: N requests gathered at once (every fifth a ``responses.create``, the rest chat completions;
  every fourth streamed), first straight to the mock, then through the server. Each prompt carries a unique token;
  an answer counts only if it comes back with status 200, the text echoes its own prompt from the upstream its
  decision record names (a streamed response's record: the one on ``response.completed``), and that decision is the
  one the router gives the same prompt in this process (``RoutingPolicy.decide_batch``). Lost = no such answer.

Run: ``python -m bench.server_load [--requests 1000] [--sequential 300] [--workers 1] [--no-write]``; results go to
``bench/results/server_load.json`` and a section of ``BENCHMARKS.md`` (replaced on each run, other sections kept).

**Shared feedback store** (``--stores``): two server processes on different ports recording every decision in one
store, measured in the same run without a store, with one SQLite file, and with one PostgreSQL database (a real
server started with ``pgserver``): sequential latency added to a request (against calling the mock directly),
requests/s under concurrent load spread over both servers, then a ``bad`` verdict on every decision sent to the
server that did *not* route it; rows lost = decisions, verdicts and labels missing from the store afterwards (must
be 0). ``python -m bench.server_load --stores [--store-requests 400] [--store-sequential 150]``; results in
``bench/results/server_load_stores.json`` and their own section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai

from bench.common import DEFAULT_RESULTS, REPO, log, machine_info, machine_line, percentile_ms, write_json
from routellm_core.routing.policy import RoutingPolicy

BENCHMARKS = REPO / "BENCHMARKS.md"
SECTION_START = "<!-- server-load:start -->"
SECTION_END = "<!-- server-load:end -->"
STORES_START = "<!-- feedback-store-load:start -->"
STORES_END = "<!-- feedback-store-load:end -->"
#: Bearer token of the servers of the store comparison (handed over in this environment variable).
TOKEN_ENV, TOKEN = "ROUTELLM_BENCH_TOKENS", "bench-stores-token"
MODEL = "router-fast-30%"
#: Used when the shared benchmark data is missing (the ``fast`` router sends few of these to strong).
FALLBACK_PROMPTS = [
    "Prove that there are infinitely many primes of the form 4n+3, step by step.",
    "thanks, see you tomorrow!",
    "Write a Rust function that merges overlapping intervals and analyse its complexity.",
    "What is the capital of Peru?",
    "Derive the Black-Scholes equation from first principles.",
]


# ---- processes -------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(
    command: list[str], ready: str, timeout: float = 120.0, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in its own session and wait until ``ready`` answers a GET or POST with any HTTP status."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROUTELLM_SERVER_API_KEYS", "OPENAI_API_KEY")}
    env.update(extra_env or {})
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{command[2]} exited with {process.returncode}")
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"{command[2]} did not start within {timeout} s")
        try:
            httpx.get(ready, timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# ---- requests --------------------------------------------------------------------------------------------
def prompt_pool(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct prompts: a seeded mix of MT Bench, GSM8K and MMLU prompts, each with its request number."""
    try:
        from routellm_core import data

        pool: list[str] = []
        for name in ("mt_bench", "gsm8k", "mmlu"):
            pool += list(data.load_benchmark(name).prompts)
        pool = list(dict.fromkeys(p for p in pool if p.strip()))
    except data.DataNotFoundError:
        pool = FALLBACK_PROMPTS
    order = np.random.default_rng(seed).permutation(len(pool))
    return [f"{pool[order[i % len(pool)]]}\n\n(request {i}, {uuid.uuid4().hex[:8]})" for i in range(n)]


#: The two routes measured: OpenAI's chat completions and its Responses API.
CHAT, RESPONSES = "chat", "responses"
#: In the concurrent load, request ``i`` uses the Responses API when ``i % RESPONSES_EVERY == RESPONSES_EVERY - 1``.
RESPONSES_EVERY = 5


class _IncompleteStream(Exception):
    """A Responses stream that ended without its terminal ``response.completed`` event."""


async def _call_responses(client: openai.AsyncOpenAI, model: str, prompt: str, stream: bool) -> tuple[str, Any]:
    """``responses.create``: the answer's text and decision record (streams: read to the terminal event; the text
    from the deltas, the record from ``response.completed``)."""
    if not stream:
        answer = await client.responses.create(model=model, input=prompt)
        return answer.output_text, (answer.model_extra or {}).get("routellm")
    events = [e async for e in await client.responses.create(model=model, input=prompt, stream=True)]
    if not events or events[-1].type != "response.completed":
        raise _IncompleteStream(events[-1].type if events else "no events")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    return text, (events[-1].response.model_extra or {}).get("routellm")


async def _call(client: openai.AsyncOpenAI, model: str, prompt: str, stream: bool, api: str = CHAT) -> dict[str, Any]:
    """One request (``api``: chat completions or the Responses API): its latency, status, text and decision record
    (from the body)."""
    start = time.perf_counter()
    messages = [{"role": "user", "content": prompt}]
    try:
        if api == RESPONSES:
            text, record = await _call_responses(client, model, prompt, stream)
        elif stream:
            chunks = [
                c async for c in await client.chat.completions.create(model=model, messages=messages, stream=True)
            ]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            record = (chunks[0].model_extra or {}).get("routellm") if chunks else None
        else:
            answer = await client.chat.completions.create(model=model, messages=messages)
            text, record = answer.choices[0].message.content, (answer.model_extra or {}).get("routellm")
        status = 200
    except openai.APIStatusError as exc:
        text, record, status = "", None, exc.status_code
    except (openai.APIError, _IncompleteStream) as exc:
        text, record, status = f"{type(exc).__name__}", None, 0
    return {"s": time.perf_counter() - start, "status": status, "text": text, "record": record, "api": api}


def _client(base_url: str, connections: int, api_key: str = "unused") -> openai.AsyncOpenAI:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    http = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(300.0))
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http)


def _stats(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile_ms(seconds, 50),
        "p90_ms": percentile_ms(seconds, 90),
        "p99_ms": percentile_ms(seconds, 99),
        "mean_ms": statistics.fmean(seconds) * 1000,
    }


async def sequential(
    direct: openai.AsyncOpenAI, routed: openai.AsyncOpenAI, n: int, stream: bool, api: str = CHAT
) -> dict[str, Any]:
    """``n`` alternating pairs (direct, through the server) on route ``api`` after a warm-up; latency stats and
    overhead."""
    prompts = prompt_pool(n + 20, seed=1)
    for prompt in prompts[:20]:
        await _call(direct, "mock-weak", prompt, stream, api)
        await _call(routed, MODEL, prompt, stream, api)
    times: dict[str, list[float]] = {"direct": [], "server": []}
    for prompt in prompts[20:]:
        for name, client, model in (("direct", direct, "mock-weak"), ("server", routed, MODEL)):
            result = await _call(client, model, prompt, stream, api)
            if result["status"] != 200:
                raise RuntimeError(f"sequential {api} {name} request failed with status {result['status']}")
            times[name].append(result["s"])
    out = {name: _stats(values) for name, values in times.items()}
    out["overhead_p50_ms"] = out["server"]["p50_ms"] - out["direct"]["p50_ms"]
    out["overhead_p99_ms"] = out["server"]["p99_ms"] - out["direct"]["p99_ms"]
    out["requests"] = n
    return out


async def concurrent(
    client: openai.AsyncOpenAI, model: str, prompts: list[str], expected: dict[str, str] | None
) -> dict[str, Any]:
    """All ``prompts`` at once (every fifth through the Responses API, every fourth streamed); checks each answer
    against its own prompt."""

    def api(i: int) -> str:
        return RESPONSES if i % RESPONSES_EVERY == RESPONSES_EVERY - 1 else CHAT

    start = time.perf_counter()
    results = await asyncio.gather(*(_call(client, model, p, i % 4 == 3, api(i)) for i, p in enumerate(prompts)))
    wall = time.perf_counter() - start
    statuses = Counter(r["status"] for r in results)
    ok, mixed, wrong_side, served = 0, 0, 0, Counter()
    ids = set()
    by_api: dict[str, dict[str, Any]] = {
        name: {"requests": 0, "streamed": 0, "answered_correctly": 0, "seconds": []} for name in (CHAT, RESPONSES)
    }
    for i, (prompt, r) in enumerate(zip(prompts, results)):
        counts = by_api[r["api"]]
        counts["requests"] += 1
        counts["streamed"] += i % 4 == 3
        counts["seconds"].append(r["s"])
        if r["status"] != 200:
            continue
        upstream = r["record"]["model"] if expected is not None and r["record"] else model
        if r["text"] != f"[{upstream}] {prompt}":
            mixed += 1
            continue
        if expected is not None:
            record = r["record"]
            if record["choice"] != expected[prompt] or record["served"] != record["choice"]:
                wrong_side += 1
                continue
            served[record["served"]] += 1
            ids.add(record["decision_id"])
        ok += 1
        counts["answered_correctly"] += 1
    for counts in by_api.values():
        counts.update(_stats(counts.pop("seconds")) if counts["requests"] else {})
    return {
        "requests": len(prompts),
        "answered_correctly": ok,
        "lost": len(prompts) - statuses.get(200, 0),
        "mixed_up": mixed,
        "wrong_side": wrong_side,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "served": dict(served),
        "unique_decision_ids": len(ids) if expected is not None else None,
        "wall_s": wall,
        "throughput_rps": len(prompts) / wall,
        **_stats([r["s"] for r in results]),
        "by_api": by_api,
    }


async def measure(args: argparse.Namespace, mock_url: str, server_url: str) -> dict[str, Any]:
    connections = args.requests + 16
    direct = _client(f"{mock_url}/v1", connections)
    routed = _client(f"{server_url}/v1", connections)
    n_stream = max(args.sequential // 2, 10)
    log(f"sequential overhead, chat completions: {args.sequential} pairs non-streamed, {n_stream} streamed")
    seq = await sequential(direct, routed, args.sequential, stream=False)
    seq_stream = await sequential(direct, routed, n_stream, stream=True)
    log(f"sequential overhead, Responses API: {args.sequential} pairs non-streamed, {n_stream} streamed")
    seq_responses = await sequential(direct, routed, args.sequential, stream=False, api=RESPONSES)
    seq_responses_stream = await sequential(direct, routed, n_stream, stream=True, api=RESPONSES)
    policy = RoutingPolicy("fast", strong_fraction=0.3)
    prompts = prompt_pool(args.requests)
    expected = {p: d.choice for p, d in zip(prompts, policy.decide_batch(prompts))}
    log(f"{args.requests} concurrent requests straight to the mock")
    direct_load = await concurrent(direct, "mock-weak", prompts, None)
    log(f"{args.requests} concurrent requests through the server")
    server_load = await concurrent(routed, MODEL, prompts, expected)
    await direct.close()
    await routed.close()
    return {
        "sequential": seq,
        "sequential_stream": seq_stream,
        "sequential_responses": seq_responses,
        "sequential_responses_stream": seq_responses_stream,
        "concurrent_direct": direct_load,
        "concurrent_server": server_load,
        "expected_strong_share": sum(c == "strong" for c in expected.values()) / len(expected),
    }


# ---- two servers sharing a feedback store ------------------------------------------------------------------
def _serve_command(mock_url: str, port: int, concurrency: int, feedback: str | None) -> list[str]:
    return [
        sys.executable, "-m", "routellm_core.server",
        "--strong", "openai:mock-strong", "--strong-base-url", f"{mock_url}/v1",
        "--weak", "openai:mock-weak", "--weak-base-url", f"{mock_url}/v1",
        "--router", "fast", "--port", str(port), "--max-concurrency", str(concurrency),
        "--api-keys-env", TOKEN_ENV, "--log-level", "warning",
        *(["--feedback", feedback] if feedback else []),
    ]  # fmt: skip


async def _store_traffic(
    direct: openai.AsyncOpenAI, servers: dict[str, list[openai.AsyncOpenAI]], n_seq: int
) -> dict[str, dict[str, Any]]:
    """Sequential latency: each prompt straight to the mock, then through one server of every set-up (in rotating
    order, the two servers of a set-up in turn), so the set-ups share the machine's conditions."""
    names = list(servers)
    prompts = prompt_pool(n_seq + 20, seed=2)
    times: dict[str, list[float]] = {"direct": [], **{name: [] for name in names}}
    for i, prompt in enumerate(prompts):
        calls = [("direct", direct, "mock-weak")] + [
            (name, servers[name][i % 2], MODEL) for name in names[i % len(names) :] + names[: i % len(names)]
        ]
        for name, client, model in calls:
            result = await _call(client, model, prompt, False)
            if result["status"] != 200:
                raise RuntimeError(f"sequential request ({name}) failed with status {result['status']}")
            if i >= 20:  # after the warm-up
                times[name].append(result["s"])
    direct_stats = _stats(times["direct"])
    return {
        name: {
            "sequential": {"direct": direct_stats, "server": _stats(times[name]), "requests": n_seq},
            "added_p50_ms": percentile_ms(times[name], 50) - direct_stats["p50_ms"],
            "added_p99_ms": percentile_ms(times[name], 99) - direct_stats["p99_ms"],
        }
        for name in names
    }


async def _store_load(servers: list[openai.AsyncOpenAI], urls: list[str], n_load: int, seed: int) -> dict[str, Any]:
    """``n_load`` concurrent requests spread over a set-up's two servers, then a ``bad`` verdict on every answered
    decision, sent to the server that did not route it."""
    prompts = prompt_pool(n_load, seed=seed)
    start = time.perf_counter()
    results = await asyncio.gather(*(_call(servers[i % 2], MODEL, p, False) for i, p in enumerate(prompts)))
    wall = time.perf_counter() - start
    routed = [(i % 2, r["record"]["decision_id"]) for i, r in enumerate(results) if r["status"] == 200 and r["record"]]
    verdicts: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=120, limits=limits) as http:

        async def thumb(server: int, decision_id: str) -> None:
            body = {"decision_id": decision_id, "verdict": "bad"}
            verdicts[(await http.post(f"{urls[1 - server]}/v1/feedback", json=body)).status_code] += 1

        await asyncio.gather(*(thumb(server, d) for server, d in routed))
    return {
        "load": {
            "requests": len(prompts),
            "ok": len(routed),
            "wall_s": wall,
            "throughput_rps": len(prompts) / wall,
            **_stats([r["s"] for r in results]),
        },
        "decision_ids": [d for _, d in routed],
        "verdict_statuses": {str(k): v for k, v in sorted(verdicts.items())},
    }


def _rows_lost(location: str, ids: list[str]) -> dict[str, int]:
    """Decisions, verdicts and user labels of ``ids`` missing from the store."""
    from routellm_core.learning.feedback import FeedbackStore

    with FeedbackStore(location) as store:
        rows = {r.decision_id: r for r in store.decisions(ids)}
        labelled = {r.decision_id for r in store.labels(["user"])}
    return {
        "decisions": sum(d not in rows for d in ids),
        "verdicts": sum(d not in rows or rows[d].verdict != "bad" for d in ids),
        "labels": sum(d not in labelled for d in ids),
    }


async def _store_session(
    mock_url: str, urls: dict[str, list[str]], concurrency: int, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Clients for the mock and every server; the interleaved sequential run, then each set-up's load in turn."""
    direct = _client(f"{mock_url}/v1", concurrency)
    servers = {name: [_client(f"{url}/v1", concurrency, api_key=TOKEN) for url in pair] for name, pair in urls.items()}
    try:
        out = await _store_traffic(direct, servers, args.store_sequential)
        for seed, name in enumerate(urls, start=3):
            log(f"{name}: {args.store_requests} concurrent requests over its two servers, then a verdict on each")
            out[name].update(await _store_load(servers[name], urls[name], args.store_requests, seed))
        return out
    finally:
        for client in (direct, *(c for pair in servers.values() for c in pair)):
            await client.close()


def measure_stores(args: argparse.Namespace, mock_url: str, folder: Path, postgres_url: str) -> dict[str, Any]:
    """Two fresh server processes per set-up (no store, SQLite, PostgreSQL), all running at once."""
    setups = {"no store": None, "SQLite file": str(folder / "feedback.db"), "PostgreSQL": postgres_url}
    concurrency = args.store_requests + 16
    urls: dict[str, list[str]] = {}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, location in setups.items():
            ports = [_free_port(), _free_port()]
            urls[name] = [f"http://127.0.0.1:{port}" for port in ports]
            for port, url in zip(ports, urls[name]):
                command = _serve_command(mock_url, port, concurrency, location)
                processes.append(_start(command, f"{url}/health", extra_env={TOKEN_ENV: TOKEN}))
        log(f"six servers up; {args.store_sequential} sequential requests through each set-up, interleaved")
        out = asyncio.run(_store_session(mock_url, urls, concurrency, args))
    finally:
        for process in processes:
            _stop(process)
    for name, location in setups.items():
        ids = out[name].pop("decision_ids")
        if location is not None:
            out[name]["lost"] = _rows_lost(location, ids)
        out[name]["answered"] = len(ids)
    return out


def stores_section(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of the shared-store comparison."""
    runs = result["setups"]
    lines = [
        STORES_START,
        "## Two servers sharing one feedback store: SQLite file vs PostgreSQL (`routellm serve --feedback`)",
        "",
        f"- Command: `{result['command']}`",
        f"- Machine: {result['machine_line']}",
        "- Setup: the mock upstream, two `routellm serve` processes on different ports per set-up (`fast` router, "
        f"`{MODEL}`, non-streamed) and the `openai` async client, all on the same cores; each set-up has its own "
        "servers, and the six run at once. Added latency = through a server minus straight to the mock, at the p50 and "
        "p99 of sequential requests that visit the mock and one server of every set-up in turn (rotating order). Then, "
        "set-up after set-up, concurrent requests spread over its two servers, and a `bad` verdict on each answered "
        "decision sent to the *other* server (`POST /v1/feedback`). PostgreSQL "
        f"{result['postgres_version']} runs locally (`pgserver`, Unix socket).",
        "",
        "| store | added latency p50 / p99 | concurrent load: requests/s | p50 / p99 under load "
        "| answered | verdict statuses | rows lost (decisions / verdicts / labels) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        lost = r.get("lost")
        lost_text = (
            "n/a (no store)" if lost is None else f"**{lost['decisions']} / {lost['verdicts']} / {lost['labels']}**"
        )
        verdicts = ", ".join(f"{k}: {v}" for k, v in r["verdict_statuses"].items())
        lines.append(
            f"| {name} | +{r['added_p50_ms']:.2f} / +{r['added_p99_ms']:.2f} ms | {r['load']['throughput_rps']:.0f} "
            f"| {r['load']['p50_ms']:.0f} / {r['load']['p99_ms']:.0f} ms | {r['answered']} / {r['load']['requests']} "
            f"| {verdicts} | {lost_text} |"
        )
    lite, pg = runs["SQLite file"], runs["PostgreSQL"]
    lines += [
        "",
        f"- PostgreSQL against the SQLite file, same run: {pg['added_p50_ms'] - lite['added_p50_ms']:+.2f} ms at the "
        f"p50 of a sequential request, {pg['load']['throughput_rps'] / lite['load']['throughput_rps']:.2f}x the "
        "requests/s under load. The load average above counts every process on this shared 2-core machine: the "
        "latencies are indicative, the rows-lost column is the guarantee.",
        "- Without a store `POST /v1/feedback` answers 409 (no store to attach verdicts to). With a store, each "
        "routed request adds one committed write (the decision) before its answer is returned, and each verdict one "
        "transaction (verdict + label); both stores lost nothing. SQLite serialises the two processes' writes on "
        "one file of one machine; PostgreSQL lets servers on several machines share the store.",
        STORES_END,
    ]
    return "\n".join(lines) + "\n"


def main_stores(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    """``--stores``: run the comparison, print and write its section."""
    import tempfile
    import warnings

    import psycopg

    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set, falling back to /tmp/runtime-0"
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver

    folder = Path(tempfile.mkdtemp(prefix="routellm-bench-stores-"))
    mock_port = _free_port()
    mock_url = f"http://127.0.0.1:{mock_port}"
    log("starting PostgreSQL (pgserver) and the mock upstream")
    server = pgserver.get_server(folder / "pg", cleanup_mode="delete")
    mock = _start(
        [sys.executable, "-m", "routellm_core.server.mock_upstream", "--port", str(mock_port)], f"{mock_url}/"
    )
    try:
        with psycopg.connect(server.get_uri()) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        setups = measure_stores(args, mock_url, folder, server.get_uri())
    finally:
        _stop(mock)
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
    machine = machine_info()
    result = {
        "command": "python -m bench.server_load" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "machine": machine,
        "machine_line": machine_line(machine),
        "postgres_version": version,
        "setups": setups,
    }
    text = stores_section(result)
    print(text)
    if not args.no_write:
        write_json(DEFAULT_RESULTS / "server_load_stores.json", result)
        write_section(text, start=STORES_START, end=STORES_END)
        log(f"wrote {DEFAULT_RESULTS / 'server_load_stores.json'} and its section of {BENCHMARKS.name}")
    lost = {name: r["lost"] for name, r in setups.items() if "lost" in r}
    if any(any(v.values()) for v in lost.values()):
        raise SystemExit(f"shared store: rows lost {lost}")
    return result


# ---- report ----------------------------------------------------------------------------------------------
def section(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of one run."""
    s, st = result["sequential"], result["sequential_stream"]
    rs, rst = result["sequential_responses"], result["sequential_responses_stream"]
    d, c = result["concurrent_direct"], result["concurrent_server"]
    lines = [
        SECTION_START,
        "## OpenAI-compatible server under load (`routellm serve`)",
        "",
        f"- Command: `{result['command']}`",
        f"- Machine: {result['machine_line']}",
        f"- Setup: the mock upstream, the server ({result['workers']} uvicorn worker(s), `fast` router, model "
        f"`{MODEL}`) and the `openai` async client as three processes on the same cores; latencies are the "
        "client's, from request to full answer (chat streams: to the last chunk; Responses streams: to the terminal "
        "`response.completed` event). Chat rows: `POST /v1/chat/completions` (`chat.completions.create`); Responses "
        "rows: `POST /v1/responses` (`responses.create`), straight to the mock's `/v1/responses` echo or through the "
        "server, alternately, in the same run.",
        "",
        "| sequential requests | direct to the mock p50 / p99 | through the server p50 / p99 | server overhead p50 / p99 |",
        "|---|---|---|---|",
    ]
    for name, r in (
        ("chat, non-streamed", s),
        ("chat, streamed", st),
        ("Responses, non-streamed", rs),
        ("Responses, streamed", rst),
    ):
        lines.append(
            f"| {name} ({r['requests']}) | {r['direct']['p50_ms']:.2f} / {r['direct']['p99_ms']:.2f} ms "
            f"| {r['server']['p50_ms']:.2f} / {r['server']['p99_ms']:.2f} ms "
            f"| **+{r['overhead_p50_ms']:.2f}** / +{r['overhead_p99_ms']:.2f} ms |"
        )
    lines += [
        "",
        f"| concurrent requests (1 in {RESPONSES_EVERY} Responses, 1 in 4 streamed) | answered correctly | lost "
        "| mixed up | wall | throughput "
        "| latency p50 / p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("direct to the mock", d), ("through the server", c)):
        lines.append(
            f"| {name} ({r['requests']}) | {r['answered_correctly']} | {r['lost']} | {r['mixed_up']} "
            f"| {r['wall_s']:.2f} s | {r['throughput_rps']:.0f} req/s | {r['p50_ms']:.0f} / {r['p99_ms']:.0f} ms |"
        )
    share = c["served"].get("strong", 0) / max(c["answered_correctly"], 1)

    def route(name: str, r: dict[str, Any]) -> str:
        return (
            f"{name} {r['answered_correctly']} / {r['requests']} answered correctly ({r['streamed']} streamed), "
            f"p50 / p99 {r['p50_ms']:.0f} / {r['p99_ms']:.0f} ms"
        )

    lines += [
        "",
        f"- By route through the server: {route('chat completions', c['by_api'][CHAT])}; "
        f"{route('Responses API', c['by_api'][RESPONSES])} (straight to the mock: "
        f"{d['by_api'][CHAT]['answered_correctly']} / {d['by_api'][CHAT]['requests']} chat, "
        f"{d['by_api'][RESPONSES]['answered_correctly']} / {d['by_api'][RESPONSES]['requests']} Responses).",
        f"- The Responses route's overhead against the chat route's, same run, p50: non-streamed "
        f"{rs['overhead_p50_ms'] - s['overhead_p50_ms']:+.2f} ms, "
        f"streamed {rst['overhead_p50_ms'] - st['overhead_p50_ms']:+.2f} ms "
        "(its stream is the upstream's events relayed as SSE, the record added to `response.created` and "
        "`response.completed`).",
        f"- Through the server every answer echoed its own prompt's token from the upstream its decision record "
        f"names, on the side the router picks for that prompt in the client process ({c['wrong_side']} on another "
        f"side), with {c['unique_decision_ids']} distinct decision ids; statuses {c['statuses']}. Strong share "
        f"{share:.1%} (`{MODEL}` on this mix of MT Bench, GSM8K and MMLU prompts: {result['expected_strong_share']:.1%} "
        "expected).",
        "- The overhead is the second HTTP hop plus routing and relaying on a shared 2-core machine; under full "
        "concurrency the three processes compete for the cores, so the concurrent rows measure the machine more "
        "than the server. Add workers (`--workers`) or replicas where cores allow: the server is stateless.",
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = BENCHMARKS, start: str = SECTION_START, end: str = SECTION_END) -> None:
    """Replace this benchmark's section of ``BENCHMARKS.md`` (or append it), leaving every other section as it is."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        updated = head + text + ("\n" + tail if tail else "")
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated, encoding="utf-8")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="concurrent requests")
    parser.add_argument("--sequential", type=int, default=300, help="sequential request pairs for the overhead")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results and BENCHMARKS.md")
    parser.add_argument("--stores", action="store_true", help="instead: two servers sharing a feedback store")
    parser.add_argument("--store-requests", type=int, default=400, help="--stores: concurrent requests per store")
    parser.add_argument("--store-sequential", type=int, default=150, help="--stores: sequential requests per store")
    args = parser.parse_args(argv)
    if args.stores:
        return main_stores(args, argv)

    mock_port, server_port = _free_port(), _free_port()
    mock_url, server_url = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{server_port}"
    py = sys.executable
    serve = [
        py, "-m", "routellm_core.server",
        "--strong", "openai:mock-strong", "--strong-base-url", f"{mock_url}/v1",
        "--weak", "openai:mock-weak", "--weak-base-url", f"{mock_url}/v1",
        "--router", "fast", "--port", str(server_port), "--workers", str(args.workers),
        "--max-concurrency", str(args.requests + 16), "--no-auth", "--log-level", "warning",
    ]  # fmt: skip
    log("starting the mock upstream and the server")
    mock = _start([py, "-m", "routellm_core.server.mock_upstream", "--port", str(mock_port)], f"{mock_url}/")
    server = None
    try:
        server = _start(serve, f"{server_url}/health")
        result = asyncio.run(measure(args, mock_url, server_url))
    finally:
        if server is not None:
            _stop(server)
        _stop(mock)
    machine = machine_info()
    result.update(
        command="python -m bench.server_load" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        workers=args.workers,
        machine=machine,
        machine_line=machine_line(machine),
    )
    text = section(result)
    print(text)
    if not args.no_write:
        write_json(DEFAULT_RESULTS / "server_load.json", result)
        write_section(text)
        log(f"wrote {DEFAULT_RESULTS / 'server_load.json'} and the server section of {BENCHMARKS.name}")
    load = result["concurrent_server"]
    if load["lost"] or load["mixed_up"]:
        raise SystemExit(f"server load: {load['lost']} lost, {load['mixed_up']} mixed up")
    return result


if __name__ == "__main__":
    main()
