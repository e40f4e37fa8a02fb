"""The chat page in headless Chromium, against `rag serve` on a free loopback port.

Screenshots go to test-output/ (git-ignored). Skipped only when Chromium or its driver is missing, and
failed then in CI (`make test-deps` installs both, and CJK fonts for readable screenshots).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, SEED_FILE, missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = ROOT / "test-output"
RAG_BIN = Path(sys.executable).parent / "rag"

SEED_Q = "蓝风微短剧基地从签约到试运营用了多少天？"
UPLOAD_NAME = "kite-festival.txt"
UPLOAD_TEXT = "紫藤镇风筝节于每年四月十八日举行。\n今年的紫藤镇风筝节吸引游客两万三千人，创历史新高。\n"
UPLOAD_Q = "紫藤镇风筝节今年吸引了多少游客？"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(seed_index, tmp_path_factory):
    """`rag serve` over a copy of the seed index; yields (base URL, log file)."""
    yield from _rag_serve(seed_index, tmp_path_factory, api_key=None)


@pytest.fixture(scope="module")
def served_with_key(seed_index, tmp_path_factory):
    """The same with RAG_API_KEY set: uploads need the key typed into the page."""
    yield from _rag_serve(seed_index, tmp_path_factory, api_key=SERVER_KEY)


SERVER_KEY = "page-k3y"


def _rag_serve(seed_index, tmp_path_factory, api_key: str | None, extra_env: dict[str, str] | None = None):
    """`rag serve` over a copy of the seed index, ``extra_env`` added to its environment.

    Yields (base URL, log file); the served index is the folder ``index`` beside the log."""
    _need_chromium()
    tmp = tmp_path_factory.mktemp("ui")
    index = tmp / "index"
    shutil.copytree(seed_index, index)
    port = free_port()
    log = tmp / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "RAG_API_KEY"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", RAG_PROGRESS="false", GRADIO_ANALYTICS_ENABLED="False")
    if api_key:
        env["RAG_API_KEY"] = api_key
    env.update(extra_env or {})
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(RAG_BIN), "serve", "--index-dir", str(index), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rag serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag serve did not answer /health within 150 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _need_chromium() -> None:
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not tool.exists():
            missing(f"{tool} is missing (install chromium and chromium-driver: make test-deps)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """An English browser: the page follows it (ui.app.LANG_JS), so the tests read English labels."""
    yield from chromium(tmp_path_factory, "en-US")


@pytest.fixture(scope="module")
def browser_zh(tmp_path_factory):
    """A Chinese browser (zh-CN): the page opens in Chinese."""
    yield from chromium(tmp_path_factory, "zh-CN")


def chromium(tmp_path_factory, lang: str):
    """A headless Chromium whose language (UI and Accept-Language) is ``lang``; quit when the generator closes."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _need_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1400,1200", f"--lang={lang}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"intl.accept_languages": lang})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(90)
    SHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, css: str, timeout: float, text: str | None = None, within: str | None = None,
             visible: bool = True):
    """The (visible) elements matching ``css`` (whose text holds ``text``, if given), waiting at most ``timeout`` s."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        try:
            root = driver.find_element(By.CSS_SELECTOR, within) if within else driver
            found = [e for e in root.find_elements(By.CSS_SELECTOR, css) if e.is_displayed() or not visible]
            if found and (text is None or any(text in e.text for e in found)):
                return found
        except StaleElementReferenceException:
            pass
        if time.monotonic() > deadline:
            name = re.sub(r"[^A-Za-z0-9_-]+", "-", css).strip("-")[:40]
            driver.save_screenshot(str(SHOTS / f"ui-timeout-{name}.png"))
            raise AssertionError(f"no visible {css!r}{f' with {text!r}' if text else ''} within {timeout} s")
        time.sleep(0.4)


TAB_ZH = {"Chat": "问答", "Documents": "文档", "Retrieval test": "检索测试"}


def open_tab(driver, label: str) -> None:
    """Click the tab named ``label`` (its English name; the Chinese one, where the page is in Chinese)."""
    from selenium.webdriver.common.by import By

    zh = TAB_ZH.get(label, label)
    driver.find_element(By.XPATH, f"//button[@role='tab' and (normalize-space(.)='{label}' or normalize-space(.)='{zh}')]"
                        ).click()


def ask(driver, question: str) -> None:
    box = wait_for(driver, "#rag-question textarea", 30)[0]
    box.clear()
    box.send_keys(question)
    wait_for(driver, "#rag-ask", 10)[0].click()


def last_answer(driver, timeout: float, expect: str):
    """The newest finished answer (not the pending one), once it contains ``expect``."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            done = driver.find_elements(By.CSS_SELECTOR, "#rag-chat .rag-answer:not(.rag-pending)")
            last = done[-1].text if done else ""
            if done and expect in last:
                return done[-1]
        except StaleElementReferenceException:
            pass
        if time.monotonic() > deadline:
            driver.save_screenshot(str(SHOTS / "ui-timeout-answer.png"))
            raise AssertionError(f"no answer with {expect!r} within {timeout} s; the last one: {last!r}")
        time.sleep(0.4)


def test_ask_upload_and_ask_again(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, log = served
    assert f"http://127.0.0.1:{base.rsplit(':', 1)[1]}/" in log.read_text()  # `rag serve` prints its URL
    driver = browser
    driver.get(base + "/")
    wait_for(driver, "#rag-question textarea", 90)
    assert "Example questions" in driver.page_source

    # 1. the seed question: an answer with 47天 and a visible, numbered source with the quote marked
    ask(driver, SEED_Q)
    answer = last_answer(driver, 120, "47天")
    assert "47天" in answer.find_element(By.CSS_SELECTOR, ".rag-text").text
    source = answer.find_element(By.CSS_SELECTOR, ".rag-sources .rag-source")
    assert source.is_displayed()
    assert source.find_element(By.CSS_SELECTOR, ".rag-n").text == "[1]"
    assert SEED_FILE.name in source.find_element(By.CSS_SELECTOR, ".rag-doc").text
    assert "score" in source.find_element(By.CSS_SELECTOR, ".rag-score").text
    assert "47天" in source.find_element(By.CSS_SELECTOR, "mark.rag-quote").text
    driver.save_screenshot(str(SHOTS / "ui-answer.png"))

    # 2. a question that the documents cannot answer: the not-found state is shown
    ask(driver, "火星上有多少座城市？")
    missing = last_answer(driver, 120, "Not found in the documents")
    assert missing.find_element(By.CSS_SELECTOR, ".rag-notfound").is_displayed()

    # 3. upload a txt file through the page; it appears in the documents table
    doc = tmp_path / UPLOAD_NAME
    doc.write_text(UPLOAD_TEXT, encoding="utf-8")
    open_tab(driver, "Documents")
    wait_for(driver, "#rag-upload input[type=file]", 30, visible=False)  # hidden, yet Chromium accepts files
    driver.find_element(By.CSS_SELECTOR, "#rag-upload input[type=file]").send_keys(str(doc))
    wait_for(driver, "#rag-upload", 60, text=Path(UPLOAD_NAME).stem)  # shown as stem + suffix
    wait_for(driver, "#rag-add", 10)[0].click()
    wait_for(driver, "#rag-doc-status .rag-status-ok", 120, text=UPLOAD_NAME)
    wait_for(driver, "#rag-documents", 30, text=UPLOAD_NAME)
    driver.save_screenshot(str(SHOTS / "ui-upload.png"))

    # 4. ask about the uploaded file: answered from it, with it as the source
    open_tab(driver, "Chat")
    ask(driver, UPLOAD_Q)
    answer = last_answer(driver, 120, "两万三千")
    docs = [e.text for e in answer.find_elements(By.CSS_SELECTOR, ".rag-sources .rag-doc")]
    assert UPLOAD_NAME in docs
    driver.execute_script("arguments[0].scrollIntoView(true);", answer)
    driver.save_screenshot(str(SHOTS / "ui-upload-answer.png"))

    # 5. an example question, one click
    driver.find_element(By.XPATH, "//button[contains(., '军门社区的老党员')]").click()
    last_answer(driver, 120, "邱沛霖")
    driver.save_screenshot(str(SHOTS / "ui-example.png"))


def _chat_view(driver) -> dict[str, float]:
    """The chat's scroll box (the nearest scrolling ancestor of a question) and where the newest answer
    and the newest question sit in it (px from its visible top)."""
    return driver.execute_script("""
      const q = document.querySelector('#rag-chat .rag-q');
      let box = q.parentElement;
      while (box && !(box.scrollHeight > box.clientHeight && /auto|scroll/.test(getComputedStyle(box).overflowY))) {
        box = box.parentElement;
      }
      const last = [...document.querySelectorAll('#rag-chat .rag-answer')].pop().getBoundingClientRect();
      const asked = [...document.querySelectorAll('#rag-chat .rag-q')].pop().getBoundingClientRect();
      const view = box.getBoundingClientRect();
      return {top: box.scrollTop, height: box.scrollHeight, client: box.clientHeight,
              answer_top: last.top - view.top, answer_bottom: last.bottom - view.top,
              question_top: asked.top - view.top, question_bottom: asked.bottom - view.top};""")


def test_the_chat_scrolls_to_a_new_answer_after_closest_passages_were_opened_and_read(served, browser):
    """Gradio follows new messages only while the view is within 100 px of the bottom: an open
    "closest passages" block below the fold, read by scrolling into it, left every later answer
    out of sight."""
    base, _ = served
    driver = browser
    driver.get(base + "/")
    wait_for(driver, "#rag-question textarea", 90)
    answer = two_unanswered(driver)  # not answered: all passages are in the folded "closest passages"
    more = open_and_read_passages(driver, answer)
    ask_and_see_it_followed(driver, more, "ui-scroll-after-open-passages.png")


def two_unanswered(driver, timeout: float = 120):
    """Ask two questions the documents do not answer; the first answer, with the second below it.

    The first answer's "closest passages", opened and scrolled to, are then far from the chat's
    bottom whatever the fonts and passage lengths: with one answer alone the opened block could end
    within 100 px of the bottom, where Gradio still follows, and the test would prove nothing."""
    from selenium.webdriver.common.by import By

    for question in ("火星上有多少座城市？", "月球上有几条河流？"):
        ask(driver, question)
        deadline = time.monotonic() + timeout
        while True:
            done = driver.find_elements(By.CSS_SELECTOR, "#rag-chat .rag-answer:not(.rag-pending) .rag-notfound")
            questions = driver.find_elements(By.CSS_SELECTOR, "#rag-chat .rag-q")
            if len(done) == len(questions):
                break
            assert time.monotonic() < deadline, "no answer in time"
            time.sleep(0.3)
    return driver.find_elements(By.CSS_SELECTOR, "#rag-chat .rag-answer:not(.rag-pending)")[0]


def open_and_read_passages(driver, answer):
    """Open ``answer``'s "closest passages" and scroll to their start, far from the chat's bottom; the block."""
    from selenium.webdriver.common.by import By

    more = answer.find_element(By.CSS_SELECTOR, "details.rag-more")
    more.find_element(By.TAG_NAME, "summary").click()
    wait_for(driver, "#rag-chat details.rag-more[open] .rag-source", 10)
    # Opening the block grows the chat while its view is still at the bottom, and Gradio follows that
    # growth 300 ms later: scrolled up sooner, the view was pulled back down before it was measured
    time.sleep(1.0)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", more)
    time.sleep(0.5)
    before = _chat_view(driver)
    assert before["top"] + before["client"] < before["height"] - 100, before  # the state that used to stick
    return more


def ask_and_see_it_followed(driver, more, shot: str) -> dict[str, float]:
    """Ask a new question; its answer is in view at the chat's bottom, and ``more`` is still open."""
    ask(driver, "李发顺邀请总书记一起制作什么？")
    last_answer(driver, 120, "大米粑粑")
    time.sleep(1.0)  # Gradio's own scrolling waits 300 ms after a render
    view = _chat_view(driver)
    driver.save_screenshot(str(SHOTS / shot))
    assert more.get_attribute("open") is not None  # still open: the reader's choice is kept
    assert 0 <= view["answer_top"] < view["client"], f"the new answer is out of sight: {view}"
    assert view["top"] + view["client"] >= view["height"] - 2, f"not scrolled to the bottom: {view}"
    return view


def test_with_a_server_key_the_page_uploads_once_the_key_is_typed(served_with_key, browser, tmp_path):
    """The file box uploads before any event runs and cannot send a header: the key typed in the
    page buys the HttpOnly session cookie that the upload route accepts."""
    from selenium.webdriver.common.by import By

    base, _ = served_with_key
    doc = tmp_path / "lantern.txt"
    doc.write_text("青石村灯会共展出花灯八百盏，吸引游客一万二千人。", encoding="utf-8")
    driver = browser
    driver.delete_all_cookies()
    driver.get(base + "/")
    wait_for(driver, "#rag-question textarea", 90)
    open_tab(driver, "Documents")
    # without the key the route refuses the file
    assert httpx.post(f"{base}/gradio_api/upload", files=[("files", ("x.txt", b"x", "text/plain"))]).status_code == 401
    key = wait_for(driver, "#rag-key input", 30)[0]
    key.send_keys(SERVER_KEY)
    key.send_keys("\t")  # leave the box: its change event exchanges the key for the cookie
    deadline = time.monotonic() + 30
    while not any(c["name"] == "rag_session" for c in driver.get_cookies()):
        assert time.monotonic() < deadline, f"no session cookie: {driver.get_cookies()}"
        time.sleep(0.3)
    cookie = next(c for c in driver.get_cookies() if c["name"] == "rag_session")
    assert cookie["httpOnly"] and cookie.get("sameSite") == "Strict" and SERVER_KEY not in cookie["value"]
    driver.find_element(By.CSS_SELECTOR, "#rag-upload input[type=file]").send_keys(str(doc))
    wait_for(driver, "#rag-upload", 60, text="lantern")
    wait_for(driver, "#rag-add", 10)[0].click()
    wait_for(driver, "#rag-doc-status .rag-status-ok", 120, text="lantern.txt")
    wait_for(driver, "#rag-documents", 30, text="lantern.txt")
    driver.save_screenshot(str(SHOTS / "ui-upload-with-key.png"))
