"""The `rag` console script run as a user runs it: a subprocess, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

RAG_BIN = Path(sys.executable).parent / "rag"


def rag(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([str(RAG_BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
