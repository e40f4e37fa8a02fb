"""The `rag` command for tests: in this process (``rag``), or as the console script in a subprocess (``rag_process``).

``rag`` calls ``ui.cli.main`` as the console script does and captures what a subprocess would show: stdout,
stderr (with the warnings and log records a fresh process prints there) and the exit status. It skips the
start-up of a new interpreter (torch and OpenVINO imported again, the models loaded again: seconds per
run), so most CLI tests use it. ``rag_process`` is for what only a real process shows: the installed entry
point, import-time cost and output, signals, a second process on the same index.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

from conftest import ROOT

RAG_BIN = Path(sys.executable).parent / "rag"

# What a fresh interpreter without -W or PYTHONWARNINGS filters (CPython's defaults), so that the CLI's own
# filters (ui.cli.quiet_libraries) are judged as a user's terminal would show them, not under pytest's filters.
DEFAULT_FILTERS = [("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                   ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""), ("ignore", ResourceWarning, "")]


def rag(*args: str, cwd: Path = ROOT, env: Mapping[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """``rag ARGS`` run in this process from folder ``cwd``, ``env`` set (None: unset) while it runs."""
    from ui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with (_environ(env or {}), contextlib.chdir(cwd), contextlib.redirect_stdout(out),
          contextlib.redirect_stderr(err), _fresh_warnings(), _log_records_on_stderr()):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors (exit 2) and --help
            code = _exit_status(exc.code)
    return subprocess.CompletedProcess(["rag", *args], code, out.getvalue(), err.getvalue())


def rag_process(*args: str, cwd: Path = ROOT, env: Mapping[str, str] | None = None,
                timeout: float = 600) -> subprocess.CompletedProcess:
    """``rag ARGS`` as a user runs it: the installed console script in a new process, offline."""
    full = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
    return subprocess.run([str(RAG_BIN), *args], capture_output=True, text=True, cwd=cwd, env=full, timeout=timeout)


def _exit_status(code: object) -> int:
    """The status a process exits with for ``sys.exit(code)``: a message is printed and is status 1."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            _set(name, value)
        yield
    finally:
        for name, value in saved.items():
            _set(name, value)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextlib.contextmanager
def _fresh_warnings() -> Iterator[None]:
    """Warnings filtered as in a new interpreter and printed on (the captured) stderr; pytest's restored after."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in reversed(DEFAULT_FILTERS):
            warnings.filterwarnings(action, category=category, module=module)
        warnings.showwarning = _print_warning
        yield


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _log_records_on_stderr() -> Iterator[None]:
    """Warnings and errors logged while the command runs, on stderr: what Python's last-resort handler
    prints in a process that configured no logging (pytest's own handlers would otherwise take them)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
