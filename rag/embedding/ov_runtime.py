"""OpenVINO as this project imports it: without its usage telemetry, and without its model converter until
an export needs it.

``import openvino`` imports its model converter (``openvino.tools.ovc``, ~40 ms), and the converter, unless
a consent file under ``~/intel`` says otherwise, writes a client id there and sends an "import" event to
Google Analytics from a forked process, which the interpreter then waits for at exit (~60-90 ms of a cold
``rag ask``). This project promises to work offline and to send nothing anywhere, so the telemetry
package is made unimportable in the process (``sys.modules[name] = None``): OpenVINO's own modules catch
that ImportError and use their bundled stub (``openvino.tools.ovc.telemetry_stub``), as they do where the
package is not installed (for the whole process: nothing here should ever send it). The converter is left
out of the first import in the importing thread (``rag.import_guard``; ``openvino``'s ``__init__`` catches
that ImportError too) and imported by ``convert_model`` when a model is exported.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType
from typing import Any

from rag import import_guard

TELEMETRY = "openvino_telemetry"
CONVERTER = "openvino.tools.ovc"
_LOCK = threading.Lock()


def runtime() -> ModuleType:
    """``openvino``, imported without telemetry and, when this is its first import, without its converter.
    ImportError when OpenVINO is not installed."""
    with _LOCK:
        sys.modules.setdefault(TELEMETRY, None)  # type: ignore[arg-type] - None: "import fails", by design
        if "openvino" in sys.modules:
            import openvino  # noqa: PLC0415 - already imported: only bound here

            return openvino
        with import_guard.without((CONVERTER,)):
            import openvino  # noqa: PLC0415 - optional engine, imported at its first use
        return openvino


def convert_model(model: Any, **kwargs: Any) -> Any:
    """``openvino.convert_model`` (imports the converter on first use; telemetry stays off)."""
    runtime()
    from openvino.tools.ovc import convert_model as convert  # noqa: PLC0415 - only an export needs it

    return convert(model, **kwargs)


__all__ = ["CONVERTER", "TELEMETRY", "convert_model", "runtime"]
