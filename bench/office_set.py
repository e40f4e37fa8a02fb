"""The office question set: documents made of units, built here deterministically, and the check of citations.

    python bench/office_set.py build DIR             # writes the documents into DIR
    rag index DIR --index-dir IDX
    rag eval bench/office_questions.jsonl --index-dir IDX --out OUT
    python bench/office_set.py check OUT             # do the first citations name the right unit?

The documents: a workbook whose sheet has a title row and headers merged across and down
(经营数据.xlsx), a DOCX report with two tables, one with cells merged down (w:vMerge) and across
(w:gridSpan) (招生报告.docx), a web page with a table using rowspan and colspan (公园.html), slides
with notes (发布会.pptx), an e-mail with a CSV and a text attachment (会议通知.eml), an EPUB of four
chapters (湖湘游记.epub) and, when ``rag.ingest.ocr`` is there, a scanned page (扫描通知.png, rendered
with Noto Sans CJK). Every file is the same from run to run (fixed dates, identifiers and zip times).

``bench/office_questions.jsonl`` holds the questions (``rag eval``'s JSONL) with, beside the usual
fields, ``unit``: the sheet and row, table and row, slide, part or chapter (or ``page`` of the scan)
the answer is in; ``check`` reads ``rag eval --out``'s results.jsonl and counts the questions whose
first citation is of the gold document and names exactly that unit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import io
import json
import re
import sys
import zipfile
from email.message import EmailMessage
from pathlib import Path

QUESTIONS = Path(__file__).with_name("office_questions.jsonl")
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)
_STAMP = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")

BRANCHES = [("五一广场店", "长沙", 412, 455, 498, 530), ("梅溪湖店", "长沙", 286, 301, 327, 349),
            ("星沙店", "长沙", 198, 214, 233, 251), ("河西店", "湘潭", 157, 169, 181, 196),
            ("神农城店", "株洲", 173, 188, 204, 219), ("南岳店", "衡阳", 121, 137, 162, 148),
            ("岳阳楼店", "岳阳", 209, 226, 247, 263), ("凤凰古城店", "湘西", 95, 143, 176, 88)]
STAFF = [("五一广场店", "刘洋", 48, 2015), ("梅溪湖店", "陈静", 31, 2018), ("星沙店", "赵磊", 26, 2019),
         ("河西店", "孙丽", 19, 2020), ("神农城店", "周强", 22, 2017), ("南岳店", "吴敏", 15, 2021)]
COLLEGES = [("理工学部", "计算机学院", 620, 180), ("理工学部", "机械学院", 540, 120), ("理工学部", "土木学院", 480, 95),
            ("人文学部", "文学院", 350, 60), ("人文学部", "法学院", 300, 85), ("医学部", "临床医学院", 410, 150)]
AWARDS = [("国家奖学金", "8000", "45"), ("校长奖学金", "10000", "10"), ("新生奖学金", "5000", "200")]
PARKS = [("烈士公园", "开福区", "东风路街道", "127", "免费"), ("橘子洲公园", "岳麓区", "橘子洲街道", "91", "免费"),
         ("月湖公园", "开福区", "月湖街道", "147", "免费"), ("洋湖湿地公园", "岳麓区", "洋湖街道", "310", "免费"),
         ("松雅湖公园", "长沙县", "星沙街道", "620", "免费"), ("世界之窗", "开福区", "新港街道", "40", "120元")]
SLIDES = [("智慧交通项目发布会", ["湖南智行科技有限公司", "2024年9月12日"], "开场由总经理李明致辞"),
          ("项目背景", ["长沙市机动车保有量突破三百五十万辆", "早高峰平均车速为每小时二十二公里"], None),
          ("核心技术", ["自研信号灯配时算法“绿波一号”", "路口通行效率提升百分之十八"], None),
          ("试点成果", ["在芙蓉中路等十二个路口试点", "车辆平均等待时间缩短四十秒"], None),
          ("投资计划", [], None),
          ("下一步", ["2025年推广到全市三百个路口"], "提醒记者会后领取资料")]
INVESTMENT = [("阶段", "投资金额"), ("一期", "1.2亿元"), ("二期", "2.5亿元")]
CHAPTERS = [("第一章 岳麓山", "岳麓山位于长沙市湘江西岸，主峰海拔三百米。山上的爱晚亭建于清乾隆五十七年，因杜牧的诗句得名。"),
            ("第二章 凤凰古城", "凤凰古城位于湘西，沱江穿城而过。沈从文故居在古城中营街，是一座典型的四合院。"),
            ("第三章 张家界", "张家界国家森林公园是中国第一个国家森林公园，成立于1982年。天子山因明代土家族首领向大坤自号天子而得名。"),
            ("第四章 洞庭湖", "洞庭湖是中国第二大淡水湖，岳阳楼矗立在湖畔。每年冬季有大批候鸟来此越冬，其中包括珍稀的白鹤。")]
SCAN = ["图书馆闭馆通知", "因设备检修，图书馆将于十一月二日至十一月五日闭馆。", "闭馆期间，电子资源可通过校园网正常访问。",
        "咨询电话：0731-88812345。"]


def workbook() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "分店营收"
    ws["A1"] = "2024年各分店营收（万元）"
    ws.merge_cells("A1:F1")
    ws["A2"], ws["B2"], ws["C2"], ws["E2"] = "分店", "城市", "上半年", "下半年"
    for merged in ("A2:A3", "B2:B3", "C2:D2", "E2:F2"):
        ws.merge_cells(merged)
    ws["C3"], ws["D3"], ws["E3"], ws["F3"] = "一季度", "二季度", "三季度", "四季度"
    for row in BRANCHES:
        ws.append(list(row))
    staff = wb.create_sheet("门店员工")
    staff.append(["分店", "店长", "员工人数", "开业年份"])
    for row in STAFF:
        staff.append(list(row))
    wb.properties.created = wb.properties.modified = dt.datetime(2024, 1, 1)
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue())


def report_docx() -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.created = d.core_properties.modified = dt.datetime(2024, 1, 1)
    d.add_heading("2024年湖湘大学招生工作报告", level=1)
    d.add_paragraph("今年学校共录取新生六千二百人，其中本科生四千八百人，生源覆盖全国三十一个省份。")
    d.add_paragraph("各学院招生人数")
    t = d.add_table(rows=2 + len(COLLEGES), cols=4)
    t.cell(1, 2).text, t.cell(1, 3).text = "本科", "研究生"
    for r, (faculty, college, bachelor, master) in enumerate(COLLEGES, 2):
        t.cell(r, 1).text, t.cell(r, 2).text, t.cell(r, 3).text = college, str(bachelor), str(master)
        t.cell(r, 0).text = faculty if r == 2 or COLLEGES[r - 3][0] != faculty else ""
    t.cell(0, 0).merge(t.cell(1, 0)).text = "学部"
    t.cell(0, 1).merge(t.cell(1, 1)).text = "学院"
    t.cell(0, 2).merge(t.cell(0, 3)).text = "招生人数"
    for first, last in ((2, 4), (5, 6)):  # a faculty merged down over its colleges
        t.cell(first, 0).merge(t.cell(last, 0)).text = COLLEGES[first - 2][0]
    d.add_paragraph("学校继续加大奖助力度。")
    d.add_paragraph("表2 奖学金设置", style="Caption")
    t2 = d.add_table(rows=1 + len(AWARDS), cols=3)
    for r, row in enumerate([("奖项", "金额（元）", "名额"), *AWARDS]):
        for c, value in enumerate(row):
            t2.cell(r, c).text = value
    d.add_paragraph("以上数据截至2024年9月30日。")
    buf = io.BytesIO()
    d.save(buf)
    return _fixed_zip(buf.getvalue())


def parks_html() -> bytes:
    rows = "".join(f"<tr><td>{p}</td><td>{a}</td><td>{s}</td><td>{h}</td><td>{f}</td></tr>" for p, a, s, h, f in PARKS)
    return f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>长沙公园城市建设</title></head>
<body><nav>首页 | 新闻 | 政务公开 | 联系我们</nav><article><h1>长沙公园城市建设稳步推进</h1>
<p>2021年，长沙提出建设公园城市的目标。截至目前，全市共有公园183个，人均公园绿地面积达到12.3平方米。</p>
<p>下表列出市民最常去的几个公园的基本情况，供市民出行参考。</p>
<table><caption>长沙主要公园一览</caption>
<thead><tr><th rowspan="2">公园</th><th colspan="2">位置</th><th rowspan="2">面积（公顷）</th><th rowspan="2">门票</th></tr>
<tr><th>区县</th><th>街道</th></tr></thead><tbody>{rows}</tbody></table>
<p>市园林局表示，今后三年还将新建和改造口袋公园一百个，让市民出门五分钟就能走进公园。</p>
</article><footer>长沙市园林局 版权所有</footer></body></html>""".encode()


def slides_pptx() -> bytes:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    deck.core_properties.created = deck.core_properties.modified = dt.datetime(2024, 1, 1)
    for title, lines, notes in SLIDES:
        slide = deck.slides.add_slide(deck.slide_layouts[1 if lines else 5])
        slide.shapes.title.text = title
        if lines:
            frame = slide.placeholders[1].text_frame
            frame.text = lines[0]
            for line in lines[1:]:
                frame.add_paragraph().text = line
        else:
            table = slide.shapes.add_table(len(INVESTMENT), 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
            for r, row in enumerate(INVESTMENT):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buf = io.BytesIO()
    deck.save(buf)
    return _fixed_zip(buf.getvalue())


def notice_eml() -> bytes:
    msg = EmailMessage()
    msg["From"] = "张伟 <zhangwei@hxdx.edu.cn>"
    msg["To"] = "各学院办公室 <offices@hxdx.edu.cn>"
    msg["Date"] = "Tue, 15 Oct 2024 08:45:00 +0800"
    msg["Subject"] = "关于召开秋季安全工作会议的通知"
    msg["Message-ID"] = "<autumn-safety-2024@hxdx.edu.cn>"
    msg.set_content("各学院：\n\n学校定于10月18日下午三点在行政楼第二会议室召开秋季安全工作会议，请各学院分管副院长参加。\n\n"
                    "请于10月17日前将参会回执发送至保卫处邮箱。\n\n保卫处\n")
    msg.add_attachment("时间,内容,主讲\n15:00,消防安全培训,王建国\n15:40,实验室安全检查通报,刘芳\n".encode(),
                       maintype="text", subtype="csv", filename="议程.csv")
    msg.add_attachment("会场停车位有限，请参会人员尽量乘坐校车前往。".encode(), maintype="text", subtype="plain",
                       filename="说明.txt")
    msg.set_boundary("office-set-boundary")
    return msg.as_bytes()


def travels_epub() -> bytes:
    return _fixed_zip(epub_book("湖湘游记", "hunan-travels-2024", CHAPTERS))


def epub_book(title: str, identifier: str, chapters: list[tuple[str, str]]) -> bytes:
    """An EPUB (ebooklib) of ``chapters`` (title, a paragraph), a navigation page first in the spine."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier(identifier)
    book.set_title(title)
    book.set_language("zh")
    items = []
    for n, (heading, body) in enumerate(chapters, 1):
        chapter = epub.EpubHtml(title=heading, file_name=f"chap{n}.xhtml", lang="zh")
        chapter.content = f"<html><body><h1>{heading}</h1><p>{body}</p></body></html>"
        book.add_item(chapter)
        items.append(chapter)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    buf = io.BytesIO()
    epub.write_epub(buf, book, {"mtime": dt.datetime(2024, 1, 1)})
    return buf.getvalue()


def scan_png() -> bytes:
    """A page of printed text as a scanner gives it: grey paper, a slight tilt, 150 DPI."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 34)
    page = Image.new("L", (1240, 900), 235)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(SCAN):
        draw.text((110, 120 + i * 90), line, fill=25, font=font)
    page = page.rotate(0.6, fillcolor=235, resample=Image.BICUBIC)
    buf = io.BytesIO()
    page.save(buf, "PNG")
    return buf.getvalue()


def _fixed_zip(raw: bytes) -> bytes:
    """``raw`` (a zip) rewritten with every member's time fixed: the same bytes from run to run."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, _FIXED_TIME)
            fixed.compress_type = zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the time of saving
                data = _STAMP.sub(rb"\g<1>2024-01-01T00:00:00Z\g<2>", data)
            out.writestr(fixed, data)
    return buf.getvalue()


def build(folder: Path) -> list[str]:
    """Write the documents into ``folder``; the names written."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"经营数据.xlsx": workbook, "招生报告.docx": report_docx, "公园.html": parks_html, "发布会.pptx": slides_pptx,
             "会议通知.eml": notice_eml, "湖湘游记.epub": travels_epub}
    if importlib.util.find_spec("rag.ingest.ocr") is not None:
        files["扫描通知.png"] = scan_png
    for name, make in files.items():
        (folder / name).write_bytes(make())
    return sorted(files)


def check(out: Path, questions: Path = QUESTIONS) -> dict[str, object]:
    """How many answered questions' first citation is of the gold document and names the gold unit."""
    gold = {}
    for line in questions.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            gold[row["id"]] = row
    by_topic: dict[str, list[int]] = {}
    wrong = []
    for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines():
        result = json.loads(line)
        row = gold.get(result["id"])
        if row is None:
            continue
        first = (result.get("citations") or [{}])[0]
        want = row.get("unit") or {}
        got = dict(first.get("unit") or {})
        if "page" in want:  # a one-page image has no page breaks: its page is that of the OCR'd lines' boxes
            got["page"] = first.get("page") or next((b[0] for b in first.get("boxes") or []), None)
        ok = first.get("doc_id") == row["gold_docs"][0] and got == want
        tally = by_topic.setdefault(row["topic"], [0, 0])
        tally[0] += ok
        tally[1] += 1
        if not ok:
            wrong.append({"id": row["id"], "want": [row["gold_docs"][0], want], "got": [first.get("doc_id"), got]})
    right = sum(t[0] for t in by_topic.values())
    total = sum(t[1] for t in by_topic.values())
    return {"cited_right_unit": right, "questions": total, "share": round(right / max(total, 1), 3),
            "by_topic": {k: f"{a}/{b}" for k, (a, b) in sorted(by_topic.items())}, "wrong": wrong}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build").add_argument("folder", type=Path)
    sub.add_parser("check").add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        print("\n".join(build(args.folder)))
    else:
        print(json.dumps(check(args.out), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
