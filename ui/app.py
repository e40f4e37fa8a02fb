"""The Gradio chat page: its layout and the wiring of its events (what they do is ``ui.handlers``).

``create_app(rag)`` returns the ``gr.Blocks``; ``ui.server.build_app`` mounts it on the HTTP API
(pass ``CSS`` to ``gr.mount_gradio_app`` or ``launch``, where Gradio 6 takes app-level styling).
The page is built in parts: the language switch, the chat tab, the documents tab (``ui.documents_tab``),
the retrieval tab (``ui.retrieval_tab``), then the events that join them to ``rag``.

Language: one switch (中文 / English) at the top. When the page opens, ``LANG_JS`` picks the language
remembered in localStorage, else the browser's first (``navigator.languages``: zh* → 中文, any other →
English); switching relabels every component registered in the page's ``ui.texts.Labels`` (tabs
included), the tables' headers, and every answer and status written afterwards. Events learn the
language from the ``rag_lang`` cookie the script sets (``ui.texts.request_lang``), so no event takes
another input for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.access import Access
from rag.bases import DEFAULT, KnowledgeBases
from rag.pipeline import RAG
from ui import handlers
from ui.chunks_view import chunks_handler
from ui.documents_tab import DocumentsTab, documents_tab, wire_documents
from ui.feedback_ui import FeedbackBox, build_feedback_box, wire_feedback
from ui.gate import Gate
from ui.retrieval_tab import retrieval_tab
from ui.staging import Staging
from ui.texts import LANG_CHOICES, LANG_COOKIE, Labels, lang_of, t

EXAMPLES = [
    "蓝风微短剧基地从签约到试运营用了多少天？",
    "天心经开区有多少家高新技术企业？",
    "福建福州市军门社区的老党员叫什么名字？",
    "How many drama shoots per year can the Lanfeng micro-drama base handle?",
]

CSS = """
/* Gradio 6.31's tab bar gains a second button for the retrieval tab at its first visit (its content, taller
   than the window, renders then; the cause inside Gradio was not found): only the first of a tab's buttons shows */
#rag-chat-tab-button ~ #rag-chat-tab-button, #rag-documents-tab-button ~ #rag-documents-tab-button,
#rag-retrieval-tab-button ~ #rag-retrieval-tab-button { display: none; }
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
#rag-lang { max-width: 260px; margin-left: auto; }
#rag-doc-status:not(:has(.rag-status-box)) { display: none; }  /* no status yet: no empty band */
.rag-kb-row { align-items: flex-end; }  /* the buttons sit beside their boxes, as tall as a box */
.rag-kb-row > button { flex-grow: 0; align-self: flex-end; margin-bottom: 10px; }
#rag-confirm { border: 2px solid #dc2626; border-radius: 8px; padding: 8px 12px; background: rgba(220,38,38,.06);
  align-items: center; }
#rag-confirm-text .rag-status-warn { color: var(--body-text-color); font-weight: 600; }
.rag-chunk-full { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 8px 12px; }
.rag-chunk-head { color: var(--body-text-color-subdued); font-size: .85em; margin-bottom: 6px; }
.rag-chunk-body { max-height: 320px; overflow-y: auto; line-height: 1.6; overflow-wrap: anywhere; }
"""

# When the page opens: the language remembered here, else the browser's first (zh* → 中文, any other →
# English); the switch is then set to it (which relabels the page when it is not the one it was built in).
# The choice also travels with every event as the rag_lang cookie (ui.texts.request_lang).
LANG_JS = f"""() => {{
  let lang = null;
  try {{ lang = localStorage.getItem('rag-lang'); }} catch (e) {{}}
  if (lang !== 'zh' && lang !== 'en') {{
    const first = (navigator.languages && navigator.languages[0]) || navigator.language || '';
    lang = /^zh/i.test(first) ? 'zh' : 'en';
  }}
  document.cookie = '{LANG_COOKIE}=' + lang + '; path=/; SameSite=Strict';
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  return lang;
}}"""

# A language the reader chose is remembered (localStorage) and sent with the events (the cookie).
LANG_CHOSEN_JS = f"""(lang) => {{
  try {{ localStorage.setItem('rag-lang', lang); }} catch (e) {{}}
  document.cookie = '{LANG_COOKIE}=' + lang + '; path=/; SameSite=Strict';
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  return [];
}}"""


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
               bases: KnowledgeBases | None = None, access: Access | None = None) -> gr.Blocks:
    """The chat and documents UI over ``rag``.

    ``access`` decides who may read and write which base (``rag.access``: the server's, from
    ``app.state.access``; default: ``api_key`` alone, which is then asked for before uploads, deletes and
    changes to the bases). ``staging`` is the server's upload folder (``ui.staging``): the upload event
    reads only files staged there, whatever path a client puts in its request. Without one (the UI built
    alone, not served by ``ui.server.build_app``) uploads are refused. ``bases`` are the knowledge bases
    the pickers offer (default: ``rag`` and those under ``RAG_KB_ROOT``), each only to callers that may
    read it.
    """
    bases = bases or handlers.as_bases(rag)
    gate = Gate(access or Access(api_key), bases)
    seen = gate.names(gate.grant(None))  # what anyone may see: the page as built is the same for all
    tx = Labels()
    with gr.Blocks(title=f"{t('page.title', 'zh')} · {t('page.title', 'en')}") as demo:
        with gr.Row(equal_height=True):
            tx.add(gr.Markdown(tx("page.intro"), elem_id="rag-intro"), value="page.intro")
            lang = tx.add(gr.Radio(LANG_CHOICES, value=tx.lang, label=tx("lang.label"), elem_id="rag-lang",
                                   scale=0, min_width=220), label="lang.label")
        turns = gr.State([])
        records = gr.State({})  # answer message index → what a rating of it is stored with
        with gr.Tabs():
            chat = _chat_tab(rag, seen, gate.access.keyed, tx)
            docs = documents_tab(rag, seen, gate.access.keyed, tx)
            _, retrieval_base = retrieval_tab(bases.get, lambda: seen, tx, gate)
        _wire_chat(gate, chat, turns, records)
        wire_documents(demo, gate, docs, staging, chat.kbs, retrieval_base, chat.key)

        def offered(chosen: Any, rt: Any, request: gr.Request) -> tuple[Any, Any]:
            """The chat's and the retrieval tab's pickers when the page opens: the bases this caller may read."""
            names = gate.names_for(request)
            return handlers.base_choices(bases, chosen, True, names=names), \
                handlers.base_choices(bases, rt, names=names)

        demo.load(offered, [chat.kbs, retrieval_base], [chat.kbs, retrieval_base], api_visibility="private")
        _wire_language(demo, gate, tx, lang, docs)
    return demo


def _wire_language(demo: gr.Blocks, gate: Gate, tx: Labels, lang: gr.Radio, docs: DocumentsTab) -> None:
    """The switch: set from the browser when the page opens; a change relabels the page, a choice is remembered."""
    doc_state = handlers.documents_view(gate)
    doc_chunks = chunks_handler(gate.read)

    def relabel(chosen: Any, kb: str | None, doc_id: str | None, request: gr.Request = None) -> list[Any]:
        chosen = lang_of(chosen)
        table, _, _, summary = doc_state(kb, request, chosen)
        chunks, title, _ = doc_chunks(doc_id, kb, request, chosen)
        return [*tx.updates(chosen), table, summary, chunks, title]

    demo.load(None, None, [lang], js=LANG_JS, api_visibility="private")
    lang.change(relabel, [lang, docs.kb, docs.chunk_doc],
                [*tx.components, docs.table, docs.summary, docs.chunks, docs.chunks_title], api_visibility="private",
                show_progress="hidden")
    lang.input(None, [lang], None, js=LANG_CHOSEN_JS, api_visibility="private")


# ---- the chat tab ------------------------------------------------------------------------------
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
    key: gr.Textbox
    feedback: FeedbackBox


def _chat_tab(rag: RAG, names: list[str], keyed: bool, tx: Labels) -> _ChatTab:
    """The conversation, the question box and its examples, and the settings a question is asked with."""
    settings = rag.settings
    generators = [g for g in settings.network_generators() if g != "*"]
    any_generator = "*" in settings.network_generators()
    with tx.add(gr.Tab(tx("tab.chat"), id="chat", elem_id="rag-chat-tab"), label="tab.chat"), gr.Row():
        with gr.Column(scale=4):
            chatbot = tx.add(gr.Chatbot(
                label=tx("chat.label"), elem_id="rag-chat", height=600, latex_delimiters=[],
                buttons=["copy"], feedback_options=("Like", "Dislike"), group_consecutive_messages=False,
                layout="panel", placeholder=tx("chat.placeholder"),
            ), label="chat.label", placeholder="chat.placeholder")
            with gr.Row():
                question = tx.add(gr.Textbox(
                    show_label=False, elem_id="rag-question", scale=5, lines=1,
                    max_length=settings.max_question_chars, submit_btn=False, placeholder=tx("chat.question"),
                ), placeholder="chat.question")
                ask = tx.add(gr.Button(tx("chat.ask"), variant="primary", scale=1, elem_id="rag-ask", min_width=100),
                             value="chat.ask")
            tx.add(gr.Markdown(tx("chat.examples")), value="chat.examples")
            with gr.Row(elem_id="rag-examples"):
                examples = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
            clear = tx.add(gr.Button(tx("chat.clear"), size="sm", variant="secondary", elem_id="rag-clear"),
                           value="chat.clear")
            feedback = build_feedback_box(tx)
        with gr.Column(scale=1, min_width=240):
            tx.add(gr.Markdown(tx("chat.settings")), value="chat.settings")
            kbs = tx.add(gr.Dropdown(
                choices=names, value=[DEFAULT] if DEFAULT in names else names[:1], multiselect=True, label=tx("chat.kbs"),
                elem_id="rag-kbs", info=tx("chat.kbs_info"),
            ), label="chat.kbs", info="chat.kbs_info")
            top_k = tx.add(gr.Slider(1, 20, value=settings.top_k, step=1, label=tx("chat.top_k"), elem_id="rag-topk"),
                           label="chat.top_k")
            generator = tx.add(gr.Dropdown(  # what the operator allows (RAG_ALLOWED_GENERATORS), no free text
                choices=generators, value=generators[0], label=tx("chat.generator"), elem_id="rag-generator",
                interactive=len(generators) > 1 or any_generator, allow_custom_value=any_generator,
                info=tx("chat.generator_info"),
            ), label="chat.generator", info="chat.generator_info")
            hybrid = tx.add(gr.Checkbox(
                value=settings.retrieval != "dense", label=tx("chat.hybrid"), info=tx("chat.hybrid_info"),
                elem_id="rag-hybrid",
            ), label="chat.hybrid", info="chat.hybrid_info")
            # reading a base may need a key too (a keys file): the same session as the documents tab's key box
            key = tx.add(gr.Textbox(label=tx("docs.key"), type="password", visible=keyed, elem_id="rag-chat-key",
                                    info=tx("chat.key_info")), label="docs.key", info="chat.key_info")
    return _ChatTab(chatbot, question, ask, examples, clear, top_k, generator, hybrid, kbs, key, feedback)


def _wire_chat(gate: Gate, chat: _ChatTab, turns: gr.State, records: gr.State) -> None:
    """Ask (button, Enter, an example), clear, rate an answer, and follow a new question down the conversation."""
    respond = handlers.ask_handler(gate)
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

    def store_into(names: list[str] | None, request: Any) -> RAG:
        """A rating is stored in the first base asked, if the rater may read every base it names."""
        return gate.bases.get((gate.read_many(request, names) or [DEFAULT])[0])

    wire_feedback(chat.chatbot, records, chat.feedback, store_into)
    chat.chatbot.change(None, None, None, js=FOLLOW_JS, api_visibility="private")


__all__ = ["CSS", "EXAMPLES", "LANG_JS", "create_app"]
