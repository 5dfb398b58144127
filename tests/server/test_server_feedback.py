"""The server's learning loop and its single decision: ``feedback`` records every routed request, ``POST
/v1/feedback`` attaches verdicts, ``label_fraction`` with a judge upstream stores judged labels, and each request is
decided once, at the threshold its model name asks for.

The app runs in the test's event loop (httpx's ASGI transport), routing with the shipped ``default`` router to the
local mock upstream (a real socket on 127.0.0.1), so the background labels can be awaited on the same loop.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import numpy as np
import pytest

from routellm_core import InvalidInputError, load_router
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import OpenAIUpstream, ServerSettings, ServerThread, Upstream, create_app

STRONG, WEAK = "mock-strong", "mock-weak"
TOKEN = "tok-feedback-test"
DEADLINE_S = 30


@pytest.fixture(scope="module")
def default_router():
    return load_router("default")


class PrefersStrong(Upstream):
    """A judge upstream that always prefers the answer written by the strong mock, whichever position it is in."""

    name = "fake-judge"

    def __init__(self) -> None:
        self.asked: list[list[dict[str, str]]] = []

    async def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.asked.append(list(body["messages"]))
        question = body["messages"][-1]["content"]
        verdict = "[[A]]" if f"[The Start of Assistant A's Answer]\n[{STRONG}]" in question else "[[B]]"
        message = {"role": "assistant", "content": f"A is {'better' if 'A' in verdict else 'worse'}. {verdict}"}
        return {"id": "judge", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}

    async def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError
        yield {}


def make_app(mock: ServerThread, router: Any, **options: Any) -> Any:
    options.setdefault("api_keys", (TOKEN,))
    options.setdefault("api_keys_env", None)
    upstream = {"base_url": f"{mock.url}/v1", "api_key": "sk-unused"}
    return create_app(
        strong=OpenAIUpstream(STRONG, **upstream),
        weak=OpenAIUpstream(WEAK, **upstream),
        policies={"default": options.pop("policy", None) or RoutingPolicy(router)},
        **options,
    )


def asgi(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://routellm.test", timeout=DEADLINE_S)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def chat(client: httpx.AsyncClient, model: str, text: str) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", headers=auth(), json={"model": model, "messages": ask(text)})
    assert response.status_code == 200, response.text
    record = response.json()["routellm"]
    assert record["decision_id"] == response.headers["x-routellm-decision-id"]
    return record


async def stream(client: httpx.AsyncClient, model: str, text: str) -> tuple[dict[str, Any], str]:
    body = {"model": model, "messages": ask(text), "stream": True}
    response = await client.post("/v1/chat/completions", headers=auth(), json=body)
    assert response.status_code == 200, response.text
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return chunks[0]["routellm"], content


# ---- one decision per request ----------------------------------------------------------------------------
async def test_each_request_is_decided_once_at_its_models_threshold(mock: ServerThread, default_router) -> None:
    """The policy's own threshold (0.0: all strong) never decides a request that names another threshold; the
    choice is ``win_rate >= threshold`` for the threshold in the model name, exactly at the boundary."""
    app = make_app(mock, default_router, policy=RoutingPolicy(default_router, threshold=0.0))
    text = f"Prove that there are infinitely many primes ({uuid.uuid4().hex})"
    async with asgi(app) as client:
        bare = await chat(client, "router-default", text)
        rate = bare["win_rate"]
        assert 0.0 < rate < 1.0 and bare["threshold"] == 0.0 and bare["choice"] == "strong"
        above = float(np.nextafter(rate, 1.0))
        for threshold, side in ((rate, "strong"), (above, "weak"), (1.0, "weak"), (0.0, "strong")):
            record = await chat(client, f"router-default-{threshold!r}", text)
            assert record["win_rate"] == rate  # one text alone in its batch scores alike every time
            assert record["threshold"] == threshold
            assert record["choice"] == record["served"] == side == ("strong" if rate >= threshold else "weak")
            assert record["model"] == (STRONG if side == "strong" else WEAK)
        share = await chat(client, "router-default-30%", text)
        assert share["threshold"] == default_router.threshold_for(0.3)
        assert share["choice"] == ("strong" if share["win_rate"] >= share["threshold"] else "weak")
    await app.state.routellm.aclose()


# ---- feedback: every decision recorded, verdicts attached --------------------------------------------------
async def test_feedback_records_every_request_and_takes_verdicts(mock: ServerThread, default_router, tmp_path) -> None:
    path = tmp_path / "feedback.sqlite"
    app = make_app(mock, default_router, feedback=str(path))
    tag = uuid.uuid4().hex
    async with asgi(app) as client:
        weak = await chat(client, "router-default-1.0", f"What is the capital of France? {tag}")
        strong, content = await stream(client, "router-default-0.0", f"Derive the quadratic formula {tag}")
        assert (weak["served"], strong["served"]) == ("weak", "strong")
        assert content == f"[{STRONG}] Derive the quadratic formula {tag}"

        with FeedbackStore(path) as store:  # another connection, as another worker would read it
            assert store.stats().verdicts == {"none": 2}
            assert sorted(store.prompts()) == sorted(
                [f"What is the capital of France? {tag}", f"Derive the quadratic formula {tag}"]
            )

        async def verdict(body: Any, token: str | None = TOKEN) -> httpx.Response:
            headers = auth(token) if token else {}
            return await client.post("/v1/feedback", headers=headers, json=body)

        answer = await verdict({"decision_id": weak["decision_id"], "verdict": "bad"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision_id"] == weak["decision_id"] and isinstance(answer.json()["label_id"], int)
        good = await verdict({"decision_id": strong["decision_id"], "verdict": "good"})
        assert good.status_code == 200 and good.json()["label_id"] is None  # good on strong says nothing of weak
        with FeedbackStore(path) as store:
            (label,) = store.labels(sources=["user"])
            assert label.decision_id == weak["decision_id"]
            assert label.winner == "model_a"  # thumbs down on the weak answer: strong should have answered
            assert (label.model_a, label.model_b) == (STRONG, WEAK)
            assert store.stats().verdicts == {"bad": 1, "good": 1}

        # refused: without or with a wrong token, a bad body, an unknown verdict or decision
        for token in (None, "tok-wrong"):
            refused = await verdict({"decision_id": weak["decision_id"], "verdict": "good"}, token=token)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        bad_bodies = [
            (b"not json", "invalid_json"),
            (b"[1, 2]", "invalid_body"),
            (json.dumps({"verdict": "bad"}).encode(), "invalid_decision_id"),
            (json.dumps({"decision_id": weak["decision_id"], "verdict": 1}).encode(), "invalid_verdict"),
            (json.dumps({"decision_id": weak["decision_id"], "verdict": "meh"}).encode(), "invalid_verdict"),
        ]
        for raw, code in bad_bodies:
            response = await client.post("/v1/feedback", headers=auth(), content=raw)
            assert response.status_code == 400 and response.json()["error"]["code"] == code, response.text
        unknown = await verdict({"decision_id": uuid.uuid4().hex, "verdict": "bad"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "decision_not_found"
        assert str(path) not in unknown.text
        with FeedbackStore(path) as store:
            assert store.stats().verdicts == {"bad": 1, "good": 1}  # nothing refused was written
    await app.state.routellm.aclose()


async def test_feedback_without_a_store_is_409(mock: ServerThread, default_router) -> None:
    app = make_app(mock, default_router)
    async with asgi(app) as client:
        record = await chat(client, "router-default-1.0", "hello there")
        body = {"decision_id": record["decision_id"], "verdict": "good"}
        assert (await client.post("/v1/feedback", json=body)).status_code == 401  # auth is checked first
        response = await client.post("/v1/feedback", headers=auth(), json=body)
        assert response.status_code == 409 and response.json()["error"]["code"] == "feedback_disabled"
        assert "--feedback" in response.json()["error"]["message"]
    await app.state.routellm.aclose()


# ---- label_fraction: the judge labels sampled requests ------------------------------------------------------
async def test_label_fraction_one_stores_a_judge_label_per_request(
    mock: ServerThread, default_router, tmp_path
) -> None:
    path = tmp_path / "feedback.sqlite"
    judge = PrefersStrong()
    app = make_app(mock, default_router, feedback=str(path), judge=judge, label_fraction=1.0)
    state = app.state.routellm
    tag = uuid.uuid4().hex
    async with asgi(app) as client:
        weak = await chat(client, "router-default-1.0", f"Name a fruit {tag}")
        strong, _ = await stream(client, "router-default-0.0", f"Explain entropy {tag}")
        assert await state.aflush_labels(DEADLINE_S), "the labels were not judged in time"
    (labeller,) = state.labellers
    assert labeller.stats.stored == 2, labeller.stats
    # the other side was asked the same request, not streamed
    asked = [b for b in mock.app.state.received if tag in json.dumps(b)]
    assert sorted((b["model"], bool(b.get("stream"))) for b in asked) == [
        (STRONG, False),
        (STRONG, True),
        (WEAK, False),
        (WEAK, False),
    ]
    assert len(judge.asked) == 4  # two requests, each judged twice with the answers swapped
    with FeedbackStore(path) as store:
        labels = {label.decision_id: label for label in store.labels(sources=["judge"])}
        assert set(labels) == {weak["decision_id"], strong["decision_id"]}
        for label in labels.values():
            assert label.winner == "model_a" and label.judge == "fake-judge"
            assert (label.model_a, label.model_b) == (STRONG, WEAK)
        assert labels[weak["decision_id"]].prompt == f"Name a fruit {tag}"
        assert store.stats().verdicts == {"none": 2}
    await state.aclose()


def test_judge_and_label_fraction_need_each_other_and_a_store(mock: ServerThread, default_router, tmp_path) -> None:
    with pytest.raises(InvalidInputError, match=r"label_fraction \(--label-fraction\) needs feedback"):
        ServerSettings.build(label_fraction=0.5)
    with pytest.raises(InvalidInputError, match=r"judge \(--judge\) labels .* give both"):
        ServerSettings.build(judge="openai:judge")
    with pytest.raises(InvalidInputError, match=r"judge \(--judge\) labels .* give both"):
        ServerSettings.build(judge="openai:judge", feedback=str(tmp_path / "f.sqlite"))
    with pytest.raises(InvalidInputError, match=r"label_fraction=0\.5 needs a judge"):
        make_app(mock, default_router, feedback=str(tmp_path / "f.sqlite"), label_fraction=0.5)
    with pytest.raises(InvalidInputError, match=r"give feedback \(--feedback PATH\) and label_fraction"):
        make_app(mock, default_router, judge=PrefersStrong())
    with pytest.raises(InvalidInputError, match="feedback needs two model names"):
        create_app(
            strong=OpenAIUpstream("same", base_url=f"{mock.url}/v1"),
            weak=OpenAIUpstream("same", base_url=f"{mock.url}/v1"),
            policies={"default": RoutingPolicy(default_router)},
            feedback=str(tmp_path / "g.sqlite"),
        )
