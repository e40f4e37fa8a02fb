"""The segmented index (``--store segments``): BM25 scores equal a fresh build after any sequence of
adds, updates, deletes and merges; dense search over IVF segments (``test_segment_ann``: their codes);
the facade, the CLI and verify."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from cli_runner import rag as run
from conftest import KITE, SEED_FILE

from rag import RAG
from rag.errors import IndexCorruptError
from rag.storage.lexical import LexicalIndex
from rag.storage.segments import index as segments
from rag.storage.segments.segment import Segment, rows_of_chunks
from rag.text.indexed import indexed_text
from rag.text.normalize import index_terms
from rag.types import Chunk

EMB = {"name": "fake", "dim": 8, "engine": "test"}
CHUNKING = {"chunk_tokens": 300, "overlap_tokens": 50, "headers": "none"}
QUERIES = ["天心经开区的诉求解决率是多少？", "高新技术企业", "微短剧基地签约", "风筝节 游客", "人才 计划 2025年",
           "营商环境", "不存在的词语组合"]


def _docs(seed_text: str, n: int, rng: random.Random) -> dict[str, list[str]]:
    """``n`` documents of 1-4 chunks cut from the seed text at random places."""
    out = {}
    for d in range(n):
        out[f"doc{d:03d}.txt"] = [seed_text[s : s + rng.randint(60, 300)]
                                  for s in (rng.randrange(0, len(seed_text) - 300) for _ in range(rng.randint(1, 4)))]
    return out


def _chunks(doc_id: str, texts: list[str], version: int = 0) -> list[Chunk]:
    return [Chunk(f"{doc_id}#{i}", doc_id, t, 0, len(t), {"article": f"篇{i % 3}", "date": f"2025-0{1 + i % 9}-01"})
            for i, t in enumerate(texts)]


def _vec(text: str) -> np.ndarray:
    v = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(8).astype(np.float32)
    return v / np.linalg.norm(v)


class Writer:
    """Drives the segment writes directly (no embedder): add, replace and delete documents."""

    def __init__(self, folder, flat_max: int = 50_000) -> None:
        self.folder, self.flat_max = folder, flat_max
        self.snap = segments.empty(folder, EMB, CHUNKING)
        self.sha: dict[str, str] = {}

    def put(self, docs: dict[str, list[str]], version: int = 0) -> None:
        entry = dict(self.snap.store.manifest_entry())
        entries = [dict(e, docs=[d for d in e["docs"] if d not in docs]) for e in entry["segments"]]
        chunks = [c for d in sorted(docs) for c in _chunks(d, docs[d])]
        shas = {d: f"sha-{d}-{version}" for d in docs}
        vectors = np.vstack([_vec(c.text) for c in chunks]) if chunks else np.zeros((0, 8), np.float32)
        entries += segments.add_chunks(self.folder, entry, chunks, vectors, shas, "none", self.flat_max)
        documents = {k: v for k, v in self.snap.documents.items() if k not in docs}
        documents |= {d: {"sha256": shas[d], "chunks": len(docs[d]), "path": d} for d in docs}
        self.snap = segments.commit(self.folder, self.snap, documents, entries, int(entry["next_key"]),
                                    self.flat_max, EMB, CHUNKING)

    def delete(self, ids: list[str]) -> None:
        self.snap = segments.delete(self.snap, self.folder, ids)


def _lexical_by_chunk(store, query: str) -> dict[str, float]:
    hits = store.lexical(query, 10_000, None)
    chunks = store.chunks([k for k, _ in hits])
    return {chunks[k].chunk_id: s for k, s in hits}


@pytest.mark.slow
def test_bm25_after_adds_updates_deletes_and_merges_equals_a_fresh_build(tmp_path, seed_text, monkeypatch):
    monkeypatch.setattr(segments, "MERGE_AT", 3)  # merges happen along the way, not only at the end
    rng = random.Random(7)
    docs = _docs(seed_text, 40, rng)
    w = Writer(tmp_path / "changed")
    names = sorted(docs)
    for i in range(0, 40, 5):  # eight adds of five documents each
        w.put({d: docs[d] for d in names[i : i + 5]})
    replaced = {d: _docs(seed_text, 1, rng)["doc000.txt"] for d in names[3:9]}
    w.put(replaced, version=1)
    w.delete(names[10:16] + names[30:32])
    docs |= replaced
    for d in names[10:16] + names[30:32]:
        del docs[d]
    assert w.snap.size == sum(len(v) for v in docs.values())
    assert 1 < len(w.snap.store.segments) <= segments.MERGE_AT  # merged, but not into one

    fresh = Writer(tmp_path / "fresh")
    fresh.put(docs)
    assert len(fresh.snap.store.segments) == 1
    hits = 0
    for q in QUERIES:
        got, want = _lexical_by_chunk(w.snap.store, q), _lexical_by_chunk(fresh.snap.store, q)
        assert got == want, q
        hits += bool(got)
        assert w.snap.store.idf(index_terms(q)[0]) == fresh.snap.store.idf(index_terms(q)[0])
    assert hits >= 5  # the seed's words are found: the comparison is not between two empty results

    # and they are bm25s's scores over the same chunks (float32 there)
    chunks = [c for d in sorted(docs) for c in _chunks(d, docs[d])]
    bm = LexicalIndex.build([indexed_text(c, "none", for_dense=False) for c in chunks])
    for q in QUERIES:
        ref = bm.scores(q)
        want = {chunks[i].chunk_id: float(ref[i]) for i in np.flatnonzero(ref > 0)}
        got = _lexical_by_chunk(w.snap.store, q)
        assert got.keys() == want.keys(), q
        assert all(abs(got[c] - want[c]) <= 1e-5 * max(1.0, want[c]) for c in want), q


def test_a_change_writes_one_small_segment_and_a_delete_writes_none(tmp_path, seed_text):
    w = Writer(tmp_path / "idx")
    w.put(_docs(seed_text, 20, random.Random(1)))
    before = {p.name for p in (tmp_path / "idx" / "segments").iterdir()}
    w.put({"new.txt": ["紫藤镇风筝节今年吸引游客两万三千人。"]})
    after = {p.name for p in (tmp_path / "idx" / "segments").iterdir()}
    assert len(after - before) == 1 and before <= after
    added = Segment(tmp_path / "idx" / "segments" / (after - before).pop())
    assert added.rows == 1
    w.delete(["new.txt"])
    assert {p.name for p in (tmp_path / "idx" / "segments").iterdir()} == before  # its segment had nothing left
    assert "new.txt" not in w.snap.documents and not w.snap.store.doc_chunks("new.txt")
    assert not _lexical_by_chunk(w.snap.store, "紫藤镇风筝节")


@pytest.mark.slow
def test_deleted_and_replaced_rows_are_never_returned_and_filters_hold(tmp_path, seed_text):
    w = Writer(tmp_path / "idx", flat_max=40)  # segments of 40 rows or more get IVF (SQ8 this small) + exact re-score
    docs = _docs(seed_text, 40, random.Random(3))
    w.put(docs)
    assert w.snap.store.segments[0].ann is not None
    gone = sorted(docs)[:10]
    w.delete(gone)
    store = w.snap.store
    live = [c for d in sorted(docs)[10:] for c in _chunks(d, docs[d])]
    for c in live[:20]:
        q = _vec(c.text)
        hits = store.dense(q, 5, None)
        found = store.chunks([k for k, _ in hits])
        assert all(found[k].doc_id not in gone for k, _ in hits)
        assert found[hits[0][0]].text == c.text  # its own vector is nearest (IVF shortlist, exact re-score)
        assert hits[0][1] == pytest.approx(1.0, abs=2e-3)  # float16 storage
    where = store.where({"doc": "doc03*", "article": "篇1", "date_from": "2025-02-01"})
    keys = list(where)
    found = store.chunks(keys)
    assert found and all(c.doc_id.startswith("doc03") and c.meta["article"] == "篇1" for c in found.values())
    assert {k for k, _ in store.lexical("天心 企业", 1000, where)} <= set(keys)
    assert {k for k, _ in store.dense(_vec("x"), 1000, where)} <= set(keys)
    assert store.where({"doc": "doc00*"}) is segments.NOTHING  # only deleted documents match


def test_dense_re_scores_one_shortlist_across_ivf_segments(tmp_path, seed_text, monkeypatch):
    """Three IVF-SQ8 segments: their IVF lists are probed from one budget (the best centroids of all of
    them), the best approximate neighbours of all of them, one segment's ``shortlist(k)`` in all, are
    re-scored exactly (not each segment's own shortlist), and the best rows are nearly all the exact search's."""
    w = Writer(tmp_path / "idx", flat_max=40)
    rng = random.Random(5)
    for part in range(3):
        w.put({f"p{part}-{d}": texts for d, texts in _docs(seed_text, 60, rng).items()})
    store = w.snap.store
    assert len(store.segments) == 3 and all(seg.ann is not None for seg in store.segments)
    read: list[int] = []
    real = Segment.cosines
    monkeypatch.setattr(Segment, "cosines", lambda self, rows, q: read.append(len(rows)) or real(self, rows, q))
    keys = [k for i, seg in enumerate(store.segments) for k in seg.key_base + store.live_rows(i)]
    vectors = {k: v for k, v in zip(keys, store.cosines(keys, np.eye(8, dtype=np.float32)[0]))}  # warms nothing
    assert vectors
    probed: list[int] = []
    real_in = Segment.approximate_in
    monkeypatch.setattr(Segment, "approximate_in", lambda self, q, n, lists, scores: probed.append(len(lists)) or
                        real_in(self, q, n, lists, scores))
    budget = max(seg.ann.nprobe for seg in store.segments) * 2  # ceil(cbrt(3 segments))
    assert budget < sum(seg.ann.nlist for seg in store.segments)  # the shared budget leaves lists out
    agree = 0
    for q in (_vec(f"q{i}") for i in range(10)):
        read.clear()
        probed.clear()
        hits = store.dense(q, 5, None)
        assert sum(read) <= store.segments[0].shortlist(5) < len(keys)
        assert 0 < sum(probed) <= budget
        exact = sorted(store.cosines(keys, q).items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        agree += len({k for k, _ in hits} & {k for k, _ in exact})
    assert agree >= 0.9 * 50  # random vectors in 8 dimensions: no clusters for the lists to follow


def test_a_segment_no_manifest_names_is_invisible_and_removed_by_the_next_write(tmp_path, seed_text):
    w = Writer(tmp_path / "idx")
    w.put(_docs(seed_text, 5, random.Random(2)))
    folder = tmp_path / "idx" / "segments"
    orphan = folder / "seg-000099"
    chunks = _chunks("ghost.txt", ["幽灵文档"])
    segments.write_segment(orphan, rows_of_chunks(chunks, np.vstack([_vec("g")]), {"ghost.txt": "s"},
                                                  [index_terms("幽灵文档")]), 10_000, False)
    (folder / ".seg-000100.tmp").mkdir()  # a writer killed mid-write
    reopened = segments.load(tmp_path / "idx", json.loads((tmp_path / "idx" / "manifest.json").read_text()))
    assert not reopened.store.lexical("幽灵文档", 10, None)
    w.put({"more.txt": ["再来一篇"]})
    assert sorted(p.name for p in folder.iterdir()) == sorted(s["name"] for s in w.snap.store.entry["segments"])


def test_a_damaged_segment_file_is_refused_on_open(tmp_path, seed_text):
    w = Writer(tmp_path / "idx")
    w.put(_docs(seed_text, 5, random.Random(4)))
    name = w.snap.store.entry["segments"][0]["name"]
    target = tmp_path / "idx" / "segments" / name / "post_tf.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    segments._OPEN.clear()  # as a new process would
    with pytest.raises(IndexCorruptError, match="checksum"):
        segments.load(tmp_path / "idx", json.loads((tmp_path / "idx" / "manifest.json").read_text()))


# ------------------------------------------------------------------------------------ through the facade



@pytest.fixture
def corpus(kite_corpus):
    return kite_corpus


@pytest.mark.slow
def test_the_facade_ranks_like_the_faiss_index_and_follows_changes(corpus, tmp_path):
    flat = RAG.open(tmp_path / "faiss", create=True, progress=False)
    flat.index([corpus])
    seg = RAG.open(tmp_path / "seg", create=True, progress=False, store="segments")
    seg.index([corpus])
    assert seg.size == flat.size and seg.documents() == [
        {**d, "indexed_at": seg.documents()[i]["indexed_at"]} for i, d in enumerate(flat.documents())]
    for q in ["天心经开区有多少家高新技术企业？", "紫藤镇风筝节今年吸引了多少游客？", "营商环境"]:
        a = [(p.chunk.chunk_id, p.lexical_score) for p in flat.search(q, 5, retrieval="lexical")]
        b = [(p.chunk.chunk_id, p.lexical_score) for p in seg.search(q, 5, retrieval="lexical")]
        assert [c for c, _ in a] == [c for c, _ in b]
        assert all(x == pytest.approx(y, rel=1e-5) for (_, x), (_, y) in zip(a, b))
        assert [p.chunk.chunk_id for p in flat.search(q, 3)] == [p.chunk.chunk_id for p in seg.search(q, 3)]
    answer = seg.ask("紫藤镇风筝节今年吸引了多少游客？")
    assert "两万三千" in answer.answer and answer.citations[0].doc_id == "kite.txt"
    other = RAG.open(tmp_path / "seg", progress=False)  # a second reader of the same folder
    seg.delete("kite.txt")
    assert other.size == flat.size - 1 and not other.chunks_of("kite.txt")
    assert other.ask("紫藤镇风筝节今年吸引了多少游客？").abstained
    (corpus / "kite.txt").write_text(KITE.replace("两万三千", "三万"), encoding="utf-8")
    assert other.add([corpus / "kite.txt"]).added == ["kite.txt"]
    long = SEED_FILE.read_text(encoding="utf-8")[:3000]
    (corpus / "long.txt").write_text(long, encoding="utf-8")
    first = other.add([corpus / "long.txt"])
    (corpus / "long.txt").write_text(long + "\n\n紫藤镇风筝节明年继续举办。\n", encoding="utf-8")
    report = other.add([corpus / "long.txt"])  # an update: its unchanged chunks keep their vectors
    assert report.updated == ["long.txt"] and report.chunks_reused >= first.chunks_embedded - 2 > 0
    assert report.chunks_embedded >= 1
    assert "三万" in seg.ask("紫藤镇风筝节今年吸引了多少游客？").answer
    assert [c.text for c in seg.chunks_of("kite.txt")] == [c.text for c in other.chunks_of("kite.txt")]


@pytest.mark.slow
def test_the_cli_builds_verifies_and_reports_a_damaged_segmented_index(corpus, tmp_path):
    idx = tmp_path / "idx"
    out = run("index", str(corpus), "--index-dir", str(idx), "--store", "segments")
    assert out.returncode == 0, out.stderr
    assert json.loads((idx / "manifest.json").read_text())["store"]["kind"] == "segments"
    out = run("ask", "紫藤镇风筝节今年吸引了多少游客？", "--index-dir", str(idx), "--json")
    assert out.returncode == 0 and "两万三千" in json.loads(out.stdout)["answer"]
    assert run("verify", "--index-dir", str(idx)).returncode == 0
    seg_dir = next((idx / "segments").iterdir())
    shutil.copy(seg_dir / "chunks.jsonl", tmp_path / "backup")
    with (seg_dir / "chunks.jsonl").open("r+b") as f:
        f.seek(10)
        f.write(b"X")
    out = run("verify", "--index-dir", str(idx))
    assert out.returncode != 0 and "checksum" in (out.stdout + out.stderr)


@pytest.mark.slow
def test_a_large_faiss_snapshot_says_that_a_segmented_index_would_change_cheaply(kite_corpus, tmp_path, monkeypatch,
                                                                                  caplog):
    import rag.storage.faiss

    monkeypatch.setattr(rag.storage.faiss, "LARGE_SNAPSHOT", 10)
    rag = RAG.open(tmp_path / "faiss", create=True, progress=False)
    with caplog.at_level("WARNING", logger="rag.storage.faiss"):
        rag.index([kite_corpus])
    assert any("--store segments" in r.getMessage() for r in caplog.records)
    caplog.clear()
    seg = RAG.open(tmp_path / "seg", create=True, progress=False, store="segments")
    with caplog.at_level("WARNING", logger="rag.storage.faiss"):
        seg.index([kite_corpus])
    assert not any("--store segments" in r.getMessage() for r in caplog.records)


def _many_docs(folder, seed_text: str, n: int = 6) -> None:
    """``n`` small documents of a few paragraphs each, cut from the seed page."""
    paras = [p for p in seed_text.split("\n") if len(p) > 40]
    for i in range(n):
        (folder / f"part{i}.txt").write_text("\n\n".join(paras[i * 3 : i * 3 + 3]), encoding="utf-8")


@pytest.mark.slow
def test_a_large_build_writes_segments_as_it_goes_and_holds_one_segment_of_chunks(kite_corpus, tmp_path, seed_text,
                                                                                   monkeypatch):
    _many_docs(kite_corpus, seed_text)
    monkeypatch.setattr(segments, "SEGMENT_MAX_ROWS", 3)
    batches = []
    real = segments.add_chunks
    monkeypatch.setattr(segments, "add_chunks", lambda d, e, chunks, *a: batches.append(len(chunks)) or
                        real(d, e, chunks, *a))
    seg = RAG.open(tmp_path / "seg", create=True, progress=False, store="segments")
    seg.index([kite_corpus])
    flat = RAG.open(tmp_path / "faiss", create=True, progress=False)
    flat.index([kite_corpus])
    biggest = max(d["chunks"] for d in flat.documents())
    # written in several batches, each at most the threshold plus the rest of the document that reached it
    assert len(batches) > 2 and sum(batches) == flat.size == seg.size
    assert max(batches) <= 3 + biggest - 1
    manifest = json.loads((tmp_path / "seg" / "manifest.json").read_text())
    assert len(manifest["store"]["segments"]) == len(batches)
    for q in ["天心经开区有多少家高新技术企业？", "紫藤镇风筝节今年吸引了多少游客？"]:
        assert [p.chunk.chunk_id for p in flat.search(q, 5)] == [p.chunk.chunk_id for p in seg.search(q, 5)]


@pytest.mark.slow
def test_a_build_that_fails_midway_keeps_the_index_as_it_was_and_its_segments_are_cleared(kite_corpus, tmp_path,
                                                                                          seed_text, monkeypatch):
    seg = RAG.open(tmp_path / "seg", create=True, progress=False, store="segments")
    seg.index([kite_corpus])
    before = (tmp_path / "seg" / "manifest.json").read_bytes()
    more = tmp_path / "more"
    more.mkdir()
    _many_docs(more, seed_text)
    monkeypatch.setattr(segments, "SEGMENT_MAX_ROWS", 3)
    real, calls = segments.embed, []

    def embed_then_fail(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("embedding service died")
        return real(*args, **kw)

    monkeypatch.setattr(segments, "embed", embed_then_fail)
    with pytest.raises(RuntimeError, match="died"):
        seg.add([more])
    assert len(calls) == 2 and (tmp_path / "seg" / "manifest.json").read_bytes() == before
    folders = {p.name for p in (tmp_path / "seg" / "segments").iterdir()}
    named = {s["name"] for s in json.loads(before)["store"]["segments"]}
    assert folders > named  # the first batch's segment was written, and no manifest names it
    other = RAG.open(tmp_path / "seg", progress=False)
    assert other.size == seg.size and not any(d["doc_id"].startswith("part") for d in other.documents())
    monkeypatch.setattr(segments, "embed", real)
    seg.add([more])  # the next write commits its own segments and clears the orphan
    now = json.loads((tmp_path / "seg" / "manifest.json").read_text())
    assert {p.name for p in (tmp_path / "seg" / "segments").iterdir()} == {s["name"] for s in now["store"]["segments"]}
    assert any(d["doc_id"] == "part0.txt" for d in RAG.open(tmp_path / "seg", progress=False).documents())


class _Sizes:
    """A store as ``plan_merge`` reads it: each named segment's live rows."""

    def __init__(self, sizes: list[int]) -> None:
        from types import SimpleNamespace

        self._states = {f"s{i}": SimpleNamespace(n=n) for i, n in enumerate(sizes)}
        self.entries = [{"name": f"s{i}"} for i in range(len(sizes))]


@pytest.mark.parametrize(("sizes", "want"), [
    ([250_000] * 40 + [10], []),  # a large build's full segments and one small change: nothing merged
    ([250_000] * 40 + [10] * 9, list(range(40, 49))),  # nine small ones: they merge, the full ones stay
    ([5, 7, 1000, 3, 4, 6, 8, 9, 10], [0, 1, 3, 4, 5, 6, 7, 8]),  # the 1,000-row one is over twice the rest
    ([150_000] * 9 + [250_000], []),  # no two small ones fit in one merge: left to `rag index --rebuild`
    ([10] * 8 + [250_000] * 3, []),  # at most MERGE_AT small segments: no merge yet
])
def test_merges_take_only_small_segments_and_never_exceed_the_cap(sizes, want):
    store = _Sizes(sizes)
    assert segments.plan_merge(store, store.entries) == want
