"""Ingestion across the workers of a Ray cluster: files read, cleaned and chunked by Ray Data
tasks, chunks embedded by a pool of embedding actors (``map_batches`` over an actor pool).

Passed as ``build_snapshot(..., distributed=RayIngest.connect(address))``, it replaces that
function's per-file loop and its embedding call; everything else (which documents changed, the
vector cache, the index structures) stays in this process. The work done per file is the same
function as in-process (``load_file`` then ``chunk_source``), so chunk ids, which hash the
document id and the chunk text, are the same; vectors come from the same model, in
length-sorted batches of the same size, so they agree to float noise.

On a 2-core machine Ray only adds overhead (start-up, shipping texts and vectors): the
in-process path stays the default, this one is for clusters (see ``bench/ray_ingest.py``).
"""

from __future__ import annotations

import os
import pickle
import secrets
import socket
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.config import Settings
from rag.embedding.backends import load_embedder
from rag.errors import ConfigError, EmbedderError, LoaderError, RagError
from rag.ingest.chunking import ChunkSettings, chunk_source
from rag.ingest.files import SourceFile, document_entry, load_file
from rag.types import Chunk


class RowTarget(Protocol):
    """Where the actors write rows (``rag.storage.milvus.client.RowTarget`` is one): this layer never
    imports the store, which imports pymilvus; the target carries its own connect and write."""

    collection: str
    uri: str
    dim: int

    def connect(self) -> Any: ...

    def write(self, client: Any, keys: Sequence[int], chunks: Sequence[Chunk], shas: Mapping[str, str],
              vectors: np.ndarray) -> list[Counter[int]]: ...

LOCAL = "auto"  # the address that starts a cluster on this machine instead of joining one
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before giving up
_DEFAULT_PORTS = {"ray": 10001, "": 6379}  # Ray Client's port, the GCS port

DocEntry = dict[str, object]  # document_entry(): path, sha256, size, encoding, chars


def _ray() -> Any:
    try:
        import ray  # noqa: PLC0415 - optional: only `rag index --ray` needs it
        import ray.data  # noqa: PLC0415 - Ray Data, with ray (ray extra)
    except ImportError as exc:
        raise ConfigError(
            f"indexing with --ray (RAG_RAY) needs Ray Data, which is not installed ({exc}): pip install '.[ray]'"
        ) from exc
    return ray


@dataclass
class RayIngest:
    """A connection to a Ray cluster that prepares and embeds documents there (see the module's docstring).

    ``actors`` embedding actors of ``cpus_per_actor`` CPUs each; ``settings`` (default: this process's
    environment) go to every actor's ``load_embedder``, so a cluster node resolves the spec as this
    process does (engine, cache folder, downloads).
    """

    actors: int
    cpus_per_actor: float = 1.0
    settings: Settings | None = None
    progress: bool = False

    @classmethod
    def connect(cls, address: str, *, actors: int | None = None, cpus_per_actor: float = 1.0,
                settings: Settings | None = None, progress: bool = False,
                temp_dir: str | None = None, num_cpus: int | None = None) -> RayIngest:
        """Join the cluster at ``address`` (``host:port`` or ``ray://host:port``), or with ``auto`` start
        one on this machine (``num_cpus``, default all its CPUs; no dashboard; ``temp_dir`` for its files).
        ``actors`` defaults to the cluster's CPUs divided by ``cpus_per_actor``."""
        connect(address, temp_dir=temp_dir, num_cpus=num_cpus)
        ray = _ray()
        if actors is None:
            actors = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor))
        if actors < 1:
            raise ConfigError(f"the number of embedding actors must be at least 1. Currently, it is {actors}")
        return cls(actors=actors, cpus_per_actor=cpus_per_actor, settings=settings, progress=progress)

    def prepare(self, sources: list[SourceFile], chunking: ChunkSettings, max_bytes: int,
                ) -> tuple[dict[str, tuple[DocEntry, list[Chunk]]], dict[str, str]]:
        """Each file read, cleaned and chunked on the cluster: (document entry, chunks) by doc id, and
        the reason by doc id for each file that cannot be read (the ``LoaderError`` message, as in-process)."""
        if not sources:
            return {}, {}
        ray = _ray()
        self._quiet(ray)
        items = [{"path": str(s.path), "doc_id": s.doc_id} for s in sources]
        # one file per task: files differ a lot in size, and a failure then names its file
        ds = ray.data.from_items(items).map_batches(
            _prepare_batch, batch_size=1, batch_format="numpy", num_cpus=1,
            fn_kwargs={"chunking": chunking, "max_bytes": max_bytes},
        )
        try:
            results = [(str(d), pickle.loads(blob))  # our own workers' output
                       for batch in ds.iter_batches(batch_size=None, batch_format="numpy")
                       for d, blob in zip(batch["doc_id"], batch["result"])]
        except Exception as exc:  # Ray wraps a worker's failure in one of many types
            raise LoaderError(f"a Ray worker failed while reading and chunking the files: {exc}") from exc
        ready: dict[str, tuple[DocEntry, list[Chunk]]] = {}
        skipped: dict[str, str] = {}
        for doc_id, (kind, value) in results:
            if kind == "failed":
                raise LoaderError(value)
            (ready if kind == "ready" else skipped)[doc_id] = value
        return ready, skipped

    def embed(self, texts: list[str], embedder_spec: str, batch_size: int, actors: int | None = None) -> np.ndarray:
        """Passage vectors of ``texts``, in their order, from a pool of actors each holding ``embedder_spec``."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        ray = _ray()
        self._quiet(ray)
        # length-sorted blocks as in embed_with_progress: little padding, and the same batches as in-process
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        block = max(batch_size * 4, 64)
        ds = ray.data.from_items([{"i": i, "text": texts[i]} for i in order]).map_batches(
            _EmbedActor, batch_size=block, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors or self.actors), num_cpus=self.cpus_per_actor,
            fn_constructor_kwargs={"spec": embedder_spec, "settings": self.settings},
        )
        rows: dict[int, np.ndarray] = {}
        try:
            # rows come back in any order (Ray does not preserve it by default): each carries its index
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                rows.update(zip(batch["i"].tolist(), batch["vector"]))
        except Exception as exc:  # an actor that cannot load the model, or that died
            raise EmbedderError(f"embedding with {embedder_spec!r} on Ray failed: {exc}") from exc
        return np.vstack([rows[i] for i in range(len(texts))]).astype(np.float32)

    def lengths(self, chunks: Sequence[Chunk], counter: Callable[[list[Chunk]], list[Counter[int]]]) -> list[int]:
        """Each chunk's BM25 length (its index terms), counted by Ray tasks with ``counter`` (the store's term
        counts: a picklable function, so this layer never imports the store); in the chunks' order."""
        ray = _ray()
        self._quiet(ray)
        items = [{"i": i, "chunk": pickle.dumps(c)} for i, c in enumerate(chunks)]
        ds = ray.data.from_items(items).map_batches(_lengths_batch, batch_size=256, batch_format="numpy",
                                                    num_cpus=1, fn_kwargs={"counter": counter})
        got: dict[int, int] = {}
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                got.update(zip(batch["i"].tolist(), batch["dl"].tolist()))
        except Exception as exc:  # Ray wraps a worker's failure in one of many types
            raise RagError(f"counting the chunks' terms on Ray failed: {exc}") from exc
        return [got[i] for i in range(len(chunks))]

    def embed_and_write(self, chunks: Sequence[Chunk], texts: Sequence[str], keys: Sequence[int],
                        shas: Mapping[str, str], embedder_spec: str, batch_size: int, target: RowTarget,
                        ) -> list[tuple[list[int], int]]:
        """Chunk i embedded from ``texts[i]`` and inserted as row ``keys[i]`` of ``target`` by the actors,
        each with a connection of its own; returns each chunk's (distinct term ids, length), in order.

        A failed insert fails the run; the rows already written stay hidden by the store's journal."""
        ray = _ray()
        self._quiet(ray)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # the same blocks as embed()
        items = [{"i": i, "text": texts[i], "pk": keys[i], "sha": shas[chunks[i].doc_id],
                  "chunk": pickle.dumps(chunks[i])} for i in order]
        ds = ray.data.from_items(items).map_batches(
            _EmbedWriteActor, batch_size=max(batch_size * 4, 64), batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=self.cpus_per_actor,
            fn_constructor_kwargs={"spec": embedder_spec, "settings": self.settings, "target": target},
        )
        got: dict[int, tuple[list[int], int]] = {}
        failed = ""
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                if failed := next((str(e) for e in batch["error"] if e), ""):
                    break
                got.update((i, (pickle.loads(t), dl)) for i, t, dl in  # our own workers' output
                           zip(batch["i"].tolist(), batch["tids"], batch["dl"].tolist()))
        except Exception as exc:  # an actor that cannot load the model, or that died
            failed = str(exc)
        if len(got) < len(chunks):
            raise RagError(f"embedding and writing to Milvus collection {target.collection!r} at {target.uri} on "
                           f"Ray failed: {failed or 'the actors returned too few rows'}. The rows written are hidden; the next open removes them")
        return [got[i] for i in range(len(chunks))]

    def _quiet(self, ray: Any) -> None:
        ray.data.DataContext.get_current().enable_progress_bars = self.progress


def connect(address: str, *, temp_dir: str | None = None, num_cpus: int | None = None) -> None:
    """``ray.init`` for ``address`` (see ``RayIngest.connect``); a cluster already joined is kept.

    A cluster that is not there fails within ``CONNECT_TIMEOUT`` seconds: ``ray.init`` itself
    retries for a minute or more before it gives up on an address.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    address = address.strip()
    if address == LOCAL:
        _start_local(ray, temp_dir, num_cpus or os.cpu_count())
        return
    _reachable(address)
    try:
        ray.init(address=address, log_to_driver=False)
    except Exception as exc:  # ConnectionError, a version mismatch, a Ray Client handshake error ...
        raise ConfigError(f"cannot join the Ray cluster at {address!r} (--ray, RAG_RAY): {exc}") from exc


def _start_local(ray: Any, temp_dir: str | None, num_cpus: int | None) -> None:
    """A cluster of this machine's CPUs, nothing written outside ``temp_dir``.

    Ray 2.60 on Linux turns ``127.0.0.1`` into the machine's address and its servers listen on
    every interface; so the cluster gets a token of its own, kept in this process's environment
    (which Ray's processes inherit) rather than the ~/.ray/auth_token Ray would write.
    """
    if not any(os.environ.get(v) for v in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    root = Path(__file__).resolve().parents[2]
    # workers import rag from the same folder as this process, even where an editable install points elsewhere
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=temp_dir or tempfile.mkdtemp(prefix="rag-ray-"),
             runtime_env={"env_vars": {"PYTHONPATH": path}}, log_to_driver=False)


def _reachable(address: str) -> None:
    """``ConfigError`` unless something listens at ``address``'s host and port."""
    scheme, _, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        host, port = rest, str(_DEFAULT_PORTS.get(scheme, 6379))
    if not host:
        raise ConfigError(f"--ray (RAG_RAY) must be auto, host:port or ray://host:port. Currently, it is {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {address!r} (--ray, RAG_RAY): {host}:{port} cannot be reached "
            f"within {CONNECT_TIMEOUT:g} s ({exc}). Start one with `ray start --head`, or use --ray auto"
        ) from exc


def _prepare_batch(batch: dict[str, np.ndarray], chunking: ChunkSettings, max_bytes: int) -> dict[str, np.ndarray]:
    """On a worker: what ``build_snapshot`` does to each file, pickled so chunks come back exactly as made."""
    out = [pickle.dumps(_prepare_one(SourceFile(Path(str(p)), str(d)), chunking, max_bytes))
           for p, d in zip(batch["path"], batch["doc_id"])]
    return {"doc_id": batch["doc_id"], "result": np.array(out, dtype=object)}


def _prepare_one(src: SourceFile, chunking: ChunkSettings, max_bytes: int) -> tuple[str, Any]:
    try:
        doc = load_file(src, max_bytes=max_bytes)
    except LoaderError as exc:
        return "skipped", str(exc)
    try:
        return "ready", (document_entry(doc), chunk_source(doc.doc_id, doc.text, chunking, doc.units, doc.boxes))
    except Exception as exc:  # a bug or a crash: in-process it stops the run too, but here it must name its file
        return "failed", f"{src.doc_id}: cleaning or chunking failed on a Ray worker: {type(exc).__name__}: {exc}"


class _EmbedActor:
    """One embedding model per actor, loaded once when Ray Data starts the actor."""

    def __init__(self, spec: str, settings: Settings | None) -> None:
        self._embedder = load_embedder(spec, settings=settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"i": batch["i"], "vector": self._embedder.embed_passages([str(t) for t in batch["text"]])}


def _lengths_batch(batch: dict[str, np.ndarray], counter: Callable[[list[Chunk]], list[Counter[int]]],
                   ) -> dict[str, np.ndarray]:
    counts = counter([pickle.loads(b) for b in batch["chunk"]])
    return {"i": batch["i"], "dl": np.array([sum(c.values()) for c in counts], dtype=np.int64)}


class _EmbedWriteActor:
    """An embedding actor that inserts its rows itself, through a connection opened once (a Milvus server)."""

    def __init__(self, spec: str, settings: Settings | None, target: RowTarget) -> None:
        self._embedder = load_embedder(spec, settings=settings)
        self._target = target
        self._client = target.connect()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["i"])
        try:
            dls, tids = self._write(batch)
        except Exception as exc:  # returned, not raised: Ray would bury the cause under a remote traceback
            dls, tids = [0] * n, [[]] * n
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = ""
        return {"i": batch["i"], "dl": np.array(dls, dtype=np.int64),
                "tids": np.array([pickle.dumps(t) for t in tids], dtype=object),
                "error": np.array([error] * n, dtype=object)}

    def _write(self, batch: dict[str, np.ndarray]) -> tuple[list[int], list[list[int]]]:
        """Embed the batch and insert its rows; each chunk's length and distinct term ids."""
        t = self._target
        vectors = np.asarray(self._embedder.embed_passages([str(x) for x in batch["text"]]), np.float32)
        if vectors.shape[1] != t.dim:  # the node resolved the spec to another model: refuse before writing
            raise EmbedderError(f"{self._embedder.name!r} on a Ray worker gives {vectors.shape[1]} dimensions; "
                                f"collection {t.collection!r} holds {t.dim}: install the same model there")
        chunks = [pickle.loads(b) for b in batch["chunk"]]  # pickled by our own driver
        shas = {c.doc_id: str(s) for c, s in zip(chunks, batch["sha"])}
        counts = t.write(self._client, batch["pk"].tolist(), chunks, shas, vectors)
        return [sum(c.values()) for c in counts], [list(c.keys()) for c in counts]
