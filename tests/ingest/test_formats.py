"""Documents as people have them: PDF with pages, DOCX with headings, web pages, Markdown — made in the test."""

from __future__ import annotations

import pytest
from pdfs import make_pdf

from rag import RAG
from rag.errors import LoaderError
from rag.ingest.files import SourceFile, load_file


def _docx(path):
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_heading("岳麓区年度工作报告", level=1)
    d.add_heading("交通建设", level=2)
    d.add_paragraph("地铁六号线西延线于今年十月建成通车，全长十二公里。")
    d.add_heading("教育发展", level=2)
    d.add_paragraph("全区新建改扩建中小学校九所，新增学位一万二千个。")
    d.save(str(path))


def test_pdf_pages_are_kept_for_citations(tmp_path):
    pdf = tmp_path / "report.pdf"
    make_pdf(pdf, [["第一页：长沙市岳麓区概况。", "岳麓山海拔三百米。"], ["第二页：橘子洲大桥全长一千二百五十米。"]])
    doc = load_file(SourceFile(pdf, "report.pdf"))
    assert "\f" in doc.text and "橘子洲大桥" in doc.text
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(pdf)
    a = rag.ask("橘子洲大桥全长多少米？")
    assert not a.abstained and "一千二百五十米" in a.answer
    assert a.citations[0].page == 2 and a.passages[0].to_dict(1)["meta"]["page"] in (1, 2)


@pytest.mark.slow
def test_docx_headings_become_article_and_sections(tmp_path):
    path = tmp_path / "report.docx"
    _docx(path)
    text = load_file(SourceFile(path, "report.docx")).text
    assert text.startswith("# 岳麓区年度工作报告") and "## 交通建设" in text
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(path)
    a = rag.ask("全区新建改扩建了多少所中小学校？")
    assert not a.abstained and "九所" in a.answer
    c = a.citations[0]
    assert c.article == "岳麓区年度工作报告" and c.section == "教育发展"


def test_html_main_text_without_menus_and_scripts(tmp_path):
    page = tmp_path / "news.html"
    page.write_text(
        "<html><head><title>新闻</title><script>var x='不要这个';</script></head><body>"
        "<nav><a href='/'>首页</a><a href='/a'>关于我们</a></nav>"
        "<article><h1>湘江新区发布人才新政</h1><p>湘江新区今天发布人才新政二十条，"
        "对新引进的博士给予每人三十万元安家补贴。</p><p>新政自下月起实施，有效期三年。</p></article>"
        "<footer>版权所有 联系我们</footer></body></html>", encoding="utf-8")
    text = load_file(SourceFile(page, "news.html")).text
    assert "三十万元安家补贴" in text and "不要这个" not in text and "关于我们" not in text


def test_markdown_keeps_headings(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("# 天心阁\n\n## 历史\n\n天心阁始建于明代，是长沙古城墙的一部分。\n", encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(md)
    a = rag.ask("天心阁始建于什么朝代？")
    assert not a.abstained and a.citations[0].article == "天心阁" and a.citations[0].section == "历史"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.pdf", b"%PDF-1.4 garbage that is not a pdf", "PDF"),
    ("bad.docx", b"PK\x03\x04 not really a zip", "DOCX"),
])
def test_damaged_files_are_clear_errors(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(LoaderError, match=f"{name}: .*{message}"):
        load_file(SourceFile(p, name))


