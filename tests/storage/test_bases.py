"""Knowledge bases: names, the folders under the root, the registry a server keeps, and `rag kb` / `--kb`."""

from __future__ import annotations

import json

import pytest
from cli_runner import rag as run
from conftest import SEED_FILE

from rag.bases import KnowledgeBases, base_dir, check_name, list_bases, model_id, name_of_model
from rag.errors import ConfigError, KnowledgeBaseNotFoundError

KITE = "紫藤镇风筝节于每年四月十八日举行。\n今年的紫藤镇风筝节吸引游客两万三千人，创历史新高。\n"


@pytest.mark.parametrize("name", ["news", "新闻", "news-2024", "a_b", "N1", "ニュース"])
def test_good_names(name):
    assert check_name(name) == name and base_dir("/r", name).name == name


@pytest.mark.parametrize("name,why", [
    ("", "empty"), ("..", "not allowed"), (".git", "not allowed"), ("a/b", "not allowed"), ("a\\b", "not allowed"),
    ("-x", "not allowed"), ("_x", "not allowed"), ("a b", "not allowed"), ("a\x00b", "not allowed"),
    ("a.b", "not allowed"), ("x" * 65, "over the limit of 64"), (3, "must be a string"), ("a\u200bb", "not allowed"),
])
def test_bad_names_say_why(name, why):
    with pytest.raises(ConfigError, match=why):
        check_name(name)


def test_a_name_is_limited_by_the_bytes_its_folder_names_take(tmp_path):
    """Issue 23, bug 8: 64 four-byte letters passed the 64-character limit but are 256 bytes, and 62 (248)
    left no room for the ".NAME.deleting" rename; every derived name must fit NAME_MAX (255)."""
    from rag.bases import MAX_NAME_BYTES, NAME_MAX_BYTES, trash_name

    wide, cjk = "\U00010400", "新"
    assert MAX_NAME_BYTES == 245 and check_name(wide * 61) and check_name(cjk * 64)  # 244 and 192 bytes
    for name in (wide * 62, wide * 64, "ab" + wide * 61):  # 248, 256 and 246 bytes
        with pytest.raises(ConfigError, match=r"bytes in UTF-8, over the limit of 245"):
            check_name(name)
    assert check_name(wide * 63, existing=True)  # a base made before the limit can be named, so deleted
    with pytest.raises(ConfigError, match="over the limit of 255"):
        check_name(wide * 64, existing=True)
    for name in (wide * 61, wide * 63):
        trash = trash_name(name)
        assert trash.startswith(".") and trash.endswith(".deleting") and len(trash.encode()) <= NAME_MAX_BYTES
        (tmp_path / trash).mkdir()  # the file system takes it


def test_model_ids_round_trip():
    assert model_id("default") == "rag" and model_id("news") == "kb:news"
    assert name_of_model("rag") == "default" and name_of_model("kb:news") == "news"
    assert name_of_model("kb:") is None and name_of_model("gpt-4o") is None


def test_the_registry_opens_creates_and_deletes(seed_rag, tmp_path):
    from rag import RAG

    root = tmp_path / "kbs"
    bases = KnowledgeBases(seed_rag, root, RAG.open)
    assert bases.names() == ["default"] and bases.get(None) is seed_rag and bases.get("default") is seed_rag
    with pytest.raises(KnowledgeBaseNotFoundError, match="no knowledge base 'kite'.*rag kb create"):
        bases.get("kite")
    made = bases.create("kite")
    assert made.embedder is seed_rag.embedder  # one model in memory for every base
    assert bases.names() == ["default", "kite"] and bases.get("kite") is made
    src = tmp_path / "kite.txt"
    src.write_text(KITE, encoding="utf-8")
    made.add(src)
    assert [r["documents"] for r in bases.describe()] == [1, 1]
    (root / "stray").mkdir()  # a folder without a manifest is no base
    (root / "link").symlink_to(root / "kite")  # nor is a link to one
    assert list_bases(root) == ["kite"]
    with pytest.raises(KnowledgeBaseNotFoundError):
        bases.get("link")
    with pytest.raises(ConfigError, match="already exists"):
        bases.create("kite")
    with pytest.raises(ConfigError, match="server's own index"):
        bases.create("default")
    named = bases.get_many(["kite", "default", "kite"])
    assert [n for n, _ in named] == ["kite", "default"]
    bases.delete("kite")
    assert bases.names() == ["default"] and not (root / "kite").exists()
    with pytest.raises(KnowledgeBaseNotFoundError):
        bases.get("kite")
    with pytest.raises(ConfigError, match="cannot be deleted"):
        bases.delete("default")


def test_fused_passages_are_ranked_by_score_and_tagged(seed_rag, tmp_path):
    from rag import RAG

    src = tmp_path / "kite.txt"
    src.write_text(KITE, encoding="utf-8")
    kite = RAG.open(tmp_path / "kbs" / "kite", create=True, progress=False)
    kite.add(src)
    fused = seed_rag.search("紫藤镇风筝节今年吸引了多少游客？", top_k=4, bases=[("default", seed_rag), ("kite", kite)])
    assert fused[0].kb == "kite" and [p.rank for p in fused] == [1, 2, 3, 4]
    assert [p.score for p in fused] == sorted((p.score for p in fused), reverse=True)
    alone = seed_rag.search("紫藤镇风筝节今年吸引了多少游客？", top_k=3)
    assert [p.chunk.chunk_id for p in fused if p.kb == "default"] == [p.chunk.chunk_id for p in alone][:3]
    assert all(p.kb is None for p in alone)


@pytest.mark.slow
def test_the_cli_manages_and_uses_bases(tmp_path):
    """`rag kb` and `--kb` as a user runs them, from a folder whose kbs/ holds the bases."""
    src = tmp_path / "kite.txt"
    src.write_text(KITE, encoding="utf-8")
    assert run("kb", "list", cwd=tmp_path).stdout.startswith("no knowledge bases under kbs")
    made = run("kb", "create", "kite", cwd=tmp_path)
    assert made.returncode == 0 and "rag index PATHS --kb kite" in made.stdout, made.stderr
    assert run("index", str(src), str(SEED_FILE), "--kb", "kite", "--json", cwd=tmp_path).returncode == 0
    listed = json.loads(run("kb", "list", "--json", cwd=tmp_path).stdout)
    assert [(r["name"], r["model"], r["documents"]) for r in listed] == [("kite", "kb:kite", 2)]
    ask = json.loads(run("ask", "紫藤镇风筝节今年吸引了多少游客？", "--kb", "kite", "--json", cwd=tmp_path).stdout)
    assert "两万三千" in ask["answer"]
    hits = json.loads(run("search", "蓝风微短剧基地", "--kb", "kite", "--json", cwd=tmp_path).stdout)
    assert hits[0]["doc_id"] == SEED_FILE.name
    docs = json.loads(run("documents", "--kb", "kite", "--json", cwd=tmp_path).stdout)
    assert sorted(d["doc_id"] for d in docs) == sorted([SEED_FILE.name, "kite.txt"])
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "紫藤镇风筝节今年吸引了多少游客？", "key_facts": [["两万三千"]]},
                                    ensure_ascii=False) + "\n", encoding="utf-8")
    ev = run("eval", str(questions), "--kb", "kite", "--json", cwd=tmp_path)
    assert ev.returncode == 0 and json.loads(ev.stdout)["answer"]["accuracy"] == 1.0, ev.stderr
    assert run("delete", "kite.txt", "--kb", "kite", cwd=tmp_path).returncode == 0
    missing = run("ask", "x", "--kb", "nope", cwd=tmp_path)
    assert missing.returncode == 3 and "no knowledge base 'nope'" in missing.stderr
    bad = run("kb", "create", "../up", cwd=tmp_path)
    assert bad.returncode == 2 and "not allowed" in bad.stderr and not (tmp_path / "up").exists()
    both = run("ask", "x", "--kb", "kite", "--index-dir", "index", cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    unconfirmed = run("kb", "delete", "kite", cwd=tmp_path)
    assert unconfirmed.returncode == 2 and "add --yes" in unconfirmed.stderr and (tmp_path / "kbs" / "kite").is_dir()
    assert run("kb", "delete", "kite", "--yes", cwd=tmp_path).returncode == 0
    assert not (tmp_path / "kbs" / "kite").exists()
    assert run("kb", "delete", "kite", "--yes", cwd=tmp_path).returncode == 3


@pytest.mark.slow
def test_the_python_api_asks_one_base_or_several(seed_index, tmp_path):
    from rag import RAG, KnowledgeBases

    src = tmp_path / "kite.txt"
    src.write_text(KITE, encoding="utf-8")
    RAG.open(tmp_path / "kbs" / "kite", create=True, progress=False).add(src)
    bases = KnowledgeBases.open(tmp_path / "kbs", default=seed_index, progress=False)
    assert bases.names() == ["default", "kite"]
    kite = bases.ask("紫藤镇风筝节今年吸引了多少游客？", kb="kite")
    assert "两万三千" in kite.answer and kite.citations[0].kb == "kite"
    both = bases.ask("蓝风微短剧基地从签约到试运营用了多少天？", kb=["kite", "default"])
    assert "47天" in both.answer and both.citations[0].kb == "default"
    assert bases.ask("紫藤镇风筝节今年吸引了多少游客？").abstained  # the default alone holds no such thing
    assert bases.search("紫藤镇风筝节", kb=["default", "kite"], top_k=2)[0].kb == "kite"
    assert bases.create("news").size == 0 and bases.names() == ["default", "kite", "news"]
