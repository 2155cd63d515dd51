"""The package's layering, read from the source: an AST walk over every import in src/candlewise.

Why: the rules (no cycle, no upward import, no I/O library in the core, no private names
across modules) keep the trading rules in one place and the adapters at the edge; a test
makes a regression fail the build instead of waiting for the next dependency-graph review.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "candlewise"
SRC = Path(__file__).resolve().parent.parent / "src" / PACKAGE

# The layer order, low to high: a module may import its own layer or a lower one.
# Packages on one line share a layer (they may import each other, but never in a cycle).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("config", "system"),
    ("features", "models", "risk"),
    ("signals",),
    ("trading", "learning"),
    ("evaluation",),
    ("store",),
    ("market", "alerts"),
    ("training",),
    ("engine",),
    ("app",),
    ("backtest", "deployment"),
    ("monitoring",),
    ("dashboard", "cli"),
)
ROOT_LAYER = len(LAYERS)  # candlewise/__init__.py: may import anything, imported by nothing

CORE_PACKAGES = ("core", "features", "signals", "learning", "risk", "trading")
FORBIDDEN_IN_CORE = ("sqlalchemy", "ccxt", "websockets", "streamlit", "rich", "typer")
ROOT_ALLOWED = {"__init__.py", "py.typed"}

# Private names of library objects the code reaches on purpose, as written in the source
# (`obj._attr` where obj is a library module or a library base class, not one of ours).
THIRD_PARTY_PRIVATES = {
    "os._exit",  # a forked child leaves without the interpreter's teardown
    "torch._foreach_add_",  # the fused optimizer step (models/fused_adamw.py)
    "torch._fused_adamw_",
    "self._open",  # logging.FileHandler's opener, which its subclasses call
}
# A named tuple's documented API: the underscore only keeps it apart from the field names.
NAMED_TUPLE_API = {"_asdict", "_fields", "_make", "_replace"}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a candlewise module or an external top name."""

    source: str  # importing module, e.g. "candlewise.market.live_feed"
    target: str  # imported module ("candlewise.market.feed_plan") or external package ("ccxt")
    line: int
    names: tuple[str, ...]  # the names of a `from x import a, b`


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


@cache
def _tree(module: str) -> ast.Module:
    path = _modules()[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def _imports(module: str) -> tuple[Import, ...]:
    """Every import in the module, function-local ones included; `from pkg import mod` counts
    as an import of the submodule pkg.mod."""
    found: list[Import] = []
    known = _modules()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name if alias.name in known else alias.name.split(".")[0]
                found.append(Import(module, target, node.lineno, ()))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, node)
            names = tuple(a.name for a in node.names)
            if base.split(".")[0] != PACKAGE:
                found.append(Import(module, base.split(".")[0], node.lineno, names))
                continue
            found.append(Import(module, base, node.lineno, names))
            found.extend(
                Import(module, f"{base}.{n}", node.lineno, ())
                for n in names
                if f"{base}.{n}" in known
            )
    return tuple(found)


def _internal_edges(module: str) -> set[str]:
    return {i.target for i in _imports(module) if i.target in _modules() and i.target != module}


def _rel(module: str) -> str:
    return str(_modules()[module].relative_to(SRC.parent.parent))


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return ROOT_LAYER
    for index, packages in enumerate(LAYERS):
        if parts[1] in packages:
            return index
    raise AssertionError(
        f"{_rel(module)}: package candlewise.{parts[1]} has no layer; add it to LAYERS "
        "in tests/test_layers.py"
    )


def _layer_label(index: int) -> str:
    return "the package root" if index == ROOT_LAYER else "/".join(LAYERS[index])


def _graph_edges(module: str) -> list[str]:
    # A module importing its own package's __init__ (for its re-exports) is not a cycle.
    return sorted(
        t for t in _internal_edges(module) if not (_is_package(t) and module.startswith(t + "."))
    )


def _cycles() -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a
    closed path through its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in _graph_edges(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(_modules()):
        if module not in index:
            visit(module)
    return [_closed_path(c) for c in components]


def _closed_path(component: list[str]) -> list[str]:
    """One path from the component's first module back to itself, inside the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in _graph_edges(module):
            if target == start:
                return [*paths[module], start]
            if target in members and target not in paths:
                paths[target] = [*paths[module], target]
                queue.append(target)
    return component


def test_every_package_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_no_import_cycle() -> None:
    cycles = _cycles()
    assert not cycles, "import cycles:\n" + "\n".join(
        " -> ".join(_rel(m) for m in cycle)
        + ": move the shared type into a module both can import, so the imports point one way"
        for cycle in cycles
    )


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    problems = []
    for module in sorted(_modules()):
        own = _layer(module)
        for imp in _imports(module):
            if imp.target not in _modules() or imp.target == PACKAGE:
                continue
            if (target_layer := _layer(imp.target)) > own:
                problems.append(
                    f"{_rel(module)}:{imp.line} imports {imp.target} "
                    f"({_layer_label(own)} -> higher layer {_layer_label(target_layer)}); move "
                    "what it needs down to its layer or lower, or pass it in from the caller"
                )
    assert not problems, "upward imports:\n" + "\n".join(problems)


def _external_closure(module: str) -> dict[str, list[str]]:
    """External top-level packages the module imports, directly or through candlewise
    modules, each with one import chain that reaches it."""
    chains: dict[str, list[str]] = {}
    seen = {module}
    queue = [[module]]
    while queue:
        chain = queue.pop(0)
        for imp in _imports(chain[-1]):
            if imp.target in _modules():
                if imp.target not in seen:
                    seen.add(imp.target)
                    queue.append([*chain, imp.target])
            elif not imp.target.startswith(PACKAGE):
                chains.setdefault(imp.target, chain)
    return chains


def test_core_packages_import_no_io_library() -> None:
    problems = []
    for module in sorted(_modules()):
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in CORE_PACKAGES:
            continue
        for library, chain in _external_closure(module).items():
            if library in FORBIDDEN_IN_CORE:
                via = " -> ".join(_rel(m) for m in chain)
                problems.append(
                    f"{_rel(module)} imports {library} (via {via}); the core packages "
                    f"({', '.join(CORE_PACKAGES)}) hold rules and value types only: move the "
                    "I/O into an adapter in a higher layer and pass the result in"
                )
    assert not problems, "\n".join(problems)


def test_nothing_loose_at_the_package_root() -> None:
    loose = sorted(p.name for p in SRC.iterdir() if p.is_file() and p.name not in ROOT_ALLOWED)
    assert not loose, (
        f"src/{PACKAGE}/ holds {loose}: put each module into the subpackage of its concept "
        "(and its layer in tests/test_layers.py)"
    )


def _private_imports(module: str) -> list[str]:
    return [
        f"{_rel(module)}:{imp.line} `from {imp.target} import {name}`; give {imp.target} a "
        "public name (or method) for what it offers"
        for imp in _imports(module)
        if imp.target.startswith(PACKAGE)
        for name in imp.names
        if name.startswith("_") and not name.startswith("__")
    ]


def _own_attributes(module: str) -> set[str]:
    """Attributes the module's own classes define: methods, class fields and self.x targets."""
    names: set[str] = set()
    for cls in ast.walk(_tree(module)):
        if not isinstance(cls, ast.ClassDef):
            continue
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return names


def _private_attributes(module: str) -> list[str]:
    own = _own_attributes(module)
    nodes = sorted(
        (n for n in ast.walk(_tree(module)) if isinstance(n, ast.Attribute)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    return [
        f"{_rel(module)}:{node.lineno} reaches `{ast.unparse(node)}`, and no class of this "
        f"module defines `{node.attr}`; give its owner a small public method or property "
        "instead"
        for node in nodes
        if node.attr.startswith("_")
        and not node.attr.startswith("__")
        and node.attr not in own
        and node.attr not in NAMED_TUPLE_API
        and ast.unparse(node) not in THIRD_PARTY_PRIVATES
    ]


def test_no_private_names_across_modules() -> None:
    problems = []
    for module in sorted(_modules()):
        problems += _private_imports(module) + _private_attributes(module)
    assert not problems, "private names reached across modules:\n" + "\n".join(problems)
