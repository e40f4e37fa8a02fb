"""Outlook messages (MSG): headers, body and text attachments, put together as an EML is (``rag.ingest.mail``).

Read with extract-msg (the ``formats`` extra) from the OLE compound file; the body is the plain text,
else the HTML body as text. An MSG is not compressed, so what is read is bounded by the file's size
(``max_file_mb``); the text is counted against the document's ``TextBudget`` and attachments against
``rag.ingest.mail.MAX_PARTS``.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

from rag.errors import LoaderError
from rag.ingest.formats import html_to_text
from rag.ingest.mail import MAX_PARTS, TEXT_ATTACHMENTS, mail_units
from rag.ingest.optional import optional_module
from rag.ingest.units import Extracted

KIND = "MSG"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def msg_units(raw: bytes, name: str) -> Extracted:
    """The message of an MSG file and its text attachments, each a unit with ``part``."""
    extract_msg = optional_module("extract_msg", "extract-msg", name, KIND)
    if not raw:
        raise LoaderError("file.empty", name=name)
    if not raw.startswith(_OLE_MAGIC):
        raise LoaderError("file.wrong_format", name=name, kind=KIND)
    logging.getLogger("extract_msg").setLevel(logging.ERROR)  # it logs every property it does not know
    try:
        message = extract_msg.openMsg(raw, strict=False)
    except Exception as exc:  # extract-msg and olefile raise many kinds (OSError, struct.error, their own)
        raise LoaderError("file.damaged", name=name, kind=KIND, detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    try:
        if len(message.attachments) > MAX_PARTS:
            raise LoaderError("mail.too_many_parts", name=name, kind=KIND, limit=MAX_PARTS)
        body = message.body or ""
        if not body.strip() and (page := message.htmlBody):
            body = html_to_text(page.decode("utf-8", "replace") if isinstance(page, bytes) else page)
        head = {"from": message.sender or "", "to": message.to or "", "date": str(message.date or ""),
                "subject": message.subject or ""}
        attachments = [(att.getFilename() or "", att.data) for att in message.attachments
                       if isinstance(getattr(att, "data", None), bytes)
                       and PurePosixPath(att.getFilename() or "").suffix.lower() in TEXT_ATTACHMENTS]
    finally:
        message.close()
    return mail_units(name, KIND, head, body, attachments)
