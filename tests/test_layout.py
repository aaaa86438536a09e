"""The package's layout: no import cycle, no import back up the flow, commands where named.

The imports are read with `ast` from the source files (nothing is imported), so an import made
inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from thyrovid.cli import COMMANDS

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "thyrovid"

# The stages, lowest first. A module may import, at module level, only modules of its own stage
# or of a lower one. The first name of a module inside thyrovid (a package or a module) names
# its stage.
STAGES: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "atomic", "options"),  # know nothing of thyrovid
    ("io", "stats", "models", "csv_input", "config", "distributed", "reliability"),  # know no stage
    ("runs",),  # the one reader of a run folder and a work folder
    ("cohort",),
    ("synth",),  # writes a cohort
    ("clips",),  # extract: cohort.csv -> clips
    ("training",),
    ("explain",),  # Grad-CAM of a run's network
    ("inference",),  # predict, export (with Grad-CAM)
    ("report",),  # tables, figures, the HTML page: reads what the stages wrote
    ("evaluation",),  # evaluate, compare (its tables through report), stats
    ("readers",),
    ("serve", "demo"),
    ("cli", "__main__"),
)
STAGE_OF = {name: i for i, names in enumerate(STAGES) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported thyrovid module, line, at module level) for every import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path)
    is_package = path.name == "__init__.py"
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
            )
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    anchor = here.split(".") if is_package else here.split(".")[:-1]
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    out.append((sub if sub in known else base, child.lineno, top))
            visit(child, inner)

    visit(tree, True)
    return [(m, line, top) for m, line, top in out if m in known and m != here]


def _stage(module: str) -> int:
    parts = module.split(".")
    return STAGE_OF[parts[1] if len(parts) > 1 else "__init__"]


def _graph():
    modules = _modules()
    known = set(modules)
    return modules, {m: _imports(p, known) for m, p in modules.items()}


def test_every_module_has_a_stage():
    modules, _ = _graph()
    unplaced = sorted(m for m in modules if (m.split(".") + ["__init__"])[1] not in STAGE_OF)
    assert not unplaced, f"add these to STAGES: {unplaced}"


def test_no_module_level_import_runs_back_up_the_flow():
    modules, graph = _graph()
    upward = [
        f"{modules[m].relative_to(SRC)}:{line}: {m} imports {target}"
        for m, edges in graph.items()
        for target, line, top in edges
        if top and _stage(target) > _stage(m)
    ]
    assert not upward, "imports from a lower stage to a higher one:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules():
    """Every import counts here, those inside functions too."""
    _, graph = _graph()
    edges = {m: sorted({t for t, _, _ in targets}) for m, targets in graph.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            walk(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The two checks above are not vacuous: a planted cycle and upward import are found."""
    pkg = tmp_path / "thyrovid"
    (pkg / "clips").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "clips" / "__init__.py").write_text("")
    (pkg / "clips" / "a.py").write_text("from thyrovid.training.b import x\n")
    (pkg / "training").mkdir()
    (pkg / "training" / "__init__.py").write_text("")
    (pkg / "training" / "b.py").write_text("def f():\n    from thyrovid.clips import a\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="thyrovid.clips.a imports thyrovid.training.b"):
        test_no_module_level_import_runs_back_up_the_flow()
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle_between_modules()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_lives_in_a_module_named_after_it(command):
    """`thyrovid X` is thyrovid/X.py or thyrovid/<package>/X.py."""
    module = COMMANDS[command][0]
    parts = module.split(".")
    assert parts[0] == "thyrovid" and parts[-1] == command and len(parts) in (2, 3), module
    path = PACKAGE.joinpath(*parts[1:]).with_suffix(".py")
    assert path.is_file(), f"{command}: {path} not found"
    tree = ast.parse(path.read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"add_arguments", "run"} <= defined, f"{module} lacks add_arguments/run"


def test_test_files_have_unique_names():
    """tests/ has no __init__.py (importmode prepend): two test files of one name would clash."""
    tests = Path(__file__).resolve().parent
    names = [p.name for p in tests.rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert not list(tests.rglob("__init__.py"))
