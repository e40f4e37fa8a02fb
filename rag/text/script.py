"""Traditional Chinese folded to simplified (OpenCC's t2s dictionaries), one character for one.

Matching, BM25 terms and answer features compare folded text, so a simplified question finds a
traditional passage and the reverse, while quotes and offsets stay in the document's own script.

``fold_script`` keeps the length: every OpenCC t2s character entry maps one code point to one,
and the phrase entries used here (``計畫`` -> ``计划``, ``乾隆`` stays ``乾隆``) are only those whose
two sides have the same length (all 277 of them in opencc-python-reimplemented 0.1.7), so
position ``i`` of the folded text is position ``i`` of the original.  OpenCC's own converter does
the same phrase-then-character lookup but runs at 0.2-0.3 M chars/s in pure Python; this one is
``str.translate`` between phrase matches, 4-8 M chars/s on DRCD paragraphs (under 1% of segmenting
them with jieba), with OpenCC's output on all of DRCD dev (its 1,000 paragraphs and 3,524 questions).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources

from rag.errors import ConfigError

_CHARACTERS, _PHRASES = "TSCharacters.txt", "TSPhrases.txt"


def _entries(name: str) -> Iterator[tuple[str, str]]:
    """``(traditional, simplified)`` pairs of an OpenCC dictionary: the first candidate of each line."""
    try:
        text = (resources.files("opencc") / "dictionary" / name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError) as exc:
        raise ConfigError(f"no OpenCC dictionary {name} ({exc}): pip install opencc-python-reimplemented") from exc
    for line in text.splitlines():
        key, _, values = line.partition("\t")
        if key and values:
            yield key, values.split(" ")[0]


class _Folder:
    def __init__(self) -> None:
        chars = {k: v for k, v in _entries(_CHARACTERS) if len(k) == len(v) == 1 and k != v}
        for k in chars:  # closed under itself (薴 -> 苧 -> 苎), so folding twice changes nothing more
            seen = {k}
            while chars[k] in chars and chars[k] not in seen:
                seen.add(chars[k])
                chars[k] = chars[chars[k]]
        self.table = str.maketrans(chars)
        # a phrase entry outranks the characters (乾隆 is not 干隆); only length-keeping ones, so offsets map 1:1
        self.phrases = {k: v for k, v in _entries(_PHRASES) if len(k) == len(v) > 1}
        for v in list(self.phrases.values()):  # the simplified phrase stays as it is: 乾隆 folded twice is 乾隆
            self.phrases.setdefault(v, v)
        alternatives = sorted(self.phrases, key=len, reverse=True)  # the longest phrase at a position wins
        self.pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None
        # The characters folding can change: the table's, and those a phrase changes (覆 in 反覆, not in
        # the table alone). A text with none of them folds to itself, since every phrase it could hold
        # then maps to itself too: most simplified text skips the translate (about 20 µs a chunk,
        # paid for every retrieval candidate) for one set scan in C.
        self.changing = frozenset(chars) | {a for k, v in self.phrases.items() for a, b in zip(k, v) if a != b}

    def fold(self, text: str) -> str:
        if self.changing.isdisjoint(text):
            return text
        if self.pattern is None:
            return text.translate(self.table)
        out: list[str] = []
        pos = 0
        for m in self.pattern.finditer(text):
            out.append(text[pos : m.start()].translate(self.table))
            out.append(self.phrases[m.group()])
            pos = m.end()
        if not out:
            return text.translate(self.table)
        out.append(text[pos:].translate(self.table))
        return "".join(out)


@lru_cache(maxsize=1)
def _folder() -> _Folder:
    return _Folder()  # 4,400 dictionary lines, read once (about 10 ms)


def fold_script(text: str) -> str:
    """Traditional characters (and OpenCC's t2s phrases) as simplified; everything else as it is.

    ``len(fold_script(t)) == len(t)`` always, and character ``i`` of the result comes from
    character ``i`` of ``t``: an offset in the folded text is an offset in the original.
    """
    return _folder().fold(text)
