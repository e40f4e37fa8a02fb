"""``rag feedback export`` and ``rag feedback list``: the feedback of one index, read locally.

Neither opens the index or loads a model: the feedback file is read as it is. A missing index
folder is ``IndexNotFoundError`` (exit 3); no feedback, or nothing that can become a row, prints
one line and exits 1, and no file is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.feedback import feedback_path, read_feedback
from rag.feedback_export import export_rows
from rag.files import write_atomic

NOTHING = 1  # exit code when there is nothing to show or export: not an error of the input, not success either
SKIP_NAMES = {"superseded": "superseded by a later record of the same question",
              "down_without_correction": "thumbs-down without a correction or 'not in the documents'",
              "up_without_answer": "thumbs-up on an empty answer"}


def cmd_feedback_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name such as feedback.jsonl")
    records = read_feedback(Path(args.index_dir))
    if not records:
        print(f"error: no feedback recorded in {feedback_path(args.index_dir)}; nothing written", file=sys.stderr)
        return NOTHING
    rows, skipped = export_rows(records)
    why = ", ".join(f"{n} {SKIP_NAMES[k]}" for k, n in skipped.items() if n) or "none"
    if not rows:
        print(f"error: none of the {len(records)} feedback records can become a question (skipped: {why}); "
              "nothing written", file=sys.stderr)
        return NOTHING
    write_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), mode=None, durable=True)
    kinds = {}
    for row in rows:
        kinds[row["topic"]] = kinds.get(row["topic"], 0) + 1
    print(f"wrote {out}: {len(rows)} questions ({', '.join(f'{n} {t}' for t, n in kinds.items())}) "
          f"from {len(records)} records; skipped: {why}")
    return 0


def cmd_feedback_list(args: argparse.Namespace) -> int:
    records = read_feedback(Path(args.index_dir))
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))
        return 0
    if not records:
        print(f"no feedback recorded in {feedback_path(args.index_dir)}", file=sys.stderr)
        return NOTHING
    print("time\trating\tquestion\tcorrection")
    for r in records:
        print("\t".join((r["time"][:19].replace("T", " "), r["rating"], one_line(r["question"], 40), _correction(r))))
    return 0


def _correction(record: dict[str, Any]) -> str:
    if record.get("corrected_answer"):
        return one_line(record["corrected_answer"], 40)
    return "(not in the documents)" if record.get("not_in_documents") else "-"


def one_line(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())  # one line in the table, whatever the user typed
    return text if len(text) <= width else text[: width - 1] + "…"


__all__ = ["cmd_feedback_export", "cmd_feedback_list", "one_line"]
