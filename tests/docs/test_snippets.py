"""The snippets in README.md and docs/*.md run, and print what the docs say they print.

Convention (docs/contributing-docs.md): a fenced ```python block preceded by the line ``<!-- test -->`` is run, in
a fresh namespace, with the working directory in a temporary folder. A statement whose line ends with
``# -> EXPECTED`` (continued on following comment lines that start with ``#   ``) is an expression: its ``repr``
must match EXPECTED, where ``...`` matches anything and each number matches the value rounded to the decimals
shown. A python block that shows output (``# ->``) but is not marked ``<!-- test -->`` fails the suite, so no
shown output goes unchecked. Blocks marked ``<!-- no-test -->`` are sketches (placeholders such as ``my_prompts``).

Chat models named as ``"openai:gpt-4o"`` / ``OpenAI(model=...)`` reach a local OpenAI-compatible echo endpoint
(``routellm_core.server.mock_upstream``, answering ``"[<model>] <prompt>"``) through ``OPENAI_BASE_URL``: the
snippets run unmodified, offline, with the real ``openai``, LangChain and LlamaIndex clients. The router is the
real shipped one.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!--\s*(test|no-test)\s*-->\s*$")
NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"


@dataclass(frozen=True)
class Snippet:
    """One fenced block of a page."""

    page: str
    line: int
    lang: str
    mark: str | None
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def snippets(path: Path) -> Iterator[Snippet]:
    """The fenced blocks of a Markdown page, with the marker line right above each (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARK.match(above.strip())
        yield Snippet(
            str(path.relative_to(ROOT)),
            start + 1,
            match[1],
            marker[1] if marker else None,
            "\n".join(lines[start + 1 : end]),
        )
        i = end + 1


ALL = [s for page in PAGES for s in snippets(page)]
TESTED = [s for s in ALL if s.lang == "python" and s.mark == "test"]


def expectations(code: str) -> dict[int, str]:
    """``{line number (1-based): expected text}`` of the ``# ->`` comments, continuation lines joined."""
    lines = code.splitlines()
    out: dict[int, str] = {}
    for n, line in enumerate(lines):
        if "# -> " not in line:
            continue
        text = line.split("# -> ", 1)[1].strip()
        for more in lines[n + 1 :]:
            if not re.match(r"^\s*#\s{2,}\S", more):
                break
            text += " " + more.strip().lstrip("#").strip()
        out[n + 1] = text
    return out


def matches(expected: str, actual: str) -> bool:
    """``actual`` fits ``expected``: ``...`` (or ``…``) matches anything, numbers match rounded to the shown
    decimals (integers exactly), whitespace runs are equivalent."""
    pattern, numbers = "", []
    for token in re.split(rf"(\.\.\.|…|{NUMBER}|\s+)", expected.replace("…", "...")):
        if not token:
            continue
        if token == "...":
            pattern += ".*?"
        elif re.fullmatch(NUMBER, token):
            pattern += f"({NUMBER})"
            numbers.append(token)
        elif token.isspace():
            pattern += r"\s*"
        else:
            pattern += re.escape(token)
    found = re.fullmatch(pattern, actual.strip(), re.DOTALL)
    if not found:
        return False
    for shown, got in zip(numbers, found.groups()):
        decimals = len(shown.split(".")[1]) if "." in shown and "e" not in shown else None
        if decimals is None:
            if not math.isclose(float(shown), float(got), rel_tol=1e-9):
                return False
        elif round(float(got), decimals) != float(shown):
            return False
    return True


def run(snippet: Snippet) -> list[str]:
    """Run a block statement by statement; the mismatches between shown and real values."""
    tree = ast.parse(snippet.code, filename=snippet.id)
    wanted = expectations(snippet.code)
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    problems = []
    for node in tree.body:
        expected = wanted.get(node.end_lineno or node.lineno)
        if expected is None:
            exec(compile(ast.Module([node], []), snippet.id, "exec"), namespace)
            continue
        assert isinstance(node, ast.Expr), f"{snippet.id}+{node.lineno}: '# ->' needs an expression"
        value = eval(compile(ast.Expression(node.value), snippet.id, "eval"), namespace)
        if not matches(expected, repr(value)):
            problems.append(f"line {node.lineno}: docs show {expected}\n    but it is {value!r}")
    assert not set(wanted) - {n.end_lineno for n in tree.body}, f"{snippet.id}: '# ->' inside a statement"
    return problems


@pytest.fixture(scope="module")
def openai_stand_in() -> Iterator[str]:
    """The local OpenAI-compatible echo endpoint the snippets' OpenAI models reach."""
    from routellm_core.server import ServerThread
    from routellm_core.server.mock_upstream import create_mock_upstream

    with ServerThread(create_mock_upstream()) as server:
        yield f"{server.url}/v1"


@pytest.mark.parametrize("snippet", TESTED, ids=[s.id for s in TESTED])
def test_snippet_runs_and_prints_what_the_docs_show(
    snippet: Snippet, openai_stand_in: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.setenv(name, openai_stand_in)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-offline-stand-in")
    problems = run(snippet)
    assert not problems, f"{snippet.id}:\n" + "\n".join(problems)


def test_every_block_that_shows_output_is_tested() -> None:
    """A python block with ``# ->`` must be marked ``<!-- test -->``; markers sit only above python blocks."""
    untested = [s.id for s in ALL if s.lang == "python" and "# -> " in s.code and s.mark != "test"]
    assert not untested, f"blocks show output but are not run: {untested} (mark them <!-- test -->)"
    assert len(TESTED) >= 5, "the snippet test found almost nothing to run: is the marker convention intact?"


def test_the_matcher_refuses_stale_output() -> None:
    """What the issue found: the primes prompt shown as mf / 0.71 / strong; a split shown where there is none."""
    shown = "{'router': 'mf', 'win_rate': 0.71, ..., 'choice': 'strong', ...}"
    real = "{'decision_id': 'ab', 'router': 'difficulty', 'win_rate': 0.5381, 'threshold': 0.5, 'choice': 'weak'}"
    assert not matches(shown, real)
    assert matches("{'router': 'difficulty', 'win_rate': 0.538, ...}", real.replace("'decision_id': 'ab', ", ""))
    assert not matches("['strong', 'weak']", "['weak', 'weak']")
    assert matches("0.25", "0.25000001") and not matches("0.25", "0.26")
    assert matches("{'decision_id': '9f1c…', 'router': 'difficulty', ...}", real.replace("'ab'", "'9f1c0e'"))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_between_pages_resolve(page: Path) -> None:
    """Relative links in README.md and docs/ point at files that exist (and at headings that exist)."""
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name}: link to missing {target}"
        if anchor and path.suffix == ".md":
            assert anchor in {slug(h) for h in headings(path)}, f"{page.name}: link to missing heading {target}"


def headings(path: Path) -> list[str]:
    """The Markdown headings of a page, outside fenced blocks."""
    out, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.append(line.lstrip("#").strip())
    return out


def slug(heading: str) -> str:
    """GitHub's (and mkdocs' toc with ``slugify: github``-like) anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


# ---- the server's curl examples -------------------------------------------------------------------------------
SERVER_PAGE = ROOT / "docs" / "server.md"
#: Values that differ on every request (shown as examples): checked for presence only.
PER_REQUEST = {"decision-id", "worker", "decision_id", "label_id"}


def _curl_blocks(endpoint: str) -> list[Snippet]:
    return [s for s in snippets(SERVER_PAGE) if s.lang == "bash" and f"6060/v1/{endpoint}" in s.code and "# " in s.code]


def _shown(snippet: Snippet) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The request body (``-d '...'``), the ``x-routellm-*`` headers and the record fields a curl block shows."""
    import json

    body = json.loads(re.search(r"-d '(\{.*?\})'", snippet.code, re.DOTALL)[1])
    output = "\n".join(line[1:] for line in snippet.code.splitlines() if line.startswith("#"))
    headers = dict(re.findall(r"x-routellm-([\w-]+): (\S+)", output))
    record_text = output.split('"routellm": ', 1)[1] if '"routellm": ' in output else output
    record = dict(re.findall(r'"(\w+)": ("[^"]*"|-?[\d.]+|true|false|null)', record_text))
    return body, headers, record


def _check_shown(shown: dict[str, str], real: dict[str, Any], what: str) -> list[str]:
    import json

    problems = []
    for key, text in shown.items():
        if key not in real:
            problems.append(f"{what} {key!r} is shown but not sent")
        elif key in PER_REQUEST:
            continue
        else:
            value = real[key] if isinstance(real[key], str) else json.dumps(real[key])
            if not matches(text.strip('"').replace("...", "…"), value):
                problems.append(f"{what} {key}: docs show {text}, the server sends {value}")
    return problems


@pytest.fixture(scope="module")
def docs_server(openai_stand_in: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``routellm serve --strong openai:gpt-4o --weak openai:gpt-4o-mini --router default --feedback ...`` in front of
    the stand-in."""
    from routellm_core.server import OpenAIUpstream, ServerThread, create_app

    app = create_app(
        strong=OpenAIUpstream("gpt-4o", base_url=openai_stand_in, api_key="unused"),
        weak=OpenAIUpstream("gpt-4o-mini", base_url=openai_stand_in, api_key="unused"),
        routers=("default",),
        feedback=str(tmp_path_factory.mktemp("feedback") / "traffic.sqlite"),
        api_keys_env=None,
    )
    with ServerThread(app) as server:
        yield server.url


def test_server_curl_example_shows_what_the_server_answers(docs_server: str) -> None:
    import httpx

    (block,) = _curl_blocks("chat/completions")
    body, headers, record = _shown(block)
    assert headers and record, "the curl example shows no headers or record"
    reply = httpx.post(f"{docs_server}/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 200 and "HTTP/1.1 200 OK" in block.code
    real_headers = {k.removeprefix("x-routellm-"): v for k, v in reply.headers.items() if k.startswith("x-routellm-")}
    problems = _check_shown(headers, real_headers, "header")
    problems += _check_shown(record, reply.json()["routellm"], "record field")
    assert not problems, "\n".join(problems)


def test_server_feedback_curl_example_shows_what_the_server_answers(docs_server: str) -> None:
    import httpx

    (block,) = _curl_blocks("feedback")
    body, _, shown = _shown(block)
    chat = httpx.post(
        f"{docs_server}/v1/chat/completions",
        json={"model": "router-default", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    body["decision_id"] = chat.json()["routellm"]["decision_id"]
    reply = httpx.post(f"{docs_server}/v1/feedback", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    assert isinstance(reply.json()["label_id"], int) and reply.json()["decision_id"] == body["decision_id"]
    problems = _check_shown(shown, reply.json(), "field")
    assert not problems, "\n".join(problems)
