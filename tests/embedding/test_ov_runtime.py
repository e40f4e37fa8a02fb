"""OpenVINO as the project imports it (rag/embedding/ov_runtime.py): no usage telemetry (nothing written
under the home folder, no sender process), the converter left out of the first import and still there for
an export. Each case runs in a fresh interpreter, since the import is once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PROBE = r"""
import json, sys
from rag.embedding import ov_runtime
from rag.embedding.openvino import cache_root
ov = ov_runtime.runtime()
core = ov.Core()  # the runtime works
out = {"telemetry": repr(sys.modules.get("openvino_telemetry", "absent")),
       "converter_loaded": sys.modules.get("openvino.tools.ovc") is not None,
       "has_core": hasattr(ov, "Core"), "cpu": "CPU" in core.available_devices}
if sys.argv[1] == "convert":
    import torch
    net = torch.nn.Linear(3, 2).eval()
    with torch.inference_mode():
        model = ov_runtime.convert_model(net, example_input=torch.ones(1, 3))
    compiled = ov.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = torch.arange(3, dtype=torch.float32).reshape(1, 3)
    got = compiled(x.numpy())[0]
    out["max_diff"] = float(abs(got - net(x).detach().numpy()).max())
    out["telemetry_after"] = repr(sys.modules.get("openvino_telemetry", "absent"))
    out["converter_loaded_after"] = sys.modules.get("openvino.tools.ovc") is not None
print(json.dumps(out))
"""


def _probe(tmp_path: Path, mode: str) -> dict:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}  # telemetry's own opt-outs
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["home"] = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    return out


def test_the_runtime_imports_without_telemetry_or_converter(tmp_path):
    out = _probe(tmp_path, "runtime")
    assert out["has_core"] and out["cpu"]
    assert out["telemetry"] == "None"  # unimportable: OpenVINO's modules fall back to their stub
    assert not out["converter_loaded"]
    assert not [p for p in out["home"] if p.startswith("intel")]  # no client id, no consent file, no stats


@pytest.mark.slow
def test_an_export_still_converts_and_sends_nothing(tmp_path):
    out = _probe(tmp_path, "convert")
    assert out["max_diff"] < 1e-5
    assert out["converter_loaded_after"] and out["telemetry_after"] == "None"
    assert not [p for p in out["home"] if p.startswith("intel")]
