"""Candidate sentences of the retrieved passages and the features the learned answer selector scores.

One function, ``candidates``, turns (question, passages, idf) into candidate sentences with a
feature vector each, in the order of ``FEATURES``; the shipped model (``answerer.json``) records
that list and is refused when it differs. Training (``rag.training.train``) and answering
(``rag.generation.extractive``) both go through here, so the two cannot drift apart.

Matching is on a folded form of both sides: width and case folded, and traditional characters
folded to simplified when ``rag.text.normalize.fold_script`` exists.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rag.text import normalize as _norm
from rag.text.normalize import QUESTION_WORDS, STOPWORDS, fold_script, words
from rag.text.sentences import sentence_spans
from rag.types import Passage


def fold(text: str) -> str:
    """The matching form: NFKC, lower case, no whitespace; traditional folded when OpenCC folding exists."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()
    return fold_script(text)


# ---- question types, simplified and traditional -----------------------------------------------
QTYPES = ("who", "when", "where", "num", "why", "how", "what", "other")
_QTYPE_RE = [
    ("when", re.compile(r"何时|何時|什么时候|什麼時候|什么时间|什麼時間|哪一?年|哪一?天|哪一?日|何年|几月|幾月|几号|幾號|哪个朝代|哪個朝代"
                        r"|什么朝代|什麼朝代|什么年代|什麼年代|哪个时期|哪個時期|哪一?世纪|哪一?世紀|日期|年份|when|what year", re.I)),
    ("who", re.compile(r"谁|誰|何人|哪一?位|什么人|什麼人|哪些人|who\b", re.I)),
    ("where", re.compile(r"哪里|哪裡|哪儿|哪兒|何处|何處|何地|什么地方|什麼地方|哪一?个?国家|哪一?個?國家|哪一?座?城市|哪一?个?省|哪一?個?省"
                         r"|哪一?个?地区|哪一?個?地區|位于|位於|where", re.I)),
    ("num", re.compile(r"多少|几|幾|多大|多长|多長|多高|多久|多远|多遠|多重|多深|多宽|多寬|多厚|多快|比例|百分之|how many|how much|how long", re.I)),
    ("why", re.compile(r"为什么|為什麼|为何|為何|原因|何故|why", re.I)),
    ("how", re.compile(r"怎么|怎麼|如何|怎样|怎樣|方式|方法|how", re.I)),
    ("what", re.compile(r"什么|什麼|甚么|甚麼|哪|何|啥|what|which", re.I)),
]
# Interrogatives and fillers that say what is asked, not what the answer sentence contains.
_INTERROGATIVE = re.compile(
    r"什么|什麼|甚么|甚麼|哪里|哪裡|哪儿|哪兒|哪一|哪个|哪個|哪些|哪|多少|几|幾|谁|誰|何时|何時|何处|何處|为什么|為什麼|为何|為何"
    r"|怎么|怎麼|怎样|怎樣|如何|是否|吗|嗎|呢|请问|請問|多大|多长|多長|多久|多高|多远|多遠|何"
)


# The thing asked for follows these words: 什么景区 → 景区, 哪所大学 → 大学.
_WH = re.compile(r"(?:什么|什麼|甚么|甚麼|哪一?[个個所家种種类類座条條位些项項部本间間]?|多少[个個家项項名位座部条條种種]?)(?:的)?"
                 r"([\u4e00-\u9fff]{1,6})")
_CATEGORY = frozenset("""名字 名称 名稱 时候 時候 时间 時間 日期 年份 年代 朝代 地方 地点 地點 东西 東西 事情 人物 原因 理由 样子 樣子
    意思 情况 情況 方面 内容 內容 方式 方法 作用 意义 意義 目的 结果 結果 类型 類型 种类 種類 问题 問題""".split())


def asked_for(question: str) -> str | None:
    """The noun a question asks for (什么景区 → 景区), when it names one."""
    m = _WH.search(question)
    if not m:
        return None
    head = next(iter(_norm.segment(m.group(1))), "")
    return fold(head) if len(head) >= 2 and head not in _CATEGORY else None


def question_type(question: str) -> str:
    for name, rx in _QTYPE_RE:
        if rx.search(question):
            return name
    return "other"


# ---- what a sentence holds --------------------------------------------------------------------
_CN_NUM = "零〇一二两兩三四五六七八九十百千万萬亿億"
HAS_NUMBER = re.compile(rf"[0-9]|[{_CN_NUM}]{{2,}}|[{_CN_NUM}][个個家年天人项項部度倍成米元岁歲次所座条條名位辆輛台件吨噸里分秒时時月号號种種只隻支本届屆]"
                        r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
                        r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
                        r"|hundred|thousand|million|billion|dozen|half|twice)\b", re.I)
HAS_TIME = re.compile(rf"[0-9]{{1,4}}年|[{_CN_NUM}]{{2,4}}年|[0-9{_CN_NUM}]{{1,3}}月|[0-9]{{1,2}}日|世纪|世紀|年代|时期|時期|[朝代]|春|夏|秋|冬"
                      r"|\b(?:1[0-9]{3}|20[0-9]{2})s?\b|\b(?:January|February|March|April|May|June|July|August|September"
                      r"|October|November|December|century|centuries|spring|summer|autumn|winter|today|yesterday)\b", re.I)
_QUOTED = re.compile(r"《[^》]+》|“[^”]+”|「[^」]+」|『[^』]+』")
_TERMINAL = "。！？!?；;…."
ENTITY_TAGS = {"person": ("nr",), "place": ("ns",), "org": ("nt",)}
POS_POOL = 8  # sentences tagged with jieba.posseg (the cheap score's front-runners): 40 would cost ~20 ms


@lru_cache(maxsize=1)
def _posseg():
    return _norm.posseg_module()  # the dictionary, loaded once (shared with segmentation)


def load_tagger() -> None:
    """Load jieba's POS tagger now (0.3-0.8 s), not at the first question."""
    _posseg()


def pos_tags(text: str, hmm: bool = False) -> list[tuple[str, str, int]]:
    """(word, flag, start) of ``text`` by jieba.posseg, on its simplified form when script folding exists
    (it keeps positions; traditional characters unknown to jieba make its HMM 50x slower). The HMM,
    which finds unknown names, costs ~1 ms per 20 characters: features go without it (dictionary
    words only), the exact span of the one chosen sentence with it."""
    text = fold_script(text)
    out, pos = [], 0
    for pair in _posseg().cut(text, HMM=hmm):
        w, flag = pair.word, pair.flag
        out.append((w, flag, pos))
        pos += len(w)
    return out


# ---- features ---------------------------------------------------------------------------------
FEATURES = (
    "w_s", "w_win", "w_p", "b_s", "b_win", "b_p", "t_s", "t_win", "w_key_miss", "w_all", "b_all",
    "w_s_gap", "b_s_gap", "b_win_gap", "b_s_rank1",
    "rank_inv", "p_score", "p_score_gap", "dense", "lex_log",
    "sent_first", "sent_rel", "len_log", "short", "pair", "no_terminal", "novel", "q_in_s",
    *(f"q_{t}" for t in QTYPES),
    "has_num", "has_time", "has_person", "has_place", "has_org", "has_quoted",
    "who_person", "when_time", "where_place", "where_org", "num_num", "what_quoted", "type_match", "typed_miss",
    "has_head", "head_win", "head_asked",
    "bias",
)
_INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class Candidate:
    n: int  # 1-based passage number
    start: int  # offsets in the passage's chunk text
    end: int
    text: str
    index: int  # sentence number in its passage (the first, for a pair)
    x: list[float] = field(default_factory=list)
    tags: list[tuple[str, str, int]] | None = None  # posseg of text, when tagged
    score: float = 0.0
    last: int = -1  # the last sentence's number: ``index`` for one sentence, ``index + 1`` for a pair

    def __post_init__(self) -> None:
        if self.last < 0:
            self.last = self.index


def question_terms(question: str) -> tuple[list[str], list[str]]:
    """The question's content words and its CJK character bigrams (as BM25 terms ``#xy``), interrogatives removed."""
    ws = [w for w in dict.fromkeys(fold(w) for w in words(question)) if w not in STOPWORDS and w not in QUESTION_WORDS
          and not _INTERROGATIVE.fullmatch(w) and len(w) > 0]
    stripped = _INTERROGATIVE.sub(" ", unicodedata.normalize("NFKC", question).lower())
    stripped = fold_script(stripped)
    bigrams = []
    for run in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}", stripped):
        bigrams.extend("#" + run[i : i + 2] for i in range(len(run) - 1))
    return ws, list(dict.fromkeys(bigrams))


def question_trigrams(question: str) -> list[str]:
    """The question's CJK character trigrams, interrogatives removed: close paraphrase of the answer sentence."""
    stripped = _INTERROGATIVE.sub(" ", fold(question))
    out = []
    for run in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{3,}", stripped):
        out.extend(run[i : i + 3] for i in range(len(run) - 2))
    return list(dict.fromkeys(out))


def _key_miss(weights: dict[str, float], text: str) -> float:
    """The IDF of the rarest question word the text lacks, relative to the rarest question word: 1 when the key word is missing."""
    top = max(weights.values(), default=0.0)
    if top <= 0:
        return 0.0
    return max((w for t, w in weights.items() if t not in text), default=0.0) / top


def _plain_share(terms: list[str], text: str) -> float:
    return sum(1 for t in terms if t in text) / len(terms) if terms else 0.0


def _share(weights: dict[str, float], text: str, strip: int = 0) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in weights.items() if t[strip:] in text) / total


def sentences(passages: Sequence[Passage]) -> list[Candidate]:
    out = []
    for n, p in enumerate(passages, 1):
        i = 0
        for s, e in sentence_spans(p.chunk.text):
            raw = p.chunk.text[s:e]
            text = raw.strip()
            if len(fold(text)) >= 4:
                lead = len(raw) - len(raw.lstrip())
                out.append(Candidate(n, s + lead, s + lead + len(text), text, i))
                i += 1
    return out


def pairs(sents: list[Candidate], passages: Sequence[Passage]) -> list[Candidate]:
    """Two adjacent sentences of one paragraph as one candidate: the question's words in one, the answer in
    the next. Not across a line break, which would join a heading or an unrelated paragraph to a sentence."""
    out = []
    for a, b in zip(sents, sents[1:]):
        text = passages[a.n - 1].chunk.text[a.start : b.end]
        if a.n == b.n and "\n" not in text:
            out.append(Candidate(a.n, a.start, b.end, text, a.index, last=b.index))
    return out


def candidates(question: str, passages: Sequence[Passage], idf: Callable[[str], float]) -> list[Candidate]:
    """Every sentence of ``passages``, and every two adjacent ones, with its feature vector ``x`` (``FEATURES`` order)."""
    sents = sentences(passages)
    if not sents:
        return sents
    cands = sents + pairs(sents, passages)
    ws, bgs = question_terms(question)
    w_weights = {w: idf(w) for w in ws}
    b_weights = {b: idf(b) for b in bgs}
    q_fold = fold(question)
    qtype = question_type(question)
    head = asked_for(question)
    folded = {(c.n, c.index): fold(c.text) for c in sents}
    count = {n: 1 + max(c.index for c in sents if c.n == n) for n in {c.n for c in sents}}
    passage_text = {n: fold(p.chunk.text) for n, p in enumerate(passages, 1)}
    tris = question_trigrams(question)
    everything = "\n".join(passage_text.values())
    w_all, b_all = _share(w_weights, everything), _share(b_weights, everything, 1)
    top_score = max(float(p.score) for p in passages)
    rows = []
    for c in cands:
        s = "".join(folded[(c.n, k)] for k in range(c.index, c.last + 1))
        window = "".join(folded.get((c.n, k), "") for k in range(c.index - 1, c.last + 2))
        cjk = [ch for ch in s if "\u4e00" <= ch <= "\u9fff"]
        p = passages[c.n - 1]
        plain = unicodedata.normalize("NFKC", c.text)
        rows.append({
            "w_s": _share(w_weights, s), "w_win": _share(w_weights, window), "w_p": _share(w_weights, passage_text[c.n]),
            "b_s": _share(b_weights, s, 1), "b_win": _share(b_weights, window, 1),
            "b_p": _share(b_weights, passage_text[c.n], 1),
            "t_s": _plain_share(tris, s), "t_win": _plain_share(tris, window),
            "w_key_miss": _key_miss(w_weights, window), "w_all": w_all, "b_all": b_all,
            "lex_log": math.log1p(max(float(p.lexical_score or 0.0), 0.0)),
            "rank_inv": 1.0 / c.n, "p_score": float(p.score), "p_score_gap": float(p.score) - top_score,
            "dense": float(p.dense_score) if p.dense_score is not None else 0.0,
            "sent_first": float(c.index == 0), "sent_rel": c.index / max(count[c.n] - 1, 1),
            "len_log": math.log1p(len(s)), "short": float(len(s) < 12), "pair": float(c.last > c.index),
            "no_terminal": float(not any(ch in _TERMINAL for ch in c.text[-3:])),
            "novel": sum(1 for ch in cjk if ch not in q_fold) / max(len(cjk), 1),
            "q_in_s": sum(1 for ch in set(q_fold) if ch in s) / max(len(set(q_fold)), 1),
            # on the text with its spaces (English number words need their word boundaries), width-folded
            "has_num": float(bool(HAS_NUMBER.search(plain))), "has_time": float(bool(HAS_TIME.search(plain))),
            "has_quoted": float(bool(_QUOTED.search(c.text))),
            "has_head": float(bool(head) and head in s), "head_win": float(bool(head) and head in window),
            "head_asked": float(bool(head)),
        })
    # jieba.posseg on the cheap score's front-runners among single sentences; a pair holds its sentences' tags.
    single = range(len(sents))
    order = sorted(single, key=lambda j: -(rows[j]["b_win"] + rows[j]["b_s"] + rows[j]["w_s"]))
    for j in order[:POS_POOL]:
        sents[j].tags = pos_tags(sents[j].text)
    flags_of = {(c.n, c.index): {f for w, f, _ in c.tags or () if fold(w) not in q_fold} for c in sents}
    best_w = max(r["w_s"] for r in rows)
    best_b = max(r["b_s"] for r in rows)
    best_bw = max(r["b_win"] for r in rows)
    for i, (c, r) in enumerate(zip(cands, rows)):
        r["w_s_gap"], r["b_s_gap"], r["b_win_gap"] = r["w_s"] - best_w, r["b_s"] - best_b, r["b_win"] - best_bw
        r["b_s_rank1"] = float(i == order[0])
        flags = set().union(*(flags_of[(c.n, k)] for k in range(c.index, c.last + 1)))
        for kind, tags in ENTITY_TAGS.items():
            r[f"has_{kind}"] = float(any(f in tags for f in flags))
        for t in QTYPES:
            r[f"q_{t}"] = float(qtype == t)
        r["who_person"] = r["q_who"] * r["has_person"]
        r["when_time"] = r["q_when"] * r["has_time"]
        r["where_place"] = r["q_where"] * r["has_place"]
        r["where_org"] = r["q_where"] * r["has_org"]
        r["num_num"] = r["q_num"] * r["has_num"]
        r["what_quoted"] = r["q_what"] * r["has_quoted"]
        r["type_match"] = float(r["who_person"] or r["when_time"] or r["where_place"] or r["where_org"] or r["num_num"])
        r["typed_miss"] = float(qtype in ("who", "when", "where", "num") and not r["type_match"])
        r["bias"] = 1.0
        c.x = [float(r[name]) for name in FEATURES]
    return cands


def feature(c: Candidate, name: str) -> float:
    return c.x[_INDEX[name]]


__all__ = [
    "FEATURES",
    "QTYPES",
    "Candidate",
    "asked_for",
    "candidates",
    "feature",
    "fold",
    "pairs",
    "pos_tags",
    "question_terms",
    "question_type",
    "sentences",
]
