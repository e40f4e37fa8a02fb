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

Everything is deterministic given ``seed``. ``Stream`` gives the same corpus, terms, vectors and
questions block by block, holding one block (and the vocabulary's tables) at a time.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice, pairwise
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
GEN_BLOCK, VEC_BLOCK, TERM_BLOCK = 20_000, 50_000, 50_000  # rows per draw of generate, fake_vectors, direct_terms
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


def generate(n: int, seed: int = 0, block: int = GEN_BLOCK) -> Corpus:
    rng = np.random.default_rng(seed)
    vocab = build_vocab(n, rng)
    word_arr = np.array(vocab.words, dtype=object)
    word_len = np.array([len(w) for w in vocab.words], dtype=np.int32)
    topics = rng.integers(0, len(vocab.topic_words), n).astype(np.int32)
    texts: list[str] = []
    id_parts, len_parts = [], []
    for b0 in range(0, n, block):
        ids, lens, block_texts = _draw(vocab, word_arr, word_len, topics[b0 : b0 + block], rng)
        id_parts.append(ids)
        len_parts.append(lens)
        texts += block_texts
    lens = np.concatenate(len_parts)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    return Corpus(texts, ptr, np.concatenate(id_parts), topics, vocab)


def _draw(vocab: Vocab, word_arr: np.ndarray, word_len: np.ndarray, topics: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One block of chunks (as many as ``topics``): their word ids laid end to end, word counts and texts."""
    b = len(topics)
    steps = np.arange(MAX_TOKENS)
    start = vocab.sentence_starts[rng.integers(0, len(vocab.sentence_starts), b)]
    tok = vocab.template[(start[:, None] + steps[None]) % len(vocab.template)]
    swap = vocab.content[tok] & (rng.random(tok.shape) < P_SWAP)
    zipf = vocab.pool[np.minimum(np.searchsorted(vocab.cdf, rng.random(tok.shape)), len(vocab.pool) - 1)]
    topical = vocab.topic_words[topics[:, None], rng.integers(0, TOPIC_WORDS, tok.shape)]
    tok = np.where(swap, np.where(rng.random(tok.shape) < P_TOPIC, topical, zipf), tok).astype(np.int32)
    target = np.clip(rng.normal(CHARS_MEAN, CHARS_SD, b), CHARS_MIN, CHARS_MAX)
    reached = np.cumsum(word_len[tok], axis=1) >= target[:, None]
    lens = np.where(reached.any(1), reached.argmax(1) + 1, MAX_TOKENS)
    keep = steps[None] < lens[:, None]
    return tok[keep], lens, ["".join(word_arr[row[:k]]) for row, k in zip(tok, lens)]


def fake_vectors(corpus: Corpus, dim: int, seed: int = 0, block: int = VEC_BLOCK,
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
    rows = [corpus.ids[corpus.ptr[t] : corpus.ptr[t + 1]] for t in targets]
    return _questions(corpus.vocab, targets, rows, corpus.topics[targets], _tables(corpus, dim, seed), seed, rng)


def _questions(vocab: Vocab, targets: np.ndarray, rows: list[np.ndarray], topics: np.ndarray,
               tables: tuple[np.ndarray, np.ndarray], seed: int, rng: np.random.Generator) -> Queries:
    """``make_queries`` given its targets, their chunks' word ids (``rows``) and topics, and its ``rng``."""
    texts, spans = [], []
    punct = ~vocab.content & np.array([bool(_PUNCT.match(w)) for w in vocab.words])
    for toks in rows:
        starts = np.flatnonzero(vocab.content[toks])
        s = int(starts[rng.integers(0, len(starts))]) if len(starts) else 0
        span = []
        for w in toks[s : s + int(rng.integers(2, 6))]:
            if punct[w]:
                break
            span.append(int(w))
        spans.append(span)
        texts.append("".join(vocab.words[w] for w in span) + QUESTION_ENDS[int(rng.integers(len(QUESTION_ENDS)))])
    ptr = np.zeros(len(spans) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in spans], out=ptr[1:])
    ids = np.array([w for s in spans for w in s], dtype=np.int32)
    own = _mix(ptr, ids, topics, vocab.content, tables, rng)
    # a question is about its source chunk: pulled towards it to cosine ~0.85, as e5 places
    # a question near its answering passage (the chunk's vector made afresh: ``fake_vectors(rows=targets)``)
    src_ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    src_ids = np.concatenate(rows) if rows else np.zeros(0, np.int32)
    vecs = own + _mix(src_ptr, src_ids, topics, vocab.content, tables, np.random.default_rng(seed + 4))
    return Queries(texts, targets, np.ascontiguousarray(vecs / np.linalg.norm(vecs, axis=1, keepdims=True)))


def _tables(corpus: Corpus, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return _tables_of(corpus.vocab, dim, seed)


def _tables_of(vocab: Vocab, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random vector per word and per topic (float32: 1.5 GB at 10M chunks' ~1M words)."""
    rng = np.random.default_rng(seed + 3)
    words = rng.standard_normal((len(vocab.words), dim), dtype=np.float32)
    topics = rng.standard_normal((len(vocab.topic_words), dim), dtype=np.float32) / math.sqrt(dim)
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


def direct_terms(corpus: Corpus, block: int = TERM_BLOCK) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """BM25 terms straight from the word lists, without running jieba over the texts (labelled as such).

    Like ``rag.text.normalize.index_terms``: jieba search-mode words without stop words (of each
    generated word on its own, not of the running text) plus "#"-prefixed character bigrams
    of CJK runs, including bigrams across word boundaries.  Returns (ptr, term ids, terms).
    """
    maker = TermMaker(corpus.vocab)
    ptr_parts, id_parts = [np.zeros(1, np.int64)], []
    for b0 in range(0, corpus.size, block):
        b1 = min(b0 + block, corpus.size)
        counts, vals = maker.block(corpus.ptr[b0 : b1 + 1] - corpus.ptr[b0], corpus.ids[corpus.ptr[b0] : corpus.ptr[b1]])
        id_parts.append(vals)
        ptr_parts.append(ptr_parts[-1][-1] + np.cumsum(counts))
    return np.concatenate(ptr_parts), np.concatenate(id_parts), maker.terms()


class TermMaker:
    """``direct_terms`` block by block: each word's own terms and inner bigrams are tabled once; term
    ids are given in order of first use, so the same blocks in the same order give the same ids."""

    def __init__(self, vocab: Vocab) -> None:
        self.term_ids: dict[str, int] = {}
        char_ids: dict[str, int] = {}
        word_terms, inner_pairs = [], []
        self.first = np.full(len(vocab.words), -1, dtype=np.int64)
        self.last = np.full(len(vocab.words), -1, dtype=np.int64)
        for w_id, w in enumerate(vocab.words):
            word_terms.append([self.term_ids.setdefault(t, len(self.term_ids)) for t in words(w) if t not in STOPWORDS])
            norm = unicodedata.normalize("NFKC", w)
            cjk = [char_ids.setdefault(c, len(char_ids)) if _CJK.match(c) else -1 for c in norm]
            inner_pairs.append([(a, b) for a, b in pairwise(cjk) if a >= 0 and b >= 0])
            if cjk:
                self.first[w_id], self.last[w_id] = cjk[0], cjk[-1]
        self.chars = list(char_ids)
        self.n_chars = len(self.chars)
        self.pair_term = np.full(self.n_chars * self.n_chars, -1, dtype=np.int64)
        self.wt_ptr, self.wt_vals = _csr(word_terms)
        del word_terms
        self.ip_ptr, ip_keys = _csr([[a * self.n_chars + b for a, b in p] for p in inner_pairs])
        self.ip_vals = self._pair_ids(ip_keys) if len(ip_keys) else ip_keys

    def _pair_ids(self, keys: np.ndarray) -> np.ndarray:
        n, chars, pair_term = self.n_chars, self.chars, self.pair_term
        for k in np.unique(keys[pair_term[keys] < 0]):
            pair_term[k] = self.term_ids.setdefault("#" + chars[k // n] + chars[k % n], len(self.term_ids))
        return pair_term[keys]

    def block(self, ptr: np.ndarray, tok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The terms of chunks whose word ids are ``tok[ptr[i]:ptr[i + 1]]``: (terms per chunk, term ids)."""
        n_rows = len(ptr) - 1
        first, last = self.first, self.last
        doc = np.repeat(np.arange(n_rows), np.diff(ptr))
        a_vals, a_own = _gather(self.wt_ptr, self.wt_vals, tok)
        b_vals, b_own = _gather(self.ip_ptr, self.ip_vals, tok)
        joined = (doc[:-1] == doc[1:]) & (last[tok[:-1]] >= 0) & (first[tok[1:]] >= 0)
        c_vals = self._pair_ids(last[tok[:-1]][joined] * self.n_chars + first[tok[1:]][joined])
        docs = np.concatenate([doc[a_own], doc[b_own], doc[:-1][joined]])
        vals = np.concatenate([a_vals, b_vals, c_vals]).astype(np.int32)
        order = np.argsort(docs, kind="stable")
        return np.bincount(docs, minlength=n_rows), vals[order]

    def terms(self, start: int = 0) -> list[str]:
        """The terms with ids ``start`` and on, in id order."""
        return list(islice(self.term_ids, start, None))


@dataclass
class Block:
    """Rows ``start`` to ``start + len(texts)`` of the corpus, as ``generate`` and the functions after it give them."""

    start: int
    texts: list[str]
    term_ptr: np.ndarray  # int64 (rows + 1,): the BM25 terms of row i are term_ids[term_ptr[i]:term_ptr[i + 1]]
    term_ids: np.ndarray  # int32, ids into ``Stream.terms``
    vectors: np.ndarray  # float16 (rows, dim): ``fake_vectors``' rows, rounded as the index stores them


class Stream:
    """``generate(n, seed)``, ``direct_terms``, ``fake_vectors`` and ``make_queries`` of it, block by block.

    The same draws in the same order: the texts, term ids and vectors (before rounding to float16)
    are those of the whole-corpus functions, and so are the questions (``queries()``, once every block
    is out), whose targets are drawn up front and whose chunks' word ids are kept as they pass. What
    stays in memory is the vocabulary's tables (the word vectors: 1.5 GB at 10M chunks) and one block.
    """

    def __init__(self, n: int, dim: int, seed: int = 0, questions: int = 300) -> None:
        self.n, self.dim, self.seed = n, dim, seed
        self._rng = np.random.default_rng(seed)
        self.vocab = build_vocab(n, self._rng)
        self._topics = self._rng.integers(0, len(self.vocab.topic_words), n).astype(np.int32)
        self._tables = _tables_of(self.vocab, dim, seed)
        self.terms = TermMaker(self.vocab)
        self._q_rng = np.random.default_rng(seed + 2)
        self.targets = self._q_rng.choice(n, size=min(questions, n), replace=False)
        self._target_rows: dict[int, np.ndarray] = {}

    def blocks(self, rows: int) -> Iterator[Block]:
        """The corpus in blocks of ``rows`` rows (the last one shorter), drawn ``GEN_BLOCK`` rows at a time."""
        vocab = self.vocab
        word_arr = np.array(vocab.words, dtype=object)
        word_len = np.array([len(w) for w in vocab.words], dtype=np.int32)
        vec_rng = np.random.default_rng(self.seed + 1)
        self._pending: tuple[list[str], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        start = have = 0
        for b0 in range(0, self.n, GEN_BLOCK):
            ids, lens, block_texts = _draw(vocab, word_arr, word_len, self._topics[b0 : b0 + GEN_BLOCK], self._rng)
            self._pending[0].extend(block_texts)
            self._pending[1].append(lens)
            self._pending[2].append(ids)
            del ids, lens, block_texts
            have += len(self._pending[1][-1])
            while have >= rows or (have and start + have == self.n):
                cut = min(rows, have)
                yield self._block(start, *self._take(cut), vec_rng)  # nothing of the block stays in this frame
                start, have = start + cut, have - cut

    def _take(self, cut: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The first ``cut`` drawn rows not yet given out: (texts, ptr, word ids)."""
        texts, len_parts, id_parts = self._pending
        lens, ids = np.concatenate(len_parts), np.concatenate(id_parts)
        ptr = np.zeros(cut + 1, dtype=np.int64)
        np.cumsum(lens[:cut], out=ptr[1:])
        self._pending = (texts[cut:], [lens[cut:].copy()], [ids[ptr[-1] :].copy()])
        return texts[:cut], ptr, ids[: ptr[-1]]

    def _block(self, start: int, texts: list[str], ptr: np.ndarray, ids: np.ndarray,
               vec_rng: np.random.Generator) -> Block:
        end = start + len(texts)
        for t in self.targets[(self.targets >= start) & (self.targets < end)]:
            self._target_rows[int(t)] = ids[ptr[t - start] : ptr[t - start + 1]].copy()
        vectors = np.empty((len(texts), self.dim), np.float16)
        counts, term_parts = [], []
        # in the whole-corpus functions' own blocks (multiples of VEC_BLOCK, TERM_BLOCK from row 0), so
        # that the same draws and the same first uses of terms come in the same order
        for lo, hi in _spans(start, end, VEC_BLOCK):
            p = ptr[lo - start : hi - start + 1]
            vectors[lo - start : hi - start] = _mix(p - p[0], ids[p[0] : p[-1]], self._topics[lo:hi],
                                                    self.vocab.content, self._tables, vec_rng)
        for lo, hi in _spans(start, end, TERM_BLOCK):
            p = ptr[lo - start : hi - start + 1]
            c, v = self.terms.block(p - p[0], ids[p[0] : p[-1]])
            counts.append(c)
            term_parts.append(v)
        term_ptr = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(np.concatenate(counts), out=term_ptr[1:])
        return Block(start, texts, term_ptr, np.concatenate(term_parts), vectors)

    def queries(self) -> Queries:
        """``make_queries(corpus, questions, dim, seed)``, once every block has been drawn."""
        rows = [self._target_rows[int(t)] for t in self.targets]
        return _questions(self.vocab, self.targets, rows, self._topics[self.targets], self._tables, self.seed,
                          self._q_rng)


def _spans(start: int, end: int, step: int) -> list[tuple[int, int]]:
    """``start:end`` cut at the multiples of ``step``."""
    cuts = [start, *range((start // step + 1) * step, end, step), end]
    return [(a, b) for a, b in pairwise(cuts) if b > a]


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
