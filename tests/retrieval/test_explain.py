"""Explained retrieval (the retrieval test page, POST /api/search with "explain"): the breakdown adds up and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from rag.errors import ConfigError

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
QUERIES = [SEED_Q, "邱沛霖", "天心经开区的企业诉求解决率是多少？",
           "How many drama shoots per year can the Lanfeng micro-drama base handle?"]


def _key(passages) -> list[tuple]:
    return [(p.chunk.chunk_id, p.score, p.rank, p.dense_score, p.lexical_score) for p in passages]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("options", [{}, {"retrieval": "dense"}, {"retrieval": "lexical"}, {"lexical_weight": 0.0},
                                     {"lexical_weight": 1.0}, {"rerank": False}])
def test_explain_changes_no_order_and_no_score(seed_rag, query, options):
    plain = seed_rag.search(query, top_k=20, **options)
    explained = seed_rag.search(query, top_k=20, explain=True, **options)
    assert _key(plain) == _key(explained)  # exact float equality, not approximate
    if not plain:  # BM25 alone finds nothing for the English question over Chinese text
        assert options.get("retrieval") == "lexical" and explained == []
        return
    assert all(p.explain is None for p in plain) and all(p.explain for p in explained)
    assert [p.to_dict(n) for n, p in enumerate(plain, 1)] == [
        {k: v for k, v in p.to_dict(n).items() if k != "explain"} for n, p in enumerate(explained, 1)]
    assert "explain" not in plain[0].to_dict(1) and "explain" in explained[0].to_dict(1)


def test_the_breakdown_adds_up_and_its_ranks_are_the_retrievers_own(seed_rag):
    passages = seed_rag.search(SEED_Q, top_k=10, explain=True)
    top = passages[0]
    assert "47天" in top.chunk.text
    facts = top.explain["query"]
    assert facts["mode"] == "hybrid" and facts["fusion"] == "convex" and 0 < facts["coverage"] <= 1
    assert facts["lexical_weight_used"] == pytest.approx(0.7 * facts["coverage"])
    assert facts["rerank_weight_used"] == pytest.approx(0.5 * facts["coverage"])
    for p in passages:
        e = p.explain
        assert e["rank"] == p.rank and e["score"] == p.score
        assert e["score"] == pytest.approx(e["fused"] + e["rerank_bonus"] + e["exact_boost"])
        assert 0 <= e["rerank_bonus"] <= facts["rerank_weight_used"] + 1e-9
        assert e["dense"] == p.dense_score and e["query"] is facts
    # the top passage holds the question's words: a candidate of both retrievers
    assert top.explain["dense_rank"] >= 1 and top.explain["bm25_rank"] >= 1 and top.explain["bm25"] > 0

    # the ranks are those of each retriever alone, recomputed here from scratch
    snap = seed_rag.state
    cosines = snap.vectors.reconstruct_n(0, snap.size) @ seed_rag.embedder.embed_queries([SEED_Q])[0]
    by_cosine = [snap.chunks[i].chunk_id for i in np.argsort(-cosines, kind="stable")]
    bm25 = snap.lexical.scores(SEED_Q)
    by_bm25 = [snap.chunks[i].chunk_id for i in np.argsort(-bm25, kind="stable") if bm25[i] > 0]
    for p in passages:
        assert p.explain["dense_rank"] == by_cosine.index(p.chunk.chunk_id) + 1
        assert p.explain["dense"] == pytest.approx(float(cosines[snap.chunks.index(p.chunk)]), abs=1e-5)
        if p.explain["bm25"] is None:
            assert p.chunk.chunk_id not in by_bm25 and p.explain["bm25_rank"] is None
        else:
            assert p.explain["bm25_rank"] == by_bm25.index(p.chunk.chunk_id) + 1


def test_weight_zero_leaves_the_fused_score_to_the_dense_cosine(seed_rag):
    passages = seed_rag.search(SEED_Q, top_k=10, explain=True, lexical_weight=0.0, rerank=False)
    facts = passages[0].explain["query"]
    assert facts["lexical_weight"] == 0.0 and facts["lexical_weight_used"] == 0.0
    assert facts["rerank_weight_used"] == 0.0
    assert all(p.explain["rerank_bonus"] == 0.0 for p in passages)
    fused = [p.explain["fused"] for p in passages]
    dense = [p.explain["dense"] for p in passages]
    # min-max normalised cosine: the same order as the cosine, the best one at 1
    assert fused == sorted(fused, reverse=True) and dense == sorted(dense, reverse=True)
    assert fused[0] == pytest.approx(1.0)
    default = {p.chunk.chunk_id: p.explain["fused"] for p in seed_rag.search(SEED_Q, top_k=10, explain=True)}
    assert any(default.get(p.chunk.chunk_id) not in (None, p.explain["fused"]) for p in passages)


def test_the_rerank_switch(seed_rag):
    on = seed_rag.search("天心经开区的企业诉求解决率是多少？", top_k=10, explain=True, rerank=True)
    off = seed_rag.search("天心经开区的企业诉求解决率是多少？", top_k=10, explain=True, rerank=False)
    assert any(p.explain["rerank_bonus"] > 0 for p in on)
    assert all(p.explain["rerank_bonus"] == 0.0 for p in off)
    assert all(p.score == p.explain["fused"] + p.explain["exact_boost"] for p in off)
    assert _key(on) != _key(off)


def test_a_chunk_that_is_not_a_candidate_has_no_rank(seed_rag):
    dense_only = seed_rag.search(SEED_Q, top_k=5, explain=True, retrieval="dense")
    assert all(p.explain["bm25"] is None and p.explain["bm25_rank"] is None for p in dense_only)
    assert dense_only[0].explain["query"]["lexical_weight_used"] == 0.0
    lexical_only = seed_rag.search(SEED_Q, top_k=5, explain=True, retrieval="lexical")
    assert all(p.explain["dense_rank"] is None and p.explain["dense"] is not None for p in lexical_only)
    assert [p.explain["bm25_rank"] for p in lexical_only] == [1, 2, 3, 4, 5]


def test_filters_apply_to_the_explained_search(seed_rag):
    assert seed_rag.search(SEED_Q, explain=True, filters={"doc": "nothing-*.md"}) == []
    kept = seed_rag.search(SEED_Q, explain=True, filters={"doc": "000_*.txt"})
    assert kept and all(p.chunk.doc_id.startswith("000_") for p in kept)
    # the pool the scores and ranks are taken over is the filtered one
    assert kept[0].explain["query"]["pool"] == sum(c.doc_id.startswith("000_") for c in seed_rag.state.chunks)


@pytest.mark.parametrize(("options", "message"), [
    ({"lexical_weight": 1.5}, "lexical_weight must be between 0 and 1. Currently, it is 1.5"),
    ({"lexical_weight": -0.1}, "lexical_weight must be between 0 and 1"),
    ({"lexical_weight": float("nan")}, "lexical_weight must be between 0 and 1"),
    ({"lexical_weight": "0.5"}, "lexical_weight must be a number. Currently, lexical_weight is '0.5'"),
    ({"lexical_weight": True}, "lexical_weight must be a number"),
    ({"rerank": "yes"}, "rerank must be true or false. Currently, rerank is 'yes'"),
    ({"explain": 1}, "explain must be true or false. Currently, explain is 1"),
])
def test_bad_controls_are_named(seed_rag, options, message):
    with pytest.raises(ConfigError) as err:
        seed_rag.search(SEED_Q, **options)
    assert message in str(err.value)


def test_retrieve_overrides_are_settings_fields(seed_rag):
    snap = seed_rag.state
    with pytest.raises(ConfigError, match="unknown retrieval setting.*lexical_wieght.*known: mode"):
        seed_rag._retrieve(snap, SEED_Q, 5, None, None, lexical_wieght=0.3)
    got = seed_rag._retrieve(snap, SEED_Q, 5, None, None, lexical_weight=None, rerank_depth=None, explain=True)
    assert got[0].explain["query"]["lexical_weight"] == 0.7  # None: the default
    got = seed_rag._retrieve(snap, SEED_Q, 5, None, None, fusion="rrf", explain=True)
    assert got[0].explain["query"]["fusion"] == "rrf" and got[0].explain["rerank_bonus"] == 0.0


def test_retrieval_reads_a_store_and_a_snapshot_alike(seed_rag):
    """retrieve() over the SearchStore protocol: the snapshot read through SnapshotStore ranks exactly as the
    snapshot itself, with filters as the store's ``where`` or as positions, and filters that match nothing."""
    from rag.filters import allowed_positions
    from rag.retrieval.retrieve import RetrievalSettings, retrieve
    from rag.storage.store import NOTHING, SnapshotStore

    snap, store = seed_rag.state, SnapshotStore(seed_rag.state)
    filters = {"article": "数字潮涌"}
    for mode in ("hybrid", "dense", "lexical"):
        settings = RetrievalSettings(mode=mode, explain=True)
        a = retrieve(snap, seed_rag.embedder, SEED_Q, 5, settings, allowed=allowed_positions(snap.chunks, filters))
        b = retrieve(store, seed_rag.embedder, SEED_Q, 5, settings, where=store.where(filters))
        assert [(p.chunk.chunk_id, p.score, p.explain) for p in a] == [(p.chunk.chunk_id, p.score, p.explain) for p in b]
        assert a and all(p.chunk.meta.get("article", "").startswith("数字潮涌") for p in a)
    assert store.where({"doc": "nothing-*.md"}) is NOTHING
    assert retrieve(store, seed_rag.embedder, SEED_Q, 5, RetrievalSettings(), where=NOTHING) == []
    assert store.where({}) is None
