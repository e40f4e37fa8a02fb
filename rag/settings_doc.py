"""The settings reference (docs/settings.md), written from ``rag.config.Settings``: its fields' types,
ranges, defaults and descriptions, so that the table cannot say other than the code.

    python -m rag.settings_doc            # rewrite docs/settings.md (run from the repository root)
    python -m rag.settings_doc --check    # exit 1 when it differs from what the code says
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings, expected
from rag.errors import ConfigError

DEFAULT_PATH = Path("docs") / "settings.md"
REGENERATE = "python -m rag.settings_doc"


def settings_markdown() -> str:
    """The reference page: how settings are given, then one row per field, in the model's order."""
    rows = [_row(name) for name in Settings.model_fields]
    return "\n".join([
        "# Settings",
        "",
        f"<!-- Written by `{REGENERATE}` from rag/config.py: change the fields there, then run it again. -->",
        "",
        "Every setting is a keyword of `RAG.open(..., name=value)` and an environment variable `RAG_NAME`: an",
        "argument wins over the variable, and the variable over the default. All are checked when the index is",
        "opened, and a bad value is refused with the setting, its variable and the value in the message:",
        "",
        f"    {_example_refusal()}",
        "",
        "In a variable, whole numbers may be written with `_` (`1_000`), flags as `1`, `true`, `yes`, `on` or",
        "`0`, `false`, `no`, `off`, and an empty variable counts as unset. The embedder and the chunking",
        "(`chunk_tokens`, `overlap_tokens`, `headers`) are fixed when an index is built: asking an index for",
        "others is an error that says to rebuild it, while a differing variable is only noted.",
        "",
        "| setting | variable | accepts | default | meaning |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ])


def _row(name: str) -> str:
    field = Settings.model_fields[name]
    cells = [f"`{name}`", f"`RAG_{name.upper()}`", expected(field, quote=lambda v: f"`{v}`"),
             _default(field.default), field.description or ""]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _default(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`" if value != "" else "(empty)"


def _example_refusal() -> str:
    """A real refusal, made by the code, so that the page shows the message as it is."""
    try:
        Settings(retrieval="magic")  # type: ignore[arg-type]  # the point: a value the type does not allow
    except ConfigError as exc:
        return str(exc)
    raise AssertionError("Settings accepted retrieval='magic'")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.settings_doc", description="write the settings reference from rag.config.Settings")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help=f"default: {DEFAULT_PATH}")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = settings_markdown()
    if args.check:
        same = args.path.is_file() and args.path.read_text(encoding="utf-8") == text
        if not same:
            print(f"{args.path} is stale: run `{REGENERATE}`", file=sys.stderr)
        return 0 if same else 1
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path} ({len(Settings.model_fields)} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
