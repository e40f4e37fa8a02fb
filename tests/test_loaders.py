"""Reading files as people have them: encodings, empty and binary files, HTML, size limits."""

from __future__ import annotations

import pytest

from rag.errors import LoaderError
from rag.loaders import SourceFile, find_files, load_file

TEXT = "天心经开区有高新技术企业224家。"


def _load(path, **kw):
    return load_file(SourceFile(path, path.name), **kw)


@pytest.mark.parametrize(("encoding", "expected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("gbk", "gb18030"), ("gb18030", "gb18030")])
def test_encodings_are_detected(tmp_path, encoding, expected):
    p = tmp_path / "a.txt"
    p.write_bytes(TEXT.encode(encoding))
    doc = _load(p)
    assert doc.text == TEXT and doc.encoding == expected


@pytest.mark.parametrize(("content", "message"), [(b"", "empty"), (b"  \n\t ", "empty"), (b"\x00\x01\x02PK\x03\x04" * 50, "binary")])
def test_empty_and_binary_files_are_refused_by_name(tmp_path, content, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(LoaderError, match=f"bad.txt.*{message}"):
        _load(p)


def test_size_limit(tmp_path):
    p = tmp_path / "big.txt"
    p.write_text(TEXT * 1000, encoding="utf-8")
    with pytest.raises(LoaderError, match="over the"):
        _load(p, max_bytes=1000)


def test_html_keeps_visible_text_only(tmp_path):
    p = tmp_path / "page.html"
    p.write_text("<html><head><script>alert(1)</script><style>p{}</style></head><body><nav>菜单</nav>"
                 "<h1>标题</h1><p>正文第一段。</p><p>第二段&amp;更多。</p></body></html>", encoding="utf-8")
    text = _load(p).text
    assert "正文第一段。" in text and "第二段&更多。" in text and "标题" in text
    assert "alert" not in text and "菜单" not in text


def test_directory_walk_skips_unsupported_hidden_and_reports_missing(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "b.md").write_text("# 标题\n\n" + TEXT, encoding="utf-8")
    (tmp_path / "c.exe").write_bytes(b"MZ")
    (tmp_path / ".hidden.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    files, skipped = find_files([tmp_path, tmp_path / "nope.txt"])
    assert [f.doc_id for f in files] == ["b.md", "sub/a.txt"]
    assert skipped == {str(tmp_path / "nope.txt"): "no such file or directory"}
