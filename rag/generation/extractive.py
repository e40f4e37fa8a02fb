"""The offline default: answer with the passage sentence that best answers the question, verbatim.

Every sentence of the retrieved passages is scored on what a reader checks:
how much of the question (IDF-weighted words) it holds, itself and in its
passage; whether it holds the thing asked for (the noun after 什么/哪个, a
number for 多少, a year for 哪一年); and its dense similarity to the question,
which carries questions that share no words with the text (English over Chinese).
It abstains when no sentence holds enough of the question or the thing asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.generation.base import Context, Draft, Quote, not_found_message
from rag.ingest.chunking import sentence_spans
from rag.text.normalize import content_words, has_cjk, normalize_for_match, segment
from rag.types import Passage

_NUMBER_Q = re.compile(r"多少|几|多大|多长|多高|多久|多远|多重|百分之|比例|增速|how many|how much|how long|how far", re.I)
_YEAR_Q = re.compile(r"哪一年|哪年|何年|什么时候|何时|what year|which year|\bwhen\b", re.I)
_HAS_NUMBER = re.compile(
    r"[0-9０-９]|[零〇一二两三四五六七八九十百千万亿]{2,}"
    r"|[一二两三四五六七八九十百千万亿][个家年天人项部度倍成米元岁次所座条名位辆台件吨斤里分秒时月]"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty|fifty"
    r"|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|dozens?)\b",
    re.I,
)
_HAS_YEAR = re.compile(r"[0-9０-９]{2,4}\s*年|[一二三四五六七八九〇零]{2,4}年")
# The thing asked for follows these words: 什么景区 → 景区, 哪所大学 → 大学.
_WH = re.compile(r"(?:什么|哪一?[个所家种类座条位些项部本]?|多少[个家项名位座部条种]?)(?:的)?([\u4e00-\u9fff]{1,6})")
# Nouns after 什么/哪个 that name the kind of answer, not words the answer contains
# (什么朝代 → 明代, 叫什么名字 → 邱沛霖): neither required nor counted as question content.
_CATEGORY_NOUNS = frozenset(
    """名字 名称 时候 时间 日期 年份 年代 朝代 季节 地方 地点 位置 东西 事情 人物 职务 职位 身份 数量 金额 价格
    颜色 国家 城市 省份 原因 理由 样子 意思 情况 方面 内容 方式 方法 措施 作用 意义 目的 结果 类型 种类 问题""".split()
)


# English, like every warning of an answer; the chat shows its Chinese (ui/render.py WARNINGS_ZH).
CROSS_LINGUAL_WARNING = (
    "low confidence: the question and the passages are in different languages, so the answer was "
    "chosen by meaning alone and no words could be checked; verify the cited passage"
)


@dataclass(frozen=True)
class ExtractiveSettings:
    max_sentences: int = 2
    # Calibrated on shared/data/seed-dev.jsonl among 1,000 distractor articles.
    min_support: float = 0.5  # IDF-weighted share of the question found in the sentence and its passage
    min_dense: float = 0.75  # best passage cosine, for questions that share no script with the text
    dense_pool: int = 16  # sentences re-scored by dense similarity when the question shares words with them


@dataclass
class _Candidate:
    n: int  # 1-based passage number
    start: int
    end: int
    text: str
    support: float = 0.0
    focus: float = 0.0  # share of the question's distinctive words in the sentence
    topic: float = 0.0  # share of all the question's words in the sentence or its passage
    dense: float = 0.0
    typed: bool = True
    has_head: bool = False
    score: float = 0.0


def answer_type(question: str) -> str | None:
    if _YEAR_Q.search(question):
        return "year"
    if _NUMBER_Q.search(question):
        return "number"
    return None


def asked_for(question: str) -> str | None:
    """The noun a question asks for (什么景区 → 景区), when it names one."""
    m = _WH.search(question)
    if not m:
        return None
    head = next(iter(segment(m.group(1))), "")
    return head if len(head) >= 2 and head not in _CATEGORY_NOUNS else None


def _category_noun(question: str) -> str | None:
    m = _WH.search(question)
    head = next(iter(segment(m.group(1))), "") if m else ""
    return head if head in _CATEGORY_NOUNS else None


def _type_ok(kind: str | None, text: str) -> bool:
    if kind == "year":
        return bool(_HAS_YEAR.search(text))
    if kind == "number":
        return bool(_HAS_NUMBER.search(text))
    return True


class ExtractiveGenerator:
    """Stateless but for its settings: the embedder, the snapshot's IDF and the question's vector
    come with each call in the ``Context``, so one instance serves every index and snapshot."""

    name = "extractive"

    def __init__(self, settings: ExtractiveSettings | None = None) -> None:
        self.settings = settings or ExtractiveSettings()

    def generate(self, question: str, passages: Sequence[Passage], ctx: Context) -> Draft:
        cands = self._candidates(passages)
        if not cands:
            return Draft(not_found_message(question), [], True, support=0.0)
        lexical = has_cjk(question) == any(has_cjk(p.chunk.text) for p in passages)
        self._score(question, passages, cands, lexical, ctx)
        best = max(cands, key=lambda c: c.score)
        if self._abstain(question, best, cands, passages, lexical):
            return Draft(not_found_message(question), [], True, support=best.support)
        chosen = self._extend(best, cands)
        text = " ".join(f"{_tidy(c.text)} [{c.n}]" for c in chosen)
        warnings = [] if lexical else [CROSS_LINGUAL_WARNING]
        return Draft(text, [Quote(c.n, c.start, c.end) for c in chosen], False, warnings, support=best.support)

    def _candidates(self, passages: Sequence[Passage]) -> list[_Candidate]:
        out = []
        for n, p in enumerate(passages, 1):
            for s, e in sentence_spans(p.chunk.text):
                raw = p.chunk.text[s:e]
                text = raw.strip()
                if len(normalize_for_match(text)) >= 4:
                    lead = len(raw) - len(raw.lstrip())
                    out.append(_Candidate(n, s + lead, s + lead + len(text), text))
        return out

    def _score(self, question: str, passages: Sequence[Passage], cands: list[_Candidate], lexical: bool,
               ctx: Context) -> None:
        passage_text = {n: normalize_for_match(p.chunk.text) for n, p in enumerate(passages, 1)}
        focus_w = self._weights(question, list(passage_text.values()), ctx.idf)
        topic_w = {w: ctx.idf(w) for w in focus_w}
        kind, head = answer_type(question), asked_for(question)
        for c in cands:
            norm = normalize_for_match(c.text)
            c.focus = _share(focus_w, norm)
            c.topic = max(_share(topic_w, norm), _share(topic_w, passage_text[c.n]))
            c.support = 0.5 * c.focus + 0.5 * c.topic
            c.typed = _type_ok(kind, c.text)
            c.has_head = bool(head) and head in norm
            c.score = (c.support if lexical else 0.0) + 0.5 * c.has_head + 0.05 / c.n
            if kind and not c.typed:
                c.score -= 1.0
            if not any(ch in "。！？!?；;…." for ch in c.text[-3:]) and len(c.text) < 30:
                c.score -= 0.2  # a heading or caption rarely answers anything
        # Dense similarity refines the order; embedding only the front-runners keeps
        # answering fast (with shared words, the rest cannot catch up).
        pool = sorted(cands, key=lambda c: -c.score)[: self.settings.dense_pool] if lexical else cands
        q = ctx.query_vector if ctx.query_vector is not None else ctx.embedder.embed_queries([question])[0]
        sims = ctx.embedder.embed_passages([c.text for c in pool]) @ q
        z = (sims - sims.mean()) / (sims.std() + 1e-6)
        for c, sim, zs in zip(pool, sims, z):
            c.dense = float(sim)
            c.score += 0.08 * float(zs)

    def _weights(self, question: str, passage_texts: list[str], idf: Callable[[str], float]) -> dict[str, float]:
        """Corpus IDF, damped for words found in every retrieved passage.

        Words that all passages share (the topic, e.g. 天心经开区) say little about
        which sentence answers; the words only some passages have, or none, decide.
        """
        out = {}
        category = _category_noun(question)
        for w in set(content_words(question)) - {category}:
            local = sum(1 for t in passage_texts if w in t)
            out[w] = idf(w) * (1.0 - local / (len(passage_texts) + 1))
        return out

    def _abstain(self, question: str, best: _Candidate, cands: list[_Candidate], passages: Sequence[Passage],
                 lexical: bool) -> bool:
        s = self.settings
        if answer_type(question) and not best.typed:
            return True
        head = asked_for(question)
        if head and not any(c.has_head for c in cands):
            return True
        if lexical:
            return best.support < s.min_support
        dense = max((p.dense_score for p in passages if p.dense_score is not None), default=best.dense)
        return dense < s.min_dense

    def _extend(self, best: _Candidate, cands: list[_Candidate]) -> list[_Candidate]:
        """Add the following sentence when the best one is too short to stand alone."""
        chosen = [best]
        if self.settings.max_sentences > 1 and len(best.text) < 12:
            nxt = [c for c in cands if c.n == best.n and c.start >= best.end]
            if nxt:
                chosen.append(min(nxt, key=lambda c: c.start))
        return chosen


def _share(weights: dict[str, float], text: str) -> float:
    total = sum(weights.values())
    return sum(w for word, w in weights.items() if word in text) / total if total > 0 else 0.0


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


__all__ = ["ExtractiveGenerator", "ExtractiveSettings", "answer_type", "asked_for"]
