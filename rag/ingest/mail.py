"""E-mail (EML): the message a unit (``part`` 1) opened by its header line, its text attachments parts 2, 3 ...

The header line names sender, recipients, date and subject (``发件人：… | 收件人：… | 日期：… | 主题：…``),
so a question about who wrote or when is answered from it; the body is the plain text part, else the
HTML part as text. Attachments of ``TEXT_ATTACHMENTS`` (text, Markdown, CSV; any encoding
``rag.ingest.decoding`` reads) are parts of their own, titled by the subject and the file name; other
attachments (pictures, office files), and one that is binary under a text name, are left out. Read with the standard library's ``email``
package; a message over ``MAX_PARTS`` MIME parts, an encrypted one (S/MIME, PGP) and a multipart one
cut short (its closing boundary missing) are refused by name. Outlook's MSG (``rag.ingest.msg_reader``)
is put together the same way (``mail_units``).
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from rag.errors import LoaderError
from rag.ingest.decoding import decode_bytes
from rag.ingest.formats import html_to_text
from rag.ingest.limits import TextBudget
from rag.ingest.units import Extracted, UnitText

KIND = "EML"
TEXT_ATTACHMENTS = frozenset({".txt", ".md", ".markdown", ".csv"})
MAX_PARTS = 1_000  # MIME parts of one message: a mail with a hundred attachments has a few hundred
_HEADERS = ("from", "to", "date", "subject")
_BLANK_LINES = re.compile(r"\n{3,}")
_ENCRYPTED = frozenset({"multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"})


def eml_units(raw: bytes, name: str) -> Extracted:
    """The message of an EML file and its text attachments, each a unit with ``part``."""
    if not raw.strip():
        raise LoaderError("file.empty", name=name)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not any(message.get(h) for h in (*_HEADERS, "message-id")):
        raise LoaderError("file.wrong_format", name=name, kind=KIND)
    for parts, part in enumerate(message.walk(), 1):
        if parts > MAX_PARTS:
            raise LoaderError("mail.too_many_parts", name=name, kind=KIND, limit=MAX_PARTS)
        if part.get_content_type() in _ENCRYPTED:
            raise LoaderError("mail.encrypted", name=name, kind=KIND)
        if any(isinstance(d, email.errors.CloseBoundaryNotFoundDefect) for d in part.defects):
            raise LoaderError("file.damaged", name=name, kind=KIND, detail="it is cut short: a closing MIME boundary is missing")
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        content = _content(body)
        text = html_to_text(content) if body.get_content_type() == "text/html" else content
    attachments = []
    for part in message.iter_attachments():
        filename = part.get_filename() or ""
        if PurePosixPath(filename).suffix.lower() in TEXT_ATTACHMENTS:
            payload = part.get_payload(decode=True) or b""
            attachments.append((filename, payload))
    head = {h: str(message.get(h, "")) for h in _HEADERS}
    return mail_units(name, KIND, head, text, attachments)


def mail_units(name: str, kind: str, head: dict[str, str], body: str,
               attachments: Iterable[tuple[str, bytes]]) -> Extracted:
    """A mail as units: ``part`` 1 its header line and body, then each text attachment."""
    out = UnitText(TextBudget(name, kind))
    subject = " ".join(head.get("subject", "").split())
    line = " | ".join(f"{label}：{' '.join(value.split())}" for label, value in
                      (("发件人", head.get("from", "")), ("收件人", head.get("to", "")),
                       ("日期", head.get("date", "")), ("主题", subject)) if value.strip())
    paragraphs = _BLANK_LINES.sub("\n\n", "\n".join(p.rstrip() for p in body.replace("\r\n", "\n").splitlines()))
    out.unit(f"{line}\n\n{paragraphs.strip()}", subject or None, part=1)
    number = 1
    for filename, payload in attachments:
        if not payload.strip():
            continue
        try:
            text, _ = decode_bytes(payload, f"{name}: {filename}")
        except LoaderError:
            continue  # binary under a text name: the mail is read without it
        number += 1
        out.unit(text, " · ".join(t for t in (subject, filename) if t) or None, part=number)
    return out.result()


def _content(part: email.message.EmailMessage) -> str:
    """A text part's content; one that names an unknown charset is read as ``rag.ingest.decoding`` reads bytes."""
    try:
        return part.get_content()
    except (LookupError, UnicodeError):
        return decode_bytes(part.get_payload(decode=True) or b"", "body")[0]
