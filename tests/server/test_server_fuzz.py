"""The server's OpenAPI schema, and the server fuzzed from it with ``schemathesis``.

The real server (uvicorn on 127.0.0.1, the shipped ``fast`` router, a SQLite feedback store, auth on) in front of
the mock upstream. ``/openapi.json`` is loaded the way an API tool loads it (over HTTP, no token), then every
operation is fuzzed with schema-valid (positive) and schema-violating (negative) requests, a bounded, seeded number
of each (Hypothesis ``derandomize``): with the token, no answer is a 5xx and every answer conforms to the schema
(status, content type, body, headers); without it, every route that needs auth answers 401.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from routellm_core import load_router
from routellm_core.decisions import ServedDecision
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import OpenAIUpstream, ServerThread, create_app

TOKEN = "fuzz-token-4e1d"
#: Generated requests per operation, per generation mode, per auth setting.
MAX_EXAMPLES = 40
#: The operations whose answers this module checks against the schema; every operation but /health needs the token.
OPERATIONS = {
    "POST /v1/chat/completions",
    "POST /v1/responses",
    "POST /v1/feedback",
    "GET /v1/models",
    "GET /v1/models/{model}",
    "GET /health",
    "GET /metrics",
}
PUBLIC = {"GET /health"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def server(mock: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    app = create_app(
        strong=OpenAIUpstream("mock-strong", base_url=f"{mock.url}/v1", api_key="k", timeout=10),
        weak=OpenAIUpstream("mock-weak", base_url=f"{mock.url}/v1", api_key="k", timeout=10),
        policies={"fast": RoutingPolicy(load_router("fast"))},
        api_keys=(TOKEN,),
        api_keys_env=None,
        feedback=str(tmp_path_factory.mktemp("fuzz") / "feedback.sqlite"),
        max_messages=16,
    )
    with ServerThread(app) as running:
        yield running


@pytest.fixture(scope="module")
def schema(server: ServerThread) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.fixture(scope="module")
def tally() -> Iterator[Counter[str]]:
    """Counts of the fuzz run (printed at the end of the module: ``pytest -s`` shows them)."""
    counts: Counter[str] = Counter()
    yield counts
    print(f"\nfuzz run: {dict(sorted(counts.items()))}")


def _label(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


# ---- the schema ------------------------------------------------------------------------------------------------
def test_the_schema_is_public_and_describes_every_route(server: ServerThread) -> None:
    response = httpx.get(f"{server.url}/openapi.json")  # no token: an API tool reads it first
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    found = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    assert found >= OPERATIONS
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            assert ("security" in operation) == (label not in PUBLIC), label
            if label not in PUBLIC:
                assert operation["security"] == [{"bearerAuth": []}] and "401" in operation["responses"], label
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletionRequest")
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    schemas = document["components"]["schemas"]
    assert schemas["ChatCompletionRequest"]["required"] == ["model", "messages"]
    assert schemas["ChatCompletionRequest"]["properties"]["messages"]["maxItems"] == 16
    assert set(schemas["FeedbackRequest"]["required"]) == {"decision_id", "verdict"}


def test_the_decision_record_schema_is_the_record_every_integration_sends() -> None:
    from routellm_core.server.openapi import DecisionRecord

    record = ServedDecision("a" * 32, "fast", 0.4, 0.5, "weak", "weak", "mock-weak").as_dict()
    assert set(DecisionRecord.model_fields) == set(record)
    DecisionRecord.model_validate(record)


def test_a_real_answer_validates_against_the_schema(server: ServerThread, schema: Any) -> None:
    body = {"model": "router-fast-0.0", "messages": [{"role": "user", "content": "hello"}]}
    operation = schema["/v1/chat/completions"]["POST"]
    case = operation.Case(body=body, media_type="application/json")
    response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    case.validate_response(response, checks=CHECKS)


# ---- the fuzz run ----------------------------------------------------------------------------------------------
def _fuzz(schema: Any, server: ServerThread, tally: Counter[str], mode: GenerationMode, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {_label(op) for op in operations} >= OPERATIONS
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not any(map(len, (operation.body, operation.headers, operation.query))):
            continue  # nothing in it to break (GET /health without auth)
        _fuzz_operation(operation, server, tally, mode, token, headers)


def _fuzz_operation(
    operation: Any, server: ServerThread, tally: Counter[str], mode: GenerationMode, token: str | None, headers: dict
) -> None:
    label = _label(operation)
    tally["operations"] += 1

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, headers=headers, timeout=30)
        tally["requests"] += 1
        tally[f"requests ({mode.value}, {'token' if token == TOKEN else 'no valid token'})"] += 1
        tally[f"status {response.status_code // 100}xx"] += 1
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
        if token != TOKEN and label not in PUBLIC:
            assert response.status_code == 401, f"{label} answered {response.status_code} to token {token}"
            assert response.json()["error"]["code"] == "invalid_api_key"
            tally["401 without a valid token"] += 1
        elif token == TOKEN and label in OPERATIONS:  # other routes (the web page's) document no errors yet
            case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except BaseException:
        tally["failures"] += 1
        raise


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_with_the_token_no_5xx_and_answers_match_the_schema(
    schema: Any, server: ServerThread, tally: Counter[str], mode: GenerationMode
) -> None:
    _fuzz(schema, server, tally, mode, TOKEN)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_without_the_token_every_secured_route_answers_401(
    schema: Any, server: ServerThread, tally: Counter[str], mode: GenerationMode
) -> None:
    _fuzz(schema, server, tally, mode, None)
    _fuzz(schema, server, tally, mode, "wrong-token")


# ---- what the generator does not make ---------------------------------------------------------------------------
def test_nan_and_infinity_are_a_400_not_an_upstream_error(server: ServerThread) -> None:
    """Python's JSON reader takes ``NaN`` and ``Infinity``; JSON does not: ``"temperature": NaN`` reached the
    upstream client, which failed, and was answered 502 ``upstream_error`` (counted as the upstream's fault)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    chat = b'{"model": "router-fast-0.0", "messages": [{"role": "user", "content": "hi"}], "temperature": %s}'
    for path, body in (
        ("/v1/chat/completions", chat % b"NaN"),
        ("/v1/chat/completions", chat % b"-Infinity"),
        ("/v1/chat/completions", chat % b"1e999"),  # read as a float, infinite
        ("/v1/feedback", b'{"decision_id": "abc", "verdict": "good", "score": Infinity}'),
        ("/ui/api/score", b'{"prompt": "hi", "threshold": NaN}'),
    ):
        response = httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=30)
        assert response.status_code == 400, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_json" and "is no JSON number" in error["message"], error
    assert httpx.post(f"{server.url}/v1/chat/completions", content=chat % b"0.5", headers=headers).status_code == 200


def test_an_unpaired_surrogate_escape_is_a_400_not_a_5xx(server: ServerThread) -> None:
    """``"\\ud800"`` is valid JSON grammar but no text: it once reached the upstream client (502) and the feedback
    store (500). A paired escape (an emoji) is text and is served."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    chat = b'{"model": "router-fast-0.0", "messages": [{"role": "user", "content": "%s hi"}]}'
    for path, body in (
        ("/v1/chat/completions", chat % b"\\ud800"),
        ("/v1/chat/completions", chat % b"\\uDFFF"),
        ("/v1/feedback", b'{"decision_id": "\\ud83d", "verdict": "good"}'),
        ("/v1/feedback", b'{"decision_id": "abc", "verdict": "\\udc00"}'),
    ):
        response = httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=30)
        assert response.status_code == 400, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_json" and "unpaired UTF-16 surrogate" in error["message"]
    response = httpx.post(f"{server.url}/v1/chat/completions", content=chat % b"\\ud83d\\ude00", headers=headers)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "[mock-strong] \U0001f600 hi"
