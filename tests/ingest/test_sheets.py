"""Spreadsheets and CSV/TSV: one passage per row, with its sheet (or file) title, its column headers
(merged cells resolved) and its row number in the chunk's meta and the citation."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from loaded import load, unit_rows
from sheets import revenue_xlsx, staff_xls

from rag import RAG
from rag.errors import LoaderError
from rag.ingest.chunking import ChunkSettings, chunk_source
from rag.ingest.files import SUPPORTED_SUFFIXES
from rag.types import unit_label
from rag.uploads import UPLOAD_SUFFIXES
from ui.commands import print_answer


def test_xlsx_rows_carry_title_merged_headers_and_row_numbers(tmp_path):
    doc = load(tmp_path, "营收.xlsx", revenue_xlsx())
    units = unit_rows(doc)
    assert len(units) == 6  # four quarters, two departments: headers and the title row are no rows
    text, title, meta = units[1]
    assert title == "季度营收 · 2023年营收表" and meta == {"sheet": "季度营收", "row": 5}
    assert text == "【季度营收 · 2023年营收表 · 第5行】\n季度：2023年二季度 | 营收（万元）/产品：1234 | 营收（万元）/服务：156"
    assert units[4] == ("【人员 · 第2行】\n部门：销售部 | 人数：35", "人员", {"sheet": "人员", "row": 2})
    assert "草稿" not in doc.text and doc.encoding == "xlsx"


def test_rows_are_never_packed_together_and_chunks_keep_unit_meta(tmp_path):
    doc = load(tmp_path, "营收.xlsx", revenue_xlsx())
    chunks = chunk_source(doc.doc_id, doc.text, ChunkSettings(), doc.units)
    assert len(chunks) == len(doc.units)  # each row well under a chunk's budget, yet a chunk of its own
    for chunk, unit in zip(chunks, doc.units):
        assert (chunk.start, chunk.end) == (unit.start, unit.end) and doc.text[chunk.start:chunk.end] == chunk.text
        assert chunk.location["sheet"] == unit.meta["sheet"] and chunk.location["row"] == unit.meta["row"]
        assert chunk.meta["article"] == unit.title
    assert unit_label(chunks[1].location) == "工作表 季度营收 · 第5行 (sheet 季度营收, row 5)"


def test_a_merged_value_fills_the_rows_it_covers_in_xls(tmp_path):
    doc = load(tmp_path, "产量.xls", staff_xls())
    assert [t for t, _, _ in unit_rows(doc)] == ["【产量 · 第2行】\n年份：2022年 | 季度：一季度 | 产量（吨）：52.5",
                                            "【产量 · 第3行】\n年份：2022年 | 季度：二季度 | 产量（吨）：61"]
    assert doc.encoding == "xls"


@pytest.mark.parametrize(("suffix", "delimiter", "encoding"), [(".csv", ",", "utf-8"), (".tsv", "\t", "gb18030")])
def test_csv_and_tsv_rows_are_named_by_the_file(tmp_path, suffix, delimiter, encoding):
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerows([["城市", "人口（万）", "备注"], ["长沙", "1042", "省会，\n湘江穿城"], ["株洲", "390", ""]])
    doc = load(tmp_path, f"城市{suffix}", buf.getvalue().encode(encoding))
    assert unit_rows(doc) == [
        ("【城市 · 第2行】\n城市：长沙 | 人口（万）：1042 | 备注：省会， 湘江穿城", "城市", {"row": 2}),
        ("【城市 · 第3行】\n城市：株洲 | 人口（万）：390", "城市", {"row": 3}),
    ]


def test_the_new_suffixes_are_read_and_uploadable():
    for suffix in (".xlsx", ".xls", ".csv", ".tsv"):
        assert suffix in SUPPORTED_SUFFIXES and suffix in UPLOAD_SUFFIXES


def _bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as f:
            for _ in range(64):
                f.write(bytes(2**20))
    return buf.getvalue()


@pytest.mark.parametrize(("name", "raw", "match"), [
    ("空.xlsx", b"", "空.xlsx: file is empty"),
    ("密.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "密.xlsx: XLSX is protected by a password"),
    ("断.xlsx", revenue_xlsx()[:3000], "断.xlsx: damaged or unreadable XLSX"),
    ("假.xlsx", "这其实是一段文字。".encode(), "假.xlsx: is not a XLSX file"),
    ("假.xls", b"<html><body>not a workbook</body></html>", "假.xls: is not a XLS file"),
    ("炸.xlsx", _bomb(), "炸.xlsx: XLSX part 'xl/worksheets/sheet1.xml' unpacks to"),
    ("空.csv", b"", "空.csv: file is empty"),
])
def test_bad_spreadsheets_are_refused_by_name(tmp_path, name, raw, match):
    with pytest.raises(LoaderError, match=match):
        load(tmp_path, name, raw)


def test_a_bad_workbook_loses_nothing_else_of_its_run(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "坏.xlsx").write_bytes(revenue_xlsx()[:3000])
    (folder / "营收.xlsx").write_bytes(revenue_xlsx())
    (folder / "城市.csv").write_text("城市,人口\n长沙,1042\n", encoding="utf-8")
    report = RAG.open(tmp_path / "idx", create=True, progress=False).index([folder])
    assert sorted(report.added) == ["城市.csv", "营收.xlsx"]
    assert list(report.skipped) == [str(folder / "坏.xlsx")] and "坏.xlsx" in report.skipped[str(folder / "坏.xlsx")]


@pytest.mark.slow
def test_a_question_is_answered_from_the_right_row_with_its_header(tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "营收.xlsx").write_bytes(revenue_xlsx())
    (folder / "kite.txt").write_text("紫藤镇风筝节于每年四月十八日举行。\n", encoding="utf-8")
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([folder])
    a = rag.ask("2023年二季度的营收是多少")
    assert not a.abstained and "1234" in a.answer
    c = a.citations[0]
    assert c.doc_id == "营收.xlsx" and c.unit == {"sheet": "季度营收", "row": 5}
    assert "营收（万元）/产品：1234" in c.quote and "2023年二季度" in c.quote
    assert c.to_dict()["unit"] == {"sheet": "季度营收", "row": 5}
    assert a.passages[0].to_dict(1)["meta"]["row"] == 5
    print_answer(a)  # what `rag ask` prints: the sources name the sheet and row
    assert "营收.xlsx 《季度营收 · 2023年营收表》 工作表 季度营收 · 第5行 (sheet 季度营收, row 5)" in capsys.readouterr().out
