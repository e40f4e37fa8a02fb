"""The index as a LangChain retriever in a real LCEL chain (a fake chat model from langchain_core)."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough

from rag import RAG
from rag.bases import KnowledgeBases
from rag.errors import ConfigError

Q = "蓝风微短剧基地从签约到试运营用了多少天？"


def test_a_chain_gets_the_passages_rag_would_quote(seed_rag):
    retriever = seed_rag.as_retriever(top_k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(Q)
    assert [d.metadata["chunk_id"] for d in docs] == [p.chunk.chunk_id for p in seed_rag.search(Q, 3)]
    top = docs[0]
    assert isinstance(top, Document) and "47天" in top.page_content
    assert {"doc_id", "chunk_id", "start", "end", "score", "rank", "kb"} <= top.metadata.keys()
    assert top.metadata["rank"] == 1 and top.metadata["end"] > top.metadata["start"]

    seen = []

    def context(docs: list[Document]) -> str:
        seen.append(docs)
        return "\n\n".join(f"[{i}] {d.page_content}" for i, d in enumerate(docs, 1))

    prompt = ChatPromptTemplate.from_messages([("system", "只根据资料回答。\n{context}"), ("human", "{question}")])
    llm = FakeListChatModel(responses=["用了47天 [1]"])
    chain = {"context": retriever | context, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
    assert chain.invoke(Q) == "用了47天 [1]"
    assert "47天" in seen[0][0].page_content  # the chain's prompt held the retrieved passage


def test_filters_and_modes_reach_the_search(seed_rag):
    docs = seed_rag.as_retriever(top_k=5, filters={"doc": "nothing-*"}).invoke(Q)
    assert docs == []
    lexical = seed_rag.as_retriever(top_k=2, retrieval="lexical").invoke(Q)
    assert [d.metadata["chunk_id"] for d in lexical] == [p.chunk.chunk_id for p in seed_rag.search(Q, 2, retrieval="lexical")]


def test_bad_arguments_fail_when_the_retriever_is_made(seed_rag):
    with pytest.raises(ConfigError, match="top_k"):
        seed_rag.as_retriever(top_k=0)
    with pytest.raises(ConfigError):
        seed_rag.as_retriever(filters={"colour": "red"})


@pytest.mark.slow
def test_named_knowledge_bases(seed_index, tmp_path, kite_corpus):
    bases = KnowledgeBases(RAG.open(seed_index, progress=False), tmp_path / "kbs", RAG.open)
    bases.create("kites").index([kite_corpus])
    docs = bases.as_retriever(kb=["default", "kites"], top_k=4).invoke("紫藤镇风筝节今年吸引了多少游客？")
    assert docs and docs[0].metadata["kb"] == "kites"
    with pytest.raises(Exception, match="nope"):
        bases.as_retriever(kb="nope")
