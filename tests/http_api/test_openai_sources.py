"""What chat apps get from ``/v1``: source lines that link to the cited place (absolute URLs), ``usage``
counted with tiktoken, several knowledge bases in one model id; asked with the official ``openai`` client."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import openai
import pytest
from servers import serving

from rag import RAG
from rag.bases import KnowledgeBases
from rag.text.tokens import count_tokens

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
KITE_Q = "紫藤镇风筝节今年吸引了多少游客？"


@pytest.fixture(scope="module")
def served(index_copy, tmp_path_factory):
    from rag.http.app import create_api
    from rag.http.guard import loopback_hosts

    docs = tmp_path_factory.mktemp("kites")
    (docs / "风筝节 (草稿).txt").write_text("紫藤镇风筝节于每年四月十八日举行，今年吸引游客两万三千人。", encoding="utf-8")
    rag = RAG.open(index_copy, progress=False)
    bases = KnowledgeBases(rag, tmp_path_factory.mktemp("kbs"), RAG.open)
    bases.create("kites").index([docs])
    with serving(create_api(rag, bases=bases, allowed_hosts=loopback_hosts("127.0.0.1", []))) as url:
        yield url


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)


def _links(text: str) -> list[str]:
    return [part[1:].split(")", 1)[0] for part in text.split("([原文 view]")[1:]]  # "(URL))": no ")" in the URL


@pytest.mark.slow
def test_each_source_links_to_its_cited_place_with_an_absolute_url(served):
    r = _client(served).chat.completions.create(model="rag", messages=[{"role": "user", "content": SEED_Q}])
    text, ref = r.choices[0].message.content, r.model_extra["references"][0]
    links = _links(text)
    assert links and links[0].startswith(f"{served}/view?") and links[0].endswith("#cited")
    query = parse_qs(urlsplit(links[0]).query)
    assert query["doc"] == [ref["doc_id"]] and query["start"] == [str(ref["start"])] and query["end"] == [str(ref["end"])]


@pytest.mark.slow
def test_usage_is_counted_with_tiktoken(served):
    messages = [{"role": "system", "content": "你是助手"}, {"role": "user", "content": SEED_Q}]
    r = _client(served).chat.completions.create(model="rag", messages=messages)
    assert r.usage.prompt_tokens == count_tokens("你是助手") + count_tokens(SEED_Q)
    assert r.usage.completion_tokens == count_tokens(r.choices[0].message.content) > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.slow
def test_a_stream_ends_with_usage_when_asked(served):
    stream = _client(served).chat.completions.create(model="rag", messages=[{"role": "user", "content": SEED_Q}],
                                                     stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == count_tokens(text)
    assert _links(text)
    plain = list(_client(served).chat.completions.create(model="rag", messages=[{"role": "user", "content": SEED_Q}],
                                                         stream=True))
    assert all(c.usage is None for c in plain)  # only when asked, as OpenAI does


@pytest.mark.slow
def test_one_model_id_may_name_several_bases(served):
    client = _client(served)
    r = client.chat.completions.create(model="rag,kb:kites", messages=[{"role": "user", "content": KITE_Q}])
    ref = r.model_extra["references"][0]
    assert ref["kb"] == "kites" and "两万三千" in r.choices[0].message.content
    link = _links(r.choices[0].message.content)[0]
    assert parse_qs(urlsplit(link).query)["kb"] == ["kites"]
    assert "(" not in link and " " not in link  # the file name's parentheses and spaces are percent-encoded
    with pytest.raises(openai.NotFoundError, match="kb:nope"):
        client.chat.completions.create(model="rag,kb:nope", messages=[{"role": "user", "content": KITE_Q}])
    with pytest.raises(openai.BadRequestError, match="at most"):
        client.chat.completions.create(model=",".join(["rag"] * 9), messages=[{"role": "user", "content": KITE_Q}])


@pytest.mark.slow
def test_the_public_url_setting_makes_the_links(index_copy):
    from rag.http.app import create_api
    from rag.http.guard import loopback_hosts

    rag = RAG.open(index_copy, progress=False, public_url="https://rag.example.org/kb")
    with serving(create_api(rag, allowed_hosts=loopback_hosts("127.0.0.1", []))) as url:
        r = _client(url).chat.completions.create(model="rag", messages=[{"role": "user", "content": SEED_Q}])
    assert _links(r.choices[0].message.content)[0].startswith("https://rag.example.org/kb/view?doc=")
