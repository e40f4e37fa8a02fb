"""The chat offers only the knowledge bases it can ask: a damaged one is not in its dropdowns."""

from __future__ import annotations


def test_a_damaged_base_is_not_offered_in_the_chat(seed_rag, tmp_path):
    from rag import RAG
    from rag.bases import KnowledgeBases
    from ui.app import create_app
    from ui.handlers import base_choices

    bases = KnowledgeBases(seed_rag, tmp_path / "kbs", RAG.open)
    bases.create("news")
    bases.create("broken")
    (tmp_path / "kbs" / "broken" / "manifest.json").write_text("{ not json", encoding="utf-8")
    assert "broken" in bases.names()  # still on disk, and GET /api/kbs lists it with its error

    assert base_choices(bases, ["broken", "news"], multiple=True).choices == [("default", "default"), ("news", "news")]
    assert base_choices(bases, "broken").value == "default"
    blocks = create_app(seed_rag, api_key=None, staging=None, bases=bases)
    dropdowns = [c for c in blocks.config["components"] if c.get("props", {}).get("elem_id") in ("rag-kbs", "rag-doc-kb")]
    assert len(dropdowns) == 2
    for dropdown in dropdowns:
        assert [choice[0] for choice in dropdown["props"]["choices"]] == ["default", "news"]
