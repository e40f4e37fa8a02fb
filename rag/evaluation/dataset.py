"""Question sets: reading JSON Lines, CSV or Python dicts into rows, and reporting the malformed ones.

Question set
    JSON Lines, or CSV whose ``key_facts``/``gold_docs`` columns hold JSON. A row has ``question``
    and optionally ``id``, ``answer`` (reference text; null when the documents do not answer),
    ``key_facts`` (facts the answer must state, each a list of accepted spellings, e.g.
    ``[["3000", "3,000"]]``), ``gold_docs`` (ids of the documents that answer it) and ``topic``.
    A malformed row is reported as ``FILE line N: what is wrong`` and skipped; with ``strict``
    the first one is an error.

What the fields mean for scoring is defined in the docstring of ``rag.evaluation.metrics``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError


class DatasetError(ConfigError):
    """A question set cannot be read; the message names the file and line (bad input: exit code 2)."""


@dataclass(frozen=True)
class Row:
    id: str
    question: str
    answer: str | None
    key_facts: list[list[str]]
    gold_docs: list[str]
    topic: str
    line: int

    @property
    def answerable(self) -> bool:
        return bool(self.answer or self.key_facts or self.gold_docs)


@dataclass
class Dataset:
    rows: list[Row]
    errors: list[str] = field(default_factory=list)  # "FILE line N: what is wrong"
    source: str = ""  # where the rows came from, for the report


def load_dataset(path: str | Path, strict: bool = False) -> Dataset:
    """Read JSON Lines or CSV; a malformed row is reported with its line and skipped (or fails with ``strict``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"question set {path} does not exist")
    raw_rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    return _collect(raw_rows, path.name, str(path), strict)


def dataset_from_dicts(objs: Iterable[Any], strict: bool = False) -> Dataset:
    """Rows given in Python (``[{"question": ..., "key_facts": ...}, ...]``); "line" is the 1-based position."""
    return _collect(((i, obj, None) for i, obj in enumerate(objs, 1)), "rows", "<rows>", strict)


def _collect(raw_rows: Iterable[tuple[int, Any, str | None]], name: str, source: str, strict: bool) -> Dataset:
    rows, errors, seen = [], [], set()
    for line, obj, err in raw_rows:
        if err is None:
            try:
                row = _row(obj, line)
                if row.id in seen:
                    raise ValueError(f"duplicate id {row.id!r}")
                seen.add(row.id)
                rows.append(row)
                continue
            except (ValueError, TypeError) as exc:
                err = str(exc)
        msg = f"{name} line {line}: {err}"
        if strict:
            raise DatasetError(msg)
        errors.append(msg)
    if not rows:
        raise DatasetError(f"{source} holds no usable question" + (f" ({errors[0]})" if errors else ""))
    return Dataset(rows, errors, source)


def _read_jsonl(path: Path) -> Iterable[tuple[int, Any, str | None]]:
    with path.open(encoding="utf-8-sig") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                yield line, json.loads(text), None
            except ValueError as exc:
                yield line, None, f"not valid JSON ({exc.args[0] if exc.args else exc})"


def _read_csv(path: Path) -> Iterable[tuple[int, Any, str | None]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            obj: dict[str, Any] = dict(row)
            for key in ("key_facts", "gold_docs"):
                if obj.get(key):
                    try:
                        obj[key] = json.loads(obj[key])
                    except ValueError:
                        yield reader.line_num, None, f"{key} must be JSON, got {obj[key]!r}"
                        break
            else:
                yield reader.line_num, obj, None


def _row(obj: Any, line: int) -> Row:
    if not isinstance(obj, dict):
        raise TypeError(f"expected a JSON object, got {type(obj).__name__}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("missing or empty 'question'")
    answer = obj.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise ValueError(f"'answer' must be a string or null, got {type(answer).__name__}")
    facts = obj.get("key_facts") or []
    if not isinstance(facts, list) or not all(
        isinstance(f, list) and f and all(isinstance(s, str) and s for s in f) for f in facts
    ):
        raise ValueError("'key_facts' must be a list of non-empty lists of strings")
    gold = obj.get("gold_docs") or []
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise ValueError("'gold_docs' must be a list of document ids")
    return Row(
        id=str(obj.get("id") or f"line-{line}"), question=question.strip(), answer=answer or None,
        key_facts=facts, gold_docs=gold, topic=str(obj.get("topic") or "all"), line=line,
    )
