"""Rich Text Format (RTF) to plain text with striprtf (the ``formats`` extra).

An RTF file is 7-bit text that names its code page (``\\ansicpg936``) and fonts' charsets; striprtf
decodes ``\\'hh`` bytes by them and ``\\uN`` characters as Unicode. A file that does not open with
``{\\rtf`` is not RTF; one whose braces do not close is cut short. Its text is counted against the
document's ``TextBudget``.
"""

from __future__ import annotations

import re

from rag.errors import LoaderError
from rag.ingest.limits import TextBudget
from rag.ingest.optional import optional_module

KIND = "RTF"
_CODEPAGE = re.compile(rb"\\ansicpg(\d{3,5})")
_BRACES = re.compile(rb"\\[{}\\]|[{}]")


def rtf_text(raw: bytes, name: str) -> str:
    """The text of an RTF file, paragraphs on lines of their own."""
    striprtf = optional_module("striprtf.striprtf", "striprtf", name, KIND)
    if not raw.strip():
        raise LoaderError("file.empty", name=name)
    if not raw.lstrip().startswith(b"{\\rtf"):
        raise LoaderError("file.wrong_format", name=name, kind=KIND)
    depth = 0
    for m in _BRACES.finditer(raw):
        token = m.group()
        depth += 1 if token == b"{" else -1 if token == b"}" else 0
    if depth > 0:
        raise LoaderError("file.damaged", name=name, kind=KIND, detail="it is cut short: a group is never closed")
    codepage = _CODEPAGE.search(raw[:4096])
    encoding = f"cp{codepage.group(1).decode()}" if codepage else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    text = striprtf.rtf_to_text(raw.decode("latin-1"), encoding=encoding, errors="replace")
    TextBudget(name, KIND).spend(len(text))
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").splitlines()).strip()
