"""The retrieval test tab in headless Chromium, against `rag serve` (the set-up of test_ui_browser).

Screenshots go to test-output/retrieval-*.png.
"""

from __future__ import annotations

import re

import pytest
from conftest import SEED_FILE
from test_ui_browser import SEED_Q, SHOTS, open_tab, wait_for

# the fixtures, imported as themselves: the same `rag serve` and Chromium set-up as the chat page's tests
from test_ui_browser import browser as browser
from test_ui_browser import served as served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NUMBER = re.compile(r"^[+-]?\d+\.\d{4}")
RESULT = "#rag-rt-result"


def _field(driver, elem_id: str):
    """The text box of a Gradio Textbox (an input or a textarea, by Gradio version and lines)."""
    return wait_for(driver, f"#{elem_id} textarea, #{elem_id} input", 30)[0]


def _search(driver, facts_holding: str) -> None:
    """Click search and wait until the facts line (or the result) holds ``facts_holding``."""
    wait_for(driver, "#rag-rt-search", 10)[0].click()
    wait_for(driver, RESULT, 120, text=facts_holding)


def _rows(driver) -> list[dict[str, str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"{RESULT} tbody tr")
    cols = ("pos", "score", "fused", "dense", "bm25", "rerank", "doc", "loc", "text")
    return [{c: row.find_element(By.CSS_SELECTOR, f"td.rt-{c}").text for c in cols} for row in rows]


def _set_weight(driver, value: str) -> None:
    """Type ``value`` into the weight slider's number box; Gradio takes it on Enter."""
    from selenium.webdriver.common.keys import Keys

    box = wait_for(driver, "#rag-rt-weight input[type=number]", 10)[0]
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value, Keys.ENTER)


def test_the_retrieval_test_tab_shows_why_a_passage_won(served, browser):
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser
    driver.get(base + "/")
    wait_for(driver, "#rag-question textarea", 90)
    open_tab(driver, "Retrieval test")
    _field(driver, "rag-rt-query").send_keys(SEED_Q)

    # 1. the defaults: the seed passage first, every score filled, the query's words marked
    _search(driver, "coverage")
    rows = _rows(driver)
    assert rows and rows[0]["pos"] == "1" and rows[0]["doc"] == SEED_FILE.name and "蓝风微短剧基地" in rows[0]["text"]  # the passage that answers (its 47天 is past the shown start)
    for name in ("score", "fused", "dense", "bm25", "rerank"):
        assert NUMBER.match(rows[0][name]), (name, rows[0])
    assert re.search(r"#\d+$", rows[0]["dense"]) and re.search(r"#\d+$", rows[0]["bm25"])
    marks = driver.find_elements(By.CSS_SELECTOR, f"{RESULT} tbody tr[data-rank='1'] mark.rt-term")
    assert "基地" in {m.text for m in marks}  # the question's words are marked
    facts = driver.find_element(By.CSS_SELECTOR, f"{RESULT} .rt-facts").text
    assert "BM25 weight 0.70 ×" in facts and "time" in facts
    table = driver.find_element(By.CSS_SELECTOR, f"{RESULT} table.rt")
    assert table.is_displayed() and table.size["width"] <= driver.find_element(By.CSS_SELECTOR, RESULT).size["width"]
    driver.save_screenshot(str(SHOTS / "retrieval-hybrid.png"))
    fused_default = {r["doc"] + r["text"][:40]: r["fused"] for r in rows}

    # 2. weight 0: BM25 no longer counts, the fused score is the normalised cosine (1 for the best)
    _set_weight(driver, "0")
    _search(driver, "BM25 weight 0.00 ×")
    rows = _rows(driver)
    fused = [float(r["fused"]) for r in rows]
    assert max(fused) == pytest.approx(1.0, abs=1e-4)
    changed = [k for k, v in ((r["doc"] + r["text"][:40], r["fused"]) for r in rows) if fused_default.get(k, v) != v]
    assert changed, "the fused scores did not change with the weight"
    driver.save_screenshot(str(SHOTS / "retrieval-weight-0.png"))

    # 3. re-rank off: no bonus anywhere
    wait_for(driver, "#rag-rt-rerank input[type=checkbox]", 10)[0].click()
    _search(driver, "re-rank weight 0.000")
    rows = _rows(driver)
    assert rows and all(r["rerank"] == "+0.0000" for r in rows)
    driver.save_screenshot(str(SHOTS / "retrieval-no-rerank.png"))

    # 4. a document filter that matches nothing: the bilingual "no passages" note, no table
    _field(driver, "rag-rt-doc").send_keys("nothing-*.md")
    _search(driver, "No passages")
    note = wait_for(driver, f"{RESULT} .rt-empty", 10)[0].text
    assert "No passages" in note
    assert not driver.find_elements(By.CSS_SELECTOR, f"{RESULT} table.rt")
    driver.save_screenshot(str(SHOTS / "retrieval-no-passages.png"))

    # 5. a bad date: a bilingual error in the page, and the page still works
    doc = _field(driver, "rag-rt-doc")
    doc.clear()
    _field(driver, "rag-rt-from").send_keys("2023-1-1")
    _search(driver, "Search failed")
    assert "date_from must be a date like" in driver.find_element(By.CSS_SELECTOR, f"{RESULT} .rt-error").text
