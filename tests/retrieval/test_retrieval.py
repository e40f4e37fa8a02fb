"""Retrieval over a real FAISS index: exactness, hybrid fusion, names and numbers, incremental updates."""

from __future__ import annotations

import numpy as np
import pytest

from rag import RAG
from rag.errors import ConfigError, DocumentNotFoundError


def test_faiss_agrees_with_brute_force(seed_rag, embedder):
    snap = seed_rag.state
    mat = snap.vectors.reconstruct_n(0, snap.size)
    q = embedder.embed_queries(["蓝风微短剧基地的拍摄能力"])[0]
    brute = np.argsort(-(mat @ q))[:5]
    d, i = snap.vectors.search(q.reshape(1, -1), 5)
    assert i[0].tolist() == brute.tolist()
    assert np.allclose(d[0], (mat @ q)[brute], atol=1e-5)


@pytest.mark.parametrize("query", ["邱沛霖", "224家", "南洞艺谷", "7700P", "影嗅"])
def test_a_name_or_number_finds_its_chunk_first(seed_rag, query):
    top = seed_rag.search(query, top_k=5)[0]
    assert query.replace(" ", "") in top.chunk.text.replace("\n", "")


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_each_mode_finds_the_passage(seed_rag, mode):
    passages = seed_rag.search("蓝风微短剧基地从签约到试运营用了多少天？", top_k=5, retrieval=mode)
    assert any("47天" in p.chunk.text for p in passages)
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))


def test_bad_top_k_and_questions_are_refused(seed_rag):
    with pytest.raises(ConfigError, match="top_k is 0"):
        seed_rag.search("问题", top_k=0)
    with pytest.raises(ConfigError, match="empty"):
        seed_rag.search(" \x00\n ")
    with pytest.raises(ConfigError, match="over the limit"):
        seed_rag.search("长" * 100_000)


def test_incremental_indexing(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.txt").write_text("岳麓山位于长沙市湘江西岸，海拔三百米。", encoding="utf-8")
    (corpus / "b.txt").write_text("橘子洲是湘江中的一个沙洲，长约五公里。", encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    first = rag.index([corpus])
    assert sorted(first.added) == ["a.txt", "b.txt"] and first.chunks_embedded == 2

    again = rag.index([corpus])
    assert again.chunks_embedded == 0 and sorted(again.unchanged) == ["a.txt", "b.txt"]

    (corpus / "b.txt").write_text("橘子洲是湘江中的一个沙洲，长约五公里。\n\n每逢节假日有焰火晚会。", encoding="utf-8")
    (corpus / "c.txt").write_text("天心阁是长沙古城墙的一部分。", encoding="utf-8")
    (corpus / "a.txt").unlink()
    third = rag.index([corpus])
    assert third.updated == ["b.txt"] and third.added == ["c.txt"] and third.removed == ["a.txt"]
    assert third.chunks_embedded == 2

    reopened = RAG.open(tmp_path / "idx")
    assert sorted(d["doc_id"] for d in reopened.documents()) == ["b.txt", "c.txt"]
    assert all(p.chunk.doc_id != "a.txt" for p in reopened.search("岳麓山", top_k=5))


def test_delete_removes_a_document_from_answers_at_once(writable_index, tmp_path):
    rag = RAG.open(writable_index, progress=False)
    extra = tmp_path / "extra.txt"
    extra.write_text("马王堆汉墓出土了素纱襌衣，重仅四十九克。", encoding="utf-8")
    rag.add(extra)
    assert rag.search("素纱襌衣", top_k=1)[0].chunk.doc_id == "extra.txt"
    rag.delete(["extra.txt"])
    assert all(p.chunk.doc_id != "extra.txt" for p in rag.search("素纱襌衣", top_k=10))
    assert all(p.chunk.doc_id != "extra.txt" for p in RAG.open(writable_index).search("素纱襌衣", top_k=10))
    with pytest.raises(DocumentNotFoundError, match="extra.txt"):
        rag.delete(["extra.txt"])


def test_bad_files_are_skipped_and_do_not_stop_the_others(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "good.txt").write_text("湘江是长江的支流。", encoding="utf-8")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 10)
    report = RAG.open(tmp_path / "idx", create=True, progress=False).index([corpus])
    assert report.added == ["good.txt"]
    assert {k.split("/")[-1] for k in report.skipped} == {"empty.txt", "binary.txt"}


def test_a_renamed_file_is_not_embedded_again(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.txt").write_text("岳麓山位于长沙市湘江西岸。\n\n橘子洲是湘江中的沙洲。", encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    assert rag.index([corpus]).chunks_embedded == 1
    (corpus / "a.txt").rename(corpus / "renamed.txt")
    report = rag.index([corpus])
    assert report.added == ["renamed.txt"] and report.removed == ["a.txt"]
    assert report.chunks_embedded == 0 and report.chunks_reused == 1


def test_the_passage_with_the_distinctive_terms_beats_one_that_repeats_the_topic(seed_rag):
    """Re-ranking by distinctive terms: the topic (天心经开区) is in every candidate and weighs
    nothing; what the question asks about (诉求解决率) decides."""
    from rag.retrieval.retrieve import MatchTexts, RetrievalSettings, _rerank_distinctive, query_idf, retrieve

    snap = seed_rag.state
    q = "天心经开区的企业诉求解决率是多少？"
    texts = [c.text for c in snap.chunks]
    repeats = next(i for i, t in enumerate(texts) if t.count("天心经开区") >= 3 and "诉求" not in t)
    answer = next(i for i, t in enumerate(texts) if "诉求解决率" in t)
    fused = {repeats: 1.0, answer: 0.8}
    fused |= {i: 0.7 for i, t in enumerate(texts) if "天心经开区" in t and i not in fused}
    for i, bonus in _rerank_distinctive(MatchTexts(dict(enumerate(snap.chunks))), query_idf(snap.lexical.idf, q), fused, weight=0.5,
                                         depth=20).items():
        fused[i] += bonus
    assert fused[answer] > fused[repeats]
    assert fused[answer] - 0.8 > 0.3 and fused[repeats] - 1.0 < 0.1  # the topic term added almost nothing

    ranks = {}
    for w in (0.0, 0.5):
        got = retrieve(snap, seed_rag.embedder, q, 5, RetrievalSettings(rerank_weight=w))
        ranks[w] = next(p.rank for p in got if "诉求解决率" in p.chunk.text)
    assert ranks[0.5] <= ranks[0.0] and ranks[0.5] == 1
    with pytest.raises(ConfigError, match="rerank_weight"):
        RetrievalSettings(rerank_weight=-1)


def test_snapshot_cosines_are_each_keys_own_dot_product(seed_rag, embedder):
    """Read in one FAISS call, scored one key at a time as before (a matrix product may round otherwise)."""
    from rag.storage.store import SnapshotStore
    from rag.text.normalize import normalize_for_match, passage_match_form

    store = SnapshotStore(seed_rag.state)
    q = embedder.embed_queries(["蓝风微短剧基地"])[0]
    keys = [5, 0, 3, 5]
    want = {k: float(np.dot(seed_rag.state.vectors.reconstruct(k), q)) for k in keys}
    assert store.cosines(keys, q) == want and store.cosines([], q) == {}
    text = store.chunks([0])[0].text
    assert passage_match_form(text) == normalize_for_match(text) == passage_match_form(text)  # remembered: the same
