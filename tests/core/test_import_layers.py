"""The import graph of core, backend and add-on: no cycles, no upward imports (issue 11).

The graph is read from the source with `ast` (every `import`, also the ones inside functions,
which still close a cycle when they run; the add-on needs no bpy for this). The layers, from the
bottom: core (pure, imported by both halves) <- the engine (rendering, features, views, synthetic
scenes, splat scene loading) <- the server. The add-on stands beside the backend and never imports
it. Every core and backend module is also really imported.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
# (package name, its folder): every .py below is a node of the graph.
PACKAGES = (("clickgauss_core", REPOSITORY / "core" / "clickgauss_core"),
            ("clickgauss_backend", REPOSITORY / "backend" / "clickgauss_backend"),
            ("clickgauss_blender", REPOSITORY / "clickgauss_blender"))
IMPORTED_FOR_REAL = ("clickgauss_core", "clickgauss_backend")
ENGINE = ("clickgauss_backend.render", "clickgauss_backend.features", "clickgauss_backend.views",
          "clickgauss_backend.synthetic", "clickgauss_backend.splat_scene")
# (importer, what it must not import, why): prefixes of dotted module names.
FORBIDDEN = (
    [("clickgauss_core", upper, "core is the ground floor: pure Python + numpy, run inside Blender")
     for upper in ("clickgauss_backend", "clickgauss_blender")]
    + [(engine, "clickgauss_backend.server", "the engine runs without the service (CLI, benchmarks)")
       for engine in ENGINE]
    + [("clickgauss_blender", "clickgauss_backend", "the add-on runs in Blender's Python: no torch, only HTTP")]
)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_files(packages) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under each (package, folder)."""
    modules = {}
    for package, folder in packages:
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _type_checking_only(tree: ast.AST) -> set[int]:
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return guarded


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of `modules` it imports (relative imports resolved; others ignored)."""
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_only(tree)
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module
                targets |= {f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                            for alias in node.names}
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def upward_imports(graph: dict[str, set[str]], forbidden=FORBIDDEN) -> list[str]:
    return [f"{importer} imports {target}: {why}"
            for importer, targets in sorted(graph.items()) for target in sorted(targets)
            for lower, upper, why in forbidden if _within(importer, lower) and _within(target, upper)]


def test_the_graph_has_no_cycle():
    graph = import_graph(module_files(PACKAGES))
    assert len(graph) > 90
    assert graph["clickgauss_core.ply"] >= {"clickgauss_core.ply_container", "clickgauss_core.spz"}
    cycles = import_cycles(graph)
    assert cycles == [], (
        "import cycles:\n"
        + "\n".join(" <-> ".join(cycle) for cycle in cycles))


def test_no_layer_imports_a_layer_above_it():
    found = upward_imports(import_graph(module_files(PACKAGES)))
    assert not found, "upward imports:\n" + "\n".join(found)


def test_every_core_and_backend_module_imports():
    names = [name for name in module_files(PACKAGES) if name.split(".")[0] in IMPORTED_FOR_REAL]
    failures = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # every failure listed, not just the first
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_a_planted_cycle_and_upward_import_are_caught(tmp_path):
    core, backend = tmp_path / "core_pkg", tmp_path / "backend_pkg"
    (core / "inner").mkdir(parents=True)
    backend.mkdir()
    (core / "__init__.py").write_text("")
    (core / "a.py").write_text("from .inner import b\n")
    (core / "inner" / "__init__.py").write_text("")
    (core / "inner" / "b.py").write_text("def f():\n    from ..c import g\n")
    (core / "c.py").write_text("from core_pkg.a import x\nimport backend_pkg.server\n")
    (backend / "__init__.py").write_text("")
    (backend / "server.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import core_pkg.a\n")
    graph = import_graph(module_files((("core_pkg", core), ("backend_pkg", backend))))
    assert import_cycles(graph) == [["core_pkg.a", "core_pkg.c", "core_pkg.inner.b"]]
    assert graph["backend_pkg.server"] == set()  # type-checking imports do not run
    assert upward_imports(graph, [("core_pkg", "backend_pkg", "down only")]) == [
        "core_pkg.c imports backend_pkg.server: down only"]
