"""``router-auto`` under share caps: the request field and ``--objective shares=...`` hold a capped model's share, the
record and ``x-routellm-objective`` name the caps, ``/metrics`` carries a cap and a served-share gauge per model (in
the Prometheus format), and an evicted engine's gauges go with it. Same stand-ins as ``test_server_ladder``: tiny, mid,
big served by the mock echo; big is the best predicted model on every prompt here."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from test_server_ladder import ask, ladder_app, samples

from routellm_core.server import ServerThread
from routellm_core.server.auto import MAX_ENGINES

TEXTS = [  # shuffled: the leads trend with i, and traffic does not arrive sorted
    f"Prove that {i} squared minus {i} is even, and explain the argument step by step."
    for i in np.random.default_rng(5).permutation(60)
]
CAPS = "shares=big:25%,window=20"


def _big_share(server: ServerThread, model: str, **fields: Any) -> tuple[list[bool], dict[str, Any]]:
    big, last = [], {}
    for text in TEXTS:
        answer = ask(server, model, text, **fields)
        assert answer.status_code == 200, answer.text
        last = {"record": answer.json()["routellm"], "headers": answer.headers}
        big.append(answer.json()["choices"][0]["message"]["content"].startswith("[big]"))
    return big, last


def test_the_request_field_holds_a_share_and_the_metrics_say_it(mock: ServerThread) -> None:
    with ServerThread(ladder_app(mock)) as server:
        big, last = _big_share(server, "router-auto", routellm={"objective": CAPS})
        assert 8 <= sum(big[20:]) <= 10 and max(sum(big[b - 20 : b]) for b in range(20, 61)) <= 5
        ladder = last["record"]["ladder"]
        assert ladder["objective"] == "shares" and ladder["caps"] == {"big": 0.25}
        assert ladder["shares"]["big"] == pytest.approx(sum(big[-21:-1]) / 20)  # routed before the last call
        assert last["headers"]["x-routellm-objective"] == CAPS
        metrics = samples(httpx.get(f"{server.url}/metrics").text)
        label = frozenset({("objective", CAPS), ("model", "big")})
        assert metrics[("routellm_ladder_share_cap", label)] == 0.25
        assert metrics[("routellm_ladder_share_served", label)] == pytest.approx(sum(big[-20:]) / 20)


def test_a_server_objective_of_caps_is_served_and_listed(mock: ServerThread) -> None:
    with ServerThread(ladder_app(mock, objective=CAPS)) as server:
        big, _ = _big_share(server, "router-auto")
        assert 8 <= sum(big[20:]) <= 10
        ids = [m["id"] for m in httpx.get(f"{server.url}/v1/models").json()["data"]]
        assert "router-auto" in ids and not [i for i in ids if "shares" in i]  # no model name writes caps


def test_bad_caps_in_the_field_get_a_400_naming_the_problem(mock: ServerThread) -> None:
    with ServerThread(ladder_app(mock)) as server:
        for objective, words in (
            ("shares=big:120%", "must be in (0, 1]"),
            ("shares=huge:20%", "which models= does not list"),
            ("shares=big:20%;mid:20%;tiny:20%", "caps sum to 0.6 < 1"),
        ):
            answer = ask(server, "router-auto", routellm={"objective": objective})
            assert answer.status_code == 400 and words in answer.text, answer.text
        answer = ask(server, "router-auto-shares-big")
        assert answer.status_code == 400 and "share caps go in the request field" in answer.text


def test_an_evicted_shares_engine_takes_its_gauges_with_it(mock: ServerThread) -> None:
    with ServerThread(ladder_app(mock)) as server:
        assert ask(server, "router-auto", routellm={"objective": "shares=big:50%"}).status_code == 200
        for i in range(MAX_ENGINES):  # more objectives than a worker keeps: the shares engine is dropped
            assert ask(server, f"router-auto-margin-0.{i + 1:03d}").status_code == 200
        gone = [s for s in samples(httpx.get(f"{server.url}/metrics").text) if s[0].startswith("routellm_ladder_share")]
        assert not [s for s in gone if ("objective", "shares=big:50%") in s[1]]
