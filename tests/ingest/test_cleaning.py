"""Layout repair on the seed page, each case on its own, and the clean→source offset map."""

from __future__ import annotations

import pytest

from rag.ingest.cleaning import clean

SEED_JOINS = [("南洞艺", "谷景区"), ("中图", "通"), ("助", "力"), ("执政", "理念"), ("我", "小儿子"), ("绿色算力", "新标杆")]


@pytest.fixture(scope="module")
def cleaned(seed_text):
    return clean(seed_text)


@pytest.mark.parametrize(("left", "right"), SEED_JOINS)
def test_words_cut_by_the_layout_are_joined(seed_text, cleaned, left, right):
    assert left + "\n\n" + right in seed_text  # the damage is really in the source
    assert left + right in cleaned.text


def test_exactly_the_six_layout_breaks_are_repaired(cleaned):
    assert len(cleaned.joins) == 6


def test_headings_are_not_glued_to_the_next_paragraph(cleaned):
    for heading in ("蓝风微短剧基地\n", "文化科技融合,激活产业新动能\n", "布局未来赛道,培育新质生产力\n", "数字潮涌产业兴 营商沃土育新机\n"):
        assert heading in cleaned.text


def test_page_markers_are_removed_and_remembered(seed_text, cleaned):
    assert "上接1版" not in cleaned.text
    assert len(cleaned.markers) == seed_text.count("《上接1版》") == 5
    assert all(seed_text[m : m + 6] == "《上接1版》" for m in cleaned.markers)


def test_articles_separated_by_a_marker_are_not_joined(cleaned):
    assert "新华社北京2月13日电\n中国式现代化" in cleaned.text
    assert len(cleaned.breaks) == 3  # three pieces continued from page 1


def test_repeated_paragraph_is_dropped(seed_text, cleaned):
    para = "言语之间,满是关怀;举手投足,饱含深情。"
    assert seed_text.count(para) == 2
    assert cleaned.text.count(para) == 1
    assert len(cleaned.dropped) == 1


def test_exact_repeat_and_inline_marker():
    src = "第一段内容很长很长很长很长很长很长很长很长。\n\n第一段内容很长很长很长很长很长很长很长很长。\n\n下文（下转第3版）继续。"
    c = clean(src)
    assert c.text == "第一段内容很长很长很长很长很长很长很长很长。\n下文继续。"
    assert c.markers == [src.index("（下转第3版）")]


def test_every_clean_character_maps_back_to_the_same_source_character(seed_text, cleaned):
    for i, ch in enumerate(cleaned.text):
        if not ch.isspace():
            assert seed_text[cleaned.offsets[i]] == ch, i


def test_english_words_cut_across_lines_keep_a_space():
    c = clean("This is a long English paragraph that was wrapped\nat a fixed width by the layout.")
    assert "wrapped at a fixed" in c.text


def test_whitespace_runs_are_tidied_and_mapped():
    src = "标题\n\n正文  有　多余   空格。"
    c = clean(src)
    assert c.text == "标题\n正文 有 多余 空格。"
    s, e = c.source_span(c.text.index("多余"), c.text.index("多余") + 2)
    assert src[s:e] == "多余"
