"""ui.feedback_ui: the record kept per answer, the hidden box, and what the thumbs and the send button store."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr
import pytest

from rag import RAG
from rag.feedback import read_feedback
from rag.feedback_export import export_rows
from ui.feedback_ui import build_feedback_box, handle_like, handle_send, record_of, wire_feedback

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"


@pytest.fixture
def kb(writable_index):
    return RAG.open(writable_index, progress=False)


@pytest.fixture
def kept(kb):
    """The chat's records state after one question: the assistant message is at index 1."""
    return {"1": record_of(kb.ask(SEED_Q), ["seeds"], {"top_k": 5, "retrieval": "hybrid"})}


def like(index, liked):
    return gr.LikeData(None, {"index": index, "value": ["…"], "liked": liked})


def resolver(kb, asked):
    def resolve(names):
        asked.append(names)
        return kb

    return resolve


@pytest.mark.slow
def test_record_of_keeps_what_an_evaluation_needs(kb):
    answer = kb.ask(SEED_Q)
    record = record_of(answer, ["seeds", "other"], {"top_k": 5})
    assert record["question"] == SEED_Q and record["answer"] == answer.answer and record["abstained"] is False
    assert record["chunk_ids"] == [p.chunk.chunk_id for p in answer.passages]
    assert record["doc_ids"] == [p.chunk.doc_id for p in answer.passages]
    assert record["cited_doc_ids"] == ["000_e58332798fe41e73.txt"]
    assert record["kbs"] == ["seeds", "other"]
    assert record["settings"] == {"generator": "extractive", "top_k": 5}
    follow_up = replace(answer, question="那它呢？", query=SEED_Q)  # a follow-up the pipeline rewrote
    assert record_of(follow_up, [], {})["question"] == SEED_Q


def test_the_box_is_hidden_bilingual_and_its_events_private(kb):
    with gr.Blocks() as demo:
        chatbot = gr.Chatbot()
        records = gr.State({})
        box = build_feedback_box()
        wire_feedback(chatbot, records, box, lambda names: kb)
    assert box.group.visible is False and box.group.elem_id == "rag-feedback"
    assert box.send.elem_id == "rag-feedback-send" and box.reason.max_length == 500
    assert box.correction.max_length == 2000
    assert box.not_in_documents.label == "Not in the documents"  # the page's language (ui.texts) relabels it
    from ui.texts import Labels

    zh = Labels("zh")
    with gr.Blocks():
        build_feedback_box(zh)
    assert [u.get("label") for u in zh.updates("zh")][:4] == ["评价", "理由（可选）", "正确答案（可选）", "文档中没有答案"]
    events = [f for f in demo.fns.values() if f.fn is not None]
    assert len(events) == 2 and {f.api_visibility for f in events} == {"private"}
    liked = next(f for f in events if f.collects_event_data)  # gradio saw the gr.LikeData parameter
    assert [t[1] for t in liked.targets] == ["like"]


@pytest.mark.slow
def test_a_thumbs_up_is_stored_at_once(kb, kept, capsys):
    asked = []
    out = handle_like(resolver(kb, asked), kept, like(1, True))
    assert out[0]["visible"] is False
    assert "your rating is stored" in capsys.readouterr().out  # gr.Info outside an event prints
    assert asked == [["seeds"]]
    [stored] = read_feedback(kb.index_dir)
    assert stored["rating"] == "up" and stored["question"] == SEED_Q


@pytest.mark.slow
def test_a_thumbs_down_is_stored_and_opens_the_box_whose_details_supersede_it(kb, kept):
    resolve = resolver(kb, [])
    group, title, rating, reason, correction, missing, status, target = handle_like(resolve, kept, like(1, False))
    assert group["visible"] is True and rating == "down" and target == "1"
    assert (reason, correction, missing) == ("", "", False)
    assert SEED_Q in title and "Stored" in status
    assert [r["rating"] for r in read_feedback(kb.index_dir)] == ["down"]
    group, status = handle_send(resolve, kept, target, "down", "  少了单位 ", "47天", False)
    assert group["visible"] is False and "feedback is stored" in status
    records = read_feedback(kb.index_dir)
    assert [(r["rating"], r["corrected_answer"], r["reason"]) for r in records] == [
        ("down", None, None), ("down", "47天", "少了单位")]
    rows, skipped = export_rows(records)
    assert [r["answer"] for r in rows] == ["47天"] and skipped["superseded"] == 1


@pytest.mark.slow
def test_the_box_refuses_an_empty_or_contradictory_submission(kb, kept):
    resolve = resolver(kb, [])
    group, status = handle_send(resolve, kept, "1", "down", " ", "", False)
    assert group["visible"] is True and "Give a reason" in status
    group, status = handle_send(resolve, kept, "1", "down", "", "47天", True)
    assert group["visible"] is True and "Not stored" in status and "not_in_documents" in status
    group, status = handle_send(resolve, kept, "1", "down", "x" * 501, "", False)
    assert "over the limit of 500" in status
    group, status = handle_send(resolve, kept, "9", "down", "why", "", False)
    assert "can no longer be rated" in status
    group, status = handle_send(resolve, kept, "1", "down", "<script>alert(1)</script>", "", True)
    assert group["visible"] is False
    assert read_feedback(kb.index_dir)[0]["reason"] == "<script>alert(1)</script>"  # stored as typed


@pytest.mark.slow
def test_errors_are_escaped_and_unknown_answers_or_a_taken_back_thumb_store_nothing(kb, kept):
    resolve = resolver(kb, [])
    assert handle_like(resolve, kept, like(1, ""))[0]["visible"] is False  # clicked again: taken back
    with pytest.warns(UserWarning, match="can no longer be rated"):
        handle_like(resolve, kept, like(7, True))
    bad = {"1": {**kept["1"], "question": "<b>问\x01</b>"}}
    out = handle_like(resolve, bad, like([1, 0], False))
    assert "&lt;b&gt;" in out[1] and "<b>" not in out[1] and "control character U+0001" in out[6]
    assert read_feedback(kb.index_dir) == []
