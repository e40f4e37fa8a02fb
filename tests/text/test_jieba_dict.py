"""The quick-loading stand-in for jieba's dictionary (rag/text/jieba_dict.py): every entry as jieba's own,
the same segmentation and tags, a fresh process that uses it and leaves it for jieba's own after bulk work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEED_FILE

from rag.text import jieba_dict


@pytest.fixture(scope="module")
def own():
    """jieba's own tables: (module, FREQ, total, word_tag_tab)."""
    import jieba
    import jieba.posseg as pos

    fresh = jieba.Tokenizer()
    fresh.initialize()
    tagger = pos.POSTokenizer.__new__(pos.POSTokenizer)
    tagger.load_word_tag(fresh.get_dict_file())
    return jieba, fresh.FREQ, fresh.total, tagger.word_tag_tab


@pytest.fixture(scope="module")
def cache(own, tmp_path_factory) -> Path:
    jieba, freq, total, tags = own
    root = tmp_path_factory.mktemp("cache")
    jieba_dict.build(root, jieba, freq, total, tags)
    return root


def texts() -> list[str]:
    seed = SEED_FILE.read_text(encoding="utf-8")
    return [seed[i : i + 300] for i in range(0, len(seed), 300)] + [
        "蓝风微短剧基地从签约到试运营用了多少天？", "長沙市嶽麓區打造「微短劇+文旅」新場景", "OpenVINO 把 e5-small 降到 12 ms",
        "王建国出生于兰州，1987年进入研究所。", "", "  ", "😀ＡＡＡ",
    ]


@pytest.mark.slow
def test_every_entry_answers_as_jiebas_own(own, cache):
    jieba, freq, total, tags = own
    tables = jieba_dict.QuickTables(jieba_dict.find(cache, jieba))
    quick, quick_tags = jieba_dict.QuickFreq(tables), jieba_dict.QuickTags(tables)
    assert tables.total == total and len(quick) == len(freq)
    assert all(quick.get(w) == f for w, f in freq.items())
    assert all(quick_tags.get(w) == t for w, t in tags.items())
    assert sum(1 for w in freq if quick_tags.get(w) is not None) == len(tags)
    for missing in ("不是一个词吧", "zzzz", "", "蓝风微短剧基地"):
        assert quick.get(missing, -1) == freq.get(missing, -1) and (missing in quick) == (missing in freq)
        assert quick_tags.get(missing, "x") == tags.get(missing, "x")
    with pytest.raises(KeyError):
        quick["不是一个词吧"]


@pytest.mark.slow
def test_segmentation_and_tags_are_the_same(own, cache):
    jieba, freq, total, tags = own
    import jieba.posseg as pos

    tables = jieba_dict.QuickTables(jieba_dict.find(cache, jieba))
    mine = jieba.Tokenizer()
    mine.FREQ, mine.total, mine.initialized = jieba_dict.QuickFreq(tables), tables.total, True
    ref = jieba.Tokenizer()
    ref.FREQ, ref.total, ref.initialized = freq, total, True
    my_tagger, ref_tagger = pos.POSTokenizer(mine), pos.POSTokenizer(ref)
    my_tagger.word_tag_tab, ref_tagger.word_tag_tab = jieba_dict.QuickTags(tables), tags
    for text in texts():
        assert list(mine.cut_for_search(text)) == list(ref.cut_for_search(text))
        assert list(mine.cut(text, HMM=False)) == list(ref.cut(text, HMM=False))
        for hmm in (False, True):
            assert [tuple(p) for p in my_tagger.cut(text, HMM=hmm)] == [tuple(p) for p in ref_tagger.cut(text, HMM=hmm)]


def test_tables_of_another_jieba_or_dictionary_are_not_used(own, cache, tmp_path):
    jieba = own[0]
    assert jieba_dict.find(cache, jieba) is not None
    other = tmp_path / "jieba"
    other.mkdir()
    for f in jieba_dict.tables_dir(cache).iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    meta = json.loads((other / "jieba.quick.json").read_text())
    meta["source"]["dict_size"] += 1
    (other / "jieba.quick.json").write_text(json.dumps(meta))
    assert jieba_dict.find(tmp_path, jieba) is None
    assert jieba_dict.find(tmp_path / "nothing", jieba) is None


def _copy_with_source(cache: Path, dest: Path, **changes) -> Path:
    folder = dest / "jieba"
    folder.mkdir(parents=True)
    for f in jieba_dict.tables_dir(cache).iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    meta = json.loads((folder / "jieba.quick.json").read_text())
    for key, value in changes.items():
        where = meta if key == "dict_sha256" else meta["source"]
        if value is None:
            del where[key]
        else:
            where[key] = value
    (folder / "jieba.quick.json").write_text(json.dumps(meta))
    return dest


def test_tables_of_the_same_dictionary_installed_elsewhere_are_used(own, cache, tmp_path):
    """Another environment's install of the same dict.txt has another mtime (pip stamps the install
    time); its bytes decide, so two venvs sharing the cache do not take turns rebuilding it."""
    jieba = own[0]
    meta = json.loads((jieba_dict.tables_dir(cache) / "jieba.quick.json").read_text())
    assert len(meta["dict_sha256"]) == 64
    moved = _copy_with_source(cache, tmp_path / "a", dict_mtime_ns=meta["source"]["dict_mtime_ns"] - 10**9)
    assert jieba_dict.find(moved, jieba) == moved / "jieba"
    edited = _copy_with_source(cache, tmp_path / "b", dict_mtime_ns=1, dict_sha256="0" * 64)
    assert jieba_dict.find(edited, jieba) is None
    older = _copy_with_source(cache, tmp_path / "c", dict_mtime_ns=1, dict_sha256=None)  # tables of before
    assert jieba_dict.find(older, jieba) is None
    same_time = _copy_with_source(cache, tmp_path / "d", dict_sha256=None)
    assert jieba_dict.find(same_time, jieba) == same_time / "jieba"


PROBE = """
import json, sys, threading
from rag.text import jieba_dict, normalize
from rag.generation.features import pos_tags
out = {"terms": [normalize.index_terms(t) for t in sys.argv[1:]], "in_use": jieba_dict.in_use(),
       "tags": [pos_tags(t, hmm=True) for t in sys.argv[1:]]}
jieba_dict.SWITCH_AFTER = 50  # bulk work: the stand-in hands over to jieba's own tables
normalize.index_terms(sys.argv[1] * 5)
for t in threading.enumerate():
    if t.name == "jieba-full-dictionary":
        t.join()
out["after"] = {"terms": [normalize.index_terms(t) for t in sys.argv[1:]], "in_use": jieba_dict.in_use(),
                "tags": [pos_tags(t, hmm=True) for t in sys.argv[1:]]}
print(json.dumps(out, ensure_ascii=False))
"""


@pytest.mark.subprocess
def test_a_fresh_process_uses_the_stand_in_then_jiebas_own_with_the_same_results(cache):
    from rag.generation.features import pos_tags
    from rag.text.normalize import index_terms

    sample = [t for t in texts() if t.strip()][:6]
    env = dict(os.environ, RAG_CACHE_DIR=str(cache))
    run = subprocess.run([sys.executable, "-c", PROBE, *sample], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout)
    want_terms = [index_terms(t) for t in sample]
    want_tags = [[list(x) for x in pos_tags(t, hmm=True)] for t in sample]
    assert got["in_use"] is True and got["terms"] == want_terms and got["tags"] == want_tags
    assert got["after"]["in_use"] is False
    assert got["after"]["terms"] == want_terms and got["after"]["tags"] == want_tags



IMPORT_PROBE = """
import json, sys, warnings
warnings.simplefilter("error")  # jieba's pkg_resources import warns that the API is deprecated
from rag.text import jieba_dict
jieba = jieba_dict.import_jieba()
before = "pkg_resources" in sys.modules
with jieba.dt.get_dict_file() as f:  # its dictionary, opened by path instead of through pkg_resources
    first = f.readline().decode("utf-8").split()
words = list(jieba.Tokenizer().cut("蓝风微短剧基地从签约到试运营用了多少天"))
warnings.resetwarnings()
import pkg_resources  # still importable afterwards, for whoever needs it
print(json.dumps({"pkg_resources_before": before, "first": first, "words": words,
                  "same": jieba_dict.import_jieba() is jieba}))
"""


def test_jieba_is_imported_without_pkg_resources():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", IMPORT_PROBE], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["pkg_resources_before"] is False
    assert out["first"] == ["AT&T", "3", "nz"] and "签约" in out["words"] and out["same"]
