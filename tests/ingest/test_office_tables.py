"""Tables in DOCX, HTML and Markdown: one unit per row, with the table's title, its column headers
(merged cells resolved) and ``table``/``row`` in the chunk's meta and the citation."""

from __future__ import annotations

import io

import pytest
from loaded import load, unit_rows

from rag import RAG
from rag.ingest.formats import html_main_text
from rag.types import unit_label


def population_docx() -> bytes:
    """A heading, a paragraph naming the table, a table whose 街道 is merged down two header rows
    (w:vMerge) and 人口 across its sub-headers (w:gridSpan); then a captioned second table."""
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_heading("岳麓区年度报告", level=1)
    d.add_paragraph("各街道人口：")
    t = d.add_table(rows=4, cols=3)
    for r, row in enumerate([["", "", ""], ["", "常住", "户籍"], ["望月湖", "3.1万", "2.2万"], ["咸嘉湖", "5.4万", "4.0万"]]):
        for c, v in enumerate(row):
            if v:
                t.cell(r, c).text = v
    t.cell(0, 1).merge(t.cell(0, 2)).text = "人口"
    t.cell(0, 0).merge(t.cell(1, 0)).text = "街道"
    d.add_paragraph("地铁线路见下表。")
    d.add_paragraph("表2 地铁线路", style="Caption")
    t2 = d.add_table(rows=2, cols=2)
    for (r, c), v in {(0, 0): "线路", (0, 1): "站数", (1, 0): "六号线", (1, 1): "34"}.items():
        t2.cell(r, c).text = v
    d.add_paragraph("以上数据截至年底。")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_docx_table_rows_with_merged_headers_and_titles(tmp_path):
    doc = load(tmp_path, "报告.docx", population_docx())
    assert unit_rows(doc) == [
        ("【各街道人口 · 第3行】\n街道：望月湖 | 人口/常住：3.1万 | 人口/户籍：2.2万", "各街道人口", {"table": 1, "row": 3}),
        ("【各街道人口 · 第4行】\n街道：咸嘉湖 | 人口/常住：5.4万 | 人口/户籍：4.0万", "各街道人口", {"table": 1, "row": 4}),
        ("【表2 地铁线路 · 第2行】\n线路：六号线 | 站数：34", "表2 地铁线路", {"table": 2, "row": 2}),
    ]
    assert doc.text.startswith("# 岳麓区年度报告\n\n各街道人口：\n\n【各街道人口 · 第3行】")
    assert doc.text.endswith("以上数据截至年底。") and doc.encoding == "docx"


def test_docx_vmerge_fills_data_rows_and_nested_tables_stay_in_their_cell(tmp_path):
    from docxs import make_docx, with_body

    def cell(text, props=""):
        return f"<w:tc><w:tcPr>{props}</w:tcPr><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:tc>"

    nested = "<w:tbl><w:tr>" + cell("内") + cell("表") + "</w:tr></w:tbl>"
    body = ("<w:p><w:r><w:t>产量</w:t></w:r></w:p><w:tbl>"
            "<w:tr>" + cell("年份") + cell("季度") + cell("产量") + "</w:tr>"
            "<w:tr>" + cell("2022年", '<w:vMerge w:val="restart"/>') + cell("一季度") + cell("52") + "</w:tr>"
            "<w:tr>" + cell("", "<w:vMerge/>") + cell("二季度") + "<w:tc><w:p><w:r><w:t>61</w:t></w:r></w:p>"
            + nested + "</w:tc></w:tr></w:tbl>")
    doc = load(tmp_path, "产量.docx", with_body(make_docx("x"), body))
    assert [t for t, _, _ in unit_rows(doc)] == ["【产量 · 第2行】\n年份：2022年 | 季度：一季度 | 产量：52",
                                            "【产量 · 第3行】\n年份：2022年 | 季度：二季度 | 产量：61 内 | 表"]


HTML = """<html><head><title>长沙各区人口</title></head><body><nav>首页 | 新闻 | 联系我们</nav><article>
<h1>长沙各区人口</h1>
<p>长沙市统计局发布了2023年各区常住人口数据，下表列出其中几个区的情况，供读者参考。</p>
<table><caption>表1 各区人口</caption>
<thead><tr><th rowspan="2">区</th><th colspan="2">人口（万）</th></tr><tr><th>常住</th><th>户籍</th></tr></thead>
<tbody><tr><td>岳麓区</td><td>159</td><td>110</td></tr><tr><td>雨花区</td><td>140</td><td>90</td></tr></tbody></table>
<p>从表中可以看出，岳麓区人口增长最快，这与大学城和高新区的发展密切相关。雨花区紧随其后。</p>
<h2>面积</h2>
<table><tr><th>区</th><th>面积（平方公里）</th></tr><tr><td>芙蓉区</td><td>42</td></tr></table>
</article><footer>版权所有</footer></body></html>"""


def test_html_table_rows_stand_where_the_table_stood(tmp_path):
    doc = load(tmp_path, "人口.html", HTML.encode())
    assert unit_rows(doc) == [
        ("【表1 各区人口 · 第3行】\n区：岳麓区 | 人口（万）/常住：159 | 人口（万）/户籍：110", "表1 各区人口", {"table": 1, "row": 3}),
        ("【表1 各区人口 · 第4行】\n区：雨花区 | 人口（万）/常住：140 | 人口（万）/户籍：90", "表1 各区人口", {"table": 1, "row": 4}),
        ("【面积 · 第2行】\n区：芙蓉区 | 面积（平方公里）：42", "面积", {"table": 2, "row": 2}),
    ]
    first, last = doc.units[0], doc.units[-1]
    assert "供读者参考。" in doc.text[:first.start] and "雨花区紧随其后" in doc.text[first.end:last.start]
    assert "首页" not in doc.text and "版权" not in doc.text


def test_html_without_data_tables_reads_as_before(tmp_path):
    layout = ("<html><body><table><tr><td><table><tr><td>内</td></tr></table></td></tr>"
              "<tr><td><p>布局表格里的正文，很长的一段话，说明这个页面用表格排版。</p></td></tr></table></body></html>")
    for name, page in (("a.html", "<html><body><article><h1>标题</h1><p>正文一段，没有表格。</p></article></body></html>"),
                       ("b.htm", layout)):
        doc = load(tmp_path, name, page.encode())
        assert doc.text == html_main_text(page) and doc.units == ()


MARKDOWN = """# 产量报告

前言一段。

## 各年产量

| 年份 | 产量（吨） | 备注 |
|:-----|-----------:|------|
| 2022 | 52.5 | 旱 |
| 2023 | 61 | 含 \\| 估算 |

后记。

```
| 代码 | 不是表 |
|------|--------|
```
"""


def test_markdown_pipe_tables_by_row_code_blocks_left_alone(tmp_path):
    doc = load(tmp_path, "产量.md", MARKDOWN.encode())
    assert unit_rows(doc) == [
        ("【各年产量 · 第2行】\n年份：2022 | 产量（吨）：52.5 | 备注：旱", "各年产量", {"table": 1, "row": 2}),
        ("【各年产量 · 第3行】\n年份：2023 | 产量（吨）：61 | 备注：含 | 估算", "各年产量", {"table": 1, "row": 3}),
    ]
    assert doc.text.startswith("# 产量报告\n\n前言一段。\n\n## 各年产量\n\n【各年产量")
    assert "| 代码 | 不是表 |" in doc.text and doc.text.rstrip().endswith("```")


def test_markdown_without_tables_is_its_text_untouched(tmp_path):
    text = "# 标题\n\n正文 a | b 不是表格。\n---\n\n完。\n"
    doc = load(tmp_path, "n.markdown", text.encode("gb18030"))
    assert doc.text == text and doc.units == ()


@pytest.mark.slow
def test_questions_are_answered_from_the_right_row_citing_table_and_row(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "报告.docx").write_bytes(population_docx())
    (folder / "人口.html").write_text(HTML, encoding="utf-8")
    (folder / "产量.md").write_text(MARKDOWN, encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([folder])
    for question, doc_id, value, header, unit in [
        ("咸嘉湖街道的常住人口是多少", "报告.docx", "5.4万", "人口/常住：5.4万", {"table": 1, "row": 4}),
        ("雨花区的户籍人口是多少万", "人口.html", "90", "人口（万）/户籍：90", {"table": 1, "row": 4}),
        ("2022年的产量是多少吨", "产量.md", "52.5", "产量（吨）：52.5", {"table": 1, "row": 2}),
    ]:
        a = rag.ask(question)
        assert not a.abstained and value in a.answer, question
        c = a.citations[0]
        assert c.doc_id == doc_id and c.unit == unit and header in c.quote, question
    assert unit_label({"table": 1, "row": 4}) == "表 1 · 第4行 (table 1, row 4)"
