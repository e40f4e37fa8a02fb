"""The readers' optional packages (the ``formats`` extra), imported when a file needs one."""

from __future__ import annotations

import importlib
from types import ModuleType

from rag.errors import LoaderError

FORMATS_HINT = "pip install 'rag-zh[formats]'"


def optional_module(module: str, package: str, name: str, kind: str) -> ModuleType:
    """``module`` imported, or ``LoaderError`` saying that reading ``name`` (a ``kind`` file) needs ``package``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LoaderError("file.needs_package", name=name, kind=kind, package=package, hint=FORMATS_HINT) from exc
