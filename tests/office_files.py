"""Real office files made by the tests: slides (python-pptx), e-mails (email), EPUB (ebooklib), ODT and
ODS (odfpy), RTF written by hand; and the damaged and hostile variants of zip-based ones."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage

import pytest


def slides_pptx() -> bytes:
    """Slide 1: title, a bullet body and notes; slide 2: title, a group of two text boxes and a table."""
    pptx = pytest.importorskip("pptx")
    from pptx.util import Inches

    deck = pptx.Presentation()
    one = deck.slides.add_slide(deck.slide_layouts[1])
    one.shapes.title.text = "2024年工作计划"
    one.placeholders[1].text_frame.text = "完成新校区建设"
    one.placeholders[1].text_frame.add_paragraph().text = "招聘教师120名"
    one.notes_slide.notes_text_frame.text = "强调预算为3.2亿元"
    two = deck.slides.add_slide(deck.slide_layouts[5])
    two.shapes.title.text = "各校区学生人数"
    group = two.shapes.add_group_shape()
    for i, text in enumerate(["东校区以理工科为主", "西校区以文科为主"]):
        group.shapes.add_textbox(Inches(1), Inches(1 + i), Inches(4), Inches(1)).text_frame.text = text
    table = two.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "校区", (0, 1): "学生", (1, 0): "东校区", (1, 1): "8600"}.items():
        table.cell(r, c).text = text
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def notice_eml(html_only: bool = False) -> bytes:
    """An e-mail with a plain and an HTML body (or the HTML one only), a CSV and a text attachment, and
    a picture (left out)."""
    msg = EmailMessage()
    msg["From"] = "王芳 <wangfang@example.cn>"
    msg["To"] = "全体教师 <teachers@example.cn>"
    msg["Date"] = "Mon, 04 Mar 2024 09:30:00 +0800"
    msg["Subject"] = "关于期末考试安排的通知"
    if html_only:
        msg.set_content("<html><body><p>各位老师：</p><p>期末考试定于6月24日开始。</p></body></html>", subtype="html")
    else:
        msg.set_content("各位老师：\n\n期末考试定于6月24日开始，请于6月10日前提交试卷。\n")
        msg.add_alternative("<p>各位老师：</p><p>期末考试定于6月24日开始。</p>", subtype="html")
    msg.add_attachment("科目,日期\n数学,6月24日\n语文,6月25日\n".encode("gb18030"), maintype="text",
                       subtype="csv", filename="考试日程.csv")
    msg.add_attachment("监考老师请提前二十分钟到场。".encode(), maintype="text", subtype="plain", filename="说明.txt")
    msg.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(64), maintype="image", subtype="png", filename="校徽.png")
    return msg.as_bytes()


def book_epub() -> bytes:
    """Two chapters (and a navigation page) in spine order: 第一章 春, 第二章 夏."""
    pytest.importorskip("ebooklib")
    from bench.office_set import epub_book

    return epub_book("四季", "id-1", [("第一章 春", "春天来了，岳麓山的杜鹃花开满山坡。"),
                                      ("第二章 夏", "夏天的橘子洲头，游人在江边乘凉。")])


def _cell(text: str = "", **kw):
    from odf.table import TableCell
    from odf.text import P

    cell = TableCell(**kw)
    if text:
        cell.addElement(P(text=text))
    return cell


def report_odt() -> bytes:
    """A heading, a paragraph with a run of spaces, a table (区 merged down, 人口 across) after its title line."""
    pytest.importorskip("odf")
    from odf.opendocument import OpenDocumentText
    from odf.table import CoveredTableCell, Table, TableRow
    from odf.text import H, P, S

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="年度报告"))
    para = P(text="人口")
    para.addElement(S(c=2))
    para.addText("稳步增长。")
    doc.text.addElement(para)
    doc.text.addElement(P(text="各区人口"))
    table = Table(name="表格1")
    for cells in ([_cell("区", numberrowsspanned=2), _cell("人口（万）", numbercolumnsspanned=2), CoveredTableCell()],
                  [CoveredTableCell(), _cell("常住"), _cell("户籍")],
                  [_cell("岳麓区"), _cell("159"), _cell("110")]):
        row = TableRow()
        for c in cells:
            row.addElement(c)
        table.addElement(row)
    doc.text.addElement(table)
    doc.text.addElement(P(text="完。"))
    buf = io.BytesIO()
    doc.write(buf)
    return buf.getvalue()


def revenue_ods() -> bytes:
    """Sheet 季度营收: a title row merged across three columns, a header row, empty rows repeated, a
    data row at row 6, a million empty rows repeated at the end (as office suites write)."""
    pytest.importorskip("odf")
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import CoveredTableCell, Table, TableRow

    doc = OpenDocumentSpreadsheet()
    table = Table(name="季度营收")
    rows = [[_cell("2023年营收表", numbercolumnsspanned=3), CoveredTableCell(numbercolumnsrepeated=2)],
            [_cell("季度"), _cell("产品"), _cell("服务"), _cell(numbercolumnsrepeated=16000)]]
    for cells in rows:
        row = TableRow()
        for c in cells:
            row.addElement(c)
        table.addElement(row)
    table.addElement(TableRow(numberrowsrepeated=3))
    for cells, repeat in (([_cell("一季度"), _cell("980"), _cell("120")], 1), ([_cell(numbercolumnsrepeated=1024)], 1_000_000)):
        row = TableRow(numberrowsrepeated=repeat)
        for c in cells:
            row.addElement(c)
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    buf = io.BytesIO()
    doc.write(buf)
    return buf.getvalue()


def gbk(text: str) -> str:
    """``text`` as RTF's \\'hh escapes of its GBK bytes."""
    return "".join(f"\\'{b:02x}" for b in text.encode("gbk"))


def notice_rtf() -> bytes:
    """Written by hand as Word writes Chinese: code page 936, GBK bytes escaped, a \\u character too."""
    return ("{\\rtf1\\ansi\\ansicpg936\\deff0{\\fonttbl{\\f0\\fnil\\fcharset134 SimSun;}}"
            f"\\f0 {gbk('通知')}\\par {gbk('图书馆周六开放至')}22{gbk('时。')}\\par "
            "\\u28248?\\u21335?\\par}").encode("ascii")


def zip_bomb(member: str, mb: int = 64) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/octet-stream")
        with z.open(member, "w") as f:
            for _ in range(mb):
                f.write(bytes(2**20))
    return buf.getvalue()


def with_member(raw: bytes, member: str, data: bytes) -> bytes:
    """``raw`` (a zip) with ``member`` replaced or added."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename != member:
                out.writestr(info.filename, src.read(info.filename))
        out.writestr(member, data)
    return buf.getvalue()
