"""Draw ehrqa's import graph and check that imports point one way, down the layers.

    python scripts/import_graph.py                    # text: layers, package edges, problems
    python scripts/import_graph.py --dot graph.dot    # also Graphviz DOT (dot -Tsvg graph.dot)
    python scripts/import_graph.py --modules          # also every module-level edge

Every module under ``src/ehrqa`` is read with :mod:`ast` (nothing is imported), and every
import counts: module-level ones, lazy ones inside functions, ones under ``TYPE_CHECKING``,
and registry entries written as ``"ehrqa.module:attr"`` strings (a lazy import by another
name). ``from x import y`` is resolved to the module ``x.y`` when that is a module, and
otherwise to the module that defines ``y`` when ``x`` is a package whose ``__init__``
re-exports it.

The exit status is 1 when there is a cycle (between modules, or between packages) or an
upward import against :data:`LAYERS`, 0 otherwise. ``tests/test_architecture.py`` runs the
same analysis.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PACKAGE = "ehrqa"

# The layer order, bottom first: a component may import its own layer and the layers
# below it, never one above. A component is a subpackage of ehrqa (``select``), a
# subpackage of the lab (``lab.train``) or a top-level module (``qa``); ``ehrqa`` is the
# package's own ``__init__``. This is the layout of STYLE.md:
#   - core/ holds errors, config, the registries and the HTTP retry policy;
#   - ingest/ reads files and FHIR servers into a store, so it sits just above store/;
#   - qa.py (ask: select then answer) and conversation.py (follow-up turns, used by qa)
#     sit above answer/, where their imports put them;
#   - lab/ (data, train, eval) is on top of the product: nothing in the product imports
#     it; train imports data; eval imports data and the product;
#   - cli/, the ``ehrqa`` command, is the shell over product and lab alike (it has the
#     ``train``, ``eval`` and ``generate`` commands), so it is the top; the API, a product
#     shell, sits below the lab and imports none of it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("ehrqa", "core")),
    ("text", ("text",)),
    ("knowledge", ("knowledge",)),
    ("fhir", ("fhir",)),
    ("store", ("store",)),
    ("meds", ("meds",)),
    ("ingest", ("ingest",)),
    ("llm", ("llm",)),
    ("select", ("select",)),
    ("answer", ("answer",)),
    ("qa", ("qa", "conversation")),
    ("docs", ("docs",)),
    ("cds", ("cds",)),
    ("api", ("api",)),
    ("lab data", ("lab", "lab.data")),
    ("lab train", ("lab.train",)),
    ("lab eval", ("lab.eval",)),
    ("cli", ("cli",)),
)

REGISTRY_ENTRY = re.compile(r"^(ehrqa(?:\.\w+)+):\w+(?:\.\w+)*$")


@dataclass(frozen=True)
class Import:
    """One import of an ehrqa module by another, as written in the source."""

    source: str  # the importing module, e.g. "ehrqa.select.rerank"
    target: str  # the imported module, resolved
    path: Path
    line: int
    kind: str  # "module" (top level), "lazy" (inside a function), "typing", "registry"

    @property
    def where(self) -> str:
        """``src/ehrqa/x.py:12`` for messages."""
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"

    def describe(self) -> str:
        """One line: where, who imports what, and how."""
        return f"{self.where}: {self.source} -> {self.target} ({self.kind})"


@dataclass
class Graph:
    """The modules found and every import between them."""

    modules: dict[str, Path]
    imports: list[Import]


def module_name(path: Path, source: Path = SOURCE) -> str:
    """``src/ehrqa/select/rerank.py`` -> ``ehrqa.select.rerank``."""
    parts = list(path.relative_to(source).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(source: Path = SOURCE) -> dict[str, Path]:
    """Every module of the package under ``source``, by dotted name."""
    return {
        module_name(path, source): path
        for path in sorted((source / PACKAGE).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def component(module: str) -> str:
    """A module's node: ``ehrqa.select.x`` -> ``select``; ``ehrqa.lab.eval.x`` -> ``lab.eval``."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "lab":
        return f"lab.{parts[2]}"
    return parts[1] if len(parts) > 1 else parts[0]


def layer_index() -> dict[str, int]:
    """Each component's position in :data:`LAYERS`, bottom = 0."""
    return {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.AST, str]]:
    """Every node below ``node`` with the kind of import it would be."""
    for child in ast.iter_child_nodes(node):
        child_kind = kind
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            child_kind = "lazy"
        elif isinstance(child, ast.If) and _is_type_checking(child.test) and kind == "module":
            yield child.test, kind
            for sub in child.body:
                yield sub, "typing"
                yield from _walk(sub, "typing")
            for sub in child.orelse:
                yield sub, kind
                yield from _walk(sub, kind)
            continue
        yield child, child_kind
        yield from _walk(child, child_kind)


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module named by a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _reexports(modules: dict[str, Path]) -> dict[str, dict[str, str]]:
    """For each package ``__init__``: name -> the module it was imported from."""
    found: dict[str, dict[str, str]] = {}
    for name, path in modules.items():
        if path.name != "__init__.py":
            continue
        names: dict[str, str] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom):
                origin = _absolute(name, node, is_package=True)
                for alias in node.names:
                    if origin in modules:
                        names[alias.asname or alias.name] = origin
        found[name] = names
    return found


def _resolve(
    origin: str, name: str, modules: dict[str, Path], reexports: dict[str, dict[str, str]]
) -> str | None:
    """The module that ``from origin import name`` depends on, or None if not ehrqa's."""
    if f"{origin}.{name}" in modules:
        return f"{origin}.{name}"
    if origin not in modules:
        return None
    seen = {origin}
    while name in reexports.get(origin, {}):
        origin = reexports[origin][name]
        if origin in seen:
            break
        seen.add(origin)
    return origin


def _imports_of(
    module: str, path: Path, modules: dict[str, Path], reexports: dict[str, dict[str, str]]
) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node, kind in _walk(tree, "module"):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield Import(module, alias.name, path, node.lineno, kind)
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(module, node, path.name == "__init__.py")
            if origin.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                target = _resolve(origin, alias.name, modules, reexports)
                if target is not None:
                    yield Import(module, target, path, node.lineno, kind)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = REGISTRY_ENTRY.match(node.value)
            if match and match.group(1) in modules:
                yield Import(module, match.group(1), path, node.lineno, "registry")


def build_graph(source: Path = SOURCE) -> Graph:
    """Read every module under ``source/ehrqa`` and collect its imports of ehrqa modules."""
    modules = find_modules(source)
    reexports = _reexports(modules)
    imports: dict[Import, None] = {}  # one per (importer, imported, line, kind), in order
    for module, path in modules.items():
        for found in _imports_of(module, path, modules, reexports):
            if found.target != module:
                imports[found] = None
    return Graph(modules, list(imports))


def strongly_connected(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one node, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    components.append(sorted(members))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return sorted(components)


def module_cycles(graph: Graph) -> list[tuple[list[str], list[Import]]]:
    """Groups of modules that import each other, with the imports that close each group.

    Registry entries are left out here: a registry naming its own package's classes is
    how lazy entries work, and the entry is only imported when the name is asked for.
    """
    edges: dict[str, set[str]] = defaultdict(set)
    for found in graph.imports:
        if found.kind != "registry":
            edges[found.source].add(found.target)
    cycles = []
    for members in strongly_connected(graph.modules, edges):
        inside = set(members)
        links = [
            found
            for found in graph.imports
            if found.kind != "registry" and found.source in inside and found.target in inside
        ]
        cycles.append((members, links))
    return cycles


def package_edges(graph: Graph) -> dict[tuple[str, str], list[Import]]:
    """Imports between different components, grouped by (importer, imported)."""
    grouped: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for found in graph.imports:
        pair = (component(found.source), component(found.target))
        if pair[0] != pair[1]:
            grouped[pair].append(found)
    return dict(sorted(grouped.items()))


def package_cycles(graph: Graph) -> list[tuple[list[str], list[Import]]]:
    """Groups of components that import each other, with the imports between them."""
    grouped = package_edges(graph)
    edges: dict[str, set[str]] = defaultdict(set)
    for source, target in grouped:
        edges[source].add(target)
    nodes = {component(name) for name in graph.modules}
    layers = layer_index()
    cycles = []
    for members in strongly_connected(nodes, edges):
        inside = set(members)
        # Only the imports that close the loop: those that do not point down a layer.
        links = [
            found
            for (source, target), found_list in grouped.items()
            if source in inside
            and target in inside
            and layers.get(target, 0) >= layers.get(source, 0)
            for found in found_list
        ]
        cycles.append((members, links))
    return cycles


def upward_imports(graph: Graph) -> list[Import]:
    """Imports of a component in a higher layer than the importer's."""
    layers = layer_index()
    return [
        found
        for found in graph.imports
        if layers[component(found.target)] > layers[component(found.source)]
    ]


def unplaced(graph: Graph) -> list[str]:
    """Components missing from :data:`LAYERS` (a new package must be given a layer)."""
    layers = layer_index()
    return sorted({component(name) for name in graph.modules} - set(layers))


def problems(graph: Graph) -> list[str]:
    """Every cycle, upward import and unplaced component, one message each."""
    found: list[str] = [
        f"component {name!r} has no layer: add it to LAYERS in scripts/import_graph.py"
        for name in unplaced(graph)
    ]
    if found:
        return found
    for members, links in module_cycles(graph):
        lines = "\n".join(f"    {link.describe()}" for link in links)
        found.append(f"module cycle {' <-> '.join(members)}:\n{lines}")
    for members, links in package_cycles(graph):
        lines = "\n".join(f"    {link.describe()}" for link in links)
        found.append(f"package cycle {' <-> '.join(members)}:\n{lines}")
    layers = layer_index()
    for link in upward_imports(graph):
        source, target = component(link.source), component(link.target)
        found.append(
            f"upward import {link.describe()}: {source} (layer {LAYERS[layers[source]][0]}) "
            f"imports {target} (layer {LAYERS[layers[target]][0]})"
        )
    return found


def to_dot(graph: Graph) -> str:
    """The package-level graph in Graphviz DOT, one cluster row per layer."""
    lines = ["digraph ehrqa {", "  rankdir=BT;", '  node [shape=box, fontname="Helvetica"];']
    present = {component(name) for name in graph.modules}
    upward = {(component(f.source), component(f.target)) for f in upward_imports(graph)}
    for i, (layer, names) in enumerate(LAYERS):
        members = " ".join(f'"{name}";' for name in names if name in present)
        lines.append(f'  subgraph cluster_{i} {{ label="{layer}"; rank=same; {members} }}')
    for (source, target), links in package_edges(graph).items():
        style = ", color=red, penwidth=2" if (source, target) in upward else ""
        lines.append(f'  "{source}" -> "{target}" [label="{len(links)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_text(graph: Graph, with_modules: bool = False) -> str:
    """The layers, the package-level edges (with import counts) and, optionally, modules."""
    lines = ["Layers, bottom first (a component may import its own layer and those below):"]
    for i, (layer, names) in enumerate(LAYERS):
        lines.append(f"  {i:2d} {layer:10s} {', '.join(names)}")
    lines.append("")
    lines.append("Package imports (importer -> imported: number of imports):")
    by_source: dict[str, list[str]] = defaultdict(list)
    for (source, target), links in package_edges(graph).items():
        by_source[source].append(f"{target} ({len(links)})")
    for source, targets in sorted(by_source.items()):
        lines.append(f"  {source} -> {', '.join(targets)}")
    if with_modules:
        lines.append("")
        lines.append("Module imports:")
        for found in sorted(graph.imports, key=lambda f: (f.source, f.target, f.line)):
            lines.append(f"  {found.describe()}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the graph and its problems; exit 1 when there is any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dot", type=Path, help="also write the package graph as DOT here")
    parser.add_argument("--modules", action="store_true", help="also list module imports")
    args = parser.parse_args(argv)
    graph = build_graph()
    print(to_text(graph, with_modules=args.modules), end="")
    if args.dot:
        args.dot.write_text(to_dot(graph), encoding="utf-8")
        print(f"\nwrote {args.dot}")
    found = problems(graph)
    print(
        f"\n{len(graph.modules)} modules, {len(graph.imports)} imports; "
        f"{len(module_cycles(graph))} module cycles, {len(package_cycles(graph))} package "
        f"cycles, {len(upward_imports(graph))} upward imports"
    )
    for message in found:
        print(f"\n{message}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
