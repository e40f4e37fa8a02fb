"""rag.access: who may read and write which knowledge base (the operator key, the keys file, chat sessions)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from rag.access import ADMIN, Access, Grant, KeyRing, key_hash
from rag.errors import AccessDeniedError, ConfigError, KnowledgeBaseNotFoundError


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_without_any_key_the_server_is_open_and_with_the_operator_key_alone_reading_stays_open():
    open_access = Access()
    grant = open_access.grant_of({})
    assert not open_access.keyed and grant.may_read("news") and grant.may_write("news") and grant.manage
    access = Access("s3cret")
    anonymous = access.grant_of({})
    assert access.keyed and anonymous.may_read("news") and not anonymous.may_write("news") and not anonymous.manage
    assert access.grant_of(bearer("s3cret")).name == ADMIN
    assert access.grant_of({"x-api-key": "s3cret"}).manage
    assert access.grant_of(bearer("wrong")) is None  # a wrong key is refused, not taken for anonymous


def test_a_keys_file_puts_every_base_behind_a_key_with_its_scopes(tmp_path):
    access = Access("op", tmp_path / "keys.json")
    assert access.grant_of({}) == Grant("anonymous")  # no key: nothing
    reader = access.ring.add("reader", read="news")
    writer = access.ring.add("writer", read=["news"], write="policy")
    manager = access.ring.add("boss", read="*", write="*", manage=True)
    r, w, m = (access.grant_of(bearer(k)) for k in (reader, writer, manager))
    assert r.readable(["default", "news", "policy"]) == ["news"]
    assert w.readable(["default", "news", "policy"]) == ["news", "policy"]  # writing a base implies reading it
    assert m.readable(["default", "news", "later"]) == ["default", "news", "later"] and m.manage
    access.require_read(r, "news")
    with pytest.raises(KnowledgeBaseNotFoundError) as absent:  # an unreadable base looks absent
        access.require_read(r, "policy")
    assert absent.value.http_status == 404 and "policy" in str(absent.value)
    with pytest.raises(AccessDeniedError) as denied:
        access.require_write(r, "news")
    assert denied.value.http_status == 403
    with pytest.raises(KnowledgeBaseNotFoundError):  # not readable: absent, not "denied"
        access.require_write(r, "default")
    with pytest.raises(AccessDeniedError):
        access.require_manage(w)
    access.require_manage(m)
    assert access.grant_of(bearer("op")).manage  # the operator key still opens everything


def test_the_file_keeps_hashes_only_and_is_readable_by_its_owner_only(tmp_path):
    ring = KeyRing(tmp_path / "keys.json")
    key = ring.add("alice", read="news")
    text = (tmp_path / "keys.json").read_text(encoding="utf-8")
    assert key not in text and key_hash(key) in text
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600
    assert ring.records()[0].public() == {
        "name": "alice", "read": ["news"], "write": [], "manage": False,
        "created": ring.records()[0].created, "revoked": None}
    with pytest.raises(ConfigError):
        ring.add("alice")
    for bad in ("", "a b", "x" * 65, "../k", "admin", "anonymous", "名字\n"):
        with pytest.raises(ConfigError):
            ring.add(bad)
    for bad_scope in ("../etc", "a/b", ".hidden"):
        with pytest.raises(ConfigError):
            ring.add("bob", read=bad_scope)


def test_a_key_revoked_by_another_process_is_refused_at_once_and_ends_its_sessions(tmp_path):
    path = tmp_path / "keys.json"
    access = Access(None, path)
    key = access.ring.add("alice", read="news")
    grant = access.grant_of(bearer(key))
    session = access.open_session(grant)
    assert access.grant_of({"cookie": f"other=1; rag_session={session}"}) == grant
    code = f"from rag.access import KeyRing; KeyRing(__import__('pathlib').Path({str(path)!r})).revoke('alice')"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
    assert access.grant_of(bearer(key)) is None
    assert access.grant_of({"cookie": f"rag_session={session}"}) is None
    assert access.ring.records()[0].revoked  # kept, so `rag keys list` shows when
    assert access.grant_of({"cookie": "rag_session=made-up"}) is None


def test_renaming_a_base_carries_its_scopes_and_a_damaged_file_refuses_every_key(tmp_path):
    path = tmp_path / "keys.json"
    access = Access(None, path)
    key = access.ring.add("alice", read="news", write="news")
    access.rename_base("news", "press")
    grant = access.grant_of(bearer(key))
    assert grant.may_write("press") and not grant.may_read("news")
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(data)[:-5], encoding="utf-8")
    with pytest.raises(ConfigError) as damaged:
        access.grant_of(bearer(key))
    assert "cannot be read" in str(damaged.value)


def test_renaming_a_base_moves_its_folder_and_refuses_the_default_and_taken_names(tmp_path, writable_index):
    from rag import RAG
    from rag.bases import KnowledgeBases

    bases = KnowledgeBases(RAG.open(writable_index, progress=False), tmp_path / "kbs", RAG.open)
    bases.create("news")
    bases.create("policy")
    moved = bases.rename("news", "press")
    assert bases.names() == ["default", "policy", "press"] and moved.size == 0
    for old, new in (("default", "x"), ("press", "default"), ("press", "policy"), ("nope", "x"), ("press", "../x")):
        with pytest.raises((ConfigError, KnowledgeBaseNotFoundError)):
            bases.rename(old, new)
    assert bases.names() == ["default", "policy", "press"]
