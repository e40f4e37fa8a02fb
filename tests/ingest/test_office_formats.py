"""Slides (PPTX), e-mail (EML, MSG), EPUB, ODT, ODS and RTF: their text, their units (slide, part,
chapter, table and row, sheet and row) with titles and meta; bad files refused by name with a code."""

from __future__ import annotations

import pytest
from loaded import load, unit_rows
from office_files import (
    book_epub,
    notice_eml,
    notice_rtf,
    report_odt,
    revenue_ods,
    slides_pptx,
    with_member,
    zip_bomb,
)

from rag import RAG
from rag.errors import LoaderError
from rag.ingest.files import SUPPORTED_SUFFIXES
from rag.ingest.mail import MAX_PARTS
from rag.uploads import UPLOAD_SUFFIXES

NEW = (".pptx", ".eml", ".msg", ".epub", ".odt", ".ods", ".rtf")
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def test_slides_are_units_with_title_body_and_notes(tmp_path):
    doc = load(tmp_path, "计划.pptx", slides_pptx())
    assert unit_rows(doc) == [
        ("2024年工作计划\n完成新校区建设\n招聘教师120名\n备注：强调预算为3.2亿元", "2024年工作计划", {"slide": 1}),
        ("各校区学生人数\n东校区以理工科为主\n西校区以文科为主\n校区 | 学生\n东校区 | 8600", "各校区学生人数", {"slide": 2}),
    ]
    assert doc.encoding == "pptx"


@pytest.mark.parametrize("html_only", [False, True])
def test_an_email_is_its_header_line_body_and_text_attachments(tmp_path, html_only):
    doc = load(tmp_path, "通知.eml", notice_eml(html_only))
    (body, title, meta), csv_part, txt_part = unit_rows(doc)
    assert body.startswith("发件人：王芳 <wangfang@example.cn> | 收件人：全体教师 <teachers@example.cn> | "
                           "日期：Mon, 04 Mar 2024 09:30:00 +0800 | 主题：关于期末考试安排的通知\n\n各位老师：\n\n期末考试定于6月24日开始")
    assert (title, meta) == ("关于期末考试安排的通知", {"part": 1})
    assert ("<p>" in body) is False and ("6月10日前" in body) is not html_only
    assert csv_part == ("科目,日期\n数学,6月24日\n语文,6月25日", "关于期末考试安排的通知 · 考试日程.csv", {"part": 2})
    assert txt_part == ("监考老师请提前二十分钟到场。", "关于期末考试安排的通知 · 说明.txt", {"part": 3})
    assert "PNG" not in doc.text


def test_epub_chapters_in_spine_order_without_the_table_of_contents(tmp_path):
    doc = load(tmp_path, "四季.epub", book_epub())
    assert unit_rows(doc) == [("第一章 春\n春天来了，岳麓山的杜鹃花开满山坡。", "第一章 春", {"chapter": 1}),
                              ("第二章 夏\n夏天的橘子洲头，游人在江边乘凉。", "第二章 夏", {"chapter": 2})]


def test_odt_paragraphs_headings_and_tables_by_row(tmp_path):
    doc = load(tmp_path, "报告.odt", report_odt())
    assert doc.text == ("# 年度报告\n\n人口  稳步增长。\n\n各区人口\n\n【各区人口 · 第3行】\n"
                        "区：岳麓区 | 人口（万）/常住：159 | 人口（万）/户籍：110\n\n完。")
    assert [(t, m) for _, t, m in unit_rows(doc)] == [("各区人口", {"table": 1, "row": 3})]


def test_ods_rows_with_merged_title_and_repeats_bounded(tmp_path):
    doc = load(tmp_path, "营收.ods", revenue_ods())  # a million repeated empty rows cost nothing
    assert unit_rows(doc) == [("【季度营收 · 2023年营收表 · 第6行】\n季度：一季度 | 产品：980 | 服务：120",
                               "季度营收 · 2023年营收表", {"sheet": "季度营收", "row": 6})]


def test_rtf_in_a_chinese_code_page(tmp_path):
    doc = load(tmp_path, "通知.rtf", notice_rtf())
    assert doc.text == "通知\n图书馆周六开放至22时。\n湘南" and doc.units == ()


def test_the_new_suffixes_are_read_and_uploadable():
    for suffix in NEW:
        assert suffix in SUPPORTED_SUFFIXES and suffix in UPLOAD_SUFFIXES


def _truncated_eml() -> bytes:
    raw = notice_eml()
    return raw[: raw.index(b"Content-Disposition: attachment") + 40]


def _encrypted_eml() -> bytes:
    return (b"From: a@example.cn\r\nSubject: secret\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n--b--\r\n")


def _many_parts_eml() -> bytes:
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\n{i}\r\n" for i in range(MAX_PARTS + 1))
    return (f"From: a@example.cn\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n{parts}--b--\r\n").encode()


def _drm_epub() -> bytes:
    listing = (b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
               b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
               b'<enc:CipherReference URI="EPUB/chap1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>')
    return with_member(book_epub(), "META-INF/encryption.xml", listing)


def _encrypted_odt() -> bytes:
    manifest = (b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
                b'<manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/>'
                b"</manifest:file-entry></manifest:manifest>")
    return with_member(report_odt(), "META-INF/manifest.xml", manifest)


def _entity_odt() -> bytes:
    return with_member(report_odt(), "content.xml",
                       b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><a>&x;</a>')


TEXT = "这其实是一段文字。".encode()
BAD = [
    ("空.pptx", b"", "空.pptx: file is empty"),
    ("密.pptx", OLE + bytes(600), "密.pptx: PPTX is protected by a password"),
    ("断.pptx", slides_pptx()[:3000], r"断.pptx: damaged or unreadable PPTX \(not a zip archive"),
    ("假.pptx", TEXT, "假.pptx: is not a PPTX file"),
    ("炸.pptx", zip_bomb("ppt/slides/slide1.xml"), "炸.pptx: PPTX part 'ppt/slides/slide1.xml' unpacks to"),
    ("空.eml", b"", "空.eml: file is empty"),
    ("假.eml", TEXT, "假.eml: is not a EML file"),
    ("断.eml", _truncated_eml(), r"断.eml: damaged or unreadable EML \(it is cut short"),
    ("密.eml", _encrypted_eml(), r"密.eml: the EML e-mail is encrypted"),
    ("多.eml", _many_parts_eml(), f"多.eml: EML e-mail has over {MAX_PARTS:,} parts"),
    ("空.epub", b"", "空.epub: file is empty"),
    ("密.epub", _drm_epub(), "密.epub: EPUB is protected by a password"),
    ("断.epub", book_epub()[:2000], r"断.epub: damaged or unreadable EPUB \(not a zip archive"),
    ("假.epub", report_odt(), "假.epub: is not a EPUB file"),
    ("炸.epub", zip_bomb("EPUB/chap1.xhtml"), "炸.epub: EPUB part 'EPUB/chap1.xhtml' unpacks to"),
    ("空.odt", b"", "空.odt: file is empty"),
    ("密.odt", _encrypted_odt(), "密.odt: ODT is protected by a password"),
    ("断.odt", report_odt()[:1500], r"断.odt: damaged or unreadable ODT \(not a zip archive"),
    ("假.odt", revenue_ods(), "假.odt: is not a ODT file"),
    ("炸.odt", zip_bomb("content.xml"), "炸.odt: ODT part 'content.xml' unpacks to"),
    ("实.odt", _entity_odt(), r"实.odt: damaged or unreadable ODT \(its part 'content.xml' declares a DTD"),
    ("假.ods", TEXT, "假.ods: is not a ODS file"),
    ("空.rtf", b"", "空.rtf: file is empty"),
    ("假.rtf", TEXT, "假.rtf: is not a RTF file"),
    ("断.rtf", notice_rtf()[:60], r"断.rtf: damaged or unreadable RTF \(it is cut short"),
    ("空.msg", b"", "空.msg: file is empty"),
    ("假.msg", TEXT, "假.msg: is not a MSG file"),
    ("断.msg", OLE + bytes(100), r"断.msg: damaged or unreadable MSG"),
]


@pytest.mark.parametrize(("name", "raw", "match"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.slow
def test_bad_files_are_refused_by_name_with_a_code(tmp_path, name, raw, match):
    with pytest.raises(LoaderError, match=match) as caught:
        load(tmp_path, name, raw)
    assert caught.value.code and name in caught.value.zh


@pytest.mark.slow
def test_bad_files_lose_nothing_else_of_their_run_and_citations_name_the_unit(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, raw in [("计划.pptx", slides_pptx()), ("通知.eml", notice_eml()), ("四季.epub", book_epub()),
                      ("报告.odt", report_odt()), ("营收.ods", revenue_ods()), ("通知.rtf", notice_rtf()),
                      ("坏.pptx", slides_pptx()[:3000]), ("坏.epub", _drm_epub()), ("坏.msg", OLE + bytes(100))]:
        (folder / name).write_bytes(raw)
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    report = rag.index([folder])
    assert sorted(report.added) == ["四季.epub", "报告.odt", "营收.ods", "计划.pptx", "通知.eml", "通知.rtf"]
    assert sorted(report.skipped) == sorted(str(folder / n) for n in ("坏.pptx", "坏.epub", "坏.msg"))
    for question, doc_id, value, unit in [("东校区有多少学生", "计划.pptx", "8600", {"slide": 2}),
                                          ("监考老师要提前多久到场", "通知.eml", "二十分钟", {"part": 3}),
                                          ("夏天游人在哪里乘凉", "四季.epub", "橘子洲", {"chapter": 2})]:
        a = rag.ask(question)
        assert not a.abstained and value in a.answer, (question, a.answer)
        assert (a.citations[0].doc_id, a.citations[0].unit) == (doc_id, unit), question
