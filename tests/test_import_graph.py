"""The package's import graph, read from the sources with `ast` (nothing is imported).

* no cycles among echoweave modules through their import-time (top-level) imports, and the
  cycles issue 11 broke stay broken with imports inside functions counted too (a lazy import
  hides a cycle from Python, not from the reader: harness <-> memprobe was one);
* the layer rule of docs/ARCHITECTURE.md: edge <- train <- export <- benchmarks (<- the kit CLI).
  A layer imports nothing from the layers to its right, lazily or not.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folder -> package, as setup.py maps them (kit/ is the package root and the CLI).
ROOTS = {"kit": "echoweave", "edge": "echoweave.edge", "train": "echoweave.train",
         "export": "echoweave.export", "benchmarks": "echoweave.benchmarks"}
# Lower layers first; a module may import its own layer and those before it.
LAYERS = ("edge", "train", "export", "benchmarks", "kit")


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, package in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if "__pycache__" in rel.parts:
                continue
            mods[".".join([package, *parts])] = path
    return mods


MODULES = _modules()


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOTS and parts[1] != "kit" else "kit"


def _resolve(name: str) -> str | None:
    """The echoweave module a dotted name refers to (longest known prefix), or None."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in MODULES:
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str) -> list[tuple[str, bool]]:
    """``(imported echoweave module, at import time?)`` for every import statement in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only: never executed
            elif isinstance(child, ast.Import):
                found.extend((m, top) for a in child.names if (m := _resolve(a.name)))
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: from .x import y
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                for a in child.names:
                    target = _resolve(f"{source}.{a.name}") or _resolve(source)
                    if target:
                        found.append((target, top))
            else:
                visit(child, top)

    visit(ast.parse(path.read_text(), str(path)), True)
    return [(m, top) for m, top in found if m != module]


def graph(top_only: bool) -> dict[str, set[str]]:
    return {m: {t for t, top in imports_of(m) if top or not top_only} for m in MODULES}


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return cycles


def test_the_scan_sees_the_package():
    assert {"echoweave.edge.atomic", "echoweave.train.data.catalog", "echoweave.benchmarks.harness",
            "echoweave.cli"} <= set(MODULES)
    assert ("echoweave.train.data.ned", True) in imports_of("echoweave.train.data.catalog")


def test_find_cycles_reports_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = find_cycles(graph(top_only=True))
    assert not cycles, "import cycles among echoweave modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("pair", [("train.data.catalog", "train.data.ned"), ("train.data.catalog", "train.data.ev9v"),
                                  ("benchmarks.harness", "benchmarks.memprobe")], ids="<->".join)
def test_broken_cycles_stay_broken_even_through_lazy_imports(pair):
    """The cycles issue 11 broke, checked with imports inside functions counted too."""
    a, b = (f"echoweave.{m}" for m in pair)
    together = [c for c in find_cycles(graph(top_only=False)) if a in c and b in c]
    assert not together, f"{a} and {b} import each other again: " + " <-> ".join(together[0])


def test_layers_import_only_downwards():
    bad = []
    for module in MODULES:
        mine = LAYERS.index(layer_of(module))
        for target, top in imports_of(module):
            if LAYERS.index(layer_of(target)) > mine:
                bad.append(f"{module} -> {target}{'' if top else ' (inside a function)'}")
    assert not bad, "imports against the layer rule (edge <- train <- export <- benchmarks <- kit):\n" + "\n".join(bad)


def test_load_model_lives_next_to_load_checkpoint():
    from echoweave.train.engine import checkpoint, evaluate

    assert checkpoint.load_model.__module__ == "echoweave.train.engine.checkpoint"
    assert evaluate.load_model is checkpoint.load_model  # the old import path keeps working
