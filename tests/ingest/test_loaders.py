"""Reading files as people have them: encodings, empty and binary files, HTML, size limits, file ids."""

from __future__ import annotations

import itertools
import json

import pytest
from conftest import SEED_FILE, shared_data

from rag.errors import LoaderError
from rag.ingest.decoding import decode_bytes
from rag.ingest.files import SourceFile, find_files, load_file

TEXT = "天心经开区有高新技术企业224家。"
TRADITIONAL = "臺灣的夜市文化遠近馳名，每到傍晚，攤販便沿著街道擺出各式小吃，吸引許多觀光客前來品嚐。"
HONG_KONG = "佢哋話今日唔嚟喇，因為外面落緊大雨，我哋喺茶餐廳食咗個早餐先。"  # 嘅 咗 嚟: HKSCS only
JAPANESE = "東京の朝は早い。始発電車が動き出す前から、駅の周りには新聞を配る人の姿が見える。"
KOREAN = "서울의 아침은 지하철역에서 시작된다. 출근 시간이 되면 많은 사람들이 바쁜 걸음으로 계단을 오르내린다."


def _load(path, **kw):
    return load_file(SourceFile(path, path.name), **kw)


@pytest.mark.parametrize(("encoding", "expected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("gbk", "gb18030"), ("gb18030", "gb18030")])
def test_encodings_are_detected(tmp_path, encoding, expected):
    p = tmp_path / "a.txt"
    p.write_bytes(TEXT.encode(encoding))
    doc = _load(p)
    assert doc.text == TEXT and doc.encoding == expected


@pytest.mark.parametrize(("text", "codec", "expected"), [
    (TRADITIONAL, "cp950", "big5"), (TRADITIONAL[:20], "cp950", "big5"), (TRADITIONAL * 50, "cp950", "big5"),
    (HONG_KONG, "big5hkscs", "big5-hkscs"),
    (JAPANESE, "shift_jis", "shift_jis"), (JAPANESE[:20], "shift_jis", "shift_jis"), (JAPANESE, "euc_jp", "euc-jp"),
    (KOREAN, "euc_kr", "euc-kr"), (KOREAN[:20], "euc_kr", "euc-kr"),
    (TEXT, "gbk", "gb18030"), (TEXT * 100, "gb18030", "gb18030"),
])
def test_legacy_cjk_encodings_are_told_apart(tmp_path, text, codec, expected):
    """GB18030 decodes nearly any bytes, so Big5 or Shift-JIS read as GB18030 is valid garbage."""
    p = tmp_path / "a.txt"
    p.write_bytes(text.encode(codec))
    doc = _load(p)
    assert (doc.text, doc.encoding) == (text, expected)


def _windows(paragraphs: list[str], length: int, count: int) -> list[str]:
    """``count`` texts of ``length`` characters, each starting at a paragraph and running on into the next ones."""
    return ["\n".join(paragraphs[i : i + 1 + length // 100])[:length] for i in range(count)]


def _squad(name: str) -> list[str]:
    data = json.loads(shared_data(name).read_text(encoding="utf-8"))["data"]
    return [p["context"] for article in data for p in article["paragraphs"]]


@pytest.mark.slow
def test_real_paragraphs_decode_exactly_at_20_200_and_2000_characters():
    """Traditional DRCD paragraphs as Big5, simplified CMRC ones and the seed page as GBK and GB18030:
    short texts are where detectors go wrong."""
    traditional, simplified = _squad("drcd-dev.json")[:40], _squad("cmrc2018-trial.json")[:40]
    simplified.append(SEED_FILE.read_text(encoding="utf-8"))
    wrong, tried = [], 0
    for length, (paragraphs, codecs) in itertools.product((20, 200, 2000), [(traditional, ("cp950",)),
                                                                            (simplified, ("gbk", "gb18030"))]):
        for text, codec in itertools.product(_windows(paragraphs, length, len(paragraphs)), codecs):
            try:
                raw = text.encode(codec)
            except UnicodeEncodeError:  # a character the encoding lacks: no such file exists
                continue
            if raw.decode(codec) != text:  # cp950 writes some marks as look-alikes
                continue
            tried += 1
            got, encoding = decode_bytes(raw, "x.txt")
            if got != text:
                wrong.append((codec, length, encoding, text[:20]))
    assert tried > 300 and not wrong, wrong


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


def _ids(paths) -> dict[str, str]:
    files, skipped = find_files(paths)
    assert not skipped
    return {f.doc_id: f.path.read_text(encoding="utf-8") for f in files}


def test_two_files_of_one_name_are_both_kept_and_named_by_their_folders(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.md").write_text(f"{folder} 的笔记。", encoding="utf-8")
    a, b = tmp_path / "a" / "notes.md", tmp_path / "b" / "notes.md"
    assert _ids([a, b]) == _ids([b, a]) == {"a/notes.md": "a 的笔记。", "b/notes.md": "b 的笔记。"}


def test_two_roots_with_the_same_layout_do_not_overwrite_each_other(tmp_path):
    for root in ("2023", "2024"):
        (tmp_path / root / "sub").mkdir(parents=True)
        (tmp_path / root / "sub" / "report.txt").write_text(f"{root} 年报。", encoding="utf-8")
    (tmp_path / "2024" / "only.txt").write_text("只有一份。", encoding="utf-8")
    roots = [tmp_path / "2023", tmp_path / "2024"]
    expected = {"2023/sub/report.txt": "2023 年报。", "2024/sub/report.txt": "2024 年报。", "only.txt": "只有一份。"}
    assert _ids(roots) == _ids(roots[::-1]) == expected


def test_ids_grow_until_they_differ_whatever_the_order(tmp_path):
    """x/a/notes.md and y/a/notes.md need two folders; a qualified id that meets a folder's own id grows again."""
    files = [tmp_path / "x" / "a" / "notes.md", tmp_path / "y" / "a" / "notes.md", tmp_path / "root" / "a" / "notes.md"]
    for f in files:
        f.parent.mkdir(parents=True)
        f.write_text(f"{f.parent.parent.name} 的笔记。", encoding="utf-8")
    args = [files[0], files[1], tmp_path / "root"]
    results = [_ids(order) for order in itertools.permutations(args)]
    assert all(r == results[0] for r in results)
    assert results[0] == {"x/a/notes.md": "x 的笔记。", "y/a/notes.md": "y 的笔记。", "root/a/notes.md": "root 的笔记。"}


def test_the_same_file_given_twice_is_one_file(tmp_path):
    (tmp_path / "docs").mkdir()
    f = tmp_path / "docs" / "notes.md"
    f.write_text(TEXT, encoding="utf-8")
    files, _ = find_files([f, tmp_path / "docs" / ".." / "docs" / "notes.md", tmp_path / "docs"])
    assert [(s.path, s.doc_id) for s in files] == [(f, "notes.md")]
