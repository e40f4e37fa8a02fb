"""EPUB books: each chapter of the spine, in reading order, a unit (``chapter`` = its place, titled).

The package is opened behind ``rag.ingest.archive``'s caps; ``META-INF/container.xml`` names the
package document (OPF), whose manifest and spine are parsed with expat (``rag.ingest.xml_stream``:
no entity is declared, nothing external fetched). Each spine item that is a content document
(XHTML or HTML; the navigation document, a table of contents, is left out) is read bounded and turned into text by ``rag.ingest.formats.html_to_text`` (scripts
and styles dropped, blocks on lines of their own); its title is its first heading, else its
``<title>``. A chapter's text is what people read, so the title is not written twice: the unit's
title is its chapter's. A book whose content documents are encrypted (DRM) is refused.
"""

from __future__ import annotations

import html
import posixpath
import re
import zipfile
from urllib.parse import unquote

from rag.errors import LoaderError
from rag.ingest.archive import find_member, open_archive, read_member
from rag.ingest.formats import html_to_text
from rag.ingest.limits import TextBudget, check_pages
from rag.ingest.tables import table_title
from rag.ingest.units import Extracted, UnitText
from rag.ingest.xml_stream import parse_xml

KIND = "EPUB"
_ZIP_MAGIC = b"PK\x03\x04"
_MIMETYPE = "application/epub+zip"
_SMALL_PART = 16 * 2**20  # the container, the package document, the encryption list
_CHAPTER = 64 * 2**20  # one content document, unpacked
_CONTENT_TYPES = frozenset({"application/xhtml+xml", "text/html"})
_HEADING = re.compile(r"<(h[1-6])\b[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_TITLE_SCAN = 200_000  # characters of a chapter searched for its title: it opens the chapter


def epub_units(raw: bytes, name: str) -> Extracted:
    """The chapters of an EPUB in spine order, each a unit with ``chapter`` (1, 2, ...) and its title."""
    if not raw:
        raise LoaderError("file.empty", name=name)
    if not raw.startswith(_ZIP_MAGIC):
        raise LoaderError("file.wrong_format", name=name, kind=KIND)
    out = UnitText(TextBudget(name, KIND))
    with open_archive(raw, name, KIND) as archive:
        mimetype = find_member(archive, "mimetype")
        if mimetype is not None and read_member(archive, mimetype, name, KIND, _SMALL_PART).strip() != _MIMETYPE.encode():
            raise LoaderError("file.wrong_format", name=name, kind=KIND)
        opf = _package_document(archive, name)
        chapters = _spine(archive, opf, name)
        check_pages(len(chapters), name, KIND)
        locked = _encrypted(archive, name)
        number = 0
        for part in chapters:
            if part in locked:
                raise LoaderError("office.encrypted", name=name, kind=KIND)
            page = read_member(archive, part, name, KIND, _CHAPTER).decode("utf-8", "replace")
            body = _BODY.search(page)  # the head's <title> repeats the chapter's heading
            text = "\n".join(line.strip() for line in html_to_text(page[body.end() if body else 0:]).splitlines()
                             if line.strip())
            if not text:
                continue  # a cover picture, an empty title page
            number += 1
            out.unit(text, _chapter_title(page), chapter=number)
    return out.result()


def _package_document(archive: zipfile.ZipFile, name: str) -> str:
    container = find_member(archive, "META-INF/container.xml")
    if container is None:
        raise LoaderError("file.damaged", name=name, kind=KIND, detail="it has no META-INF/container.xml")
    found: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag.rpartition(" ")[2] == "rootfile" and attrs.get("full-path"):
            found.append(attrs["full-path"])

    parse_xml([read_member(archive, container, name, KIND, _SMALL_PART)], container, name, KIND, start)
    part = next((p for f in found if (p := find_member(archive, unquote(f).lstrip("/"))) is not None), None)
    if part is None:
        raise LoaderError("file.damaged", name=name, kind=KIND, detail="its package document (OPF) is missing")
    return part


def _spine(archive: zipfile.ZipFile, opf: str, name: str) -> list[str]:
    """The stored names of the spine's content documents, in reading order (non-linear ones last)."""
    manifest: dict[str, tuple[str, str]] = {}
    spine: list[tuple[str, bool]] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        local = tag.rpartition(" ")[2]
        if local == "item" and attrs.get("id") and attrs.get("href") and "nav" not in attrs.get("properties", "").split():
            manifest[attrs["id"]] = (attrs["href"], attrs.get("media-type", ""))  # the table of contents is no chapter
        elif local == "itemref" and attrs.get("idref"):
            spine.append((attrs["idref"], attrs.get("linear", "yes") != "no"))

    parse_xml([read_member(archive, opf, name, KIND, _SMALL_PART)], opf, name, KIND, start)
    folder = posixpath.dirname(opf)
    parts: list[str] = []
    for idref, _ in sorted(spine, key=lambda s: not s[1]):  # stable: linear ones in order, then the rest
        href, media = manifest.get(idref, ("", ""))
        if media not in _CONTENT_TYPES:
            continue
        part = find_member(archive, posixpath.normpath(posixpath.join(folder, unquote(href.split("#")[0]))))
        if part is not None and part not in parts:
            parts.append(part)
    return parts


def _encrypted(archive: zipfile.ZipFile, name: str) -> set[str]:
    """Parts ``META-INF/encryption.xml`` lists (DRM, or fonts obfuscated: those are never read here)."""
    listing = find_member(archive, "META-INF/encryption.xml")
    if listing is None:
        return set()
    uris: set[str] = set()

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag.rpartition(" ")[2] == "CipherReference" and attrs.get("URI"):
            uris.add(posixpath.normpath(unquote(attrs["URI"]).lstrip("/")))

    parse_xml([read_member(archive, listing, name, KIND, _SMALL_PART)], listing, name, KIND, start)
    return {found for uri in uris if (found := find_member(archive, uri)) is not None}


def _chapter_title(page: str) -> str | None:
    """The chapter's first heading, else its ``<title>``: text only, short."""
    head = page[:_TITLE_SCAN]
    for pattern, group in ((_HEADING, 2), (_TITLE, 1)):
        if m := pattern.search(head):
            title = table_title(html.unescape(_TAG.sub("", m.group(group))))
            if title:
                return title
    return None
