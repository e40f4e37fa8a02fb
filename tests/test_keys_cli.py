"""`rag keys add|list|revoke` (ui.keys_cmd): the key printed once, never listed, the file named by --file or
RAG_KEYS_FILE, and what the command makes is what a server's rag.access accepts."""

from __future__ import annotations

import json

from cli_runner import rag

from rag.access import Access


def test_a_key_is_printed_once_listed_without_its_secret_and_revoked(tmp_path):
    path = tmp_path / "keys.json"
    made = rag("keys", "add", "alice", "--read", "news,policy", "--write", "news", "--file", str(path))
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert lines[0] == "key 'alice': read news, policy; write news"
    key = lines[1]
    assert key.startswith("rag_") and len(key) > 40 and "not shown again" in lines[2]
    grant = Access(None, path).grant_for_key(key)
    assert grant.may_write("news") and grant.may_read("policy") and not grant.may_read("default") and not grant.manage
    boss = rag("keys", "add", "boss", "--read", "*", "--write", "*", "--manage", env={"RAG_KEYS_FILE": str(path)})
    assert boss.returncode == 0 and "manages knowledge bases" in boss.stdout
    boss_key = boss.stdout.splitlines()[1]
    for listing in (rag("keys", "list", "--file", str(path)), rag("keys", "list", "--json", env={"RAG_KEYS_FILE": str(path)})):
        assert listing.returncode == 0 and key not in listing.stdout and boss_key not in listing.stdout
        assert "sha256" not in listing.stdout and "hash" not in listing.stdout
    rows = json.loads(rag("keys", "list", "--json", "--file", str(path)).stdout)
    assert [(r["name"], r["read"], r["write"], r["manage"], r["revoked"]) for r in rows] == [
        ("alice", ["news", "policy"], ["news"], False, None), ("boss", ["*"], ["*"], True, None)]
    assert "alice  read news, policy  write news  (created " in rag("keys", "list", "--file", str(path)).stdout
    gone = rag("keys", "revoke", "alice", "--file", str(path))
    assert gone.returncode == 0 and "revoked key 'alice'" in gone.stdout
    assert Access(None, path).grant_for_key(key) is None and Access(None, path).grant_for_key(boss_key).manage
    assert "(revoked 20" in rag("keys", "list", "--file", str(path)).stdout


def test_mistakes_are_refused_with_a_clear_error(tmp_path):
    path = str(tmp_path / "keys.json")
    none = rag("keys", "list", env={"RAG_KEYS_FILE": None})
    assert none.returncode == 2 and "no keys file: set RAG_KEYS_FILE" in none.stderr and "--file PATH" in none.stderr
    assert rag("keys", "add", "alice", env={"RAG_KEYS_FILE": None}).returncode == 2
    assert rag("keys", "add", "alice", "--read", "news", "--file", path).returncode == 0
    for args, words in ((("add", "alice"), "already exists"), (("add", "bad name"), "is not allowed"),
                        (("add", "admin"), "reserved"), (("add", "eve", "--read", "../etc"), "is not allowed"),
                        (("add", "eve", "--write", "a/b"), "is not allowed"), (("revoke", "nobody"), "no key named 'nobody'")):
        r = rag("keys", *args, "--file", path)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
    other = tmp_path / "other.json"  # --file wins over RAG_KEYS_FILE
    assert rag("keys", "add", "carol", "--file", str(other), env={"RAG_KEYS_FILE": path}).returncode == 0
    assert [r.name for r in Access(None, other).ring.records()] == ["carol"]
    assert [r.name for r in Access(None, path).ring.records()] == ["alice"]


def test_changes_from_several_processes_at_once_are_all_kept(tmp_path):
    """`rag keys` and a server (renaming a base) may write the file at the same moment: none loses another's change
    (a lost revoke would bring a key back)."""
    import subprocess
    import sys

    from conftest import ROOT

    path = tmp_path / "keys.json"
    code = ("import sys; from pathlib import Path; from rag.access import KeyRing\n"
            "ring = KeyRing(Path(sys.argv[1]))\n"
            "for i in range(15): ring.add(f'{sys.argv[2]}-{i}', read='news'); ring.rename_base('news', 'news')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), f"p{n}"], cwd=ROOT) for n in range(6)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    assert len(Access(None, path).ring.records()) == 6 * 15
