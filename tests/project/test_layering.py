"""The package's imports point one way, and no module imports itself through others.

Layers, lowest first (a module may import from its own layer or a lower one, never from a higher one):
file, provenance and command-line option utilities ← phonology ← data, scoring and the corpus importers/generator ← model ← decoding ←
training ← pruning ← the command line. Every import statement counts, including ones inside functions and under
``TYPE_CHECKING`` (a reader follows those too).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "asrprune"

# Top-level subpackage or module of asrprune -> its layer.
LAYERS = {
    "__init__": 0, "environment": 0, "errors": 0, "files": 0, "text_files": 0, "cli_options": 0, "benchmarking": 0,
    "phonology": 1,
    "data": 2, "scoring": 2, "corpora": 2, "synth": 2,
    "model": 3,
    "decoding": 4,
    "training": 5,
    "pruning": 6,
    "cli": 7,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The asrprune modules ``path`` imports (``from a.b import c`` counts as ``a.b.c`` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known and name.startswith("asrprune.")}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    if top not in LAYERS:
        pytest.fail(f"{module}: asrprune.{top} has no layer in tests/project/test_layering.py LAYERS; give it one")
    return LAYERS[top]


def test_no_import_from_a_higher_layer():
    upward = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
              for module, targets in sorted(import_graph().items()) for target in sorted(targets)
              if layer(target) > layer(module)]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_import_cycle():
    """Depth-first search over module imports (package ``__init__`` files, which hold only docstrings, are left
    out: importing ``a.b.c`` runs ``a.b``'s ``__init__`` without that being a dependency of the module)."""
    graph = {name: {t for t in targets if PACKAGE.joinpath(*t.split(".")[1:], "__init__.py").exists() is False}
             for name, targets in import_graph().items()}
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_graph_sees_known_edges():
    """The walker finds real imports (guards against a walker that silently finds nothing)."""
    graph = import_graph()
    assert "asrprune.model.conformer_ctc" in graph["asrprune.training.lightning_module"]
    assert "asrprune.phonology.languages" in graph["asrprune.scoring.error_rates"]
