"""Three gaps of the OpenAI-compatible server a demanding client hits, each against the real server (the shipped
``fast`` router) in front of the mock echo (``"[<model>] <text>"``, usage = the prompt's and the answer's words):

- ``GET /v1/models/{model}`` (``client.models.retrieve``): the model object of every name chat completions accepts,
  listed or not, and OpenAI's 404 ``model_not_found`` for a name it refuses;
- ``--prices NAME=IN,OUT`` prices the ``--strong`` / ``--weak`` / ``--escalate-second`` upstreams by their model
  name (the mock's models are in no price table), and an unknown NAME is refused, named;
- the escalation check's own calls (second answer, self-verification) and the labeller's call of the other side
  are counted in ``routellm_upstream_calls_total`` / ``routellm_upstream_latency_seconds`` as ``side="check"`` and
  ``side="label"``, apart from the strong and weak calls that answer.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routellm_core.data.prices import price_of
from routellm_core.errors import InvalidInputError
from routellm_core.server import OpenAIUpstream, ServerThread, create_app
from routellm_core.server.cli import add_arguments, main, settings_from_args

STRONG, WEAK, OTHER, JUDGE = "mock-strong", "mock-weak", "mock-other", "mock-judge"
PROMPT = "Name the capital of France."
TOKEN = "gaps-token-7c2a"
#: USD per million input and output tokens given with --prices (the shipped table knows none of the mock's models).
STRONG_PRICE, WEAK_PRICE, OTHER_PRICE = (10.0, 30.0), (0.5, 1.5), (2.0, 4.0)


def ask(server: ServerThread, model: str, content: str = PROMPT, **kw: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **kw}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)


def samples(server: ServerThread, name: str, **labels: str) -> float:
    """The value of one sample of ``/metrics`` (0 when absent), read with Prometheus' own parser."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def usd(price: tuple[float, float], usage: dict[str, int]) -> float:
    return (usage["prompt_tokens"] * price[0] + usage["completion_tokens"] * price[1]) / 1e6


# ---- GET /v1/models/{model} ---------------------------------------------------------------------------------------
#: Names chat completions accepts that /v1/models does not list (a threshold, a share, a pre-route before -cascade).
UNLISTED = (
    "router-fast-0.5",
    "router-fast-33%",
    "router-fast-0.05%",
    "router-fast-20%-cascade-0.6",
    "router-fast-cascade-0.75",
    "router-fast-1.0-cascade-7%",
)
#: Names it refuses, and a word of the message saying why.
REFUSED = {
    "gpt-4o": "is not served here",
    "router-default": "names no router this server serves",
    "router-fast-1.5": "the threshold must be a number in [0, 1]",
    "router-fast-130%": "the strong-call share must be a percentage in [0, 100]",
    "router-fast-cascade-x": "after -cascade",
    "router-fast-cascade-12.5%": "after -cascade",
    "router-fast-climb": "-climb climbs the server's named models",
    "router-auto": "this server has none",
}


def test_retrieve_every_listed_and_every_accepted_model_and_404_the_rest(serve: Any) -> None:
    server = serve()
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as client:
        listed = client.models.list().data
        assert {m.id for m in listed} >= {"router-fast", "router-fast-cascade", "router-fast-50%"}
        for card in listed:
            found = client.models.retrieve(card.id)
            assert (found.id, found.object, found.owned_by, found.created) == (
                card.id,
                "model",
                card.owned_by,
                card.created,
            )
        built = server.app.state.routellm.escalation_engines
        for name in UNLISTED:
            assert name not in {m.id for m in listed}
            before = dict(built)
            assert client.models.retrieve(name).id == name
            assert built == before, "a retrieve built an engine"  # reading a name builds nothing; chat builds one
            answer = client.chat.completions.create(model=name, messages=[{"role": "user", "content": PROMPT}])
            assert answer.choices[0].message.content  # what retrieve accepts, chat completions serves
        for name, why in REFUSED.items():
            with pytest.raises(openai.NotFoundError) as caught:
                client.models.retrieve(name)
            assert caught.value.status_code == 404 and caught.value.code == "model_not_found"
            error = caught.value.body
            assert isinstance(error, dict) and error["type"] == "invalid_request_error" and error["param"] == "model"
            assert why in error["message"] and name in error["message"]
            with pytest.raises((openai.NotFoundError, openai.BadRequestError)):  # chat completions refuses it too
                client.chat.completions.create(model=name, messages=[{"role": "user", "content": PROMPT}])
    # a name holding '/' or '%' reaches the handler whole (the SDK percent-encodes the path)
    raw = httpx.get(f"{server.url}/v1/models/router-fast%2Fx%25", timeout=10)
    assert raw.status_code == 404 and "router-fast/x%" in raw.json()["error"]["message"]
    assert samples(server, "routellm_errors_total", status="404", code="model_not_found") >= len(REFUSED)


def test_retrieve_needs_the_token_and_serves_router_auto_names(serve: Any, mock: ServerThread) -> None:
    named = tuple(f"{name}=openai:{name},base_url={mock.url}/v1" for name in ("tiny", "big"))
    server = serve(
        api_keys=(TOKEN,),
        models=named,
        prices={"tiny": (0.1, 0.1), "big": (10.0, 10.0)},
        priors={"tiny": "like:chatglm-6b", "big": "like:o1-preview-2024-09-12"},
        objective="budget=1.5",
    )
    with (
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.models.retrieve("router-fast")
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0) as client:
        listed = [m.id for m in client.models.list().data]
        assert "router-auto-budget-1.5-climb" in listed
        for name in (*listed, "router-auto-margin-0.02", "router-auto-budget-2-w500-cascade-10%", "router-auto-max-1"):
            assert client.models.retrieve(name).id == name
        # a retrieve builds no engine: a new one would push out another (and a budget's spend) from the cache
        assert not server.app.state.routellm.auto._engines
        for name, why in {
            "router-auto-speed-1": "kind one of",
            "router-auto-margin-0.02-w500": "window",
            "router-auto-climb-cascade": "not both",
        }.items():
            with pytest.raises(openai.NotFoundError) as caught:
                client.models.retrieve(name)
            assert caught.value.code == "model_not_found" and why in str(caught.value.body)


def test_the_schema_documents_the_route(serve: Any) -> None:
    document = httpx.get(f"{serve().url}/openapi.json", timeout=10).json()
    operation = document["paths"]["/v1/models/{model}"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [("model", "path", True)]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ModelCard")
    assert "404" in operation["responses"]


# ---- --prices for the strong / weak / second upstreams ------------------------------------------------------------
def cli_settings(mock: ServerThread, *extra: str) -> Any:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = f"{mock.url}/v1"
    given = [
        f"--strong=openai:{STRONG}",
        f"--strong-base-url={base}",
        f"--weak=openai:{WEAK}",
        f"--weak-base-url={base}",
    ]
    return settings_from_args(parser.parse_args([*given, "--router=fast", "--no-auth", *extra]))


def test_prices_price_an_unpriced_pair_in_records_and_metrics(mock: ServerThread) -> None:
    assert all(price_of(name) is None for name in (STRONG, WEAK, OTHER))  # the shipped table knows none of them
    with ServerThread(create_app(cli_settings(mock))) as unpriced:
        record = ask(unpriced, "router-fast-0.0").json()["routellm"]
        assert record["cost"] is None
        assert samples(unpriced, "routellm_cost_usd_total", router="fast", model=STRONG) == 0.0

    settings = cli_settings(
        mock,
        f"--escalate-second=openai:{OTHER}",
        f"--prices={STRONG}={STRONG_PRICE[0]},{STRONG_PRICE[1]}",
        f"--prices={WEAK}={WEAK_PRICE[0]},{WEAK_PRICE[1]}",
        f"--prices={OTHER}={OTHER_PRICE[0]},{OTHER_PRICE[1]}",
    )
    with ServerThread(create_app(settings)) as server:
        strong = ask(server, "router-fast-0.0").json()
        strong_cost = usd(STRONG_PRICE, strong["usage"])
        assert strong["routellm"]["model"] == STRONG and strong["routellm"]["cost"] == pytest.approx(strong_cost)
        weak = ask(server, "router-fast-1.0", content="Say hello to the weak model please.").json()
        weak_cost = usd(WEAK_PRICE, weak["usage"])
        assert weak["routellm"]["model"] == WEAK and weak["routellm"]["cost"] == pytest.approx(weak_cost)
        assert weak_cost != pytest.approx(usd(STRONG_PRICE, weak["usage"]))
        # the second cheap answer (another model: the answers disagree, the call escalates) is priced too
        moved = ask(server, "router-fast-1.0-cascade").json()["routellm"]
        assert [(a["model"], a["role"]) for a in moved["attempts"]] == [
            (WEAK, "answer"),
            (OTHER, "check"),
            (STRONG, "escalation"),
        ]
        prices = {WEAK: WEAK_PRICE, OTHER: OTHER_PRICE, STRONG: STRONG_PRICE}
        for attempt in moved["attempts"]:
            tokens = {"prompt_tokens": attempt["input_tokens"], "completion_tokens": attempt["output_tokens"]}
            assert attempt["cost"] == pytest.approx(usd(prices[attempt["model"]], tokens))
        assert moved["cost"] == pytest.approx(sum(a["cost"] for a in moved["attempts"]))

        strong_usd = samples(server, "routellm_cost_usd_total", router="fast", model=STRONG)
        other_usd = samples(server, "routellm_cost_usd_total", router="fast", model=OTHER)
        weak_usd = samples(server, "routellm_cost_usd_total", router="fast", model=WEAK)
        escalation = moved["attempts"][2]["cost"]
        assert strong_usd == pytest.approx(strong_cost + escalation)
        assert other_usd == pytest.approx(moved["attempts"][1]["cost"])
        assert weak_usd == pytest.approx(weak_cost + moved["attempts"][0]["cost"])
        # always-strong: each answer's tokens at the strong price
        served = [strong["usage"], weak["usage"]]
        baseline = sum(usd(STRONG_PRICE, u) for u in served) + escalation
        assert samples(server, "routellm_cost_usd_always_strong_total", router="fast") == pytest.approx(baseline)


def test_a_price_for_a_model_the_server_never_calls_is_refused_by_name(
    mock: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidInputError, match=r"\['mock-strnog'\].*neither a --model nor the --strong"):
        cli_settings(mock, "--prices=mock-strnog=1,2")
    with pytest.raises(InvalidInputError, match=r"\['mock-judge'\]"):  # the judge is not priced: no cost is recorded
        cli_settings(mock, f"--prices={JUDGE}=1,2")
    # `routellm serve` exits 2 naming it, before anything starts
    base = f"{mock.url}/v1"
    argv = [
        f"--strong=openai:{STRONG}",
        f"--strong-base-url={base}",
        f"--weak=openai:{WEAK}",
        f"--weak-base-url={base}",
    ]
    assert main([*argv, "--router=fast", "--no-auth", "--prices=openai:mock-weak=1,2"]) == 2
    error = capsys.readouterr().err
    assert "['openai:mock-weak']" in error and "'mock-weak'" in error  # it says the name the weak model goes by
    # upstreams given as objects are checked by the names they carry
    strong = OpenAIUpstream(STRONG, base_url=base, api_key="k")
    weak = OpenAIUpstream(WEAK, base_url=base, api_key="k")
    with pytest.raises(InvalidInputError, match=r"\['nope'\]"):
        create_app(strong=strong, weak=weak, routers=("fast",), api_keys_env=None, prices={"nope": (1.0, 1.0)})
    app = create_app(strong=strong, weak=weak, routers=("fast",), api_keys_env=None, prices={WEAK: (1.0, 1.0)})
    assert app.state.routellm.prices == {WEAK: (1.0, 1.0)}
    # a --model with the strong upstream's endpoint renames it ("big"); the spec's name the settings took stays valid
    base_model = f"big=openai:{STRONG},base_url={base}"
    other = f"small=openai:{OTHER},base_url={base}"
    named = [f"--model={base_model}", f"--model={other}", "--prior=big=like:gpt-4o", "--prior=small=like:gpt-4o-mini"]
    prices = ["--prices=big=10,30", "--prices=small=1,2", f"--prices={STRONG}=10,30"]
    app = create_app(cli_settings(mock, *named, *prices))  # the settings took STRONG's price: so does the app
    assert app.state.routellm.upstreams["strong"].name == "big"


# ---- the escalation check's and the labeller's calls in the upstream metrics -------------------------------------
def calls(server: ServerThread, side: str, outcome: str = "ok") -> float:
    return samples(server, "routellm_upstream_calls_total", side=side, outcome=outcome)


def timed(server: ServerThread, side: str) -> float:
    return samples(server, "routellm_upstream_latency_seconds_count", side=side)


def test_check_calls_are_counted_as_check(serve: Any, mock: ServerThread) -> None:
    # the second cheap answer from another model: weak answers, the check asks OTHER, strong answers the escalation
    server = serve(escalate_second=OTHER, weak_base_url=f"{mock.url}/v1")
    record = ask(server, "router-fast-1.0-cascade").json()["routellm"]
    assert [a["role"] for a in record["attempts"]] == ["answer", "check", "escalation"]
    assert (calls(server, "weak"), calls(server, "check"), calls(server, "strong")) == (1.0, 1.0, 1.0)
    assert (timed(server, "weak"), timed(server, "check"), timed(server, "strong")) == (1.0, 1.0, 1.0)
    # a stream holds the cheap answer for its check the same way
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
        list(
            client.chat.completions.create(
                model="router-fast-1.0-cascade", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
        )
    assert (calls(server, "weak"), calls(server, "check"), calls(server, "strong")) == (2.0, 2.0, 2.0)
    # a check call that fails is counted as an error of the check, not of the weak side
    failing = ask(server, "router-fast-1.0-cascade", content=f"{PROMPT} [status:500@{OTHER}]")
    assert failing.status_code == 200
    assert calls(server, "check", "error") == 1.0 and calls(server, "weak", "error") == 0.0
    assert timed(server, "check") == 3.0

    # the weak model asked again warmer, and self-verification: the cheap model's own extra calls are checks
    resampled = serve()
    ask(resampled, "router-fast-1.0-cascade")
    assert (calls(resampled, "weak"), calls(resampled, "check"), calls(resampled, "strong")) == (1.0, 1.0, 0.0)
    verifying = serve(escalate_check="self_verification")
    record = ask(verifying, "router-fast-1.0-cascade").json()["routellm"]
    assert [a["model"] for a in record["attempts"]][:2] == [WEAK, f"{WEAK} (verify)"]
    assert (calls(verifying, "weak"), calls(verifying, "check")) == (1.0, 1.0)
    # a plain name makes no check call
    ask(verifying, "router-fast-1.0")
    assert (calls(verifying, "weak"), calls(verifying, "check")) == (2.0, 1.0)


def test_the_labellers_call_of_the_other_side_is_counted_as_label(
    serve: Any, mock: ServerThread, tmp_path: Path
) -> None:
    server = serve(
        feedback=str(tmp_path / "labels.sqlite"),
        judge=OpenAIUpstream(JUDGE, base_url=f"{mock.url}/v1", api_key="k"),
        label_fraction=1.0,
    )
    asked = "Which river flows through Vienna? (labelled)"
    answer = ask(server, "router-fast-1.0", content=asked)  # weak answers; the labeller asks strong in the background
    assert answer.status_code == 200 and answer.json()["routellm"]["served"] == "weak"
    deadline = time.monotonic() + 20
    while calls(server, "label") < 1.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (calls(server, "label"), timed(server, "label")) == (1.0, 1.0)
    reached = [b["model"] for b in mock.app.state.received if b["messages"][-1]["content"] == asked]
    assert reached[:2] == [WEAK, STRONG]  # the answer, then the labeller's call of the strong model
    assert (calls(server, "weak"), calls(server, "strong")) == (1.0, 0.0)  # the served calls alone

    def judge_calls_counted() -> bool:  # then the judge reads the pair: each of its calls counted once it answered
        judged = sum(1 for b in mock.app.state.received if b["model"] == JUDGE)
        return judged >= 1 and calls(server, "judge") == timed(server, "judge") == judged

    while not judge_calls_counted() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a judge call still to come would show as a mismatch
    assert judge_calls_counted()


def test_a_resampled_check_is_billed_to_the_weak_models_own_cost_series(mock: ServerThread) -> None:
    strong, weak = (f"--prices={m}={p[0]},{p[1]}" for m, p in ((STRONG, STRONG_PRICE), (WEAK, WEAK_PRICE)))
    settings = cli_settings(mock, strong, weak)
    with ServerThread(create_app(settings)) as server:
        kept = ask(server, "router-fast-1.0-cascade").json()["routellm"]  # the weak model asked twice agrees
        roles = [(a["model"], a["role"]) for a in kept["attempts"]]
        assert roles == [(WEAK, "answer"), (f"{WEAK} (resampled)", "check")]
        paid = sum(a["cost"] for a in kept["attempts"])
        assert samples(server, "routellm_cost_usd_total", router="fast", model=WEAK) == pytest.approx(paid)
        assert samples(server, "routellm_cost_usd_total", router="fast", model=f"{WEAK} (resampled)") == 0.0


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_a_failed_escalation_still_counts_the_cheap_answers_it_paid(mock: ServerThread, stream: bool) -> None:
    """The two cheap answers disagree, the strong upstream is down: a 502, and /metrics has what the cheap ones cost."""
    settings = cli_settings(mock, f"--escalate-second=openai:{OTHER}", "--prices=mock-weak=0.5,1.5")
    settings = settings.model_copy(update={"prices": {WEAK: WEAK_PRICE, OTHER: OTHER_PRICE}})
    app = create_app(settings)
    state = app.state.routellm
    state.upstreams["strong"] = OpenAIUpstream(STRONG, base_url="http://127.0.0.1:9/v1", api_key="k")  # refused
    with ServerThread(app) as server:
        usage = {"stream_options": {"include_usage": True}} if stream else {}  # a stream's tokens come at its end
        answer = ask(server, "router-fast-1.0-cascade", stream=stream, **usage)
        assert answer.status_code == 502 and answer.json()["error"]["code"] == "upstream_unreachable"
        weak = samples(server, "routellm_cost_usd_total", router="fast", model=WEAK)
        other = samples(server, "routellm_cost_usd_total", router="fast", model=OTHER)
        assert weak > 0 and other > 0
