"""The package's layout: no import cycle, and the library core never imports the program."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pyro_ar

ROOT = Path(pyro_ar.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> Dict[str, Set[str]]:
    """``{module: modules of pyro_ar it imports}``, every import statement counted (also inside
    functions), ``from pkg import name`` resolved to ``pkg.name`` where that is a module."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert "pyro_ar.distributions.autoregressive" in graph and graph["pyro_ar.models"]
    assert find_cycle(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_core_does_not_import_the_program():
    graph = import_graph()
    core = [m for m in graph if not m.startswith("pyro_ar.program") and m != "pyro_ar.__main__"]
    offenders = {m: sorted(t for t in graph[m] if t.startswith("pyro_ar.program")) for m in core}
    assert {m: t for m, t in offenders.items() if t} == {}
