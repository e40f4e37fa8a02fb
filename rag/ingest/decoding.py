"""Bytes to text: which encoding a text file is in (UTF-8, UTF-16, GB18030/GBK, Big5, Shift-JIS,
EUC-JP, EUC-KR …), told from a sample by which reading is plausible text.

No detector library does short Chinese files well (charset-normalizer picks hangul garbage for
5-character GBK), so candidates are scored here and charset-normalizer only breaks near-ties.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from rag.errors import LoaderError


def decode_bytes(raw: bytes, name: str) -> tuple[str, str]:
    """Decode text bytes; returns the text and the name of its encoding.

    UTF-8 is certain when the bytes decode as UTF-8, and nearly so when the only fault is a
    character cut off at the end or most non-ASCII bytes still form UTF-8 characters (a truncated
    download, a few bad bytes): then the damage is replaced by U+FFFD.  Otherwise the legacy CJK
    encodings that decode a sample strictly compete on how plausible their text is, since GB18030
    decodes nearly any bytes and a Big5 or Shift-JIS file read as GB18030 is valid garbage.
    Detection reads at most 64 KB; the whole file is decoded once, by the winner.
    """
    if not raw.strip():
        raise LoaderError("file.empty", name=name)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _check_text(raw.decode("utf-16"), name), "utf-16"
        except UnicodeDecodeError as exc:
            raise LoaderError("file.bad_utf16", name=name) from exc
    if b"\x00" in raw[:8192]:
        raise LoaderError("file.binary_nul", name=name)
    bom = raw.startswith(codecs.BOM_UTF8)
    body = raw[len(codecs.BOM_UTF8):] if bom else raw
    try:
        return _check_text(body.decode("utf-8"), name), "utf-8"
    except UnicodeDecodeError as exc:
        # Sound UTF-8 up to a character cut off at the very end: a truncated download.
        cut = exc.end == len(body) and exc.reason == "unexpected end of data"
    sample = _sample(body)
    wide, broken = _utf8_evidence(sample)
    surely_utf8 = bom or cut or (wide >= 3 * broken and wide >= 12)  # four CJK characters at least
    encoding = None if surely_utf8 else _guess_legacy(sample)
    if encoding is None and (surely_utf8 or wide >= broken > 0):  # weaker evidence, but no CJK reading is plausible
        return _check_text(body.decode("utf-8", errors="replace"), name), "utf-8 (damaged bytes replaced)"
    if encoding is None:
        return _detected(raw, name)
    try:
        return _check_text(body.decode(_CODEC[encoding]), name), encoding
    except UnicodeDecodeError:
        pass
    # The sample was sound but a later part is not (a truncated tail, a bad copy): keep the text, mark the damage.
    text = body.decode(_CODEC[encoding], errors="replace")
    if text.count("\ufffd") <= max(2, len(text) // 1000):
        return _check_text(text, name), f"{encoding} (damaged bytes replaced)"
    return _detected(raw, name)


# Where detection looks: enough text to be sure, little enough to stay fast on a 50 MB file.
_SAMPLE_BYTES = 64 * 1024
_SCORE_CHARS = 4000
# Rival readings of legacy bytes: the language each is written for, and per encoding its codecs
# as (recorded name, Python codec), narrowest first: the first that decodes the sample speaks for
# the encoding, the later ones only add characters.  Big5 is read with cp950, the Windows mapping
# most Big5 files were written with; Python's "big5" table maps a few marks to look-alikes
# (A1E3 to U+223C instead of the full-width tilde ～, A145 to a bullet instead of ‧).
_LEGACY: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("chinese", (("gb18030", "gb18030"),)),
    ("chinese", (("big5", "cp950"), ("big5-hkscs", "big5hkscs"))),
    ("japanese", (("shift_jis", "shift_jis"), ("cp932", "cp932"))),
    ("japanese", (("euc-jp", "euc_jp"),)),
    ("korean", (("euc-kr", "euc_kr"), ("cp949", "cp949"))),
)
_CODEC = {name: codec for _, group in _LEGACY for name, codec in group}
# Added to the mean cost of a reading whose text is not in the language its encoding is for:
# Chinese read as EUC-JP is all kanji, Japanese read as GB18030 is kana among random hanzi.
_FOREIGN_ENCODING = 0.5
# Readings this close are told apart by charset-normalizer's letter frequencies (short texts),
# once there are enough letters for them: on 5 characters it prefers a hangul misreading of GBK.
_TIE = 0.05
_TIE_BREAK_BYTES = 32
# Above this mean cost per non-ASCII character the best CJK reading is still mostly garbage.
_IMPLAUSIBLE = 2.0
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_WIDE = re.compile("[\u0800-\U0010ffff]")


def _sample(body: bytes) -> bytes:
    """The bytes detection looks at, from the first non-ASCII byte on (an English preamble says nothing)."""
    m = _NON_ASCII.search(body)
    start = m.start() if m else 0
    return body[start : start + _SAMPLE_BYTES]


def _utf8_evidence(sample: bytes) -> tuple[int, int]:
    """Bytes in well-formed UTF-8 characters of 3 or 4 bytes (CJK, emoji), and bytes of broken sequences.

    Other encodings form few such characters by chance: over real GBK, Big5, Shift-JIS and EUC
    texts of 5 to 200 characters, 3 bytes per broken byte at worst, and then from a single
    chance character in a line of ASCII; once there are 12 such bytes, under 0.6.
    """
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(sample, final=False)
    valid = text.replace("\ufffd", "")
    wide = sum(len(c.encode()) for c in _WIDE.findall(valid))
    return wide, len(sample) - len(valid.encode())  # every byte of a broken sequence is >= 0x80


def _guess_legacy(sample: bytes) -> str | None:
    """The legacy encoding whose strict reading of ``sample`` is the most plausible text, if any is plausible."""
    scored: list[tuple[float, str, str]] = []
    for language, group in _LEGACY:
        reading = _first_reading(sample, group)
        if reading is not None:
            cost, written_in = _implausibility(reading[1])
            cost += _FOREIGN_ENCODING if written_in != language else 0.0
            scored.append((cost, reading[0], language))
    if not scored:
        return None
    best = min(cost for cost, _, _ in scored)
    if best > _IMPLAUSIBLE:
        return None
    tied: dict[str, str] = {}  # language -> its first reading about as plausible as the best (GB18030 before Big5)
    for cost, encoding, language in scored:
        if cost <= best + _TIE:
            tied.setdefault(language, encoding)
    if len(tied) > 1 and len(sample) >= _TIE_BREAK_BYTES:
        return _tie_break(sample, list(tied.values()))
    return next(iter(tied.values()))


def _first_reading(sample: bytes, group: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
    for name, codec in group:
        try:  # not final: the sample may end inside a character
            return name, codecs.getincrementaldecoder(codec)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
    return None


def _tie_break(sample: bytes, tied: list[str]) -> str:
    """charset-normalizer's choice among equally plausible readings of different languages, else the first (Chinese)."""
    from charset_normalizer import from_bytes  # noqa: PLC0415 - only for unusual encodings

    match = from_bytes(sample, cp_isolation=[_CODEC[name] for name in tied]).best()
    names = {codecs.lookup(_CODEC[name]).name: name for name in tied}
    return names.get(codecs.lookup(match.encoding).name, tied[0]) if match is not None else tied[0]


def _detected(raw: bytes, name: str) -> tuple[str, str]:
    """charset-normalizer's guess, for what is neither UTF-8 nor plausible CJK (Latin-1, Cyrillic ...)."""
    from charset_normalizer import from_bytes  # noqa: PLC0415 - only for unusual encodings

    best = from_bytes(raw).best()
    if best is None:
        raise LoaderError("file.unknown_encoding", name=name)
    return _check_text(str(best), name), best.encoding


_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc]")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_HANGUL_RUN = re.compile(r"[\uac00-\ud7a3]{7,}")
_IDEOGRAPH = r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003ffff]"
# Chinese and Japanese put no spaces between words; Korean or Greek read as GB18030 has them everywhere.
_SPACED_IDEOGRAPH = re.compile(f"(?<={_IDEOGRAPH})[,.;:!?]? (?={_IDEOGRAPH})")
# An ideograph inside a Latin word (Gr晧e) is an accented letter of a European encoding, misread.
_IDEOGRAPH_IN_WORD = re.compile(f"(?<=[A-Za-z]){_IDEOGRAPH}+(?=[A-Za-z])")
_PUNCT = frozenset("\u3000、。〃〈〉《》「」『』【】〔〕〖〗‘’“”…—–·・ー～\u00a0")


def _implausibility(text: str) -> tuple[float, str]:
    """Mean cost of the non-ASCII characters (0 for common ones, 10 for private-use or control ones),
    and the language the text looks written in.

    Which ideographs are common is read off the legacy character sets themselves: their first
    levels (GB2312, Big5, JIS X 0208) hold the frequent ones, and a misread text is made of rare
    or private-use characters, or of a mix of scripts no language writes.
    """
    sample = text[:_SCORE_CHARS]
    wide = len(sample) - len(sample.encode("ascii", "ignore"))
    if not wide:
        return 0.0, "chinese"
    language = ("japanese" if len(_KANA.findall(sample)) >= 0.3 * wide
                else "korean" if len(_HANGUL.findall(sample)) >= 0.3 * wide else "chinese")
    cost = sum(_char_cost(c, language) for c in sample if c > "\x7f")
    cost += len(_SPACED_IDEOGRAPH.findall(sample)) + 3 * len(_IDEOGRAPH_IN_WORD.findall(sample))
    if language == "korean":  # Korean puts spaces between words, which are rarely over 6 syllables long
        cost += sum(len(run) - 6 for run in _HANGUL_RUN.findall(sample)) / 2
    return cost / wide, language


@lru_cache(maxsize=65536)
def _char_cost(c: str, language: str) -> float:
    if "\uac00" <= c <= "\ud7a3":
        return (0.0 if c in _levels() else 3.0) if language == "korean" else 4.0
    level = _levels().get(c)
    if level is not None:  # an ideograph of a legacy set
        if language == "japanese" and c not in _jis_kanji():
            return level + 3.0  # a simplified form among kana: GB2312 bytes read as EUC-JP
        return level + (1.5 if language == "korean" else 0.0)  # hanja are rare in modern Korean
    if _KANA.match(c):
        return 0.0 if language == "japanese" else 1.5  # Chinese quotes Japanese titles and names
    if c in _PUNCT or "\uff01" <= c <= "\uff5e":
        return 1.5 if language == "korean" else 0.0  # Korean writes ASCII punctuation
    if "\uff65" <= c <= "\uff9f":  # half-width katakana: old Japanese files, or GBK read as Shift-JIS
        return 1.0 if language == "japanese" else 10.0
    if unicodedata.category(c) in {"Co", "Cn", "Cc", "Cs"} or c == "\ufffd":
        return 10.0
    if _is_letter(c) or c >= "\U00020000" or "\u3105" <= c <= "\u312f":
        return 3.0  # ideographs in no legacy set's levels, bopomofo: rare in prose
    if c < "\u0400":
        return 1.0  # Latin-1 and Greek: units, names and formulas (°C, é, ΔH)
    return 2.0  # other symbols, Cyrillic, box drawing


def _decode_range(encoding: str, leads: range, trails: Iterable[int]) -> list[str]:
    out = []
    for lead in leads:
        for trail in trails:
            try:
                out.append(bytes((lead, trail)).decode(encoding))
            except UnicodeDecodeError:
                continue
    return out


_BIG5_TRAILS = [*range(0x40, 0x7F), *range(0xA1, 0xFF)]
_EUC_TRAILS = range(0xA1, 0xFF)


@lru_cache(maxsize=1)
def _levels() -> dict[str, int]:
    """Cost of each ideograph and hangul syllable: 0 in a first (frequent) level, 1 in a second."""
    levels: dict[str, int] = {}
    second = (
        _decode_range("gb2312", range(0xD8, 0xF8), _EUC_TRAILS)
        + _decode_range("big5", range(0xC9, 0xFA), _BIG5_TRAILS)
        + _decode_range("euc-jp", range(0xD0, 0xF5), _EUC_TRAILS)
        + _decode_range("euc-kr", range(0xCA, 0xFE), _EUC_TRAILS)
    )
    first = (
        _decode_range("gb2312", range(0xB0, 0xD8), _EUC_TRAILS)
        + _decode_range("big5", range(0xA4, 0xC7), _BIG5_TRAILS)
        + _decode_range("euc-jp", range(0xB0, 0xD0), _EUC_TRAILS)
        + _decode_range("euc-kr", range(0xB0, 0xC9), _EUC_TRAILS)
    )
    levels.update(dict.fromkeys((c for c in second if len(c) == 1 and _is_letter(c)), 1))
    levels.update(dict.fromkeys((c for c in first if len(c) == 1 and _is_letter(c)), 0))
    return levels


def _is_letter(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7a3" or "\uf900" <= c <= "\ufaff"


@lru_cache(maxsize=1)
def _jis_kanji() -> frozenset[str]:
    """The kanji Japanese text can hold (JIS X 0208 and its Windows extension)."""
    return frozenset(_decode_range("cp932", range(0x88, 0xA0), range(0x40, 0xFD))
                     + _decode_range("cp932", range(0xE0, 0xFD), range(0x40, 0xFD)))


def _check_text(text: str, name: str) -> str:
    sample = text[:20000]
    control = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    if control > max(8, len(sample) // 100):
        raise LoaderError("file.binary_control", name=name, control=control)
    if not text.strip():
        raise LoaderError("file.whitespace", name=name)
    return text
