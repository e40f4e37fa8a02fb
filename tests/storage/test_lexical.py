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
    texts = [c.text for c in seed_rag.state.chunks]
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


# ---- simplified and traditional alike --------------------------------------------------------------------

TRADITIONAL_DOCS = {
    "zoo.txt": "臺北市立動物園位於文山區，園區面積約一百六十五公頃，飼養的動物超過四百種。",
    "library.txt": "國家圖書館的館藏書籍超過四百萬冊，閱覽室每週開放六天，週一休館。",
    "port.txt": "高雄港是臺灣最大的國際商港，貨櫃裝卸量長年居全國之冠，港區設有五個貨櫃中心。",
}
SIMPLIFIED_DOCS = {"tea.txt": "湖南安化县的黑茶产业去年继续扩张，茶园面积扩大到三十万亩，带动两万农户增收。"}
SIMPLIFIED_QUESTIONS = {"动物园饲养的动物超过多少种？": "zoo.txt", "国家图书馆的馆藏书籍有多少册？": "library.txt",
                        "高雄港设有几个货柜中心？": "port.txt"}
TRADITIONAL_QUESTIONS = {"安化縣茶園面積擴大到多少畝？": "tea.txt", "帶動多少農戶增收？": "tea.txt"}


def _corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in (TRADITIONAL_DOCS | SIMPLIFIED_DOCS).items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def two_scripts(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("two-scripts")
    folder = _corpus(tmp)
    rag = RAG.open(tmp / "index", create=True, progress=False)
    rag.index([folder])
    return rag, folder


@pytest.mark.parametrize("question,doc_id", list(SIMPLIFIED_QUESTIONS.items()) + list(TRADITIONAL_QUESTIONS.items()))
def test_a_question_finds_a_passage_in_the_other_script_by_bm25(two_scripts, question, doc_id):
    rag, folder = two_scripts
    best = rag.search(question, top_k=1, retrieval="lexical")[0]
    assert best.chunk.doc_id == doc_id and best.lexical_score > 0
    # the passage, its text and its offsets are the document's own, in its own script
    source = (folder / doc_id).read_text(encoding="utf-8")
    assert best.chunk.text == source[best.chunk.start : best.chunk.end]
    own = (TRADITIONAL_DOCS | SIMPLIFIED_DOCS)[doc_id]
    assert best.chunk.text == own


def _old_style_index(tmp_path, monkeypatch):
    """An index whose BM25 terms are unfolded, as every index built before folding has them."""
    import rag.text.normalize as normalize

    with monkeypatch.context() as m:
        m.setattr(normalize, "fold_script", lambda text: text)
        RAG.open(tmp_path / "index", create=True, progress=False).index([_corpus(tmp_path)])
    return tmp_path / "index"


def _as_saved_by_version_1(index_dir, how: str) -> None:
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    terms = index_dir / manifest["generation"] / "bm25" / lexical.TERMS_FILE
    key = f"bm25/{lexical.TERMS_FILE}"
    assert key in manifest["checksums"]
    if how == "no terms file":  # the layout an index saved before the version was recorded has
        terms.unlink()
        del manifest["checksums"][key]
    else:
        from rag.storage.checksums import file_checksum

        terms.write_text(json.dumps({"terms_version": 1}))
        manifest["checksums"][key] = file_checksum(terms)
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("how", ["no terms file", "version 1"])
def test_an_index_from_an_older_normaliser_gets_its_bm25_rebuilt_on_open(tmp_path, monkeypatch, caplog, how,
                                                                         embedder):
    index_dir = _old_style_index(tmp_path, monkeypatch)
    question, doc_id = "国家图书馆的馆藏书籍有多少册？", "library.txt"
    stale = RAG.open(index_dir, progress=False)  # as if its terms were folded: they are not
    assert all(p.chunk.doc_id != doc_id for p in stale.search(question, top_k=3, retrieval="lexical"))

    _as_saved_by_version_1(index_dir, how)
    with caplog.at_level("WARNING", logger="rag.storage.lexical"):
        opened = RAG.open(index_dir, progress=False)
        assert opened.search(question, top_k=1, retrieval="lexical")[0].chunk.doc_id == doc_id
    assert opened.state.lexical.upgraded_from == 1
    assert any("term version 1, not 2: rebuilt from the 4 chunk texts" in r.getMessage() for r in caplog.records)

    opened.add(_doc(tmp_path, "kite", "濰坊國際風箏會今年有六十個國家參加。"))  # the next change saves the new terms
    again = RAG.open(index_dir, progress=False)
    assert again.state.lexical.upgraded_from is None
    assert lexical.saved_terms_version(_bm25(index_dir)) == lexical.TERMS_VERSION
    assert again.search(question, top_k=1, retrieval="lexical")[0].chunk.doc_id == doc_id
    assert again.search("潍坊国际风筝会", top_k=1, retrieval="lexical")[0].chunk.doc_id == "kite.txt"


def test_without_the_chunk_texts_older_terms_are_for_checks_only(tmp_path, monkeypatch, embedder):
    from rag.storage.verify import verify

    index_dir = _old_style_index(tmp_path, monkeypatch)
    _as_saved_by_version_1(index_dir, "version 1")
    old = LexicalIndex.load(_bm25(index_dir), 4)
    assert old.stale_terms == 1 and old.num_docs == 4
    with pytest.raises(ValueError, match="term version 1, not 2"):
        old.scores("国家图书馆")
    report = verify(index_dir, check_embedder=False)
    assert report.ok, report.errors  # older terms are not damage: opening rebuilds them
