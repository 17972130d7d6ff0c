"""Imports point one way: no cycle and no upward import between ehrqa's layers, lazy
imports (inside functions, under TYPE_CHECKING, registry entries) included.

The analysis is scripts/import_graph.py's (``python scripts/import_graph.py`` draws the
graph); the layer order is its ``LAYERS``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from textwrap import dedent
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def graph(script: ModuleType) -> Any:
    return script.build_graph()


def _report(found: list[str]) -> str:
    return "\n\n".join(found)


def test_every_package_has_a_layer(script: ModuleType, graph: Any) -> None:
    assert not script.unplaced(graph), (
        f"add these to LAYERS in scripts/import_graph.py: {script.unplaced(graph)}"
    )


def test_no_module_imports_itself_back(script: ModuleType, graph: Any) -> None:
    cycles = [
        f"{' <-> '.join(members)}:\n" + "\n".join(f"  {link.describe()}" for link in links)
        for members, links in script.module_cycles(graph)
    ]
    assert not cycles, "import cycles between modules:\n" + _report(cycles)


def test_no_package_cycle(script: ModuleType, graph: Any) -> None:
    cycles = [
        f"{' <-> '.join(members)}:\n" + "\n".join(f"  {link.describe()}" for link in links)
        for members, links in script.package_cycles(graph)
    ]
    assert not cycles, "import cycles between packages:\n" + _report(cycles)


def test_no_upward_import(script: ModuleType, graph: Any) -> None:
    upward = [link.describe() for link in script.upward_imports(graph)]
    assert not upward, "imports of a higher layer (see LAYERS):\n" + "\n".join(upward)


def test_the_product_imports_nothing_of_the_lab(script: ModuleType, graph: Any) -> None:
    lab = {"lab", "lab.data", "lab.train", "lab.eval"}
    shells_over_the_lab = {"cli"}
    leaks = [
        link.describe()
        for link in graph.imports
        if script.component(link.target) in lab
        and script.component(link.source) not in lab | shells_over_the_lab
    ]
    assert not leaks, "product modules importing the lab:\n" + "\n".join(leaks)


def test_the_script_exits_zero_on_the_tree(
    script: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert script.main([]) == 0
    assert "0 module cycles, 0 package cycles, 0 upward imports" in capsys.readouterr().out


# --- the analysis finds what it must, on a small tree -----------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "ehrqa" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    return _write(
        tmp_path,
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "core/errors.py": "class EhrqaError(Exception): ...\n",
            "select/__init__.py": "from ehrqa.select.rank import rank\n",
            "select/rank.py": """\
                from ehrqa.core.errors import EhrqaError


                def rank():
                    from ehrqa.lab.train.fit import fit  # lazy, and upward

                    return fit, EhrqaError
                """,
            "lab/__init__.py": "",
            "lab/train/__init__.py": "",
            "lab/train/fit.py": """\
                from typing import TYPE_CHECKING

                from ehrqa.select import rank

                if TYPE_CHECKING:
                    from ...answer import compose

                def fit():
                    return rank
                """,
            "answer/__init__.py": "",
            "answer/compose.py": """\
                REGISTRY = {"x": "ehrqa.lab.train.fit:fit"}
                """,
        },
    )


def test_a_lazy_cycle_is_found_with_file_and_line(script: ModuleType, tangled: Path) -> None:
    graph = script.build_graph(tangled)
    cycles = script.module_cycles(graph)
    assert [members for members, _ in cycles] == [["ehrqa.lab.train.fit", "ehrqa.select.rank"]]
    links = {(link.source, link.target, link.line, link.kind) for link in cycles[0][1]}
    # "from ehrqa.select import rank" is the module rank.py, re-exported by the package.
    assert links == {
        ("ehrqa.select.rank", "ehrqa.lab.train.fit", 5, "lazy"),
        ("ehrqa.lab.train.fit", "ehrqa.select.rank", 3, "module"),
    }
    assert "select/rank.py:5: ehrqa.select.rank -> ehrqa.lab.train.fit (lazy)" in "\n".join(
        script.problems(graph)
    )


def test_upward_imports_of_every_kind_are_found(script: ModuleType, tangled: Path) -> None:
    graph = script.build_graph(tangled)
    upward = {(link.source, link.target, link.kind) for link in script.upward_imports(graph)}
    assert upward == {
        ("ehrqa.select.rank", "ehrqa.lab.train.fit", "lazy"),
        ("ehrqa.answer.compose", "ehrqa.lab.train.fit", "registry"),
    }
    typing_only = [link for link in graph.imports if link.kind == "typing"]
    # A relative import under TYPE_CHECKING, resolved to the package it names.
    assert [(link.source, link.target) for link in typing_only] == [
        ("ehrqa.lab.train.fit", "ehrqa.answer.compose")
    ]
    assert script.package_cycles(graph)


def test_a_package_without_a_layer_is_reported(script: ModuleType, tmp_path: Path) -> None:
    graph = script.build_graph(_write(tmp_path, {"__init__.py": "", "newarea/x.py": ""}))
    assert script.unplaced(graph) == ["newarea"]
    assert "'newarea' has no layer" in script.problems(graph)[0]


def test_the_dot_graph_marks_upward_edges(script: ModuleType, tangled: Path) -> None:
    dot = script.to_dot(script.build_graph(tangled))
    assert dot.startswith("digraph ehrqa {")
    assert '"select" -> "lab.train" [label="1", color=red, penwidth=2];' in dot
    assert '"select" -> "core" [label="1"];' in dot
