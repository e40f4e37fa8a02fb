"""The Gradio chat: a thin adapter over ``rag.RAG`` (no retrieval logic here).

``create_app(rag)`` returns the ``gr.Blocks``; ``rag.http.app.build_app`` mounts it on the HTTP API
(pass ``CSS`` to ``gr.mount_gradio_app`` or ``launch``, where Gradio 6 takes app-level styling).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.http.app import UPLOAD_SUFFIXES, add_uploads, delete_document, key_matches
from rag.pipeline import RAG
from ui import render
from ui.staging import Staging

EXAMPLES = [
    "蓝风微短剧基地从签约到试运营用了多少天？",
    "天心经开区有多少家高新技术企业？",
    "福建福州市军门社区的老党员叫什么名字？",
    "How many drama shoots per year can the Lanfeng micro-drama base handle?",
]
HEADERS = ["文档 Document", "大小 Size", "段落 Chunks", "索引时间 Indexed at"]

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
.rag-loc { margin-left: 6px; }
.rag-score, .rag-span { color: var(--body-text-color-subdued); font-size: .9em; margin-left: 6px; }
.rag-passage { color: var(--body-text-color); }
mark.rag-quote { background: #fde68a; color: #111827; padding: 0 2px; border-radius: 2px; }
.rag-cited { font-style: italic; margin-bottom: 4px; }
.rag-more { margin-top: 6px; }
.rag-more summary { cursor: pointer; color: var(--body-text-color-subdued); }
.rag-meta { margin-top: 6px; color: var(--body-text-color-subdued); font-size: .8em; }
.rag-status-box { padding: 4px 0; }
.rag-status-ok { color: #15803d; }
.rag-status-warn { color: #b45309; }
.rag-status-error { color: #b91c1c; font-weight: 600; }
"""


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


def create_app(rag: RAG, *, api_key: str | None = None, staging: Staging | None = None) -> gr.Blocks:
    """The chat and documents UI over ``rag``; ``api_key`` (if set) is asked for before uploads and deletes.

    ``staging`` is the server's upload folder (``ui.staging``): the upload event reads only files
    staged there, whatever path a client puts in its request. Without one (the UI built alone, not
    served by ``rag.http.app.build_app``) uploads are refused.
    """
    settings = rag.settings
    generators = [g for g in settings.network_generators() if g != "*"]
    any_generator = "*" in settings.network_generators()

    def summary() -> str:
        docs = rag.documents()
        return f"索引中共有 {len(docs)} 个文档、{rag.size} 个段落 · {len(docs)} documents, {rag.size} passages indexed"

    def doc_state() -> tuple[Any, Any, str]:
        docs = rag.documents()
        rows = render.document_rows(docs)
        ids = [d["doc_id"] for d in docs]
        return gr.Dataframe(value=rows, headers=HEADERS), gr.Dropdown(choices=ids, value=None), summary()

    # ---- chat ----------------------------------------------------------------------------------
    def respond(message: str, chat: list[dict[str, Any]], turns: list[dict[str, str]], top_k: float,
                generator: str, hybrid: bool):
        message = (message or "").strip()
        if not message:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        chat = list(chat or []) + [
            {"role": "user", "content": render.user_message(message)},
            {"role": "assistant", "content": render.pending("检索中… Searching the documents…")},
        ]
        yield "", chat, turns
        text = ""
        try:
            events = rag.ask_stream(
                message, top_k=int(top_k), retrieval="hybrid" if hybrid else "dense",
                generator=settings.check_network_generator(generator), history=turns or None,
            )
            for event in events:
                if event.type == "sources":
                    n = len(event.passages or [])
                    chat[-1] = {"role": "assistant", "content": render.pending(
                        f"找到 {n} 个相关段落，正在作答… Found {n} passages, answering…")}
                elif event.type == "token":
                    text += event.text or ""
                    chat[-1] = {"role": "assistant", "content": render.pending("作答中… Answering…", text)}
                elif event.type == "answer" and event.answer is not None:
                    answer = event.answer
                    chat[-1] = {"role": "assistant", "content": render.answer_html(answer)}
                    turns = list(turns or []) + [
                        {"role": "user", "content": message}, {"role": "assistant", "content": answer.answer},
                    ]
                yield gr.skip(), chat, turns
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render.error_message(str(exc))}
            yield gr.skip(), chat, turns

    # ---- documents -----------------------------------------------------------------------------
    def upload(files: list[str] | None, key: str, progress: gr.Progress = gr.Progress(track_tqdm=True)):  # noqa: B008
        if not key_matches(api_key, key):
            return render.status_html([("error", "API 密钥错误 Wrong or missing API key")]), *doc_state(), gr.skip()
        if not files:
            return render.status_html([("warn", "请先选择文件 Choose files first")]), *doc_state(), gr.skip()
        staged = [staging.resolve(str(f)) if staging is not None else None for f in files]
        if any(p is None for p in staged):  # a path the client made up: a server file, not an upload
            return render.status_html([("error", "上传失败 Upload failed: not a file uploaded to this server")]), \
                *doc_state(), None
        progress(0.05, desc="保存文件 Saving files…")
        handles = [(Path(p).name, open(p, "rb")) for p in staged]  # noqa: SIM115 - closed below
        try:
            progress(0.15, desc="切分与嵌入 Chunking and embedding…")
            report = add_uploads(rag, handles)
        except RagError as exc:
            return render.status_html([("error", f"上传失败 Upload failed: {exc}")]), *doc_state(), gr.skip()
        finally:
            for _, fh in handles:
                fh.close()
            for p in staged:  # stored under documents/ by now, or refused: the staged copy goes
                staging.release(p)
        progress(1.0, desc="完成 Done")
        lines: list[tuple[str, str]] = []
        for name, stored in report.renamed.items():
            lines.append(("warn", f"已改名 Stored as {stored}: 已有来自其他来源的同名文档 "
                                  f"a document from another source is already named {name}"))
        if report.added or report.updated:
            names = ", ".join(report.added + report.updated)
            done = f"{report.chunks_embedded} 个段落 chunks embedded, {report.seconds:.1f} s"
            lines.append(("ok", f"已加入索引 Indexed: {names} ({done})"))
        if report.unchanged:
            lines.append(("ok", f"未变化 Unchanged: {', '.join(report.unchanged)}"))
        for path, reason in report.skipped.items():
            lines.append(("warn", f"已跳过 Skipped {Path(path).name}: {reason}"))
        return render.status_html(lines), *doc_state(), None

    def delete(doc_id: str | None, key: str):
        if not key_matches(api_key, key):
            return render.status_html([("error", "API 密钥错误 Wrong or missing API key")]), *doc_state()
        if not doc_id:
            return render.status_html([("warn", "请先选择文档 Choose a document first")]), *doc_state()
        try:
            delete_document(rag, doc_id)
        except RagError as exc:
            return render.status_html([("error", f"删除失败 Delete failed: {exc}")]), *doc_state()
        return render.status_html([("ok", f"已删除 Deleted: {doc_id}")]), *doc_state()

    # ---- layout --------------------------------------------------------------------------------
    with gr.Blocks(title="文档问答 Document Q&A") as demo:
        gr.Markdown("## 文档问答 · Document Q&A\n基于已索引文档回答问题，并给出引用来源。"
                    " Answers come only from the indexed documents, with numbered sources."
                    " · [HTTP API 文档 docs](/docs)")
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("问答 Chat", id="chat"), gr.Row():
                with gr.Column(scale=4):
                    chatbot = gr.Chatbot(
                        label="对话 Conversation", elem_id="rag-chat", height=600, latex_delimiters=[],
                        buttons=["copy"], feedback_options=None, group_consecutive_messages=False, layout="panel",
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
                with gr.Column(scale=1, min_width=240):
                    gr.Markdown("### 设置 Settings")
                    top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="检索段落数 Passages (top-k)",
                                      elem_id="rag-topk")
                    generator = gr.Dropdown(  # what the operator allows (RAG_ALLOWED_GENERATORS), no free text
                        choices=generators, value=generators[0], label="生成器 Generator", elem_id="rag-generator",
                        interactive=len(generators) > 1 or any_generator, allow_custom_value=any_generator,
                        info="服务器允许的生成器 the generators this server allows (RAG_ALLOWED_GENERATORS)",
                    )
                    hybrid = gr.Checkbox(
                        value=settings.retrieval != "dense", label="混合检索 Hybrid retrieval",
                        info="向量 + 关键词 (BM25)；关闭则只用向量 · off = dense vectors only",
                        elem_id="rag-hybrid",
                    )
            with gr.Tab("文档 Documents", id="documents", elem_id="rag-documents-tab"):
                index_summary = gr.Markdown(summary(), elem_id="rag-summary")
                table = gr.Dataframe(
                    value=render.document_rows(rag.documents()), headers=HEADERS, interactive=False,
                    datatype=["str", "str", "number", "str"], elem_id="rag-documents", wrap=True,
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
                        doc_choice = gr.Dropdown(
                            choices=[d["doc_id"] for d in rag.documents()], value=None,
                            label="文档 Document", elem_id="rag-doc-choice",
                        )
                        remove = gr.Button("删除文档 Delete document", variant="stop", elem_id="rag-delete")
                doc_status = gr.HTML(elem_id="rag-doc-status")

        chat_inputs = [question, chatbot, turns, top_k, generator, hybrid]
        chat_outputs = [question, chatbot, turns]
        ask.click(respond, chat_inputs, chat_outputs, concurrency_limit=8, api_visibility="private")
        question.submit(respond, chat_inputs, chat_outputs, concurrency_limit=8, api_visibility="private")
        for button in examples:  # a button's value is its label: the question
            button.click(respond, [button, *chat_inputs[1:]], chat_outputs, concurrency_limit=8,
                         api_visibility="private")
        clear.click(lambda: ([], []), None, [chatbot, turns], api_visibility="private")
        chatbot.clear(list, None, turns, api_visibility="private")  # the chat's own trash button
        chatbot.change(None, None, None, js=FOLLOW_JS, api_visibility="private")

        doc_outputs = [doc_status, table, doc_choice, index_summary]
        add.click(upload, [files, key], [*doc_outputs, files], concurrency_limit=1, api_visibility="private")
        remove.click(delete, [doc_choice, key], doc_outputs, concurrency_limit=1, api_visibility="private")
        refresh.click(doc_state, None, [table, doc_choice, index_summary], api_visibility="private")
        key.change(None, [key], None, js=SESSION_JS, api_visibility="private")
        demo.load(doc_state, None, [table, doc_choice, index_summary], api_visibility="private")
    return demo


__all__ = ["CSS", "EXAMPLES", "create_app"]
