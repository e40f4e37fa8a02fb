"""bm25s's saved arrays read and scored without bm25s (rag/storage/bm25_saved.py): bm25s's scores to the
bit, the same files when written again, and bm25s itself for the methods only it scores."""

from __future__ import annotations

import random

import bm25s
import numpy as np
import pytest
from conftest import SEED_FILE

from rag.storage import bm25_saved
from rag.storage.lexical import LexicalIndex
from rag.text.normalize import index_terms


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    seed = SEED_FILE.read_text(encoding="utf-8")
    texts = [seed[i : i + 200] for i in range(0, len(seed), 150)]
    folder = tmp_path_factory.mktemp("bm25")
    LexicalIndex.build(texts).save(folder)
    return folder, texts


def test_scores_are_bm25s_own_to_the_bit(saved):
    folder, texts = saved
    ours, theirs = bm25_saved.SavedBM25(folder), bm25s.BM25.load(str(folder), allow_pickle=False)
    assert ours.vocab_dict == theirs.vocab_dict and ours.scores["num_docs"] == theirs.scores["num_docs"]
    rng = random.Random(5)
    queries = [t[:30] for t in texts] + ["蓝风微短剧基地从签约到试运营用了多少天？", "长沙 长沙 长沙", "no such words", ""]
    words = list(ours.vocab_dict)
    queries += [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 12))) for _ in range(50)]
    for q in queries:
        terms = index_terms(q)
        ids = ours.get_tokens_ids(terms)
        assert ids == theirs.get_tokens_ids(terms)
        if ids:
            a, b = ours.get_scores_from_ids(ids), theirs.get_scores_from_ids(ids)
            assert a.dtype == b.dtype and np.array_equal(a, b), q
    with pytest.raises(ValueError):
        ours.get_scores_from_ids([len(ours.scores["indptr"])])


def test_a_loaded_index_writes_the_same_files(saved, tmp_path):
    folder, _ = saved
    bm25_saved.SavedBM25(folder).save(str(tmp_path))
    for name in (bm25_saved.PARAMS, bm25_saved.VOCAB, bm25_saved.DATA, bm25_saved.INDICES, bm25_saved.INDPTR):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name


def test_lexical_index_load_serves_without_bm25s_and_answers_alike(saved):
    folder, texts = saved
    index = LexicalIndex.load(folder, len(texts))
    assert isinstance(index._bm25, bm25_saved.SavedBM25)
    built = LexicalIndex.build(texts)
    for q in ("蓝风微短剧基地", "长沙市岳麓区", "微短剧 文旅"):
        assert np.array_equal(index.scores(q), built.scores(q))
        assert index.idf("长沙") == built.idf("长沙")


def test_methods_with_a_non_occurrence_array_are_left_to_bm25s(tmp_path):
    corpus = [["a", "b"], ["b", "c", "c"], ["d"]]
    model = bm25s.BM25(method="bm25+")
    model.index(corpus, show_progress=False)
    model.save(str(tmp_path), allow_pickle=False)
    with pytest.raises(bm25_saved.NeedsBm25s):
        bm25_saved.SavedBM25(tmp_path)
    assert isinstance(bm25_saved.load(tmp_path), bm25s.BM25)
