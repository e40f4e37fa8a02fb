"""BM25 keeps each chunk's terms, so a rebuild segments only new chunks, with unchanged scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rag.storage.lexical as lexical
from rag import RAG
from rag.storage.lexical import LexicalIndex

QUERIES = ["蓝风微短剧基地从签约到试运营用了多少天？", "军门社区的老党员", "天心经开区高新技术企业", "低空经济 无人机"]


def test_reused_terms_give_the_scores_of_segmenting_again(seed_rag):
    texts = [c.text for c in seed_rag._snap.chunks]
    first = LexicalIndex.build(texts)
    kept_at = list(range(0, len(texts), 2))  # half the chunks deleted
    new = ["长沙市召开人工智能大会，发布十项新举措。", "蓝风微短剧基地新增两个虚拟棚。"]
    cached, vocab = first.cached_terms(kept_at)
    assert all(c is not None for c in cached)
    reused = LexicalIndex.build_reusing([texts[i] for i in kept_at] + new, cached + [None, None], vocab)
    fresh = LexicalIndex.build([texts[i] for i in kept_at] + new)
    for q in QUERIES + new:
        assert np.allclose(reused.scores(q), fresh.scores(q), atol=1e-5), q
    for term in ("微短剧", "虚拟棚", "人工智能", "邱沛霖"):
        assert reused.idf(term) == pytest.approx(fresh.idf(term))


@pytest.fixture
def segment_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = lexical.index_terms

    def counting(text: str) -> list[str]:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(lexical, "index_terms", counting)
    return calls


def _doc(tmp_path, name: str, text: str):
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def test_adding_a_file_segments_only_its_chunks_even_after_a_restart(writable_index, tmp_path, segment_calls):
    rag = RAG.open(writable_index, progress=False)
    n = rag.size
    rag.add(_doc(tmp_path, "kite", "潍坊国际风筝会今年有六十个国家参加。"))
    assert len(segment_calls) == 1  # the new chunk only, not the index's others
    segment_calls.clear()
    again = RAG.open(writable_index, progress=False)  # term ids read back from disk
    again.add(_doc(tmp_path, "tea", "安化黑茶的产量去年增长了一成。"))
    assert len(segment_calls) == 1 and again.size == n + 2
    assert again.search("风筝会", top_k=1)[0].chunk.doc_id == "kite.txt"
    segment_calls.clear()
    again.delete("kite.txt")
    assert segment_calls == []  # a delete segments nothing
    assert again.search("黑茶产量", top_k=1)[0].chunk.doc_id == "tea.txt"


def _bm25(index_dir):
    return index_dir / json.loads((index_dir / "manifest.json").read_text())["generation"] / "bm25"


def _swap_one_term(bm25) -> None:
    """Damage only the checksum can see: one chunk's first term id becomes another valid id."""
    ids = np.load(bm25 / "doc_terms.ids.npy")
    ids[0] = ids[1] if ids[1] != ids[0] else ids[0] + 1
    np.save(bm25 / "doc_terms.ids.npy", ids, allow_pickle=False)


@pytest.mark.parametrize("damage", ["missing", "other version", "truncated", "one id swapped"])
def test_a_missing_or_damaged_term_cache_means_segmenting_again(writable_index, tmp_path, segment_calls, damage):
    bm25 = _bm25(writable_index)
    if damage == "missing":
        (bm25 / "doc_terms.ids.npy").unlink()
    elif damage == "other version":
        (bm25 / "doc_terms.json").write_text(json.dumps({"terms_version": 999}))
    elif damage == "truncated":
        np.save(bm25 / "doc_terms.offsets.npy", np.array([0, 5], dtype=np.int64))
    else:
        _swap_one_term(bm25)
    rag = RAG.open(writable_index, progress=False)
    n = rag.size
    rag.add(_doc(tmp_path, "kite", "潍坊国际风筝会今年有六十个国家参加。"))
    assert len(segment_calls) == n + 1  # everything, once
    assert rag.search("风筝会", top_k=1)[0].chunk.doc_id == "kite.txt"
    segment_calls.clear()
    rag.add(_doc(tmp_path, "tea", "安化黑茶的产量去年增长了一成。"))
    assert len(segment_calls) == 1  # and the cache is whole again


def test_verify_warns_of_a_damaged_term_cache_but_the_index_is_sound(writable_index):
    from rag.storage.verify import verify

    _swap_one_term(_bm25(writable_index))
    report = verify(writable_index, check_embedder=False)
    assert report.ok, report.errors  # a cache: it costs the next change time, never an answer
    assert report.facts["bm25_term_cache"].startswith("absent or unusable")
    assert any("doc_terms.ids.npy fails its checksum" in w and "segments every chunk once" in w for w in report.warnings)
