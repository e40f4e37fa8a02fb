"""Follow-ups without an LLM: a question leaning on the previous turn is asked with it."""

from __future__ import annotations

import pytest

from rag.generation.followup import leans_on_history, with_history

FIRST = "习近平总书记2019年8月走进了谁的家？"


@pytest.mark.parametrize("question", ["他是哪个村的村民？", "她哪一年出生？", "该基地一年能拍多少部？", "这个园区有多少企业？",
                                      "那它呢？", "为什么？", "Where was he born?", "How long is it?"])
def test_a_question_leaning_on_the_last_turn_is_asked_with_it(question):
    assert leans_on_history(question)
    assert with_history(question, [("user", FIRST), ("assistant", "李应川")]) == f"{question} {FIRST}"


@pytest.mark.parametrize("question", ["蓝风微短剧基地一年能拍多少部微短剧？", "天心经开区有多少家高新技术企业？",
                                      "Who invented the telephone?"])
def test_a_standalone_question_is_asked_as_it_is(question):
    assert not leans_on_history(question)
    assert with_history(question, [("user", FIRST), ("assistant", "李应川")]) == question


def test_only_the_last_user_question_is_added_and_never_the_question_itself():
    turns = [("user", "第一个问题是什么？"), ("assistant", "答"), ("user", FIRST), ("assistant", "李应川")]
    assert with_history("他住在哪里？", turns) == f"他住在哪里？ {FIRST}"
    assert with_history("他住在哪里？", []) == "他住在哪里？"
    assert with_history("他住在哪里？", [("user", "他住在哪里？")]) == "他住在哪里？"
