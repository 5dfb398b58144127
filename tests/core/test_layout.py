"""The folders are the architecture: every import inside ``routellm_core`` points down the layers.

Layers, bottom to top (README, *Development*): the foundation modules, ``data``, ``embedding``, ``evaluation``,
``escalation``, ``routers``, ``learning``, ``routing``, then ``server`` and ``cli``. A module may import its own
subpackage or a lower layer, never a higher one (imports only for type checking included: a reader follows them too).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "core" / "routellm_core"

LAYERS: dict[str, int] = {
    "errors": 0,
    "_optional": 0,
    "_cli_args": 0,
    "paths": 0,
    "checkpoint": 0,
    "decisions": 0,
    "data": 1,
    "embedding": 2,
    "evaluation": 3,
    "escalation": 4,
    "routers": 5,
    "learning": 6,
    "routing": 7,
    "server": 8,
    "cli": 9,
}


def _part(module: str) -> str | None:
    """The layer key of a ``routellm_core`` module name (``None`` for the package root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("routellm_core"):
            if node.module == "routellm_core":
                found += [(node.lineno, f"routellm_core.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("routellm_core.")]
    return found


def test_every_top_level_module_and_subpackage_has_a_layer() -> None:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert names <= set(LAYERS), f"give these a layer in LAYERS and the README: {sorted(names - set(LAYERS))}"


def test_imports_point_down_only() -> None:
    upward: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts == ("__init__.py",):
            continue  # the package root re-exports the public names of every layer
        own = relative.parts[0].removesuffix(".py")
        for line, module in _imports(path):
            target = _part(module)
            if target is None or target == own or target not in LAYERS:
                continue
            if LAYERS[target] > LAYERS[own]:
                upward.append(
                    f"{relative}:{line} ({own}, layer {LAYERS[own]}) imports {module} (layer {LAYERS[target]})"
                )
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_the_options_the_readme_uses_import_from_the_core_and_each_front_end() -> None:
    import langchain_routellm
    import llamaindex_routellm
    import routellm_core
    from routellm_core.escalation.config import Escalation
    from routellm_core.routers.profiles import ModelPrior
    from routellm_core.routing.objective import Objective

    for package in (routellm_core, langchain_routellm, llamaindex_routellm):
        assert {"Escalation", "Objective"} <= set(package.__all__), package.__name__
        assert package.Escalation is Escalation and package.Objective is Objective, package.__name__
    assert "ModelPrior" in routellm_core.__all__ and routellm_core.ModelPrior is ModelPrior
