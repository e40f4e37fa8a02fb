"""A synthetic Chinese corpus for scale tests: the seed's sentences with words swapped, and FAKE vectors.

Texts: the sentences of seeds/ (as jieba tokens) strung into chunks of about 130
characters (the real chunker's mean on news), with each content word swapped, with
probability ``P_SWAP``, for a word drawn from a Zipf law over the seed's words plus
generated ones (2-4 seed characters, or a number); half of the draws come from the
chunk's topic.  The vocabulary grows with the square root of the corpus (Heaps' law),
so BM25 posting lists mix long heads and short tails as real text does.

Vectors are NOT embeddings and say nothing about relevance; they exist to time the
index.  Each is a random vector per word summed over the chunk's content words, plus
a random topic vector and noise, normalised: chunks sharing words and topic get close
vectors, so the index sees clustered data, as it would with real embeddings.

Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from rag.text.normalize import STOPWORDS, words

ROOT = Path(__file__).resolve().parents[1]
P_SWAP = 0.35  # share of content words swapped: most text stays seed-like, the rest varies
P_TOPIC = 0.5  # share of swapped words drawn from the chunk's topic
SYNTH_WORDS_PER_SQRT_TOKEN = 40  # vocabulary ~ 40 * sqrt(tokens): ~100k words at 100k chunks
TOPIC_WORDS = 300
CHARS_MEAN, CHARS_SD, CHARS_MIN, CHARS_MAX = 130, 30, 40, 220
MAX_TOKENS = 200
TOPIC_WEIGHT, NOISE_WEIGHT = 0.8, 0.3  # of the fake vectors, next to the unit bag-of-words part
QUESTION_ENDS = ("是多少？", "是什么？", "有哪些？", "怎么样？", "在哪里？", "是谁？", "有多少？")

_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")
_PUNCT = re.compile(r"^[\W_]+$")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass
class Vocab:
    words: list[str]  # seed tokens (punctuation included), then generated words
    content: np.ndarray  # bool per word: swappable and part of the bag of words
    template: np.ndarray  # the seed text as word ids
    sentence_starts: np.ndarray  # positions in ``template`` where a sentence starts
    pool: np.ndarray  # content word ids in Zipf rank order
    cdf: np.ndarray  # cumulative Zipf weights over ``pool``
    topic_words: np.ndarray  # (topics, TOPIC_WORDS) word ids


@dataclass
class Corpus:
    texts: list[str]
    ptr: np.ndarray  # int64 (n + 1,): the words of chunk i are ids[ptr[i]:ptr[i + 1]]
    ids: np.ndarray  # int32 word ids
    topics: np.ndarray  # int32 (n,)
    vocab: Vocab

    @property
    def size(self) -> int:
        return len(self.texts)


@dataclass
class Queries:
    texts: list[str]
    targets: np.ndarray  # the chunk each question was cut from
    vectors: np.ndarray  # fake, made like the chunks' vectors


def build_vocab(n_chunks: int, rng: np.random.Generator) -> Vocab:
    import jieba

    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    index: dict[str, int] = {}
    template, starts = [], []
    for sentence in _SENTENCE.findall(text):
        toks = [t for t in jieba.lcut(sentence.strip()) if t.strip()]
        if len(toks) >= 3:
            starts.append(len(template))
            template += [index.setdefault(t, len(index)) for t in toks]
    seed_words = list(index)
    counts = np.bincount(template, minlength=len(seed_words))
    is_content = [not _PUNCT.match(w) and w not in STOPWORDS for w in seed_words]
    seed_pool = sorted((i for i, c in enumerate(is_content) if c), key=lambda i: -counts[i])
    # generated words: 2-4 characters drawn from the seed's own, or numbers
    chars = sorted({c for c in text if _CJK.match(c)})
    char_p = np.array([text.count(c) for c in chars], dtype=np.float64) ** 0.5
    char_p /= char_p.sum()
    n_synth = int(SYNTH_WORDS_PER_SQRT_TOKEN * math.sqrt(n_chunks * 60))
    lengths = rng.choice([2, 3, 4], size=n_synth, p=[0.6, 0.25, 0.15])
    picks = rng.choice(len(chars), size=(n_synth, 4), p=char_p)
    numbers = rng.random(n_synth) < 0.12
    values = rng.integers(10, 100_000, n_synth)
    for i in range(n_synth):
        w = str(values[i]) if numbers[i] else "".join(chars[j] for j in picks[i, : lengths[i]])
        if w not in index:
            index[w] = len(index)
    all_words = list(index)
    pool = np.array(seed_pool + list(range(len(seed_words), len(all_words))), dtype=np.int32)
    weights = 1.0 / (np.arange(len(pool)) + 2.0)
    cdf = np.cumsum(weights) / weights.sum()
    content = np.zeros(len(all_words), dtype=bool)
    content[pool] = True
    n_topics = max(32, n_chunks // 2000)
    head = pool[: max(2000, len(pool) // 5)]  # topic words are moderately common words
    topic_words = head[rng.integers(0, len(head), (n_topics, TOPIC_WORDS))]
    return Vocab(all_words, content, np.array(template, np.int32), np.array(starts), pool, cdf, topic_words)


def generate(n: int, seed: int = 0, block: int = 20_000) -> Corpus:
    rng = np.random.default_rng(seed)
    vocab = build_vocab(n, rng)
    word_arr = np.array(vocab.words, dtype=object)
    word_len = np.array([len(w) for w in vocab.words], dtype=np.int32)
    topics = rng.integers(0, len(vocab.topic_words), n).astype(np.int32)
    texts: list[str] = []
    id_parts, len_parts = [], []
    steps = np.arange(MAX_TOKENS)
    for b0 in range(0, n, block):
        b = min(block, n - b0)
        start = vocab.sentence_starts[rng.integers(0, len(vocab.sentence_starts), b)]
        tok = vocab.template[(start[:, None] + steps[None]) % len(vocab.template)]
        swap = vocab.content[tok] & (rng.random(tok.shape) < P_SWAP)
        zipf = vocab.pool[np.minimum(np.searchsorted(vocab.cdf, rng.random(tok.shape)), len(vocab.pool) - 1)]
        topical = vocab.topic_words[topics[b0 : b0 + b, None], rng.integers(0, TOPIC_WORDS, tok.shape)]
        tok = np.where(swap, np.where(rng.random(tok.shape) < P_TOPIC, topical, zipf), tok).astype(np.int32)
        target = np.clip(rng.normal(CHARS_MEAN, CHARS_SD, b), CHARS_MIN, CHARS_MAX)
        reached = np.cumsum(word_len[tok], axis=1) >= target[:, None]
        lens = np.where(reached.any(1), reached.argmax(1) + 1, MAX_TOKENS)
        keep = steps[None] < lens[:, None]
        id_parts.append(tok[keep])
        len_parts.append(lens)
        texts += ["".join(word_arr[row[:k]]) for row, k in zip(tok, lens)]
    lens = np.concatenate(len_parts)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    return Corpus(texts, ptr, np.concatenate(id_parts), topics, vocab)


def fake_vectors(corpus: Corpus, dim: int, seed: int = 0, block: int = 50_000,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """Random unit vectors correlated with the bag of words and the topic (NOT embeddings).

    ``rows`` recomputes some chunks' vectors (the noise is then drawn afresh, so not identical).
    """
    tables = _tables(corpus, dim, seed)
    if rows is not None:
        starts, ends = corpus.ptr[rows], corpus.ptr[rows + 1]
        ptr = np.concatenate([[0], np.cumsum(ends - starts)])
        ids = np.concatenate([corpus.ids[a:b] for a, b in zip(starts, ends)])
        return _mix(ptr, ids, corpus.topics[rows], corpus.vocab.content, tables, np.random.default_rng(seed + 4))
    rng = np.random.default_rng(seed + 1)
    out = np.empty((corpus.size, dim), dtype=np.float32)
    for b0 in range(0, corpus.size, block):
        b1 = min(b0 + block, corpus.size)
        out[b0:b1] = _mix(corpus.ptr[b0 : b1 + 1] - corpus.ptr[b0], corpus.ids[corpus.ptr[b0] : corpus.ptr[b1]],
                          corpus.topics[b0:b1], corpus.vocab.content, tables, rng)
    return out


def make_queries(corpus: Corpus, m: int, dim: int, seed: int = 0) -> Queries:
    """Questions cut from random chunks: 2-5 consecutive words of one chunk and a question ending."""
    rng = np.random.default_rng(seed + 2)
    targets = rng.choice(corpus.size, size=min(m, corpus.size), replace=False)
    texts, spans = [], []
    punct = ~corpus.vocab.content & np.array([bool(_PUNCT.match(w)) for w in corpus.vocab.words])
    for t in targets:
        toks = corpus.ids[corpus.ptr[t] : corpus.ptr[t + 1]]
        starts = np.flatnonzero(corpus.vocab.content[toks])
        s = int(starts[rng.integers(0, len(starts))]) if len(starts) else 0
        span = []
        for w in toks[s : s + int(rng.integers(2, 6))]:
            if punct[w]:
                break
            span.append(int(w))
        spans.append(span)
        texts.append("".join(corpus.vocab.words[w] for w in span) + QUESTION_ENDS[int(rng.integers(len(QUESTION_ENDS)))])
    ptr = np.zeros(len(spans) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in spans], out=ptr[1:])
    ids = np.array([w for s in spans for w in s], dtype=np.int32)
    own = _mix(ptr, ids, corpus.topics[targets], corpus.vocab.content, _tables(corpus, dim, seed), rng)
    # a question is about its source chunk: pulled towards it to cosine ~0.85, as e5 places
    # a question near its answering passage
    vecs = own + fake_vectors(corpus, dim, seed, rows=targets)
    return Queries(texts, targets, np.ascontiguousarray(vecs / np.linalg.norm(vecs, axis=1, keepdims=True)))


def _tables(corpus: Corpus, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 3)
    words = rng.standard_normal((len(corpus.vocab.words), dim), dtype=np.float32)
    topics = rng.standard_normal((len(corpus.vocab.topic_words), dim), dtype=np.float32) / math.sqrt(dim)
    return words, topics


def _mix(ptr: np.ndarray, ids: np.ndarray, topics: np.ndarray, content: np.ndarray,
         tables: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    from scipy import sparse

    word_vecs, topic_vecs = tables
    rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    weight = content[ids].astype(np.float32)
    bag = sparse.csr_matrix((weight, (rows, ids)), shape=(len(ptr) - 1, len(word_vecs))) @ word_vecs
    bag /= np.linalg.norm(bag, axis=1, keepdims=True) + 1e-9
    noise = rng.standard_normal(bag.shape, dtype=np.float32) / math.sqrt(bag.shape[1])
    v = bag + TOPIC_WEIGHT * topic_vecs[topics] + NOISE_WEIGHT * noise
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def direct_terms(corpus: Corpus, block: int = 50_000) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """BM25 terms straight from the word lists, without running jieba over the texts (labelled as such).

    Like ``rag.text.normalize.index_terms``: jieba search-mode words without stop words (of each
    generated word on its own, not of the running text) plus "#"-prefixed character bigrams
    of CJK runs, including bigrams across word boundaries.  Returns (ptr, term ids, terms).
    """
    vocab = corpus.vocab
    term_ids: dict[str, int] = {}
    char_ids: dict[str, int] = {}
    word_terms, inner_pairs = [], []
    first = np.full(len(vocab.words), -1, dtype=np.int64)
    last = np.full(len(vocab.words), -1, dtype=np.int64)
    for w_id, w in enumerate(vocab.words):
        word_terms.append([term_ids.setdefault(t, len(term_ids)) for t in words(w) if t not in STOPWORDS])
        norm = unicodedata.normalize("NFKC", w)
        cjk = [char_ids.setdefault(c, len(char_ids)) if _CJK.match(c) else -1 for c in norm]
        inner_pairs.append([(a, b) for a, b in pairwise(cjk) if a >= 0 and b >= 0])
        if cjk:
            first[w_id], last[w_id] = cjk[0], cjk[-1]
    chars = list(char_ids)
    n_chars = len(chars)
    pair_term = np.full(n_chars * n_chars, -1, dtype=np.int64)

    def pair_ids(keys: np.ndarray) -> np.ndarray:
        for k in np.unique(keys[pair_term[keys] < 0]):
            pair_term[k] = term_ids.setdefault("#" + chars[k // n_chars] + chars[k % n_chars], len(term_ids))
        return pair_term[keys]

    wt_ptr, wt_vals = _csr(word_terms)
    ip_ptr, ip_keys = _csr([[a * n_chars + b for a, b in p] for p in inner_pairs])
    ip_vals = pair_ids(ip_keys) if len(ip_keys) else ip_keys
    ptr_parts, id_parts = [np.zeros(1, np.int64)], []
    for b0 in range(0, corpus.size, block):
        b1 = min(b0 + block, corpus.size)
        tok = corpus.ids[corpus.ptr[b0] : corpus.ptr[b1]]
        doc = np.repeat(np.arange(b1 - b0), np.diff(corpus.ptr[b0 : b1 + 1]))
        a_vals, a_own = _gather(wt_ptr, wt_vals, tok)
        b_vals, b_own = _gather(ip_ptr, ip_vals, tok)
        joined = (doc[:-1] == doc[1:]) & (last[tok[:-1]] >= 0) & (first[tok[1:]] >= 0)
        c_vals = pair_ids(last[tok[:-1]][joined] * n_chars + first[tok[1:]][joined])
        docs = np.concatenate([doc[a_own], doc[b_own], doc[:-1][joined]])
        vals = np.concatenate([a_vals, b_vals, c_vals]).astype(np.int32)
        order = np.argsort(docs, kind="stable")
        id_parts.append(vals[order])
        ptr_parts.append(ptr_parts[-1][-1] + np.cumsum(np.bincount(docs, minlength=b1 - b0)))
    return np.concatenate(ptr_parts), np.concatenate(id_parts), list(term_ids)


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=ptr[1:])
    return ptr, np.array([v for r in rows for v in r], dtype=np.int64)


def _gather(ptr: np.ndarray, vals: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``vals[ptr[k]:ptr[k+1]]`` for every k in ``keys``, and the position in ``keys`` of each."""
    lens = ptr[keys + 1] - ptr[keys]
    owner = np.repeat(np.arange(len(keys)), lens)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(lens) - lens, lens)
    return vals[ptr[keys][owner] + offset], owner
