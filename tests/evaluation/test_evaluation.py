"""Metric functions on hand-made cases, question-set parsing with line numbers, the report and the comparison.

What the `rag eval` command adds on top (printing, --out, --compare, --judge over HTTP) is in test_eval_cli.py.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from rag.evaluation import DatasetError, EvalReport, load_dataset
from rag.evaluation.metrics import char_f1, evaluate_row, fact_found, relevant, summarize
from rag.types import Answer, Chunk, Citation, Passage


def test_fact_split_across_a_line_break_and_full_width_digits():
    assert fact_found(["南洞艺谷"], "打造南洞艺\n\n谷景区")
    assert fact_found(["3000", "3,000"], "年拍摄微短剧可达３０００部")
    assert not fact_found(["224"], "高新技术企业22家")


def test_char_f1():
    assert char_f1("270度", "270度") == 1.0
    assert char_f1("", "x") == 0.0
    assert 0 < char_f1("正在包饺子", "正在包饺子，手上全是面粉") < 1


def _answer(text, abstained, passages_text, cite=(1,)):
    passages = [Passage(Chunk(f"c{i}", "doc.txt", t, 0, len(t)), 1.0 / i, i) for i, t in enumerate(passages_text, 1)]
    cites = [Citation(n, "doc.txt", f"c{n}", text, 0, 1) for n in cite] if not abstained else []
    return Answer("q", text, abstained, cites, passages, {})


def _row(**kw):
    from rag.evaluation.dataset import Row

    base = dict(id="x", question="q", answer="47天", key_facts=[["47天"]], gold_docs=[], topic="t", line=1)
    return Row(**{**base, **kw})


def test_an_abstention_on_an_answerable_row_is_wrong_even_if_retrieval_hit():
    r = evaluate_row(_row(), _answer("资料中没有找到相关信息。", True, ["仅用时47天"]), 10.0)
    assert r["first_relevant_rank"] == 1 and r["correct"] is False
    assert "abstained on an answerable question" in r["reasons"]


def test_correct_answer_with_precise_citation():
    r = evaluate_row(_row(), _answer("仅用时47天 [2]", False, ["无关", "仅用时47天"], cite=(2,)), 5.0)
    assert r["correct"] and r["first_relevant_rank"] == 2 and r["citation_precise"] == [True] and r["passed"]
    s = summarize([r], k=5)
    assert s["retrieval"]["hit@1"] == 0.0 and s["retrieval"]["hit@k"] == 1.0 and s["retrieval"]["mrr"] == 0.5
    assert s["answer"]["accuracy"] == 1.0 and s["citation"]["validity"] == 1.0


def test_unanswerable_rows_count_for_abstention_only():
    r = evaluate_row(_row(answer=None, key_facts=[]), _answer("资料中没有找到相关信息。", True, ["x"]), 1.0)
    s = summarize([r], k=5)
    assert s["abstention"]["unanswerable_abstained"] == 1.0 and s["retrieval"]["hit@1"] is None


def test_malformed_rows_are_reported_with_line_numbers(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text("\n".join([
        json.dumps({"id": "a", "question": "好问题？", "answer": "是", "key_facts": [["是"]]}),
        "{broken json",
        json.dumps({"id": "b", "answer": "no question"}),
        json.dumps({"id": "c", "question": "事实格式错", "key_facts": "47天"}),
    ]), encoding="utf-8")
    ds = load_dataset(p)
    assert [r.id for r in ds.rows] == ["a"]
    assert [e.split(":")[0] for e in ds.errors] == ["q.jsonl line 2", "q.jsonl line 3", "q.jsonl line 4"]
    with pytest.raises(DatasetError, match="line 2"):
        load_dataset(p, strict=True)


def test_csv_and_missing_files(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('id,question,answer,key_facts\na,多少天？,47天,"[[""47天""]]"\n', encoding="utf-8")
    assert load_dataset(p).rows[0].key_facts == [["47天"]]
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "none.jsonl")


# ---- precise metric definitions (see the module docstring of rag.evaluation.metrics) -------------


def test_a_citation_marker_is_not_a_stated_fact():
    r = evaluate_row(_row(key_facts=[["1"]], answer="1"), _answer("没有这个数 [1]", False, ["x"]), 1.0)
    assert r["facts_found"] == [False] and r["correct"] is False


def test_citation_validity_needs_the_passage_it_names():
    passages = [Passage(Chunk("c1", "doc.txt", "仅用时47天", 0, 6), 1.0, 1)]

    def answer(text: str, n: int, chunk_id: str) -> Answer:
        return Answer("q", text, False, [Citation(n, "doc.txt", chunk_id, "仅用时47天", 0, 6)], passages, {})

    out_of_range = answer("仅用时47天 [3]", 3, "c3")
    wrong_chunk = answer("仅用时47天 [1]", 1, "other")
    dangling = answer("仅用时47天 [1][7]", 1, "c1")
    assert evaluate_row(_row(), out_of_range, 1.0)["citation_valid"] == [False]
    assert evaluate_row(_row(), wrong_chunk, 1.0)["citation_valid"] == [False]
    r = evaluate_row(_row(), dangling, 1.0)
    assert r["citation_valid"] == [True, False] and r["citation_precise"] == [True]
    assert any("[7]" in x for x in r["reasons"]) and not r["passed"]
    s = summarize([r], k=5)["citation"]
    assert s == {"n": 2, "validity": 0.5, "precision": 0.5}  # the invalid marker is imprecise too


def test_citation_precision_needs_a_stated_fact_in_the_cited_passage():
    # right answer, but it cites the passage that does not hold the fact
    r = evaluate_row(_row(), _answer("仅用时47天 [1]", False, ["无关", "仅用时47天"], cite=(1,)), 1.0)
    assert r["correct"] and r["citation_valid"] == [True] and r["citation_precise"] == [False]
    # an answer to an unanswerable question is never precisely cited
    r = evaluate_row(_row(answer=None, key_facts=[]), _answer("胡说 [1]", False, ["胡说"]), 1.0)
    assert r["citation_precise"] == [False] and r["reasons"] == ["answered an unanswerable question"]


def test_citation_supports_without_key_facts():
    from rag.evaluation.metrics import citation_supports

    gold = _row(key_facts=[], gold_docs=["a.txt"])
    assert citation_supports(gold, [], "a.txt", "x") and not citation_supports(gold, [], "b.txt", "x")
    ref_only = _row(key_facts=[], answer="南洞艺谷")
    assert citation_supports(ref_only, [], "b.txt", "打造南洞艺\n谷景区")


def test_relevance_is_one_passage_recall_is_all_k():
    from rag.evaluation.metrics import retrieval_recall

    row = _row(key_facts=[["47天"], ["60多个"]])
    r = evaluate_row(row, _answer("47天，60多个 [1]", False, ["用时47天", "60多个实景棚"]), 1.0)
    assert r["first_relevant_rank"] is None and r["retrieval_recall"] == 1.0  # split over two passages
    s = summarize([r], k=2)["retrieval"]
    assert s["hit@k"] == 0.0 and s["mrr"] == 0.0 and s["recall@k"] == 1.0
    gold = _row(gold_docs=["a.txt", "b.txt"])
    assert retrieval_recall(gold, [("a.txt", ""), ("c.txt", "")]) == 0.5
    assert relevant(gold, "b.txt", "无关") and not relevant(_row(), "doc.txt", "无关")


def test_reference_only_rows_score_char_f1_and_containment():
    row = _row(key_facts=[], answer="南洞艺谷景区")
    r = evaluate_row(row, _answer("打造了南洞艺谷景区 [1]", False, ["南洞艺谷"]), 1.0)
    assert r["contains_reference"] and 0.5 < r["char_f1"] < 1 and r["correct"] is None
    a = summarize([r], k=5)["answer"]
    assert a["accuracy"] is None and a["containment"] == 1.0 and a["n"] == 0


def test_abstention_rates_and_latency_percentiles():
    rows = [
        evaluate_row(_row(id="u1", answer=None, key_facts=[]), _answer("资料中没有找到相关信息。", True, ["x"]), 10.0),
        evaluate_row(_row(id="u2", answer=None, key_facts=[]), _answer("乱答 [1]", False, ["x"]), 20.0),
        evaluate_row(_row(id="a1"), _answer("资料中没有找到相关信息。", True, ["仅用时47天"]), 30.0),
        evaluate_row(_row(id="a2"), _answer("仅用时47天 [1]", False, ["仅用时47天"]), 40.0),
    ]
    s = summarize(rows, k=1)
    assert s["abstention"]["unanswerable_abstained"] == 0.5 and s["abstention"]["answerable_abstained"] == 0.5
    assert s["latency_ms"] == {"p50": 25.0, "p95": 38.5}  # numpy's linear interpolation
    assert s["passed"] == 0.5 and set(s["by_topic"]) == {"t"}


def test_dicts_are_a_dataset_too():
    from rag.evaluation import dataset_from_dicts

    ds = dataset_from_dicts([{"question": "多少天？", "key_facts": [["47天"]]}, {"answer": "no question"}])
    assert [r.id for r in ds.rows] == ["line-1"] and ds.errors == ["rows line 2: missing or empty 'question'"]


def test_generator_is_passed_only_to_an_ask_that_takes_it():
    from rag.evaluation.run import accepts_keyword

    def old_ask(question, *, top_k=None, retrieval=None): ...
    def new_ask(question, *, top_k=None, retrieval=None, generator=None): ...
    def open_ask(question, **options): ...
    assert not accepts_keyword(old_ask, "generator")
    assert accepts_keyword(new_ask, "generator") and accepts_keyword(open_ask, "generator")


# ---- the LLM judge's parsing and prompt (no model needed) ----------------------------------------


def test_judge_verdicts_are_parsed_strictly():
    from rag.evaluation.judge import parse_verdict

    plain = '{"correct": 1, "faithful": 0, "reason": "ok"}'
    assert parse_verdict(plain) == {"correct": 1, "faithful": 0, "reason": "ok"}
    fenced = '```json\n{"correct": true, "faithful": "1", "reason": "对"}\n```'
    assert parse_verdict(fenced) == {"correct": 1, "faithful": 1, "reason": "对"}
    bad_replies = ("garbage", '{"correct": 2, "faithful": 1}', '{"correct": 1}', "{not json}",
                   '{"correct": "yes", "faithful": 1}', "[1, 1]")
    for bad in bad_replies:
        with pytest.raises((ValueError, TypeError)):
            parse_verdict(bad)


def test_judge_prompt_holds_the_cited_passages_only():
    from rag.evaluation.judge import build_prompt

    r = evaluate_row(_row(), _answer("仅用时47天 [2]", False, ["无关段落", "仅用时47天"], cite=(2,)), 1.0)
    prompt = build_prompt(r)
    assert prompt.startswith("Question:\nq\n") and "[2] (doc.txt) 仅用时47天" in prompt and "无关段落" not in prompt
    unanswerable = evaluate_row(_row(answer=None, key_facts=[]), _answer("乱答", False, ["x"], cite=()), 1.0)
    assert "(none)" in build_prompt(unanswerable) and "(no passage cited)" in build_prompt(unanswerable)


# ---- the report and the comparison, on hand-made runs ---------------------------------------------


HOSTILE = '<script>alert("x")</script>'


class _Page(HTMLParser):
    """What a browser makes of a page: its elements, their attributes, and the text between them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def _report(passed: dict[str, bool], extra=()) -> EvalReport:
    results = []
    for rid, ok in passed.items():
        text = "仅用时47天 [1]" if ok else "资料中没有找到相关信息。"
        row = _row(id=rid, question=f"<script>alert('{rid}')</script>多少天？")
        results.append(evaluate_row(row, _answer(text, not ok, ["仅用时47天" if ok else "<b>无关</b>"]), 12.5))
    results += extra
    return EvalReport(summarize(results, k=5), results, ["q.jsonl line 9: not valid JSON"])


def test_report_html_is_escaped_and_self_contained(tmp_path):
    """Every text from the data is text in the page: a question, answer, reference, topic or id holding
    ``<script>``, ``"`` or a tag never becomes an element or an attribute (here, and for `rag eval --out`)."""
    evil_id = 'c" onclick="alert(1)'
    wrong = evaluate_row(_row(id=evil_id, question=f"{HOSTILE}多少天？", answer=f'{HOSTILE}"47天"', topic='<i>"evil"</i>'),
                         _answer(f'{HOSTILE} "60天" [1]', False, ['<b>无关</b> "引号"']), 3.0)
    report = _report({"a": True, "b": False}, [wrong])
    paths = report.write(tmp_path)
    assert [p.name for p in paths] == ["summary.json", "results.jsonl", "report.html"]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    page = _Page(html)
    assert "<script" not in html.lower() and {"script", "i", "link", "img", "iframe"}.isdisjoint(page.tags)
    assert not any(name.startswith("on") or name == "src" for name, _ in page.attrs)
    assert ("id", f"q-{evil_id}") in page.attrs and ("href", f"#q-{evil_id}") in page.attrs  # the id, whole, in its attribute
    texts = set(page.text)
    assert {f"{HOSTILE}多少天？", f'{HOSTILE} "60天" [1]', f'{HOSTILE}"47天"', '<i>"evil"</i>', '<b>无关</b> "引号"',
            "<script>alert('b')</script>多少天？"} <= texts
    assert 'id=failed' in html and 'id="q-b"' in html and 'id="q-a"' not in html  # only failures in detail
    assert "abstained on an answerable question" in html and "missing facts: 47天" in html and "not relevant" in html
    assert html.count("<svg") == 2 and "url(" not in html  # no external stylesheet, font or image
    assert "q.jsonl line 9" in html
    assert [r["id"] for r in report.failed] == ["b", evil_id]
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8")) == report.summary
    assert len((tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def test_compare_lists_flipped_questions(tmp_path):
    from rag.evaluation import compare_runs, format_comparison

    _report({"x": True, "y": False, "z": True, "only-a": True}).write(tmp_path / "a")
    _report({"x": False, "y": True, "z": True, "only-b": False}).write(tmp_path / "b")
    cmp = compare_runs(tmp_path / "a", tmp_path / "b")
    assert [f["id"] for f in cmp["passed_in_a_failed_in_b"]] == ["x"]
    assert [f["id"] for f in cmp["failed_in_a_passed_in_b"]] == ["y"]
    assert cmp["only_in_a"] == ["only-a"] and cmp["only_in_b"] == ["only-b"]
    passed = next(m for m in cmp["metrics"] if m["metric"] == "passed")
    assert passed == {"metric": "passed", "a": 0.75, "b": 0.5, "delta": -0.25}
    text = format_comparison(cmp)
    assert text.splitlines()[3].split() == ["metric", "A", "B", "delta"] and "\nretrieval.hit@k " in text
    assert "passed in A, failed in B (1):\n  x  " in text and "failed in A, passed in B (1):\n  y  " in text
    assert "only in A (1): only-a" in text and "only in B (1): only-b" in text


# ---- evaluate() on the real pipeline --------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_on_the_seed_index(seed_index):
    from rag import RAG
    from rag.errors import ConfigError
    from rag.evaluation import evaluate

    rag = RAG.open(seed_index, progress=False, max_question_chars=40)
    rows = [{"id": "long", "question": "蓝风微短剧基地" * 10, "key_facts": [["270度"]]},
            {"id": "ok", "question": "蓝风微短剧基地支持多少度的全景拍摄？", "key_facts": [["270度"]]}]
    report = evaluate(rag, rows, top_k=3)
    assert isinstance(report, EvalReport) and report.summary["n"] == 2
    long, ok = report.results
    assert long["error"].startswith("question is") and long["reasons"][0].startswith("error: ") and not long["passed"]
    assert ok["passed"] and ok["retrieved"][ok["first_relevant_rank"] - 1]["relevant"]
    assert report.summary["run"]["top_k"] == 3 and report.summary["retrieval"]["k"] == 3
    with pytest.raises(ConfigError, match="question is"):  # every question failing is a setting problem
        evaluate(rag, rows[:1])
    with pytest.raises(ConfigError, match="top_k"):
        evaluate(rag, rows, top_k=0)
