"""Every text the chat page shows, in Chinese and English: one table, ``key → (中文, English)``.

The page's language switch (中文 / English, ``ui.app``) picks one column; ``t(key, lang, **fields)``
gives the text with its ``{fields}`` filled. ``Labels`` remembers which component property shows which
key, so that switching the language relabels the whole page in one event. Text from documents and
users is never put in this table's templates unescaped by the callers that build markup
(``ui.render.esc``); the fields here are plain text.
tests/ui/test_texts.py checks that every key has both languages and the same fields in each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import gradio as gr

from rag.errors import RagError

Lang = Literal["zh", "en"]
DEFAULT_LANG: Lang = "en"  # before the page's script has read the browser's language
LANG_CHOICES = [("中文", "zh"), ("English", "en")]

TEXTS: dict[str, tuple[str, str]] = {
    # ---- the page ----
    "page.title": ("文档问答", "Document Q&A"),
    "page.intro": ("## 文档问答\n基于已索引文档回答问题，并给出编号引用来源。 · [HTTP API 文档](/docs)",
                   "## Document Q&A\nAnswers come only from the indexed documents, with numbered sources."
                   " · [HTTP API docs](/docs)"),
    "lang.label": ("语言", "Language"),
    "tab.chat": ("问答", "Chat"),
    "tab.documents": ("文档", "Documents"),
    "tab.retrieval": ("检索测试", "Retrieval test"),
    # ---- the chat ----
    "chat.label": ("对话", "Conversation"),
    "chat.placeholder": ("提一个关于文档的问题", "Ask a question about the documents"),
    "chat.question": ("输入问题，回车提问", "Type a question and press Enter"),
    "chat.ask": ("提问", "Ask"),
    "chat.examples": ("**示例问题**", "**Example questions**"),
    "chat.clear": ("清空对话", "Clear chat"),
    "chat.settings": ("### 设置", "### Settings"),
    "chat.kbs": ("知识库", "Knowledge bases"),
    "chat.kbs_info": ("可多选：各库段落按得分合并", "pick one or several: passages are fused by score"),
    "chat.top_k": ("检索段落数 (top-k)", "Passages (top-k)"),
    "chat.generator": ("生成器", "Generator"),
    "chat.generator_info": ("谁来写答案：服务器允许的选项", "who writes the answer: the choices this server allows"),
    "chat.hybrid": ("混合检索", "Hybrid retrieval"),
    "chat.hybrid_info": ("向量 + 关键词 (BM25)；关闭则只用向量", "dense vectors + keywords (BM25); off = vectors only"),
    "chat.key_info": ("读取受保护的知识库需要密钥", "protected knowledge bases need a key to be read"),
    "chat.searching": ("检索中…", "Searching the documents…"),
    "chat.found": ("找到 {n} 个相关段落，正在作答…", "Found {n} passages, answering…"),
    "chat.answering": ("作答中…", "Answering…"),
    # ---- an answer ----
    "answer.not_found": ("资料中没有找到相关信息", "Not found in the documents"),
    "answer.warning": ("注意：", "Warning:"),
    "answer.doubt": ("请再确认", "please check"),
    "answer.error": ("错误：", "Error:"),
    "answer.sources": ("来源", "Sources"),
    "answer.closest": ("最接近的段落", "Closest passages"),
    "answer.others": ("其他检索到的段落", "Other retrieved passages"),
    "answer.kb": ("知识库 {name}", "base {name}"),
    "answer.score": ("相关度 {score}", "score {score}"),
    "answer.chars": ("字符 {start}–{end}", "chars {start}–{end}"),
    "answer.confidence": ("置信度 {value}", "confidence {value}"),
    # ---- feedback ----
    "fb.rating": ("评价", "Rating"),
    "fb.up": ("👍 有用", "👍 Helpful"),
    "fb.down": ("👎 没用", "👎 Not helpful"),
    "fb.reason": ("理由（可选）", "Reason (optional)"),
    "fb.correction": ("正确答案（可选）", "Corrected answer (optional)"),
    "fb.missing": ("文档中没有答案", "Not in the documents"),
    "fb.send": ("提交反馈", "Send feedback"),
    "fb.gone": ("这条回答无法评价（页面已重新加载？）", "This answer can no longer be rated (was the page reloaded?)"),
    "fb.thanks_up": ("已记录 👍 谢谢", "Thanks: your rating is stored"),
    "fb.stored_down": ("已记录 👎。可补充理由或正确答案", "Stored; add a reason or the right answer if you can"),
    "fb.title": ("**评价这条回答：** {question}", "**Rating the answer to:** {question}"),
    "fb.need_detail": ("请填写理由、正确答案或勾选“文档中没有答案”",
                       "Give a reason, the right answer, or tick 'Not in the documents'"),
    "fb.not_stored": ("未能保存：{error}", "Not stored: {error}"),
    "fb.sent": ("已提交，谢谢", "Thanks: your feedback is stored"),
    # ---- the documents tab ----
    "docs.kb": ("知识库", "Knowledge base"),
    "docs.kb_info": ("上传、删除和列表都作用于此库", "uploads, deletes and the list act on this base"),
    "docs.summary": ("索引中共有 {docs} 个文档、{chunks} 个段落", "{docs} documents, {chunks} passages indexed"),
    "docs.summary_kb": ("知识库 {kb}：索引中共有 {docs} 个文档、{chunks} 个段落",
                        "Knowledge base {kb}: {docs} documents, {chunks} passages indexed"),
    "docs.unavailable": ("知识库不可用：{error}", "Knowledge base unavailable: {error}"),
    "docs.refresh": ("刷新", "Refresh"),
    "docs.key": ("API 密钥", "API key"),
    "docs.key_info": ("上传、删除和管理知识库需要服务器的密钥", "uploads, deletes and managing bases need the server's key"),
    "docs.upload": ("### 上传", "### Upload"),
    "docs.files": ("文件 ({suffixes})", "Files ({suffixes})"),
    "docs.add": ("加入索引", "Add to index"),
    "docs.delete": ("### 删除文档", "### Delete a document"),
    "docs.choice": ("文档", "Document"),
    "docs.remove": ("删除文档", "Delete document"),
    "docs.col_doc": ("文档", "Document"),
    "docs.col_size": ("大小", "Size"),
    "docs.col_chunks": ("段落", "Chunks"),
    "docs.col_indexed": ("索引时间", "Indexed at"),
    "docs.wrong_key": ("API 密钥错误或缺失", "Wrong or missing API key"),
    "docs.choose_files": ("请先选择文件", "Choose files first"),
    "docs.not_staged": ("上传失败：不是上传到本服务器的文件", "Upload failed: not a file uploaded to this server"),
    "docs.saving": ("保存文件…", "Saving files…"),
    "docs.embedding": ("切分与嵌入…", "Chunking and embedding…"),
    "docs.done": ("完成", "Done"),
    "docs.upload_failed": ("上传失败：{error}", "Upload failed: {error}"),
    "docs.renamed": ("已改名为 {stored}：已有来自其他来源的同名文档 {name}",
                     "Stored as {stored}: a document from another source is already named {name}"),
    "docs.indexed": ("已加入索引：{names}（{chunks} 个段落，{seconds} 秒）",
                     "Indexed: {names} ({chunks} chunks embedded, {seconds} s)"),
    "docs.unchanged": ("未变化：{names}", "Unchanged: {names}"),
    "docs.skipped": ("已跳过 {name}：{reason}", "Skipped {name}: {reason}"),
    "docs.choose_doc": ("请先选择文档", "Choose a document first"),
    "docs.delete_failed": ("删除失败：{error}", "Delete failed: {error}"),
    "docs.deleted": ("已删除：{name}", "Deleted: {name}"),
    "docs.not_there": ("{name} 不在此知识库中", "{name} is not in this knowledge base"),
    # ---- knowledge bases (the documents tab) ----
    "kb.manage": ("### 管理知识库", "### Manage knowledge bases"),
    "kb.new_name": ("新知识库名称", "New base's name"),
    "kb.name_placeholder": ("字母、数字、_ 和 -，例如 news", "letters, digits, _ and -, e.g. news"),
    "kb.create": ("新建知识库", "Create base"),
    "kb.rename_to": ("所选知识库的新名称", "Rename the chosen base to"),
    "kb.rename": ("重命名", "Rename"),
    "kb.delete": ("删除所选知识库", "Delete the chosen base"),
    "kb.created": ("已新建知识库：{name}", "Created the knowledge base {name}"),
    "kb.renamed": ("已将知识库 {old} 重命名为 {new}", "Renamed the knowledge base {old} to {new}"),
    "kb.deleted": ("已删除知识库：{name}", "Deleted the knowledge base {name}"),
    "kb.create_failed": ("新建失败：{error}", "Could not create the base: {error}"),
    "kb.rename_failed": ("重命名失败：{error}", "Could not rename the base: {error}"),
    "kb.delete_failed": ("删除知识库失败：{error}", "Could not delete the base: {error}"),
    "kb.default_fixed": ("默认知识库（服务器自身的索引）不能重命名或删除",
                         "The default knowledge base (the server's own index) cannot be renamed or deleted"),
    "kb.name_needed": ("请先输入名称", "Type a name first"),
    "kb.choose": ("请先选择知识库", "Choose a knowledge base first"),
    "kb.unknown": ("没有知识库 {name}", "No knowledge base {name}"),
    # ---- keys (ui.gate) ----
    "access.bad_key": ("API 密钥错误或缺失（密钥不对、已撤销或已过期）",
                       "Wrong or missing API key (this key is wrong, revoked or expired)"),
    "access.key_needed": ("API 密钥错误或缺失：这需要有此权限的密钥，请在密钥框中输入",
                          "Wrong or missing API key: this needs a key allowed to do it; type it in the key box"),
    # ---- the confirmation row ----
    "confirm.doc": ("删除文档 {name}？这会移除它的 {n} 个段落。", "Delete {name}? This removes {n} chunks."),
    "confirm.base": ("删除知识库 {name}？这会移除整个知识库（{docs} 个文档、{chunks} 个段落）。",
                     "Delete {name}? This removes the whole base ({docs} documents, {chunks} chunks)."),
    "confirm.yes": ("确认删除", "Confirm"),
    "confirm.no": ("取消", "Cancel"),
    "confirm.cancelled": ("已取消，未删除任何内容", "Cancelled: nothing was deleted"),
    "confirm.stale": ("没有待确认的删除（请重新选择）", "Nothing is waiting to be deleted (choose again)"),
    # ---- the chunk browser ----
    "chunks.heading": ("### 段落浏览", "### Chunk browser"),
    "chunks.doc": ("查看文档的段落", "Document to browse"),
    "chunks.doc_info": ("选中后下方列出它的段落；点一行查看全文", "its chunks are listed below; click a row for its full text"),
    "chunks.hint": ("选择一个文档查看它被切成的段落", "Choose a document to see what it was cut into"),
    "chunks.title": ("**{name}**：{n} 个段落", "**{name}**: {n} chunks"),
    "chunks.cannot": ("无法列出段落：{error}", "Cannot list the chunks: {error}"),
    "chunks.col_n": ("段落", "Chunk"),
    "chunks.col_article": ("文章", "Article"),
    "chunks.col_section": ("小节", "Section"),
    "chunks.col_page": ("页", "Page"),
    "chunks.col_first": ("开头", "First words"),
    "chunks.text_hint": ("点表格中的一行查看该段落的全文", "Click a row of the table to read that chunk in full"),
    "chunks.text_head": ("段落 {n} / {total} · 字符 {start}–{end} · {chars} 字", "Chunk {n} of {total} · chars {start}–{end} · {chars} characters"),
    "chunks.gone": ("这个段落已不在索引中（请刷新）", "That chunk is no longer in the index (refresh)"),
    # ---- the retrieval tab ----
    "rt.base": ("知识库", "Knowledge base"),
    "rt.query": ("查询", "Query"),
    "rt.query_placeholder": ("输入查询，回车检索", "Type a query and press Enter"),
    "rt.search": ("检索", "Search"),
    "rt.start": ("输入查询并检索", "Type a query and search"),
    "rt.settings": ("### 检索设置", "### Settings"),
    "rt.top_k": ("段落数 (top-k)", "Passages (top-k)"),
    "rt.mode": ("检索方式", "Retrieval mode"),
    "rt.mode_hybrid": ("混合", "Hybrid"),
    "rt.mode_dense": ("向量", "Dense"),
    "rt.mode_lexical": ("关键词 (BM25)", "Lexical (BM25)"),
    "rt.weight": ("关键词权重", "Hybrid (BM25) weight"),
    "rt.weight_info": ("0 只用向量 · 1 只用 BM25（乘以覆盖率）", "0 dense only · 1 BM25 only (× coverage)"),
    "rt.rerank": ("重排", "Re-rank"),
    "rt.rerank_info": ("按问题的区分性词语重排", "by the question's distinctive terms"),
    "rt.filters": ("### 筛选", "### Filters"),
    "rt.doc": ("文档 id", "Document id"),
    "rt.article": ("文章标题（部分）", "Article title (part)"),
    "rt.date_from": ("起始日期", "Date from"),
    "rt.date_to": ("截止日期", "Date to"),
    "rt.no_passages": ("没有找到段落：索引中（或筛选条件下）没有匹配的内容",
                       "No passages: nothing in the index matches (or gets through the filters)"),
    "rt.failed": ("检索出错：{error}", "Search failed: {error}"),
    "rt.time": ("用时 {ms} ms", "time {ms} ms"),
    "rt.col_rank": ("排名", "Rank"),
    "rt.col_score": ("得分", "Score"),
    "rt.col_fused": ("融合分", "Fused"),
    "rt.col_dense": ("向量 (名次)", "Dense (rank)"),
    "rt.col_bm25": ("关键词分 (名次)", "BM25 (rank)"),
    "rt.col_rerank": ("重排加分", "Re-rank"),
    "rt.col_doc": ("文档", "Document"),
    "rt.col_loc": ("位置", "Location"),
    "rt.col_text": ("段落", "Passage"),
    "rt.exact": ("精确", "exact"),
    "rt.f_mode": ("模式 {mode}", "mode {mode}"),
    "rt.f_fusion": ("融合 {fusion}", "fusion {fusion}"),
    "rt.f_coverage": ("覆盖率 {coverage}", "coverage {coverage}"),
    "rt.f_weight": ("关键词权重 {w} × {coverage} = {used}", "BM25 weight {w} × {coverage} = {used}"),
    "rt.f_rerank": ("重排权重 {w}", "re-rank weight {w}"),
    "rt.f_candidates": ("候选：向量 {dense} · BM25 {lexical} / {pool} 段", "candidates: dense {dense} · BM25 {lexical} / {pool} chunks"),
    "rt.f_exact": ("精确匹配", "exact match"),
}


def lang_of(value: Any) -> Lang:
    """The page's language from an event's value: ``zh`` or, for anything else a client sends, ``en``."""
    return "zh" if value == "zh" else "en"


LANG_COOKIE = "rag_lang"  # set by the page's script (ui.app.LANG_JS) whenever its language is chosen


def request_lang(request: Any, lang: Any = None) -> Lang:
    """The language an event writes in: ``lang`` when given, else the page's choice, which its events carry
    as the ``rag_lang`` cookie (so that no event needs another input); English without one."""
    if lang is not None:
        return lang_of(lang)
    cookies = getattr(request, "cookies", None) if request is not None else None
    try:
        return lang_of(cookies.get(LANG_COOKIE) if cookies is not None else None)
    except Exception:  # a request without readable cookies
        return DEFAULT_LANG


def t(key: str, lang: Any = DEFAULT_LANG, **fields: Any) -> str:
    """The text ``key`` in ``lang`` with its ``{fields}`` filled (``KeyError`` for a key not in ``TEXTS``)."""
    text = TEXTS[key][0 if lang_of(lang) == "zh" else 1]
    return text.format(**fields) if fields else text


class Refusal(RagError):
    """A refusal worded in this table (``key`` and its fields): ``text(lang)`` in either language."""

    def __init__(self, key: str, **fields: Any) -> None:
        super().__init__(t(key, "en", **fields))
        self.key, self.fields = key, fields

    def text(self, lang: Any = "en") -> str:  # type: ignore[override]  # every language this page has
        return t(self.key, lang, **self.fields)


Text = str | Callable[[Lang], Any]  # a key of TEXTS, or a function of the language (choices, say)


class Labels:
    """Which property of which component shows which text: built with the page, relabelled by the switch."""

    def __init__(self, lang: Lang = DEFAULT_LANG) -> None:
        self.lang = lang
        self._entries: list[tuple[Any, dict[str, Text]]] = []

    def __call__(self, key: str, **fields: Any) -> str:
        """The text ``key`` in the language the page is built in."""
        return t(key, self.lang, **fields)

    def add(self, component: Any, **props: Text) -> Any:
        """Remember that ``component``'s ``props`` (label, info, placeholder, value, choices…) show these texts."""
        self._entries.append((component, props))
        return component

    @property
    def components(self) -> list[Any]:
        return [c for c, _ in self._entries]

    def updates(self, lang: Any) -> list[Any]:
        """One update per component (``components`` order) with its texts in ``lang``."""
        lang = lang_of(lang)
        return [gr.update(**{prop: text(lang) if callable(text) else t(text, lang) for prop, text in props.items()})
                for _, props in self._entries]


__all__ = ["DEFAULT_LANG", "LANG_CHOICES", "LANG_COOKIE", "TEXTS", "Labels", "Lang", "Refusal", "lang_of", "request_lang", "t"]
