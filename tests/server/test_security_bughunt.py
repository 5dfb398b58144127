"""Attacks on ``routellm serve`` from the network and from web pages, each pinned by a test that failed before its
fix (or, for the page's escaping, that guards what already held).

The real server (uvicorn in a thread) with the shipped ``fast`` router in front of the local mock upstream (which
echoes ``[<model>] <prompt>``), real Chromium (Debian's, as ``tests/server/test_ui.py`` drives it) for what a web
page can do, and a real LangChain ``ChatOpenAI`` for the LangChain upstream. Thresholds 0.0 and 1.0 in the model
name route strong and weak, so every outcome is known in advance.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import openai
import pytest

from routellm_core.learning.feedback import FeedbackStore
from routellm_core.server import ChatModelUpstream, OpenAIUpstream, ServerThread
from routellm_core.server.origin import browser_refusal

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WAIT_MS = 15_000
PROMPT = "Name the capital of France in one word please"
WEAK_CHAT = {"model": "router-fast-1.0", "messages": [{"role": "user", "content": PROMPT}]}
EVIL = "http://evil.example"


def _post(server: ServerThread, path: str, body: Any, **headers: str) -> httpx.Response:
    """A POST as a page's ``fetch`` sends one without a preflight: a ``text/plain`` body."""
    return httpx.post(
        f"{server.url}{path}", content=json.dumps(body), headers={"Content-Type": "text/plain", **headers}, timeout=30
    )


def _decision(server: ServerThread) -> str:
    """Route one request as an ordinary client (no browser headers); its decision id."""
    answer = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0).chat.completions.create(
        **WEAK_CHAT
    )
    return str(answer.model_extra["routellm"]["decision_id"])


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    return tmp_path / "feedback.sqlite"


def _verdict(store: Path, decision_id: str) -> str | None:
    with FeedbackStore(str(store)) as opened:
        row = opened.decision(decision_id)
    assert row is not None
    return row.verdict


# ---- CSRF: without auth, another site's page posts to the server ----------------------------------------------
def test_without_auth_another_sites_page_cannot_route_or_write_verdicts(
    serve: Callable[..., ServerThread], store: Path
) -> None:
    server = serve(feedback=str(store))
    decision_id = _decision(server)
    before = httpx.get(f"{server.url}/metrics").text

    routed = _post(server, "/v1/chat/completions", WEAK_CHAT, Origin=EVIL)
    verdict = _post(server, "/v1/feedback", {"decision_id": decision_id, "verdict": "bad"}, Origin=EVIL)
    scored = _post(server, "/ui/api/score", {"prompt": PROMPT}, Origin=EVIL)
    sandboxed = _post(server, "/v1/feedback", {"decision_id": decision_id, "verdict": "bad"}, Origin="null")
    no_origin = _post(
        server, "/v1/feedback", {"decision_id": decision_id, "verdict": "bad"}, **{"Sec-Fetch-Site": "cross-site"}
    )

    for response in (routed, verdict, scored, sandboxed, no_origin):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "cross_origin_request"
    assert "bearer tokens" in routed.json()["error"]["message"]
    assert _verdict(store, decision_id) is None  # nothing written
    calls = 'routellm_upstream_calls_total{outcome="ok",side="weak"}'
    assert [line for line in before.splitlines() if line.startswith(calls)] == [
        line for line in httpx.get(f"{server.url}/metrics").text.splitlines() if line.startswith(calls)
    ]  # no model called for the page


def test_without_auth_the_servers_own_page_and_plain_clients_still_work(
    serve: Callable[..., ServerThread], store: Path
) -> None:
    server = serve(feedback=str(store))
    decision_id = _decision(server)  # the openai SDK: no Origin
    own = server.url  # the page at /ui sends its own origin
    assert _post(server, "/v1/chat/completions", WEAK_CHAT, Origin=own).status_code == 200
    assert _post(server, "/ui/api/score", {"prompt": PROMPT}, Origin=own).status_code == 200
    answered = _post(server, "/v1/feedback", {"decision_id": decision_id, "verdict": "bad"}, Origin=own)
    assert answered.status_code == 200, answered.text
    assert _verdict(store, decision_id) == "bad"
    localhost = server.url.replace("127.0.0.1", "localhost")
    assert _post(server, "/ui/api/score", {"prompt": PROMPT}, Origin=localhost, Host=localhost[7:]).status_code == 200


def test_with_auth_on_origins_are_not_checked(serve: Callable[..., ServerThread]) -> None:
    """A page cannot send the bearer token cross-site, so with auth on an Origin changes nothing (a proxy that
    rewrites Host keeps working)."""
    token = "security-token-8f3a1c2d9e"
    server = serve(api_keys=(token,))
    refused = _post(server, "/v1/chat/completions", WEAK_CHAT, Origin=EVIL)
    assert refused.status_code == 401
    allowed = _post(server, "/v1/chat/completions", WEAK_CHAT, Origin=EVIL, Authorization=f"Bearer {token}")
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["x-routellm-choice"] == "weak"


# ---- DNS rebinding: a page whose host name resolves to 127.0.0.1 ---------------------------------------------
#: What a browser adds to a page's same-origin fetch (Chromium, Firefox and Safari send it).
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def test_without_auth_a_loopback_server_refuses_rebindable_host_names(serve: Callable[..., ServerThread]) -> None:
    server = serve(log_prompts=True)
    _decision(server)
    port = server.url.rsplit(":", 1)[1]
    for path in ("/ui/api/recent", "/metrics", "/v1/models"):
        rebound = httpx.get(f"{server.url}{path}", headers={"Host": f"evil.example:{port}", **SAME_ORIGIN})
        assert rebound.status_code == 403, (path, rebound.text)
        assert rebound.json()["error"]["code"] == "host_not_allowed"
        assert PROMPT not in rebound.text
    routed = _post(
        server, "/v1/chat/completions", WEAK_CHAT, Host=f"evil.example:{port}", Origin=f"http://evil.example:{port}"
    )
    assert routed.status_code == 403
    assert "--allowed-host" in routed.json()["error"]["message"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"app.localhost:{port}"):
        assert httpx.get(f"{server.url}/ui/api/recent", headers={"Host": host, **SAME_ORIGIN}).status_code == 200
    # a page's plain-HTTP fetch carries no browser mark (no Sec-Fetch-* outside secure contexts): the name decides
    assert httpx.get(f"{server.url}/ui/api/recent", headers={"Host": f"evil.example:{port}"}).status_code == 403


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("rebind.evil.example:8000", True),
        ("router:8000", True),  # a LAN or container name: --allowed-host allows it
        ("192.0.2.2:8000", False),
        ("[::1]:8000", False),
        ("localhost.:8000", False),
        ("app.localhost.", False),
    ],
)
def test_without_auth_every_connection_refuses_rebindable_host_names(host: str, refused: bool) -> None:
    """The host check held on loopback connections only: a ``--no-auth`` server on a LAN address, or in a container
    whose published port is bound to the host's loopback (the container sees its bridge address), answered a page
    under a rebound name (a review's case). The check reads the Host alone; a final dot is the same name."""
    answer = browser_refusal({"host": host})
    assert (answer is not None and answer[0] == "host_not_allowed") is refused
    assert browser_refusal({"host": "router:8000"}, allowed_hosts=("router",)) is None


def test_a_name_the_operator_allows_reaches_a_server_without_auth(serve: Callable[..., ServerThread]) -> None:
    server = serve(allowed_hosts=("Router.Example",))
    port = server.url.rsplit(":", 1)[1]
    behind_proxy = {"Host": f"router.example:{port}", "Origin": f"https://router.example:{port}"}
    assert _post(server, "/ui/api/score", {"prompt": PROMPT}, **behind_proxy).status_code == 200
    assert httpx.get(f"{server.url}/v1/models", headers={"Host": f"router.example:{port}"}).status_code == 200
    rewritten = {"Origin": "https://router.example"}  # a proxy that sets Host to the address it forwards to
    assert _post(server, "/ui/api/score", {"prompt": PROMPT}, **rewritten).status_code == 200
    other = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    assert _post(server, "/ui/api/score", {"prompt": PROMPT}, **other).status_code == 403


# ---- the same two attacks in a real browser --------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # evil.test resolves to 127.0.0.1, as a rebinding DNS server makes an attacker's name do
            args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"],
        )
        yield browser
        browser.close()


class _AttackerPage(BaseHTTPRequestHandler):
    """Another site (another port of 127.0.0.1): a page that posts a verdict to the server the query names."""

    def do_GET(self) -> None:
        page = b"<!doctype html><title>cats</title><p>cute cats</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def attacker() -> Iterator[str]:
    site = HTTPServer(("127.0.0.1", 0), _AttackerPage)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_port}"
    site.shutdown()
    site.server_close()


def test_a_page_on_another_site_cannot_write_a_verdict_from_a_real_browser(
    chromium: Any, serve: Callable[..., ServerThread], store: Path, attacker: str
) -> None:
    server = serve(feedback=str(store))
    decision_id = _decision(server)
    tab = chromium.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{attacker}/")
    sent = tab.evaluate(
        """async ([url, id]) => {
            // no-cors + text/plain: a "simple" request, sent without a preflight; the page cannot read the answer
            await fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                              body: JSON.stringify({decision_id: id, verdict: "bad"})});
            return true;
        }""",
        [f"{server.url}/v1/feedback", decision_id],
    )
    tab.close()
    assert sent
    assert _verdict(store, decision_id) is None


def test_a_rebound_host_name_cannot_read_the_servers_api_from_a_real_browser(
    chromium: Any, serve: Callable[..., ServerThread]
) -> None:
    server = serve(log_prompts=True)
    _decision(server)
    port = server.url.rsplit(":", 1)[1]
    tab = chromium.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"http://evil.test:{port}/health")  # the attacker's name, now resolving to the server
    read = tab.evaluate("async () => { const r = await fetch('/ui/api/recent'); return [r.status, await r.text()]; }")
    tab.close()
    assert read[0] == 403, read
    assert PROMPT not in read[1]


def test_prompts_shown_on_the_page_stay_text(chromium: Any, serve: Callable[..., ServerThread]) -> None:
    """Stored XSS through the Watch view: a client's prompt (shown under --log-prompts) and the answer echoing it
    are drawn as text on the operator's page; no script of theirs runs and no element of theirs appears."""
    server = serve(log_prompts=True)
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0).chat.completions.create(
        model="router-fast-1.0", messages=[{"role": "user", "content": f"{PROMPT} {payload}"}]
    )
    tab = chromium.new_page()
    tab.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(f"{server.url}/ui#watch")
    recent = tab.get_by_test_id("recent").locator("tbody")
    recent.get_by_text(payload, exact=False).first.wait_for()
    assert recent.locator("img, script").count() == 0
    assert tab.evaluate("() => window.__pwned") is None
    tab.close()
    assert not errors


# ---- a LangChain upstream: request fields that would set the server's own call's headers --------------------
class _Capture(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers one fixed completion and keeps each request's headers and path."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "captured",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_cannot_set_headers_of_a_langchain_upstreams_call(
    serve: Callable[..., ServerThread], stream: bool
) -> None:
    from langchain_openai import ChatOpenAI

    endpoint = HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    _Capture.seen = []
    try:
        key = "sk-operator-key-0123456789abcdef"
        weak = ChatModelUpstream(
            ChatOpenAI(model="gpt-x", base_url=f"http://127.0.0.1:{endpoint.server_port}/v1", api_key=key),
            name="lc-weak",
        )
        server = serve(weak=weak)
        smuggled = {
            **WEAK_CHAT,
            "stream": stream,
            "extra_headers": {"OpenAI-Organization": "org-attacker", "Authorization": "Bearer sk-attacker"},
            "extra_query": {"api-version": "attacker"},
        }
        answer = httpx.post(f"{server.url}/v1/chat/completions", json=smuggled, timeout=30)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "unsupported_parameter"
        assert "extra_headers, extra_query" in error["message"]
        assert key not in answer.text
        assert all(h.get("openai-organization") != "org-attacker" for _, h in _Capture.seen)
        assert all("attacker" not in path for path, _ in _Capture.seen)
        plain = httpx.post(f"{server.url}/v1/chat/completions", json=WEAK_CHAT, timeout=30)  # still answers
        assert plain.status_code == 200, plain.text
        assert _Capture.seen and _Capture.seen[-1][1]["authorization"] == f"Bearer {key}"
    finally:
        endpoint.shutdown()
        endpoint.server_close()


def test_an_openai_upstream_sends_such_fields_as_json_only(serve: Callable[..., ServerThread]) -> None:
    """The OpenAI-compatible upstream posts the body as JSON: an ``extra_headers`` field is a body field there (the
    upstream refuses or ignores it), never a header of the call; the mock ignores it and answers."""
    endpoint = HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    _Capture.seen = []
    try:
        weak = OpenAIUpstream("gpt-x", base_url=f"http://127.0.0.1:{endpoint.server_port}/v1", api_key="k" * 20)
        server = serve(weak=weak)
        body = {**WEAK_CHAT, "extra_headers": {"OpenAI-Organization": "org-attacker"}}
        assert httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        assert _Capture.seen and all(h.get("openai-organization") != "org-attacker" for _, h in _Capture.seen)
    finally:
        endpoint.shutdown()
        endpoint.server_close()


def test_allowed_hosts_come_from_the_command_line_as_bare_names() -> None:
    import argparse

    from routellm_core.errors import InvalidInputError
    from routellm_core.server.cli import add_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--router=fast", "--no-auth", "--strong=openai:a", "--weak=openai:b"]
    given = [*base, "--allowed-host", "Router.Example", "--allowed-host", "b.example"]
    assert settings_from_args(parser.parse_args(given)).allowed_hosts == ("router.example", "b.example")
    with pytest.raises(InvalidInputError, match="without a port or scheme"):
        settings_from_args(parser.parse_args([*base, "--allowed-host", "router.example:443"]))
