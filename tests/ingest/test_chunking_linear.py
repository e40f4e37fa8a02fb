"""Chunking one long line costs work in proportion to its length, whatever the line holds.

Work is measured as the characters handed to the tokenizer (every cut is decided by counting tokens),
not as time: doubling the line must not much more than double it, and it stays a small multiple of the
line. A line of digits cost 640 characters tokenized per character (minutes for 100 KB); clauses of
``一，`` re-counted the growing chunk at every comma.
"""

from __future__ import annotations

import json

import pytest
from conftest import shared_data

from rag.ingest import chunking
from rag.ingest.chunking import ChunkSettings, chunk_source
from rag.text.tokens import count_tokens


def _chinese_line() -> str:
    """Real Chinese paragraphs (CMRC 2018 contexts) joined into one line without breaks."""
    data = json.loads(shared_data("cmrc2018-train.json").read_text(encoding="utf-8"))
    contexts = (p["context"] for article in data["data"] for p in article["paragraphs"])
    return "".join(c.replace("\n", "").replace("\r", "") for c in contexts)[:40_000]


LINES = {
    "digits": lambda: "1234567890" * 4_000,
    "decimals": lambda: "1.5" * 13_334,
    "short clauses": lambda: "一，" * 20_000,
    "Chinese without punctuation": lambda: "长沙市岳麓区新建改扩建中小学校九所新增学位一万二千个" * 1_600,
    "Chinese prose": _chinese_line,
}


def _work(monkeypatch, text: str) -> tuple[int, list]:
    tokenized = 0

    def counting(s: str) -> int:
        nonlocal tokenized
        tokenized += len(s)
        return count_tokens(s)

    monkeypatch.setattr(chunking, "count_tokens", counting)
    chunks = chunk_source("line.txt", text, ChunkSettings())
    return tokenized, chunks


@pytest.mark.parametrize("kind", list(LINES))
def test_one_long_line_is_chunked_in_linear_work(monkeypatch, kind):
    line = LINES[kind]()[:40_000]
    half, _ = _work(monkeypatch, line[:20_000])
    whole, chunks = _work(monkeypatch, line)
    assert whole <= 2.3 * half, f"{kind}: twice the line cost {whole / half:.1f} times the work"
    assert whole <= 10 * len(line), f"{kind}: {whole / len(line):.0f} characters tokenized per character"
    settings = ChunkSettings()
    assert max(count_tokens(c.text) for c in chunks) <= settings.chunk_tokens
    covered = sorted((c.start, c.end) for c in chunks)
    reach = 0
    for start, end in covered:  # every character is in some chunk: nothing was lost to the cuts
        assert start <= reach
        reach = max(reach, end)
    assert reach == len(line)
