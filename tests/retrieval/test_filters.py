"""Metadata filters on search and ask: by document, article and date."""

from __future__ import annotations

import pytest

from rag import RAG
from rag.errors import ConfigError


@pytest.mark.slow
def test_metadata_filters(seed_index):

    rag = RAG.open(seed_index)
    hits = rag.search("总书记", top_k=5, filters={"article": "数字潮涌"})
    assert hits and all(h.chunk.meta["article"] == "数字潮涌产业兴 营商沃土育新机" for h in hits)
    assert rag.search("总书记", top_k=5, filters={"doc": "nope*.txt"}) == []
    assert rag.search("总书记", top_k=5, filters={"date_from": "2020-01-01"}) == []  # the seed has no full dates
    a = rag.ask("天心经开区有多少家高新技术企业？", filters={"doc": "000_*.txt"})
    assert "224" in a.answer
    with pytest.raises(ConfigError, match="unknown filter"):
        rag.search("x", filters={"author": "me"})
    with pytest.raises(ConfigError, match="date_from must be a date"):
        rag.search("x", filters={"date_from": "yesterday"})
