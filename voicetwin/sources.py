"""The package's own modules and the imports between them, read from the source files (nothing is imported).

Used where correctness depends on which code a result came from: the dubbing cache keys a rendered line by the
source of every module its rendering can reach (``fingerprint``), so editing any of them re-renders the line; and
the layout's rule that imports never form a cycle is checked on ``import_graph``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "voicetwin"
ROOT = Path(__file__).resolve().parent


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of module ``name`` (``voicetwin.audio.io``), a package's ``__init__.py``, or None.
    ``root``: the package's folder (default: this installed package)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = Path(root).joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def all_modules(root: Path = ROOT) -> list[str]:
    """Every module of the package, dotted, sorted."""
    names = []
    for path in sorted(Path(root).rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [PACKAGE, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


@functools.lru_cache(maxsize=None)
def _imports_of(name: str, root: Path, mtime: float) -> frozenset[str]:
    path = module_file(name, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):  # module level and inside functions alike: lazy imports are dependencies too
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            where = _resolve(name, is_package, node.level, node.module)
            found.add(where)
            for alias in node.names:  # ``from . import model``: a submodule
                if module_file(f"{where}.{alias.name}", root) is not None:
                    found.add(f"{where}.{alias.name}")
    own = set()
    for target in found:
        if target.split(".")[0] != PACKAGE:
            continue
        parts = target.split(".")
        for i in range(2, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            if module_file(".".join(parts[:i]), root) is not None:
                own.add(".".join(parts[:i]))
    parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return frozenset(own - parents - {name})  # a module's own packages are loaded before it, never because of it


def imports_of(name: str, root: Path = ROOT) -> frozenset[str]:
    """The package's own modules that module ``name`` imports (at module level or inside functions)."""
    path = module_file(name, root)
    if path is None:
        raise ValueError(f"{name} is not a module of {PACKAGE}")
    return _imports_of(name, Path(root), path.stat().st_mtime_ns)


def import_graph(root: Path = ROOT) -> dict[str, frozenset[str]]:
    """``{module: modules it imports}`` over the whole package."""
    return {name: imports_of(name, root) for name in all_modules(root)}


def closure(*modules: str, root: Path = ROOT) -> list[str]:
    """``modules`` and every module of the package they can reach through imports, sorted."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imports_of(name, root))
    return sorted(seen)


def fingerprint(*modules: str, root: Path = ROOT) -> str:
    """SHA-256 over the source of ``closure(*modules)``: changes when any module on those import paths changes."""
    h = hashlib.sha256()
    for name in closure(*modules, root=root):
        h.update(name.encode() + b"\0" + module_file(name, root).read_bytes() + b"\0")
    return h.hexdigest()


def find_cycle(graph: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
