"""The chat's newer parts in headless Chromium, against `rag serve` with a second knowledge base, ``kite``:
the knowledge-base picker, the documents tab's chunk table, 👍/👎 feedback down to `rag feedback export`,
following a new question with the feedback box open, long file names, and Gradio's upload text.

Reuses test_ui_browser's server and driver helpers; screenshots go to test-output/ (chat-*, documents-*).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, SEED_FILE
from test_ui_browser import (
    RAG_BIN,
    SEED_Q,
    SHOTS,
    UPLOAD_NAME,
    UPLOAD_Q,
    UPLOAD_TEXT,
    _rag_serve,
    ask,
    ask_and_see_it_followed,
    chromium,
    last_answer,
    open_and_read_passages,
    open_tab,
    two_unanswered,
    wait_for,
)
from test_ui_browser import browser as browser  # the en-US driver, imported as itself: a fixture
from test_ui_browser import browser_zh as browser_zh  # the zh-CN driver

from rag.uploads import safe_filename

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KITE = "kite"
NOT_FOUND = "Not found in the documents"
SEED_ARTICLE = "数字潮涌产业兴 营商沃土育新机"
SEED_CHUNKS = 19  # the seed document at the default 640-token chunks
# Chinese and ASCII with no space to break at: 120 characters before ".txt"
# (208 bytes in UTF-8; stored as its first 200 bytes and its suffix: rag.uploads.safe_filename)
LONG_NAME = ("紫藤镇风筝节历年游客统计与安全保障工作报告" * 2
             + "kite_festival_visitor_statistics_and_safety_report_2024_final_revised_version_")[:120] + ".txt"


@pytest.fixture(scope="module")
def kb_root(tmp_path_factory) -> Path:
    """A knowledge-base root holding ``kite``: the one document the seed index does not have."""
    from rag import RAG

    root = tmp_path_factory.mktemp("kbs")
    doc = tmp_path_factory.mktemp("kite-doc") / UPLOAD_NAME
    doc.write_text(UPLOAD_TEXT, encoding="utf-8")
    RAG.open(root / KITE, create=True, progress=False).index([doc])
    return root


@pytest.fixture(scope="module")
def served(seed_index, tmp_path_factory, kb_root):
    """`rag serve` over a copy of the seed index (the base ``default``), with ``kite`` under RAG_KB_ROOT."""
    yield from _rag_serve(seed_index, tmp_path_factory, api_key=None, extra_env={"RAG_KB_ROOT": str(kb_root)})


@pytest.fixture(scope="module")
def browser_en(tmp_path_factory):
    yield from chromium(tmp_path_factory, "en-US")


def open_page(driver, base: str) -> None:
    driver.get(base + "/")
    wait_for(driver, "#rag-question textarea", 90)


# ---- the knowledge-base picker -----------------------------------------------------------------
def picked(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [t.text.strip() for t in driver.find_elements(By.CSS_SELECTOR, "#rag-kbs .token")]


def pick_bases(driver, names: list[str]) -> None:
    """Make the picker's selection exactly ``names``: remove the others' tokens, then choose the missing ones."""
    from selenium.webdriver.common.by import By

    for _ in range(10):  # a token removed re-renders the rest: look again, a bounded number of times
        extra = [t for t in driver.find_elements(By.CSS_SELECTOR, "#rag-kbs .token") if t.text.strip() not in names]
        if not extra:
            break
        extra[0].find_element(By.CSS_SELECTOR, ".token-remove").click()
        time.sleep(0.3)
    for _ in range(5):  # the page's load event refreshes the picker: a choice made meanwhile is chosen again
        for name in names:
            if name in picked(driver):
                continue
            driver.find_element(By.CSS_SELECTOR, "#rag-kbs input").click()
            wait_for(driver, f"#rag-kbs li[role=option][aria-label='{name}']", 10)[0].click()
        driver.find_element(By.TAG_NAME, "h2").click()  # close the list
        time.sleep(0.5)
        if sorted(picked(driver)) == sorted(names):
            break
    assert sorted(picked(driver)) == sorted(names)


def source_bases(answer) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in answer.find_elements(By.CSS_SELECTOR, ".rag-sources span.rag-kb")]


def ask_anew(driver, question: str, expect: str):
    """Ask ``question`` and return its answer once it holds ``expect``: a new one, not an earlier answer
    to the same question (the newest finished answer is the earlier one until the new one is added)."""
    from selenium.webdriver.common.by import By

    before = len(driver.find_elements(By.CSS_SELECTOR, "#rag-chat .rag-answer"))
    ask(driver, question)
    deadline = time.monotonic() + 30
    while len(driver.find_elements(By.CSS_SELECTOR, "#rag-chat .rag-answer")) <= before:
        assert time.monotonic() < deadline, f"no new answer to {question!r}"
        time.sleep(0.2)
    return last_answer(driver, 120, expect)


def test_the_knowledge_base_picker_chooses_the_bases_a_question_is_asked(served, browser):
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser
    open_page(driver, base)
    wait_for(driver, "#rag-kbs .token", 30, text="default")
    driver.find_element(By.CSS_SELECTOR, "#rag-kbs input").click()
    # the list opens an option at a time: wait until the selected "default" is drawn too, then read them all
    wait_for(driver, "#rag-kbs li[role=option]", 10, text="default")
    options = [o.get_attribute("aria-label") for o in wait_for(driver, "#rag-kbs li[role=option]", 10)]
    assert options == ["default", KITE]

    # kite alone: answered from kite's document, and the source names its base
    pick_bases(driver, [KITE])
    answer = ask_anew(driver, UPLOAD_Q, "两万三千")
    assert any(KITE in b for b in source_bases(answer)), answer.get_attribute("innerHTML")[:2000]
    assert UPLOAD_NAME in [e.text for e in answer.find_elements(By.CSS_SELECTOR, ".rag-sources .rag-doc")]

    # default and kite together: still found, still kite's
    pick_bases(driver, ["default", KITE])
    answer = ask_anew(driver, UPLOAD_Q, "两万三千")
    cited = answer.find_elements(By.CSS_SELECTOR, ".rag-sources > .rag-source")
    assert cited and any(KITE in b for b in source_bases(cited[0])), answer.get_attribute("innerHTML")[:2000]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", answer)
    driver.save_screenshot(str(SHOTS / "chat-kb-picker.png"))

    # the default alone does not hold the fact: the abstention
    pick_bases(driver, ["default"])
    missing = ask_anew(driver, UPLOAD_Q, NOT_FOUND)
    assert missing.find_element(By.CSS_SELECTOR, ".rag-notfound").is_displayed()
    assert "两万三千" not in missing.find_element(By.CSS_SELECTOR, ".rag-notfound").text


# ---- the documents tab -------------------------------------------------------------------------
def table_rows(driver, elem_id: str) -> list[list[str]]:
    """The shown body rows of a Gradio 6 Dataframe: its virtual rows (only those in view are in the DOM;
    the table's hidden ``sizing-body`` copy only measures columns)."""
    return driver.execute_script("""
      return [...document.querySelectorAll(`#${arguments[0]} .virtual-row[role=row]`)]
        .map(row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.innerText.trim()))
        .filter(cells => cells.some(c => c));""", elem_id)


def wait_rows(driver, elem_id: str, holding: str, timeout: float = 30) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = table_rows(driver, elem_id)
        if any(holding in cell for row in rows for cell in row):
            return rows
        assert time.monotonic() < deadline, f"no row of #{elem_id} holds {holding!r}: {rows}"
        time.sleep(0.4)


def choose(driver, elem_id: str, option: str) -> None:
    """Choose ``option`` in a single-choice Gradio dropdown."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input").click()
    wait_for(driver, f"#{elem_id} li[role=option][aria-label='{option}']", 10)[0].click()


def test_the_documents_tab_lists_each_bases_documents_and_a_documents_chunks(served, browser):
    base, _ = served
    driver = browser
    open_page(driver, base)
    open_tab(driver, "Documents")
    rows = wait_rows(driver, "rag-documents", SEED_FILE.name)
    assert [r[0] for r in rows] == [SEED_FILE.name] and rows[0][2] == str(SEED_CHUNKS)

    choose(driver, "rag-doc-kb", KITE)
    rows = wait_rows(driver, "rag-documents", UPLOAD_NAME)
    assert [r[0] for r in rows] == [UPLOAD_NAME]
    wait_for(driver, "#rag-summary", 10, text=f"Knowledge base {KITE}")

    choose(driver, "rag-doc-kb", "default")
    wait_rows(driver, "rag-documents", SEED_FILE.name)
    choose(driver, "rag-chunk-doc", SEED_FILE.name)
    wait_for(driver, "#rag-chunks-title", 30, text=f"{SEED_CHUNKS} chunks")
    chunks = wait_rows(driver, "rag-chunks", SEED_ARTICLE)
    assert chunks[0][0] == "1" and chunks[0][1] == SEED_ARTICLE
    assert [int(r[0]) for r in chunks] == list(range(1, len(chunks) + 1))  # in source order from the first
    assert all(r[4] for r in chunks), chunks  # every chunk shows its first words
    assert any(r[2] for r in chunks), chunks  # and those under a heading, their section
    headers = columns_in_view(driver, "rag-chunks")
    assert len(headers) == 5 and all(h["right"] <= h["box"] + 1 for h in headers), headers
    driver.execute_script("document.getElementById('rag-chunks').scrollIntoView({block: 'start'})")
    driver.save_screenshot(str(SHOTS / "documents-chunks.png"))

    choose(driver, "rag-doc-kb", KITE)  # another base: its documents, and the old choice's chunks go
    wait_rows(driver, "rag-documents", UPLOAD_NAME)
    deadline = time.monotonic() + 30
    while table_rows(driver, "rag-chunks"):
        assert time.monotonic() < deadline, "the chunks of the other base's document are still listed"
        time.sleep(0.3)
    choose(driver, "rag-chunk-doc", UPLOAD_NAME)
    wait_for(driver, "#rag-chunks-title", 30, text=UPLOAD_NAME)
    chunks = wait_rows(driver, "rag-chunks", "紫藤镇")
    assert chunks[0][0] == "1" and all(SEED_ARTICLE not in r[1] for r in chunks)


# ---- feedback ----------------------------------------------------------------------------------
# Gradio's chatbot.like / chatbot.dislike labels, in English and in its zh-CN translation
THUMB_LABELS = {"up": ("Like", "赞"), "down": ("Dislike", "踩")}


def thumb(driver, answer_index: int, rating: str):
    """The 👍 (``up``) or 👎 (``down``) button of the ``answer_index``-th answer in the chat (0 = the first);
    Gradio draws an answer's buttons once its event has finished, a moment after the answer's last update."""
    css = ", ".join(f"#rag-chat button[aria-label='{label}']" for label in THUMB_LABELS[rating])
    buttons = wait_for(driver, css, 30)
    deadline = time.monotonic() + 30
    while len(buttons) <= answer_index:
        assert time.monotonic() < deadline, f"{len(buttons)} {rating} buttons, no answer {answer_index}'s"
        time.sleep(0.3)
        buttons = wait_for(driver, css, 30)
    return buttons[answer_index]


def feedback_records(index: Path, question: str) -> list[dict]:
    """The records of ``question`` in the served index's feedback file, in file order."""
    path = index / "feedback.jsonl"
    # complete lines only: the server may be half-way through appending one
    lines = path.read_text(encoding="utf-8").split("\n")[:-1] if path.exists() else []
    return [r for r in map(json.loads, lines) if r["question"] == question]


def wait_records(index: Path, question: str, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(records := feedback_records(index, question)) < count:
        assert time.monotonic() < deadline, f"{len(records)} records of {question!r}, not {count}"
        time.sleep(0.3)
    return records


def test_a_thumbs_down_with_a_correction_is_stored_and_exported(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, log = served
    index = log.parent / "index"
    driver = browser
    known = len(feedback_records(index, SEED_Q))  # other tests of this module rate it too
    open_page(driver, base)
    ask(driver, SEED_Q)
    last_answer(driver, 120, "47天")
    assert not any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, "#rag-feedback"))

    thumb(driver, 0, "down").click()
    wait_for(driver, "#rag-feedback", 30)
    wait_for(driver, "#rag-feedback-status .rag-status-ok", 30, text="Stored; add a reason")
    assert "蓝风微短剧基地" in driver.find_element(By.CSS_SELECTOR, "#rag-feedback-title").text
    wait_records(index, SEED_Q, known + 1)
    wait_for(driver, "#rag-feedback-reason textarea", 10)[0].send_keys("答案应只给天数")
    wait_for(driver, "#rag-feedback-correction textarea", 10)[0].send_keys("47天")
    driver.execute_script("document.getElementById('rag-feedback').scrollIntoView({block: 'center'})")
    driver.save_screenshot(str(SHOTS / "chat-feedback.png"))
    wait_for(driver, "#rag-feedback-send", 10)[0].click()

    bare, detailed = wait_records(index, SEED_Q, known + 2)[-2:]
    assert bare["rating"] == detailed["rating"] == "down"
    assert not bare.get("corrected_answer") and not bare.get("reason")
    assert detailed["corrected_answer"] == "47天" and detailed["reason"] == "答案应只给天数"
    assert detailed["kbs"] == ["default"] and SEED_FILE.name in detailed["cited_doc_ids"]

    out = tmp_path / "questions.jsonl"
    done = subprocess.run([str(RAG_BIN), "feedback", "export", "--index-dir", str(index), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rows = [(r["question"], r["answer"], r["topic"]) for r in rows if r["question"] == SEED_Q]
    assert rows == [(SEED_Q, "47天", "feedback-corrected")]  # one row: the latest record wins


def test_the_success_status_of_sent_feedback_is_visible(served, browser):
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = browser
    open_page(driver, base)
    ask(driver, SEED_Q)
    last_answer(driver, 120, "47天")
    thumb(driver, 0, "down").click()
    wait_for(driver, "#rag-feedback-correction textarea", 30)[0].send_keys("47天")
    wait_for(driver, "#rag-feedback-send", 10)[0].click()
    wait_for(driver, "#rag-feedback-status .rag-status-ok", 30, text="your feedback is stored")
    assert "Thanks" in driver.find_element(By.CSS_SELECTOR, "#rag-feedback-status").text


def test_a_thumbs_up_is_stored_for_the_answer_it_was_given_to(served, browser):
    from selenium.webdriver.common.by import By

    base, log = served
    index = log.parent / "index"
    driver = browser
    question, other = "李发顺邀请总书记一起制作什么？", "火星上有多少座城市？"
    known = {q: len(feedback_records(index, q)) for q in (question, other)}  # other tests rate them too
    open_page(driver, base)
    ask(driver, other)
    last_answer(driver, 120, NOT_FOUND)
    ask(driver, question)
    last_answer(driver, 120, "大米粑粑")
    thumb(driver, 1, "up").click()  # the second answer's, not the first's
    up = wait_records(index, question, known[question] + 1)[known[question]:]
    assert [r["rating"] for r in up] == ["up"] and "大米粑粑" in up[0]["answer"] and not up[0]["abstained"]
    assert len(feedback_records(index, other)) == known[other]  # the first answer was not rated
    time.sleep(1.0)  # a thumbs-up opens nothing: give the page the time it would take to show the box
    assert not any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, "#rag-feedback"))


# ---- following a new question ------------------------------------------------------------------
def test_a_new_question_is_shown_with_open_passages_and_the_feedback_box_below(served, browser):
    """test_ui_browser's scrolling test, with the feedback box opened below the chat as well."""
    base, _ = served
    driver = browser
    open_page(driver, base)
    answer = two_unanswered(driver)
    thumb(driver, 0, "down").click()
    wait_for(driver, "#rag-feedback", 30)
    more = open_and_read_passages(driver, answer)
    view = ask_and_see_it_followed(driver, more, "chat-scroll-feedback-open.png")
    assert view["question_top"] >= 0 and view["question_bottom"] <= view["client"], f"the question is out of sight: {view}"
    on_page = driver.execute_script("""
      const q = [...document.querySelectorAll('#rag-chat .rag-q')].pop().getBoundingClientRect();
      return q.top >= 0 && q.bottom <= window.innerHeight;""")
    assert on_page, "the new question is in the chat's view but the window is scrolled away from it"


# ---- long file names ---------------------------------------------------------------------------
def sideways(driver, elem_id: str) -> list[list]:
    """What in ``#elem_id`` (itself included) is wider than its box: [tag, class, scrollWidth, clientWidth] each.

    Gradio's Dataframe scrolls sideways in its inner viewport, not in its outer block, so every element is
    looked at; a column pushed out of view shows up as the viewport's scrollWidth."""
    return driver.execute_script("""
      const root = document.getElementById(arguments[0]);
      return [root, ...root.querySelectorAll('*')]
        .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1
                     && !e.closest('.sizing-body'))  // the hidden copy that only measures the columns
        .map(e => [e.tagName, String(e.className), e.scrollWidth, e.clientWidth]);""", elem_id)


def columns_in_view(driver, elem_id: str) -> list[dict]:
    """Each header cell's right edge against the table block's: a column cut off ends beyond it."""
    return driver.execute_script("""
      const box = document.getElementById(arguments[0]).getBoundingClientRect();
      return [...document.querySelectorAll(`#${arguments[0]} th`)].map(th => ({
        title: th.title, right: th.getBoundingClientRect().right, box: box.right}));""", elem_id)


def test_a_long_file_name_wraps_inside_the_documents_table(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, _ = served
    assert len(LONG_NAME) == 124 and " " not in LONG_NAME
    doc = tmp_path / LONG_NAME
    doc.write_text("青石村灯会共展出花灯八百盏。", encoding="utf-8")
    driver = browser
    open_page(driver, base)
    open_tab(driver, "Documents")
    wait_for(driver, "#rag-upload input[type=file]", 30, visible=False)
    driver.find_element(By.CSS_SELECTOR, "#rag-upload input[type=file]").send_keys(str(doc))
    wait_for(driver, "#rag-upload", 60, text="kite_festival")
    wait_for(driver, "#rag-add", 10)[0].click()
    wait_for(driver, "#rag-doc-status .rag-status-ok", 120, text="kite_festival")
    stored = safe_filename(LONG_NAME)
    assert len(stored) > 100 and stored.endswith(".txt")
    rows = wait_rows(driver, "rag-documents", stored)
    assert stored in [r[0] for r in rows]
    time.sleep(0.5)  # the table sizes its columns after the new rows render
    for elem_id in ("rag-documents", "rag-doc-status"):
        assert sideways(driver, elem_id) == [], elem_id
    headers = columns_in_view(driver, "rag-documents")
    assert len(headers) == 4 and all(h["right"] <= h["box"] + 1 for h in headers), headers
    page = driver.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert page[0] <= page[1], f"the page scrolls sideways: {page}"
    driver.execute_script("document.getElementById('rag-documents').scrollIntoView({block: 'start'})")
    driver.save_screenshot(str(SHOTS / "documents-long-name.png"))


# ---- Gradio's own upload text ------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["zh-CN", "en-US"])
def test_the_upload_box_reads_in_both_languages_whatever_the_browsers(served, browser_zh, browser_en, lang):
    base, _ = served
    driver = browser_zh if lang == "zh-CN" else browser_en
    open_page(driver, base)
    assert driver.execute_script("return navigator.language") == lang
    open_tab(driver, "Documents")
    text = wait_for(driver, "#rag-upload [data-testid=upload-text]", 30, text="Drop File Here")[0].text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines == ["将文件拖放到此处 Drop File Here", "- 或 or -", "点击上传 Click to Upload"]
