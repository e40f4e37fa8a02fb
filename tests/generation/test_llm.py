"""LLM answers through the real `openai:` path against a real OpenAI-compatible server on localhost."""

from __future__ import annotations

import socket

import pytest
from llm_faults import PARTIAL, QUESTION, failing_llm
from openai_server import FakeOpenAI, passage_numbers, prompt_text

from rag import RAG
from rag.errors import ConfigError
from rag.generation.llm import LLMGenerator, fit_passages
from rag.text.tokens import count_tokens
from rag.types import Chunk, Passage

REWRITTEN = "蓝风微短剧基地一年能拍摄多少部微短剧？"


def grounded(messages):
    """Answers like a careful model: cites the passage that holds the fact."""
    prompt = prompt_text(messages)
    if "改写" in prompt:
        return REWRITTEN
    numbered = passage_numbers(messages)
    if "多少部" in prompt.split("问题 Question:")[-1]:
        for n, text in numbered.items():
            if "3000部" in text:
                return f"蓝风微短剧基地年拍摄微短剧可达3000部【{n}】。"
    for n, text in numbered.items():
        if "47天" in text:
            return f"蓝风微短剧基地从签约到试运营仅用时47天[{n}]。"
    return "资料中没有找到相关信息。"


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAI(grounded) as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield s


@pytest.fixture
def llm_rag(seed_index, server):
    return RAG.open(seed_index, generator="openai:test-model", llm_timeout=2, llm_retries=0)


def _fact_passage(answer, fact="47天"):
    return next(i for i, p in enumerate(answer.passages, 1) if fact in p.chunk.text)


@pytest.mark.slow
def test_prompt_holds_the_numbered_passages_and_the_question(llm_rag, server):
    a = llm_rag.ask(QUESTION)
    sent = server.requests[-1]
    assert sent["model"] == "test-model" and sent["stream"] is True
    system, user = sent["messages"][0], sent["messages"][-1]
    assert system["role"] == "system" and "[1]" in system["content"] and "资料中没有找到相关信息" in system["content"]
    assert QUESTION in user["content"]
    numbered = passage_numbers(sent["messages"])
    assert sorted(numbered) == list(range(1, len(a.passages) + 1))
    for n, p in enumerate(a.passages, 1):
        assert p.chunk.text in numbered[n] and f"来源 source: {p.chunk.doc_id}" in user["content"]


def test_citations_map_to_the_right_passage_and_source(llm_rag, seed_text):
    a = llm_rag.ask(QUESTION)
    assert a.generator == "openai:test-model" and not a.abstained and a.warnings == []
    (c,) = a.citations
    assert c.n == _fact_passage(a) and "47天" in c.quote and c.support >= 0.5
    assert "".join(seed_text[c.start : c.end].split()) == "".join(c.quote.split())
    assert a.support >= 0.5


def test_an_llm_answer_has_its_exact_answer_marked_in_the_cited_passage(llm_rag):
    a = llm_rag.ask(QUESTION)
    (c,) = a.citations
    span = a.answer_span
    assert span is not None and span["n"] == c.n and "47" in span["text"]
    assert a.to_dict()["answer_span"] == span


def test_streaming_delivers_the_same_text_as_the_final_answer(llm_rag):
    events = list(llm_rag.ask_stream(QUESTION))
    assert events[0].type == "sources" and events[-1].type == "answer"
    tokens = [e.text for e in events if e.type == "token"]
    assert len(tokens) > 3
    assert "".join(tokens).strip() == events[-1].answer.answer


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", ["http500", "http429", "slow", "garbage", "empty", "refused"])
@pytest.mark.slow
def test_llm_failures_fall_back_to_the_extractive_answer_with_a_warning(seed_index, server, monkeypatch, mode):
    server.mode, server.delay = mode, 5.0
    if mode == "refused":
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    rag = RAG.open(seed_index, generator="openai:test-model", llm_timeout=1, llm_retries=1)
    a = rag.ask(QUESTION)
    assert a.generator == "extractive" and "47天" in a.answer and a.citations
    assert any(w.startswith("LLM openai:test-model failed") for w in a.warnings), a.warnings


@pytest.mark.parametrize("when", ["before", "midway"])
@pytest.mark.slow
def test_a_stream_whose_llm_fails_ends_with_the_extractive_answer(seed_index, seed_rag, monkeypatch, when):
    extractive = seed_rag.ask(QUESTION).answer
    with failing_llm(when, monkeypatch):
        events = list(RAG.open(seed_index, generator="openai:test-model").ask_stream(QUESTION))
    assert events[0].type == "sources" and events[-1].type == "answer"
    assert {e.type for e in events[1:-1]} == {"token"}
    streamed, answer = "".join(e.text for e in events if e.type == "token"), events[-1].answer
    assert answer.answer == extractive and answer.generator == "extractive"
    (warning,) = [w for w in answer.warnings if w.startswith("LLM openai:test-model failed")]
    if when == "before":  # nothing of the LLM's was sent: the fallback is streamed like any answer
        assert streamed == extractive and "replaces" not in warning
    else:  # the LLM's partial text was sent: the answer event replaces it, and says so
        assert streamed == PARTIAL and "replaces the text streamed before the failure" in warning


@pytest.mark.parametrize("when", ["before", "midway"])
@pytest.mark.slow
def test_the_sse_stream_carries_the_extractive_answer_when_the_llm_fails(seed_index, seed_rag, monkeypatch, when):
    from fastapi.testclient import TestClient
    from servers import parse_sse

    from rag.http.app import create_api

    extractive = seed_rag.ask(QUESTION).answer
    with failing_llm(when, monkeypatch), TestClient(create_api(RAG.open(seed_index, allowed_generators="openai:test-model"), api_key="")) as client:
        r = client.post("/api/ask/stream", json={"question": QUESTION, "generator": "openai:test-model"})
    assert r.status_code == 200, r.text
    events = parse_sse(r.text)
    assert events[0]["type"] == "sources" and events[-1]["type"] == "answer"
    assert {e["type"] for e in events[1:-1]} == {"token"}
    final = events[-1]["answer"]
    assert final["answer"] == extractive and final["generator"] == "extractive" and final["citations"]
    streamed = "".join(e["text"] for e in events if e["type"] == "token")
    assert streamed == (extractive if when == "before" else PARTIAL)


def test_follow_up_question_is_rewritten_for_retrieval(llm_rag, server):
    history = [{"role": "user", "content": "蓝风微短剧基地从签约到试运营用了多少天？"},
               {"role": "assistant", "content": "仅用时47天。"}]
    a = llm_rag.ask("那它一年能拍多少部？", history=history)
    assert a.query == REWRITTEN and a.to_dict()["query"] == REWRITTEN
    assert "蓝风微短剧基地从签约到试运营" in prompt_text(server.requests[0]["messages"])
    assert any("3000部" in p.chunk.text for p in a.passages)
    assert "3000" in a.answer and a.citations


@pytest.mark.slow
def test_extractive_generator_asks_a_follow_up_with_the_previous_question(seed_rag):
    first = "蓝风微短剧基地从签约到试运营用了多少天？"
    a = seed_rag.ask("那它一年能拍多少部？", history=[(first, "47天")])
    assert a.query == f"那它一年能拍多少部？ {first}" and a.to_dict()["query"] == a.query
    assert any("3000部" in p.chunk.text for p in a.passages)
    standalone = seed_rag.ask("蓝风微短剧基地一年能拍多少部微短剧？", history=[(first, "47天")])
    assert standalone.query is None  # a question that leans on nothing is asked as it is


UNSUPPORTED = [
    ("wrong number", lambda n, other: f"蓝风微短剧基地从签约到试运营仅用时99天[{n}]。"),
    ("wrong passage", lambda n, other: f"蓝风微短剧基地从签约到试运营仅用时47天[{other}]。"),
    ("no citation", lambda n, other: "蓝风微短剧基地从签约到试运营仅用时47天。"),
    ("out of range", lambda n, other: "蓝风微短剧基地从签约到试运营仅用时47天[9]。"),
    ("invented claim", lambda n, other: f"蓝风微短剧基地的董事长毕业于北京大学光华管理学院[{n}]。"),
    ("invented number", lambda n, other: f"仅用时47天，投资额达到12亿元[{n}]。"),
]


@pytest.mark.parametrize(("kind", "make"), UNSUPPORTED, ids=[k for k, _ in UNSUPPORTED])
def test_the_verifier_flags_deliberately_unsupported_answers(seed_index, server, kind, make):
    def responder(messages):
        numbered = passage_numbers(messages)
        n = next(i for i, t in numbered.items() if "47天" in t)
        other = next(i for i, t in numbered.items() if "47天" not in t)
        return make(n, other)

    server.responder = responder
    a = RAG.open(seed_index, generator="openai:test-model", llm_timeout=2, llm_retries=0).ask(QUESTION)
    assert a.generator == "openai:test-model"
    assert a.warnings, f"{kind} was not flagged"


def test_the_context_budget_drops_the_weakest_passages_whole(seed_index, server):
    rag = RAG.open(seed_index, generator="openai:test-model", context_tokens=900, top_k=5)
    a = rag.ask(QUESTION)
    numbered = passage_numbers(server.requests[-1]["messages"])
    assert 1 <= len(numbered) < 5
    assert any("left out to fit the 900-token context window" in w for w in a.warnings)
    for text in numbered.values():  # never cut mid-passage
        assert any(text.strip() == p.chunk.text.strip() for p in a.passages)


def _prompt_tokens(messages) -> int:
    """cl100k tokens of the messages as built for (or received by) the server."""
    return sum(count_tokens(m[1] if isinstance(m, tuple) else m["content"]) for m in messages)


def test_a_shortened_passage_keeps_the_prompt_within_the_budget(seed_text):
    long = seed_text[:3000]  # far over the budget on its own
    best = Passage(Chunk("c1", "d.txt", long, 0, len(long)), 0.9, 1)
    weaker = Passage(Chunk("c2", "d.txt", seed_text[3000:3600], 3000, 3600), 0.5, 2)
    budget = 450
    used, notes = fit_passages(QUESTION, [weaker, best], budget)
    assert any("shortened to whole sentences" in n for n in notes) and any("1 weaker passage" in n for n in notes)
    (short,) = used
    assert short.chunk.chunk_id == "c1" and 0 < len(short.chunk.text) < len(long) and long.startswith(short.chunk.text)
    assert short.chunk.text[-1] in "。！？；…”\n" and short.chunk.end == len(short.chunk.text)
    assert _prompt_tokens(LLMGenerator(None).messages(QUESTION, used)) <= budget


def test_the_prompt_sent_fits_a_budget_smaller_than_one_passage(seed_index, server):
    budget = 340  # the instructions and the question take about 270 tokens, a chunk up to 192
    a = RAG.open(seed_index, generator="openai:test-model", context_tokens=budget, llm_retries=0).ask(QUESTION)
    sent = server.requests[-1]["messages"]
    assert _prompt_tokens(sent) <= budget
    assert any("shortened to whole sentences" in w for w in a.warnings), a.warnings
    (text,) = passage_numbers(sent).values()
    best = max(a.passages, key=lambda p: p.score)
    assert best.chunk.text.startswith(text.strip()) and len(text.strip()) < len(best.chunk.text)
    assert a.generator == "openai:test-model"


@pytest.mark.slow
def test_a_budget_without_room_for_one_sentence_falls_back_without_asking(seed_index, server):
    a = RAG.open(seed_index, generator="openai:test-model", context_tokens=250, llm_retries=0).ask(QUESTION)
    assert server.requests == [] and a.generator == "extractive" and "47天" in a.answer
    assert any("not one sentence of the best passage fits the 250-token context window" in w for w in a.warnings)


def test_a_langchain_model_object_can_be_given_directly(seed_index, server):
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="object-model", base_url=server.base_url, api_key="k", timeout=2, max_retries=0)
    a = RAG.open(seed_index, generator=model).ask(QUESTION)
    assert a.generator == "ChatOpenAI" and "47天" in a.answer and server.requests[-1]["model"] == "object-model"


def test_bad_generator_specs_are_clear_errors(seed_index):
    with pytest.raises(ConfigError, match="unknown LLM provider 'nosuch'; known providers: .*openai"):
        RAG.open(seed_index, generator="nosuch:model")
    with pytest.raises(ConfigError, match="pip install langchain-ollama"):
        RAG.open(seed_index, generator="ollama:qwen2.5:7b")
    with pytest.raises(ConfigError, match="provider:model"):
        RAG.open(seed_index, generator="gpt4")

