"""rag.import_guard: a module left out of one import in the importing thread only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

PROBE = r"""
import json, sys, threading
from rag import import_guard
name = "colorsys"  # a small stdlib module nothing here has imported
assert name not in sys.modules
out = {}
with import_guard.without([name]):
    with import_guard.without(["wave"]):  # nested: both left out, then the outer one alone again
        out["nested"] = sorted(import_guard.blocked_here())
    out["outer"] = sorted(import_guard.blocked_here())
    try:
        import colorsys
        out["here"] = "imported"
    except ModuleNotFoundError as exc:
        out["here"] = str(exc)
    seen = {}
    t = threading.Thread(target=lambda: seen.update(mod=__import__(name).__name__))
    t.start(); t.join()
    out["other_thread"] = seen.get("mod")
out["after"] = sorted(import_guard.blocked_here())
import colorsys
out["later"] = colorsys.__name__
out["finders"] = sum(type(f).__name__ == "_Guard" for f in sys.meta_path)
with import_guard.without(["wave"]):
    pass
out["finders_again"] = sum(type(f).__name__ == "_Guard" for f in sys.meta_path)
print(json.dumps(out))
"""


def test_a_module_is_left_out_in_the_importing_thread_only():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["nested"] == ["colorsys", "wave"] and out["outer"] == ["colorsys"] and out["after"] == []
    assert "left out of this import" in out["here"]
    assert out["other_thread"] == "colorsys" and out["later"] == "colorsys"
    assert out["finders"] == 1 and out["finders_again"] == 1  # installed once
