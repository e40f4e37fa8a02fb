"""DOCX read as Word shows it: body and tables in document order, headings by style or outline level,
revisions as accepted, a text box once."""

from __future__ import annotations

import io

import pytest
from docxs import make_docx, with_body

from rag.ingest.files import SourceFile, load_file


def docx_text(raw: bytes, name: str, tmp_path) -> str:
    path = tmp_path / name
    path.write_bytes(raw)
    return load_file(SourceFile(path, name)).text


def test_paragraphs_and_tables_come_in_document_order(tmp_path):
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("岳麓区年度报告", level=1)
    document.add_paragraph("下表列出各街道的人口。")
    table = document.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "街道", (0, 1): "人口", (1, 0): "望月湖", (1, 1): "三万"}.items():
        table.cell(r, c).text = text
    document.add_heading("交通", level=2)
    document.add_paragraph("地铁六号线西延线建成通车。")
    buf = io.BytesIO()
    document.save(buf)
    assert docx_text(buf.getvalue(), "report.docx", tmp_path) == (
        "# 岳麓区年度报告\n\n下表列出各街道的人口。\n\n【下表列出各街道的人口 · 第2行】\n街道：望月湖 | 人口：三万\n\n"
        "## 交通\n\n地铁六号线西延线建成通车。")  # the table's row a unit (tests/ingest/test_office_tables.py)


def test_revisions_outline_levels_and_text_boxes(tmp_path):
    box = ('<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:txbx><w:txbxContent>'
           '<w:p><w:r><w:t>图框里的说明</w:t></w:r></w:p></w:txbxContent></wps:txbx></w:drawing></mc:Choice>'
           '<mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>图框里的说明</w:t></w:r></w:p></w:txbxContent>'
           '</w:pict></mc:Fallback></mc:AlternateContent></w:r>')
    body = (
        '<w:p><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:r><w:t>自定义的二级标题</w:t></w:r></w:p>'
        '<w:p><w:r><w:t xml:space="preserve">新增学位 </w:t></w:r><w:del><w:r><w:delText>一万</w:delText></w:r></w:del>'
        '<w:ins><w:r><w:t>一万二千</w:t></w:r></w:ins><w:r><w:tab/><w:t>个</w:t></w:r></w:p>'
        f'<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>{box}<w:r><w:t>正文。</w:t></w:r></w:p>'
    )
    text = docx_text(with_body(make_docx("x"), body), "rev.docx", tmp_path)
    assert text == "## 自定义的二级标题\n\n新增学位 一万二千\t个\n\n图框里的说明\n\n正文。"
