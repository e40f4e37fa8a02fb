"""Sentence-aware chunking: sentence ends, numbers, token budget, overlap, stable ids, offsets."""

from __future__ import annotations

import pytest

from rag.errors import ConfigError
from rag.ingest.chunking import ChunkSettings, chunk_document
from rag.ingest.cleaning import clean
from rag.text.sentences import sentence_spans
from rag.text.tokens import count_tokens
from rag.types import Chunk


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_closing_quotes_stay_with_their_sentence():
    assert sentences("他说：“我们好。”然后走了！真的吗？") == ["他说：“我们好。”", "然后走了！", "真的吗？"]


def test_numbers_and_book_titles_are_never_split():
    assert sentences("年产值向1.5亿元迈进。播放《好。戏》之后结束。") == ["年产值向1.5亿元迈进。", "播放《好。戏》之后结束。"]
    assert sentences("It grew 3.5 times. Then it stopped.") == ["It grew 3.5 times.", "Then it stopped."]


@pytest.fixture(scope="module")
def seed_chunks(seed_text):
    return chunk_document("seed.txt", clean(seed_text), ChunkSettings())


def test_chunks_respect_the_token_budget(seed_chunks):
    # sentences are counted one by one: the joined text may take a token more where two of them meet
    assert all(count_tokens(c.text) <= ChunkSettings().chunk_tokens + 2 for c in seed_chunks)
    assert len(seed_chunks) > 10


def test_chunk_offsets_point_into_the_source(seed_text, seed_chunks):
    for c in seed_chunks:
        src = "".join(seed_text[c.start : c.end].split())
        assert src.startswith("".join(c.text.split())[:10])
        assert src.endswith("".join(c.text.split())[-10:])
        for i in range(0, len(c.text), 7):
            if not c.text[i].isspace():
                assert seed_text[c.source_span(i, i + 1)[0]] == c.text[i]


def _shared_head(a: Chunk, b: Chunk) -> int:
    """How many leading characters of ``b.text`` come from source text before ``a.end`` (``a`` holds them too)."""
    m = 0
    while m < len(b.text) and b.source_span(m, m + 1)[0] < a.end:
        m += 1
    return m


def test_consecutive_chunks_overlap_by_whole_sentences(seed_chunks):
    overlaps = 0
    for a, b in zip(seed_chunks, seed_chunks[1:]):
        assert a.start < b.start and a.end < b.end, (a.text[:20], b.text[:20])  # always moving forward
        m = _shared_head(a, b)
        if not m:
            continue
        overlaps += 1
        shared = b.text[:m]
        # The same text ends a and begins b (compared in clean text: the source may hold a repaired layout break)...
        assert a.text.endswith(shared), (a.text[-30:], shared[:30])
        # ...and it is whole sentences: it starts where one of a's sentences starts, ends where one of b's ends.
        assert len(a.text) - m in {s for s, _ in sentence_spans(a.text)}, shared[:30]
        assert m in {e for _, e in sentence_spans(b.text)}, shared[-30:]
    assert overlaps > 10


def test_chunks_never_straddle_a_page_marker(seed_text, seed_chunks):
    markers = [i for i in range(len(seed_text)) if seed_text.startswith("《上接1版》", i)]
    for c in seed_chunks:
        assert not any(c.start < m < c.end for m in markers), c.text[:30]


def test_ids_are_stable_and_unique(seed_text, seed_chunks):
    again = chunk_document("seed.txt", clean(seed_text), ChunkSettings())
    assert [c.chunk_id for c in again] == [c.chunk_id for c in seed_chunks]
    assert len({c.chunk_id for c in seed_chunks}) == len(seed_chunks)
    other = chunk_document("other.txt", clean(seed_text), ChunkSettings())
    assert not {c.chunk_id for c in other} & {c.chunk_id for c in seed_chunks}


def test_an_overlong_sentence_is_cut_at_clauses_not_inside_numbers():
    text = "，".join(f"第{i}项指标达到123456.78万元" for i in range(60)) + "。"
    chunks = chunk_document("long.txt", clean(text), ChunkSettings(chunk_tokens=64, overlap_tokens=0))
    assert len(chunks) > 3
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_bad_settings_are_refused_with_the_value():
    with pytest.raises(ConfigError, match="overlap_tokens is 200"):
        ChunkSettings(chunk_tokens=256, overlap_tokens=200)


def test_no_tiny_tail_chunk():
    text = "。".join(f"第{i}句话讲述了湘江两岸的城市发展和历史变迁" for i in range(40)) + "。]"
    chunks = chunk_document("t.txt", clean(text), ChunkSettings(chunk_tokens=128, overlap_tokens=16))
    assert len(chunks) > 3
    assert all(count_tokens(c.text) >= 32 for c in chunks)
    assert chunks[-1].text.endswith("。]")
