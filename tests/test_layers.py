"""The layer contract is a check that can fail, not a wish (``make lint`` and .ci/run run it too).

* The import-linter contract in pyproject.toml (``[tool.importlinter]``): stages import one way, and the
  storage backends do not import each other. A copy of the package with one bad import must break it.
* No module of rag/ or ui/ uses another module's ``_private`` names: neither ``from m import _x`` nor
  ``m._x`` on an imported module.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.private_names import private_uses

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd), "HOME": str(cwd)}
    return subprocess.run([*LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.subprocess  # import-linter in a new interpreter
def test_the_import_contract_is_kept():
    run = _lint(ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in run.stdout


@pytest.mark.subprocess  # import-linter in a new interpreter
def test_the_import_contract_fails_on_an_import_that_runs_back_up(tmp_path):
    for part in ("rag", "ui"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("*.safetensors", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    text = tmp_path / "rag" / "text" / "unicode.py"
    text.write_text(text.read_text(encoding="utf-8") + "\nfrom rag.pipeline import RAG  # noqa: E402,F401\n",
                    encoding="utf-8")
    run = _lint(tmp_path)
    assert run.returncode != 0
    assert "rag.text is not allowed to import rag.pipeline" in run.stdout


@pytest.mark.slow
def test_no_module_uses_another_modules_private_names():
    found = [f"{path.relative_to(ROOT)}:{line}: {what}"
             for part in ("rag", "ui") for path in sorted((ROOT / part).rglob("*.py"))
             for line, what in private_uses(path.read_text(encoding="utf-8"), _module_of(path))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", [
    "from rag.storage.faiss.snapshot import _remove_stale\n",
    "from rag.storage.milvus import collection\ncollection._OPEN.clear()\n",
    "import rag.filters as f\nf._passes(1, {})\n",
])
def test_the_private_name_check_catches(source):
    assert private_uses(source, "rag.pipeline")


@pytest.mark.parametrize("source", [
    "from rag.filters import matching_docs\n",
    "from __future__ import annotations\nclass A:\n    def _x(self): return self._y\n",
    "import rag.filters\nrag.filters.__name__\n",
])
def test_the_private_name_check_allows(source):
    assert not private_uses(source, "rag.pipeline")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
