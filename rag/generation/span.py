"""The exact answer inside the chosen sentence: ``47天``, ``3000部``, ``唐庆旺``, ``1963年``.

By question type, the entity that answers: numbers with their unit for 多少/几, dates for 何时/哪年,
person names for 谁, places for 哪里 (jieba POS nr/ns/nt), the nearest one to the words the
question shares with the sentence and not itself one of them. For other questions, the run of the
sentence next to those shared words that the question does not contain (``X是由Y开发的`` → ``Y``).
Checked against CMRC 2018's gold spans with its character F1 (see the report of ``train``).
"""

from __future__ import annotations

import re

from rag.generation.features import fold, pos_tags, question_terms, question_type

_CN = "零〇一二两兩三四五六七八九十百千万萬亿億"
_UNIT = (r"(?:多|余|餘)?(?:万|萬|亿|億|千|百)?(?:%|％|‰|平方公里|平方米|公里|公尺|千米|厘米|公分|毫米|公斤|千克|美元|英镑|英鎊|欧元|歐元|日元|港元"
         r"|新台币|新臺幣|人民币|人民幣|小时|小時|分钟|分鐘|平方|立方米"
         r"|[个個家年天人项項部度倍成米元岁歲次所座条條名位辆輛台件吨噸里分秒月号號种種只隻支本届屆克周週层層场場首集卷章册冊间間份门門架艘枚颗顆块塊张張篇亩畝])?")
NUMBER = re.compile(rf"(?:约|約|近|超过|超過|逾|达|達)?(?:[0-9][0-9,.]*|[{_CN}]+)(?:\.[0-9]+)?{_UNIT}")
DATE = re.compile(rf"(?:公元前?|西元前?)?(?:[0-9]{{1,4}}|[{_CN}]{{2,4}})年(?:代|[0-9{_CN}]{{1,2}}月(?:[0-9{_CN}]{{1,3}}[日号號])?)?"
                  rf"|[0-9{_CN}]{{1,2}}月[0-9{_CN}]{{1,3}}[日号號]|[0-9{_CN}]{{1,2}}世[纪紀](?:[0-9{_CN}]{{1,2}}年代)?(?:[初中末]期?)?"
                  rf"|[\u4e00-\u9fff]{{1,2}}[朝代](?:[初中末]期)?")
_ENTITY = {"who": ("nr", "nrfg", "nrt"), "where": ("ns", "nt"), "what": ("nz", "nt", "nr", "ns")}
_SPLIT = re.compile(r"[，,；;：:。！？!?（）()、“”「」]")
_LEAD = "是为為由在于於把被将將的了和与與及即称稱叫名"
_TRAIL = "的了等之"


def _covered(question: str, sentence: str) -> list[bool]:
    """Characters of the sentence inside a word or bigram the question holds."""
    ws, bgs = question_terms(question)
    s = sentence.lower()
    mask = [False] * len(s)
    for term in [w for w in ws if len(w) >= 2] + [b[1:] for b in bgs]:
        for m in re.finditer(re.escape(term), s):
            for i in range(m.start(), m.end()):
                mask[i] = True
    return mask


def _distance(mask: list[bool], start: int, end: int) -> int:
    hits = [i for i, c in enumerate(mask) if c]
    if not hits:
        return 0
    return min(min(abs(h - start), abs(h - (end - 1))) for h in hits)


_ASKED_UNIT = re.compile(r"(?:多少|几|幾)(?:个|個)?([\u4e00-\u9fff])")


def _best(spans: list[tuple[int, int]], mask: list[bool], text: str = "", unit: str = "") -> tuple[int, int] | None:
    """The span with the asked unit (多少天 → …天), then with most shared words within 8 characters, then the first."""
    spans = [(s, e) for s, e in spans if e > s]
    if not spans:
        return None

    def key(se: tuple[int, int]) -> tuple[int, int, int, int]:
        s, e = se
        near = sum(mask[max(0, s - 8) : e + 8]) - sum(mask[s:e])
        return (int(bool(unit) and unit in fold(text[s:e])), near, -_distance(mask, s, e), -s)

    return max(spans, key=key)


def _entities(sentence: str, flags: tuple[str, ...]) -> list[tuple[int, int]]:
    """Runs of consecutive words tagged with one of ``flags`` (a name in pieces is one span)."""
    out, cur = [], None
    for w, f, s in pos_tags(sentence, hmm=True):
        if f in flags:
            cur = (cur[0], s + len(w)) if cur and cur[1] == s else (s, s + len(w))
            if out and out[-1][0] == cur[0]:
                out[-1] = cur
            else:
                out.append(cur)
        else:
            cur = None
    return out


def _trim(sentence: str, s: int, e: int) -> tuple[int, int]:
    while s < e and (sentence[s] in _LEAD or not sentence[s].strip() or _SPLIT.match(sentence[s])):
        s += 1
    while e > s and (sentence[e - 1] in _TRAIL or not sentence[e - 1].strip() or _SPLIT.match(sentence[e - 1])):
        e -= 1
    return s, e


def _gap(question: str, sentence: str, mask: list[bool]) -> tuple[int, int] | None:
    """The uncovered run next to the shared words, in the clause that shares the most."""
    clauses, start = [], 0
    for m in _SPLIT.finditer(sentence + "。"):
        if m.start() > start:
            clauses.append((start, m.start()))
        start = m.end()
    if not clauses:
        return None
    best_clause = max(clauses, key=lambda c: (sum(mask[c[0]:c[1]]), -c[0]))
    cs, ce = best_clause
    runs, i = [], cs
    while i < ce:
        if mask[i]:
            i += 1
            continue
        j = i
        while j < ce and not mask[j]:
            j += 1
        runs.append(_trim(sentence, i, j))
        i = j
    runs = [(s, e) for s, e in runs if e - s >= 1]
    if not runs:
        return None
    # The longest run next to a shared word (an answer fills the question's gap), else the longest.
    return max(runs, key=lambda r: (r[1] - r[0]) * (2 if (r[0] > cs and mask[r[0] - 1]) or (r[1] < ce and mask[r[1]]) else 1))


def answer_span(question: str, sentence: str) -> tuple[int, int]:
    """Offsets in ``sentence`` of the part that answers ``question``; the whole sentence when nothing narrower fits."""
    if not sentence.strip():
        return 0, len(sentence)
    qtype = question_type(question)
    mask = _covered(question, sentence)
    q_fold = fold(question)
    span = None
    if qtype == "num":
        m = _ASKED_UNIT.search(q_fold)
        span = _best([m.span() for m in NUMBER.finditer(sentence) if fold(m.group()) not in q_fold], mask, sentence,
                     m.group(1) if m else "")
    elif qtype == "when":
        span = _best([m.span() for m in DATE.finditer(sentence)], mask) or _best(
            [m.span() for m in NUMBER.finditer(sentence)], mask)
    elif qtype in ("who", "where"):
        span = _best([se for se in _entities(sentence, _ENTITY[qtype]) if fold(sentence[se[0]:se[1]]) not in q_fold], mask)
    if span is None and qtype in ("who", "where"):
        span = _gap(question, sentence, mask)
    if span is None:
        return _trim(sentence, 0, len(sentence))
    s, e = span
    return (s, e) if e > s else (0, len(sentence))


__all__ = ["DATE", "NUMBER", "answer_span"]
