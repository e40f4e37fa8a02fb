"""The catalogue of messages a user can meet: for each stable code, its English and Chinese templates.

An error a user can cause is raised with a code and its parameters (``LoaderError("file.empty", name=name)``,
``rag.errors``); an answer's warning is written by ``english(code, ...)``. The English is what the
library has always written, byte for byte (API clients, logs and tests match its wording); the chat
shows the Chinese first. Fields listed in ``details`` are technical (an exception's text, a server
folder) and stay in the English only. ``zh_terms`` gives the Chinese of a parameter's English value.

Text that travelled without its code (an index report's skipped reasons, an answer's warnings, an
error's message that crossed a process or the network as text) is recognised by the English templates
themselves (``recognise``), in catalogue order: a more specific template comes first.

This module is below everything else in ``rag``: it imports nothing of it but ``rag.message_format``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rag.message_format import Template

Lang = Literal["en", "zh"]


@dataclass(frozen=True)
class Entry:
    """One message: its English and Chinese templates, which fields are English-only, and value terms."""

    en: Template
    zh: Template
    details: frozenset[str] = frozenset()
    zh_terms: Mapping[str, str] = field(default_factory=dict)

    def template(self, lang: Lang) -> Template:
        return self.zh if lang == "zh" else self.en


def _e(en: str, zh: str, *, details: tuple[str, ...] = (), zh_terms: Mapping[str, str] | None = None) -> Entry:
    return Entry(Template(en), Template(zh), frozenset(details), dict(zh_terms or {}))


_SPLIT = "split it into smaller files"
REBUILD = "rebuild with `rag index --rebuild`"  # the remedy every damaged-index message names (rag.storage)

CATALOGUE: dict[str, Entry] = {
    # ---- files (rag.ingest.decoding, rag.ingest.files, rag.ingest.formats, rag.ingest.docx_reader) ----
    "file.empty": _e("{name}: file is empty", "{name}：文件是空的"),
    "file.whitespace": _e("{name}: file holds only whitespace", "{name}：文件只有空白"),
    "file.binary_nul": _e("{name}: looks like a binary file (NUL bytes), not text", "{name}：像是二进制文件，不是文本"),
    "file.binary_control": _e("{name}: looks like a binary file ({control} control characters), not text",
                              "{name}：像是二进制文件，不是文本", details=("control",)),
    "file.bad_utf16": _e("{name}: has a UTF-16 byte order mark but is not valid UTF-16",
                         "{name}：有 UTF-16 标记，但不是有效的 UTF-16 文本"),
    "file.unknown_encoding": _e("{name}: cannot detect the text encoding (not UTF-8, GB18030, Big5, Shift-JIS or EUC)",
                                "{name}：无法识别文本编码"),
    "file.too_large": _e("{name}: file is {mb:.1f} MB, over the {limit:g} MB limit (max_file_mb)",
                         "{name}：文件 {mb:.1f} MB，超过 {limit:g} MB 的上限"),
    "file.unreadable": _e("{name}: cannot read ({reason})", "{name}：无法读取", details=("reason",)),
    "file.no_text": _e("{name}: no text found in the file", "{name}：文件中没有文字"),
    "file.needs_package": _e("{name}: reading {kind} needs {package}: {hint}", "{name}：读取 {kind} 需要安装额外的组件",
                             details=("package", "hint")),
    "file.damaged": _e("{name}: damaged or unreadable {kind} ({detail})", "{name}：{kind} 文件损坏或无法读取",
                       details=("detail",), zh_terms={"text file": "文本"}),
    "pdf.encrypted": _e("{name}: PDF is encrypted", "{name}：PDF 已加密"),
    "office.encrypted": _e("{name}: {kind} is protected by a password", "{name}：{kind} 有密码保护"),
    "mail.encrypted": _e("{name}: the {kind} e-mail is encrypted (S/MIME or PGP)", "{name}：{kind} 邮件已加密"),
    "mail.too_many_parts": _e("{name}: {kind} e-mail has over {limit:,} parts, the limit per message",
                              "{name}：{kind} 邮件超过 {limit:,} 个部分的上限"),
    "file.wrong_format": _e("{name}: is not a {kind} file (its content is of another format; check its extension)",
                            "{name}：不是 {kind} 文件（内容是别的格式，请检查扩展名）"),
    # ---- OCR of images and scanned PDF pages (rag.ingest.ocr, rag.ingest.scans, rag.ingest.limits) ----
    "ocr.needs_package": _e("{name}: the {kind} is a scan and OCR is not installed ({package}): {hint}",
                            "{name}：{kind} 是扫描件，需要安装 OCR 组件", details=("package", "hint")),
    "ocr.no_text": _e("{name}: no text found: the {kind} has no text layer and OCR found no text on its pages",
                      "{name}：{kind} 没有文字层，OCR 也没有识别出文字"),
    "image.too_many_pixels": _e("{name}: {kind} has a page of {pixels:,} pixels, over the limit of {limit:,} pixels "
                                "per page (a decompression bomb, or a scan at too high a resolution)",
                                "{name}：{kind} 有一页 {pixels:,} 像素，超过每页 {limit:,} 像素的上限"),
    # ---- zip bombs and work bounds (rag.ingest.archive, rag.ingest.limits) ----
    "zip.too_many_members": _e("{name}: {kind} holds {n:,} files, over the limit of {limit:,} for a zip-based document",
                               "{name}：{kind} 含 {n:,} 个部件，超过 {limit:,} 的上限"),
    "zip.too_large": _e("{name}: {kind} unpacks to {mb:,.1f} MB, over the limit of {limit:g} MB for a zip-based document",
                        "{name}：{kind} 解压后 {mb:,.1f} MB，超过 {limit:g} MB 的上限"),
    "zip.encrypted": _e("{name}: {kind} is encrypted (its part {part!r} needs a password)", "{name}：{kind} 已加密",
                        details=("part",)),
    "zip.part_ratio": _e("{name}: {kind} part {part!r} unpacks to {ratio:,.0f} times its packed size, over the "
                         "limit of {limit}: no document packs that tight (a zip bomb)",
                         "{name}：{kind} 解压后是原来的 {ratio:,.0f} 倍，像是压缩炸弹", details=("part", "limit")),
    "zip.ratio": _e("{name}: {kind} unpacks to {ratio:,.0f} times its size, over the limit of {limit}: "
                    "no document packs that tight (a zip bomb)",
                    "{name}：{kind} 解压后是原来的 {ratio:,.0f} 倍，像是压缩炸弹", details=("limit",)),
    "zip.part_too_large": _e("{name}: {kind} part {part!r} is {mb:,.1f} MB unpacked, over the limit of {limit:g} MB "
                             "for that part",
                             "{name}：{kind} 的部件 {part!r} 解压后 {mb:,.1f} MB，超过 {limit:g} MB 的上限"),
    "doc.too_many_chars": _e("{name}: {kind} holds over {limit:,} characters of text, the limit per document; " + _SPLIT,
                             "{name}：{kind} 的文字超过 {limit:,} 个字符的上限，请拆分成较小的文件"),
    "doc.too_many_paragraphs": _e("{name}: {kind} has over {limit:,} paragraphs, the limit per document; " + _SPLIT,
                                  "{name}：{kind} 超过 {limit:,} 个段落的上限，请拆分成较小的文件"),
    "doc.too_many_cells": _e("{name}: {kind} has over {limit:,} cells, the limit per document; " + _SPLIT,
                             "{name}：{kind} 超过 {limit:,} 个单元格的上限，请拆分成较小的文件"),
    "doc.too_many_pages": _e("{name}: {kind} has {n:,} pages, over the limit of {limit:,} per document; " + _SPLIT,
                             "{name}：{kind} 有 {n:,} 页，超过 {limit:,} 页的上限，请拆分成较小的文件"),
    # ---- uploads (rag.uploads, ui.staging) ----
    "upload.no_name": _e("the upload has no file name", "上传的文件没有文件名"),
    "upload.name_nul": _e("file name contains a NUL character", "文件名含有 NUL 字符"),
    "upload.bad_name": _e("file name {name!r} has no usable base name", "文件名 {name!r} 不可用"),
    "upload.unsupported_type": _e("unsupported file type {suffix} in {name!r}; allowed: {allowed}",
                                  "不支持的文件类型 {suffix}（{name!r}）；支持：{allowed}"),
    "upload.none": _e("no files were uploaded", "没有收到文件"),
    "upload.too_many_files": _e("at most {limit} files per upload; got {n}", "每次最多上传 {limit} 个文件，收到 {n} 个"),
    "upload.name_clash": _e("two uploads would be stored under the same name: {names}", "两个上传文件会以同一名称保存：{names}"),
    "upload.too_large": _e("{name} is over the upload limit of {limit:g} MB (RAG_MAX_UPLOAD_MB)",
                           "{name} 超过 {limit:g} MB 的上传上限"),
    "upload.over_limit": _e("upload too large: the limit is {limit:g} MB (RAG_MAX_UPLOAD_MB)",
                            "上传的文件太大：上限是 {limit:g} MB"),
    "upload.bad_limit": _e("max_upload_mb (RAG_MAX_UPLOAD_MB) must be positive. Currently, it is {value}",
                           "上传上限 max_upload_mb 必须大于 0，现在是 {value}"),
    "upload.staging_full": _e("the server's upload staging folder is full; add or clear staged files first",
                              "服务器的上传暂存区已满；请先添加或清除暂存的文件"),
    "upload.staging_share": _e("your files waiting to be added already take {held} of the {share} one client may "
                               "stage; add them to the index or remove them from the file box first",
                               "你待添加的文件已占用 {held}（每个客户端最多暂存 {share}）；"
                               "请先把它们加入索引，或从文件框中移除"),
    # ---- questions, filters and text a client sends (rag.pipeline, rag.filters, rag.feedback) ----
    "question.empty": _e("question is empty", "问题是空的"),
    "question.too_long": _e("question is {n} characters, over the limit of {limit} (max_question_chars)",
                            "问题有 {n} 个字符，超过 {limit} 的上限"),
    "filter.bad_date": _e("{key} must be a date like 2023-08-03. Currently, it is {value!r}",
                          "{key} 应为 2023-08-03 这样的日期，现在是 {value!r}"),
    "filter.too_many_wildcards": _e("filter doc may hold at most {limit} wildcards (* ? [). Currently, it holds {n}",
                                    "文档筛选最多可含 {limit} 个通配符", details=("n",)),
    "filter.malformed": _e("a filter is KEY=VALUE with KEY one of {keys}. Currently, it is {item!r}",
                           "筛选条件应写成 KEY=VALUE，KEY 为 {keys} 之一；现在是 {item!r}"),
    "filter.unknown": _e("unknown filter(s) {names}; known: {keys}", "未知的筛选条件 {names}；可用的有：{keys}"),
    "top_k.not_positive": _e("top_k must be greater than 0. Currently, top_k is {top_k}", "top_k 必须大于 0，现在是 {top_k}"),
    "top_k.out_of_range": _e("top_k must be a whole number from 1 to {limit}. Currently, top_k is {value!r}",
                             "top_k 必须是 1 到 {limit} 的整数，现在是 {value!r}"),
    "history.bad_item": _e("history items must be {{'role', 'content'}} messages or (user, assistant) pairs, "
                           "not {item!r}",
                           "对话历史的每一项应为 {{'role', 'content'}} 消息或（用户，助手）对", details=("item",)),
    # ---- knowledge bases (rag.bases, ui.cli) ----
    "kb.not_found_cli": _e("no knowledge base {name!r} under {root} "
                           "(create it with `rag kb create {name}` or `rag index PATHS --kb {name}`)",
                           "没有知识库 {name!r}", details=("root",)),
    "kb.not_found": _e("no knowledge base {name!r} under {root} (create one with `rag kb create NAME`)",
                       "没有知识库 {name!r}", details=("root",)),
    "kb.unknown_hint": _e("no knowledge base {name!r}; the bases are: {names} (create one with `rag kb create NAME`)",
                          "没有知识库 {name!r}", details=("names",)),
    "kb.unknown": _e("no knowledge base {name!r}; the bases are: {names}", "没有知识库 {name!r}", details=("names",)),
    "kb.not_listed": _e("unknown knowledge base {name!r}; known: {names}", "没有知识库 {name!r}", details=("names",)),
    "kb.exists": _e("knowledge base {name!r} already exists", "知识库 {name!r} 已经存在"),
    "kb.reserved": _e("{name!r} is the name of the server's own index; choose another name",
                      "{name!r} 是服务器自身索引的名称，请换一个名称"),
    "kb.default_undeletable": _e("the default knowledge base cannot be deleted (it is the server's --index-dir)",
                                 "默认知识库不能删除"),
    "kb.default_unrenamable": _e("the default knowledge base cannot be renamed (it is the server's --index-dir)",
                                 "默认知识库不能改名"),
    "kb.not_readable": _e("no knowledge base {name!r} that this key may read", "没有此密钥可读的知识库 {name!r}"),
    # ---- keys (rag.access, rag keys) ----
    "access.no_write": _e("key {key!r} may read knowledge base {name!r} but not change it",
                          "密钥 {key!r} 可以读取知识库 {name!r}，但不能修改它"),
    "access.no_manage": _e("key {key!r} may not create, rename or delete knowledge bases",
                           "密钥 {key!r} 不能创建、改名或删除知识库"),
    "access.key_required": _e("this needs a key: send Authorization: Bearer KEY or X-API-Key: KEY",
                              "需要密钥：请用 Authorization: Bearer KEY 或 X-API-Key: KEY 发送"),
    "access.wrong_key": _e("wrong, revoked or expired key (send a valid key as Authorization: Bearer KEY or "
                           "X-API-Key: KEY)", "密钥错误、已吊销或已过期"),
    "access.no_write_any": _e("key {key!r} may not change any knowledge base", "密钥 {key!r} 不能修改任何知识库"),
    "keys.unavailable": _e("the server's keys cannot be read just now; every key is refused until its operator "
                           "fixes the keys file", "服务器暂时无法读取密钥；在管理员修复密钥文件之前，所有密钥都被拒绝"),
    "keys.no_file": _e("no keys file: set RAG_KEYS_FILE (the server reads it too) or pass --file PATH",
                       "没有密钥文件：请设置 RAG_KEYS_FILE 或使用 --file PATH"),
    "keys.exists": _e("a key named {name!r} already exists (revoke it first, or choose another name)",
                      "已有名为 {name!r} 的密钥"),
    "keys.unknown": _e("no key named {name!r}; the keys are: {names}", "没有名为 {name!r} 的密钥", details=("names",)),
    "keys.bad_name": _e("key name {name!r} is not allowed: 1 to 64 letters, digits, '_', '-', '.' or '@'",
                        "密钥名称 {name!r} 不可用：只能用 1 到 64 个字母、数字、_ - . @"),
    "keys.reserved": _e("{name!r} is reserved (the operator key and the keyless caller); choose another name",
                        "{name!r} 是保留名称，请换一个"),
    "keys.damaged": _e("the keys file {path} cannot be read ({reason}); every key is refused until it is fixed",
                       "密钥文件无法读取；在修复之前所有密钥都被拒绝", details=("path", "reason")),
    "kb.too_many_asked": _e("{n} knowledge bases asked at once, over the limit of {limit}",
                            "一次最多可查询 {limit} 个知识库，现在是 {n} 个"),
    "kb.damaged": _e("knowledge base {name!r} is damaged: {reason}", "知识库 {name!r} 已损坏", details=("reason",)),
    "kb.name_empty": _e("knowledge base name is empty", "知识库名称是空的"),
    "kb.name_control": _e("knowledge base name {name!r} contains control characters", "知识库名称 {name!r} 含有控制字符"),
    "kb.bad_name": _e("knowledge base name {name!r} is not allowed: use letters, digits, '_' and '-', "
                      "starting with a letter or digit (no dots, slashes or spaces)",
                      "知识库名称 {name!r} 不可用：只能用字母、数字、_ 和 -"),
    "kb.name_too_long": _e("knowledge base name is {n} characters, over the limit of {limit}",
                           "知识库名称有 {n} 个字符，超过 {limit} 的上限；请用较短的名称"),
    "kb.name_too_many_bytes": _e("knowledge base name is {n} bytes in UTF-8, over the limit of {limit} (its folder's "
                                 "name and the {trash!r} it is renamed to when deleted must fit the file system's "
                                 "{fs_limit}); use a shorter name",
                                 "知识库名称有 {n} 字节，超过 {limit} 的上限；请用较短的名称",
                                 details=("trash", "fs_limit")),
    # after the specific ones above: "question is 3000 characters, …" and a base name are such texts too
    "text.too_long": _e("{what} is {n} characters, over the limit of {limit}", "{what} 有 {n} 个字符，超过 {limit} 的上限"),
    "text.nul": _e("{what} contains a NUL character", "{what} 含有 NUL 字符"),
    "text.surrogate": _e("{what} contains a lone UTF-16 surrogate (invalid Unicode text)",
                         "{what} 含有孤立的 UTF-16 代理字符（无效的文本）"),
    # ---- the server's choices (rag.config, rag.generation.llm) ----
    "generator.not_allowed": _e("generator {spec!r} is not allowed on this server; allowed: {allowed} "
                                "(the operator sets RAG_ALLOWED_GENERATORS)",
                                "本服务器不允许生成器 {spec!r}；允许：{allowed}"),
    "llm.setup_failed": _e("cannot set up LLM {spec!r}: {reason}", "无法连接大模型 {spec!r}", details=("reason",)),
    "llm.needs_package": _e("the {provider!r} provider needs an extra package: pip install {package} ({reason})",
                            "大模型服务 {provider!r} 需要安装额外的组件：pip install {package}", details=("reason",)),
    # ---- documents, the index, feedback (rag.pipeline, rag.storage.lock, rag.feedback) ----
    "document.not_found": _e("no such document(s) in the index: {ids}", "索引中没有这些文档：{ids}"),
    "document.unknown": _e("no such document in the index: {doc_id!r}", "索引中没有文档 {doc_id!r}"),
    "document.not_uploaded": _e("document {doc_id!r} was not uploaded: there is no stored file to download",
                                "文档 {doc_id!r} 不是上传的文件，没有可下载的原文件"),
    "document.no_chunk": _e("document {doc_id!r} has no chunk {chunk!r}", "文档 {doc_id!r} 中没有段落 {chunk!r}"),
    # the viewer's page picture (rag.http.page_image)
    "view.file_changed": _e("{name} changed since it was indexed: its pages are not shown; `rag index` it again",
                            "{name} 在索引之后被修改过，无法显示它的页面；请重新运行 rag index"),
    "view.no_page": _e("page {page} is not in the document (it has {pages} pages)", "文档中没有第 {page} 页（共 {pages} 页）"),
    "view.no_page_file": _e("document {doc_id!r} has no PDF file to show a page of",
                            "文档 {doc_id!r} 没有可显示页面的 PDF 文件"),
    "document.id_required": _e("a document id is required", "需要给出文档 ID"),
    "document.id_control": _e("document id {doc_id!r} contains control characters", "文档 ID {doc_id!r} 含有控制字符"),
    "index.locked": _e("index at {index_dir} is being written by another process (pid {pid}); "
                       "wait for it to finish and try again",
                       "索引正被另一个进程写入，请稍后再试", details=("index_dir", "pid")),
    "index.missing": _e("no index at {index_dir}; build one with `rag index [PATHS] --index-dir {index_dir}` "
                        "or use RAG.open(..., create=True)",
                        "这里还没有索引，请先用 `rag index` 建立", details=("index_dir",)),
    "index.no_manifest": _e("no index at {index_dir} (missing {manifest}); build one with `rag index` "
                            "or open with create=True",
                            "这里还没有索引，请先用 `rag index` 建立", details=("index_dir", "manifest")),
    "index.bad_manifest": _e("{path} is not valid JSON ({reason}); " + REBUILD,
                             "索引的清单文件已损坏，请重建索引（rag index --rebuild）", details=("path", "reason")),
    "index.manifest_key": _e("{path} lacks the key {key!r}; " + REBUILD,
                             "索引的清单文件缺少 {key!r}，请重建索引（rag index --rebuild）", details=("path",)),
    "index.format": _e("index format {found} at {index_dir}, this version reads {expected}; " + REBUILD,
                       "索引格式 {found} 不是本版本读取的 {expected}，请重建索引（rag index --rebuild）",
                       details=("index_dir",)),
    "index.embedder_mismatch": _e("index at {index_dir} was built with embedder {built!r} (dim {built_dim}), not "
                                  "{name!r} (dim {dim}); open it with embedder={built!r} or rebuild it",
                                  "索引是用嵌入模型 {built!r}（{built_dim} 维）建立的，不是 {name!r}（{dim} 维）；"
                                  "请用 embedder={built!r} 打开，或重建索引", details=("index_dir",)),
    "feedback.full": _e("the feedback file {file} is full (it holds {size}; this record of {record} would pass the "
                        "limit of {limit}, RAG_MAX_FEEDBACK_MB): the operator exports it with `rag feedback export`, "
                        "then moves it away",
                        "反馈文件已满，请管理员导出后清理", details=("file", "size", "record", "limit")),
    "feedback.no_question": _e("feedback needs the question that was asked", "反馈需要附上所问的问题"),
    "feedback.empty": _e("feedback {name} is empty", "反馈的 {name} 是空的"),
    "feedback.surrogate": _e("feedback {name} holds a lone UTF-16 surrogate, which is not text",
                             "反馈的 {name} 含有孤立的 UTF-16 代理字符，不是有效的文本"),
    "feedback.control": _e("feedback {name} holds the control character U+{codepoint:04X} at position {position}",
                           "反馈的 {name} 在位置 {position} 含有控制字符 U+{codepoint:04X}"),
    "feedback.too_many_entries": _e("feedback {name} has {n} entries, over the limit of {limit}",
                                    "反馈的 {name} 有 {n} 项，超过 {limit} 的上限"),
    # ---- settings (rag.config): last, being the most general templates; several bad values are one text ----
    "setting.unknown": _e("unknown setting(s) {names}; known: {known}", "未知的设置 {names}", details=("known",)),
    "setting.invalid_more": _e("{setting} ({variable}) must be {reason}. Currently, it is {value!r}; {more}",
                               "设置 {setting}（{variable}）的值 {value!r} 不可用；其他设置也有不可用的值",
                               details=("reason", "more")),
    "setting.invalid": _e("{setting} ({variable}) must be {reason}. Currently, it is {value!r}",
                          "设置 {setting}（{variable}）的值 {value!r} 不可用", details=("reason",)),
    "setting.bad_text": _e("{variable} must be a {kind}. Currently, it is {value!r}",
                           "环境变量 {variable} 的值 {value!r} 不可用", details=("kind",)),
    # ---- an answer's warnings (rag.generation: extractive, citations, llm, dispatch) ----
    "answer.cross_lingual": _e("low confidence: the question and the passages are in different languages, so the "
                               "answer was chosen by meaning alone and no words could be checked; verify the cited "
                               "passage",
                               "低置信度：问题与段落语言不同，答案只按语义选出，无法核对字词；请核对引用的段落"),
    "answer.uncertain": _e("uncertain answer (confidence {p:.2f}): the reader is not sure the passage says this; "
                           "the answer is not marked, check the cited passage",
                           "答案不确定（置信度 {p:.2f}）：阅读模型不能确定段落说的就是这个，未标出答案，请核对引用的段落"),
    "answer.number_not_cited": _e("the number {number} in the answer occurs in no cited passage",
                                  "答案中的数字 {number} 不在任何被引用的段落中"),
    "answer.unsupported_claim": _e("citation [{n}] does not support “{claim}” (support {support:.2f})",
                                   "引用 [{n}] 不支持“{claim}”（支持度 {support:.2f}）"),
    "answer.citation_out_of_range": _e("citation number(s) {numbers} point at no retrieved passage (1-{k}); dropped",
                                       "引用编号 {numbers} 不对应任何检索到的段落（1-{k}），已略去"),
    "answer.no_citation": _e("the answer cites no passage: it is not grounded in the documents",
                             "答案没有引用任何段落，没有文档依据"),
    "answer.uncited_sentences": _e("{n} sentence(s) of the answer cite no passage", "答案中有 {n} 句没有引用段落"),
    "answer.passage_shortened": _e("the best passage was shortened to whole sentences to fit the context window",
                                   "最相关的段落按整句截短，以放进上下文窗口"),
    "answer.passages_dropped": _e("{n} weaker passage(s) left out to fit the {budget}-token context window",
                                  "为放进 {budget} 个词元的上下文窗口，略去了 {n} 个较弱的段落"),
    "answer.llm_failed_midway": _e("LLM {name} failed ({reason}); showing the extractive answer instead; "
                                   "it replaces the text streamed before the failure",
                                   "大模型 {name} 调用失败，改为显示抽取式答案，替换了失败前已输出的文字",
                                   details=("reason",)),
    "answer.llm_failed": _e("LLM {name} failed ({reason}); showing the extractive answer instead",
                            "大模型 {name} 调用失败，改为显示抽取式答案", details=("reason",)),
    "answer.rewrite_failed": _e("could not rewrite the follow-up question with {name} ({reason}); searched for it as asked",
                                "无法用 {name} 改写追问，已按原问题检索", details=("reason",)),
}

@dataclass(frozen=True)
class Message:
    """A catalogued message: its code and either its parameters, or (``shown``) each field's text as it
    was shown in a text ``recognise`` found, keyed by the field as written (``mb:.1f``)."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    shown: Mapping[str, str] | None = None

    def text(self, lang: Lang = "en") -> str:
        entry = CATALOGUE[self.code]
        template, terms = entry.template(lang), entry.zh_terms if lang == "zh" else {}
        if self.shown is not None:
            return template.render_shown({k: terms.get(v, v) for k, v in self.shown.items()})
        return template.render({k: terms.get(v, v) if isinstance(v, str) else v for k, v in self.params.items()})


def message(code: str, **params: Any) -> Message:
    """The message ``code`` with ``params``; ``KeyError`` for a code the catalogue does not have."""
    if code not in CATALOGUE:
        raise KeyError(f"no message {code!r} in the catalogue")
    return Message(code, dict(params))


def english(code: str, **params: Any) -> str:
    """The English of ``code`` with ``params``: what the library writes."""
    return message(code, **params).text("en")


def recognise(text: str) -> Message | None:
    """The catalogued message ``text`` is (its English rendered), by the first template it matches; else None."""
    for code, entry in CATALOGUE.items():
        shown = entry.en.match(text)
        if shown is not None:
            return Message(code, shown=shown)
    return None


__all__ = ["CATALOGUE", "REBUILD", "Entry", "Lang", "Message", "english", "message", "recognise"]
