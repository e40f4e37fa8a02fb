"""The chat shows doubt and stays readable, in headless Chromium against `rag serve` (test_ui_browser's
server and driver): an answer's confidence is shown, the chat's floating label covers no message, and the
feedback box a 👎 opens is scrolled into view. Screenshot: test-output/chat-doubt.png."""

from __future__ import annotations

import time

import pytest
from test_chat_features import thumb
from test_ui_browser import SEED_Q, SHOTS, ask, last_answer, wait_for
from test_ui_browser import browser as browser  # the en-US driver, imported as itself: a fixture
from test_ui_browser import served as served  # `rag serve` over the seed index, likewise

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABEL = "Conversation"


def _covered(driver, scroll: int) -> dict:
    """With the chat's scroll box at ``scroll`` px, the chat's label (the element holding just its text)
    and the visible message rows it overlaps (viewport rectangles)."""
    return driver.execute_script("""
      const chat = document.getElementById('rag-chat');
      let box = chat.querySelector('.rag-q').parentElement;
      while (box && !/auto|scroll/.test(getComputedStyle(box).overflowY)) box = box.parentElement;
      box.scrollTop = arguments[1];
      const label = [...chat.querySelectorAll('*')].filter(e => e.textContent.trim() === arguments[0]
                     && e.offsetParent !== null).pop();
      const rect = e => { const r = e.getBoundingClientRect();
                          return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
      const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
      const view = rect(box);
      const rows = [...chat.querySelectorAll('.message-row')].map(rect).filter(r => hit(r, view))
        .map(r => ({...r, top: Math.max(r.top, view.top), bottom: Math.min(r.bottom, view.bottom)}));
      const shown = label ? rect(label.closest('label') || label) : null;
      return {label: shown, rows: rows.length, scrolled: box.scrollTop,
              covered: shown ? rows.filter(r => hit(r, shown)) : []};""", LABEL, scroll)


def test_the_answer_shows_its_confidence_and_no_label_covers_the_first_message(served, browser):
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser
    driver.set_window_size(1400, 800)  # a laptop's screen: the feedback box starts below the fold
    try:
        driver.get(base + "/")
        wait_for(driver, "#rag-question textarea", 90)
        ask(driver, SEED_Q)
        answer = last_answer(driver, 120, "47天")
        meta = answer.find_element(By.CSS_SELECTOR, ".rag-meta")
        assert "confidence" in meta.text, meta.text
        shown = float(meta.find_element(By.CSS_SELECTOR, ".rag-confidence").text.rsplit(" ", 1)[1])
        assert 0.0 <= shown <= 1.0
        ask(driver, "李发顺邀请总书记一起制作什么？")  # a second answer: the chat scrolls
        last_answer(driver, 120, "大米粑粑")
        time.sleep(1.0)
        driver.execute_script("window.scrollTo(0, 0)")
        for scroll in (0, 120):  # the first message, then the answer scrolled up to where the label floated
            seen = _covered(driver, scroll)
            assert seen["rows"] and seen["label"] is not None, seen  # the label is still shown, and messages
            assert seen["scrolled"] == scroll, seen
            assert not seen["covered"], f"the label {LABEL!r} covers a message: {seen}"
        _covered(driver, 0)
        driver.save_screenshot(str(SHOTS / "chat-doubt.png"))

        # a 👎 opens the feedback box: it is brought into the window, not left below the fold
        driver.execute_script("window.scrollTo(0, 0)")
        thumb(driver, 0, "down").click()
        box = wait_for(driver, "#rag-feedback", 30)[0]
        deadline = time.monotonic() + 10
        while True:
            top, bottom, height = driver.execute_script(
                "const r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom, window.innerHeight];", box)
            if top >= 0 and bottom <= height + 1:
                break
            assert time.monotonic() < deadline, f"the feedback box is out of the window: {top}-{bottom} of {height}"
            time.sleep(0.3)
        driver.save_screenshot(str(SHOTS / "chat-doubt-feedback.png"))
    finally:
        driver.set_window_size(1400, 1200)
