"""See the source in headless Chromium: a citation in the chat opens the viewer in a new tab,
with the cited passage marked and scrolled into view. Reuses the `rag serve` and driver fixtures
of test_ui_browser.py; the screenshot goes to test-output/source-view.png."""

from __future__ import annotations

import time

from conftest import SEED_FILE
from test_ui_browser import SEED_Q, SHOTS, ask, browser, last_answer, pytestmark, served, wait_for  # noqa: F401

# pytestmark (browser, slow), and the fixtures `served` and `browser`, are test_ui_browser's


def test_clicking_a_citation_opens_the_cited_passage_in_a_new_tab(served, browser):  # noqa: F811 - fixtures
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser
    driver.get(base + "/")
    wait_for(driver, "#rag-question textarea", 90)
    ask(driver, SEED_Q)
    answer = last_answer(driver, 120, "47天")
    quote = answer.find_element(By.CSS_SELECTOR, ".rag-sources mark.rag-quote").text
    link = answer.find_element(By.CSS_SELECTOR, ".rag-text a.rag-view")
    # Gradio's sanitiser kept the link, its new-tab target and rel
    assert link.get_attribute("target") == "_blank" and "noopener" in (link.get_attribute("rel") or "")
    assert link.text == "[1]" and "/view?doc=" in link.get_attribute("href")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    driver.save_screenshot(str(SHOTS / "source-view-chat.png"))
    tabs = set(driver.window_handles)
    link.click()
    deadline = time.monotonic() + 30
    while not set(driver.window_handles) - tabs:
        assert time.monotonic() < deadline, "no new tab opened"
        time.sleep(0.2)
    chat_tab = driver.current_window_handle
    driver.switch_to.window((set(driver.window_handles) - tabs).pop())
    try:
        mark = wait_for(driver, "mark#cited", 30)[0]
        time.sleep(0.5)  # the page's scroll runs once it is parsed
        box = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "const h = document.querySelector('header').getBoundingClientRect();"
            "return {top: r.top, bottom: r.bottom, height: window.innerHeight, header: h.bottom};", mark)
        # in the viewport and not under the sticky header
        assert box["header"] <= box["top"] and box["bottom"] <= box["height"], f"the mark is out of view: {box}"
        assert "47天" in mark.text and mark.text.replace("\n", "") == quote.replace("\n", "")
        assert SEED_FILE.name in driver.find_element(By.CSS_SELECTOR, "header .doc").text
        assert driver.find_element(By.TAG_NAME, "h1").text == "数字潮涌产业兴 营商沃土育新机"
        assert driver.execute_script("return document.documentElement.lang") == "zh"
        driver.save_screenshot(str(SHOTS / "source-view.png"))
    finally:
        driver.close()
        driver.switch_to.window(chat_tab)
