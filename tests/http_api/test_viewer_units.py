"""The viewer's header names the unit of the chunk holding the cited position (sheet and row, slide ...),
and the stored file of every format made of units is served with its media type."""

from __future__ import annotations

import html

from loaded import load
from office_files import slides_pptx
from sheets import revenue_xlsx

from rag.http.viewer import MEDIA_TYPES, Source, place_of, render_view, view_range
from rag.ingest.chunking import ChunkSettings, chunk_source
from rag.ingest.readers import UNIT_SUFFIXES


def _page(tmp_path, name: str, raw: bytes, quote: str) -> tuple[str, dict]:
    doc = load(tmp_path, name, raw)
    chunks = chunk_source(doc.doc_id, doc.text, ChunkSettings(), doc.units)
    start = doc.text.index(quote)
    source = Source(doc.doc_id, doc.text, chunks, pdf=False, note=None)
    page = render_view(source, view_range(source, (start, start + len(quote)), None), None, uploaded=False)
    return html.unescape(page.split("</header>")[0]), place_of(chunks, start)


def test_the_header_names_the_cited_row_of_its_sheet(tmp_path):
    header, place = _page(tmp_path, "营收.xlsx", revenue_xlsx(), "营收（万元）/产品：1234")
    assert place["unit"] == {"sheet": "季度营收", "row": 5}
    assert '<div class="where">工作表 季度营收 · 第5行 (sheet 季度营收, row 5) · 引文 Cited' in header
    header, _ = _page(tmp_path, "营收.xlsx", revenue_xlsx(), "部门：研发部")
    assert "工作表 人员 · 第3行 (sheet 人员, row 3)" in header


def test_the_header_names_the_cited_slide(tmp_path):
    header, place = _page(tmp_path, "计划.pptx", slides_pptx(), "东校区 | 8600")
    assert place["unit"] == {"slide": 2} and "第2张幻灯片 (slide 2)" in header and "<h1>各校区学生人数</h1>" in header


def test_prose_has_no_unit_in_its_header(tmp_path):
    header, place = _page(tmp_path, "记.txt", "岳麓山在长沙。\n".encode(), "岳麓山")
    assert place["unit"] is None and '<div class="where">引文 Cited' in header


def test_every_format_made_of_units_has_a_media_type():
    assert not [s for s in UNIT_SUFFIXES | {".txt", ".pdf"} if s not in MEDIA_TYPES]
    assert MEDIA_TYPES[".csv"] == "text/csv" and MEDIA_TYPES[".epub"] == "application/epub+zip"
