"""Ruled tables in a PDF's text layer: one unit per row with the table's title, its column headers
(merged cells resolved) and ``table``/``row``/``page`` in the meta, in place of the table's lines;
a PDF without such a table reads exactly as its text layer."""

from __future__ import annotations

import pytest
from loaded import load, unit_rows
from pdfs import make_pdf

from rag import RAG

pytest.importorskip("pdfplumber")


def revenue_pdf(path) -> None:
    """Page 1 prose; page 2 a title line, a ruled table (季度 merged down two header rows, 营收（万元）
    across 产品 and 服务) and a closing line."""
    pytest.importorskip("reportlab")
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    style = ParagraphStyle("zh", fontName="STSong-Light", fontSize=12, leading=18)
    table = Table([["季度", "营收（万元）", ""], ["", "产品", "服务"], ["2023年一季度", "1180", "45"],
                   ["2023年二季度", "1234", "56"], ["2023年三季度", "1302", "61"]])
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), "STSong-Light"), ("GRID", (0, 0), (-1, -1), 0.5, "black"),
                               ("SPAN", (1, 0), (2, 0)), ("SPAN", (0, 0), (0, 1))]))
    SimpleDocTemplate(str(path), pagesize=A4).build([
        Paragraph("星沙科技有限公司二〇二三年经营情况说明，本页没有表格。", style), PageBreak(),
        Paragraph("公司各季度经营情况如下。", style), Paragraph("表1 季度营收", style), table,
        Paragraph("以上数据未经审计。", style)])


def test_pdf_table_rows_are_units_with_headers_title_and_page(tmp_path):
    revenue_pdf(tmp_path / "r.pdf")
    doc = load(tmp_path, "营收.pdf", (tmp_path / "r.pdf").read_bytes())
    assert unit_rows(doc) == [
        ("【表1 季度营收 · 第3行】\n季度：2023年一季度 | 营收（万元）/产品：1180 | 营收（万元）/服务：45", "表1 季度营收",
         {"table": 1, "page": 2, "row": 3}),
        ("【表1 季度营收 · 第4行】\n季度：2023年二季度 | 营收（万元）/产品：1234 | 营收（万元）/服务：56", "表1 季度营收",
         {"table": 1, "page": 2, "row": 4}),
        ("【表1 季度营收 · 第5行】\n季度：2023年三季度 | 营收（万元）/产品：1302 | 营收（万元）/服务：61", "表1 季度营收",
         {"table": 1, "page": 2, "row": 5}),
    ]
    page1, page2 = doc.text.split("\f")
    assert page1 == "星沙科技有限公司二〇二三年经营情况说明，本页没有表格。"
    # the table's own lines (a cell a line, as pypdf reads them) are gone; the rest of the page stays
    assert page2.startswith("公司各季度经营情况如下。\n表1 季度营收\n\n【表1 季度营收 · 第3行】")
    assert page2.endswith("营收（万元）/服务：61\n\n以上数据未经审计。")
    assert "\n1234\n" not in page2 and doc.encoding == "pdf"


def test_pdf_without_ruled_tables_reads_as_its_text_layer(tmp_path):
    from pypdf import PdfReader

    lines = [f"第{i}项 {i * 3}" for i in range(1, 13)]  # short lines and columns, but no ruling: no table
    make_pdf(tmp_path / "n.pdf", [["岳麓区年度报告", "正文第一段。"], lines, ["完。"]])
    raw = (tmp_path / "n.pdf").read_bytes()
    doc = load(tmp_path, "n.pdf", raw)
    assert doc.text == "\f".join((p.extract_text() or "").strip() for p in PdfReader(tmp_path / "n.pdf").pages)
    assert doc.units == () and "第12项 36" in doc.text


def test_pdf_tables_pages_are_bounded(tmp_path, monkeypatch):
    """Only pages whose text looks tabular are looked at, at most MAX_TABLE_PAGES of them."""
    from rag.ingest import pdf_tables

    revenue_pdf(tmp_path / "r.pdf")
    raw = (tmp_path / "r.pdf").read_bytes()
    assert not pdf_tables.looks_tabular("星沙科技有限公司二〇二三年经营情况说明，本页没有表格。")
    monkeypatch.setattr(pdf_tables, "MAX_TABLE_PAGES", 0)
    assert load(tmp_path, "a.pdf", raw).units == ()


@pytest.mark.slow
def test_quarter_revenue_is_answered_from_its_row_citing_page_and_row(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    revenue_pdf(folder / "营收.pdf")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([folder])
    a = rag.ask("2023年二季度的营收是多少")
    assert not a.abstained and "1234" in a.answer, a.answer
    c = a.citations[0]
    assert c.doc_id == "营收.pdf" and c.page == 2 and c.unit == {"table": 1, "row": 4}, c
    assert "营收（万元）/产品：1234" in c.quote and "2023年二季度" in c.quote, c.quote
