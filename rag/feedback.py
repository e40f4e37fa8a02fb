"""Feedback on answers: append-only records in ``<index_dir>/feedback.jsonl``, one JSON object a line.

A record is what a user said about one answer (``rating`` "up" or "down", an optional ``reason``,
an optional ``corrected_answer``, ``not_in_documents``) together with what they were answering
(the question, the answer text, whether it abstained, the passages' chunk and document ids, the
cited documents, the knowledge bases asked and the settings used). ``record_feedback`` checks every
field (the values come from the network) and adds ``id`` and ``time`` itself; ``read_feedback``
reads the file back, skipping a line it cannot use with a warning that names the line.
``rag.feedback_export`` turns the records into a question set for ``rag eval``.

Several threads and processes may append at once: each append takes an exclusive ``flock`` on the
file (per open file, so threads of one process exclude each other too), writes the whole line with
one ``write`` and fsyncs it before the lock is released.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, IndexNotFoundError, RagError
from rag.text.unicode import is_encodable

FEEDBACK_FILE = "feedback.jsonl"
RATINGS = ("up", "down")
MAX_REASON = 500
MAX_CORRECTION = 2000
MAX_QUESTION = 10_000  # above any sensible max_question_chars: the question was already checked when asked
MAX_ANSWER = 20_000  # an LLM's answer with its sources
MAX_IDS = 50  # top_k is at most 50 through the API
MAX_ID_CHARS = 1024
MAX_KBS = 20
MAX_KB_CHARS = 200
MAX_SETTINGS = 20
MAX_SETTING_KEY = 64
MAX_SETTING_TEXT = 200

_log = logging.getLogger(__name__)
# C0 controls, DEL and C1 controls; free text may keep newlines and tabs, names and ids may not
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SETTING_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_HEX_ID = re.compile(r"[0-9a-f]{32}")
_TEXT_FIELDS = {"question": MAX_QUESTION, "answer": MAX_ANSWER}
_OPTIONAL_TEXT = {"reason": MAX_REASON, "corrected_answer": MAX_CORRECTION}
_ID_LISTS = ("chunk_ids", "doc_ids", "cited_doc_ids")
FIELDS = ("rating", "reason", "corrected_answer", "not_in_documents", "question", "answer", "abstained",
          *_ID_LISTS, "kbs", "settings")


class FeedbackFullError(RagError):
    """The feedback file is over ``max_feedback_mb``: new feedback is refused until it is exported and cleared.
    Over HTTP it is 507 Insufficient Storage: the request itself is small (``rag.http.feedback_api``)."""

    http_status = 507


def feedback_path(index_dir: str | Path) -> Path:
    return Path(index_dir) / FEEDBACK_FILE


def max_feedback_bytes(mb: float) -> int:
    return int(mb * 1024 * 1024)


# ---- checking ---------------------------------------------------------------------------------
def validate_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry's fields checked and normalised (absent optional ones filled in), or ``ConfigError``."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"feedback must be a JSON object, got {type(entry).__name__}")
    unknown = sorted(str(k) for k in entry if k not in FIELDS)
    if unknown:
        raise ConfigError(f"unknown feedback field(s) {', '.join(repr(k[:64]) for k in unknown[:5])}; "
                          f"known: {', '.join(FIELDS)}")
    return {**_rating_fields(entry), **_answer_fields(entry)}


def _rating_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What the user said: rating, reason, corrected answer, not in the documents."""
    rating = entry.get("rating")
    if rating not in RATINGS:
        raise ConfigError(f"feedback rating must be 'up' or 'down', got {_shown(rating)}")
    out: dict[str, Any] = {"rating": rating}
    for name, limit in _OPTIONAL_TEXT.items():
        value = entry.get(name)
        blank = value is None or (isinstance(value, str) and not value.strip())  # an empty box is no reason
        out[name] = None if blank else _text(name, value, limit).strip()
    out["not_in_documents"] = _flag("not_in_documents", entry.get("not_in_documents", False))
    if out["corrected_answer"] and out["not_in_documents"]:
        # a correction says the documents hold the answer; the flag says they do not
        raise ConfigError("feedback cannot have both a corrected_answer and not_in_documents: choose one")
    return out


def _answer_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What was rated: the question, the answer, its passages, the knowledge bases and settings."""
    if entry.get("question") is None:
        raise ConfigError("feedback.no_question")
    out: dict[str, Any] = {name: _text(name, entry.get(name, ""), limit) for name, limit in _TEXT_FIELDS.items()}
    if not out["question"].strip():
        raise ConfigError("feedback.empty", name="question")
    out["abstained"] = _flag("abstained", entry.get("abstained", False))
    for name in _ID_LISTS:
        out[name] = _names(name, entry.get(name, []), MAX_IDS, MAX_ID_CHARS)
    out["kbs"] = _names("kbs", entry.get("kbs", []), MAX_KBS, MAX_KB_CHARS)
    out["settings"] = _settings(entry.get("settings", {}))
    return out


def _shown(value: Any) -> str:
    """A bad value for an error message: short, and never a string that cannot be encoded."""
    if isinstance(value, str):
        return repr(value[:40]) if is_encodable(value) else "a string with a lone surrogate"
    return type(value).__name__ if isinstance(value, (dict, list)) else repr(value)[:40]


def _text(name: str, value: Any, limit: int, control: re.Pattern[str] = _CONTROL) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"feedback {name} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ConfigError("text.too_long", what=f"feedback {name}", n=len(value), limit=limit)
    if not is_encodable(value):
        raise ConfigError("feedback.surrogate", name=name)
    bad = control.search(value)
    if bad:
        raise ConfigError("feedback.control", name=name, codepoint=ord(bad.group()), position=bad.start())
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"feedback {name} must be true or false, got {_shown(value)}")
    return value


def _names(name: str, value: Any, count: int, chars: int) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"feedback {name} must be a list of strings, got {type(value).__name__}")
    if len(value) > count:
        raise ConfigError("feedback.too_many_entries", name=name, n=len(value), limit=count)
    return [check_name(f"{name}[{i}]", item, chars) for i, item in enumerate(value)]


def check_name(name: str, value: Any, chars: int) -> str:
    """An id or a knowledge base's name: a non-empty string of at most ``chars``, no control characters at all."""
    text = _text(name, value, chars, _NAME_CONTROL)
    if not text.strip():
        raise ConfigError("feedback.empty", name=name)
    return text


def _settings(value: Any) -> dict[str, Any]:
    """A small flat dict of JSON scalars: what the answer was asked with (top_k, retrieval, generator, …)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"feedback settings must be an object, got {type(value).__name__}")
    if len(value) > MAX_SETTINGS:
        raise ConfigError("feedback.too_many_entries", name="settings", n=len(value), limit=MAX_SETTINGS)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > MAX_SETTING_KEY or not _SETTING_KEY.fullmatch(key):
            raise ConfigError(f"feedback settings key {_shown(key)} must be a name of letters, digits, "
                              f"'_', '.' or '-', at most {MAX_SETTING_KEY} characters")
        if isinstance(item, str):
            item = _text(f"settings.{key}", item, MAX_SETTING_TEXT, _NAME_CONTROL)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"feedback settings.{key} must be a finite number, got {item!r}")
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise ConfigError(f"feedback settings.{key} must be a string, number, true/false or null, "
                              f"got {type(item).__name__}")
        out[key] = item
    return out


# ---- writing ----------------------------------------------------------------------------------
def record_feedback(index_dir: Path, entry: Mapping[str, Any], *, max_bytes: int) -> dict[str, Any]:
    """Check ``entry``, give it an ``id`` and a UTC ``time``, append it to the feedback file; the stored record.

    ``FeedbackFullError`` when the file would grow over ``max_bytes``; ``IndexNotFoundError`` when
    ``index_dir`` is not a folder (feedback belongs to a knowledge base that exists)."""
    record = {"id": uuid.uuid4().hex, "time": datetime.now(UTC).isoformat(timespec="seconds"),
              **validate_entry(entry)}
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise IndexNotFoundError(f"no index folder at {index_dir}: feedback is stored beside an index")
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    _append(feedback_path(index_dir), line, max_bytes)
    return record


def _append(path: Path, line: bytes, max_bytes: int) -> None:
    # O_NOFOLLOW: a symlink planted in the index folder does not redirect the writes elsewhere
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # ELOOP for a symlink, EACCES, EISDIR: the operator's to fix, said plainly
        raise RagError(f"cannot write the feedback file {FEEDBACK_FILE} of the index: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size  # read under the lock: no other writer can be between check and write
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # after a torn last line: ours must not be glued onto it
        if size + len(line) > max_bytes:
            # no server path in the message: it also goes to HTTP clients
            raise FeedbackFullError("feedback.full", file=FEEDBACK_FILE, size=size_text(size),
                                    record=size_text(len(line)), limit=size_text(max_bytes))
        written = os.write(fd, line)  # one write of the whole line: readers never see half of it
        if written != len(line):
            raise RagError(f"the feedback file {FEEDBACK_FILE}: only {written} of {len(line)} bytes written "
                           "(disk full?)")
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock


def size_text(n: int) -> str:
    """A byte count as people read it: ``87 bytes``, ``10.5 KB``, ``2.0 MB`` (one decimal, never "0.0 MB")."""
    if n < 1024:
        return f"{n} byte" + ("" if n == 1 else "s")
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


# ---- reading ----------------------------------------------------------------------------------
def read_feedback(index_dir: Path) -> list[dict[str, Any]]:
    """Every usable record in file order (the order they were written); [] when there is no file.

    A line that is not a whole valid record (a torn write, an edit by hand) is skipped with a
    warning naming its line number."""
    path = feedback_path(index_dir)
    if not Path(index_dir).is_dir():
        raise IndexNotFoundError(f"no index folder at {index_dir}")
    if not path.is_file():
        return []
    records = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                records.append(_stored(raw))
            except (ValueError, ConfigError) as exc:  # UnicodeDecodeError and JSON errors are ValueErrors
                _log.warning("%s line %d skipped: %s", path, number, str(exc)[:200])
    return records


def _stored(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # a torn write, an edit by hand, bytes that are not UTF-8
        raise ValueError(f"not a whole JSON record ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    rid, when = obj.pop("id", None), obj.pop("time", None)
    if not isinstance(rid, str) or not _HEX_ID.fullmatch(rid):
        raise ValueError("missing or malformed 'id'")
    if not isinstance(when, str):
        raise ValueError("missing 'time'")
    datetime.fromisoformat(when)  # ValueError when it is not ISO 8601
    return {"id": rid, "time": when, **validate_entry(obj)}


__all__ = ["FEEDBACK_FILE", "FIELDS", "FeedbackFullError", "check_name", "feedback_path", "max_feedback_bytes", "read_feedback",
           "record_feedback", "size_text", "validate_entry"]
