"""The mechanical claims of README.md and docs/*.md stay true: what a reader copies or clicks exists in the code.

- Relative links and their anchors resolve (README, docs/, BENCHMARKS.md), GitHub's heading slugs included.
- Every ``routellm ...`` command in a shell block parses with the real ``routellm`` parser (flags, choices, types,
  required arguments); every flag of an inline ``routellm <sub> ...`` span, and every bare backticked ``--flag``, is an
  option of that parser (flags of ``python -m bench``, ``scripts/`` or pip sit in paragraphs that name them).
- The decision record's documented keys (docs/decision-record.md: the table, the attempts' and the ladder's keys)
  are exactly those of real records: LangChain and LlamaIndex calls with the shipped ``default`` router and fake
  children, and the feedback store's copy.
- The ``/metrics`` families server.md names, with their labels, are the server's, and every family is documented.
- Every figure quoted from BENCHMARKS.md appears there verbatim. The rule: in docs/benchmarks.md every decimal
  number; elsewhere, in a paragraph that cites ``BENCHMARKS.md`` or ``python -m bench`` (or a table right below
  one), every decimal with three or more decimals and every decimal with a unit (``ms``, ``s``, ``MB``,
  ``prompts/s``). Ratios derived from the tables (``0.34x``) and two-decimal roundings are left to review.
- Repository paths (``tests/...py::test_name``, ``examples/``, ``scripts/``, ``bench/``), ``python -m bench.X``
  modules, dotted ``routellm_core...`` names and ``ROUTELLM_*`` environment variables the pages name exist.

Offline and fast: nothing is served, no model is called but the local fakes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = [*PAGES, ROOT / "BENCHMARKS.md"]
SUBCOMMANDS = ("train", "calibrate", "route", "evaluate", "report", "serve", "ui")
COMMAND = re.compile(rf"(?:routellm|python -m routellm_core\.server)\s+({'|'.join(SUBCOMMANDS)})\b")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _split(text: str) -> tuple[list[tuple[str, str]], str]:
    """``([(fence language, block text)], prose without the fenced blocks)`` of a Markdown page."""
    blocks, prose, current, lang = [], [], None, ""
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                blocks.append((lang, "\n".join(current)))
                current = None
            continue
        (prose if current is None else current).append(line)
    return blocks, "\n".join(prose)


def _paragraphs(prose: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", prose) if p.strip()]


def _spans(prose: str) -> list[str]:
    """The inline code spans of some prose."""
    return re.findall(r"`([^`\n]+)`", prose)


# ---- links and anchors -----------------------------------------------------------------------------------------
def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a page, duplicates numbered as GitHub does (``x``, ``x-1``, ...)."""
    _, prose = _split(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for line in prose.splitlines():
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = github_slug(match[2])
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


def links(path: Path) -> Iterator[str]:
    """Relative link and image targets of a page's prose (inline and reference style)."""
    _, prose = _split(path.read_text(encoding="utf-8"))
    prose = re.sub(r"`[^`\n]+`", "", prose)
    targets = re.findall(r"\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)", prose)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", prose, re.MULTILINE)
    for target in targets:
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            yield target


@pytest.mark.parametrize("page", LINKED, ids=_rel)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target} (no file {path})")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target} (no heading with anchor #{anchor} in {_rel(path)})")
    assert not broken, f"{_rel(page)}: broken links: {broken}"


@pytest.mark.parametrize("page", LINKED, ids=_rel)
def test_a_link_named_after_a_file_points_at_that_file(page: Path) -> None:
    """``[BENCHMARKS.md](benchmarks.md)`` sent readers to the headline page, not to the tables it named."""
    _, prose = _split(page.read_text(encoding="utf-8"))
    wrong = [
        f"[{text}]({target})"
        for text, target in re.findall(r"\[`?([\w.-]+\.md)`?\]\(([^)\s]+)\)", prose)
        if Path(target.partition("#")[0]).name != text
    ]
    assert not wrong, f"{_rel(page)}: links whose text names another file: {wrong}"


def test_slugs_follow_github() -> None:
    assert (
        github_slug("Retrain on your labels: `routellm train --init`") == "retrain-on-your-labels-routellm-train---init"
    )
    assert github_slug("The web page: `/ui` and `routellm ui`") == "the-web-page-ui-and-routellm-ui"
    assert github_slug("What is routed (`route_on`)") == "what-is-routed-route_on"


# ---- the routellm command line ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def subparsers() -> dict[str, argparse.ArgumentParser]:
    from routellm_core.cli import build_parser

    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(action.choices) == set(SUBCOMMANDS), "a subcommand was added or renamed: update SUBCOMMANDS"
    return dict(action.choices)


def shell_commands(page: Path) -> Iterator[tuple[str, str]]:
    """``(subcommand, arguments)`` of every ``routellm`` command in a page's shell blocks."""
    blocks, _ = _split(page.read_text(encoding="utf-8"))
    for lang, code in blocks:
        if lang not in ("bash", "sh", "shell", "console", ""):
            continue
        for line in code.replace("\\\n", " ").splitlines():
            if line.lstrip().startswith("#"):
                continue
            line = re.split(r"\s+#\s", line)[0]  # a trailing comment
            match = COMMAND.search(line)
            if match:
                yield match[1], re.split(r"\s(?:&&|\|\|?|;)\s", line[match.end() :])[0]


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """``None`` when ``argv`` parses, else argparse's error line."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as exc:
        return None if exc.code == 0 else (err.getvalue().strip().splitlines() or ["?"])[-1]
    return None


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_routellm_command_in_a_shell_block_parses(
    page: Path, subparsers: dict[str, argparse.ArgumentParser]
) -> None:
    problems = []
    for sub, arguments in shell_commands(page):
        error = _parse(subparsers[sub], shlex.split(arguments))
        if error:
            problems.append(f"routellm {sub} {arguments}\n    {error}")
    assert not problems, f"{_rel(page)}:\n" + "\n".join(problems)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)


#: Tools other than ``routellm`` whose flags the pages quote: a paragraph quoting one of their flags, or the one
#: right above it, names the tool.
OTHER_TOOLS = re.compile(r"python -m bench|scripts/|pip install|ruff ")


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_flag_named_in_prose_exists(page: Path, subparsers: dict[str, argparse.ArgumentParser]) -> None:
    everywhere = set().union(*(_options(p) for p in subparsers.values()))
    _, prose = _split(page.read_text(encoding="utf-8"))
    problems, before = [], ""
    for paragraph in _paragraphs(prose):
        other_tool = OTHER_TOOLS.search(before + paragraph)  # a list's flags may belong to the tool above it
        before = paragraph
        for span in _spans(paragraph):
            match = COMMAND.search(span)
            if match:  # `routellm serve --feedback ...`: the subcommand's own options
                own = _options(subparsers[match[1]])
                flags = re.findall(r"(?<![\w-])(--[a-z][\w-]*)", span[match.end() :])
                problems += [f"{f!r} is not an option of routellm {match[1]} ({span!r})" for f in flags if f not in own]
            elif span.startswith("--"):
                flag = re.match(r"--[a-z][\w-]*", span)[0]
                if flag not in everywhere and not other_tool and flag not in REFUSED_PREFIXES:
                    problems.append(f"{flag!r} is no option of any routellm subcommand ({span!r})")
    assert not problems, f"{_rel(page)}:\n" + "\n".join(problems)


#: Flags the docs quote as what the parser refuses (server.md: "No option is taken by a prefix").
REFUSED_PREFIXES = {"--api-key": "serve"}


def test_the_refused_prefixes_the_docs_quote_are_refused(subparsers: dict[str, argparse.ArgumentParser]) -> None:
    text = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
    for flag, sub in REFUSED_PREFIXES.items():
        assert f"`{flag} mytoken` is an error" in text, "server.md no longer quotes the refused prefix: drop it here"
        error = _parse(subparsers[sub], [flag, "mytoken"])
        assert error and "unrecognized arguments" in error, f"routellm {sub} {flag} is not refused: {error}"


def test_the_command_finder_sees_continued_lines_and_skips_comments(tmp_path: Path) -> None:
    page = tmp_path / "x.md"
    page.write_text(
        "```bash\n# routellm route --nope\n.venv/bin/routellm serve --strong a \\\n    --weak b  # then\n```\n",
        encoding="utf-8",
    )
    assert [(sub, shlex.split(args)) for sub, args in shell_commands(page)] == [
        ("serve", ["--strong", "a", "--weak", "b"])
    ]


# ---- the decision record ------------------------------------------------------------------------------------------
RECORD_PAGE = ROOT / "docs" / "decision-record.md"


def documented_record() -> tuple[set[str], set[str], set[str]]:
    """``(record keys, attempt keys, ladder keys)`` as docs/decision-record.md's table states them."""
    rows = {}
    for line in RECORD_PAGE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*(`[^|]+)\|\s*(.*)\|\s*$", line)
        if match:
            for key in re.findall(r"`(\w+)`", match[1]):
                rows[key] = match[2]
    # attempts: "in order: `model`, `side`, `role` (`answer`, ...), ...": its first sentence, bracketed values left out
    attempts = re.sub(r"\([^)]*\)", "", rows["attempts"].split(". ")[0])
    ladder = re.sub(r"\(\[[^)]*\)\)|\(else `None`\)", "", rows["ladder"].split(";")[0])
    keys = lambda text: set(re.findall(r"`([a-z_]+)`", text))  # noqa: E731
    return set(rows), keys(attempts), keys(ladder)


@pytest.fixture(scope="module")
def real_records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Records of real calls: LangChain (two models, escalation, a price ladder), LlamaIndex, the feedback store."""
    from lc_fakes import children
    from li_fakes import LabelledLLM

    from langchain_routellm import ChatRouteLLM
    from llamaindex_routellm import RouteLLM
    from routellm_core import Escalation
    from routellm_core.learning.feedback import FeedbackStore

    prompt = "Prove that there are infinitely many primes."
    store_path = str(tmp_path_factory.mktemp("store") / "feedback.db")
    lc = ChatRouteLLM(**children(), threshold=1.0, escalate=Escalation(), feedback=store_path)
    pair = children()
    ladder = ChatRouteLLM(models={"gpt-4o-mini": pair["weak"], "gpt-4o": pair["strong"]})
    li = RouteLLM(strong=LabelledLLM("strong"), weak=LabelledLLM("weak"))
    records = {
        "langchain": lc.invoke(prompt).response_metadata["routellm"],
        "langchain ladder": ladder.invoke(prompt).response_metadata["routellm"],
        "llamaindex": li.complete(prompt).additional_kwargs["routellm"],
    }
    (row,) = FeedbackStore(store_path).decisions()
    records["feedback store"] = row.record.decision.as_dict()
    return records


def test_the_documented_record_keys_are_the_real_ones(real_records: dict[str, dict[str, Any]]) -> None:
    documented, _, _ = documented_record()
    assert len(documented) >= 15, "the decision record table was not found"
    for where, record in real_records.items():
        assert set(record) == documented, (
            f"{where}: real but undocumented {sorted(set(record) - documented)}, "
            f"documented but absent {sorted(documented - set(record))}"
        )


def test_the_documented_attempt_keys_are_the_real_ones(real_records: dict[str, dict[str, Any]]) -> None:
    _, documented, _ = documented_record()
    attempts = [a for record in real_records.values() for a in record["attempts"]]
    assert {a["role"] for a in attempts} >= {"answer", "check"}, "the escalation's check attempt is missing"
    for attempt in attempts:
        assert set(attempt) == documented, f"attempt keys {sorted(attempt)} vs documented {sorted(documented)}"


def test_the_documented_ladder_keys_are_the_real_ones(real_records: dict[str, dict[str, Any]]) -> None:
    _, _, documented = documented_record()
    ladder = real_records["langchain ladder"]["ladder"]
    assert set(ladder) == documented, f"ladder keys {sorted(ladder)} vs documented {sorted(documented)}"
    assert real_records["langchain"]["ladder"] is None  # "`None` between two models"


# ---- /metrics --------------------------------------------------------------------------------------------------
def test_the_metrics_server_md_names_are_the_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    from routellm_core.server.metrics import ServerMetrics

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = ServerMetrics()
    # a family's label names from the wrapper that declares it (a fresh registry has no samples to read them from)
    declared = {m.name: set(getattr(m, "label_names", ())) for m in vars(metrics).values() if hasattr(m, "name")}
    real = {}
    for family in metrics.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        real[name] = declared.get(name, declared.get(family.name, set()))
    assert sum(bool(labels) for labels in real.values()) >= 10, "the families' label names were not found"
    _, prose = _split((ROOT / "docs" / "server.md").read_text(encoding="utf-8"))
    documented: dict[str, set[str]] = {}
    for name, labels in re.findall(r"`(routellm_[a-z0-9_]+)(?:\{([\w,]*)\})?`", prose):
        documented.setdefault(name, set()).update(filter(None, labels.split(",")))
    assert set(documented) == set(real), (
        f"documented, not served: {sorted(set(documented) - set(real))}; "
        f"served, not documented: {sorted(set(real) - set(documented))}"
    )
    for name, labels in documented.items():
        assert labels <= real[name], f"{name}: documented labels {sorted(labels)}, real {sorted(real[name])}"


# ---- figures quoted from BENCHMARKS.md ------------------------------------------------------------------------
FIGURE = re.compile(r"(?<![\w.\-/])(\d[\d,]*\.\d+)(\s?(?:ms|µs|s|MB|GB|prompts/s)\b)?")
CITES = re.compile(r"BENCHMARKS\.md|python -m bench")


def quoted_figures(page: Path) -> Iterator[tuple[str, str]]:
    """``(figure, context)`` of the figures a page quotes from BENCHMARKS.md (see the module docstring)."""
    _, prose = _split(page.read_text(encoding="utf-8"))
    whole = page.name == "benchmarks.md"
    cited = False
    for paragraph in _paragraphs(prose):
        table_below_citation = paragraph.lstrip().startswith("|") and cited
        cited = whole or bool(CITES.search(paragraph)) or table_below_citation
        if not cited:
            continue
        for match in FIGURE.finditer(paragraph):
            number, unit = match[1], match[2]
            if whole or unit or len(number.split(".")[1]) >= 3:
                context = paragraph[max(0, match.start() - 50) : match.end() + 10].replace("\n", " ")
                yield number.replace(",", ""), context


@pytest.fixture(scope="module")
def benchmark_numbers() -> set[str]:
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").replace(",", "")
    return set(re.findall(r"\d+(?:\.\d+)?", text))


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_figures_quoted_from_benchmarks_md_appear_there(page: Path, benchmark_numbers: set[str]) -> None:
    missing = [f"{n} in '...{c}...'" for n, c in quoted_figures(page) if n not in benchmark_numbers]
    assert not missing, f"{_rel(page)} quotes figures BENCHMARKS.md does not hold:\n" + "\n".join(missing)


def test_the_figure_rule_catches_a_stale_timing(tmp_path: Path) -> None:
    page = tmp_path / "x.md"
    page.write_text(
        "Measured (`python -m bench.x`): 43.8 ms kept, APGR 0.586, 0.34x the cost, 2 of 5 seeds.\n\n"
        "Not cited: 0.616 and 12.5 ms.\n",
        encoding="utf-8",
    )
    assert [n for n, _ in quoted_figures(page)] == ["43.8", "0.586"]


# ---- names the pages point at --------------------------------------------------------------------------------------
REPO_PATH = re.compile(
    r"(?<![\w/.])((?:tests|examples|scripts|bench|core|langchain_routellm|llamaindex_routellm)/[\w./-]*\w)(?:::(\w+))?"
)


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_repository_paths_and_bench_modules_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = []
    for match in REPO_PATH.finditer(text):
        path = ROOT / match[1]
        if not path.exists():
            missing.append(match[1])
        elif match[2] and not re.search(rf"def {match[2]}\(", path.read_text(encoding="utf-8")):
            missing.append(f"{match[1]}::{match[2]}")
    for module in re.findall(r"python -m (bench(?:\.\w+)?)", text):
        base = ROOT / module.replace(".", "/")
        if not base.with_suffix(".py").exists() and not (base / "__main__.py").exists():
            missing.append(f"python -m {module}")
    assert not missing, f"{_rel(page)} names what does not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_dotted_names_resolve(page: Path) -> None:
    """``routellm_core.learning.labelling.EXIT_WAIT_S``, ``llamaindex_routellm.LlamaIndexEmbedder``...: importable."""
    missing = []
    for dotted in sorted(
        set(
            re.findall(
                r"(?:routellm_core|langchain_routellm|llamaindex_routellm)(?:\.\w+)+", page.read_text(encoding="utf-8")
            )
        )
    ):
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        try:
            for attribute in parts[i:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            missing.append(dotted)
    assert not missing, f"{_rel(page)} names what does not resolve: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_environment_variables_exist_in_the_code(page: Path) -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "core" / "routellm_core").rglob("*.py"))
    named = set(re.findall(r"\b(ROUTELLM_[A-Z_]+)\b", page.read_text(encoding="utf-8")))
    unknown = sorted(v for v in named if v not in code)
    assert not unknown, f"{_rel(page)} names environment variables the code never reads: {unknown}"
