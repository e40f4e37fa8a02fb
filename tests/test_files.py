"""rag.files.write_atomic: a file written whole or not at all, with the permissions asked for."""

from __future__ import annotations

import os
import stat

import pytest

from rag.files import write_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_bytes_and_text_replace_the_file_with_the_permissions_asked_for(tmp_path):
    f = tmp_path / "a.json"
    f.write_text("old")
    write_atomic(f, "新的 text")
    assert f.read_text(encoding="utf-8") == "新的 text" and _mode(f) == 0o644
    write_atomic(f, b"\x00\x01", mode=None, durable=True)
    assert f.read_bytes() == b"\x00\x01" and _mode(f) == 0o600  # mkstemp's own: private
    write_atomic(f, b"x", mode=0o640)
    assert _mode(f) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "folder"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        write_atomic(target, b"cannot replace a folder")
    assert (target / "inside").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "f", b"no folder")
