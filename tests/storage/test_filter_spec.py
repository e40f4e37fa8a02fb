"""One filter rule (``rag.filters.Filter``): the FAISS snapshot's positions, the segmented store's keys and
the Milvus expression all come from it, and pass the same chunks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rag.filters import KEYS, Filter, allowed_positions, validate
from rag.storage.milvus.client import filter_expression
from rag.storage.segments import index as segments
from rag.storage.segments.segment import rows_of_chunks, write_segment
from rag.storage.store import NOTHING
from rag.types import Chunk

# (doc, article, date): titles and dates missing, empty or shared, in several documents
LABELS = [("a1.txt", "数字潮涌", "2023-01-01"), ("a1.txt", "数字潮涌", "2023-12-31"), ("a2.txt", "潮涌", None),
          ("a2.txt", None, "2024-02-29"), ("b1.txt", "", ""), ("b1.txt", "数字经济_100%", "2022-06-30"),
          ("c.md", "经济", "2023-06-15")]
CHUNKS = [Chunk(f"{d}#{i}", d, f"第{i}段", 0, 3, {"article": a, "date": t}) for i, (d, a, t) in enumerate(LABELS)]
VALUES = {"doc": [None, "a*.txt", "b1.txt", "zz*"], "article": [None, "潮涌", "数字", "_100%"],
          "date_from": [None, "2023-01-01", "2023-06-16"], "date_to": [None, "2023-12-31", "2022-01-01"]}
FILTERS = [{k: v for k, v in zip(KEYS, combo) if v is not None} for combo in itertools.product(*VALUES.values())]


def test_the_keys_are_the_fields_of_the_filter_in_their_documented_order():
    assert KEYS == ("doc", "article", "date_from", "date_to")
    assert Filter.of(validate({"article": "潮涌", "date_to": "2023-12-31"})) == Filter(article="潮涌", date_to="2023-12-31")


@pytest.mark.parametrize(("article", "date", "passes"), [
    ("数字潮涌", "2023-01-01", True),  # both bounds are inclusive
    ("数字潮涌", "2023-12-31", True),
    ("潮涌", "2023-06-01", False),  # the article is a part of the title, not the other way round
    (None, "2023-06-01", False),
    ("数字潮涌", None, False),  # a date range needs a known date
    ("数字潮涌", "", False),
    ("数字潮涌", "2024-01-01", False),
])
def test_a_chunk_passes_when_its_title_holds_the_article_and_its_date_is_in_the_range(article, date, passes):
    spec = Filter(article="数字潮", date_from="2023-01-01", date_to="2023-12-31")
    assert spec.labels_pass(article, date) is passes
    assert Filter().labels_pass(article, date)  # no filter: every chunk


def test_the_segmented_store_passes_the_chunks_the_snapshot_passes(tmp_path):
    shas = {c.doc_id: f"sha-{c.doc_id}" for c in CHUNKS}
    rows = rows_of_chunks(CHUNKS, np.eye(len(CHUNKS), 8, dtype=np.float32), shas, [["词"]] * len(CHUNKS))
    checksums = write_segment(tmp_path / segments.SEGMENTS_DIR / "seg-000001", rows, 0, ann=False)
    entry = {"kind": "segments", "next_key": len(CHUNKS), "segments": [
        {"name": "seg-000001", "key_base": 0, "rows": len(CHUNKS), "docs": sorted(shas), "checksums": checksums}]}
    store = segments.SegmentStore(tmp_path, entry, {d: {"sha256": s} for d, s in shas.items()}, 8)
    assert len(FILTERS) == 144
    for filters in FILTERS:
        want = allowed_positions(CHUNKS, filters)
        got = store.where(filters)
        if want is None:
            assert got is None
        elif not len(want):
            assert got is NOTHING, filters
        else:
            assert sorted(got.tolist()) == want.tolist(), filters


def test_the_milvus_expression_names_each_key_given():
    full = Filter(doc="a*", article="100%_数字", date_from="2023-01-01", date_to="2023-12-31")
    assert filter_expression(full, {"a2.txt", "a1.txt"}) == (
        'doc_id in ["a1.txt", "a2.txt"] and article like "%100\\\\%\\\\_数字%" and date >= "2023-01-01" '
        'and date <= "2023-12-31" and date != ""')
    assert filter_expression(Filter(), None) == ""
    assert filter_expression(Filter(date_to="2023-12-31"), None) == 'date <= "2023-12-31" and date != ""'
