"""bench/synth_index.py: both stores built from the same generated corpus files, the segments one block at a time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import synth_index  # noqa: E402
from rag import RAG  # noqa: E402
from rag.storage.segments import index as segments  # noqa: E402


@pytest.mark.slow
def test_both_stores_hold_the_same_generated_chunks_and_segments_are_written_block_by_block(tmp_path, monkeypatch):
    monkeypatch.setattr(segments, "SEGMENT_MAX_ROWS", 700)
    n = 2_000
    faiss = synth_index.build(n, "faiss", tmp_path / "faiss", seed=1)
    seg = synth_index.build(n, "segments", tmp_path / "segments", seed=1)
    corpus = tmp_path / f"corpus-{n}-1"
    assert faiss["chunks"] == seg["chunks"] == n and (corpus / "info.json").is_file()
    manifest = json.loads((tmp_path / "segments" / "index" / "manifest.json").read_text())
    assert [s["rows"] for s in manifest["store"]["segments"]] == [700, 700, 600]
    a, b = RAG.open(tmp_path / "faiss" / "index", progress=False), RAG.open(tmp_path / "segments" / "index",
                                                                          progress=False)
    assert a.size == b.size == n
    texts = synth_index.texts_of(corpus)
    for i in (0, 699, 700, 1999):  # rows on both sides of a block's edge keep their text and document
        doc = f"synthetic/{i // 10:06d}.txt"
        assert [c.text for c in a.chunks_of(doc)] == [c.text for c in b.chunks_of(doc)]
        assert texts[i] in [c.text for c in b.chunks_of(doc)]
    q = json.loads((tmp_path / "segments" / "queries.json").read_text(encoding="utf-8"))["texts"][0]
    la, lb = a.search(q, 5, retrieval="lexical"), b.search(q, 5, retrieval="lexical")
    assert la and [p.chunk.chunk_id for p in la] == [p.chunk.chunk_id for p in lb]
    assert [p.lexical_score for p in la] == pytest.approx([p.lexical_score for p in lb], rel=1e-5)


@pytest.mark.slow
def test_a_streamed_build_writes_the_same_segments_as_the_build_from_corpus_files(tmp_path, monkeypatch):
    import numpy as np

    from bench import scale

    monkeypatch.setattr(segments, "SEGMENT_MAX_ROWS", 700)  # not a multiple of the generator's blocks
    n = 2_000
    synth_index.build(n, "segments", tmp_path / "files", seed=1)
    info = synth_index.build(n, "segments", tmp_path / "stream", seed=1, stream=True)
    assert info["chunks"] == n and info["segments"] == 3
    assert not (tmp_path / "stream" / "vectors.npy").exists()  # no corpus files beside a streamed index
    for name in ("queries.json", "query_vectors.npy"):
        assert (tmp_path / "files" / name).read_bytes() == (tmp_path / "stream" / name).read_bytes()
    a, b = (tmp_path / d / "index" / "segments" for d in ("files", "stream"))
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 3
    for seg in names:
        for f in ("chunks.jsonl", "vectors.npy", "terms.npy", "term_ptr.npy", "post_rows.npy", "post_tf.npy",
                  "doclen.npy", "rows.npy", "meta.json"):
            assert (a / seg / f).read_bytes() == (b / seg / f).read_bytes(), (seg, f)
    # recall against the index's own vectors: the exact top 10 scores 1, ten random rows far less
    index = tmp_path / "stream" / "index"
    qv = np.load(tmp_path / "stream" / "query_vectors.npy")[:20]
    x = np.concatenate([np.load(a / seg / "vectors.npy").astype(np.float32) for seg in names])
    exact = [[int(k) for k in np.argsort(-(x @ q))[:10]] for q in qv]
    assert scale.recall_of_index(index, qv, exact) == 1.0
    assert scale.recall_of_index(index, qv, [list(range(i * 10, i * 10 + 10)) for i in range(20)]) < 0.2
