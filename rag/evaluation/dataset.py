"""Question sets: reading JSON Lines, CSV, SQuAD-format JSON or Python dicts into rows, reporting the malformed ones.

Question set
    JSON Lines, or CSV whose ``key_facts``/``gold_docs`` columns hold JSON. A row has ``question``
    and optionally ``id``, ``answer`` (reference text; null when the documents do not answer),
    ``key_facts`` (facts the answer must state, each a list of accepted spellings, e.g.
    ``[["3000", "3,000"]]``), ``gold_docs`` (ids of the documents that answer it) and ``topic``.
    A malformed row is reported as ``FILE line N: what is wrong`` and skipped; with ``strict``
    the first one is an error.

SQuAD-format file (CMRC 2018, DRCD, SQuAD, a user's own)
    A ``.json`` file ``{"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question",
    "answers": [{"text", "answer_start"}]}]}]}]}``. Every paragraph becomes one document of the
    collection to index (``Dataset.paragraphs``, written out by ``write_paragraphs``); every
    question a row whose ``answers`` are its gold answer texts and whose ``gold_docs`` is its
    paragraph's document. A malformed entry is reported by its position, e.g.
    ``FILE data[3].paragraphs[1].qas[2]: empty question``, and skipped. ``with_holdout(n)``
    leaves every n-th paragraph out of the collection; its questions become unanswerable
    (``held_out``, topic ``left-out``; the others topic ``kept``).

What the fields mean for scoring is defined in the docstring of ``rag.evaluation.metrics``.
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
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
    line: int  # the line (JSONL, CSV) or the position among the questions (SQuAD, dicts), from 1
    answers: list[str] = field(default_factory=list)  # SQuAD: the gold answer texts
    answer_starts: list[int] = field(default_factory=list)  # SQuAD: each answer's offset in its paragraph (-1: none)
    paragraph: str = ""  # SQuAD: the id of the paragraph the question was written on
    held_out: bool = False  # SQuAD with a hold-out: its paragraph is not in the index

    @property
    def answerable(self) -> bool:
        if self.held_out:
            return False
        return bool(self.answer or self.key_facts or self.gold_docs or self.answers)


# A SQuAD file's paragraphs fall in fixed parts, grouped by paragraph: crc32("<file name>:<paragraph id>")
# mod 10 is 0-1 for ``test`` (20%, kept out of all training and reported on), 2 for ``calibration`` (10%,
# where thresholds are chosen), else ``train``.
PARTS = ("train", "calibration", "test")


def paragraph_part(file_name: str, paragraph_id: str) -> str:
    b = zlib.crc32(f"{file_name}:{paragraph_id}".encode()) % 10
    return "test" if b < 2 else "calibration" if b == 2 else "train"


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of a SQuAD-format file: indexed as the document ``doc_id``."""

    id: str  # the file's paragraph id, else its position "data[i].paragraphs[j]"
    doc_id: str  # the file name it is written to (so the document id of its passages)
    context: str
    held_out: bool = False


@dataclass
class Dataset:
    rows: list[Row]
    errors: list[str] = field(default_factory=list)  # "FILE line N: what is wrong"
    source: str = ""  # where the rows came from, for the report
    paragraphs: list[Paragraph] = field(default_factory=list)  # SQuAD: the collection to index
    holdout_every: int = 0  # SQuAD: every n-th paragraph is left out of the index (0: none)
    sample_every: int = 1  # only every n-th question of the file is asked

    def with_holdout(self, every: int) -> Dataset:
        """Leave every ``every``-th paragraph (the 2nd, 4th, … for 2) out; its questions become unanswerable."""
        if every < 2:
            raise DatasetError(f"--holdout-every must be at least 2. Currently, it is {every}")
        if not self.paragraphs:
            raise DatasetError(f"{self.source} is not a SQuAD-format file: there are no paragraphs to leave out")
        paragraphs = [replace(p, held_out=i % every == every - 1) for i, p in enumerate(self.paragraphs)]
        out = {p.doc_id for p in paragraphs if p.held_out}
        rows = [replace(r, held_out=True, gold_docs=[], topic="left-out") if r.gold_docs[0] in out
                else replace(r, topic="kept") for r in self.rows]
        return Dataset(rows, list(self.errors), self.source, paragraphs, every, self.sample_every)

    def protocol(self, holdout_every: int | None = None, every: int = 1, limit: int | None = None,
                 part: str | None = None) -> Dataset:
        """``rag eval``'s options applied: the part (when given), the hold-out (when given), then the slice."""
        out = self if part is None else self.part(part)
        out = out if holdout_every is None else out.with_holdout(holdout_every)
        return out if every == 1 and limit is None else out.sample(every, limit)

    def part(self, name: str) -> Dataset:
        """The questions on the paragraphs of one fixed part (``PARTS``); the collection stays whole.

        A paragraph's part is fixed by its file name and id (``paragraph_part``), so training (the reader's,
        ``rag train-reader``) and ``rag eval --part test`` agree on which questions were never trained on."""
        if name not in PARTS:
            raise DatasetError(f"--part must be one of {', '.join(PARTS)}. Currently, it is {name!r}")
        if not self.paragraphs:
            raise DatasetError(f"{self.source} is not a SQuAD-format file: only its paragraphs have parts")
        file_name = Path(self.source).name
        keep = {p.id for p in self.paragraphs if paragraph_part(file_name, p.id) == name}
        rows = [r for r in self.rows if r.paragraph in keep]
        if not rows:
            raise DatasetError(f"{self.source}: the {name} part holds no question")
        return Dataset(rows, list(self.errors), self.source, list(self.paragraphs), self.holdout_every,
                       self.sample_every)

    def sample(self, every: int = 1, limit: int | None = None) -> Dataset:
        """Every ``every``-th question (the 1st, then the 1+every-th, …), at most ``limit``: a fixed slice.

        The paragraphs stay whole, so the collection searched is the same as for the full set."""
        if every < 1:
            raise DatasetError(f"--every must be at least 1. Currently, it is {every}")
        if limit is not None and limit < 1:
            raise DatasetError(f"--limit must be at least 1. Currently, it is {limit}")
        rows = self.rows[::every][:limit]
        if not rows:
            raise DatasetError(f"{self.source}: the slice holds no question")
        return Dataset(rows, list(self.errors), self.source, list(self.paragraphs), self.holdout_every,
                       self.sample_every * every)


def load_dataset(path: str | Path, strict: bool = False) -> Dataset:
    """Read JSON Lines or CSV; a malformed row is reported with its line and skipped (or fails with ``strict``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"question set {path} does not exist")
    if path.suffix.lower() == ".json":
        return load_squad(path, strict=strict)
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


# ---- SQuAD format ----------------------------------------------------------------------------


def paragraph_doc_id(i: int) -> str:
    """The document id (and file name) of a SQuAD set's ``i``-th paragraph, from 0."""
    return f"p{i:05d}.txt"


def load_squad(path: str | Path, strict: bool = False) -> Dataset:
    """A SQuAD-format file: its paragraphs (the collection) and its questions (see the module docstring)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc})") from None
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list):
        raise DatasetError(f"{path} is not a SQuAD-format file: expected an object with a 'data' list")
    rows: list[Row] = []
    paragraphs: list[Paragraph] = []
    errors: list[str] = []
    seen: set[str] = set()

    def bad(where: str, what: str) -> None:
        msg = f"{path.name} {where}: {what}"
        if strict:
            raise DatasetError(msg)
        errors.append(msg)

    for i, article in enumerate(data):
        paras = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paras, list):
            bad(f"data[{i}]", "expected an object with a 'paragraphs' list")
            continue
        for j, para in enumerate(paras):
            where = f"data[{i}].paragraphs[{j}]"
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                bad(where, "missing or empty 'context'")
                continue
            doc_id = paragraph_doc_id(len(paragraphs))
            paragraphs.append(Paragraph(str(para.get("id") or where), doc_id, context))
            qas = para.get("qas") or []
            if not isinstance(qas, list):
                bad(where, "'qas' must be a list")
                continue
            for q, qa in enumerate(qas):
                try:
                    row = _squad_row(qa, paragraphs[-1], f"{where}.qas[{q}]", len(rows) + 1)
                    if row.id in seen:
                        raise ValueError(f"duplicate id {row.id!r}")
                except (ValueError, TypeError) as exc:
                    bad(f"{where}.qas[{q}]", str(exc))
                    continue
                seen.add(row.id)
                rows.append(row)
    if not rows:
        raise DatasetError(f"{path} holds no usable question" + (f" ({errors[0]})" if errors else ""))
    return Dataset(rows, errors, str(path), paragraphs)


def _squad_row(qa: Any, paragraph: Paragraph, where: str, line: int) -> Row:
    if not isinstance(qa, dict):
        raise TypeError(f"expected a JSON object, got {type(qa).__name__}")
    question = qa.get("question")
    if not isinstance(question, str):
        raise ValueError("missing 'question'")
    if not question.strip():
        raise ValueError("empty question")
    answers = qa.get("answers")
    if not isinstance(answers, list) or not answers:
        raise ValueError("'answers' must be a non-empty list")
    texts: list[str] = []
    starts: list[int] = []
    for a in answers:
        text = a.get("text") if isinstance(a, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ValueError("every answer needs a non-empty 'text'")
        if text not in texts:
            start = a.get("answer_start")
            texts.append(text)
            starts.append(start if isinstance(start, int) and not isinstance(start, bool) and start >= 0 else -1)
    return Row(id=str(qa.get("id") or where), question=question.strip(), answer=None, key_facts=[],
               gold_docs=[paragraph.doc_id], topic="all", line=line, answers=texts, answer_starts=starts,
               paragraph=paragraph.id)


def write_paragraphs(dataset: Dataset, folder: str | Path) -> Path:
    """Write each paragraph that is not held out as its own document ``folder/<doc_id>``, for indexing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kept = {p.doc_id: p.context for p in dataset.paragraphs if not p.held_out}
    for stale in folder.glob("p*.txt"):  # left by an earlier run with another file or hold-out
        if stale.name not in kept:
            stale.unlink()
    for doc_id, context in kept.items():
        path = folder / doc_id
        if not path.is_file() or path.read_text(encoding="utf-8") != context:  # unchanged files keep their vectors
            path.write_text(context, encoding="utf-8")
    return folder
