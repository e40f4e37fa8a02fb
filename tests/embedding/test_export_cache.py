"""The OpenVINO export cache's housekeeping (rag/embedding/export_cache.py): exports keyed by their sources'
bytes, digests remembered by path, size and mtime, and old exports removed beyond the last few used."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from rag.embedding import export_cache
from rag.embedding.openvino import ModelConfig, export_dir


def _model(folder: Path, weights: bytes = b"w" * 1000) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "tokenizer.json").write_text("{}")
    return folder


def _cfg(path: Path) -> ModelConfig:
    return ModelConfig(path=path, dim=8, pooling="mean", max_length=16, prompts={})


def test_a_copy_of_a_model_elsewhere_shares_its_export_and_a_changed_one_does_not(tmp_path):
    cache = tmp_path / "cache"
    a = _model(tmp_path / "one" / "model")
    b = _model(tmp_path / "two" / "model")
    assert export_dir(_cfg(a), cache) == export_dir(_cfg(b), cache)
    (b / "model.safetensors").write_bytes(b"v" * 1000)  # same size, other bytes
    os.utime(b / "model.safetensors", ns=(1, 1))
    assert export_dir(_cfg(a), cache) != export_dir(_cfg(b), cache)
    c = _model(tmp_path / "three" / "model")
    (c / "pytorch_model.bin").write_bytes(b"x")  # one more source file: another export
    assert export_dir(_cfg(c), cache) != export_dir(_cfg(a), cache)


def test_a_digest_is_remembered_by_path_size_and_mtime(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    f = tmp_path / "weights.bin"
    f.write_bytes(b"abc" * 100)
    digest = export_cache.file_digest(root, f)
    assert digest == hashlib.sha256(b"abc" * 100).hexdigest()
    memo = json.loads((root / export_cache.DIGESTS).read_text())
    assert list(memo.values()) == [digest] and str(f.resolve()) in next(iter(memo))

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(hashlib, "file_digest", no_hashing)
    assert export_cache.file_digest(root, f) == digest  # from the memo: nothing read
    f.write_bytes(b"abd" * 100)  # changed: its mtime (and here bytes) differ, so it is hashed again
    os.utime(f, ns=(10**9, 10**9))
    with pytest.raises(AssertionError, match="hashed again"):
        export_cache.file_digest(root, f)


def test_the_memo_stays_bounded_and_a_broken_one_is_ignored(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    root.mkdir()
    (root / export_cache.DIGESTS).write_text("not json")
    monkeypatch.setattr(export_cache, "MAX_DIGESTS", 3)
    files = []
    for i in range(5):
        f = tmp_path / f"f{i}"
        f.write_bytes(bytes([i]) * 10)
        files.append(f)
        export_cache.file_digest(root, f)
    memo = json.loads((root / export_cache.DIGESTS).read_text())
    assert len(memo) == 3 and all(str(f.resolve()) in " ".join(memo) for f in files[2:])


def test_prune_keeps_the_last_used_the_recent_and_the_new_one(tmp_path):
    root = tmp_path / "openvino"
    now = time.time()
    folders = []
    for i in range(7):
        p = root / f"reader-{i:016x}"
        (p / "compiled").mkdir(parents=True)
        (p / "reader.xml").write_text("x")
        os.utime(p, (now - 10 * 3600 + i * 3600,) * 2)  # reader-0 is the oldest, reader-6 the newest
        folders.append(p)
    other = root / "reader-cls-0000000000000000"  # not a reader-<key> export: never touched
    other.mkdir()
    os.utime(other, (now - 100 * 3600,) * 2)
    unrelated = root / "model-00000000000000aa"
    unrelated.mkdir()
    os.utime(unrelated, (now - 100 * 3600,) * 2)
    export_cache.mark_used(folders[0])  # used just now: the newest, and recent
    removed = export_cache.prune(folders[1], "reader", keep=2, now=time.time())
    assert sorted(p.name for p in removed) == sorted(p.name for p in folders[2:6])  # folders[1]: the new one
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([folders[0].name, folders[1].name, folders[6].name, other.name, unrelated.name])
    assert export_cache.prune(folders[1], "reader", keep=1, now=time.time() + 3 * 3600) == [folders[6]]


def test_prune_leaves_a_recently_used_export_even_beyond_keep(tmp_path):
    root = tmp_path / "openvino"
    for i in range(3):
        (root / f"model-{i:016x}").mkdir(parents=True)
    assert export_cache.prune(root / "model-0000000000000000", "model", keep=1) == []
