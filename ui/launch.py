"""The ``rag`` program's entry point: the command line's start-up with Python's cycle collector paused.

A cold ``rag ask`` creates ~80,000 long-lived objects while it imports its libraries and loads the model
and the index, and the collector, triggered by those allocations, walks them again and again, then once
more at exit: 0.1-0.15 s of a 0.9 s answer. ``ui.cli.main`` resumes the collector once the command is
known, for every command but the one-question ones (``ONE_SHOT``), which end soon and free their memory
by reference counting; what is alive at start-up is frozen (``gc.freeze``), so no later collection walks
it again. ``python -m ui.launch ARGS`` is the same program.
"""

from __future__ import annotations

import gc
import sys


def main() -> int:
    gc.disable()
    from ui.cli import main as cli_main  # noqa: PLC0415 - imported with the collector paused: the point of this module

    return cli_main(collector_paused=True)


if __name__ == "__main__":
    sys.exit(main())
