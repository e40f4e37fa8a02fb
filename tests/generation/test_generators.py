"""The pipeline dispatches on the Generator protocol: a user's own object plugs in like the built-in ones.

The generators here are the code under test's clients, written as a user would write them;
retrieval, the index, the embedder and the citation offsets are all the real ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag import RAG
from rag.config import Settings
from rag.errors import ConfigError
from rag.generation import Context, Draft, ExtractiveGenerator, GeneratorError, Quote
from rag.generation.llm import LLMGenerator
from rag.generation.resolve import Generators
from rag.text.sentences import sentence_spans

QUESTION = "蓝风微短剧基地从签约到试运营用了多少天？"


def sentences(text: str) -> list[tuple[int, int]]:
    """Offsets of the sentences of ``text``, surrounding white space left out."""
    out = []
    for s, e in sentence_spans(text):
        raw = text[s:e]
        if raw.strip():
            lead = s + len(raw) - len(raw.lstrip())
            out.append((lead, lead + len(raw.strip())))
    return out


def first_sentence(text: str) -> tuple[int, int]:
    return sentences(text)[0]


class FirstSentence:
    """Answers with the first sentence of passage 1, cites it, and streams the answer in two pieces."""

    name = "first-sentence"

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], Context]] = []

    def generate(self, question, passages, ctx):
        *_, draft = self.stream(question, passages, ctx)
        return draft

    def stream(self, question, passages, ctx):
        self.calls.append((question, [p.chunk.chunk_id for p in passages], ctx))
        s, e = first_sentence(passages[0].chunk.text)
        text = f"{passages[0].chunk.text[s:e]} [1]"
        yield text[: len(text) // 2]
        yield text[len(text) // 2 :]
        yield Draft(text, [Quote(1, s, e)], abstained=False)


class Closest:
    """No ``stream``: quotes the passage sentence nearest the question by the index's own embedder (from ``ctx``)."""

    name = "closest-sentence"

    def generate(self, question, passages, ctx):
        quotes = [Quote(n, s, e) for n, p in enumerate(passages, 1) for s, e in sentences(p.chunk.text)]
        texts = [passages[q.n - 1].chunk.text[q.start : q.end] for q in quotes]
        best = int(np.argmax(ctx.embedder.embed_passages(texts) @ ctx.query_vector))
        return Draft(f"{texts[best]} [{quotes[best].n}]", [quotes[best]], abstained=False)


class Rewrites(FirstSentence):
    name = "rewrites"
    standalone = "蓝风微短剧基地一年能拍摄多少部微短剧？"

    def rewrite(self, question, history):
        self.history = list(history)
        return self.standalone


class Fails:
    """Raises GeneratorError before or after the first piece of its answer, as a remote model can."""

    name = "flaky"

    def __init__(self, after_pieces: int) -> None:
        self.after_pieces = after_pieces

    def generate(self, question, passages, ctx):
        raise GeneratorError("service unavailable")

    def stream(self, question, passages, ctx):
        yield from ["蓝风", "微短剧"][: self.after_pieces]
        raise GeneratorError("service unavailable")

    def rewrite(self, question, history):
        raise GeneratorError("service unavailable")


def _check_first_sentence_answer(a, seed_text):
    assert a.generator == "first-sentence" and not a.abstained and a.warnings == []
    (c,) = a.citations
    passage = a.passages[0].chunk
    s, e = first_sentence(passage.text)
    assert (c.n, c.doc_id, c.chunk_id, c.quote) == (1, passage.doc_id, passage.chunk_id, passage.text[s:e])
    assert a.answer == f"{c.quote} [1]"
    assert "".join(seed_text[c.start : c.end].split()) == "".join(c.quote.split())  # source offsets, layout breaks aside


def test_a_generator_given_at_open_answers_streams_and_cites_the_real_passage(seed_index, seed_text):
    gen = FirstSentence()
    rag = RAG.open(seed_index, generator=gen)
    events = list(rag.ask_stream(QUESTION))
    assert [e.type for e in events] == ["sources", "token", "token", "answer"]
    a = events[-1].answer
    assert events[1].text + events[2].text == a.answer and events[0].passages == a.passages
    _check_first_sentence_answer(a, seed_text)
    (question, ids, ctx), = gen.calls
    assert question == QUESTION and ids == [p.chunk.chunk_id for p in a.passages]
    assert ctx.embedder is rag.embedder and ctx.query_vector.shape == (rag.embedder.dim,)
    assert ctx.idf("微短剧") > 0
    assert a.to_dict()["generator"] == "first-sentence"


@pytest.mark.slow
def test_a_generator_given_per_call_answers_that_call_only(seed_rag, seed_text):
    _check_first_sentence_answer(seed_rag.ask(QUESTION, generator=FirstSentence()), seed_text)
    assert seed_rag.ask(QUESTION).generator == "extractive"


@pytest.mark.slow
def test_a_generator_without_stream_sends_its_answer_as_one_piece(seed_rag, seed_text):
    events = list(seed_rag.ask_stream(QUESTION, generator=Closest()))
    assert [e.type for e in events] == ["sources", "token", "answer"]
    a = events[-1].answer
    assert events[1].text == a.answer and a.generator == "closest-sentence" and "47天" in a.answer
    (c,) = a.citations
    assert c.chunk_id == a.passages[c.n - 1].chunk.chunk_id and c.quote in a.answer
    assert "".join(seed_text[c.start : c.end].split()) == "".join(c.quote.split())


def test_a_generator_with_rewrite_makes_a_follow_up_standalone(seed_rag):
    gen = Rewrites()
    history = [("蓝风微短剧基地从签约到试运营用了多少天？", "仅用时47天。")]
    a = seed_rag.ask("那它一年能拍多少部？", generator=gen, history=history)
    assert gen.history == [("user", history[0][0]), ("assistant", history[0][1])]
    assert a.query == Rewrites.standalone and gen.calls[0][0] == Rewrites.standalone
    assert any("3000部" in p.chunk.text for p in a.passages)


@pytest.mark.parametrize("after_pieces", [0, 1])
@pytest.mark.slow
def test_a_generator_that_fails_is_replaced_by_the_extractive_answer(seed_rag, after_pieces):
    extractive = seed_rag.ask(QUESTION).answer
    events = list(seed_rag.ask_stream(QUESTION, generator=Fails(after_pieces)))
    a = events[-1].answer
    assert a.generator == "extractive" and a.answer == extractive and a.citations
    (warning,) = a.warnings
    assert warning.startswith("LLM flaky failed (service unavailable); showing the extractive answer instead")
    streamed = "".join(e.text for e in events if e.type == "token")
    if after_pieces:  # its text went first: the answer event replaces it, and says so
        assert streamed == "蓝风" and warning.endswith("; it replaces the text streamed before the failure")
    else:
        assert streamed == extractive and "replaces" not in warning


@pytest.mark.slow
def test_a_failed_rewrite_searches_for_the_question_as_asked(seed_rag):
    a = seed_rag.ask("那它一年能拍多少部？", generator=Fails(0), history=[("蓝风微短剧基地在哪里？", "在天心经开区。")])
    assert a.query is None and a.generator == "extractive"
    assert a.warnings[0] == "could not rewrite the follow-up question with flaky (service unavailable); searched for it as asked"


class Nameless:
    def generate(self, question, passages, ctx):
        return Draft("", [], True)


@pytest.mark.parametrize(("spec", "currently"), [
    (object(), r"<object object at 0x[0-9a-f]+> \(object\)"),
    (42, r"42 \(int\)"),
    (FirstSentence, r"the class FirstSentence \(pass an instance\)"),
    (Nameless(), r"a test_generators\.Nameless object with generate\(\) but no non-empty `name` string"),
])
def test_what_is_neither_a_spec_a_chat_model_nor_a_generator_is_a_clear_error(seed_index, seed_rag, spec, currently):
    accepted = (r"generator must be 'extractive', 'provider:model' \(e\.g\. openai:gpt-4o-mini\), 'llamacpp:PATH\.gguf', "
                r"a LangChain chat model, or an object with a `name` string and a `generate\(question, passages, ctx\)` "
                r"method \(rag\.generation\.Generator\)\. Currently, it is ")
    with pytest.raises(ConfigError, match=accepted + currently):
        RAG.open(seed_index, generator=spec)
    with pytest.raises(ConfigError, match=accepted + currently):
        seed_rag.ask(QUESTION, generator=spec)


class Broken:
    name = "broken"

    def __init__(self, how: str) -> None:
        self.how = how

    def generate(self, question, passages, ctx):
        if self.how == "not a draft":
            return "an answer"
        return Draft("答案 [9]", [Quote(len(passages) + 1, 0, 3)], abstained=False)


@pytest.mark.parametrize(("how", "error", "message"), [
    ("not a draft", TypeError, "generator 'broken' returned a str, not a rag.generation.Draft"),
    ("quote out of range", ValueError, r"generator 'broken' quoted Quote\(n=6, start=0, end=3\), outside the 5 passages"),
])
def test_a_generator_that_breaks_the_protocol_is_an_error_not_an_answer(seed_rag, how, error, message):
    with pytest.raises(error, match=message):
        seed_rag.ask(QUESTION, generator=Broken(how), top_k=5)


@pytest.mark.slow
def test_specs_resolve_to_their_kind_once(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # ChatOpenAI wants one to be built; nothing is sent
    from langchain_openai import ChatOpenAI

    gens = Generators("openai:test-model", Settings(llm_retries=0))
    assert gens.get() is gens.default and isinstance(gens.default, LLMGenerator) and gens.default.name == "openai:test-model"
    assert gens.get(" openai:test-model ") is gens.default  # a model is set up once per spec
    assert isinstance(gens.get("extractive"), ExtractiveGenerator) and gens.get("extractive") is gens.extractive
    model = ChatOpenAI(model="m", api_key="k", base_url="http://127.0.0.1:9/v1")
    wrapped = gens.get(model)
    assert isinstance(wrapped, LLMGenerator) and wrapped.model is model and wrapped.name == "ChatOpenAI"
    own = FirstSentence()
    assert gens.get(own) is own
    with pytest.raises(ConfigError, match="llamacpp: expects a GGUF model file"):  # the llamacpp branch, not init_chat_model
        gens.get(f"llamacpp:{tmp_path / 'none.gguf'}")
