"""A quick-loading stand-in for jieba's dictionary, for a process that segments a few texts (a cold ``rag ask``).

jieba's ``initialize`` unmarshals its prefix dictionary (498k words and prefixes, 0.4 s) and importing
``jieba.posseg`` parses dict.txt again for the part-of-speech tags (349k words, 0.17 s). Both hold the
GIL, so on two cores a cold question's own work (its embedding, the index) waits on them. jieba offers
no lighter form, so this module keeps the very same entries (word -> frequency, word -> tag, the total)
in one file under the cache, as an open-addressing hash table (CRC-32 of the UTF-8 word, linear probing)
read in one go (~12 MB, no parsing): a lookup costs ~2 us instead of a dict's ~0.05 us.

Every lookup answers what jieba's own tables would, so a segmentation (and a BM25 query's terms, and a
tagging) is the same, by construction; ``tests/text/test_jieba_dict.py`` checks every entry and a
corpus's segmentation. The tables are built from jieba's own once they are loaded in full (``rag model``
at set-up, or the first process that loads them), and ignored when jieba or its dict.txt changes (the
file's bytes decide, not its mtime: environments that share the cache share the tables).

The stand-in suits a few texts only: after ``SWITCH_AFTER`` lookups (bulk work: indexing) and on
``load_full`` (a server's warm-up) the process loads jieba's own tables and uses them from then on.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
import zlib
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from rag import import_guard
from rag.files import write_atomic

FORMAT_VERSION = 1
SWITCH_AFTER = 200_000  # lookups (~0.4 s of them) before the process loads jieba's own tables
_DATA, _META = "jieba.quick.bin", "jieba.quick.json"
_LOCK = threading.RLock()
# the QuickTables in use, while in use; "full": jieba's own tables were asked for, the stand-in is not installed
_state: dict[str, Any] = {"quick": None, "full": False}


def import_jieba() -> ModuleType:
    """``jieba``, imported without ``pkg_resources``. jieba 0.42 imports setuptools' deprecated
    ``pkg_resources`` (~60 ms of a cold process, and a deprecation warning) only to open its own data files,
    and opens them by path when that import fails: it fails in this thread while jieba's import runs
    (``rag.import_guard``), when nothing has imported ``pkg_resources`` yet (then it is already paid for)."""
    with _LOCK:
        if "jieba" in sys.modules:
            return sys.modules["jieba"]
        with import_guard.without(("pkg_resources",)):  # (once imported, it is found before any finder)
            import jieba  # noqa: PLC0415 - heavy import, once, at first use
        return jieba


def _dict_path(jieba: ModuleType) -> Path:
    return Path(jieba.DEFAULT_DICT or Path(jieba.__file__).parent / jieba.DEFAULT_DICT_NAME)


def _source_stamp(jieba: ModuleType) -> dict[str, Any]:
    """What the tables were made from: jieba's version and its dictionary file's size and mtime."""
    st = _dict_path(jieba).stat()
    return {"format": FORMAT_VERSION, "jieba": getattr(jieba, "__version__", ""), "dict_size": st.st_size,
            "dict_mtime_ns": st.st_mtime_ns}


def _dict_digest(jieba: ModuleType) -> str:
    return hashlib.sha256(_dict_path(jieba).read_bytes()).hexdigest()


def _is_current(meta: dict[str, Any], jieba: ModuleType) -> bool:
    """True when tables with ``meta`` answer for this jieba. The mtime alone is not the test: pip stamps a
    file with the time it installed it, so every environment (a CI clone's, a second venv) has its own
    mtime for the same dict.txt and, sharing the cache, each would find the other's tables stale and
    rebuild them, leaving the other with jieba's slow load. The same stamp: current, nothing read; the
    same stamp but the mtime: current when dict.txt has the same bytes (SHA-256 of 5 MB, ~10 ms)."""
    made_from, now = meta.get("source"), _source_stamp(jieba)
    if made_from == now:
        return True
    if not isinstance(made_from, dict) or any(made_from.get(k) != v for k, v in now.items() if k != "dict_mtime_ns"):
        return False
    return meta.get("dict_sha256") == _dict_digest(jieba)


class QuickTables:
    """jieba's word -> frequency and word -> tag tables, and the total, read from one file."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        data = (folder / _DATA).read_bytes()  # one read, no parsing: the arrays are views into it
        view = memoryview(data)
        n, slots = int(meta["entries"]), int(meta["slots"])
        at = 0

        def take(count: int, fmt: str, size: int) -> memoryview:
            nonlocal at
            part = view[at : at + count * size].cast(fmt)
            at += count * size
            return part

        self._slots = take(slots, "I", 4)
        self._off = take(n + 1, "I", 4)
        self._freq = take(n, "I", 4)
        self._tag = take(n, "B", 1)
        self._keys = data[at:]
        self._mask = slots - 1
        self.tags: list[str] = meta["tags"]
        self.total = int(meta["total"])
        self.entries = n
        self.lookups = 0

    def find(self, word: str) -> int:
        """The entry of ``word``, or -1."""
        self.lookups += 1
        key = word.encode("utf-8")
        h = zlib.crc32(key) & self._mask
        slots, off, keys = self._slots, self._off, self._keys
        while True:
            e = slots[h]
            if e == 0:
                return -1
            if keys[off[e - 1] : off[e]] == key:
                return e - 1
            h = (h + 1) & self._mask

    def freq(self, i: int) -> int:
        return self._freq[i]

    def tag(self, i: int) -> str | None:
        t = self._tag[i]
        return self.tags[t - 1] if t else None

    def words(self) -> Iterator[str]:
        keys, off = self._keys, self._off
        for i in range(self.entries):
            yield keys[off[i] : off[i + 1]].decode("utf-8")


class _Lookups(Mapping):
    """Read-only mapping over QuickTables; after ``SWITCH_AFTER`` lookups it has jieba load its own tables."""

    def __init__(self, tables: QuickTables) -> None:
        self._t = tables

    def _find(self, word: object) -> int:
        if not isinstance(word, str):
            return -1
        if self._t.lookups >= SWITCH_AFTER:
            threading.Thread(target=load_full, name="jieba-full-dictionary").start()  # once: load_full ends the stand-in
            self._t.lookups = -(1 << 62)
        return self._t.find(word)

    def __len__(self) -> int:
        return self._t.entries

    def __iter__(self) -> Iterator[str]:
        return self._t.words()


class QuickFreq(_Lookups):
    """jieba's ``Tokenizer.FREQ`` (words and their prefixes -> frequency, 0 for a prefix only)."""

    def __getitem__(self, word: str) -> int:
        i = self._find(word)
        if i < 0:
            raise KeyError(word)
        return self._t.freq(i)

    def get(self, word: str, default: Any = None) -> Any:
        i = self._find(word)
        return self._t.freq(i) if i >= 0 else default

    def __contains__(self, word: object) -> bool:
        return self._find(word) >= 0


class QuickTags(_Lookups):
    """``jieba.posseg``'s ``word_tag_tab`` (word -> part-of-speech tag)."""

    def __getitem__(self, word: str) -> str:
        i = self._find(word)
        tag = self._t.tag(i) if i >= 0 else None
        if tag is None:
            raise KeyError(word)
        return tag

    def get(self, word: str, default: Any = None) -> Any:
        i = self._find(word)
        tag = self._t.tag(i) if i >= 0 else None
        return default if tag is None else tag

    def __contains__(self, word: object) -> bool:
        i = self._find(word)
        return i >= 0 and self._t.tag(i) is not None

    def __iter__(self) -> Iterator[str]:
        return (w for i, w in enumerate(self._t.words()) if self._t.tag(i) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def tables_dir(cache: Path) -> Path:
    return cache / "jieba"


def find(cache: Path, jieba: ModuleType) -> Path | None:
    """The folder of current tables under ``cache``, or None."""
    folder = tables_dir(cache)
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not (folder / _DATA).is_file():
        return None
    return folder if _is_current(meta, jieba) else None


def build(cache: Path, jieba: ModuleType, freq: Mapping[str, int], total: int, tags: Mapping[str, str]) -> Path:
    """Write the tables of jieba's own ``freq``, ``total`` and ``tags`` under ``cache`` (atomically)."""
    if any(t not in freq for t in tags):
        raise ValueError("jieba's tag table is not a subset of its dictionary; the stand-in cannot hold it")
    words = list(freq)
    n = len(words)
    slots = 1 << max(16, (2 * n - 1).bit_length())  # a load factor under 1/2: short probe chains
    mask = slots - 1

    table, offsets, freqs, tag_ids = array("I", bytes(4 * slots)), array("I", [0]), array("I"), array("B")
    tag_names = sorted(set(tags.values()))
    if len(tag_names) > 255:
        raise ValueError(f"{len(tag_names)} part-of-speech tags: the stand-in holds 255")
    tag_of = {t: k + 1 for k, t in enumerate(tag_names)}
    keys = bytearray()
    for i, w in enumerate(words):
        key = w.encode("utf-8")
        keys += key
        offsets.append(len(keys))
        freqs.append(freq[w])
        tag_ids.append(tag_of.get(tags.get(w, ""), 0))
        h = zlib.crc32(key) & mask
        while table[h]:
            h = (h + 1) & mask
        table[h] = i + 1
    arrays = [table, offsets, freqs, tag_ids]
    if sys.byteorder != "little":
        for a in arrays[:3]:
            a.byteswap()
    folder = tables_dir(cache)
    folder.mkdir(parents=True, exist_ok=True)
    # the digest beside "source", not in it: tables stay readable by code that compares "source" whole
    meta = {"source": _source_stamp(jieba), "dict_sha256": _dict_digest(jieba), "entries": n, "slots": slots, "total": total, "tags": tag_names}
    write_atomic(folder / _DATA, b"".join(a.tobytes() for a in arrays) + bytes(keys))
    write_atomic(folder / _META, json.dumps(meta).encode("utf-8"))  # last: it names the data as current
    return folder


def install_quick(jieba: ModuleType, cache: Path) -> bool:
    """Have jieba's default tokenizer use the tables under ``cache``, when current ones exist there and
    jieba has loaded nothing yet; True when it does."""
    with _LOCK:
        if _state["quick"] is not None:
            return True
        if _state["full"] or jieba.dt.initialized or jieba.dt.dictionary != jieba.DEFAULT_DICT:
            return False
        folder = find(cache, jieba)
        if folder is None:
            return False
        try:
            tables = QuickTables(folder)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        with jieba.dt.lock:
            jieba.dt.FREQ, jieba.dt.total = QuickFreq(tables), tables.total
            jieba.dt.initialized = True
        _state["quick"] = tables
        return True


def posseg(jieba: ModuleType) -> ModuleType:
    """``jieba.posseg``; while the stand-in is in use, imported without parsing dict.txt (its module-level
    tagger reads the tags from the stand-in instead)."""
    with _LOCK:
        tables = _state["quick"]
        if tables is None or "jieba.posseg" in sys.modules:
            import jieba.posseg as pos  # noqa: PLC0415 - the tagger (0.2 s with jieba's own tags) at its first use

            return pos
        jieba.dt.get_dict_file = lambda: io.BytesIO()  # posseg's import parses nothing ...
        try:
            import jieba.posseg as pos  # noqa: PLC0415 - the tagger, at its first use, its tags from the stand-in
        finally:
            del jieba.dt.get_dict_file
        pos.dt.word_tag_tab = QuickTags(tables)  # ... and reads its tags here
        return pos


def load_full(jieba: ModuleType | None = None) -> None:
    """End the stand-in, or keep it from being installed: jieba's own tables from now on (0.6 s once where
    the stand-in was in use; for bulk work and servers)."""
    if jieba is None:
        jieba = import_jieba()  # only when there is a stand-in to end
    with _LOCK:
        _state["full"] = True
        if _state["quick"] is None:
            return
        pos = sys.modules.get("jieba.posseg")
        freq, total, tags = _own_tables(jieba, with_tags=pos is not None)
        with jieba.dt.lock:
            jieba.dt.FREQ, jieba.dt.total = freq, total
        if pos is not None:
            pos.dt.word_tag_tab = tags
        _state["quick"] = None


def _own_tables(jieba: ModuleType, with_tags: bool = True) -> tuple[dict[str, int], int, dict[str, str]]:
    """jieba's own word -> frequency table (its marshal cache), its total and, ``with_tags``, posseg's
    word -> tag table (parsed from dict.txt as posseg parses it)."""
    fresh = jieba.Tokenizer()
    fresh.initialize()
    tags: dict[str, str] = {}
    if with_tags:
        import jieba.posseg as pos  # noqa: PLC0415 - its tags: parsed from dict.txt, as posseg does

        tagger = pos.POSTokenizer.__new__(pos.POSTokenizer)
        tagger.load_word_tag(fresh.get_dict_file())
        tags = tagger.word_tag_tab
    return fresh.FREQ, fresh.total, tags


def in_use() -> bool:
    """Whether jieba reads from the stand-in now."""
    return _state["quick"] is not None


def ensure_built(cache: Path) -> Path | None:
    """The current tables under ``cache``, built from jieba's own if missing (about 2 s, once; ``rag model``).
    None where the cache cannot be written."""
    jieba = import_jieba()  # only when the tables are made
    folder = find(cache, jieba)
    if folder is not None:
        return folder
    freq, total, tags = _own_tables(jieba)
    try:
        return build(cache, jieba, freq, total, tags)
    except OSError:
        return None


__all__ = ["SWITCH_AFTER", "QuickFreq", "QuickTables", "QuickTags", "build", "ensure_built", "find",
           "import_jieba", "in_use", "install_quick", "load_full", "posseg"]
