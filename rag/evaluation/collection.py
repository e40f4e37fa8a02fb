"""The open-domain protocol for a SQuAD-format file: its paragraphs as the collection every question is asked over.

Every paragraph that is not held out is written as its own document (``p00000.txt``, …) and
indexed with the default settings; ``rag eval`` and ``bench/naive_answer.py`` both open their
collection here, so the two measure the same thing. The RAG class is passed in, because the
pipeline sits above this package and only reaches it through ``RAG.evaluate``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.evaluation.dataset import Dataset, write_paragraphs


@contextmanager
def open_collection(dataset: Dataset, rag_class: Any, index_dir: str | Path | None = None,
                    out: str | Path | None = None, progress: bool = False) -> Iterator[Any]:
    """A RAG over the dataset's paragraphs: ``index_dir`` when it names a built index, else a fresh one.

    A fresh index is built in ``index_dir`` when given, else ``out/index`` when ``out`` is given
    (kept, and updated incrementally by the next run), else a temporary folder removed afterwards.
    The paragraph files go to ``out/paragraphs`` or a temporary folder.
    """
    if not dataset.paragraphs:
        raise ConfigError(f"{dataset.source} has no paragraphs: only a SQuAD-format file builds its own index")
    if index_dir is not None and (Path(index_dir) / "manifest.json").is_file():
        rag = rag_class.open(index_dir, progress=progress)
        check_collection(rag, dataset, index_dir)
        yield rag
        return
    with ExitStack() as stack:
        base = Path(out) if out is not None else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="rag-eval-")))
        docs = write_paragraphs(dataset, base / "paragraphs")
        index = Path(index_dir) if index_dir is not None else base / "index"
        rag = rag_class.open(index, create=True, progress=progress)
        rag.index([docs])
        yield rag


def check_collection(rag: Any, dataset: Dataset, index_dir: str | Path) -> None:
    """An existing index must hold none of the left-out paragraphs, and some of the others."""
    docs = {d["doc_id"] for d in rag.documents()}
    held = sorted(p.doc_id for p in dataset.paragraphs if p.held_out and p.doc_id in docs)
    if held:
        raise ConfigError(f"{index_dir} holds {len(held)} of the left-out paragraphs (e.g. {held[0]}): "
                          "drop --index-dir so that a fresh index is built without them")
    if not any(p.doc_id in docs for p in dataset.paragraphs if not p.held_out):
        raise ConfigError(f"{index_dir} holds none of the paragraphs of {dataset.source} (p00000.txt, …): "
                          "drop --index-dir so that one is built")
