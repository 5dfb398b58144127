"""The web page at ``/ui`` in a real browser: Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``),
headless, driven by Playwright's Python API, against the real server (uvicorn on 127.0.0.1) routing with a router
fitted in the tests on obvious battles, in front of the local mock upstream (which echoes ``[<model>] <prompt>``).

What the page must show is known in advance: ``fitted_router.HARD`` prompts go to strong and ``TRIVIA`` prompts to
weak at the router's default threshold (its calibrated 50% point); a strong share of 0% routes everything weak and
100% everything strong (``threshold_for`` ends at 1.0 and 0.0). The feedback store is filled through the server
itself: each hard prompt labelled ``strong`` and each trivia prompt ``tie``, so the strong model wins 75% of the
verdicts and both the router and the prompt-length heuristic (every hard prompt is longer than every trivia one)
rank the prompts perfectly: the report can only say "Partly" (the router does not beat length). The tests write
the screenshots of each view to ``docs/ui/``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fitted_router import HARD, TRIVIA

from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import OpenAIUpstream, ServerThread, create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "ui-test-token-5c2e9a"
STRONG, WEAK = "mock-strong", "mock-weak"
ROUTER = "known"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "ui"
WAIT_MS = 15_000
TOKEN_SCRIPT = f"sessionStorage.setItem('routellm-token', {json.dumps(TOKEN)})"


# ---- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the distribution (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _start(mock: ServerThread, router: Any, **options: Any) -> ServerThread:
    options.setdefault("api_keys_env", None)
    app = create_app(
        strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key="unused"),
        weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key="unused"),
        policies={ROUTER: RoutingPolicy(router)},
        **options,
    )
    return ServerThread(app).start()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui") / "feedback.sqlite"


@pytest.fixture(scope="module")
def server(mock: ServerThread, known_router: Any, store_path: Path) -> Iterator[ServerThread]:
    """The server with auth on and a feedback store, labelled through its own API (see the module docstring)."""
    cwd = os.getcwd()
    os.chdir(store_path.parent)  # a relative --feedback path, as typed on a command line (the page repeats it)
    try:
        server = _start(mock, known_router, api_keys=(TOKEN,), feedback=store_path.name)
    finally:
        os.chdir(cwd)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0, timeout=30)
    for prompts, verdict in ((HARD, "strong"), (TRIVIA, "tie")):
        for prompt in prompts:
            answer = client.chat.completions.create(
                model=f"router-{ROUTER}", messages=[{"role": "user", "content": prompt}]
            )
            decision = answer.model_extra["routellm"]
            response = httpx.post(
                f"{server.url}/v1/feedback",
                json={"decision_id": decision["decision_id"], "verdict": verdict},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert response.status_code == 200, response.text
    yield server
    server.stop()


@pytest.fixture()
def page(browser: Any, server: ServerThread) -> Iterator[Any]:
    """A fresh tab holding the server's token (as the token field leaves it), that may only reach the server."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(TOKEN_SCRIPT)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.requests = []  # type: ignore[attr-defined]
    tab.on("request", lambda request: tab.requests.append(request.url))  # type: ignore[attr-defined]
    tab.errors = []  # type: ignore[attr-defined]
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))  # type: ignore[attr-defined]
    yield tab
    assert not tab.errors, f"script errors on the page: {tab.errors}"  # type: ignore[attr-defined]
    outside = [u for u in tab.requests if not u.startswith(server.url) and not u.startswith("data:")]  # type: ignore[attr-defined]
    assert not outside, f"the page reached beyond its server: {outside}"
    context.close()


# ---- helpers -------------------------------------------------------------------------------------------------
def metrics(server: ServerThread) -> str:
    response = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()
    return response.text


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels`` (0 when none), read independently of the page."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match[3])
    return total


def open_view(page: Any, server: ServerThread, view: str) -> None:
    page.goto(f"{server.url}/ui#{view}")
    page.wait_for_selector("#server-line:not(:empty)")


def try_prompt(page: Any, prompt: str) -> Any:
    """Type a prompt, submit it, and wait for the record of this very prompt."""
    page.fill("textarea[name=prompt]", prompt)
    page.click("button[type=submit]#submit")
    decision = page.get_by_test_id("decision")
    page.get_by_test_id("routing-text").filter(has_text=prompt).wait_for()
    return decision


def expect_choice(page: Any, side: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("preview")).to_have_attribute("data-choice", side)
    expect(page.get_by_test_id("preview-choice")).to_have_text(side)


def screenshot(page: Any, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / name), full_page=True)


# ---- the page, its files and its auth ------------------------------------------------------------------------
def test_page_loads_without_a_token_but_its_api_needs_one(server: ServerThread) -> None:
    page = httpx.get(f"{server.url}/ui")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'name="prompt"' in page.text and "http" not in page.text.replace("http://www.w3.org", "")
    for name in ("app.js", "style.css"):
        asset = httpx.get(f"{server.url}/ui/{name}")
        assert asset.status_code == 200 and "//cdn" not in asset.text and "googleapis" not in asset.text
    assert httpx.get(f"{server.url}/ui/secrets.txt").status_code == 404
    calls = [
        ("GET", "/ui/api/info", None),
        ("POST", "/ui/api/score", {"prompt": HARD[0]}),
        ("GET", "/ui/api/recent", None),
        ("GET", "/ui/api/learn", None),
        ("GET", "/metrics", None),
    ]
    for method, path, body in calls:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            answer = httpx.request(method, f"{server.url}{path}", json=body, headers=headers)
            assert answer.status_code == 401, (path, headers, answer.text)
            assert answer.json()["error"]["code"] == "invalid_api_key"
        ok = httpx.request(method, f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, (path, ok.text)


def test_the_page_says_401_until_the_token_is_given(browser: Any, server: ServerThread) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    statuses: list[int] = []
    tab.on("response", lambda r: statuses.append(r.status) if "/ui/api/" in r.url else None)
    tab.goto(f"{server.url}/ui")
    alert = tab.get_by_test_id("auth-error")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("401")
    expect(alert).to_contain_text("auth on")
    assert statuses and set(statuses) == {401}
    tab.fill("#token", "not-the-token")
    tab.click("#token-form button")
    expect(alert).to_contain_text("refused this token")
    expect(tab.locator("#server-line")).to_be_empty()
    tab.fill("#token", TOKEN)
    tab.click("#token-form button")
    expect(alert).to_be_hidden()
    expect(tab.locator("#server-line")).to_contain_text(f"strong model: {STRONG}")
    expect(tab.locator("#server-line")).to_contain_text("auth on")
    assert tab.evaluate("sessionStorage.getItem('routellm-token')") == TOKEN
    context.close()


# ---- Try -----------------------------------------------------------------------------------------------------
def test_try_shows_the_decision_known_in_advance(page: Any, server: ServerThread, known_router: Any) -> None:
    from playwright.sync_api import expect

    threshold = RoutingPolicy(known_router).threshold
    open_view(page, server, "try")
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}")
    for prompt, side, model in ((HARD[1], "strong", STRONG), (TRIVIA[1], "weak", WEAK)):
        decision = try_prompt(page, prompt)
        expect(decision).to_be_visible()
        expect(decision).to_have_attribute("data-choice", side)
        expect(decision).to_have_attribute("data-served", side)
        expect(decision).to_have_attribute("data-model", model)
        expect(page.get_by_test_id("choice")).to_have_text(side)
        expect(page.get_by_test_id("served")).to_have_text(f"{model} ({side})")
        expect(page.get_by_test_id("threshold")).to_have_text(f"{threshold:.3f}")
        expect(page.get_by_test_id("answer")).to_have_text(f"[{model}] {prompt}")
        win_rate = float(decision.get_attribute("data-win-rate"))
        assert (win_rate >= threshold) == (side == "strong")
        expect(page.get_by_test_id("win-rate")).to_have_text(f"{win_rate:.3f}")
        sign = "≥" if side == "strong" else "<"
        expect(page.get_by_test_id("why")).to_have_text(f"win rate {win_rate:.3f} {sign} threshold {threshold:.3f}")
        # the bar: the fill reaches the win rate, the mark sits at the threshold, in the side's colour
        fill = page.locator("#decision-bar [data-testid=win-rate-fill]")
        mark = page.locator("#decision-bar [data-testid=threshold-mark]")
        x0, span = 10.0, 880.0
        assert float(fill.get_attribute("width")) == pytest.approx(span * win_rate, abs=0.01)
        assert float(mark.get_attribute("x1")) == pytest.approx(x0 + span * threshold, abs=0.01)
        expect(fill).to_have_attribute("fill", "#b4451f" if side == "strong" else "#2467b3")
        attempts = page.get_by_test_id("attempt")
        expect(attempts.first).to_contain_text(model)
        if side == "strong":
            screenshot(page, "try.png")


def test_try_with_escalation_lists_each_attempt(page: Any, server: ServerThread) -> None:
    """With "escalate on the answer" a trivia prompt (weak) gets the weak answer and a second sample of it: the mock
    echoes the same text twice, so they agree and the weak answer is kept; both attempts are shown."""
    from playwright.sync_api import expect

    open_view(page, server, "try")
    page.check("#cascade")
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}-cascade")
    try_prompt(page, TRIVIA[6])
    expect(page.get_by_test_id("served")).to_have_text(f"{WEAK} (weak)")
    expect(page.get_by_test_id("escalated")).to_have_text("no")
    attempts = page.get_by_test_id("attempt")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text(f"{WEAK} (weak, answer) · kept · confidence 1.000")
    expect(attempts.nth(1)).to_contain_text(f"{WEAK} (resampled) (weak, check) · not kept")
    expect(page.get_by_test_id("decision")).to_contain_text("signals: agreement 1.000")
    screenshot(page, "try-escalation.png")


def test_slider_moves_a_known_prompt_across_the_threshold_without_calling_a_model(
    page: Any, server: ServerThread, mock: ServerThread
) -> None:
    from playwright.sync_api import expect

    open_view(page, server, "try")
    before_mock, before_metrics = len(mock.app.state.received), metrics(server)
    page.fill("textarea[name=prompt]", HARD[2])
    expect_choice(page, "strong")  # the server's default threshold
    page.fill("#slider", "0")  # send 0% to strong: threshold 1.0
    expect_choice(page, "weak")
    expect(page.get_by_test_id("slider-value")).to_contain_text("0% strong = threshold 1.000")
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}-0%")
    page.fill("textarea[name=prompt]", TRIVIA[2])
    expect_choice(page, "weak")
    page.fill("#slider", "100")  # everything to strong: threshold 0.0
    expect_choice(page, "strong")
    page.check("input[name=mode][value=threshold]")
    page.fill("#slider", "1")
    expect_choice(page, "weak")
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}-1")
    page.check("#cascade")  # the slider's number is the pre-route's: before -cascade (after it, the escalation's)
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}-1-cascade")
    page.uncheck("#cascade")
    page.fill("#slider", "0")
    expect_choice(page, "strong")
    # no model was called and nothing was counted while the slider moved
    assert len(mock.app.state.received) == before_mock
    assert metrics(server) == before_metrics
    # the slider's setting is the one the call is routed at: this trivia prompt now goes to strong
    decision = try_prompt(page, TRIVIA[2])
    expect(decision).to_have_attribute("data-choice", "strong")
    expect(decision).to_have_attribute("data-model", STRONG)
    expect(page.get_by_test_id("threshold")).to_have_text("0.000")
    assert len(mock.app.state.received) == before_mock + 1
    page.click("#reset")
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}")
    expect_choice(page, "weak")


def test_score_api_rejects_bad_input_by_name(server: ServerThread) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cases = [
        ({"prompt": 3}, 400, "prompt must be text"),
        ({"prompt": HARD[0], "threshold": 1.5}, 400, "threshold must be a number in [0, 1]"),
        ({"prompt": HARD[0], "threshold": 0.5, "strong_fraction": 0.5}, 400, "not both"),
        ({"prompt": "   "}, 400, "hold no text"),
        ({"prompt": HARD[0], "router": "nope"}, 404, "'nope' is not served here"),
    ]
    for body, status, words in cases:
        answer = httpx.post(f"{server.url}/ui/api/score", json=body, headers=auth)
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.json()["error"]["message"], (body, answer.text)
    answer = httpx.post(f"{server.url}/ui/api/score", content=b"{not json", headers=auth)
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]["message"]
    scored = httpx.post(f"{server.url}/ui/api/score", json={"prompt": HARD[0], "strong_fraction": 0.3}, headers=auth)
    assert scored.json()["model"] == f"router-{ROUTER}-30%" and scored.json()["choice"] == "strong"


# ---- Watch ---------------------------------------------------------------------------------------------------
def test_watch_numbers_match_metrics(page: Any, server: ServerThread) -> None:
    from playwright.sync_api import expect

    before = metrics(server)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0, timeout=30)
    for prompt in (HARD[3], HARD[4], TRIVIA[3]):
        client.chat.completions.create(model=f"router-{ROUTER}", messages=[{"role": "user", "content": prompt}])
    with pytest.raises(openai.NotFoundError):  # an error answer, counted as such
        client.chat.completions.create(model="router-nope", messages=[{"role": "user", "content": HARD[0]}])
    after = metrics(server)
    strong = metric(after, "routellm_decisions_total", choice="strong")
    weak = metric(after, "routellm_decisions_total", choice="weak")
    assert strong == metric(before, "routellm_decisions_total", choice="strong") + 2
    assert weak == metric(before, "routellm_decisions_total", choice="weak") + 1
    requests = metric(after, "routellm_requests_total")
    failed = metric(after, "routellm_requests_total", status="404")
    assert failed >= 1
    open_view(page, server, "watch")
    expect(page.get_by_test_id("watch-strong")).to_have_text(f"{strong:.0f}")
    expect(page.get_by_test_id("watch-weak")).to_have_text(f"{weak:.0f}")
    expect(page.get_by_test_id("watch-requests")).to_have_text(f"{requests:.0f}")
    expect(page.get_by_test_id("watch-errors")).to_have_text(f"{100 * failed / requests:.1f}%")
    expect(page.get_by_test_id("watch-fallback")).to_have_text("0.0%")
    ok_strong = metric(after, "routellm_upstream_calls_total", side="strong", outcome="ok")
    expect(page.get_by_test_id("calls-strong-ok")).to_have_text(f"{ok_strong:.0f}")
    expect(page.get_by_test_id("model-strong")).to_contain_text(STRONG)
    count = metric(after, "routellm_routing_latency_seconds_count")
    mean_ms = 1000 * metric(after, "routellm_routing_latency_seconds_sum") / count
    expect(page.get_by_test_id("watch-latency")).to_have_text(f"{mean_ms:.2f} ms")
    reported = "routellm_escalations_total{" in after  # present once the escalation metrics land
    expect(page.get_by_test_id("watch-escalation")).to_have_text(re.compile(r"%$") if reported else "n/a")
    # the recent decisions show win rates and choices, never the prompts (the server runs without --log-prompts)
    recent = page.get_by_test_id("recent")
    expect(recent.locator("tbody tr").first).to_be_visible()
    expect(page.locator("#recent-note")).to_contain_text("prompt text hidden")
    assert not any(p in page.content() for p in (*HARD, *TRIVIA))
    page.locator("#chart-choice circle").nth(3).wait_for()  # two reads of /metrics: a line per choice
    screenshot(page, "watch.png")


# ---- Learn ---------------------------------------------------------------------------------------------------
def test_learn_shows_the_labels_verdict_curve_and_how_to_retrain(
    page: Any, server: ServerThread, store_path: Path
) -> None:
    from playwright.sync_api import expect

    open_view(page, server, "learn")
    with FeedbackStore(store_path) as store:
        labels = store.stats().labels
    assert labels == len(HARD) + len(TRIVIA)
    expect(page.get_by_test_id("learn-labels")).to_have_text(str(labels))
    expect(page.get_by_test_id("learn-verdict")).to_contain_text("Partly:")
    expect(page.get_by_test_id("learn-verdict")).to_contain_text("length heuristic")
    rows = page.get_by_test_id("learn-rows").locator("tbody tr")
    expect(rows).to_have_count(3)  # the router as is, length, random (no k-fold row on the page)
    expect(rows.nth(0)).to_contain_text("(as is)")
    expect(page.get_by_test_id("curve")).to_have_count(3)
    expect(page.locator("#learn-notes")).to_contain_text(f"strong {STRONG} vs weak {WEAK}")
    retrain = page.get_by_test_id("retrain")
    expect(retrain).to_contain_text(f"routellm train --feedback {store_path.name} --init {ROUTER} --out my_router")
    screenshot(page, "learn.png")
    # a verdict given on the Try view becomes one more label
    open_view(page, server, "try")
    try_prompt(page, TRIVIA[4])
    page.click("button[data-verdict=bad]")  # a bad weak answer: the strong one should have answered
    expect(page.locator("#verdict-said")).to_contain_text("stored as label")
    with FeedbackStore(store_path) as store:
        assert store.stats().labels == labels + 1


# ---- another server: --log-prompts, no feedback store, no auth -----------------------------------------------
def test_log_prompts_shows_routing_texts_and_learn_explains_the_missing_store(
    browser: Any, mock: ServerThread, known_router: Any
) -> None:
    from playwright.sync_api import expect

    server = _start(mock, known_router, log_prompts=True)
    try:
        tab = browser.new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.goto(f"{server.url}/ui#try")
        try_prompt(tab, TRIVIA[5])
        tab.goto(f"{server.url}/ui#watch")
        expect(tab.get_by_test_id("recent").locator("tbody")).to_contain_text(TRIVIA[5])
        expect(tab.locator("#recent-note")).to_contain_text("--log-prompts")
        tab.goto(f"{server.url}/ui#learn")
        expect(tab.get_by_test_id("learn-off")).to_contain_text("--feedback PATH")
        expect(tab.get_by_test_id("auth-error")).to_be_hidden()
        tab.close()
    finally:
        server.stop()


# ---- another server: router-auto among named models (--model) ------------------------------------------------
#: The named models of test_server_ladder: profiled like far-apart real models (so P(answers well) grows from tiny
#: to big) and priced 0.1, 1 and 10 USD per million tokens; margin 1 picks the cheapest, margin 0 the best predicted.
NAMED = ("tiny", "mid", "big")
NAMED_PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
NAMED_PRIORS = {"tiny": "like:chatglm-6b", "mid": "like:Qwen2.5-32B-Instruct", "big": "like:o1-preview-2024-09-12"}
AUTO_PROMPT = "Prove that the square root of 2 is irrational."


@pytest.fixture(scope="module")
def auto_server(mock: ServerThread, known_router: Any) -> Iterator[ServerThread]:
    """No auth, the strong/weak pair and three named models routed by router-auto (server objective margin=0.05)."""
    server = _start(
        mock,
        known_router,
        models=tuple(f"{name}=openai:{name},base_url={mock.url}/v1" for name in NAMED),
        prices=NAMED_PRICES,
        priors=NAMED_PRIORS,
    )
    yield server
    server.stop()


@pytest.fixture()
def auto_page(browser: Any, auto_server: ServerThread) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.errors = []  # type: ignore[attr-defined]
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))  # type: ignore[attr-defined]
    yield tab
    assert not tab.errors, f"script errors on the page: {tab.errors}"  # type: ignore[attr-defined]
    context.close()


def usd(x: float) -> str:
    """The page's way of writing dollars (``usd`` in app.js)."""
    return f"${x:.6f}" if x < 0.01 else f"${x:.4f}"


def send_auto(page: Any) -> dict[str, Any]:
    """Submit the Try form and return the decision record the server answered (read from the response itself)."""
    with page.expect_response(lambda r: r.url.endswith("/v1/chat/completions")) as answered:
        page.click("button[type=submit]#submit")
    response = answered.value
    assert response.status == 200, response.text()
    record = response.json()["routellm"]
    page.locator(f"#decision[data-chosen='{record['ladder']['chosen']}']").wait_for()
    page.locator(f"[data-testid=decision-id]:text-is('{record['decision_id']}')").wait_for()
    return record


def test_info_offers_router_auto_only_with_named_models(server: ServerThread, auto_server: ServerThread) -> None:
    plain = httpx.get(f"{server.url}/ui/api/info", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert plain["auto"] is None
    auto = httpx.get(f"{auto_server.url}/ui/api/info").json()["auto"]
    assert [m["name"] for m in auto["models"]] == list(NAMED)
    assert {m["name"]: (m["input_usd_per_m"], m["output_usd_per_m"]) for m in auto["models"]} == NAMED_PRICES
    assert (auto["model"], auto["objective"], auto["objective_name"]) == (
        "router-auto",
        "margin=0.05",
        "router-auto-margin-0.05",
    )
    assert auto["name_kinds"]["max_cost"] == "max" and auto["default_window"] == 200


def test_a_server_without_named_models_keeps_the_pair_page(page: Any, server: ServerThread) -> None:
    from playwright.sync_api import expect

    open_view(page, server, "try")
    expect(page.get_by_test_id("route-pick")).to_be_hidden()
    expect(page.locator("#auto-controls")).to_be_hidden()
    expect(page.locator("#slider")).to_be_visible()
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}")
    expect(page.locator("#server-line")).not_to_contain_text("router-auto")


def test_router_auto_on_the_try_view_shows_the_chosen_model_and_the_predictions(
    auto_page: Any, auto_server: ServerThread
) -> None:
    from playwright.sync_api import expect

    page = auto_page
    open_view(page, auto_server, "try")
    expect(page.locator("#server-line")).to_contain_text("router-auto among tiny, mid, big (margin=0.05)")
    page.check("input[name=route][value=auto]")
    expect(page.locator("#slider")).to_be_hidden()
    expect(page.get_by_test_id("model-name")).to_have_text("router-auto")
    page.fill("textarea[name=prompt]", AUTO_PROMPT)
    expect(page.get_by_test_id("preview")).to_be_hidden()  # no preview: choosing would move a budget's controller

    page.select_option("#objective-kind", "margin")
    page.fill("#objective-value", "1")
    expect(page.get_by_test_id("model-name")).to_have_text("router-auto-margin-1")
    record = send_auto(page)
    ladder = record["ladder"]
    assert ladder["chosen"] == "tiny" and record["model"] == "tiny"  # within a margin of 1: the cheapest
    expect(page.get_by_test_id("chosen")).to_have_text("tiny")
    expect(page.get_by_test_id("served")).to_have_text("tiny")
    expect(page.get_by_test_id("answer")).to_have_text(f"[tiny] {AUTO_PROMPT}")
    expect(page.get_by_test_id("objective")).to_have_text("margin 1 (router-auto-margin-1)")
    expect(page.get_by_test_id("why")).to_contain_text("tiny is the cheapest expected model predicted within 1.000")
    expect(page.get_by_test_id("cost")).to_have_text(usd(record["cost"]))
    rows = page.get_by_test_id("ladder-row")
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("ladder-model")).to_have_text(list(NAMED))  # cheapest expected first
    shown = [float(t.rstrip("%")) / 100 for t in page.get_by_test_id("ladder-p").all_text_contents()]
    assert shown[0] < shown[1] < shown[2]  # the profiles: tiny < mid < big
    for i, name in enumerate(NAMED):
        assert shown[i] == pytest.approx(ladder["predictions"][name], abs=0.0005)
        expect(rows.nth(i).get_by_test_id("ladder-cost")).to_have_text(usd(ladder["expected_costs"][name]))
    expect(page.locator("#ladder tr.chosen")).to_have_attribute("data-model", "tiny")
    expect(rows.nth(0).get_by_test_id("ladder-role")).to_contain_text("chosen, answered")
    bar = rows.nth(2).get_by_test_id("ladder-bar")
    assert float(bar.get_attribute("width")) == pytest.approx(160 * ladder["predictions"]["big"], abs=0.01)
    expect(page.get_by_test_id("attempt")).to_have_count(1)
    expect(page.locator("#decision-bar svg")).to_have_count(0)  # no win-rate bar: no threshold chose

    page.fill("#objective-value", "0")  # no margin: the best predicted
    expect(page.get_by_test_id("model-name")).to_have_text("router-auto-margin-0")
    assert send_auto(page)["model"] == "big"
    expect(page.get_by_test_id("answer")).to_have_text(f"[big] {AUTO_PROMPT}")
    expect(page.locator("#ladder tr.chosen")).to_have_attribute("data-model", "big")

    page.fill("#objective-value", "2")  # the server's 400 is shown, naming the problem
    page.click("button[type=submit]#submit")
    expect(page.get_by_test_id("try-error")).to_contain_text("a margin is a difference of probabilities in [0, 1]")


def test_router_auto_budget_with_a_window_and_escalation_from_the_page(
    auto_page: Any, auto_server: ServerThread
) -> None:
    from playwright.sync_api import expect

    page = auto_page
    open_view(page, auto_server, "try")
    page.check("input[name=route][value=auto]")
    page.fill("textarea[name=prompt]", AUTO_PROMPT)
    page.select_option("#objective-kind", "budget")
    expect(page.locator("#objective-window")).to_have_value("200")
    page.fill("#objective-value", "1.5")
    page.fill("#objective-window", "500")
    expect(page.get_by_test_id("model-name")).to_have_text("router-auto-budget-1.5-w500")
    record = send_auto(page)
    ladder = record["ladder"]
    assert ladder["budget"] == 1.5
    expect(page.get_by_test_id("objective")).to_have_text(
        "budget $1.5000 per 1,000 requests (router-auto-budget-1.5-w500)"
    )
    expect(page.get_by_test_id("spend")).to_contain_text(f"{usd(ladder['spend'])} per 1,000 requests (target $1.5000)")
    expect(page.get_by_test_id("cost-weight")).to_have_text(f"{ladder['value']:.1f} quality points per USD")
    engines = auto_server.app.state.routellm.auto._engines
    held = [e for (objective, *_), e in engines.items() if objective.kind == "budget"]
    assert [(e.label, e.controller.window) for e in held] == [("budget=1.5,window=500", 500)]
    screenshot(page, "try-auto.png")

    page.select_option("#objective-kind", "margin")
    page.fill("#objective-value", "1")
    page.check("#cascade")
    expect(page.get_by_test_id("model-name")).to_have_text("router-auto-margin-1-cascade")
    send_auto(page)
    expect(page.get_by_test_id("escalated")).to_have_text("no")  # the mock's two tiny answers agree
    attempts = page.get_by_test_id("attempt")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("tiny (weak, answer) · kept")
    expect(attempts.nth(1)).to_contain_text("tiny (resampled) (weak, check) · not kept")
    page.check("#climb")  # rung by rung: tiny and mid answer together
    expect(page.get_by_test_id("model-name")).to_have_text("router-auto-margin-1-climb")
    record = send_auto(page)
    assert [a["model"] for a in record["attempts"]][:2] == ["tiny", "mid"]
    expect(page.get_by_test_id("served")).to_have_text(record["model"])
    expect(page.get_by_test_id("attempt")).to_have_count(len(record["attempts"]))
    page.uncheck("#climb")
    page.check("input[name=route][value=pair]")  # back to the pair: the slider and its preview return
    expect(page.get_by_test_id("model-name")).to_have_text(f"router-{ROUTER}-cascade")
    expect(page.get_by_test_id("preview")).to_be_visible()


def test_watch_lists_every_named_model_with_its_answers(auto_page: Any, auto_server: ServerThread) -> None:
    from playwright.sync_api import expect

    for model in ("router-auto-margin-1", "router-auto-margin-1", "router-auto-margin-0", f"router-{ROUTER}-0.0"):
        body = {"model": model, "messages": [{"role": "user", "content": AUTO_PROMPT}]}
        assert httpx.post(f"{auto_server.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
    after = httpx.get(f"{auto_server.url}/metrics").text
    open_view(auto_page, auto_server, "watch")
    rows = auto_page.get_by_test_id("model-row")
    expect(rows).to_have_count(5)  # the three named models, then the pair's two upstreams
    expect(auto_page.locator("#models tbody tr td:first-child")).to_have_text([*NAMED, STRONG, WEAK])
    for name in NAMED:
        answers = metric(after, "routellm_ladder_requests_total", model=name)
        row = auto_page.locator(f"[data-testid=model-row][data-model={name}]")
        expect(row.get_by_test_id("model-answers")).to_have_text(f"{answers:.0f}")
        cost = metric(after, "routellm_cost_usd_total", model=name)
        expect(row.get_by_test_id("model-cost")).to_have_text(usd(cost))
    assert metric(after, "routellm_ladder_requests_total", model="tiny") >= 2
    strong = auto_page.locator(f"[data-testid=model-row][data-model={STRONG}]")
    expect(strong).to_contain_text("strong")
    assert f'model="{STRONG}"' not in after  # the pair's mock upstreams have no price: no cost series
    expect(strong.get_by_test_id("model-cost")).to_have_text("n/a")
    expect(auto_page.locator("#chart-model-title")).to_have_text("router-auto answers by model")


def test_recent_decisions_name_the_chosen_model_and_who_answered(auto_page: Any, auto_server: ServerThread) -> None:
    from playwright.sync_api import expect

    body = {"model": "router-auto-margin-1-climb", "messages": [{"role": "user", "content": AUTO_PROMPT}]}
    answered = httpx.post(f"{auto_server.url}/v1/chat/completions", json=body, timeout=30)
    assert answered.status_code == 200
    record = answered.json()["routellm"]
    # the mock echoes "[<model>] <prompt>": compared as numbers (the prompt's one number, 2) tiny's and mid's
    # answers agree, so the upper of that pair serves
    assert (record["model"], record["escalated"]) == ("mid", True)
    failing = {
        "model": "router-auto-margin-1",
        "messages": [{"role": "user", "content": f"{AUTO_PROMPT} [status:500]"}],
    }
    failed = httpx.post(f"{auto_server.url}/v1/chat/completions", json=failing, timeout=30)
    assert failed.status_code >= 500  # every model failed: routed, never answered
    recent = httpx.get(f"{auto_server.url}/ui/api/recent", timeout=30).json()["decisions"]
    mine = next(d for d in recent if d["decision_id"] == record["decision_id"])
    assert mine["model"] == record["ladder"]["chosen"] == "tiny"  # margin 1: the cheapest
    assert (mine["served_model"], mine["escalated"], mine["fallback"]) == (record["model"], record["escalated"], False)
    assert mine["cost"] == pytest.approx(record["cost"])
    assert recent[0]["model"] == "tiny" and "served_model" not in recent[0]
    open_view(auto_page, auto_server, "watch")
    rows = auto_page.get_by_test_id("recent").locator("tbody tr")
    expect(rows.nth(0)).to_contain_text("not answered here")
    expect(rows.nth(1)).to_contain_text(f"tinymid (escalated){usd(record['cost'])}")


# ---- `routellm ui` -------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_routellm_ui_serves_the_default_router_offline_on_loopback() -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "ROUTELLM_SERVER_API_KEYS"}
    env["ROUTELLM_SERVER_API_KEYS"] = "a-token-the-ui-command-ignores"  # no auth on loopback, whatever is set
    command = [sys.executable, "-m", "routellm_core.cli", "ui", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "routellm ui did not start within 90 s"
            time.sleep(0.2)
        assert httpx.get(f"{url}/ui").status_code == 200
        info = httpx.get(f"{url}/ui/api/info").json()
        assert info["upstreams"] == {"strong": "demo-strong", "weak": "demo-weak"}
        assert [r["name"] for r in info["routers"]] == ["default"] and info["auth"] is False
        for threshold, model in (("0.0", "demo-strong"), ("1.0", "demo-weak")):
            body = {"model": f"router-default-{threshold}", "messages": [{"role": "user", "content": "Hello there!"}]}
            response = httpx.post(f"{url}/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["routellm"]["model"] == model
            assert answer["choices"][0]["message"]["content"].startswith(f"[{model}] ")
    finally:
        process.terminate()
        process.wait(timeout=30)
    refused = subprocess.run(
        [sys.executable, "-m", "routellm_core.cli", "ui", "--host", "0.0.0.0"], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2 and "loopback" in refused.stderr
