"""The Gradio chat page: its layout and the wiring of its events (what they do is ``ui.handlers``).

``create_app(rag)`` returns the ``gr.Blocks``; ``ui.server.build_app`` mounts it on the HTTP API
(pass ``CSS`` to ``gr.mount_gradio_app`` or ``launch``, where Gradio 6 takes app-level styling).
The page is built in parts: the chat tab, the documents tab, then the events that join them to ``rag``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from rag.bases import DEFAULT, KnowledgeBases
from rag.pipeline import RAG
from rag.uploads import UPLOAD_SUFFIXES
from ui import handlers, render
from ui.chunks_view import CHUNK_HEADERS
from ui.feedback_ui import FeedbackBox, build_feedback_box, scroll_into_view_js, wire_feedback
from ui.handlers import HEADERS
from ui.retrieval_tab import retrieval_tab
from ui.staging import Staging

EXAMPLES = [
    "蓝风微短剧基地从签约到试运营用了多少天？",
    "天心经开区有多少家高新技术企业？",
    "福建福州市军门社区的老党员叫什么名字？",
    "How many drama shoots per year can the Lanfeng micro-drama base handle?",
]

GENERATOR_INFO = "谁来写答案：服务器允许的选项 · who writes the answer: the choices this server allows"

CSS = """
.rag-answer { line-height: 1.6; }
.rag-text { white-space: normal; }
.rag-muted { color: var(--body-text-color-subdued); }
.rag-ref { color: var(--color-accent); font-weight: 600; }
.rag-status { color: var(--body-text-color-subdued); font-style: italic; }
.rag-notfound { border-left: 4px solid #d97706; background: rgba(217,119,6,.12); padding: 6px 10px;
  border-radius: 4px; font-weight: 600; }
.rag-warning { border-left: 4px solid #ca8a04; background: rgba(234,179,8,.15); padding: 4px 10px;
  margin-top: 6px; border-radius: 4px; font-size: .92em; }
.rag-error { border-left: 4px solid #dc2626; background: rgba(220,38,38,.12); padding: 6px 10px; border-radius: 4px; }
.rag-sources { margin-top: 10px; }
.rag-sources-title { font-weight: 600; margin-bottom: 4px; }
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 6px 10px; margin: 6px 0;
  font-size: .92em; }
.rag-source-head { margin-bottom: 4px; }
.rag-n { font-weight: 700; color: var(--color-accent); }
.rag-doc { font-family: var(--font-mono); }
.rag-kb { background: var(--color-accent-soft); color: var(--color-accent); border-radius: 4px; padding: 0 6px;
  font-size: .85em; font-weight: 600; }
.rag-loc { margin-left: 6px; }
.rag-score, .rag-span { color: var(--body-text-color-subdued); font-size: .9em; margin-left: 6px; }
.rag-passage { color: var(--body-text-color); }
mark.rag-quote { background: #fde68a; color: #111827; padding: 0 2px; border-radius: 2px; }
.rag-cited { font-style: italic; margin-bottom: 4px; }
.rag-more { margin-top: 6px; }
.rag-more summary { cursor: pointer; color: var(--body-text-color-subdued); }
.rag-meta { margin-top: 6px; color: var(--body-text-color-subdued); font-size: .8em; }
/* The chat's label floated over its scroll box and hid the first message's first line (and whatever was
   scrolled under it): in the flow, it sits above the conversation. */
#rag-chat [data-testid="block-label"] { position: static; margin: 0 0 4px 0; }
.rag-doubt strong { color: #b45309; }
.rag-confidence { font-variant-numeric: tabular-nums; }
.rag-status-box { padding: 4px 0; overflow-wrap: anywhere; }  /* a long file name without spaces wraps */
.rag-status-ok { color: #15803d; }
.rag-status-warn { color: #b45309; }
.rag-status-error { color: #b91c1c; font-weight: 600; }
"""


# Fixed shares of the table's width. Left to itself, Gradio's Dataframe sizes a column by its widest
# cell measured unwrapped (capped at the whole table's width), so one long file name or first-words
# cell took the full width and pushed the other columns out of view; with set widths, cells wrap.
DOCUMENT_COLUMNS = ["52%", "12%", "12%", "24%"]  # document, size, chunks, indexed at
CHUNK_COLUMNS = ["8%", "22%", "22%", "7%", "41%"]  # chunk, article, section, page, first words


# The file box uploads before any event runs and cannot send a header: with a server key, the key
# typed here is exchanged for the HttpOnly session cookie that the upload route accepts.
SESSION_JS = """async (key) => {
  try { await fetch('/api/session', {method: 'POST', headers: {'X-API-Key': key || ''}, credentials: 'same-origin'}); }
  catch (e) {}
}"""


# Gradio follows new messages only while the chat is within 100 px of its bottom, and stops for
# good once the reader scrolls elsewhere: an opened "closest passages" block, read from its start,
# left every later answer out of sight. A question the reader has just asked is always shown:
# when a new question appears, the chat's scroll box goes to its bottom, where Gradio's own
# following takes over for the streamed answer. Runs on every change; acts only on a new question.
FOLLOW_JS = """() => {
  const chat = document.getElementById('rag-chat');
  if (!chat) return [];
  requestAnimationFrame(() => requestAnimationFrame(() => {  // after the update is rendered
    const questions = chat.querySelectorAll('.rag-q');
    const seen = Number(chat.dataset.ragQuestions || 0);
    chat.dataset.ragQuestions = String(questions.length);  // fewer after "clear": start again
    if (questions.length <= seen) return;
    let box = questions[questions.length - 1].parentElement;
    while (box && box !== chat.parentElement) {
      if (box.scrollHeight > box.clientHeight && /auto|scroll/.test(getComputedStyle(box).overflowY)) {
        box.scrollTop = box.scrollHeight;
        return;
      }
      box = box.parentElement;
    }
  }));
  return [];
}"""


def create_app(rag: RAG, *, api_key: str | None = None, staging: Staging | None = None,
               bases: KnowledgeBases | None = None) -> gr.Blocks:
    """The chat and documents UI over ``rag``; ``api_key`` (if set) is asked for before uploads and deletes.

    ``staging`` is the server's upload folder (``ui.staging``): the upload event reads only files
    staged there, whatever path a client puts in its request. Without one (the UI built alone, not
    served by ``ui.server.build_app``) uploads are refused. ``bases`` are the knowledge bases the
    pickers offer (default: ``rag`` and those under ``RAG_KB_ROOT``).
    """
    bases = bases or handlers.as_bases(rag)
    with gr.Blocks(title="文档问答 Document Q&A") as demo:
        gr.Markdown("## 文档问答 · Document Q&A\n基于已索引文档回答问题，并给出引用来源。"
                    " Answers come only from the indexed documents, with numbered sources."
                    " · [HTTP API 文档 docs](/docs)")
        turns = gr.State([])
        records = gr.State({})  # answer message index → what a rating of it is stored with
        with gr.Tabs():
            chat = _chat_tab(rag, bases)
            docs = _documents_tab(rag, bases, api_key)
            retrieval_base = retrieval_tab(bases.get, bases.names)
        _wire_chat(bases, chat, turns, records)
        _wire_documents(demo, bases, docs, api_key, staging)
        demo.load(lambda chosen: handlers.base_choices(bases, chosen, multiple=True), [chat.kbs], [chat.kbs],
                  api_visibility="private")
        demo.load(lambda chosen: handlers.base_choices(bases, chosen), [retrieval_base], [retrieval_base],
                  api_visibility="private")
    return demo


# ---- the page ----------------------------------------------------------------------------------
@dataclass
class _ChatTab:
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask: gr.Button
    examples: list[gr.Button]
    clear: gr.Button
    top_k: gr.Slider
    generator: gr.Dropdown
    hybrid: gr.Checkbox
    kbs: gr.Dropdown
    feedback: FeedbackBox


@dataclass
class _DocumentsTab:
    kb: gr.Dropdown
    summary: gr.Markdown
    table: gr.Dataframe
    refresh: gr.Button
    key: gr.Textbox
    files: gr.File
    add: gr.Button
    choice: gr.Dropdown
    remove: gr.Button
    status: gr.HTML
    chunks_title: gr.Markdown
    chunks: gr.Dataframe


def _chat_tab(rag: RAG, bases: KnowledgeBases) -> _ChatTab:
    """The conversation, the question box and its examples, and the settings a question is asked with."""
    settings = rag.settings
    generators = [g for g in settings.network_generators() if g != "*"]
    any_generator = "*" in settings.network_generators()
    with gr.Tab("问答 Chat", id="chat"), gr.Row():
        with gr.Column(scale=4):
            chatbot = gr.Chatbot(
                label="对话 Conversation", elem_id="rag-chat", height=600, latex_delimiters=[],
                buttons=["copy"], feedback_options=("Like", "Dislike"), group_consecutive_messages=False,
                layout="panel",
                placeholder="提一个关于文档的问题 · Ask a question about the documents",
            )
            with gr.Row():
                question = gr.Textbox(
                    show_label=False, elem_id="rag-question", scale=5, lines=1,
                    max_length=settings.max_question_chars, submit_btn=False,
                    placeholder="输入问题，回车提问 · Type a question and press Enter",
                )
                ask = gr.Button("提问 Ask", variant="primary", scale=1, elem_id="rag-ask", min_width=100)
            gr.Markdown("**示例问题 Example questions**")
            with gr.Row(elem_id="rag-examples"):
                examples = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
            clear = gr.Button("清空对话 Clear chat", size="sm", variant="secondary")
            feedback = build_feedback_box()
        with gr.Column(scale=1, min_width=240):
            gr.Markdown("### 设置 Settings")
            kbs = gr.Dropdown(
                choices=bases.usable_names(), value=[DEFAULT], multiselect=True, label="知识库 Knowledge bases",
                elem_id="rag-kbs", info="可多选：各库段落按得分合并 · pick one or several: passages are fused by score",
            )
            top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="检索段落数 Passages (top-k)",
                              elem_id="rag-topk")
            generator = gr.Dropdown(  # what the operator allows (RAG_ALLOWED_GENERATORS), no free text
                choices=generators, value=generators[0], label="生成器 Generator", elem_id="rag-generator",
                interactive=len(generators) > 1 or any_generator, allow_custom_value=any_generator,
                info=GENERATOR_INFO,
            )
            hybrid = gr.Checkbox(
                value=settings.retrieval != "dense", label="混合检索 Hybrid retrieval",
                info="向量 + 关键词 (BM25)；关闭则只用向量 · off = dense vectors only",
                elem_id="rag-hybrid",
            )
    return _ChatTab(chatbot, question, ask, examples, clear, top_k, generator, hybrid, kbs, feedback)


def _documents_tab(rag: RAG, bases: KnowledgeBases, api_key: str | None) -> _DocumentsTab:
    """The chosen knowledge base's documents, the key box (with a server key), upload and delete."""
    with gr.Tab("文档 Documents", id="documents", elem_id="rag-documents-tab"):
        kb = gr.Dropdown(choices=bases.usable_names(), value=DEFAULT, label="知识库 Knowledge base", elem_id="rag-doc-kb",
                         info="上传、删除和列表都作用于此库 · uploads, deletes and the list act on this base")
        summary = gr.Markdown(handlers.summary(rag), elem_id="rag-summary")
        table = gr.Dataframe(
            value=render.document_rows(rag.documents()), headers=HEADERS, interactive=False,
            datatype=["str", "str", "number", "str"], elem_id="rag-documents", wrap=True,
            column_widths=DOCUMENT_COLUMNS,
        )
        refresh = gr.Button("刷新 Refresh", size="sm", variant="secondary")
        key = gr.Textbox(
            label="API 密钥 API key", type="password", visible=bool(api_key), elem_id="rag-key",
            info="上传和删除需要服务器的 RAG_API_KEY · uploads and deletes need the server's RAG_API_KEY",
        )
        with gr.Row():
            with gr.Column():
                gr.Markdown("### 上传 Upload")
                files = gr.File(
                    label=f"文件 Files ({' '.join(UPLOAD_SUFFIXES)})", file_count="multiple",
                    file_types=list(UPLOAD_SUFFIXES), elem_id="rag-upload",
                )
                add = gr.Button("加入索引 Add to index", variant="primary", elem_id="rag-add")
            with gr.Column():
                gr.Markdown("### 删除 Delete")
                choice = gr.Dropdown(
                    choices=[d["doc_id"] for d in rag.documents()], value=None,
                    label="文档 Document", elem_id="rag-doc-choice",
                    info="选中后下方列出它的段落 · its chunks are listed below once chosen",
                )
                remove = gr.Button("删除文档 Delete document", variant="stop", elem_id="rag-delete")
        status = gr.HTML(elem_id="rag-doc-status")
        gr.Markdown("### 已索引的段落 Indexed chunks")
        chunks_title = gr.Markdown("选择一个文档查看它被切成的段落 · Choose a document to see what it was cut into",
                                   elem_id="rag-chunks-title")
        chunks = gr.Dataframe(value=[], headers=CHUNK_HEADERS, interactive=False, wrap=True, elem_id="rag-chunks",
                              datatype=["number", "str", "str", "str", "str"], column_widths=CHUNK_COLUMNS)
    return _DocumentsTab(kb, summary, table, refresh, key, files, add, choice, remove, status, chunks_title, chunks)


# ---- the events --------------------------------------------------------------------------------
def _wire_chat(bases: KnowledgeBases, chat: _ChatTab, turns: gr.State, records: gr.State) -> None:
    """Ask (button, Enter, an example), clear, rate an answer, and follow a new question down the conversation."""
    respond = handlers.ask_handler(bases)
    chat_inputs = [chat.question, chat.chatbot, turns, chat.top_k, chat.generator, chat.hybrid, chat.kbs, records]
    chat_outputs = [chat.question, chat.chatbot, turns, records]
    chat.ask.click(respond, chat_inputs, chat_outputs, concurrency_limit=8, api_visibility="private")
    chat.question.submit(respond, chat_inputs, chat_outputs, concurrency_limit=8, api_visibility="private")
    for button in chat.examples:  # a button's value is its label: the question
        button.click(respond, [button, *chat_inputs[1:]], chat_outputs, concurrency_limit=8,
                     api_visibility="private")
    cleared = [chat.chatbot, turns, records, chat.feedback.group]
    chat.clear.click(lambda: ([], [], {}, gr.update(visible=False)), None, cleared, api_visibility="private")
    chat.chatbot.clear(lambda: ([], {}, gr.update(visible=False)), None, cleared[1:],  # the chat's own trash button
                       api_visibility="private")
    wire_feedback(chat.chatbot, records, chat.feedback, lambda names: bases.get((names or [DEFAULT])[0]))
    chat.chatbot.change(None, None, None, js=FOLLOW_JS, api_visibility="private")


def _wire_documents(demo: gr.Blocks, bases: KnowledgeBases, docs: _DocumentsTab, api_key: str | None,
                    staging: Staging | None) -> None:
    """Upload, delete, refresh, the chosen base, the key's session cookie, and the list shown when the page opens."""
    doc_state = handlers.documents_view(bases)
    upload = handlers.upload_handler(bases, api_key, staging, doc_state)
    delete = handlers.delete_handler(bases, api_key, doc_state)
    doc_outputs = [docs.status, docs.table, docs.choice, docs.summary]
    shown = [docs.table, docs.choice, docs.summary]
    shown_status = scroll_into_view_js("rag-doc-status")  # an upload's or a delete's outcome, in sight
    docs.add.click(upload, [docs.files, docs.key, docs.kb], [*doc_outputs, docs.files], concurrency_limit=1,
                   api_visibility="private").then(None, None, None, js=shown_status, api_visibility="private")
    docs.remove.click(delete, [docs.choice, docs.key, docs.kb], doc_outputs, concurrency_limit=1,
                      api_visibility="private").then(None, None, None, js=shown_status, api_visibility="private")
    docs.refresh.click(lambda kb: (handlers.base_choices(bases, kb), *doc_state(kb)), [docs.kb], [docs.kb, *shown],
                       api_visibility="private")
    docs.kb.change(doc_state, [docs.kb], shown, api_visibility="private")
    docs.choice.change(handlers.chunks_handler(bases), [docs.choice, docs.kb], [docs.chunks, docs.chunks_title],
                       api_visibility="private")
    docs.key.change(None, [docs.key], None, js=SESSION_JS, api_visibility="private")
    if staging is not None:  # staged files the page let go of, or left behind when it closed, go at once
        docs.files.change(staging.on_files_change, [docs.files], None, api_visibility="private",
                          show_progress="hidden")
        demo.unload(staging.on_unload)
    demo.load(lambda kb: (handlers.base_choices(bases, kb), *doc_state(kb)), [docs.kb], [docs.kb, *shown],
              api_visibility="private")


__all__ = ["CSS", "EXAMPLES", "create_app"]
