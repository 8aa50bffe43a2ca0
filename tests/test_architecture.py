"""The shape of the package: imports only run down the layers, no import cycles, no module over 400 lines.

The imports are read from the source with `ast` (function-level imports included; imports under
`if TYPE_CHECKING:` are annotations, not dependencies, and are skipped).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reid"
MAX_LINES = 400

# Bottom to top. A module may import its own layer and the layers below, never one above.
LAYERS = [
    ("reid.errors", "reid.io.atomic", "reid.io.fingerprint", "reid.gemm"),  # primitives: errors, atomic writes,
    # hashes, the float32 product kernel
    ("reid.data",),
    ("reid.io",),
    ("reid.config", "reid.config_fields", "reid.test_time"),
    ("reid.models", "reid.losses", "reid.evaluation"),
    ("reid.inference", "reid.search"),  # search: faiss gallery indexes
    ("reid.tracking",),  # DeepSORT runner, metrics, from-MOT data: above the extractor it feeds on
    ("reid.engine",),
    ("reid.tuning",),  # hyperparameter search on top of the trainer
    ("reid.cli", "reid.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int | None:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def imports_of(module: str) -> set[str]:
    """The reid modules `module` imports (a name imported from a package counts as its submodule if one exists)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != "reid" and layer(m) is None] == []


def test_imports_only_run_down_the_layers():
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in GRAPH.items()
        if module != "reid"
        for target in sorted(targets)
        if layer(target) > layer(module)
    ]
    assert upward == []


@pytest.mark.parametrize(
    "lower", ["reid.models", "reid.inference", "reid.data", "reid.losses", "reid.evaluation", "reid.io"]
)
def test_lower_layers_never_import_the_engine_or_the_cli(lower):
    bad = [
        (module, target)
        for module, targets in GRAPH.items()
        if module == lower or module.startswith(lower + ".")
        for target in targets
        if target.startswith(("reid.engine", "reid.cli"))
    ]
    assert bad == []


def test_there_are_no_import_cycles():
    """Tarjan's strongly connected components; a package importing its own submodules is not a cycle
    unless a submodule also imports the package back."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
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

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The helpers above on a known case: base.py's lazy import of integrity would have been found."""
    assert "reid.data.datasets.integrity" in GRAPH["reid.data.datasets.base"]
    assert "reid.data.datasets.base" not in GRAPH["reid.data.datasets.integrity"]  # annotations only
    assert layer("reid.engine.trainer") > layer("reid.inference.pipeline") > layer("reid.evaluation.distance")


def test_no_module_is_over_the_size_bound():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
