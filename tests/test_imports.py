"""The package's import graph: explicit layers, no import upward, no circle, host private names only in ``_compat``.

The graph is read from the source (every ``import`` statement, also the ones inside functions), so a lazy import
counts like any other. Layers, bottom to top (a sub-package imports only from layers below it, never from another
sub-package of its own layer):

0. ``_checks``, ``_state``, ``_typing``, ``_compat`` and the root ``__init__`` (only ``__version__``): argument
   checks, model guards, aliases, host private names;
1. ``data``, ``models``: embedded data, batches and loaders, reference models;
2. ``augment``, ``attacks``, ``visualize``: Kornia augmentations, torchattacks attacks, feature visualization;
3. ``attr``: Captum attributions (SAM and WSAM use ``augment``'s StyleAugment);
4. ``train``: the training loop (uses ``attacks`` and ``data``);
5. ``metrics``: evaluation over data sets (uses ``attr``, ``attacks`` and ``train``'s ``train_classifier``);
6. ``demo``, then ``cli``, then ``__main__``: the application and its entry points.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "captum_wsam"
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"_checks", "_state", "_typing", "_compat", "__init__"}),
    frozenset({"data", "models"}),
    frozenset({"augment", "attacks", "visualize"}),
    frozenset({"attr"}),
    frozenset({"train"}),
    frozenset({"metrics"}),
    frozenset({"demo"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
#: deliberate exceptions, each with its reason: (importing module, imported module)
ALLOWED = {
    # deprecated names (prediction_instability, ema_update, selection_threshold) moved to train.functional; the
    # import runs only when an old name is looked up (module __getattr__), with a DeprecationWarning
    ("captum_wsam.attacks.functional", "captum_wsam.train"),
}
HOSTS = ("captum", "torchattacks", "kornia", "torch", "torchvision")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[str, ast.ImportFrom | ast.Import]]:
    """``(imported module, node)`` for every import statement of ``path`` (relative ones resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = [f"{target}.{alias.name}" for alias in node.names]
            inside = [s for s in submodules if target.startswith("captum_wsam") and is_module(s)]
            found += [(s, node) for s in inside] or [(target, node)]
    return found


def package_graph() -> dict[str, set[str]]:
    """Module -> imported package modules, with the implied import of each imported module's sub-package."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        source = module_name(path)
        for target, _ in imports_of(path):
            if not target.startswith("captum_wsam") or (source, ".".join(target.split(".")[:2])) in ALLOWED:
                continue
            graph[source].add(target)
            parts = target.split(".")
            for depth in range(2, len(parts)):  # importing a.b.c runs a.b's __init__ first (the root's is inert) ...
                parent = ".".join(parts[:depth])
                if not (source == parent or source.startswith(parent + ".")):  # ... unless it is already running
                    graph[source].add(parent)
        graph.setdefault(source, set())
    return graph


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(module: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit(module) in units)


def test_every_sub_package_has_a_layer() -> None:
    units = {unit(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units <= set().union(*LAYERS), f"give these a layer in LAYERS: {sorted(units - set().union(*LAYERS))}"


def test_no_import_upward_or_sideways_between_sub_packages() -> None:
    wrong = sorted(
        f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
        for source, targets in package_graph().items() for target in targets
        if unit(source) != unit(target) and layer(target) >= layer(source)
    )
    assert not wrong, "\n".join(wrong)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_find_cycles_finds_a_circle() -> None:  # the checker itself can fail
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    cycles = find_cycles(package_graph())
    assert not cycles, f"import circles: {cycles}"


def test_host_private_names_only_in_compat() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_compat.py":
            continue
        for target, node in imports_of(path):
            if target.split(".")[0] not in HOSTS:
                continue
            private_module = any(part.startswith("_") for part in target.split("."))
            private_names = isinstance(node, ast.ImportFrom) and any(a.name.startswith("_") for a in node.names)
            if private_module or private_names:
                wrong.append(f"{module_name(path)}: {ast.unparse(node)}")
    assert not wrong, "import these through captum_wsam._compat:\n" + "\n".join(sorted(set(wrong)))


@pytest.mark.parametrize(
    ("package", "absent"),
    [("captum_wsam.attr", ("torchattacks", "captum_wsam.train", "captum_wsam.attacks")),
     ("captum_wsam.data", ("torchattacks", "captum", "kornia", "captum_wsam.train"))],
)
def test_importing_a_package_loads_nothing_above_it(package: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {package}; print([m for m in {absent!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_attr_without_torchattacks_as_the_issue_states_it() -> None:
    code = "import captum_wsam.attr, sys; assert 'torchattacks' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_train_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PACKAGE / "train").glob("*.py")}
    assert max(sizes.values()) <= 400, sizes
