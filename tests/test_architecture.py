"""The shape of the code, measured from its source: data flows one way (frontend -> passes ->
backends -> artifact), passes/ never imports a backend, no import cycle anywhere in tvmopt/ (lazy
imports inside functions count), and target kinds are decided inside tvmopt/backends/ only,
apart from at most three places that say why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tvmopt
from tvmopt.backends import BACKENDS

PACKAGE = Path(tvmopt.__file__).parent
ROOT = PACKAGE.parent
ALLOWED_KIND_BRANCHES = 3
# calls and attributes that decide by target kind, whatever their spelling
KIND_TESTS = {"is_cuda", "is_vta", "is_llvm"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name: str) -> bool:
    return (ROOT / name.replace(".", "/") / "__init__.py").is_file()


def _exists(name: str) -> bool:
    return _is_package(name) or (ROOT / (name.replace(".", "/") + ".py")).is_file()


def _imported(node, module: str, is_package: bool) -> set[str]:
    """The tvmopt modules an import statement loads: `from pkg import submodule` loads the
    submodule (its package is already loading, or loads first without a cycle)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.startswith("tvmopt")}
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if not source.startswith("tvmopt"):
        return set()
    submodules = {f"{source}.{alias.name}" for alias in node.names}
    found = {name for name in submodules if _exists(name)}
    return found if len(found) == len(submodules) else found | {source}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "deploy/cpp" in str(path):
            continue
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _imported(node, module, path.name == "__init__.py")
        graph[module] = {edge for edge in edges if edge != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child) :] + [child]
            if child not in state and (found := visit(child)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_import_graph_finds_cycles_and_edges():
    """The checks below can fail: a made-up cycle is found, and real edges are seen."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    assert "tvmopt.passes.pipeline" in graph["tvmopt.backends.llvm.pipeline"]
    assert "tvmopt.backends.llvm.kernel_int8_gemm" in graph["tvmopt.backends.cuda.rule_int8_gemm"]


def test_passes_never_import_a_backend():
    graph = import_graph()
    offending = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items() if module.startswith("tvmopt.passes")
        for target in targets if target.startswith("tvmopt.backends")
    )  # fmt: skip
    assert not offending, offending


def test_no_import_cycle_in_tvmopt():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def _names_a_kind(node) -> bool:
    return isinstance(node, ast.Constant) and node.value in BACKENDS


def _is_kind_branch(node) -> bool:
    """A comparison with a backend's name (kind == "cuda", "vta" in keys), or a call of a
    kind test (is_cuda(...)), or a read of a target's kind (.kind.name)."""
    if isinstance(node, ast.Compare):
        return any(_names_a_kind(operand) for operand in [node.left, *node.comparators])
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in KIND_TESTS
    return (
        isinstance(node, ast.Attribute) and node.attr == "name"
        and isinstance(node.value, ast.Attribute) and node.value.attr == "kind"
    )  # fmt: skip


def kind_branches(paths) -> list[str]:
    """path:line of each kind branch in the files `paths`."""
    return [f"{path}:{node.lineno}" for path in paths
            for node in ast.walk(ast.parse(path.read_text())) if _is_kind_branch(node)]  # fmt: skip


def _outside_backends():
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if "backends" not in path.relative_to(PACKAGE).parts[:1]]  # fmt: skip


def test_kind_branches_are_counted(tmp_path):
    """The counter sees each spelling of a kind branch."""
    sample = tmp_path / "sample.py"
    sample.write_text('a = kind == "cuda"\nb = "vta" in keys\nc = is_cuda(t)\nd = t.kind.name\n'
                      'e = dtype.kind == "f"\n')  # fmt: skip
    assert len(kind_branches([sample])) == 4


def test_at_most_three_kind_branches_outside_backends():
    found = kind_branches(_outside_backends())
    assert len(found) <= ALLOWED_KIND_BRANCHES, found
    for place in found:  # each says why it is there
        path, line = place.rsplit(":", 1)
        text = "\n".join(Path(path).read_text().splitlines()[int(line) - 4 : int(line) + 1])
        assert "kind branch outside tvmopt/backends" in text, place


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_backend_is_one_folder(name):
    folder = PACKAGE / "backends" / name
    assert (folder / "__init__.py").is_file()
    assert BACKENDS[name].__module__.startswith(f"tvmopt.backends.{name}.")
