"""The exact answer inside the chosen sentence: ``47天``, ``3000部``, ``唐庆旺``, ``1963年``.

A learned span scorer. The candidates of a sentence are its jieba word runs (1-6 words inside a
clause, and every clause's prefixes and suffixes at word boundaries), its clauses and runs of
clauses between punctuation, the whole sentence, number and date matches (``NUMBER``, ``DATE``)
and the old rules' pick (``rule_span``). Each gets a feature vector (``FEATURES``): question type
and its crossings with what the span holds (numbers, dates, person/place/organisation names by
jieba POS), length, how much of the span the question's words cover, whether question words sit
right before or after it (split by whether they come before or after the interrogative in the
question: ``X是什么时候成立的`` vs ``X于1963年成立``; the characters next to the interrogative:
``被哪个单位列为`` vs ``被联合国教科文组织列为``), the POS of its first and last word and its
neighbours, clause alignment, the asked unit (多少天 → …天) and head noun (哪所大学 → …大学), and
question marks (describe/list questions) crossed with length. A listwise logistic regression (a
softmax over the sentence's candidates) trained on CMRC 2018 trial + DRCD dev
(``rag.training.span_train``, which reports paragraph-grouped cross-validation) scores them; the
best wins. About 4-5 ms a call, most of it jieba's POS tagging with its HMM (unknown names). The model ships as data
(``span.json``: feature list, normalisation, weights), refused when its feature list differs, in
which case the rules answer. Traditional text is folded to simplified (``fold_script``, one
character for one) before matching and tagging, so offsets stay those of the original sentence.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.generation.features import QTYPES, asked_for, fold, pos_tags, question_terms, question_type
from rag.text.normalize import fold_script

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
MODEL_PATH = Path(__file__).with_name("span.json")


# ---- the old rules (a baseline, a candidate and a feature of the learned scorer) ---------------
def _norm(sentence: str) -> str:
    """Lower case, width and script folded, one character for one (offsets stay valid)."""
    out = []
    for ch in sentence:
        c = unicodedata.normalize("NFKC", ch).lower()
        out.append(c if len(c) == 1 else ch)
    return fold_script("".join(out))


def _covered(question: str, sentence: str) -> list[bool]:
    """Characters of the sentence inside a word or bigram the question holds (both sides folded)."""
    ws, bgs = question_terms(question)
    s = _norm(sentence)
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


def _entities(tags: list[tuple[str, str, int]], flags: tuple[str, ...]) -> list[tuple[int, int]]:
    """Runs of consecutive words tagged with one of ``flags`` (a name in pieces is one span)."""
    out, cur = [], None
    for w, f, s in tags:
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


def _gap(sentence: str, mask: list[bool]) -> tuple[int, int] | None:
    """The uncovered run next to the shared words, in the clause that shares the most."""
    clauses, start = [], 0
    for m in _SPLIT.finditer(sentence + "。"):
        if m.start() > start:
            clauses.append((start, m.start()))
        start = m.end()
    if not clauses:
        return None
    cs, ce = max(clauses, key=lambda c: (sum(mask[c[0]:c[1]]), -c[0]))
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


def rule_span(question: str, sentence: str, tags: list[tuple[str, str, int]] | None = None,
              mask: list[bool] | None = None) -> tuple[int, int]:
    """The hand-written rules: by question type the nearest number/date/name, else the question's gap."""
    if not sentence.strip():
        return 0, len(sentence)
    qtype = question_type(question)
    mask = _covered(question, sentence) if mask is None else mask
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
        tags = pos_tags(sentence, hmm=True) if tags is None else tags
        span = _best([se for se in _entities(tags, _ENTITY[qtype]) if fold(sentence[se[0]:se[1]]) not in q_fold], mask)
    if span is None and qtype in ("who", "where"):
        span = _gap(sentence, mask)
    if span is None:
        return _trim(sentence, 0, len(sentence))
    s, e = span
    return (s, e) if e > s else (0, len(sentence))


# ---- candidates and features -------------------------------------------------------------------
MAX_WORDS = 6
POS_GROUPS = ("nr", "ns", "nt", "nz", "n", "m", "t", "v", "a", "p", "u", "c", "d", "eng", "x", "other")
_KINDS = ("whole", "clauses", "clause", "words", "prefix", "suffix", "number", "date", "rule")
# Question-level marks crossed with what the candidate is (a constant alone means nothing to the ranking).
_QF = ("qf_describe", "qf_list", "qf_have", "qf_wh_end", "qf_len")
_CF = ("len_log", "len_rel", "k_whole", "k_clauses", "cov", "short")
_QF_RE = {"qf_list": re.compile(r"哪些|那些|包括|分别"), "qf_have": re.compile(r"有什么|有何|特点|特色|注意|作用|影响|意义|区别|不同")}
_WH_PHRASE = re.compile(r"(?:什么|甚么|哪一?[个位年所家种座条部本间些天月国省城市]?|哪里|哪儿|谁|多少[个位年名座种部]?|几[个位年名座种部]?"
                        r"|何时|何处|何地|何人|何种|何年)")
_CROSS = ("c_num", "c_date", "c_person", "c_place", "c_org", "c_len", "c_short", "c_clauses", "c_whole", "c_cov",
          "c_gap", "c_first_n", "c_punct")
FEATURES = (
    *(f"k_{k}" for k in _KINDS),
    "len_log", "len_rel", "len_1", "len_2", "len_3_4", "len_5_8", "len_9_16", "len_17",
    "cov", "cov_any", "cov_none", "gap", "in_q", "near8", "dist_log",
    "left_qb", "left_qa", "right_qb", "right_qa", "left_adj", "right_adj",
    "clause_start", "clause_end", "sent_start", "sent_end", "n_punct", "pos_rel",
    "lead_char", "trail_char", "prev_lead", "next_de", "quoted", "in_quote",
    "has_num", "has_date", "has_person", "has_place", "has_org", "unit", "head_end", "head_in",
    "q_len_log", "q_wh_end", "q_is_what", "q_describe",
    *(f"first_{p}" for p in POS_GROUPS), *(f"last_{p}" for p in POS_GROUPS),
    *(f"prev_{p}" for p in POS_GROUPS), *(f"next_{p}" for p in POS_GROUPS),
    *(f"q_{t}" for t in QTYPES),
    *(f"{t}_{c}" for t in QTYPES for c in _CROSS),
    "prev1_q", "prev2_q", "next1_q", "next2_q",
    *(f"{q}_{c}" for q in _QF for c in _CF),
    "bias",
)
_IX = {name: i for i, name in enumerate(FEATURES)}
_POS_IX = {p: i for i, p in enumerate(POS_GROUPS)}
_PUNCT_CHARS = frozenset("，,；;：:。！？!?（）()、“”「」『』《》\"'…—-·.")
_LEAD_SET = frozenset("是为由在于把被将的了和与及即称叫名从")
_TRAIL_SET = frozenset("的了等之")
_QUOTE = re.compile(r"《[^》]*》|「[^」]*」|“[^”]*”|『[^』]*』|\"[^\"]*\"")
_WH_POS = re.compile(r"什么|甚么|哪|谁|何|多少|几|怎|如何|为何|为什么|是否|吗|呢")
_DESCRIBE = re.compile(r"怎样|怎么样|如何|为什么|为何|原因|什么意思|指什么|是什么$|有什么|有何|哪些|特点|特色|作用|影响|结果|过程|内容|方式|方法|主张|理念|描述|介绍")
_NUMBERISH = re.compile(rf"[0-9{_CN}]")


def _pos_group(flag: str) -> int:
    if flag in _POS_IX:
        return _POS_IX[flag]
    if flag.startswith("nr"):
        return _POS_IX["nr"]
    if flag in ("vn", "an", "nrfg", "ng", "s", "f"):
        return _POS_IX["n"]
    for p in ("n", "v", "a", "u", "m", "t", "d", "p", "c"):
        if flag.startswith(p):
            return _POS_IX[p]
    return _POS_IX["other"]


def _side_masks(question: str, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """Characters of the sentence covered by question terms standing before / after the question's interrogative."""
    ws, bgs = question_terms(question)
    q = _norm(question)
    wh = _WH_POS.search(q)
    cut = wh.start() if wh else len(q)
    before, after = np.zeros(len(norm) + 1, bool), np.zeros(len(norm) + 1, bool)
    for term in [w for w in ws if len(w) >= 2] + [b[1:] for b in bgs]:
        at = q.find(term)
        target = before if 0 <= at < cut else after
        start = norm.find(term)
        while start >= 0:
            target[start : start + len(term)] = True
            start = norm.find(term, start + 1)
    return before[: len(norm)], after[: len(norm)]


def candidates(question: str, sentence: str) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The candidate spans of ``sentence`` and their feature matrix (rows in ``FEATURES`` order)."""
    L = len(sentence)
    norm = _norm(sentence)
    tags = pos_tags(sentence, hmm=True)
    qtype = question_type(question)
    qb, qa = _side_masks(question, norm)
    cov = qb | qa
    rule = rule_span(question, sentence, tags=tags, mask=cov.tolist())

    is_p = np.array([c in _PUNCT_CHARS or not c.strip() for c in norm], bool)
    # Words (no punctuation) with their clause number; a clause ends at punctuation.
    words, clause_of, clause = [], [], 0
    for w, f, s in tags:
        if not w.strip():
            continue
        if all(c in _PUNCT_CHARS for c in w):
            clause += 1 if words and clause_of[-1] == clause else 0
            continue
        words.append((s, s + len(w), f))
        clause_of.append(clause)
    spans: dict[tuple[int, int], int] = {}

    def add(s: int, e: int, kind: int) -> None:
        if e > s and (s, e) not in spans:
            spans[(s, e)] = kind

    K = {k: i for i, k in enumerate(_KINDS)}
    add(0, L, K["whole"])
    add(*rule, K["rule"])
    groups: list[list[int]] = []
    for i, c in enumerate(clause_of):
        if not groups or clause_of[groups[-1][0]] != c:
            groups.append([])
        groups[-1].append(i)
    bounds = [(words[g[0]][0], words[g[-1]][1]) for g in groups]
    nb = len(bounds)
    for i in range(nb):
        for j in range(i, min(nb, i + 8)):
            add(bounds[i][0], bounds[j][1], K["clause"] if i == j else K["clauses"])
    for g in groups:
        for a in range(len(g)):
            for b in range(a, min(len(g), a + MAX_WORDS)):
                add(words[g[a]][0], words[g[b]][1], K["words"])
            add(words[g[0]][0], words[g[a]][1], K["prefix"])
            add(words[g[a]][0], words[g[-1]][1], K["suffix"])
    for m in NUMBER.finditer(sentence):
        add(*m.span(), K["number"])
    for m in DATE.finditer(sentence):
        add(*m.span(), K["date"])

    cand = list(spans)
    n = len(cand)
    S = np.array([s for s, _ in cand])
    E = np.array([e for _, e in cand])
    kind = np.array([spans[c] for c in cand])
    ln = (E - S).astype(float)
    X = np.zeros((n, len(FEATURES)))
    X[np.arange(n), kind] = 1.0
    X[:, _IX["k_rule"]] = [1.0 if c == rule else 0.0 for c in cand]

    def csum(a: np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(a)]).astype(float)

    c_cov, c_qb, c_qa, c_p = csum(cov), csum(qb), csum(qa), csum(is_p)

    def within(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.clip(a, 0, L), np.clip(b, 0, L)
        return c[b] - c[a]

    X[:, _IX["len_log"]] = np.log1p(ln)
    X[:, _IX["len_rel"]] = ln / max(L, 1)
    for name, lo, hi in (("len_1", 1, 1), ("len_2", 2, 2), ("len_3_4", 3, 4), ("len_5_8", 5, 8), ("len_9_16", 9, 16),
                         ("len_17", 17, 10**9)):
        X[:, _IX[name]] = (ln >= lo) & (ln <= hi)
    cv = within(c_cov, S, E)
    X[:, _IX["cov"]] = cv / ln
    X[:, _IX["cov_any"]] = cv > 0
    X[:, _IX["cov_none"]] = cv == 0
    total = c_cov[-1]
    X[:, _IX["near8"]] = (within(c_cov, S - 8, E + 8) - cv) / max(total, 1.0)
    hits = np.flatnonzero(cov)
    if len(hits):
        li, ri = np.searchsorted(hits, S), np.searchsorted(hits, E)
        d_left = np.where(li > 0, S - hits[np.maximum(li - 1, 0)], 99)
        d_right = np.where(ri < len(hits), hits[np.minimum(ri, len(hits) - 1)] - E + 1, 99)
        X[:, _IX["dist_log"]] = np.log1p(np.minimum(d_left, d_right))
    else:
        X[:, _IX["dist_log"]] = math.log(100)
    X[:, _IX["left_qb"]] = within(c_qb, S - 3, S) > 0
    X[:, _IX["left_qa"]] = within(c_qa, S - 3, S) > 0
    X[:, _IX["right_qb"]] = within(c_qb, E, E + 3) > 0
    X[:, _IX["right_qa"]] = within(c_qa, E, E + 3) > 0
    X[:, _IX["left_adj"]] = np.array([s > 0 and bool(cov[s - 1]) for s in S])
    X[:, _IX["right_adj"]] = np.array([e < L and bool(cov[e]) for e in E])
    starts = {b[0] for b in bounds}
    ends = {b[1] for b in bounds}
    X[:, _IX["clause_start"]] = [s in starts for s in S]
    X[:, _IX["clause_end"]] = [e in ends for e in E]
    X[:, _IX["sent_start"]] = (bounds[0][0] if bounds else 0) == S
    X[:, _IX["sent_end"]] = (bounds[-1][1] if bounds else L) == E
    X[:, _IX["n_punct"]] = np.log1p(within(c_p, S, E))
    X[:, _IX["pos_rel"]] = S / max(L, 1)
    X[:, _IX["lead_char"]] = [norm[s] in _LEAD_SET for s in S]
    X[:, _IX["trail_char"]] = [norm[e - 1] in _TRAIL_SET for e in E]
    X[:, _IX["prev_lead"]] = [s > 0 and norm[s - 1] in _LEAD_SET for s in S]
    X[:, _IX["next_de"]] = [e < L and norm[e] == "的" for e in E]
    quotes = [m.span() for m in _QUOTE.finditer(norm)]
    X[:, _IX["quoted"]] = [any(a <= s and e <= b and (e - s) >= (b - a) - 2 for a, b in quotes) for s, e in cand]
    X[:, _IX["in_quote"]] = [any(a < s and e < b for a, b in quotes) for s, e in cand]

    # Character-level marks of what the sentence holds (names by POS, numbers, dates).
    def char_mark(pred) -> np.ndarray:
        m = np.zeros(L, bool)
        for w, f, s in tags:
            if pred(w, f):
                m[s : s + len(w)] = True
        return m

    person = csum(char_mark(lambda w, f: f.startswith("nr")))
    place = csum(char_mark(lambda w, f: f == "ns"))
    org = csum(char_mark(lambda w, f: f == "nt"))
    num_m = np.zeros(L, bool)
    for m in NUMBER.finditer(norm):
        if _NUMBERISH.search(m.group()):
            num_m[m.start() : m.end()] = True
    date_m = np.zeros(L, bool)
    for m in DATE.finditer(norm):
        date_m[m.start() : m.end()] = True
    has_num = within(csum(num_m), S, E) > 0
    has_date = within(csum(date_m), S, E) > 0
    has_person, has_place, has_org = (within(person, S, E) > 0), (within(place, S, E) > 0), (within(org, S, E) > 0)
    X[:, _IX["has_num"]] = has_num
    X[:, _IX["has_date"]] = has_date
    X[:, _IX["has_person"]] = has_person
    X[:, _IX["has_place"]] = has_place
    X[:, _IX["has_org"]] = has_org
    q_norm = _norm(question)
    X[:, _IX["in_q"]] = [norm[s:e] in q_norm for s, e in cand]
    um = _ASKED_UNIT.search(q_norm)
    if um:
        X[:, _IX["unit"]] = [um.group(1) in norm[s:e] for s, e in cand]
    head = asked_for(question)
    if head:
        X[:, _IX["head_end"]] = [norm[s:e].endswith(head) and e - s > len(head) for s, e in cand]
        X[:, _IX["head_in"]] = [head in norm[s:e] for s, e in cand]
    X[:, _IX["q_len_log"]] = math.log1p(len(question))
    X[:, _IX["q_wh_end"]] = bool(re.search(r"(什么|甚么|哪里|谁|何|多少|几)[？?]?$", q_norm.rstrip("？?。 ")))
    X[:, _IX["q_is_what"]] = qtype == "what"
    X[:, _IX["q_describe"]] = bool(_DESCRIBE.search(q_norm))

    # POS of the first and last word of the span and of its neighbours.
    tag_at = np.full(L + 1, _POS_IX["x"])
    for w, f, s in tags:
        tag_at[s : s + len(w)] = _pos_group(f)
    off = _IX["first_nr"]
    X[np.arange(n), off + tag_at[S]] = 1.0
    X[np.arange(n), _IX["last_nr"] + tag_at[E - 1]] = 1.0
    X[np.arange(n), _IX["prev_nr"] + np.where(S > 0, tag_at[np.maximum(S - 1, 0)], _POS_IX["x"])] = 1.0
    X[np.arange(n), _IX["next_nr"] + tag_at[np.minimum(E, L)]] = 1.0

    X[:, _IX[f"q_{qtype}"]] = 1.0
    cross = {
        "c_num": has_num, "c_date": has_date, "c_person": has_person, "c_place": has_place, "c_org": has_org,
        "c_len": np.log1p(ln), "c_short": ln <= 6, "c_clauses": X[:, _IX["k_clauses"]] + X[:, _IX["k_clause"]],
        "c_whole": X[:, _IX["k_whole"]], "c_cov": X[:, _IX["cov"]],
        "c_gap": (X[:, _IX["left_adj"]] + X[:, _IX["right_adj"]]) * X[:, _IX["cov_none"]],
        "c_first_n": X[:, _IX["first_n"]] + X[:, _IX["first_nr"]] + X[:, _IX["first_ns"]] + X[:, _IX["first_nt"]]
        + X[:, _IX["first_nz"]],
        "c_punct": X[:, _IX["n_punct"]],
    }
    for c in _CROSS:
        X[:, _IX[f"{qtype}_{c}"]] = cross[c]
    X[:, _IX["gap"]] = cross["c_gap"]
    # The question's pattern around its interrogative: 被哪个单位列为 vs 被联合国教科文组织列为.
    wm = _WH_PHRASE.search(q_norm)
    if wm:
        left, right = q_norm[: wm.start()], q_norm[wm.end():]
        right = right.lstrip("的")
        if left:
            X[:, _IX["prev1_q"]] = [s > 0 and norm[s - 1] == left[-1] for s in S]
            if len(left) >= 2:
                X[:, _IX["prev2_q"]] = [s > 1 and norm[s - 2 : s] == left[-2:] for s in S]
        if right and right[0] not in "？?":
            X[:, _IX["next1_q"]] = [e < L and norm[e] == right[0] for e in E]
            if len(right) >= 2:
                X[:, _IX["next2_q"]] = [norm[e : e + 2] == right[:2] for e in E]
    qf = {"qf_describe": float(bool(_DESCRIBE.search(q_norm))), "qf_list": float(bool(_QF_RE["qf_list"].search(q_norm))),
          "qf_have": float(bool(_QF_RE["qf_have"].search(q_norm))), "qf_wh_end": X[0, _IX["q_wh_end"]],
          "qf_len": math.log1p(len(question)) - 2.7}
    for q, v in qf.items():
        if v:
            for c in _CF:
                X[:, _IX[f"{q}_{c}"]] = v * (ln <= 6 if c == "short" else X[:, _IX[c]])
    X[:, _IX["bias"]] = 1.0
    return cand, X


# ---- the model ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_model(path: str = str(MODEL_PATH)) -> dict | None:
    """The shipped scorer as arrays, or None when missing or built for another feature list."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if tuple(data.get("features", ())) != FEATURES:
        return None
    mean, std, coef = (np.asarray(data[k], float) for k in ("mean", "std", "coef"))
    return {"w": coef / std, "b": float(-(mean / std) @ coef)}


def answer_span(question: str, sentence: str) -> tuple[int, int]:
    """Offsets in ``sentence`` of the part that answers ``question``; the whole sentence when nothing narrower fits."""
    if not sentence.strip():
        return 0, len(sentence)
    model = load_model()
    if model is None:
        return rule_span(question, sentence)
    cand, X = candidates(question, sentence)
    best = int(np.argmax(X @ model["w"]))
    return cand[best]


__all__ = ["DATE", "FEATURES", "NUMBER", "answer_span", "candidates", "load_model", "rule_span"]
