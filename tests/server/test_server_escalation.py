"""Escalation in the server: ``router-<router>[-<pre-route>]-cascade[-<threshold>|-<share>%]`` model names.

The upstream is the mock echo (``"[<model>] <text>"``): the weak model asked twice gives the same text (the answers
agree: the weak answer is kept), while a second cheap upstream of another name gives a different text (they
disagree: the strong model answers). So each case knows its outcome in advance.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai

from routellm_core.server import ServerThread
from routellm_core.server.answers import join_chunks, split_cascade

STRONG, WEAK, OTHER = "mock-strong", "mock-weak", "mock-other"
PROMPT = "Name the capital of France."
PRICES_NOTE = "the mock reports usage on every answer"


def ask(server: ServerThread, model: str, **kw: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], **kw}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)


def test_model_names() -> None:
    # the pre-route comes before -cascade (as in a plain name), the escalation's threshold or share after it
    assert split_cascade("router-default-cascade-30%") == ("router-default", "30%")
    assert split_cascade("router-fast-cascade") == ("router-fast", "")
    assert split_cascade("router-fast-cascade-0.7") == ("router-fast", "0.7")
    assert split_cascade("router-fast-20%-cascade-0.7") == ("router-fast-20%", "0.7")
    assert split_cascade("router-fast-0.7") == ("router-fast-0.7", None)


def test_agreeing_answers_keep_weak_and_disagreeing_escalate(serve: Any, mock: ServerThread) -> None:
    same = ask(serve(), "router-fast-1.0-cascade")  # threshold 1: nothing pre-routed; weak sampled again agrees
    assert same.status_code == 200
    record = same.json()["routellm"]
    assert same.json()["choices"][0]["message"]["content"].startswith(f"[{WEAK}]")
    assert (record["served"], record["escalated"]) == ("weak", False)
    assert [(a["model"], a["role"]) for a in record["attempts"]] == [(WEAK, "answer"), (f"{WEAK} (resampled)", "check")]
    resampled = [b for b in mock.app.state.received if b.get("temperature") == 0.7]
    assert resampled and resampled[-1]["model"] == WEAK
    assert same.headers["x-routellm-escalated"] == "false"

    server = serve(escalate_second=OTHER, weak_base_url=f"{mock.url}/v1")
    moved = ask(server, "router-fast-1.0-cascade")
    record = moved.json()["routellm"]
    assert moved.json()["choices"][0]["message"]["content"].startswith(f"[{STRONG}]")
    assert (record["served"], record["escalated"], record["choice"]) == ("strong", True, "weak")
    assert [(a["model"], a["role"], a["kept"]) for a in record["attempts"]] == [
        (WEAK, "answer", False),
        (OTHER, "check", False),
        (STRONG, "escalation", True),
    ]
    assert moved.headers["x-routellm-escalated"] == "true"
    assert moved.headers["x-routellm-attempts"] == f"{WEAK}:answer,{OTHER}:check,{STRONG}:escalation"
    # the plain model name never escalates, and a pre-routed call never pays for the cheap answers
    plain = ask(server, "router-fast-1.0").json()["routellm"]
    assert not plain["escalated"] and len(plain["attempts"]) == 1
    pre = ask(server, "router-fast-0.0-cascade").json()["routellm"]
    assert (pre["served"], [a["model"] for a in pre["attempts"]]) == ("strong", [STRONG])
    ids = [m["id"] for m in httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]]
    assert "router-fast-cascade" in ids and "router-fast-cascade-10%" in ids
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    escalated = [ln for ln in metrics.splitlines() if ln.startswith("routellm_escalations_total") and "true" in ln]
    assert escalated and float(escalated[0].rsplit(" ", 1)[1]) == 1.0


def test_escalation_share_and_threshold_in_the_model_name(serve: Any, mock: ServerThread) -> None:
    """After ``-cascade``: ``<p>%`` is the share of checked calls to escalate, ``<t>`` the escalation threshold. The
    resampled weak answer always agrees (confidence 1), so only a share of 100% or a threshold above 1 escalates."""
    server = serve()
    kept = ask(server, "router-fast-1.0-cascade-0%").json()["routellm"]
    assert not kept["escalated"] and kept["attempts"][0]["signals"]["escalation_threshold"] == 0.0
    every = ask(server, "router-fast-1.0-cascade-100%").json()["routellm"]
    assert every["escalated"] and every["attempts"][0]["confidence"] == 1.0
    assert every["attempts"][0]["signals"]["escalation_threshold"] > 1.0
    fixed = ask(server, "router-fast-1.0-cascade-0.75").json()["routellm"]
    assert not fixed["escalated"] and fixed["attempts"][0]["signals"]["escalation_threshold"] == 0.75
    # one engine per setting, built on first use and kept (its share tracker holds the recent confidences)
    assert ask(server, "router-fast-1.0-cascade-100%").json()["routellm"]["escalated"]
    for bad in (
        "router-fast-cascade-12.5%",
        "router-fast-cascade-101%",
        "router-fast-cascade-0.125",
        "router-fast-cascade-x",
    ):
        answer = ask(server, bad)
        assert answer.status_code == 400 and "after -cascade" in answer.json()["error"]["message"]


def test_streams_hold_the_weak_answer_then_stream_the_server_choice(serve: Any, mock: ServerThread) -> None:
    server = serve(escalate_second=OTHER, weak_base_url=f"{mock.url}/v1")
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model="router-fast-1.0-cascade", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"[{STRONG}]") and WEAK not in text
    first = chunks[0].model_extra["routellm"]
    assert first["escalated"] and first["served"] == "strong"


def test_join_chunks_rebuilds_text_tool_calls_and_usage() -> None:
    chunks = [
        {"choices": [{"delta": {"content": "The "}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": '{"a"'}}]}}]},
        {"choices": [{"delta": {"content": "end", "tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    ]
    whole = join_chunks(chunks)
    assert whole is not None
    message = whole["choices"][0]["message"]
    assert message["content"] == "The end"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    assert whole["usage"] == {"prompt_tokens": 3, "completion_tokens": 2}


def test_self_verification_asks_the_weak_upstream(serve: Any, mock: ServerThread) -> None:
    record = ask(serve(escalate_check="self_verification"), "router-fast-1.0-cascade").json()["routellm"]
    assert [(a["model"], a["role"]) for a in record["attempts"]][:2] == [
        (WEAK, "answer"),
        (f"{WEAK} (verify)", "check"),
    ]
    asked = mock.app.state.received[-1]["messages"]
    assert asked[-1]["content"].startswith("Check the answer you just gave") and asked[-2]["role"] == "assistant"
    # the mock echoes the question back: neither yes nor no, so the confidence is the "unsure" 0.5 (kept at 0.5)
    assert record["attempts"][0]["confidence"] == 0.5 and not record["escalated"]


def test_the_servers_escalation_share_and_the_shipped_combined_check(serve: Any, mock: ServerThread) -> None:
    """``--escalate-share 1.0`` escalates every checked call (the resampled answer agrees, so a threshold of 0.5
    would keep it); ``--escalate-check combined`` scores with the shipped combiner and records its signals."""
    every = ask(serve(escalate_share=1.0), "router-fast-1.0-cascade").json()["routellm"]
    assert every["escalated"] and every["attempts"][0]["signals"]["escalation_threshold"] > 1.0
    combined = ask(serve(escalate_check="combined"), "router-fast-1.0-cascade").json()["routellm"]
    signals = combined["attempts"][0]["signals"]
    assert {"agreement.agreement", "win_rate_logit"} <= set(signals) and 0 < combined["attempts"][0]["confidence"] < 1
