"""The source viewer in headless Chromium shows a PDF's page as printed, the cited lines outlined on it,
beside the page's text with the citation marked. Screenshot: test-output/source-view-page.png."""

from __future__ import annotations

import pytest
from test_ui_browser import SHOTS, browser, pytestmark, wait_for  # noqa: F401 - the driver fixture and markers

from rag import RAG
from rag.http.app import create_api
from tests.pdfs import make_pdf
from tests.servers import serving

pytest.importorskip("pypdfium2")


def test_the_viewer_shows_the_cited_lines_outlined_on_the_rendered_page(tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "report.pdf", [["第一页：园区概况。", "天心经开区位于长沙市。"],
                                   ["第二页：产业发展。", "截至今年十月，园区已落地重点项目82个，", "其中高新技术企业224家。",
                                    "园区还建成了一个人工智能算力中心。"]])
    rag = RAG.open(tmp_path / "idx", create=True, progress=False)
    rag.index([docs])
    c = rag.ask("园区有多少家高新技术企业？").citations[0]
    with serving(create_api(rag)) as base:
        browser.get(f"{base}/view?doc=report.pdf&start={c.start}&end={c.end}")
        img = wait_for(browser, "figure.page img", 30)[0]
        loaded = browser.execute_script(
            "const i = arguments[0]; return i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null;",
            img)
        assert loaded and loaded[1] > loaded[0]  # a portrait page, drawn
        mark = browser.find_element(By.CSS_SELECTOR, "mark#cited")
        assert "224家" in mark.text
        side = browser.execute_script(
            "const a = arguments[0].getBoundingClientRect(), b = arguments[1].getBoundingClientRect();"
            "return a.right <= b.left + 1;", img, mark)
        assert side  # the picture stands left of the text, not above it, on a wide window
        browser.save_screenshot(str(SHOTS / "source-view-page.png"))
