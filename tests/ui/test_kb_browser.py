"""Knowledge bases managed in the documents tab, the confirmation before deleting, the chunk browser, the
language switch, a doubtful answer, and keys per base: in headless Chromium against `rag serve` (the set-up
of test_ui_browser). Screenshots go to test-output/ (kb-*.png, lang-*.png, doubt-*.png, keys-*.png)."""

from __future__ import annotations

import time

import pytest
from conftest import SEED_FILE
from test_chat_features import choose, table_rows, wait_rows
from test_ui_browser import SEED_Q, SHOTS, _rag_serve, ask, last_answer, open_tab, wait_for
from test_ui_browser import browser as browser  # the en-US driver, imported as itself: a fixture
from test_ui_browser import browser_zh as browser_zh  # the zh-CN driver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOUBTFUL_Q = "天心经开区有多少家高新技术企业？"  # the reader is unsure of its answer (tests/generation/test_answers.py)


@pytest.fixture(scope="module")
def served(seed_index, tmp_path_factory):
    """`rag serve` over a copy of the seed index, with an empty knowledge-base root of its own."""
    root = tmp_path_factory.mktemp("kbs")
    yield from _rag_serve(seed_index, tmp_path_factory, api_key=None, extra_env={"RAG_KB_ROOT": str(root)})


@pytest.fixture(scope="module")
def keyed(seed_index, tmp_path_factory):
    """`rag serve` with a keys file (RAG_KEYS_FILE) and the bases news and secret; yields (URL, {name: key})."""
    from rag import RAG
    from rag.access import Access

    tmp = tmp_path_factory.mktemp("keyed")
    for name in ("news", "secret"):
        RAG.open(tmp / "kbs" / name, create=True, progress=False).index([])
    ring = Access(None, tmp / "keys.json").ring
    keys = {"reader": ring.add("reader", read="news"), "boss": ring.add("boss", read="*", write="*", manage=True)}
    env = {"RAG_KB_ROOT": str(tmp / "kbs"), "RAG_KEYS_FILE": str(tmp / "keys.json")}
    for base, _ in _rag_serve(seed_index, tmp_path_factory, api_key=None, extra_env=env):
        yield base, keys


def open_page(driver, base: str) -> None:
    driver.get(base + "/")
    wait_for(driver, "#rag-question textarea", 90)
    time.sleep(1.0)  # the page's load events (the language, the pickers) settle


def field(driver, elem_id: str):
    return wait_for(driver, f"#{elem_id} textarea, #{elem_id} input", 30)[0]


def options(driver, elem_id: str) -> list[str]:
    """The choices a Gradio dropdown offers (opened, read, closed)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_for(driver, f"#{elem_id} input", 10)
    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    box.click()
    if box.get_attribute("value"):  # a single choice's box holds it: cleared, the list shows every choice
        box.send_keys(Keys.CONTROL, "a")  # (not in an empty box: a backspace there takes a multiselect's token)
        box.send_keys(Keys.BACK_SPACE)
    time.sleep(0.5)
    found = [e.get_attribute("aria-label") for e in driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} li[role=option]")]
    box.send_keys(Keys.ESCAPE)
    driver.find_element(By.TAG_NAME, "h2").click()  # leave the box: its value comes back
    time.sleep(0.3)
    return found


def status(driver, text: str, kind: str = "ok", timeout: float = 60) -> str:
    return wait_for(driver, f"#rag-doc-status .rag-status-{kind}", timeout, text=text)[0].text


def shown_tabs(driver) -> list[str]:
    """The tab bar's buttons a user sees."""
    from selenium.webdriver.common.by import By

    return [b.text.strip() for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.is_displayed()]


def test_bases_are_created_renamed_and_deleted_with_a_confirmation(served, browser):
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser
    open_page(driver, base)
    open_tab(driver, "Retrieval test")  # its first visit once gave the tab bar a second "Retrieval test"
    assert shown_tabs(driver) == ["Chat", "Documents", "Retrieval test"]
    open_tab(driver, "Documents")
    field(driver, "rag-kb-name").send_keys("news")
    wait_for(driver, "#rag-kb-create", 10)[0].click()
    status(driver, "Created the knowledge base news")
    wait_for(driver, "#rag-summary", 30, text="Knowledge base news: 0 documents")
    assert options(driver, "rag-doc-kb") == ["default", "news"]
    open_tab(driver, "Retrieval test")
    assert options(driver, "rag-rt-base") == ["default", "news"]
    open_tab(driver, "Chat")
    assert "news" in options(driver, "rag-kbs")  # every picker shows the new base at once

    open_tab(driver, "Documents")
    field(driver, "rag-kb-newname").send_keys("daily")
    wait_for(driver, "#rag-kb-rename", 10)[0].click()
    status(driver, "Renamed the knowledge base news to daily")
    assert options(driver, "rag-doc-kb") == ["default", "daily"]
    assert shown_tabs(driver) == ["Chat", "Documents", "Retrieval test"]

    # deleting asks first: the row says what goes; Cancel keeps it
    wait_for(driver, "#rag-kb-delete", 10)[0].click()
    row = wait_for(driver, "#rag-confirm", 30)[0]
    assert "Delete daily? This removes the whole base (0 documents, 0 chunks)." in row.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    driver.save_screenshot(str(SHOTS / "kb-confirm-base.png"))
    wait_for(driver, "#rag-confirm-no", 10)[0].click()
    status(driver, "Cancelled: nothing was deleted")
    assert not any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, "#rag-confirm"))
    assert options(driver, "rag-doc-kb") == ["default", "daily"]
    wait_for(driver, "#rag-kb-delete", 10)[0].click()
    wait_for(driver, "#rag-confirm-yes", 30)[0].click()
    status(driver, "Deleted the knowledge base daily")
    assert options(driver, "rag-doc-kb") == ["default"]
    open_tab(driver, "Chat")
    assert options(driver, "rag-kbs") == ["default"]

    # the default says plainly that it stays; a bad name is refused in words
    open_tab(driver, "Documents")
    wait_for(driver, "#rag-kb-delete", 10)[0].click()
    status(driver, "cannot be renamed or deleted", "warn")
    field(driver, "rag-kb-name").send_keys("../x")
    wait_for(driver, "#rag-kb-create", 10)[0].click()
    assert "is not allowed" in status(driver, "Could not create the base", "error")


def test_the_page_follows_the_browser_language_and_the_switch_relabels_it(served, browser_zh):
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser_zh
    driver.get(base + "/")
    driver.execute_script("localStorage.removeItem('rag-lang')")
    open_page(driver, base)
    tabs = lambda: [t.text for t in driver.find_elements(By.XPATH, "//button[@role='tab']")]  # noqa: E731
    deadline = time.monotonic() + 30
    while tabs() != ["问答", "文档", "检索测试"]:
        assert time.monotonic() < deadline, tabs()
        time.sleep(0.3)
    assert driver.find_element(By.CSS_SELECTOR, "#rag-ask").text == "提问"
    assert "Ask" not in driver.find_element(By.CSS_SELECTOR, "#rag-ask").text
    ask(driver, DOUBTFUL_Q)
    answer = last_answer(driver, 120, "置信度")
    warning = answer.find_element(By.CSS_SELECTOR, ".rag-doubt")
    assert "请再确认" in warning.text and "please check" not in warning.text
    assert not answer.find_elements(By.CSS_SELECTOR, "strong.rag-answer-span")  # nothing bold when in doubt
    driver.save_screenshot(str(SHOTS / "lang-zh.png"))
    driver.save_screenshot(str(SHOTS / "doubt-zh.png"))

    # switch to English: every label, the tabs included; answers from now on in English
    driver.find_element(By.XPATH, "//*[@id='rag-lang']//label[contains(., 'English')]").click()
    deadline = time.monotonic() + 30
    while tabs() != ["Chat", "Documents", "Retrieval test"]:
        assert time.monotonic() < deadline, tabs()
        time.sleep(0.3)
    wait_for(driver, "#rag-ask", 10, text="Ask")
    assert "Knowledge bases" in driver.find_element(By.CSS_SELECTOR, "#rag-kbs").text
    ask(driver, DOUBTFUL_Q)
    answer = last_answer(driver, 120, "confidence")
    assert "please check" in answer.find_element(By.CSS_SELECTOR, ".rag-doubt").text
    assert "Sources" in answer.text or "Closest passages" in answer.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", answer)
    driver.save_screenshot(str(SHOTS / "doubt-en.png"))
    open_tab(driver, "Documents")
    headers = driver.find_element(By.CSS_SELECTOR, "#rag-documents").text
    assert "Document" in headers and "文档" not in headers

    # remembered: a reload opens in English, though the browser is Chinese
    open_page(driver, base)
    wait_for(driver, "#rag-ask", 30, text="Ask")
    assert tabs() == ["Chat", "Documents", "Retrieval test"]
    driver.save_screenshot(str(SHOTS / "lang-en.png"))
    driver.execute_script("localStorage.removeItem('rag-lang')")  # the zh-CN driver is shared: leave it Chinese


def test_with_a_keys_file_the_pickers_show_only_what_the_typed_key_may_read(keyed, browser):
    from selenium.webdriver.common.by import By

    base, keys = keyed
    driver = browser
    driver.delete_all_cookies()  # cookies are per host, not per port: none from another test's server
    try:
        open_page(driver, base)
        assert options(driver, "rag-kbs") == []  # without a key, nothing: not even the names
        assert SEED_FILE.name not in driver.page_source
        box = wait_for(driver, "#rag-chat-key input", 30)[0]  # reading needs a key: the box is on the chat tab
        box.send_keys(keys["reader"])
        box.send_keys("\t")  # leaving the box opens the session, then the pickers follow the key
        deadline = time.monotonic() + 30
        while (picked := [t.text.strip() for t in driver.find_elements(By.CSS_SELECTOR, "#rag-kbs .token")]) != ["news"]:
            assert time.monotonic() < deadline, picked
            time.sleep(0.3)
        assert options(driver, "rag-kbs") == ["news"]
        ask(driver, SEED_Q)
        last_answer(driver, 120, "Not found in the documents")  # news is empty; default is not this key's
        driver.save_screenshot(str(SHOTS / "keys-reader.png"))
        open_tab(driver, "Documents")
        assert options(driver, "rag-doc-kb") == ["news"]
        field(driver, "rag-kb-name").send_keys("made")
        wait_for(driver, "#rag-kb-create", 10)[0].click()
        status(driver, "may not create, rename or delete knowledge bases", "error")
    finally:
        driver.delete_all_cookies()


def test_a_document_is_deleted_only_on_confirm_and_the_browser_shows_a_chunk_in_full(served, browser):
    """Last in this module: it deletes the served index's only document."""
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser
    open_page(driver, base)
    open_tab(driver, "Documents")
    wait_rows(driver, "rag-documents", SEED_FILE.name)
    driver.execute_script("document.getElementById('rag-chunk-doc').scrollIntoView({block: 'center'})")
    time.sleep(1.0)
    choose(driver, "rag-chunk-doc", SEED_FILE.name)
    wait_rows(driver, "rag-chunks", "1")
    assert driver.find_element(By.CSS_SELECTOR, "#rag-doc-choice input").get_attribute("value") == ""  # apart
    cell = driver.find_elements(By.CSS_SELECTOR, "#rag-chunks .virtual-row[role=row] [role=gridcell]")[9]
    cell.click()  # row 2's last column
    full = wait_for(driver, "#rag-chunk-text .rag-chunk-body", 30)[0]
    head = driver.find_element(By.CSS_SELECTOR, "#rag-chunk-text .rag-chunk-head").text
    assert head.startswith("Chunk 2 of 19")
    first_words = table_rows(driver, "rag-chunks")[1][4].rstrip("…")
    assert " ".join(full.text.split()).startswith(first_words[:20]) and len(full.text) > len(first_words)
    scroll = driver.execute_script("const b = arguments[0]; return [b.scrollHeight, b.clientHeight];", full)
    assert scroll[1] <= 330  # a long chunk scrolls inside its box
    driver.execute_script("document.getElementById('rag-chunk-doc').scrollIntoView({block: 'start'})")
    driver.save_screenshot(str(SHOTS / "kb-chunk-full-text.png"))

    choose(driver, "rag-doc-choice", SEED_FILE.name)
    wait_for(driver, "#rag-delete", 10)[0].click()
    row = wait_for(driver, "#rag-confirm", 30)[0]
    assert f"Delete {SEED_FILE.name}? This removes 19 chunks." in row.text
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SHOTS / "kb-documents-tab.png"))
    assert table_rows(driver, "rag-documents")  # asked, not deleted
    wait_for(driver, "#rag-confirm-yes", 10)[0].click()
    status(driver, f"Deleted: {SEED_FILE.name}")
    deadline = time.monotonic() + 30
    while table_rows(driver, "rag-documents"):
        assert time.monotonic() < deadline, "the deleted document is still listed"
        time.sleep(0.3)
