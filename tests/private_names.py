"""Where a module uses another module's ``_private`` names (``python -m tests.private_names`` checks rag/
and ui/; ``make lint`` runs it). A name is private to the module that defines it; a package's own
submodules may share its privates (``rag.x.a`` using ``rag.x._y`` is inside ``rag.x``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _inside(module: str, owner: str) -> bool:
    """``module`` is ``owner`` or one of its submodules (a package may use its own privates)."""
    return module == owner or module.startswith(owner + ".")


def private_uses(source: str, module: str) -> list[tuple[int, str]]:
    """(line, what) for each use in ``source`` (the text of ``module``) of another rag/ui module's private name."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # a local name bound to a rag/ui module -> that module
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] in ("rag", "ui"):
            for a in node.names:
                if _private(a.name) and not _inside(module, node.module):
                    found.append((node.lineno, f"from {node.module} import {a.name}"))
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in ("rag", "ui"):
                    aliases[a.asname or a.name] = a.name if a.asname else a.name.split(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = _dotted(node.value, aliases)
            if owner is not None and not _inside(module, owner):
                found.append((node.lineno, f"{owner}.{node.attr}"))
    return sorted(set(found))


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The module an expression names (``collection`` → ``rag.storage.milvus.collection``), else None."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base is not None else None
    return None


def main(roots: list[str]) -> int:
    bad = 0
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            parts = list(path.with_suffix("").parts)
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for line, what in private_uses(path.read_text(encoding="utf-8"), module):
                print(f"{path}:{line}: uses another module's private name: {what}")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["rag", "ui"]))
