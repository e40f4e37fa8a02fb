"""Citation markers in generated answers: parsed, mapped to their passages and checked (rag.generation.citations)."""

from __future__ import annotations

import pytest

from rag.generation.citations import check, marker_numbers
from rag.types import Chunk, Passage


def _passages(*texts: str) -> list[Passage]:
    return [Passage(Chunk(f"c{i}", "d.txt", t, 0, len(t)), 1.0, i) for i, t in enumerate(texts, 1)]


def test_marker_numbers_read_lists_and_ranges():
    assert marker_numbers("1, 2") == [1, 2] and marker_numbers("1-3") == [1, 2, 3] and marker_numbers("2，4") == [2, 4]
    assert marker_numbers("1、3") == [1, 3] and marker_numbers("3-1") == []  # a range backwards is no range


def test_markers_of_every_bracket_map_to_their_passages():
    ps = _passages("甲地有3座桥。", "乙地有河。")
    checked = check("甲地有3座桥【1】。乙地有河［2］。丙地有山[1, 2]。", ps)
    assert [c.n for c in checked.citations] == [1, 2, 1, 2]
    assert [c.chunk_id for c in checked.citations] == ["c1", "c2", "c1", "c2"]
    assert checked.out_of_range == [] and any("丙地有山" in w for w in checked.warnings)


@pytest.mark.parametrize("answer", ["甲地有3座桥。[1]乙地有河。[2]", "甲地有3座桥。 [1] 乙地有河。 [2]",
                                    "甲地有3座桥。\n[1]\n乙地有河。\n[2]", "甲地有3座桥[1]。乙地有河[2]。"])
def test_a_marker_after_the_full_stop_cites_the_sentence_before_it_only(answer):
    ps = _passages("甲地有3座桥。", "乙地有河。")
    checked = check(answer, ps)
    assert [(c.n, c.quote) for c in checked.citations] == [(1, "甲地有3座桥。"), (2, "乙地有河。")]
    assert checked.warnings == [] and checked.support == 1.0


def test_out_of_range_markers_and_numbers_in_no_passage_are_reported():
    ps = _passages("甲地有3座桥。")
    checked = check("甲地有5座桥[1]。乙地有河[7]。", ps)
    assert checked.out_of_range == [7]
    assert "the number 5 in the answer occurs in no cited passage" in checked.warnings
    assert any(w.startswith("citation number(s) 7 point at no retrieved passage (1-1)") for w in checked.warnings)
