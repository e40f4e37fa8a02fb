"""A function-level import in rag/ or ui/ says why it is not at the top of its module.

Imports inside functions are kept only where they keep a heavy or optional dependency (torch,
OpenVINO, FAISS, LangChain, Gradio, ...) or a module that pulls one in out of import time. Each one
carries its reason on its line, ``# noqa: PLC0415 - <reason>``; ruff's PLC0415 alone accepts a bare
``# noqa: PLC0415``, so this test is what asks for the reason.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "ui")
REASON = re.compile(r"#\s*noqa:\s*(?:[A-Z]+\d+\s*,\s*)*PLC0415(?:\s*,\s*[A-Z]+\d+)*\s+-\s+(\S.*?)\s*$")


def function_level_imports(source: str) -> list[tuple[int, str | None]]:
    """(line, reason or None) of every import inside a function or method of ``source``."""
    lines = source.splitlines()
    found: dict[int, str | None] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                m = REASON.search(lines[inner.lineno - 1])
                found[inner.lineno] = m.group(1) if m else None
    return sorted(found.items())


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_function_level_import_says_why():
    missing = [f"{path.relative_to(ROOT)}:{line}: {path.read_text(encoding='utf-8').splitlines()[line - 1].strip()}"
               for path in _sources()
               for line, reason in function_level_imports(path.read_text(encoding="utf-8")) if reason is None]
    assert not missing, ("a function-level import without '# noqa: PLC0415 - <reason>' (move it to the top of "
                         "its module, or say what it keeps out of import time):\n" + "\n".join(missing))


def test_the_reasons_are_not_one_boilerplate():
    reasons = [reason for path in _sources()
               for _, reason in function_level_imports(path.read_text(encoding="utf-8")) if reason]
    assert len(reasons) >= 10  # the scan found the package's lazy imports at all
    (common, times), = Counter(reasons).most_common(1)
    assert times <= len(reasons) // 5, f"{times} of {len(reasons)} lazy imports give the same reason: {common!r}"
    assert len(set(reasons)) >= len(reasons) // 2, "most lazy imports repeat another's reason"


def test_the_scan_finds_imports_without_a_reason_at_any_depth():
    source = '''
import json  # noqa: PLC0415
from typing import Any


def plain():
    import torch  # noqa: PLC0415 - torch only here
    import faiss  # noqa: F401, PLC0415
    from x import y  # noqa: PLC0415 -
    return torch, faiss, y


class Model:
    import os  # a class body is not a function

    def method(self):
        if self:
            from rag.pipeline import RAG  # noqa: PLC0415

        def inner():
            from z import (  # noqa: PLC0415 - optional extra z
                w,
            )
            return w

        return RAG, inner


async def later():
    import gradio  # noqa: PLC0415
    import sklearn  # noqa: F401, PLC0415 - scikit-learn, checked for
'''
    assert function_level_imports(source) == [
        (7, "torch only here"), (8, None), (9, None), (18, None), (21, "optional extra z"), (30, None),
        (31, "scikit-learn, checked for")]
