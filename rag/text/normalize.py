"""Text normalisation and word segmentation shared by BM25, answer selection and evaluation."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache

from rag.config import cache_root
from rag.text import jieba_dict
from rag.text.script import fold_script

__all__ = [
    "QUESTION_WORDS", "STOPWORDS", "cjk_ratio", "content_words", "fold_script", "fold_width", "full_dictionary",
    "has_cjk", "index_terms", "is_chinese", "jieba_module", "normalize_for_match", "passage_match_form",
    "posseg_module", "segment", "warm_up", "words",
]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WS = re.compile(r"\s+")
_PUNCT_TOKEN = re.compile(r"^[\W_]+$")

# Function words that carry no retrieval signal; a short list on purpose, since
# content words like 多少 or 哪 are dropped only where answer selection decides.
STOPWORDS = frozenset(
    """的 了 和 与 及 或 在 是 为 对 把 被 让 从 到 向 由 以 之 也 都 就 而 并 等 其 这 那 个 些 着 过 吗 呢 吧 啊
    有 将 于 中 上 下 一 我 你 他 她 它 们 该 此 又 还 所 如 即 则 但 却 可 能 会 要 给 跟 同
    a an the of to in on at for by with from and or is are was were be been being it its as that this these
    those what which who whom whose how when where why do does did can could will would should""".split()
)
QUESTION_WORDS = frozenset(
    """多少 几 几个 几年 几天 哪 哪个 哪些 哪里 哪儿 哪所 哪家 哪一年 哪年 什么 怎么 怎样 如何 为什么 谁 多大 多长 多高 多久 是否
    吗 呢 何 何时 请问 叫 名字 时候 how many much what which who when where why""".split()
)


_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")


def _half(m: re.Match[str]) -> str:
    ch = m.group()
    return " " if ch == "\u3000" else chr(ord(ch) - 0xFEE0)


def fold_width(text: str) -> str:
    """Full-width ASCII and the ideographic space folded to half-width (NFKC on those only)."""
    return _FULL_WIDTH.sub(_half, text)


def normalize_for_match(text: str) -> str:
    """The matching form used by evaluation and citation checks: no whitespace, width folded, lower case,
    traditional folded to simplified (``fold_script``), so either script matches the other."""
    return fold_script(_WS.sub("", fold_width(text)).lower())


@lru_cache(maxsize=2048)
def passage_match_form(text: str) -> str:
    """``normalize_for_match`` of a passage, remembered for the last 2,048 passages (about 8 MB): a server
    normalises the same candidates question after question, and OpenCC's folding of a passage costs more
    than the rest of its fusion (11% of a busy server's time before)."""
    return normalize_for_match(text)


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def cjk_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if _CJK.match(c)) / len(letters)


def is_chinese(text: str) -> bool:
    """True when the text is mostly Chinese (decides the language of messages)."""
    return cjk_ratio(text) >= 0.3


@lru_cache(maxsize=1)
def jieba_module():
    """jieba, its dictionary loaded (once; segmentation and part-of-speech tagging share it): the quick
    stand-in (``rag.text.jieba_dict``) when ``rag model`` built one, until bulk work or a server wants
    jieba's own, else jieba's own at once."""
    jieba = jieba_dict.import_jieba()  # heavy import, loaded once on first use
    jieba.setLogLevel(logging.WARNING)
    if not jieba_dict.install_quick(jieba, cache_root()):
        jieba.initialize()  # takes jieba's own lock, so a warm-up thread and a caller can race safely
    return jieba


def posseg_module():
    """``jieba.posseg`` over the same dictionary (with the stand-in, its tags come from it too)."""
    return jieba_dict.posseg(jieba_module())


def full_dictionary() -> None:
    """jieba's own tables from now on (a server's warm-up: lookups in them are 40x cheaper); first, so that a
    process that has not segmented yet loads them at once instead of installing the stand-in too."""
    jieba_dict.load_full()
    jieba_module()


def warm_up() -> None:
    """Load jieba's dictionary (0.6 s) in the background while the caller loads other things."""
    threading.Thread(target=jieba_module, name="jieba-warm-up", daemon=True).start()


def _folded(text: str) -> str:
    """NFKC, lower case, traditional folded to simplified: the form words and BM25 terms are taken from."""
    return fold_script(unicodedata.normalize("NFKC", text).lower())


def words(text: str) -> list[str]:
    """jieba search-mode words (finer pieces added) of the normalised text, lower-cased, no punctuation,
    in simplified script (``fold_script``): a traditional text gives the words of its simplified form."""
    return _words(_folded(text))


def _words(folded: str) -> list[str]:
    out = []
    for w in jieba_module().cut_for_search(folded):
        w = w.strip()
        if w and not _PUNCT_TOKEN.match(w):
            out.append(w)
    return out


_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")


def index_terms(text: str) -> list[str]:
    """BM25 terms: jieba words without stop words, plus character bigrams of CJK runs, all taken
    from the folded text (traditional as simplified), so 實驗室 and 实验室 give the same terms.

    Bigrams make matching robust to segmentation that differs between a short
    question and a long passage (``解决率`` vs ``解决`` + ``率``).
    """
    folded = _folded(text)
    terms = [w for w in _words(folded) if w not in STOPWORDS]
    for run in _CJK_RUN.findall(folded):
        terms.extend("#" + run[i : i + 2] for i in range(len(run) - 1))
    return terms


def segment(text: str) -> list[str]:
    """jieba precise-mode words (no sub-word pieces), punctuation dropped, in the text's own script
    (pieces of the text itself: fold them with ``fold_script`` to compare across scripts)."""
    return [w for w in jieba_module().lcut(text) if w.strip() and not _PUNCT_TOKEN.match(w)]


_EN_WH_PHRASE = re.compile(r"\bhow\s+(?:many|much|long|far|old|big|large|often|tall|high)\b", re.I)


def content_words(text: str) -> list[str]:
    """``words`` without stop words and question words: what a question is about."""
    text = _EN_WH_PHRASE.sub(" ", text)
    return [w for w in words(text) if w not in STOPWORDS and w not in QUESTION_WORDS]
