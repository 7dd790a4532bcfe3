"""The package's shape: no import cycle anywhere in imgai/ (imports inside functions count too:
a lower module that imports an upper one to dispatch is the cycle this catches), and no gradio."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "imgai"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module → the imgai modules it imports (at the top or inside a function)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import sub` imports the submodule `pkg.sub` when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:      # `import imgai.x.y` as far as it is a module
                    target = target.rpartition(".")[0]
                if target.startswith("imgai") and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
                found.append(_path_through(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle start → … → start inside one component (breadth-first)."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    return sorted(component)


def test_the_cycle_finder_names_a_cycle():
    graph = {"imgai.a": {"imgai.b"}, "imgai.b": {"imgai.c"}, "imgai.c": {"imgai.a"}, "imgai.d": {"imgai.a"}}
    assert cycles(graph) == [["imgai.a", "imgai.b", "imgai.c", "imgai.a"]]
    assert cycles({"imgai.a": {"imgai.b"}, "imgai.b": set()}) == []


# Cycles known and owned elsewhere, each with why it is there; the test fails on any other cycle, and
# when one of these is gone (then delete its line). Keep this empty.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def test_there_is_no_import_cycle_in_imgai():
    graph = import_graph()
    assert "imgai.jobs" in graph and graph["imgai.jobs"], "the graph was not read"
    found = cycles(graph)
    new = [c for c in found if frozenset(c) not in KNOWN_CYCLES]
    assert not new, "import cycles in imgai/:\n" + "\n".join(" → ".join(c) for c in new)
    gone = set(KNOWN_CYCLES) - {frozenset(c) for c in found}
    assert not gone, f"these known cycles are gone: delete them from KNOWN_CYCLES: {sorted(map(sorted, gone))}"


def test_imgai_never_imports_gradio():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not any(n.split(".")[0] == "gradio" for n in names), f"{path} imports gradio"


def test_every_built_in_job_kind_is_a_function_the_import_graph_sees():
    """The job system runs imgai's kinds through a table of imported functions (imgai/job_kinds.py),
    not "module:function" strings, so a cycle through a job kind is a cycle this file finds."""
    from imgai import job_kinds

    seen = import_graph()["imgai.job_kinds"]
    for name, kind in job_kinds.BUILT_IN.items():
        for function in filter(None, (kind.run, kind.on_abort)):
            assert callable(function) and function.__module__ in seen, (name, function)
