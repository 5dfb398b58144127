"""``router-auto`` in the server: routing among named, priced upstream models (``--model``) by an objective in the
model name or the request's ``routellm`` field.

The three models are the core tests' stand-ins, served by the mock echo under their own names ("[tiny] <text>"):
profiles from far-apart real models (``tiny`` like chatglm-6b, ``mid`` like Qwen2.5-32B, ``big`` like o1-preview),
so which model each objective picks is known in advance, and prices of 0.1, 1 and 10 USD per million tokens (input
and output alike), so every call's price is known from the mock's token counts: it reports the prompt's words as
input tokens and the answer's words as output tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routellm_core.errors import InvalidInputError
from routellm_core.routers.profiles import UnknownModelError
from routellm_core.routing.ladder import COST_RATIO_MEMORY
from routellm_core.server import OpenAIUpstream, ServerSettings, ServerThread, create_app
from routellm_core.server.cli import add_arguments, settings_from_args
from routellm_core.server.metrics import MULTIPROC_ENV
from routellm_core.server.models import parse_model, parse_prices, parse_prior

PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
PRIORS = {"tiny": "like:chatglm-6b", "mid": "like:Qwen2.5-32B-Instruct", "big": "like:o1-preview-2024-09-12"}
PROMPT = "Prove that the square root of 2 is irrational."
#: Long prompts (~250-330 words): the mock's answers are as long as the ladder's default output estimate (300 tokens),
#: so a model's expected cost is close to its price before it ever answered.
SENTENCES = (
    "please read this long document carefully. ",
    "summarise the argument of each section in turn. ",
    "list the assumptions the author makes about cost. ",
)


def models(mock: ServerThread) -> tuple[str, ...]:
    return tuple(f"{name}=openai:{name},base_url={mock.url}/v1" for name in ("tiny", "mid", "big"))


def ladder_app(mock: ServerThread, **settings: Any) -> Any:
    """A server with the mock pair and the three named models (tiny, mid, big) priced and profiled."""
    return create_app(
        strong=OpenAIUpstream("mock-strong", base_url=f"{mock.url}/v1", api_key="k"),
        weak=OpenAIUpstream("mock-weak", base_url=f"{mock.url}/v1", api_key="k"),
        routers=("fast",),
        api_keys_env=None,
        models=models(mock),
        prices=PRICES,
        priors=PRIORS,
        **settings,
    )


@pytest.fixture(scope="module")
def server(mock: ServerThread) -> Iterator[ServerThread]:
    with ServerThread(ladder_app(mock)) as running:
        yield running


def test_without_strong_and_weak_the_named_models_give_the_pair(mock: ServerThread) -> None:
    """A server given only the named models: router-fast-0.0 (strong) is answered by the dearest, -1.0 (weak) by
    the cheapest, each through its own endpoint, recorded and priced under its --model name."""
    named = (f"small=openai:tiny,base_url={mock.url}/v1", f"large=openai:big,base_url={mock.url}/v1")
    app = create_app(
        routers=("fast",),
        api_keys_env=None,
        models=named,
        prices={"small": PRICES["tiny"], "large": PRICES["big"]},
        priors={"small": PRIORS["tiny"], "large": PRIORS["big"]},
    )
    with ServerThread(app) as running:
        for name, side, name_as, upstream in (
            ("router-fast-0.0", "strong", "large", "big"),
            ("router-fast-1.0", "weak", "small", "tiny"),
        ):
            answer = ask(running, name)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == f"[{upstream}] {PROMPT}"
            record = answer.json()["routellm"]
            assert (record["served"], record["model"]) == (side, name_as)
            assert record["cost"] == pytest.approx(price(upstream, PROMPT))
    with pytest.raises(InvalidInputError, match=r"no price for \['mystery'\].*--prices NAME=IN,OUT"):
        create_app(api_keys_env=None, models=("openai:gpt-4o-mini", "mystery=openai:my-local,base_url=http://x/v1"))


def test_a_mistyped_model_gets_a_did_you_mean_before_the_prices_advice() -> None:
    with pytest.raises(InvalidInputError) as info:  # as `routellm serve --model ... --model openai:gpt-4o-mnii`
        create_app(api_keys_env=None, models=("openai:gpt-4o-mini", "openai:gpt-4o-mnii,base_url=http://x/v1"))
    message = str(info.value)
    assert message.startswith("no price for ['gpt-4o-mnii'] (did you mean 'gpt-4o-mini'?): "), message
    assert message.endswith("give --prices NAME=IN,OUT (USD per million input and output tokens) for each")


def ask(server: ServerThread, model: str, text: str = PROMPT, **fields: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **fields}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)


def price(model: str, text: str) -> float:
    """What the mock's answer of ``model`` to ``text`` costs: its words in, ``[model] `` plus its words out."""
    words = len(text.split())
    return (words * PRICES[model][0] + (words + 1) * PRICES[model][1]) / 1e6


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# ---- choices known in advance ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "chosen"),
    [
        ("router-auto-margin-1", "tiny"),  # every model is within a margin of 1 of the best: the cheapest
        ("router-auto-margin-0", "big"),  # no margin: the best predicted
        ("router-auto-max-0.001", "mid"),  # mid's expected cost (~3e-4 USD) fits under 0.001, big's (~3e-3) not
        ("router-auto-weight-0", "big"),  # cost counts for nothing
    ],
)
def test_the_model_name_picks_the_model_known_in_advance(server: ServerThread, model: str, chosen: str) -> None:
    answer = ask(server, model)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["choices"][0]["message"]["content"] == f"[{chosen}] {PROMPT}"  # that upstream model answered
    record = body["routellm"]
    assert record["model"] == chosen and record["ladder"]["chosen"] == chosen
    assert record["ladder"]["models"] == ["tiny", "mid", "big"]  # cheapest expected first
    predicted = record["ladder"]["predictions"]
    assert predicted["big"] > predicted["mid"] > predicted["tiny"]
    assert answer.headers["x-routellm-model"] == chosen and answer.headers["x-routellm-chosen"] == chosen
    assert float(answer.headers["x-routellm-expected-cost-usd"]) == record["ladder"]["expected_cost"]
    assert record["cost"] == pytest.approx(price(chosen, PROMPT))  # billed from the mock's token counts


def test_router_auto_uses_the_server_objective_and_the_request_field_another(
    server: ServerThread, mock: ServerThread
) -> None:
    plain = ask(server, "router-auto")
    ladder = plain.json()["routellm"]["ladder"]
    assert plain.headers["x-routellm-objective"] == "margin=0.05" and ladder["objective"] == "margin"
    p = ladder["predictions"]
    assert p["big"] - p["mid"] > 0.05  # so within 0.05 of the best is big alone
    assert ladder["chosen"] == "big"

    cheap = ask(server, "router-auto", routellm={"objective": "margin=1"})
    assert cheap.status_code == 200 and cheap.json()["routellm"]["model"] == "tiny"
    assert cheap.headers["x-routellm-objective"] == "margin=1"
    assert "routellm" not in mock.app.state.received[-1]  # the server's field never reaches the upstream


def test_escalation_climbs_the_ladder(server: ServerThread) -> None:
    """The mock's tiny answers agree with themselves: the server's check keeps tiny; an escalation share of 100%
    escalates every checked call, to the best-predicted model above tiny."""
    kept = ask(server, "router-auto-margin-1-cascade").json()
    assert kept["choices"][0]["message"]["content"].startswith("[tiny]")
    assert [(a["model"], a["role"]) for a in kept["routellm"]["attempts"]] == [
        ("tiny", "answer"),
        ("tiny (resampled)", "check"),
    ]
    climbed = ask(server, "router-auto-margin-1-cascade-100%")
    record = climbed.json()["routellm"]
    assert climbed.json()["choices"][0]["message"]["content"].startswith("[big]")
    assert (record["model"], record["escalated"], record["ladder"]["chosen"]) == ("big", True, "tiny")
    assert climbed.headers["x-routellm-attempts"] == "tiny:answer,tiny (resampled):check,big:escalation"
    assert record["cost"] == pytest.approx(2 * price("tiny", PROMPT) + price("big", PROMPT))


def test_climb_goes_rung_by_rung(server: ServerThread) -> None:
    """``-climb``: tiny and mid answer together; the mock's answers agree (the prompt's first number), so mid's answer
    is served and big is never asked; at a share of 100% every check escalates and the climb reaches big."""
    kept = ask(server, "router-auto-margin-1-climb")
    record = kept.json()["routellm"]
    assert kept.json()["choices"][0]["message"]["content"] == f"[mid] {PROMPT}"
    assert [(a["model"], a["kept"]) for a in record["attempts"]] == [("tiny", False), ("mid", True)]
    assert kept.headers["x-routellm-attempts"] == "tiny:answer,mid:escalation"
    assert record["cost"] == pytest.approx(price("tiny", PROMPT) + price("mid", PROMPT))
    top = ask(server, "router-auto-margin-1-climb-100%").json()
    assert top["choices"][0]["message"]["content"] == f"[big] {PROMPT}"
    assert [a["model"] for a in top["routellm"]["attempts"]] == ["tiny", "mid", "big"]
    assert top["routellm"]["cost"] == pytest.approx(sum(price(m, PROMPT) for m in ("tiny", "mid", "big")))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="router-auto-margin-1-climb", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == f"[mid] {PROMPT}"
    labels = {e.label for e in server.app.state.routellm.auto._engines.values()}
    assert {"margin=1,climb", "margin=1,climb=100%"} <= labels
    both = ask(server, "router-auto-margin-1-climb-cascade")
    assert both.status_code == 400 and "not both" in both.json()["error"]["message"]
    bad = ask(server, "router-auto-climb-abc")
    assert bad.status_code == 400 and "after -climb give" in bad.json()["error"]["message"]
    pair = ask(server, "router-fast-climb")
    assert pair.status_code == 400 and "router-auto-climb" in pair.json()["error"]["message"]


def test_streams_come_from_the_chosen_model(server: ServerThread) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    with client.chat.completions.with_streaming_response.create(
        model="router-auto-margin-1",
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    ) as raw:
        assert raw.headers["x-routellm-chosen"] == "tiny"
        chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"[tiny] {PROMPT}"
    record = chunks[0].model_extra["routellm"]
    assert record["model"] == "tiny" and record["ladder"]["chosen"] == "tiny"
    big = client.chat.completions.create(
        model="router-auto", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in big if c.choices).startswith("[big]")


def test_a_stream_is_billed_from_its_usage(server: ServerThread) -> None:
    label = frozenset({("objective", "margin=1")})

    def billed() -> float:
        metrics = samples(httpx.get(f"{server.url}/metrics", timeout=10).text)
        return metrics.get(("routellm_ladder_billed_cost_usd_total", label), 0.0)

    before = billed()
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="router-auto-margin-1",
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == f"[tiny] {PROMPT}"
    assert billed() - before == pytest.approx(price("tiny", PROMPT))


def test_objectives_one_metrics_label_names_share_one_engine(server: ServerThread) -> None:
    """budget=2.0000001 is "budget=2" on /metrics: it is served by router-auto-budget-2's engine, not by a second
    engine writing the same gauges."""
    auto = server.app.state.routellm.auto
    for fields in ({"routellm": {"objective": "budget=2.0000001"}}, {}):
        model = "router-auto" if fields else "router-auto-budget-2"
        answer = ask(server, model, **fields)
        assert answer.status_code == 200, answer.text
        assert answer.json()["routellm"]["ladder"]["budget"] == 2.0
    assert sum(str(key[0]) == "budget=2" for key in auto._engines) == 1


# ---- the budget --------------------------------------------------------------------------------------------------
def test_a_budget_name_holds_its_spend_and_the_metrics_agree(server: ServerThread) -> None:
    """router-auto-budget-1.5: USD 1.5 per 1,000 requests, between mid alone (~0.6) and big alone (~6). Over 300
    requests the billed spend (priced here from the mock's token counts) lands near the target, and /metrics reports
    what the responses said."""
    texts = [f"question {i}: " + SENTENCES[i % 3] * (30 + i % 11) for i in range(300)]
    alone = {m: 1000 * sum(price(m, t) for t in texts) / len(texts) for m in PRICES}
    assert alone["mid"] < 1.5 < alone["big"]
    records, headers = [], []
    for text in texts:
        answer = ask(server, "router-auto-budget-1.5", text)
        assert answer.status_code == 200, answer.text
        records.append(answer.json()["routellm"])
        headers.append(answer.headers)
        assert records[-1]["cost"] == pytest.approx(price(records[-1]["model"], text))
    billed = [r["cost"] for r in records]
    assert 1000 * sum(billed) / len(billed) == pytest.approx(1.5, rel=0.15)
    assert 1000 * sum(billed[100:]) / 200 == pytest.approx(1.5, rel=0.15)  # and once the window is full
    served = Counter(r["model"] for r in records)
    assert served["big"] > 0 and served["tiny"] + served["mid"] > 0  # a mix, not one model
    last = records[-1]["ladder"]
    assert (last["objective"], last["budget"]) == ("budget", 1.5)
    assert headers[-1]["x-routellm-objective"] == "budget=1.5"

    metrics = samples(httpx.get(f"{server.url}/metrics", timeout=10).text)
    label = frozenset({("objective", "budget=1.5")})
    assert metrics[("routellm_ladder_budget_target_usd_per_1k", label)] == 1.5
    # what the last calls billed, the last one's included (it was the spend of the calls before it: one call late)
    memory = max(200, COST_RATIO_MEMORY)
    assert metrics[("routellm_ladder_budget_spend_usd_per_1k", label)] == pytest.approx(
        1000 * sum(billed[-memory:]) / len(billed[-memory:])
    )
    assert metrics[("routellm_ladder_budget_spend_usd_per_1k", label)] == pytest.approx(1.5, rel=0.15)
    assert metrics[("routellm_ladder_cost_weight", label)] == pytest.approx(last["value"])
    assert metrics[("routellm_ladder_billed_cost_usd_total", label)] == pytest.approx(sum(billed))
    expected = sum(r["ladder"]["expected_cost"] for r in records)
    assert metrics[("routellm_ladder_expected_cost_usd_total", label)] == pytest.approx(expected)
    assert expected == pytest.approx(sum(billed), rel=0.25)  # the ladder's estimates track the real prices
    for model, n in served.items():
        assert metrics[("routellm_ladder_requests_total", label | {("model", model)})] == n


def _budget_engines(server: ServerThread) -> dict[str, Any]:
    """The server's budget engines without escalation, by metrics label."""
    auto = server.app.state.routellm.auto
    return {e.label: e for (objective, kind, *_), e in auto._engines.items() if objective.kind == "budget" and not kind}


def test_a_budget_window_in_the_name_or_the_field_gets_its_own_engine_and_label(server: ServerThread) -> None:
    """router-auto-budget-1.7-w500 and the field "budget=1.7,window=500" reach one engine whose controller holds the
    spend over 500 requests; router-auto-budget-1.7 keeps the default 200, in a second engine under a second label."""
    asked = [
        ("router-auto-budget-1.7-w500", {}),
        ("router-auto", {"routellm": {"objective": "budget=1.7,window=500"}}),
        ("router-auto-budget-1.7", {}),
        ("router-auto-budget-1.7-w500-cascade", {}),
    ]
    windows = ["budget=1.7,window=500", "budget=1.7,window=500", "budget=1.7", "budget=1.7,window=500"]
    for (model, fields), window in zip(asked, windows, strict=True):
        answer = ask(server, model, **fields)
        assert answer.status_code == 200, answer.text
        assert answer.json()["routellm"]["ladder"]["budget"] == 1.7
        assert answer.headers["x-routellm-objective"] == window
    engines = _budget_engines(server)
    assert engines["budget=1.7,window=500"].controller.window == 500
    assert engines["budget=1.7"].controller.window == 200
    cascade = [e for (o, kind, *_), e in server.app.state.routellm.auto._engines.items() if kind and o.window == 500]
    assert [e.label for e in cascade] == ["budget=1.7,window=500,cascade"] and cascade[0].controller.window == 500
    metrics = samples(httpx.get(f"{server.url}/metrics", timeout=10).text)
    counted: Counter[str] = Counter()
    for (name, labels), value in metrics.items():
        if name == "routellm_ladder_requests_total" and "1.7" in dict(labels)["objective"]:
            counted[dict(labels)["objective"]] += int(value)  # summed over the models that answered
    assert sorted(counted) == ["budget=1.7", "budget=1.7,window=500", "budget=1.7,window=500,cascade"]
    assert counted["budget=1.7,window=500"] == 2  # the name and the field: one engine, one series
    target = ("routellm_ladder_budget_target_usd_per_1k", frozenset({("objective", "budget=1.7,window=500")}))
    assert metrics[target] == 1.7


def test_a_server_budget_with_a_window_is_listed_and_served(mock: ServerThread) -> None:
    """--objective budget=1.5,window=50: bare router-auto holds the budget over 50 requests, and GET /v1/models
    writes the window into the objective's name."""
    with ServerThread(ladder_app(mock, objective="budget=1.5,window=50")) as running:
        ids = [m["id"] for m in httpx.get(f"{running.url}/v1/models", timeout=10).json()["data"]]
        assert [i for i in ids if i.startswith("router-auto")] == [
            "router-auto",
            "router-auto-budget-1.5-w50",
            "router-auto-cascade",
            "router-auto-budget-1.5-w50-cascade",
            "router-auto-climb",
            "router-auto-budget-1.5-w50-climb",
        ]
        for model in ("router-auto", "router-auto-budget-1.5-w50"):  # the listed name is the server's objective
            answer = ask(running, model)
            assert answer.status_code == 200, answer.text
        auto = running.app.state.routellm.auto
        assert auto.default.controller.window == 50 and auto.default.label == "budget=1.5,window=50"
        assert not auto._engines  # both names were served by the server objective's own engine


# ---- listing and refusals ----------------------------------------------------------------------------------------
def test_models_lists_router_auto(server: ServerThread) -> None:
    ids = [m["id"] for m in httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]]
    assert {"router-auto", "router-auto-margin-0.05", "router-auto-cascade", "router-fast"} <= set(ids)
    assert httpx.get(f"{server.url}/health", timeout=10).json()["models"] == ["tiny", "mid", "big"]


@pytest.mark.parametrize(
    ("model", "fields", "problem"),
    [
        ("router-auto-speed-1", {}, "after router-auto give an objective as <kind>-<value>"),
        ("router-auto-budget", {}, "after router-auto give an objective"),
        ("router-auto-budget-0", {}, "a budget must be above 0"),
        ("router-auto-budget-x", {}, "an objective is '<kind>=<number>'"),
        ("router-auto-margin-2", {}, "a margin is a difference of probabilities in [0, 1]"),
        ("router-auto-margin-1-cascade-12.5%", {}, "after -cascade give an escalation share"),
        ("router-auto", {"routellm": {"objective": "speed=1"}}, "unknown objective 'speed'"),
        ("router-auto", {"routellm": {"objective": 1.5}}, "'routellm.objective' must be a string"),
        ("router-auto", {"routellm": {"budget": 1.5}}, "'routellm' takes only ['objective']"),
        ("router-auto", {"routellm": "budget=1.5"}, "'routellm' must be an object"),
        ("router-auto-margin-1", {"routellm": {"objective": "budget=1"}}, "give it in one place"),
        ("router-auto-margin-0.02-w500", {}, "a window applies only to the budget objective"),
        ("router-auto-budget-1.5-w", {}, "a budget's window is -w<requests> after its value"),
        ("router-auto-budget-1.5-wide", {}, "a budget's window is -w<requests> after its value"),
        ("router-auto-budget-1.5-w0", {}, "window must be a positive number of requests"),
        ("router-auto-budget-1.5,window=500", {}, "a budget's window as router-auto-budget-1.5-w500"),
        ("router-auto", {"routellm": {"objective": "margin=0.02,window=500"}}, "a window applies only to the budget"),
        ("router-auto", {"routellm": {"objective": "budget=1.5,window=1.5"}}, "window must be a whole number"),
        ("router-auto", {"routellm": {"objective": "budget=1.5,speed=2"}}, "takes only ',window=<requests>'"),
        ("router-auto-budget-1.5-w500", {"routellm": {"objective": "budget=1.5"}}, "give it in one place"),
        ("router-fast", {"routellm": {"objective": "budget=1"}}, "ask for router-auto"),
    ],
)
def test_bad_names_and_fields_are_400s_naming_the_problem(
    server: ServerThread, model: str, fields: dict[str, Any], problem: str
) -> None:
    answer = ask(server, model, **fields)
    assert answer.status_code == 400
    assert problem in answer.json()["error"]["message"]


def test_router_auto_without_models_is_a_404_naming_the_option(mock: ServerThread) -> None:
    app = create_app(
        strong=OpenAIUpstream("mock-strong", base_url=f"{mock.url}/v1", api_key="k"),
        weak=OpenAIUpstream("mock-weak", base_url=f"{mock.url}/v1", api_key="k"),
        routers=("fast",),
        api_keys_env=None,
    )
    with ServerThread(app) as plain:
        answer = ask(plain, "router-auto-budget-1")
        assert answer.status_code == 404 and "--model" in answer.json()["error"]["message"]
        ids = [m["id"] for m in httpx.get(f"{plain.url}/v1/models", timeout=10).json()["data"]]
        assert not any(i.startswith("router-auto") for i in ids)


# ---- configuration -----------------------------------------------------------------------------------------------
def test_the_command_line_forms() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--strong=openai:big",
            "--weak=openai:tiny",
            "--model=tiny=openai:llama3.1:8b,base_url=http://127.0.0.1:11434/v1",
            "--model=openai:gpt-4o-mini,api_key_env=MY_KEY",
            "--objective=budget=1.5",
            "--prices=tiny=0.1,0.2",
            "--prior=tiny=like:chatglm-6b",
        ]
    )
    settings = settings_from_args(args)
    tiny, mini = settings.models
    assert (tiny.name, tiny.spec, tiny.base_url) == ("tiny", "openai:llama3.1:8b", "http://127.0.0.1:11434/v1")
    assert (mini.name, mini.spec, mini.api_key_env) == ("gpt-4o-mini", "openai:gpt-4o-mini", "MY_KEY")
    assert mini.base_url is None
    assert settings.objective == "budget=1.5" and settings.prices == {"tiny": (0.1, 0.2)}
    assert settings.priors == {"tiny": "like:chatglm-6b"}
    assert ServerSettings.model_validate_json(settings.to_env()) == settings  # reaches the workers intact


def test_the_models_alone_give_the_pair() -> None:
    """--model without --strong/--weak: router-<name> routes between the cheapest and the dearest listed model,
    each with its own endpoint and key; one of --strong/--weak alone is refused, naming both ways."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--model=openai:gpt-4o,api_key_env=BIG_KEY",
            "--model=tiny=openai:llama3.1:8b,base_url=http://127.0.0.1:11434/v1",
            "--model=openai:gpt-4o-mini",
            "--prices=tiny=0.05,0.1",
        ]
    )
    settings = settings_from_args(args)
    assert (settings.strong, settings.strong_base_url, settings.strong_api_key_env) == (
        "openai:gpt-4o",
        None,
        "BIG_KEY",
    )
    assert (settings.weak, settings.weak_base_url) == ("openai:llama3.1:8b", "http://127.0.0.1:11434/v1")
    assert ServerSettings.model_validate_json(settings.to_env()) == settings
    for given in (["--strong=openai:gpt-4o"], ["--weak=openai:gpt-4o-mini", "--model=openai:gpt-4o"], []):
        with pytest.raises(InvalidInputError, match=r"give --strong and --weak .* or --model at least twice"):
            settings_from_args(parser.parse_args(given))


def test_the_command_line_takes_a_budget_window(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--model=openai:gpt-4o", "--model=openai:gpt-4o-mini"]
    for given, written in (("budget=1.5,window=500", "budget=1.5,window=500"), ("budget=1.5,window=200", "budget=1.5")):
        settings = settings_from_args(parser.parse_args([*base, f"--objective={given}"]))
        assert settings.objective == written
        assert ServerSettings.model_validate_json(settings.to_env()) == settings
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--objective=margin=0.1,window=500"])
    assert "a window applies only to the budget objective" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("parse", "text", "problem"),
    [
        (parse_model, "", "give [NAME=]SPEC"),
        (parse_model, "tiny=openai:tiny,url=http://x", "is not one of base_url=..., api_key_env=..."),
        (parse_model, "tiny=openai:tiny,base_url=a,base_url=b", "base_url is given twice"),
        (parse_model, "tiny=openai:", "is not '<provider>:<model>'"),
        (parse_prices, "tiny=0.1", "give NAME=IN,OUT"),
        (parse_prices, "tiny=0.1,-1", "give NAME=IN,OUT"),
        (parse_prior, "like:chatglm-6b", "give NAME=like:MODEL"),
        (parse_prior, "tiny=0.8", "must be 'like:<profiled model>' or 'score:<fraction in (0, 1)>', got '0.8'"),
        (parse_prior, "tiny=score:1.2", "strictly between 0 and 1"),
        (parse_prior, "tiny=near:gpt-4o", "must be 'like:<profiled model>' or 'score:<fraction in (0, 1)>'"),
    ],
)
def test_bad_command_line_values_name_the_problem(parse: Any, text: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse(text)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"models": ("tiny=openai:tiny,base_url=http://x/v1",)}, "at least two models"),
        ({"models": ("a=openai:a,base_url=http://x/v1", "a=openai:b,base_url=http://x/v1")}, "more than once"),
        ({"prices": {"tiny": (0.1, 0.1)}}, "give --model"),
        ({"models": ("a=openai:a,base_url=u", "b=openai:b,base_url=u"), "priors": {"c": "like:x"}}, "no --model"),
        ({"models": ("a=openai:a,base_url=u", "b=openai:b,base_url=u"), "routers": ("auto",)}, "shadow router-auto"),
        ({"objective": "budget=0"}, "a budget must be above 0"),
        ({"priors": {"a": "score:2"}}, "strictly between 0 and 1"),
    ],
)
def test_bad_settings_name_the_problem(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ServerSettings.build(strong="openai:s", weak="openai:w", **fields)
    assert problem in str(caught.value)


def test_models_without_a_price_a_profile_or_a_key_fail_at_startup(mock: ServerThread) -> None:
    def start(**fields: Any) -> None:
        create_app(
            strong=OpenAIUpstream("mock-strong", base_url=f"{mock.url}/v1", api_key="k"),
            weak=OpenAIUpstream("mock-weak", base_url=f"{mock.url}/v1", api_key="k"),
            routers=("fast",),
            api_keys_env=None,
            **fields,
        )

    with pytest.raises(InvalidInputError, match=r"no price for \['mid'\]"):
        start(models=models(mock), prices={"tiny": (0.1, 0.1), "big": (10, 10)}, priors=PRIORS)
    with pytest.raises(UnknownModelError, match=r"priors=\{'mid'"):
        start(models=models(mock), prices=PRICES, priors={"tiny": PRIORS["tiny"], "big": PRIORS["big"]})
    assert "ROUTELLM_TEST_NO_SUCH_KEY" not in os.environ
    with pytest.raises(InvalidInputError, match=r"\$ROUTELLM_TEST_NO_SUCH_KEY"):
        start(models=("gpt-4o=openai:gpt-4o,api_key_env=ROUTELLM_TEST_NO_SUCH_KEY", *models(mock)[:2]))


# ---- the budget gauges across workers ----------------------------------------------------------------------------
#: A worker: sets the budget gauges, prints its pid and the exposition it serves, then dies without cleanup.
WORKER = """
import os, sys
from routellm_core.server.metrics import ServerMetrics, multiprocess_mode
assert multiprocess_mode()
metrics = ServerMetrics()
metrics.budget("budget=1.5", 1.5, float(sys.argv[1]), float(sys.argv[2]))
print(os.getpid(), flush=True)
print(metrics.render(), flush=True)
os._exit(0)
"""


def _worker(directory: Path, spend: float, weight: float) -> tuple[str, dict[str, dict[str, float]]]:
    """Run a worker; its pid and, per budget gauge, the values it served by ``pid`` label (``None``: no label)."""
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(spend), str(weight)],
        env={**os.environ, MULTIPROC_ENV: str(directory)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    pid, _, text = result.stdout.partition("\n")
    gauges: dict[str, dict[str, float]] = {}
    for (name, labels), value in samples(text).items():
        if name.startswith("routellm_ladder_") and dict(labels)["objective"] == "budget=1.5":
            gauges.setdefault(name, {})[dict(labels).get("pid")] = value
    return pid.strip(), gauges


@pytest.mark.slow
def test_budget_gauges_are_per_worker_in_multiprocess_mode(tmp_path: Path) -> None:
    """Each worker holds its budget on its own traffic: its spend and cost weight are its own series (``pid``
    label), the target one value; a worker that is gone leaves them when the next one starts."""
    first, gauges = _worker(tmp_path, 1.4, 100.0)
    assert gauges["routellm_ladder_budget_target_usd_per_1k"] == {None: 1.5}
    assert gauges["routellm_ladder_budget_spend_usd_per_1k"] == {first: 1.4}
    assert gauges["routellm_ladder_cost_weight"] == {first: 100.0}
    second, gauges = _worker(tmp_path, 1.2, 300.0)  # the first died: forgotten when the second started
    assert second != first
    assert gauges["routellm_ladder_budget_target_usd_per_1k"] == {None: 1.5}
    assert gauges["routellm_ladder_budget_spend_usd_per_1k"] == {second: 1.2}
    assert gauges["routellm_ladder_cost_weight"] == {second: 300.0}


def test_json_of_a_record_round_trips(server: ServerThread) -> None:
    record = ask(server, "router-auto-margin-1").json()["routellm"]
    from routellm_core.decisions import ServedDecision

    back = ServedDecision.from_dict(json.loads(json.dumps(record)))
    assert back.ladder is not None and back.ladder.chosen == "tiny" and back.model == "tiny"
