"""Traditional folded to simplified, one character for one: matching and BM25 terms see one script."""

from __future__ import annotations

import json

from conftest import SHARED_DATA, shared_data

from rag.text.normalize import content_words, fold_script, index_terms, normalize_for_match, segment, words

MIXED = "臺灣的國家圖書館 has 400萬冊藏書；实验室和實驗室，ＡＢＣ 123。"


def test_fold_script_on_mixed_text_keeps_length_and_everything_but_traditional():
    folded = fold_script(MIXED)
    assert folded == "台湾的国家图书馆 has 400万册藏书；实验室和实验室，ＡＢＣ 123。"
    assert len(folded) == len(MIXED)  # offsets map 1:1
    assert fold_script(folded) == folded  # folding twice changes nothing more
    assert fold_script("") == ""


def test_phrases_outrank_characters_without_changing_length():
    assert fold_script("都市計畫") == "都市计划"  # a phrase entry, not 计画
    assert fold_script("乾隆年間") == "乾隆年间"  # 乾 is 干 only outside the phrase
    assert fold_script("乾隆") == fold_script(fold_script("乾隆"))
    assert fold_script("瞭解") == "了解"


def test_a_character_outside_the_basic_plane_counts_as_one():
    text = "㑮𠀀臺"  # U+3468 maps to a character outside the BMP
    assert len(fold_script(text)) == len(text) and fold_script(text)[-1] == "台"


def test_matching_and_terms_are_the_same_in_either_script():
    trad, simp = "實驗室的解決率提高了。", "实验室的解决率提高了。"
    assert normalize_for_match(trad) == normalize_for_match(simp) == "实验室的解决率提高了。"
    assert normalize_for_match(" 臺北 ") == "台北"
    assert index_terms(trad) == index_terms(simp)
    assert words("國家圖書館") == words("国家图书馆")
    assert content_words("國家圖書館有多少冊書？") == content_words("国家图书馆有多少册书？")


def test_segment_stays_in_the_texts_own_script():
    pieces = segment("國家圖書館")
    assert "".join(pieces) == "國家圖書館"  # pieces of the text itself, for offsets


def test_drcd_paragraphs_fold_to_their_length():
    data = json.loads(shared_data("drcd-dev.json").read_text(encoding="utf-8"))
    paragraphs = [p["context"] for a in data["data"][:20] for p in a["paragraphs"]]
    for text in paragraphs:
        folded = fold_script(text)
        assert len(folded) == len(text)
        assert folded != text  # traditional text: something folds


def test_folding_skips_only_texts_it_would_leave_unchanged(seed_text):
    """The shortcut for text without any character folding can change gives what the full fold gives."""
    import random

    from rag.text import script

    folder = script._folder()

    def full(text: str) -> str:  # the fold without the shortcut
        out, pos = [], 0
        for m in folder.pattern.finditer(text):
            out += [text[pos : m.start()].translate(folder.table), folder.phrases[m.group()]]
            pos = m.end()
        return "".join([*out, text[pos:].translate(folder.table)])

    drcd = SHARED_DATA / "drcd-dev.json"
    traditional = json.loads(drcd.read_text(encoding="utf-8"))["data"][0]["paragraphs"][0]["context"] \
        if drcd.is_file() else "一目瞭然，反覆思量，臺灣的乾隆年間"
    phrases = "".join(list(folder.phrases)[:200])
    rng = random.Random(0)
    skipped = 0
    for _ in range(3000):
        source = rng.choice([seed_text, traditional, phrases, seed_text + traditional])
        start = rng.randrange(len(source))
        text = source[start : start + rng.randint(0, 160)]
        skipped += folder.changing.isdisjoint(text)
        assert folder.fold(text) == full(text), text
    assert 100 < skipped < 2900  # both paths were taken
