"""The Chinese of the errors a chat user can meet, shown before the library's English text.

The library's errors stay English (API clients, logs and tests match their wording); the chat, like
the rest of its page, shows each in Chinese first. The table covers what the page lets a user cause:
uploads (rag.uploads, rag.ingest), questions (rag.pipeline), filters (rag.retrieval.filters), the
generator allow-list (rag.config), knowledge bases (rag.storage.bases), deletes, a busy index and
feedback (rag.feedback). tests/ui/test_messages.py raises each one from the code that writes it, so
a reworded error cannot silently lose its Chinese; an error the table does not know is shown in
English only. Technical details (a file name, an exception's text) are carried into the Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.http.redact import public_message

Translation = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _t(pattern: str, zh: Callable[[re.Match[str]], str]) -> Translation:
    return re.compile(pattern, re.S), zh


# a file's problem is written "<name>: <problem>" (rag.ingest); the name is kept
_FILE = r"(?P<name>.+?): "

ERRORS_ZH: tuple[Translation, ...] = (
    # ---- files (rag.ingest.decoding, rag.ingest.formats) ----
    _t(_FILE + r"file is empty", lambda m: f"{m['name']}：文件是空的"),
    _t(_FILE + r"file holds only whitespace", lambda m: f"{m['name']}：文件只有空白"),
    _t(_FILE + r"looks like a binary file \(.*\), not text", lambda m: f"{m['name']}：像是二进制文件，不是文本"),
    _t(_FILE + r"has a UTF-16 byte order mark but is not valid UTF-16",
       lambda m: f"{m['name']}：有 UTF-16 标记，但不是有效的 UTF-16 文本"),
    _t(_FILE + r"cannot detect the text encoding .*", lambda m: f"{m['name']}：无法识别文本编码"),
    _t(_FILE + r"file is (?P<mb>[\d.e+-]+) MB, over the (?P<limit>[\d.e+-]+) MB limit \(max_file_mb\)",
       lambda m: f"{m['name']}：文件 {m['mb']} MB，超过 {m['limit']} MB 的上限"),
    _t(_FILE + r"cannot read \(.*\)", lambda m: f"{m['name']}：无法读取"),
    _t(_FILE + r"no text found in the file", lambda m: f"{m['name']}：文件中没有文字"),
    _t(_FILE + r"PDF is encrypted", lambda m: f"{m['name']}：PDF 已加密"),
    _t(_FILE + r"PDF has no text layer .*", lambda m: f"{m['name']}：PDF 没有文字层（扫描件需先做 OCR）"),
    _t(_FILE + r"damaged or unreadable (?P<kind>PDF|DOCX|HTML|text file) \(.*\)",
       lambda m: f"{m['name']}：{m['kind'].replace('text file', '文本')} 文件损坏或无法读取"),
    # ---- zip bombs and work bounds (rag.ingest.archive, rag.ingest.limits) ----
    _t(_FILE + r"(?P<kind>\w+) holds (?P<n>[\d,]+) files, over the limit of (?P<limit>[\d,]+) .*",
       lambda m: f"{m['name']}：{m['kind']} 含 {m['n']} 个部件，超过 {m['limit']} 的上限"),
    _t(_FILE + r"(?P<kind>\w+) unpacks to (?P<mb>[\d,.]+) MB, over the limit of (?P<limit>[\d.]+) MB .*",
       lambda m: f"{m['name']}：{m['kind']} 解压后 {m['mb']} MB，超过 {m['limit']} MB 的上限"),
    _t(_FILE + r"(?P<kind>\w+)(?: part .+?)? unpacks to (?P<x>[\d,]+) times its (?:packed )?size, .*",
       lambda m: f"{m['name']}：{m['kind']} 解压后是原来的 {m['x']} 倍，像是压缩炸弹"),
    _t(_FILE + r"(?P<kind>\w+) is encrypted \(.*\)", lambda m: f"{m['name']}：{m['kind']} 已加密"),
    _t(_FILE + r"(?P<kind>\w+) holds over (?P<n>[\d,]+) characters of text, .*",
       lambda m: f"{m['name']}：{m['kind']} 的文字超过 {m['n']} 个字符的上限，请拆分成较小的文件"),
    _t(_FILE + r"(?P<kind>\w+) has over (?P<n>[\d,]+) paragraphs, .*",
       lambda m: f"{m['name']}：{m['kind']} 超过 {m['n']} 个段落的上限，请拆分成较小的文件"),
    _t(_FILE + r"(?P<kind>\w+) has (?P<n>[\d,]+) pages, over the limit of (?P<limit>[\d,]+) .*",
       lambda m: f"{m['name']}：{m['kind']} 有 {m['n']} 页，超过 {m['limit']} 页的上限，请拆分成较小的文件"),
    _t(_FILE + r"reading (?P<kind>PDF|DOCX) needs .*", lambda m: f"{m['name']}：读取 {m['kind']} 需要安装额外的组件"),
    # ---- uploads (rag.uploads) ----
    _t(r"unsupported file type (?P<suffix>\S+) in (?P<name>.+?); allowed: (?P<allowed>.+)",
       lambda m: f"不支持的文件类型 {m['suffix']}（{m['name']}）；支持：{m['allowed']}"),
    _t(r"(?P<name>.+) is over the upload limit of (?P<mb>[\d.e+-]+) MB \(RAG_MAX_UPLOAD_MB\)",
       lambda m: f"{m['name']} 超过 {m['mb']} MB 的上传上限"),
    _t(r"at most (?P<n>\d+) files per upload; got (?P<got>\d+)", lambda m: f"每次最多上传 {m['n']} 个文件，收到 {m['got']} 个"),
    _t(r"two uploads would be stored under the same name: (?P<names>.+)",
       lambda m: f"两个上传文件会以同一名称保存：{m['names']}"),
    _t(r"file name (?P<name>.+) has no usable base name", lambda m: f"文件名 {m['name']} 不可用"),
    _t(r"file name contains a NUL character", lambda m: "文件名含有 NUL 字符"),
    _t(r"the upload has no file name", lambda m: "上传的文件没有文件名"),
    _t(r"no files were uploaded", lambda m: "没有收到文件"),
    # ---- questions and filters (rag.pipeline, rag.retrieval.filters) ----
    _t(r"question is empty", lambda m: "问题是空的"),
    _t(r"question is (?P<n>\d+) characters, over the limit of (?P<limit>\d+) \(max_question_chars\)",
       lambda m: f"问题有 {m['n']} 个字符，超过 {m['limit']} 的上限"),
    _t(r"(?P<what>.+?) contains a lone UTF-16 surrogate \(invalid Unicode text\)",
       lambda m: f"{m['what']} 含有孤立的 UTF-16 代理字符（无效的文本）"),
    _t(r"(?P<what>.+?) contains a NUL character", lambda m: f"{m['what']} 含有 NUL 字符"),
    _t(r"(?P<what>.+?) is (?P<n>\d+) characters, over the limit of (?P<limit>\d+)",
       lambda m: f"{m['what']} 有 {m['n']} 个字符，超过 {m['limit']} 的上限"),
    _t(r"(?P<key>date_from|date_to) must be a date like 2023-08-03\. Currently, it is (?P<v>.+)",
       lambda m: f"{m['key']} 应为 2023-08-03 这样的日期，现在是 {m['v']}"),
    _t(r"filter doc may hold at most (?P<n>\d+) wildcards .*", lambda m: f"文档筛选最多可含 {m['n']} 个通配符"),
    # ---- the server's choices (rag.config, rag.storage.bases) ----
    _t(r"generator (?P<g>'.+?') is not allowed on this server; allowed: (?P<allowed>.+?) \(the operator sets .*\)",
       lambda m: f"本服务器不允许生成器 {m['g']}；允许：{m['allowed']}"),
    _t(r"cannot set up LLM (?P<spec>'.+?'): .*", lambda m: f"无法连接大模型 {m['spec']}"),
    _t(r"no knowledge base (?P<name>'.+?')(;| under).*", lambda m: f"没有知识库 {m['name']}"),
    _t(r"knowledge base name (?P<name>.+?) is not allowed: .*", lambda m: f"知识库名称 {m['name']} 不可用：只能用字母、数字、_ 和 -"),
    _t(r"knowledge base name is (?P<n>\d+) (?P<unit>characters|bytes in UTF-8), over the limit of (?P<limit>\d+).*",
       lambda m: f"知识库名称有 {m['n']} {'个字符' if m['unit'] == 'characters' else '字节'}，"
                 f"超过 {m['limit']} 的上限；请用较短的名称"),
    # ---- documents, the index, feedback ----
    _t(r"no such document\(s\) in the index: (?P<ids>.+)", lambda m: f"索引中没有这些文档：{m['ids']}"),
    _t(r"index at .+ is being written by another process .*", lambda m: "索引正被另一个进程写入，请稍后再试"),
    _t(r"the feedback file .+ is full .*", lambda m: "反馈文件已满，请管理员导出后清理"),
)


def chinese_of(table: tuple[Translation, ...], message: str) -> str | None:
    """The Chinese of ``message`` by the first pattern of ``table`` it matches whole; None if none does."""
    for pattern, zh in table:
        m = pattern.fullmatch(message)
        if m:
            return zh(m)
    return None


def error_zh(message: str) -> str | None:
    """The Chinese of an error the library writes; None for one the table does not know."""
    return chinese_of(ERRORS_ZH, message)


def bilingual(message: str) -> str:
    """``中文 · English`` for a known error, else the English as it is (plain text: escape it to show it).
    A server path in it is shown by its last part (``rag.http.redact``): the chat is a client too."""
    message = public_message(message)
    zh = error_zh(message)
    return message if zh is None else f"{zh} · {message}"


__all__ = ["ERRORS_ZH", "Translation", "bilingual", "chinese_of", "error_zh"]
