"""XML parts of packed documents (DOCX, ODT, ODS, EPUB) streamed through expat, safely.

Only the standard library's expat parser, fed a part's bounded blocks (``rag.ingest.archive``):
element names arrive as ``"URI local"``. No entity is ever declared (a declaration is refused, so
no billion laughs), external entities are never fetched (expat loads none without a handler, and
parameter entities are not parsed), and a DTD is refused where the format never has one (Office,
OpenDocument); where it may (an EPUB's XHTML), it is allowed but still declares nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from xml.parsers import expat

from rag.errors import LoaderError


def parse_xml(blocks: Iterable[bytes], part: str, name: str, kind: str,
              start: Callable[[str, dict[str, str]], None], end: Callable[[str], None] | None = None,
              data: Callable[[str], None] | None = None, doctype: str | None = None) -> None:
    """Stream ``blocks`` of the XML ``part`` of ``name`` (a ``kind`` file) through expat with the given
    handlers; ``LoaderError`` when it is not well-formed, declares an entity, or has a DTD (unless
    ``doctype`` is None: then a DTD is refused with the reason ``doctype`` gives)."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(detail: str) -> Callable[..., None]:
        def handler(*_: object) -> None:
            raise LoaderError("file.damaged", name=name, kind=kind, detail=f"its part {part!r} {detail}")
        return handler

    if doctype is not None:
        parser.StartDoctypeDeclHandler = refuse(doctype)
    parser.EntityDeclHandler = refuse("declares an entity, which documents never need")
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if data is not None:
        parser.CharacterDataHandler = data
    try:
        for block in blocks:
            parser.Parse(block, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise LoaderError("file.damaged", name=name, kind=kind,
                          detail=f"its part {part!r} is not well-formed XML: {expat.ErrorString(exc.code)}, "
                                 f"line {exc.lineno}, column {exc.offset}") from exc
