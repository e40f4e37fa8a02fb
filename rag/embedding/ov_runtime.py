"""OpenVINO as this project imports it: without its usage telemetry, and without its model converter until
an export needs it.

``import openvino`` imports its model converter (``openvino.tools.ovc``, ~40 ms), and the converter, unless
a consent file under ``~/intel`` says otherwise, writes a client id there and sends an "import" event to
Google Analytics from a forked process, which the interpreter then waits for at exit (~60-90 ms of a cold
``rag ask``). This project promises to work offline and to send nothing anywhere, so the telemetry
package is made unimportable in the process (``sys.modules[name] = None``): OpenVINO's own modules catch
that ImportError and use their bundled stub (``openvino.tools.ovc.telemetry_stub``), as they do where the
package is not installed. The converter is left out of the first import the same way (``openvino``'s
``__init__`` catches that too) and imported by ``convert_model`` when a model is exported.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType
from typing import Any

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
        blocked = CONVERTER not in sys.modules
        if blocked:
            sys.modules[CONVERTER] = None  # type: ignore[assignment]
        try:
            import openvino  # noqa: PLC0415 - optional engine, imported at its first use
        finally:
            if blocked and sys.modules.get(CONVERTER, 0) is None:
                del sys.modules[CONVERTER]  # an export imports it for real (convert_model below)
        return openvino


def convert_model(model: Any, **kwargs: Any) -> Any:
    """``openvino.convert_model`` (imports the converter on first use; telemetry stays off)."""
    runtime()
    from openvino.tools.ovc import convert_model as convert  # noqa: PLC0415 - only an export needs it

    return convert(model, **kwargs)


__all__ = ["CONVERTER", "TELEMETRY", "convert_model", "runtime"]
