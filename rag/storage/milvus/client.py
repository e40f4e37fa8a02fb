"""One index as one Milvus collection: the ``SearchStore`` read side and the write side.

``MilvusStore.open("index/milvus.db", ...)`` is Milvus Lite (embedded, a file); the same code talks
to a server with ``uri="http://host:19530"`` and ``token=``.  Every request is Strong-consistent, so a
delete or an insert is seen by the next search.  Dense search is exact inner product (FLAT) over unit
vectors; lexical search is our own BM25 as sparse vectors (``rag.storage.milvus.sparse_bm25``), so that a
store and the FAISS snapshot rank alike, whatever analyzer the Milvus version ships.

Keys are the INT64 primary key, handed out from a counter in the local state (``state_dir``) that only
grows, so a key never names another chunk while the state lives (rebuilt after a loss from the
collection as max(pk) + 1, which reuses the keys of deleted rows above every live one).

Crash safety (a killed writer leaves each document old or new, never half): rows carry their
document's sha256.  The caller, holding the index lock:

1. ``add(chunks, vectors, shas)``: a journal in ``state_dir`` first hides the new (doc, sha) rows,
   then they are inserted; readers of this ``state_dir`` still see the old version;
2. writes its manifest naming the live sha of every document;
3. ``publish(manifest_shas)``: hides the replaced rows instead of the new ones (one atomic write),
   deletes every row whose sha is not the live one, clears the journal.

A writer killed anywhere leaves rows the manifest does not name, hidden by the journal; opening with
``live=manifest_shas`` runs ``publish`` over the whole collection, removing them.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, IndexMismatchError, IndexNotFoundError, RagError
from rag.filters import Filter
from rag.storage.milvus.rows import FIELDS, Journal, from_row, journal_path, lit, pairs_expr, schema, to_row
from rag.storage.milvus.sparse_bm25 import MAX_DRIFT, DfState, doc_weights, term_counts
from rag.storage.store import NOTHING
from rag.text.indexed import indexed_text
from rag.types import Chunk

CONNECT_TIMEOUT = 5.0  # seconds to reach a server before saying it is unreachable (no retry loop)
MAX_DOC_IDS = 10_000  # a doc glob matching more ids than this is refused: the expression would be huge
_BATCH = 500
_log = logging.getLogger(__name__)


class MilvusUnavailableError(RagError):
    """The Milvus server cannot be reached, or the pymilvus / milvus-lite packages are missing."""


class MilvusStore:
    kind = "milvus"  # the backend that writes it (rag.storage.backend)

    def __init__(self, client: Any, collection: str, dim: int, headers: str, state_dir: Path,
                 doc_ids: Callable[[], Iterable[str]] | None) -> None:
        self.client, self.collection, self.dim, self.headers = client, collection, dim, headers
        self.state_dir = state_dir
        self.uri, self.token = "", None  # set by open(): a store made from a client has no address of its own
        self._doc_ids = doc_ids  # the documents a doc glob is matched against (default: the collection's)
        self.journal = Journal(journal_path(state_dir, collection))
        self.state_path = state_dir / f"milvus-{collection}-df.json"  # one per collection: folders may be shared
        self.state = DfState.load(self.state_path) or self._rebuild_state()
        if self.state.n != self.count():  # a writer died between its insert or delete and saving the state
            self.state = self._rebuild_state()

    @classmethod
    def open(cls, uri: str, collection: str, dim: int, *, token: str | None = None, create: bool = False,
             headers: str = "none", state_dir: Path | None = None,
             doc_ids: Callable[[], Iterable[str]] | None = None, live: Mapping[str, str] | None = None,
             ) -> MilvusStore:
        """The store of ``collection``; ``headers`` is the chunking setting (what BM25 indexes), ``state_dir``
        the folder of the local BM25 state (default: the Lite file's folder), ``live`` the manifest's
        {doc_id: sha256} when reopening after a writer may have died."""
        client = connect(uri, token)
        if not client.has_collection(collection):
            if not create:
                raise IndexNotFoundError(f"no Milvus collection {collection!r} at {uri}; build it: open with "
                                         "create=True, then add() the index's chunks and publish() its manifest")
            client.create_collection(collection, schema=schema(dim), index_params=_index_params(client),
                                     consistency_level="Strong")
        _check_dim(client, collection, dim, uri)
        client.load_collection(collection)  # a reopened collection is released until loaded
        folder = state_dir or (Path(uri).parent if uri.endswith(".db") else None)
        if folder is None:
            raise RagError(f"a Milvus server store ({uri}) needs state_dir: the folder of its BM25 state")
        store = cls(client, collection, dim, headers, Path(folder), doc_ids)
        store.uri, store.token = uri, token  # what a worker needs to open its own connection
        if live is not None:
            store.publish(live, everything=True)
        return store

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records of the store: where its collection is."""
        return {"kind": "milvus", "uri": self.uri, "collection": self.collection}

    def verify_files(self) -> list[str]:
        """Nothing to check in the folder: the collection keeps the rows (``rag verify`` counts them)."""
        return []

    def match_documents(self, doc_ids: Callable[[], Iterable[str]]) -> None:
        """A doc glob in a filter matches these documents (the manifest's now in force)."""
        self._doc_ids = doc_ids

    # ---- read side (SearchStore) ----

    @property
    def size(self) -> int:
        return self.count()

    def where(self, filters: Mapping[str, str]) -> Any:
        if not filters:
            return None
        spec = Filter.of(filters)
        docs = None
        if spec.doc is not None:  # the documents are listed only for a doc filter: a scan of the collection
            docs = spec.docs(set(self._known_docs()))
            if not docs:
                return NOTHING
            if len(docs) > MAX_DOC_IDS:
                raise ConfigError(f"filter doc={spec.doc!r} matches {len(docs)} documents, over "
                               f"{MAX_DOC_IDS}: narrow the pattern")
        expr = filter_expression(spec, docs)
        # one probe row: retrieval skips searching when no chunk passes (SnapshotStore's empty positions)
        probe = self.client.query(self.collection, filter=self.journal.visible(expr), output_fields=["pk"],
                                  limit=1, consistency_level="Strong")
        return expr if probe else NOTHING

    def dense(self, query_vector: np.ndarray, k: int, where: Any) -> list[tuple[int, float]]:
        return self._search([np.asarray(query_vector, np.float32).tolist()], "dense", k, where)

    def lexical(self, query: str, k: int, where: Any) -> list[tuple[int, float]]:
        qvec = self.state.query_vector(query)
        if not qvec:
            return []
        return [(key, s) for key, s in self._search([qvec], "sparse", k, where) if s > 0]

    def cosines(self, keys: Sequence[int], query_vector: np.ndarray) -> dict[int, float]:
        rows = self._get(keys, ["pk", "dense"])
        q = np.asarray(query_vector, np.float32)
        return {int(r["pk"]): float(np.dot(np.asarray(r["dense"], np.float32), q)) for r in rows}

    def chunks(self, keys: Sequence[int]) -> dict[int, Chunk]:
        return {int(r["pk"]): from_row(r) for r in self._get(keys, list(FIELDS))}

    def idf(self, term: str) -> float:
        return self.state.idf(term)

    def doc_chunks(self, doc_id: str) -> list[Chunk]:
        """Every visible chunk of one document (the viewer's and the documents tab's list)."""
        return [from_row(r) for r in self._scan(list(FIELDS), self.journal.visible(f"doc_id == {lit(doc_id)}"))]

    # ---- write side ----

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray, shas: Mapping[str, str]) -> list[int]:
        """Insert ``chunks`` (row i of ``vectors`` is chunk i's unit vector); ``shas`` gives each one's
        document sha256.  The rows stay hidden (journal) until ``publish``.  Returns their keys."""
        if len(chunks) != len(vectors):
            raise RagError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        if len(chunks) and vectors.shape[1] != self.dim:
            raise IndexMismatchError(f"vectors of dim {vectors.shape[1]} for collection {self.collection!r} "
                                     f"of dim {self.dim}")
        counts = chunk_counts(chunks, self.headers)
        keys = self.reserve(chunks, shas, lambda: [sum(c.values()) for c in counts])
        write_rows(self.client, self.collection, keys, chunks, shas, vectors, counts, self.state.avgdl_stored)
        self.counted([(c.keys(), sum(c.values())) for c in counts])
        return keys

    def add_on_workers(self, chunks: Sequence[Chunk], texts: Sequence[str], shas: Mapping[str, str],
                       distributed: Any, embedder_spec: str, batch_size: int) -> list[int]:
        """``add``, with the embedding and the inserts done by ``distributed``'s actors
        (``rag.indexing.distributed.RayIngest.embed_and_write``); ``texts`` are the chunks' dense texts.

        Only for a server: a Lite file takes one writer (this process), so there ``add`` is used.  The
        rows are the ones ``add`` writes: same keys, weights from the same frozen avgdl, same lengths."""
        if not self.is_server:
            raise RagError(f"Milvus Lite ({self.uri}) takes one writer: insert from this process with add()")
        # only a store without rows needs the new chunks' lengths first (they fix avgdl): a pass of
        # tokenizing tasks that returns one int per chunk, far cheaper than shipping vectors back here
        keys = self.reserve(chunks, shas, lambda: distributed.lengths(chunks, functools.partial(chunk_counts, headers=self.headers)))
        target = RowTarget(self.uri, self.token, self.collection, self.dim, self.headers, self.state.avgdl_stored)
        self.counted(distributed.embed_and_write(chunks, texts, keys, shas, embedder_spec, batch_size, target))
        return keys

    def reserve(self, chunks: Sequence[Chunk], shas: Mapping[str, str], lengths: Callable[[], Sequence[int]],
                ) -> list[int]:
        """The driver's first step of a write: the (doc, sha) pairs hidden (journal), the keys handed out,
        and for a store without rows the avgdl fixed from ``lengths()`` (the chunks' BM25 lengths)."""
        if unnamed := sorted({c.doc_id for c in chunks} - set(shas)):
            raise RagError(f"no sha256 given for the documents {unnamed[:5]}: rows carry their document's sha")
        st = self.state
        if not st.avgdl_stored and chunks:  # the first rows fix the avgdl every stored weight uses (see sparse_bm25)
            st.avgdl_stored = sum(lengths()) / len(chunks)
        keys = list(range(st.next_pk, st.next_pk + len(chunks)))
        st.next_pk += len(chunks)
        self.journal.hide([*self.journal.hidden(), *{(c.doc_id, shas[c.doc_id]) for c in chunks}])
        st.save(self.state_path)  # keys handed out are never handed out again, even if the insert dies
        return keys

    def counted(self, rows: Iterable[tuple[Iterable[int], int]]) -> None:
        """The driver's last step of a write: the inserted rows' (distinct term ids, length) added to
        the document frequencies, and the state saved."""
        st = self.state
        st.count(rows, +1)
        st.save(self.state_path)
        if st.drift() > MAX_DRIFT:
            _log.warning("Milvus collection %s: mean chunk length moved %.0f%% from the one in its stored BM25 "
                         "weights; rebuild the collection for exact BM25", self.collection, 100 * st.drift())

    @property
    def is_server(self) -> bool:
        """A Milvus server (several writers), not a Lite file (one) nor a store made without ``open``."""
        return bool(self.uri) and not self.uri.endswith(".db")

    def publish(self, live: Mapping[str, str], everything: bool = False) -> int:
        """Make the manifest's {doc_id: sha256} the visible documents: rows of the journal's documents
        (of every document, ``everything``) under another sha are deleted.  Returns how many rows went."""
        docs = sorted({d for d, _ in self.journal.hidden()})
        if not docs and not everything:
            return 0
        scope = "" if everything else f"doc_id in {_list(docs)}"
        stale = sorted({(r["doc_id"], r["sha"]) for r in self._scan(["doc_id", "sha"], scope)
                        if live.get(r["doc_id"]) != r["sha"]})
        self.journal.hide(stale)  # replaced versions hidden, new ones shown: one atomic write
        deleted = self._delete(pairs_expr(stale))
        self.journal.hide([])
        return deleted

    def delete_docs(self, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of these documents (then the caller drops them from its manifest); returns how
        many rows went.  In batches of ``MAX_DOC_IDS`` ids, so that no expression grows without bound."""
        ids = sorted(set(doc_ids))
        return sum(self._delete(f"doc_id in {_list(ids[i:i + MAX_DOC_IDS])}") for i in range(0, len(ids), MAX_DOC_IDS))

    def bm25_drift(self) -> float:
        """How far the mean chunk length has moved from the one frozen in the stored BM25 weights (0.1: 10%);
        above ``MAX_DRIFT`` rebuild the collection for scores equal to a fresh bm25s index."""
        return self.state.drift()

    def count(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def doc_chunk_counts(self) -> dict[str, int]:
        """Chunks per document (``rag verify`` compares them with the manifest)."""
        return dict(sorted(Counter(r["doc_id"] for r in self._scan(["doc_id"])).items()))

    def drop(self) -> None:
        """Remove the collection and the local BM25 state."""
        self.client.drop_collection(self.collection)
        self.state_path.unlink(missing_ok=True)
        self.journal.path.unlink(missing_ok=True)
        self.state = DfState()

    # ---- helpers ----

    def _search(self, data: list, field: str, k: int, where: Any) -> list[tuple[int, float]]:
        if where is NOTHING or k <= 0:
            return []
        hits = self.client.search(self.collection, data=data, anns_field=field, limit=k,
                                  filter=self.journal.visible(where), output_fields=["pk"],
                                  search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.0}},
                                  consistency_level="Strong")
        return [(int(h["id"]), float(h["distance"])) for h in hits[0]]

    def _get(self, keys: Sequence[int], fields: list[str]) -> list[dict]:
        if not keys:
            return []
        return list(self.client.get(self.collection, ids=[int(k) for k in keys], output_fields=fields,
                                    consistency_level="Strong"))

    def _scan(self, fields: list[str], expr: str = "") -> Iterable[dict]:
        if not self.count():
            return  # Milvus Lite 2.5.1 fails a query of sparse vectors on an empty collection (a segcore assert)
        it = self.client.query_iterator(self.collection, batch_size=1000, filter=expr,
                                        output_fields=fields, consistency_level="Strong")
        try:
            while batch := it.next():
                yield from batch
        finally:
            it.close()

    def _delete(self, expr: str) -> int:
        """Delete the rows ``expr`` selects, taking their terms out of the document frequencies."""
        if not expr:
            return 0
        gone = [(list(r["sparse"]), int(r["dl"])) for r in self._scan(["sparse", "dl"], expr)]
        self.client.delete(self.collection, filter=expr)
        self.state.count(gone, -1)
        self.state.save(self.state_path)
        return len(gone)

    def _rebuild_state(self) -> DfState:
        """The BM25 state counted from the rows themselves (their term ids, lengths and keys)."""
        st = DfState()
        for r in self._scan(["pk", "sparse", "dl", "avgdl"]):
            st.count([(r["sparse"], int(r["dl"]))], +1)
            st.avgdl_stored = float(r["avgdl"])
            st.next_pk = max(st.next_pk, int(r["pk"]) + 1)
        st.save(self.state_path)
        return st

    def _known_docs(self) -> Iterable[str]:
        return self._doc_ids() if self._doc_ids is not None else self.doc_chunk_counts().keys()


@dataclass(frozen=True)
class RowTarget:
    """Where a worker writes rows, and what their weights use: ``avgdl`` is the store's frozen one."""

    uri: str
    token: str | None
    collection: str
    dim: int
    headers: str
    avgdl: float

    # What a Ray worker calls (rag.indexing.distributed): it writes rows without importing the storage layer.
    def connect(self) -> Any:
        return connect(self.uri, self.token)

    def lengths(self, chunks: Sequence[Chunk]) -> list[Counter[int]]:
        return chunk_counts(chunks, self.headers)

    def write(self, client: Any, keys: Sequence[int], chunks: Sequence[Chunk], shas: Mapping[str, str],
              vectors: np.ndarray) -> list[Counter[int]]:
        """Insert the chunks' rows; each chunk's BM25 term counts."""
        counts = chunk_counts(chunks, self.headers)
        write_rows(client, self.collection, keys, chunks, shas, vectors, counts, self.avgdl)
        return counts


def chunk_counts(chunks: Sequence[Chunk], headers: str) -> list[Counter[int]]:
    """Each chunk's BM25 term counts (of the text lexical search indexes)."""
    return [term_counts(indexed_text(c, headers, for_dense=False)) for c in chunks]


def write_rows(client: Any, collection: str, keys: Sequence[int], chunks: Sequence[Chunk], shas: Mapping[str, str],
               vectors: np.ndarray, counts: Sequence[Counter[int]], avgdl: float) -> None:
    """Insert the chunks' rows, in batches; the same function on the driver (``add``) and on a worker."""
    for i in range(0, len(chunks), _BATCH):
        rows = [to_row(keys[j], chunks[j], shas[chunks[j].doc_id], vectors[j],
                       doc_weights(counts[j], avgdl), sum(counts[j].values()), avgdl)
                for j in range(i, min(i + _BATCH, len(chunks)))]
        client.insert(collection, rows)


LITE_NAME = re.compile(r"[a-zA-Z0-9.\-_]+")  # the file names milvus_lite.server.Server accepts ...
LITE_NAME_MAX = 36  # ... and their length


def connect(uri: str, token: str | None) -> Any:
    if importlib.util.find_spec("pymilvus") is None or (uri.endswith(".db") and
                                                        importlib.util.find_spec("milvus_lite") is None):
        raise MilvusUnavailableError("the Milvus store needs pymilvus and milvus-lite: pip install '.[milvus]'")
    from pymilvus import MilvusClient  # noqa: PLC0415 - an optional dependency
    from pymilvus.exceptions import MilvusException  # noqa: PLC0415 - pymilvus (~2 s, milvus extra), as above

    name = Path(uri).name
    if uri.endswith(".db") and (not LITE_NAME.fullmatch(name) or len(name) > LITE_NAME_MAX):
        # Lite's own rule, checked first: its server object, refused half made, fails again when collected
        raise MilvusUnavailableError(f"cannot open the Milvus Lite file {uri}: Milvus Lite takes a file name of "
                                     f"letters, digits, '.', '-' and '_', at most {LITE_NAME_MAX} characters")
    try:
        return MilvusClient(uri=uri, token=token or "", timeout=CONNECT_TIMEOUT)
    except (MilvusException, RuntimeError) as exc:  # Lite raises RuntimeError for a file name it refuses
        why = getattr(exc, "message", str(exc))
        if uri.endswith(".db"):  # Lite also refuses a file another process holds open: it locks it
            raise MilvusUnavailableError(
                f"cannot open the Milvus Lite file {uri}: {why}. A Lite file serves one process at a time: is "
                "another one (rag serve, rag index) using it? For several processes use a Milvus server "
                "(--store milvus:http://HOST:19530)") from exc
        raise MilvusUnavailableError(f"cannot reach Milvus at {uri} within {CONNECT_TIMEOUT:.0f} s: {why}") from exc


def _index_params(client: Any) -> Any:
    params = client.prepare_index_params()
    params.add_index("dense", index_type="FLAT", metric_type="IP")  # exact, as the FAISS snapshot's flat index
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    return params


def _check_dim(client: Any, collection: str, dim: int, uri: str) -> None:
    fields = {f["name"]: f for f in client.describe_collection(collection)["fields"]}
    if set(FIELDS) - set(fields):
        raise IndexMismatchError(f"Milvus collection {collection!r} at {uri} lacks the fields "
                                 f"{sorted(set(FIELDS) - set(fields))}: it was not made by this store")
    have = int(fields["dense"]["params"]["dim"])
    if have != dim:
        raise IndexMismatchError(f"Milvus collection {collection!r} at {uri} holds vectors of dim {have}, "
                                 f"not {dim}: open it with the embedder it was built with, or drop and rebuild it")


def filter_expression(spec: Filter, docs: set[str] | None) -> str:
    """``spec`` as a Milvus expression passing the rows whose chunks ``spec`` passes; ``docs`` are the ids
    ``spec.doc`` matches (None: no doc filter). A row's article and date are "" when unknown (``to_row``)."""
    parts = []
    if docs is not None:
        parts.append(f"doc_id in {_list(sorted(docs))}")
    if spec.article is not None:  # a part of the title: LIKE with its own wildcards escaped
        parts.append(f"article like {lit('%' + _like_escape(spec.article) + '%')}")
    if spec.date_from is not None:
        parts.append(f"date >= {lit(spec.date_from)}")
    if spec.date_to is not None:
        parts.append(f"date <= {lit(spec.date_to)}")
    if spec.dated:
        parts.append('date != ""')  # an unknown date fails any range
    return " and ".join(parts)


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(lit(s) for s in items) + "]"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
