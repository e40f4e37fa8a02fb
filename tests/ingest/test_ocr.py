"""Scans and images read by OCR (rag.ingest.ocr, rag.ingest.scans): pages and images made in the test from
Chinese text drawn with a Noto CJK font, indexed, asked about, cited with their page and boxes; bad images
and PDFs refused by name while the other files index. OCR of a page takes seconds: two runs in the fast
tier (a PNG, a mixed PDF), the rest marked slow."""

from __future__ import annotations

import difflib
import io
import struct
import sys
import zlib
from pathlib import Path

import pytest
from conftest import missing
from pdfs import make_pdf

from rag import RAG
from rag.catalogue import CATALOGUE
from rag.errors import LoaderError
from rag.ingest import ocr
from rag.ingest.files import SourceFile, find_files, load_file
from rag.ingest.limits import MAX_PIXELS
from rag.ingest.ocr import lines_in_order
from rag.ingest.scans import broken_text_layer
from rag.text.script import fold_script

pytest.importorskip("rapidocr_onnxruntime")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")
ImageFont = pytest.importorskip("PIL.ImageFont")

LIBRARY = ["紫金县图书馆新馆于二〇二三年九月正式开放。", "新馆藏书四十二万册，设有古籍阅览室。", "Opening hours: 9:00 to 21:00 daily."]
BRIDGE = ["第二页：湘江大桥维修工程于五月完工。", "大桥全长一千二百五十米，设双向六车道。"]


def _font(size: int):
    fonts = sorted(Path("/usr/share/fonts").rglob("NotoSansCJK-Regular.ttc"))
    if not fonts:
        missing("fonts-noto-cjk is not installed (make test-deps installs it)")
    return ImageFont.truetype(str(fonts[0]), size, index=2)  # face 2: SC


def _text_image(lines: list[str], width: int = 1000, size: int = 30, top: int = 40) -> Image.Image:
    """``lines`` drawn black on white, one under another."""
    font = _font(size)
    im = Image.new("RGB", (width, top * 2 + int(size * 1.8) * len(lines)), "white")
    draw = ImageDraw.Draw(im)
    for i, line in enumerate(lines):
        draw.text((50, top + int(size * 1.8) * i), line, font=font, fill="black")
    return im


def _scanned_pdf(path: Path, pages: list[Image.Image | list[str]]) -> None:
    """A PDF whose pages are images (no text layer) or, for a list of lines, text in reportlab's CID font."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    for page in pages:
        if isinstance(page, list):
            c.setFont("STSong-Light", 12)
            for i, line in enumerate(page):
                c.drawString(60, 760 - 18 * i, line)
        else:  # a scan: the image across the top of the page, as a scanner's strip would be
            width = 500
            c.drawImage(ImageReader(page), 48, 780 - width * page.height / page.width, width=width,
                        height=width * page.height / page.width)
        c.showPage()
    c.save()


def _png_bytes(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` pixels and holds almost nothing (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _boxes_ok(boxes) -> None:
    for box in boxes:
        x0, y0, x1, y1 = box[-4:]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


@pytest.mark.slow
def test_png_is_read_indexed_and_cited_with_its_boxes(tmp_path):
    """One OCR run: the lines come back in order with their boxes, and an answer cites the image's region."""
    path = tmp_path / "notice.png"
    _text_image(LIBRARY).save(path)
    doc = load_file(SourceFile(path, "notice.png"))
    assert doc.encoding == "png"
    assert [doc.text[s:e] for s, e, *_ in doc.boxes] == doc.text.split("\n")
    assert "四十二万册" in doc.text.split("\n")[1] and "Opening hours" in doc.text.split("\n")[2]
    ys = [b[4] for b in doc.boxes]
    assert ys == sorted(ys) and {b[2] for b in doc.boxes} == {1}
    _boxes_ok(doc.boxes)
    # the second line's box lies in the second of three equal bands of the image's text
    assert 0.33 < (doc.boxes[1][4] + doc.boxes[1][6]) / 2 < 0.67

    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    report = rag.add(path)
    assert report.added == ["notice.png"]
    a = rag.ask("紫金县图书馆新馆藏书多少册？")
    assert not a.abstained and "四十二万" in a.answer
    cited = a.citations[0]
    assert cited.doc_id == "notice.png" and cited.boxes
    assert all(b[0] == 1 for b in cited.boxes)
    _boxes_ok(cited.boxes)
    chunk = a.passages[0].chunk
    assert chunk.meta["boxes"] and all(len(b) == 7 for b in chunk.meta["boxes"])


@pytest.mark.slow
def test_mixed_pdf_reads_text_layer_pages_as_before_and_ocrs_the_scanned_one(tmp_path):
    """One OCR run: page 1 has a text layer (read by pypdf as always), page 2 is a scan."""
    path = tmp_path / "mixed.pdf"
    _scanned_pdf(path, [["第一页：长沙市岳麓区概况。", "岳麓山海拔三百米。"], _text_image(BRIDGE)])
    doc = load_file(SourceFile(path, "mixed.pdf"))
    first, second = doc.text.split("\f")
    assert first == "第一页：长沙市岳麓区概况。\n岳麓山海拔三百米。"  # the text layer, untouched
    assert "一千二百五十米" in second and "湘江大桥" in second
    assert doc.boxes and {b[2] for b in doc.boxes} == {2}
    assert all(doc.text[s:e] in second for s, e, *_ in doc.boxes)
    _boxes_ok(doc.boxes)
    # scanned across the top of page 2: the lines' boxes are in its upper part
    assert all(b[6] < 0.4 for b in doc.boxes)

    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(path)
    a = rag.ask("湘江大桥全长多少米？")
    assert not a.abstained and "一千二百五十米" in a.answer
    assert a.citations[0].page == 2 and a.citations[0].boxes and a.citations[0].boxes[0][0] == 2


def test_a_pdf_with_a_text_layer_has_no_boxes_and_runs_no_ocr(tmp_path, monkeypatch):
    path = tmp_path / "report.pdf"
    make_pdf(path, [["第一页：长沙市岳麓区概况。"], ["第二页：橘子洲大桥全长一千二百五十米。"]])
    monkeypatch.setattr(ocr, "engine", lambda *a: pytest.fail("OCR ran on a PDF with a text layer"))
    doc = load_file(SourceFile(path, "report.pdf"))
    assert doc.text == "第一页：长沙市岳麓区概况。\f第二页：橘子洲大桥全长一千二百五十米。" and doc.boxes == ()


def test_bad_images_and_pdfs_are_refused_by_name_and_the_rest_still_index(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image at all" * 20)
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buf, "JPEG")
    (folder / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (folder / "bomb.png").write_bytes(_png_bytes(20_000, 20_000))  # 400 million pixels: past PIL's own bound
    (folder / "huge.png").write_bytes(_png_bytes(8_000, 8_000))  # 64 million: past ours only
    make_pdf(folder / "whole.pdf", [["第一页"], ["第二页"]])
    raw = (folder / "whole.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(raw[: len(raw) // 2])
    (folder / "whole.pdf").unlink()
    (folder / "kite.txt").write_text("紫藤镇风筝节于每年四月十八日举行。\n", encoding="utf-8")

    files, _ = find_files([folder])
    errors = {}
    for src in files:
        if src.doc_id != "kite.txt":
            with pytest.raises(LoaderError) as info:
                load_file(src)
            errors[src.doc_id] = info.value
    assert errors["corrupt.png"].code == "file.damaged" and "PNG" in str(errors["corrupt.png"])
    assert errors["cut.jpg"].code == "file.damaged" and "JPEG" in str(errors["cut.jpg"])
    assert errors["truncated.pdf"].code == "file.damaged"
    for name, pixels in (("bomb.png", 400_000_000), ("huge.png", 64_000_000)):
        assert errors[name].code == "image.too_many_pixels"
        assert f"{pixels:,} pixels" in str(errors[name]) and f"{MAX_PIXELS:,}" in str(errors[name])
    for name, exc in errors.items():
        assert str(exc).startswith(f"{name}: ") and exc.zh.startswith(f"{name}：")

    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    report = rag.add(folder)
    assert report.added == ["kite.txt"]
    assert sorted(Path(p).name for p in report.skipped) == sorted(errors)


def test_without_the_ocr_extra_a_scan_is_refused_with_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import fails as when not installed
    monkeypatch.setattr(ocr, "_engine", None)
    png = tmp_path / "scan.png"
    Image.new("RGB", (200, 80), "white").save(png)
    blank_pdf = tmp_path / "scan.pdf"
    _scanned_pdf(blank_pdf, [Image.new("RGB", (200, 80), "gray")])
    for path, kind in ((png, "PNG"), (blank_pdf, "PDF")):
        with pytest.raises(LoaderError) as info:
            load_file(SourceFile(path, path.name))
        assert info.value.code == "ocr.needs_package"
        assert str(info.value) == (f"{path.name}: the {kind} is a scan and OCR is not installed "
                                   "(rapidocr-onnxruntime): pip install 'rag-zh[ocr]'")
        assert info.value.zh == f"{path.name}：{kind} 是扫描件，需要安装 OCR 组件"
    # a mixed PDF reads as it always did: its text layer pages, the scanned one left empty
    mixed = tmp_path / "mixed.pdf"
    _scanned_pdf(mixed, [["第一页：岳麓山海拔三百米。"], Image.new("RGB", (200, 80), "gray")])
    assert load_file(SourceFile(mixed, "mixed.pdf")).text == "第一页：岳麓山海拔三百米。\f"


def test_new_messages_are_in_the_catalogue_in_both_languages():
    for code in ("ocr.needs_package", "ocr.no_text", "image.too_many_pixels"):
        entry = CATALOGUE[code]
        assert "{name}" in entry.en.text and "{name}" in entry.zh.text


def _quad(x0: float, y0: float, x1: float, y1: float, tilt: float = 0.0) -> list[list[float]]:
    """A box's corners (top left, top right, bottom right, bottom left), its right side lowered by ``tilt``."""
    return [[x0, y0], [x1, y0 + tilt], [x1, y1 + tilt], [x0, y1]]


def test_reading_order_columns_then_rows_tables_by_row_and_a_tilted_page():
    title = (_quad(100, 50, 1100, 90), "两栏版面的标题横跨整个页面宽度", 0.99)
    left = [(_quad(100, 150 + 50 * i, 580, 185 + 50 * i), f"左栏第{i}行的正文内容在这里", 0.9) for i in range(4)]
    right = [(_quad(640, 150 + 50 * i, 1120, 185 + 50 * i), f"右栏第{i}行的正文内容在这里", 0.9) for i in range(4)]
    found = [title, *[x for pair in zip(right, left) for x in pair]]  # as a detector may list them: row by row
    order = [line.text for line in lines_in_order(found, 1240, 1754)]
    assert order == [title[1], *(t for _, t, _ in left), *(t for _, t, _ in right)]

    cells = [(_quad(100 + 200 * c, 100 + 60 * r, 250 + 200 * c, 140 + 60 * r), f"格{r}{c}", 0.9)
             for r in range(3) for c in range(3)]
    rows = lines_in_order(list(reversed(cells)), 1240, 1754)
    assert [line.text for line in rows] == ["格00 格01 格02", "格10 格11 格12", "格20 格21 格22"]
    assert rows[0].box == pytest.approx((100 / 1240, 100 / 1754, 650 / 1240, 140 / 1754), abs=1e-4)

    # tilted 2 degrees: a line's right end sits lower than the next line's left end starts
    tilted = [(_quad(100, 100 + 45 * i, 1100, 135 + 45 * i, tilt=35), f"倾斜的第{i}行文字内容", 0.9) for i in range(5)]
    assert [line.text for line in lines_in_order(tilted[::-1], 1240, 1754)] == [t for _, t, _ in tilted]


def test_broken_text_layers_are_told_from_real_ones():
    assert broken_text_layer("") and broken_text_layer(" \n ")
    assert broken_text_layer("(cid:12)(cid:345)(cid:6)") and broken_text_layer("\ue000\ue001\ue002本")
    assert not broken_text_layer("第一页：长沙市岳麓区概况。") and not broken_text_layer("Page 1 of 3 — 概况")


@pytest.mark.slow
def test_scanned_pdf_without_a_text_layer_is_answered_with_the_page(tmp_path):
    path = tmp_path / "scan.pdf"
    _scanned_pdf(path, [_text_image(LIBRARY), _text_image(BRIDGE)])
    doc = load_file(SourceFile(path, "scan.pdf"))
    pages = doc.text.split("\f")
    assert len(pages) == 2 and "四十二万册" in pages[0] and "一千二百五十米" in pages[1]
    assert {b[2] for b in doc.boxes} == {1, 2}
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.add(path)
    a = rag.ask("湘江大桥全长多少米？")
    assert not a.abstained and "一千二百五十米" in a.answer
    assert a.citations[0].page == 2 and all(b[0] == 2 for b in a.citations[0].boxes)


@pytest.mark.slow
def test_multipage_tiff_pages_and_a_blank_scan(tmp_path):
    path = tmp_path / "scan.tiff"
    first, second = _text_image(LIBRARY), _text_image(BRIDGE)
    first.save(path, save_all=True, append_images=[second])
    doc = load_file(SourceFile(path, "scan.tiff"))
    assert doc.encoding == "tiff" and doc.text.count("\f") == 1 and {b[2] for b in doc.boxes} == {1, 2}
    blank = tmp_path / "blank.pdf"
    _scanned_pdf(blank, [Image.new("RGB", (300, 100), "white")])
    with pytest.raises(LoaderError) as info:
        load_file(SourceFile(blank, "blank.pdf"))
    assert info.value.code == "ocr.no_text"


@pytest.mark.slow
def test_a_tilted_noisy_traditional_scan_is_read(tmp_path):
    import numpy as np

    lines = ["臺北市立圖書館總館於民國七十五年啟用。", "館藏圖書超過一百二十萬冊，每日開放十二小時。"]
    fonts = sorted(Path("/usr/share/fonts").rglob("NotoSansCJK-Regular.ttc"))
    if not fonts:
        missing("fonts-noto-cjk is not installed")
    font = ImageFont.truetype(str(fonts[0]), 30, index=3)  # face 3: TC
    im = Image.new("L", (1000, 220), 255)
    for i, line in enumerate(lines):
        ImageDraw.Draw(im).text((50, 50 + 60 * i), line, font=font, fill=0)
    im = im.rotate(1.5, resample=Image.Resampling.BICUBIC, fillcolor=255)
    noisy = np.asarray(im, dtype=np.float32) + np.random.default_rng(1).normal(0, 20, (220, 1000))
    path = tmp_path / "tc.webp"
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=80)
    doc = load_file(SourceFile(path, "tc.webp"))
    got = doc.text.split("\n")
    # traditional is the recogniser's weak script (docs/documents.md: 79% on a full page): both lines, their
    # facts, and nine characters in ten once folded to simplified, as retrieval compares them
    assert len(got) == 2 and "七十五年" in got[0] and "一百二十萬" in got[1]
    folded = difflib.SequenceMatcher(None, fold_script(doc.text), fold_script("\n".join(lines)), autojunk=False)
    assert folded.ratio() >= 0.9
