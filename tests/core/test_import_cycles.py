"""No import cycle among the project's modules, counting every import statement.

A cycle lets the import order decide which names exist while a module runs (a partly
initialised module fails at first use, often far from the cause), and it welds two
layers together so that neither can be read, tested or moved alone. Imports inside
functions, under ``if TYPE_CHECKING:`` or in ``try`` blocks count as well: they hide a
cycle from the interpreter, not from the design. Modules are read with :mod:`ast`,
never imported.
"""

from __future__ import annotations

import ast
import textwrap
from collections import defaultdict, deque
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What ships: the pack's own __init__.py (ComfyUI imports the clone folder as a
# package), its packages, and the script folders, whose scripts run with their own
# folder first on sys.path.
PACKAGES = ("relightvid_core", "nodes")
SCRIPT_DIRS = ("bench", "workflows")
# The project's top-level names that an absolute import reaches: pip installs
# relightvid_core (pyproject's packages.find); an absolute ``import nodes`` is
# ComfyUI's own nodes.py.
INSTALLED = ("relightvid_core",)
# How cycles name the pack's __init__.py: ComfyUI names it after the clone folder.
PACK = "<pack>"

Module = tuple[str, ...]  # dotted name relative to the repository; () is the pack
Graph = Mapping[Module, set[Module]]  # each module's imports
Modules = Mapping[Module, Path]  # each module's file
Edges = dict[tuple[Module, Module], list[str]]  # (importer, imported) -> "file:line"s


def project_modules(root: Path) -> dict[Module, Path]:
    """Every shipped module under ``root`` and its file, sub-packages included."""
    files = [root / "__init__.py"] if (root / "__init__.py").is_file() else []
    for folder in (*PACKAGES, *SCRIPT_DIRS):
        files += sorted((root / folder).rglob("*.py"))
    modules = {}
    for path in files:
        parts = path.relative_to(root).with_suffix("").parts
        modules[parts[:-1] if parts[-1] == "__init__" else parts] = path
    return modules


def resolve_absolute(name: Module, module: Module, modules: Modules) -> Module | None:
    """The project module that absolute ``name`` in ``module`` is; None if outside."""
    candidates = [name] if name[0] in INSTALLED else []
    if module and module[0] in SCRIPT_DIRS:
        candidates.insert(0, (*module[:-1], *name))
    return next((found for found in candidates if found in modules), None)


def resolve_from(node: ast.ImportFrom, module: Module, modules: Modules) -> set[Module]:
    """The project modules one ``from ... import`` statement names.

    ``from package import name`` names the submodule ``name`` when there is one, else
    the package's ``__init__``.
    """
    is_package = modules[module].name == "__init__.py"
    package = module if is_package else module[:-1]
    named = tuple(node.module.split(".")) if node.module else ()
    if not node.level:
        base = resolve_absolute(named, module, modules)
    elif node.level - 1 <= len(package):
        base = (*package[: len(package) - node.level + 1], *named)
    else:
        return set()
    if base is None:
        return set()
    submodules = {(*base, alias.name) for alias in node.names}
    return {sub if sub in modules else base for sub in submodules} & modules.keys()


def imported_modules(module: Module, modules: Modules) -> set[tuple[Module, int]]:
    """Each project module that ``module`` imports anywhere, with the statement's line.

    The parent packages that an import also runs are left out: a package that
    re-exports its submodules would otherwise always look cyclic with them.
    """
    path = modules[module]
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names = (tuple(alias.name.split(".")) for alias in node.names)
            targets = {resolve_absolute(name, module, modules) for name in names}
            targets.discard(None)
        elif isinstance(node, ast.ImportFrom):
            targets = resolve_from(node, module, modules)
        else:
            continue
        found |= {(target, node.lineno) for target in targets}
    return found


def import_graph(root: Path) -> Edges:
    """The project's import edges under ``root``, each with where it is written."""
    modules = project_modules(root)
    edges: Edges = defaultdict(list)
    for module, path in modules.items():
        where = path.relative_to(root).as_posix()
        for target, line in sorted(imported_modules(module, modules)):
            edges[module, target].append(f"{where}:{line}")
    return dict(edges)


def shortest_path(graph: Graph, start: Module, goal: Module) -> list[Module] | None:
    """The modules on a shortest import path from ``start`` to ``goal``, or None."""
    previous: dict[Module, Module | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = previous[node]
            return path[::-1]
        for following in sorted(graph[node] - previous.keys()):
            previous[following] = node
            queue.append(following)
    return None


def find_cycles(edges: Edges) -> list[tuple[Module, ...]]:
    """One shortest cycle through each edge that lies on a cycle, first module once.

    The elementary cycles of a tangle can be exponentially many; one per edge is
    enough to show every import that takes part in a cycle. Each cycle is rotated to
    start at its smallest module, so that it is listed once.
    """
    successors: dict[Module, set[Module]] = defaultdict(set)
    for importer, imported in edges:
        successors[importer].add(imported)
    found = set()
    for importer, imported in edges:
        back = shortest_path(successors, imported, importer)
        if back is not None:
            cycle = [importer, *back[:-1]]
            first = cycle.index(min(cycle))
            found.add(tuple(cycle[first:] + cycle[:first]))
    return sorted(found)


def display(module: Module) -> str:
    """The dotted name a developer knows; the pack's __init__.py has none here."""
    return ".".join(module) or PACK


def describe(cycle: tuple[Module, ...], edges: Edges) -> str:
    """``a -> b -> a``, then the file:line of each edge, where a fix can start."""
    lines = [" -> ".join(display(module) for module in (*cycle, cycle[0]))]
    for step in zip(cycle, (*cycle[1:], cycle[0])):
        where = ", ".join(edges[step])
        lines.append(f"    {where}: {display(step[0])} imports {display(step[1])}")
    return "\n".join(lines)


def test_project_has_no_import_cycle():
    edges = import_graph(REPO)
    cycles = find_cycles(edges)
    report = "\n".join(describe(cycle, edges) for cycle in cycles)
    assert not cycles, f"{len(cycles)} import cycles:\n{report}"


def write_tree(root: Path, sources: Mapping[str, str]) -> None:
    """Write a small project: file name under ``root`` -> indented source."""
    for name, source in sources.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(source))


def test_import_graph_resolves_every_kind_of_import_and_no_implicit_parent(tmp_path):
    write_tree(
        tmp_path,
        {
            "__init__.py": "from .nodes import NODES\n",
            "nodes/__init__.py": "from . import loading\n",
            "nodes/loading.py": """\
                import torch
                from ..relightvid_core import errors, lazy_name
                from ..relightvid_core.errors import InputError, WeightFormatError
            """,
            "relightvid_core/__init__.py": "from .errors import InputError\n",
            "relightvid_core/errors.py": "",
            "bench/specs.py": "",
            "bench/bench_load.py": """\
                import specs
                import relightvid_core.errors
                import nodes
            """,
        },
    )
    edges = import_graph(tmp_path)
    named = {f"{display(a)} -> {display(b)}": where for (a, b), where in edges.items()}
    assert named == {
        "<pack> -> nodes": ["__init__.py:1"],
        "nodes -> nodes.loading": ["nodes/__init__.py:1"],
        "nodes.loading -> relightvid_core": ["nodes/loading.py:2"],
        "nodes.loading -> relightvid_core.errors": [
            "nodes/loading.py:2",
            "nodes/loading.py:3",
        ],
        "relightvid_core -> relightvid_core.errors": ["relightvid_core/__init__.py:1"],
        "bench.bench_load -> bench.specs": ["bench/bench_load.py:1"],
        "bench.bench_load -> relightvid_core.errors": ["bench/bench_load.py:2"],
    }
    assert find_cycles(edges) == []


@pytest.mark.parametrize(
    ("hidden", "line"),
    [
        pytest.param(
            """\
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                from .a import A
            """,
            4,
            id="TYPE_CHECKING",
        ),
        pytest.param(
            """\
            def make():
                from .a import A

                return A()
            """,
            2,
            id="function body",
        ),
    ],
)
def test_find_cycles_sees_an_import_hidden_from_the_interpreter(tmp_path, hidden, line):
    write_tree(
        tmp_path,
        {
            "nodes/__init__.py": "",
            "nodes/a.py": "from . import b\nA = int\n",
            "nodes/b.py": hidden,
        },
    )
    edges = import_graph(tmp_path)
    cycles = find_cycles(edges)
    assert cycles == [(("nodes", "a"), ("nodes", "b"))]
    assert describe(cycles[0], edges).splitlines() == [
        "nodes.a -> nodes.b -> nodes.a",
        "    nodes/a.py:1: nodes.a imports nodes.b",
        f"    nodes/b.py:{line}: nodes.b imports nodes.a",
    ]
