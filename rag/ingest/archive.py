"""Zip-based documents (DOCX now; PPTX, XLSX, ODT and EPUB are zips too) opened behind caps, before any parser sees them.

A zip bomb is refused from the archive's central directory, before a byte is decompressed: too many
members, too many bytes unpacked in all, or a large member packed far tighter than any document is
(a 1 MB DOCX whose media part is a gigabyte of zeros). The directory's sizes are then held to: a
member is read only through ``member_blocks``, a stream that stops at its declared size and at the
reader's own bound, so a directory that lies about a size cannot make a reader decompress more than
was checked. Every zip-based format reads its parts through here.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from rag.errors import LoaderError

_BLOCK = 64 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """What a zip-based document may hold. Real ones are far inside: a 300-page DOCX with photos has
    under 200 members and unpacks to about its own size (photos are packed already), its XML 5 to 20 times."""

    max_members: int = 10_000
    max_unpacked: int = 256 * 2**20  # bytes, all members together
    max_ratio: int = 100  # unpacked / packed size of one member ...
    ratio_from: int = 2**20  # ... judged from this unpacked size on (a short run of zeros is no bomb)


DEFAULT_LIMITS = ZipLimits()


def open_archive(raw: bytes, name: str, kind: str, limits: ZipLimits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """The zip in ``raw``, its central directory checked against ``limits``; ``LoaderError`` naming the
    file (``name``) and its format (``kind``, e.g. ``DOCX``) when it is no zip or is over a limit."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise LoaderError("file.damaged", name=name, kind=kind, detail=f"not a zip archive: {exc}") from exc
    try:
        check_members(archive.infolist(), len(raw), name, kind, limits)
    except BaseException:
        archive.close()
        raise
    return archive


def check_members(members: list[zipfile.ZipInfo], packed: int, name: str, kind: str,
                  limits: ZipLimits = DEFAULT_LIMITS) -> None:
    """``LoaderError`` if the central directory's entries (of an archive of ``packed`` bytes) are over
    ``limits``, or a member is encrypted. The ratio is judged per member and for the whole archive
    (many members each too small to be judged alone)."""
    if len(members) > limits.max_members:
        raise LoaderError("zip.too_many_members", name=name, kind=kind, n=len(members), limit=limits.max_members)
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked:
        raise LoaderError("zip.too_large", name=name, kind=kind, mb=total / 2**20, limit=limits.max_unpacked / 2**20)
    for m in members:
        if m.flag_bits & 0x1:
            raise LoaderError("zip.encrypted", name=name, kind=kind, part=m.filename)
        if m.file_size >= limits.ratio_from and m.file_size > limits.max_ratio * max(m.compress_size, 1):
            ratio = m.file_size / max(m.compress_size, 1)
            raise LoaderError("zip.part_ratio", name=name, kind=kind, part=m.filename, ratio=ratio,
                              limit=limits.max_ratio)
    if total >= limits.ratio_from and total > limits.max_ratio * max(packed, 1):
        raise LoaderError("zip.ratio", name=name, kind=kind, ratio=total / max(packed, 1), limit=limits.max_ratio)


def member_blocks(archive: zipfile.ZipFile, member: str, name: str, kind: str, limit: int) -> Iterator[bytes]:
    """The bytes of ``member`` in blocks; ``LoaderError`` if it declares more than ``limit`` or is damaged.

    zipfile's stream ends at the size the directory declares and checks the CRC there, so an entry
    that lies about its size yields no more than was checked, then fails its CRC: refused as damaged.
    """
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise LoaderError("file.damaged", name=name, kind=kind, detail=f"it has no {member!r}") from None
    if info.file_size > limit:
        raise LoaderError("zip.part_too_large", name=name, kind=kind, part=member, mb=info.file_size / 2**20,
                          limit=limit / 2**20)
    try:
        with archive.open(info) as stream:
            while block := stream.read(_BLOCK):
                yield block
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise LoaderError("file.damaged", name=name, kind=kind, detail=f"its part {member!r}: {exc}") from exc


def read_member(archive: zipfile.ZipFile, member: str, name: str, kind: str, limit: int) -> bytes:
    """All of a small member (relationships, styles), bounded as ``member_blocks``."""
    return b"".join(member_blocks(archive, member, name, kind, limit))


def find_member(archive: zipfile.ZipFile, member: str) -> str | None:
    """The stored name of ``member``, matched without regard to case as Office does, or None."""
    names = archive.namelist()
    if member in names:
        return member
    folded = member.casefold()
    return next((n for n in names if n.casefold() == folded), None)
