"""The viewer's page picture (``GET /api/page``): a PDF page rendered with the cited lines outlined,
beside the page's text in ``/view``; bounded and refused where it must be."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from rag import RAG
from rag.http.app import create_api
from tests.pdfs import make_pdf

pytest.importorskip("pypdfium2")
Image = pytest.importorskip("PIL.Image")

PAGES = [["第一页：园区概况。", "天心经开区位于长沙市。"],
         ["第二页：产业发展。", "截至今年十月，园区已落地重点项目82个，", "其中高新技术企业224家。", "园区还建成了一个人工智能算力中心。"]]
OUTLINE = (245, 158, 11)  # rag.http.page_image draws the cited lines' boxes in this colour


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pdf")
    docs = tmp / "docs"
    docs.mkdir()
    make_pdf(docs / "report.pdf", PAGES)
    (docs / "note.txt").write_text("紫藤镇风筝节于每年四月十八日举行。", encoding="utf-8")
    rag = RAG.open(tmp / "idx", create=True, progress=False)
    rag.index([docs])
    return rag, TestClient(create_api(rag)), docs


def _outlined_rows(png: bytes) -> list[int]:
    """The picture's rows that hold the outline colour."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    px = image.load()
    return [y for y in range(image.height) if any(px[x, y] == OUTLINE for x in range(0, image.width, 1))]


@pytest.mark.slow
def test_the_cited_lines_are_outlined_on_their_page(served):
    rag, client, _ = served
    answer = rag.ask("园区有多少家高新技术企业？")
    c = answer.citations[0]
    assert c.doc_id == "report.pdf" and c.page == 2
    view = client.get("/view", params={"doc": c.doc_id, "start": c.start, "end": c.end})
    assert view.status_code == 200 and '<main class="paged"><figure class="page">' in view.text
    assert f"/api/page?doc=report.pdf&amp;page=2&amp;start={c.start}&amp;end={c.end}" in view.text
    assert "img-src 'self'" in view.headers["content-security-policy"]
    got = client.get("/api/page", params={"doc": c.doc_id, "page": 2, "start": c.start, "end": c.end})
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    rows = _outlined_rows(got.content)
    height = Image.open(io.BytesIO(got.content)).height
    assert rows and max(rows) < height * 0.25  # the two cited lines near the top of the page, nothing else
    plain = client.get("/api/page", params={"doc": c.doc_id, "page": 1})
    assert plain.status_code == 200 and not _outlined_rows(plain.content)  # nothing cited on page 1


def test_what_is_refused(served):
    _, client, _docs = served
    assert client.get("/api/page", params={"doc": "report.pdf", "page": 3}).status_code == 400
    assert client.get("/api/page", params={"doc": "note.txt", "page": 1}).status_code == 404  # not a PDF
    assert client.get("/api/page", params={"doc": "../../etc/passwd", "page": 1}).status_code in (400, 404)
    assert client.get("/api/page", params={"doc": "report.pdf", "page": "x"}).status_code == 400  # not a number
    view = client.get("/view", params={"doc": "note.txt"})
    assert view.status_code == 200 and "<figure" not in view.text  # a text file has no page picture


def test_a_file_changed_since_indexing_shows_no_page(served, tmp_path):
    _, client, docs = served
    pdf = docs / "report.pdf"
    original = pdf.read_bytes()
    try:
        pdf.write_bytes(original + b"\n% edited after indexing\n")
        got = client.get("/api/page", params={"doc": "report.pdf", "page": 1})
        assert got.status_code == 404 and "changed since it was indexed" in got.json()["error"]
    finally:
        pdf.write_bytes(original)
    assert client.get("/api/page", params={"doc": "report.pdf", "page": 1}).status_code == 200


@pytest.mark.slow  # one OCR run of an image and one of a scanned page
def test_a_scan_and_an_image_show_their_ocr_boxes_on_the_page(tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    from tests.ingest.test_ocr import BRIDGE, LIBRARY, _scanned_pdf, _text_image

    docs = tmp_path / "docs"
    docs.mkdir()
    _text_image(LIBRARY).save(docs / "notice.png")
    _scanned_pdf(docs / "mixed.pdf", [["第一页：长沙市岳麓区概况。", "岳麓山海拔三百米。"], _text_image(BRIDGE)])
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([docs])
    client = TestClient(create_api(rag))
    for question, doc, page in (("紫金县图书馆新馆藏书多少册？", "notice.png", 1), ("湘江大桥全长多少米？", "mixed.pdf", 2)):
        c = next(c for c in rag.ask(question).citations if c.doc_id == doc)
        view = client.get("/view", params={"doc": doc, "start": c.start, "end": c.end})
        assert f"page={page}" in view.text and '<figure class="page">' in view.text
        got = client.get("/api/page", params={"doc": doc, "page": page, "start": c.start, "end": c.end})
        assert got.status_code == 200 and _outlined_rows(got.content), doc  # the OCR'd line's box is drawn
        bare = client.get("/api/page", params={"doc": doc, "page": page})
        assert bare.status_code == 200 and not _outlined_rows(bare.content)
    assert client.get("/api/page", params={"doc": "notice.png", "page": 2}).status_code == 400
