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
